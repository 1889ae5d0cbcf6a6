-- Back-office tasks: card preparation before a visit, post-issuance work after it (domain/tasks.py).
--
-- A task is `O task:{id}` (a hash) and, while open or claimed, a member of `O tasks` (id → created_at).
-- A same-day ticket whose card must be prepared waits in `D hold:{procedure}` with its queue score
-- (its place in line) instead of `D q:{procedure}`, so call-next never sees it; finishing the
-- preparation moves it to `D q:` with the same score and emits `ticket.ready`.
do

local TASK_NUMERIC = {created_at = true, due_at = true, claimed_at = true, done_at = true}
local TASK_ALLOWED_FROM = {
  claim = {open = true}, finish = {claimed = true}, ['return'] = {claimed = true},
  cancel = {open = true, claimed = true},
}

local function task_key(s, id) return s.O .. 'task:' .. id end

local function load_task(s, id) return read_hash(task_key(s, id), TASK_NUMERIC) end

local function set_task(s, task, fields) set_fields(task_key(s, task.id), task, fields) end

-- "DAY|NUMBER" → day, number
local function split_ticket(ref)
  if not ref or ref == '' then return nil, nil end
  local sep = string.find(ref, '|', 1, true)
  return string.sub(ref, 1, sep - 1), string.sub(ref, sep + 1)
end

-- The task as events and answers carry it (staff views only: public views drop `task`).
local function task_view(task)
  local view = {}
  for k, v in pairs(task) do view[k] = v end
  local _, number = split_ticket(task.ticket)
  view.number = number
  return view
end

local function archive_task(s, task)
  if lib.archive then lib.archive(s, 'task', task_view(task)) end
end

-- The place of an open task in the work list: domain/tasks.py work_score, one number kept in
-- `O taskq` (open tasks only), so claim-next takes its first member whatever the backlog. Preparation
-- for visitors waiting now (priority class, then the longest waiting), then preparation by deadline,
-- then post-issuance, oldest first; ties by id (the sorted set's member order).
local GROUP = 100000000000000          -- 10^14: above every time in ms (and 9 priority steps)
local PRIORITY_STEP = 10000000000000   -- 10^13

local function work_score(task, visitor)
  if task.kind == 'post' then return 2 * GROUP + task.created_at end
  if visitor then
    return (9 - (tonumber(visitor.priority) or 0)) * PRIORITY_STEP + (tonumber(visitor.issued_at) or 0)
  end
  return GROUP + (task.due_at or task.created_at)
end

-- The ticket of a preparation task whose visitor waits held for it now ({priority, issued_at}), or nil.
local function waiting_visitor(s, task)
  local day, number = split_ticket(task.ticket)
  if task.kind ~= 'prepare' or not day then return nil end
  if not redis.call('ZSCORE', s.O .. 'd:' .. day .. ':hold:' .. task.procedure, number) then return nil end
  local t = redis.call('HMGET', ticket_key(s, day, number), 'priority', 'issued_at')
  return {priority = t[1], issued_at = t[2]}
end

-- Put an open task in the work order (again); `visitor` when the caller knows it (its ticket not written yet).
local function queue_task(s, task, visitor)
  redis.call('ZADD', s.O .. 'taskq', string.format('%.0f', work_score(task, visitor or waiting_visitor(s, task))), task.id)
end

-- A new task (fields: kind, procedure and any of due_at, ticket, booking, work_office, send_to,
-- leave_day; `id` when the caller took one with lib.new_task_id). Emits task.created.
function lib.new_task_id(s)
  return tostring(redis.call('INCR', s.O .. 'taskseq'))
end

function lib.create_task(s, fields)
  local task = {}
  for k, v in pairs(fields) do task[k] = v end
  task.id = task.id or lib.new_task_id(s)
  task.state = 'open'
  task.created_at = s.now
  task.office = s.office
  task.work_office = task.work_office or s.req.work_office or s.office
  set_task(s, task, task)
  redis.call('ZADD', s.O .. 'tasks', s.now, task.id)
  queue_task(s, task)
  emit(s, {type = 'task.created', task = task_view(task)})
  return task
end

-- Hold a new ticket until its card is prepared: it keeps its score (place in line) in `D hold:`
-- instead of `D q:`. A same-day ticket (issue with req.prepare) gets a new task id (issue creates the
-- task after its event); a booked visitor checking in whose booking's preparation is still open waits
-- for that task, which now names the ticket (task.updated). Sets the ticket's prep and task fields in
-- `t` (the caller writes the ticket); returns true when held.
function lib.hold_ticket(s, t)
  local task_id
  if t.booking then
    task_id = redis.call('HGET', s.O .. 'bk:' .. t.booking, 'task')
    local task = task_id and task_id ~= '' and load_task(s, task_id)
    if not task or not TASK_ALLOWED_FROM.cancel[task.state] then return false end
    set_task(s, task, {ticket = s.today .. '|' .. t.number})
    -- Its visitor waits now: the card goes to the front part of the work list.
    if task.state == 'open' then queue_task(s, task, t) end
    emit(s, {type = 'task.updated', task = task_view(task)})
  elseif s.req.prepare then
    task_id = lib.new_task_id(s)
  else
    return false
  end
  t.prep = 'pending'
  t.task = task_id
  redis.call('ZADD', s.D .. 'hold:' .. t.procedure, t.score, t.number)
  return true
end

-- Cancel an open or claimed task (its visitor left, or the day closed out their held ticket).
function lib.cancel_task(s, id, why)
  local task = id and load_task(s, id)
  if not task or not TASK_ALLOWED_FROM.cancel[task.state] then return nil end
  set_task(s, task, {state = 'cancelled', done_at = s.now, cancelled_because = why or ''})
  redis.call('ZREM', s.O .. 'tasks', task.id)
  redis.call('ZREM', s.O .. 'taskq', task.id)
  emit(s, {type = 'task.cancelled', task = task_view(task)})
  return task
end

-- A booking's preparation task (the bookings area tells every change through this hook, in its
-- step): created with the booking (req.prep_task: its fields, for a procedure with preparation); a
-- moved booking's open task is replaced by one with the new deadline (a card already prepared stays
-- so); a cancelled or released (no-show) booking's open task is cancelled.
function lib.on_booking(s, kind, b)
  -- At check-in the ticket takes the booking's task over (hold_ticket, from new_ticket): nothing to do here.
  if kind == 'checked_in' then return end
  local task = b.task and b.task ~= '' and load_task(s, b.task) or nil
  if kind == 'cancelled' or kind == 'released' then
    if task then lib.cancel_task(s, task.id, kind == 'cancelled' and 'booking_cancelled' or 'no_show') end
    return
  end
  if task and task.state == 'done' then return end
  if task then lib.cancel_task(s, task.id, 'booking_changed') end
  local id = ''
  if s.req.prep_task then
    local fields = {booking = b.id}
    for k, v in pairs(s.req.prep_task) do fields[k] = v end
    id = lib.create_task(s, fields).id
  end
  if task or id ~= '' then lib.save_booking(s, b, {task = id}) end
end

local function check_task(op, task)
  if not TASK_ALLOWED_FROM[op][task.state] then
    return fail('bad_task_state', {op = op, task = task.id, state = task.state})
  end
  return nil
end

-- The task req.task names, checked for `op`; returns task or nil and an error string.
local function named_task(s, op)
  local task = load_task(s, s.req.task)
  if not task then return nil, fail('task_not_found', {task = s.req.task}) end
  local bad = check_task(op, task)
  if bad then return nil, bad end
  return task, nil
end

local function answer(task, ev, extra)
  local out = {ok = true, task = task_view(task), event = ev}
  if extra then for k, v in pairs(extra) do out[k] = v end end
  return cjson.encode(out)
end

-- Claim a task: the one named (req.task) or the first open one in the work order. One step, so two
-- people pressing at once never get the same task: the second finds it claimed.
op('task_claim', function(s)
  local task, err
  if s.req.task then
    task, err = named_task(s, 'claim')
    if err then return err end
  else
    -- The first open task in the work order (every member of `O taskq` is open).
    local first = redis.call('ZRANGE', s.O .. 'taskq', 0, 0)[1]
    if not first then return fail('no_task', {office = s.office}) end
    task = load_task(s, first)
  end
  redis.call('ZREM', s.O .. 'taskq', task.id)
  set_task(s, task, {state = 'claimed', claimed_by = s.req.actor or '', claimed_at = s.now})
  local ev = emit(s, {type = 'task.claimed', task = task_view(task)})
  return answer(task, ev)
end)

-- Give a claimed task back: open again, in its place in the work list.
op('task_return', function(s)
  local task, err = named_task(s, 'return')
  if err then return err end
  redis.call('HDEL', task_key(s, task.id), 'claimed_by', 'claimed_at')
  task.claimed_by, task.claimed_at = nil, nil
  set_task(s, task, {state = 'open'})
  queue_task(s, task)
  local ev = emit(s, {type = 'task.returned', task = task_view(task)})
  return answer(task, ev)
end)

-- Finish a claimed task. Its measured time feeds the estimates; a finished preparation makes its
-- held visitor callable in the place they held (ticket.ready).
op('task_finish', function(s)
  local task, err = named_task(s, 'finish')
  if err then return err end
  set_task(s, task, {state = 'done', done_at = s.now, done_by = s.req.actor or ''})
  redis.call('ZREM', s.O .. 'tasks', task.id)
  push_capped(s.O .. 'tasktimes', cjson.encode({kind = task.kind, procedure = task.procedure,
    claimed_at = task.claimed_at, done_at = s.now, by = task.claimed_by}), 20000)
  archive_task(s, task)
  local ev = emit(s, {type = 'task.done', task = task_view(task)})
  local ready
  local day, number = split_ticket(task.ticket)
  if task.kind == 'prepare' and day then
    local hold = s.O .. 'd:' .. day .. ':hold:' .. task.procedure
    local score = redis.call('ZSCORE', hold, number)
    local t = hash_table(ticket_key(s, day, number))
    if t then
      -- The card is ready whatever happens next; a ticket still waiting becomes callable, in its place.
      set_ticket(s, t, {prep = 'ready'})
      if score then
        redis.call('ZREM', hold, number)
        redis.call('ZADD', s.O .. 'd:' .. day .. ':q:' .. task.procedure, score, number)
        ready = emit(s, {type = 'ticket.ready', ticket = t})
      end
    end
  end
  return answer(task, ev, {ready = ready})
end)

-- The open and claimed tasks and the newest measured ones, for the snapshot.
function lib.open_tasks(s)
  local tasks = {}
  for _, id in ipairs(redis.call('ZRANGE', s.O .. 'tasks', 0, -1)) do
    local task = load_task(s, id)
    if task then table.insert(tasks, task_view(task)) end
  end
  local times = {}
  for _, raw in ipairs(redis.call('LRANGE', s.O .. 'tasktimes', 0, 199)) do table.insert(times, cjson.decode(raw)) end
  return tasks, times
end

-- The back-office work carried into the next day (post-issuance, bookings' preparation): open and
-- claimed tasks per kind, for the day.closed event; nil when there is none.
function lib.carried_over(s)
  local counts, any = {}, false
  for _, id in ipairs(redis.call('ZRANGE', s.O .. 'tasks', 0, -1)) do
    local kind = redis.call('HGET', task_key(s, id), 'kind')
    if kind then counts[kind] = (counts[kind] or 0) + 1; any = true end
  end
  return any and counts or nil
end

-- The held tickets of a day (each procedure's `hold:` set), closed out with their open preparation.
function lib.held_tickets(s, day)
  local held = {}
  for _, proc in ipairs(s.req.office_procedures) do
    for _, number in ipairs(redis.call('ZRANGE', s.O .. 'd:' .. day .. ':hold:' .. proc, 0, -1)) do
      local t = hash_table(ticket_key(s, day, number))
      if t then table.insert(held, t) end
    end
  end
  return held
end

end
