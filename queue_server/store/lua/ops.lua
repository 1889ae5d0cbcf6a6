-- Every state change of madoguchi as one atomic step.
--
-- ARGV[1] is a JSON request: {op, prefix, office, today, day, now, office_procedures,
-- office_counters, idem, actor, ...}. The result is a JSON string: {"ok": true, ...} or
-- {"err": CODE, ...details}; the Python adapter turns errors into domain exceptions. Each change
-- appends one event to the office's stream (the day's history and audit trail) and publishes it
-- as a wake-up for the other server processes.
--
-- Every step first settles the business day (start_day): the first step of a new day closes out
-- what the earlier days left open, so whichever process or step comes first does it, once.
--
-- The calling policy mirrors queue_server/domain/policy.py; tests check that they agree.

local req = cjson.decode(ARGV[1])
local P = req.prefix
local O = P .. 'o:' .. req.office .. ':'
local now = req.now
local today  -- the office's business day, set by start_day before any step runs
local D      -- the key prefix of the day the step works on: req.day (a ticket's own day) or today

local NUMERIC = {seq = true, order = true, priority = true, issued_at = true, called_at = true,
                 started_at = true, finished_at = true, recalls = true, score = true, returning = true}
local ALLOWED_FROM = {
  call = {waiting = true}, recall = {called = true}, start = {called = true},
  finish = {serving = true}, no_show = {called = true},
  cancel = {waiting = true, called = true}, hand_over = {called = true, serving = true},
  expire = {waiting = true, called = true, serving = true},
}

local function fail(code, details)
  details = details or {}
  details.err = code
  return cjson.encode(details)
end

local function hash_table(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local t = {}
  for i = 1, #flat, 2 do
    local k, v = flat[i], flat[i + 1]
    -- The status token is the visitor's secret: it never leaves in an event or a snapshot.
    if NUMERIC[k] then t[k] = tonumber(v) elseif k ~= 'token' then t[k] = v end
  end
  return t
end

local function ticket_key(day, number) return O .. 'd:' .. day .. ':t:' .. number end
local function counter_key(id) return O .. 'c:' .. id end

local function load_counter(id)
  local c = hash_table(counter_key(id)) or {}
  c.id = id
  c.status = c.status or 'closed'
  return c
end

-- A counter's current ticket is stored as "day|number" so it survives the day's end.
local function current_ticket(counter)
  if not counter.ticket or counter.ticket == '' then return nil end
  local sep = string.find(counter.ticket, '|', 1, true)
  local day, number = string.sub(counter.ticket, 1, sep - 1), string.sub(counter.ticket, sep + 1)
  return hash_table(ticket_key(day, number))
end

local function emit(ev)
  local seq = redis.call('INCR', O .. 'evseq')
  ev.seq = seq
  ev.office = req.office
  ev.day = today
  ev.at = now
  ev.actor = req.actor
  local payload = cjson.encode(ev)
  redis.call('XADD', O .. 'events', 'MAXLEN', '~', 200000, seq .. '-0', 'e', payload)
  redis.call('PUBLISH', P .. 'events', payload)
  return ev
end

local function public_counter(c)
  return {id = c.id, status = c.status, ticket = c.ticket ~= '' and c.ticket or nil,
          since = tonumber(c.since), staff = c.staff}
end

local function check_state(op, t)
  if not ALLOWED_FROM[op][t.state] then
    return fail('bad_state', {op = op, number = t.number, state = t.state})
  end
  return nil
end

-- policy.queue_score: a returning visitor (handed over, place kept) comes before every ticket of
-- its priority class not yet served; priority classes are two tiers apart.
local TIER = 1000000000
local function score_of(priority, order, returning)
  local tier = (returning == 1) and 0 or TIER
  if req.calling_order == 'waited' then return tier + order end
  return (9 - priority) * 2 * TIER + tier + order
end

local function set_ticket(t, fields)
  local key = ticket_key(t.day, t.number)
  local flat = {}
  for k, v in pairs(fields) do
    t[k] = v
    table.insert(flat, k)
    table.insert(flat, tostring(v))
  end
  redis.call('HSET', key, unpack(flat))
end

local function set_counter(c, fields)
  local flat = {}
  for k, v in pairs(fields) do
    c[k] = v
    table.insert(flat, k)
    table.insert(flat, tostring(v))
  end
  redis.call('HSET', counter_key(c.id), unpack(flat))
end

local function ahead_of(t)
  return redis.call('ZCOUNT', D .. 'q:' .. t.procedure, '-inf', '(' .. t.score)
end

-- The counter must be open and free to call; returns counter or an error string.
local function counter_ready_to_call()
  local c = load_counter(req.counter)
  if c.status ~= 'open' then return nil, fail('counter_not_open', {counter = c.id, status = c.status}) end
  local cur = current_ticket(c)
  if cur and (cur.state == 'called' or cur.state == 'serving') then
    return nil, fail('counter_busy', {counter = c.id, number = cur.number, state = cur.state})
  end
  return c, nil
end

local function do_call(c, t, event_type)
  redis.call('ZREM', D .. 'q:' .. t.procedure, t.number)
  set_ticket(t, {state = 'called', counter = c.id, called_at = now, recalls = 0})
  set_counter(c, {ticket = t.day .. '|' .. t.number, since = now, staff = req.actor or ''})
  local call = {number = t.number, day = t.day, counter = c.id, procedure = t.procedure, lang = t.lang, at = now,
                recall = false}
  redis.call('LPUSH', D .. 'recent', cjson.encode(call))
  redis.call('LTRIM', D .. 'recent', 0, 19)
  local ev = emit({type = event_type, ticket = t, counter = public_counter(c)})
  return cjson.encode({ok = true, ticket = t, counter = public_counter(c), event = ev})
end

-- The counter's current ticket, checked for `op`; returns counter, ticket or an error string.
local function counter_ticket(op)
  local c = load_counter(req.counter)
  local t = current_ticket(c)
  if not t or (t.state ~= 'called' and t.state ~= 'serving') then
    return nil, nil, fail('no_ticket', {counter = c.id, op = op})
  end
  local bad = check_state(op, t)
  if bad then return nil, nil, bad end
  return c, t, nil
end

local function release(c, t, event_type, extra)
  set_counter(c, {ticket = '', since = now})
  local ev = {type = event_type, ticket = t, counter = public_counter(c)}
  if extra then for k, v in pairs(extra) do ev[k] = v end end
  ev = emit(ev)
  return cjson.encode({ok = true, ticket = t, counter = public_counter(c), event = ev})
end

-- The day's end (see ARCHITECTURE.md "The business day"): every ticket of `day` still waiting,
-- called or being served becomes `expired` (a final state the visitor's page shows), its queue is
-- emptied and a counter holding it is freed; one `day.closed` event tells every process.
local function close_day(day)
  local DD = O .. 'd:' .. day .. ':'
  local expired, freed = {}, {}
  local function expire(t)
    if not t or not ALLOWED_FROM.expire[t.state] then return end
    set_ticket(t, {state = 'expired', expired_from = t.state, finished_at = now})
    table.insert(expired, t.number)
  end
  for _, proc in ipairs(req.office_procedures) do
    for _, number in ipairs(redis.call('ZRANGE', DD .. 'q:' .. proc, 0, -1)) do
      expire(hash_table(DD .. 't:' .. number))
    end
    redis.call('DEL', DD .. 'q:' .. proc)
  end
  local held = day .. '|'
  for _, id in ipairs(req.office_counters) do
    local c = load_counter(id)
    if c.ticket and string.sub(c.ticket, 1, #held) == held then
      expire(current_ticket(c))
      set_counter(c, {ticket = '', since = now})
      table.insert(freed, public_counter(c))
    end
  end
  redis.call('ZREM', O .. 'days', day)
  emit({type = 'day.closed', closed = day, expired = #expired > 0 and expired or nil,
        counters = #freed > 0 and freed or nil})
end

-- The office's business day: `O today` only moves forward, so a step computed just before
-- midnight that runs after another process began the new day (or one on a clock set back) works
-- on the current day. Moving it forward closes every earlier day that had tickets (`O days`).
local function start_day()
  local current = redis.call('GET', O .. 'today')
  if current and current >= req.today then return current end
  redis.call('SET', O .. 'today', req.today)
  today = req.today
  if not current then
    -- First step with day-keeping (a new office, or data from before it): a counter may still hold
    -- a ticket of an earlier day, which must be closed out like the rest.
    for _, id in ipairs(req.office_counters) do
      local c = load_counter(id)
      local sep = c.ticket and string.find(c.ticket, '|', 1, true)
      if sep then
        local day = string.sub(c.ticket, 1, sep - 1)
        if day < today then redis.call('ZADD', O .. 'days', tonumber(day), day) end
      end
    end
  end
  for _, day in ipairs(redis.call('ZRANGEBYSCORE', O .. 'days', '-inf', '(' .. tonumber(today))) do
    close_day(day)
  end
  return today
end

local ops = {}

function ops.issue()
  if redis.call('SISMEMBER', O .. 'paused', req.procedure) == 1 then
    return fail('procedure_paused', {procedure = req.procedure})
  end
  local fmt = req.number_format
  local n = redis.call('INCR', D .. 'n:' .. req.procedure)
  local value = fmt.first + n - 1
  if value > fmt.last then
    redis.call('DECR', D .. 'n:' .. req.procedure)
    return fail('numbers_exhausted', {procedure = req.procedure, first = fmt.first, last = fmt.last})
  end
  local number = fmt.prefix .. string.format('%0' .. fmt.width .. 'd', value)
  local seq = redis.call('INCR', D .. 'seq')
  local t = {number = number, procedure = req.procedure, state = 'waiting', seq = seq, order = seq,
             priority = req.priority, lang = req.lang, day = today, issued_at = now, recalls = 0,
             score = score_of(req.priority, seq), token = req.token}
  set_ticket(t, t)
  redis.call('ZADD', D .. 'q:' .. t.procedure, t.score, number)
  -- The days with tickets: the day's end closes out what each left open.
  redis.call('ZADD', O .. 'days', tonumber(today), today)
  redis.call('SET', P .. 'tok:' .. req.token, req.office .. '|' .. today .. '|' .. number, 'EX', 259200)
  local ahead = ahead_of(t)
  t.token = nil  -- events are public: the status token never leaves in one
  local ev = emit({type = 'ticket.issued', ticket = t})
  return cjson.encode({ok = true, ticket = t, token = req.token, ahead = ahead, event = ev})
end

function ops.call_next()
  local c, err = counter_ready_to_call()
  if err then return err end
  -- Among the served procedures, compare the queue heads (see policy.choose_next).
  local best, best_score, best_seq
  for _, proc in ipairs(req.procedures) do
    local head = redis.call('ZRANGE', D .. 'q:' .. proc, 0, 0, 'WITHSCORES')
    if #head > 0 then
      local t = hash_table(D .. 't:' .. head[1])
      local s = tonumber(head[2])
      if not best or s < best_score or (s == best_score and t.seq < best_seq) then
        best, best_score, best_seq = t, s, t.seq
      end
      if req.calling_order == 'counter_procedure_order' then break end
    end
  end
  if not best then return fail('queue_empty', {counter = c.id}) end
  return do_call(c, best, 'ticket.called')
end

function ops.call_number()
  local c, err = counter_ready_to_call()
  if err then return err end
  local t = hash_table(D .. 't:' .. req.number)
  if not t then return fail('not_found', {what = 'ticket', number = req.number}) end
  local bad = check_state('call', t)
  if bad then return bad end
  local allowed = false
  for _, proc in ipairs(req.procedures) do if proc == t.procedure then allowed = true end end
  if not allowed then return fail('procedure_not_allowed', {number = t.number, procedure = t.procedure, counter = c.id}) end
  return do_call(c, t, 'ticket.called')
end

function ops.recall()
  local c, t, err = counter_ticket('recall')
  if err then return err end
  set_ticket(t, {recalls = (t.recalls or 0) + 1, called_at = now})
  local call = {number = t.number, day = t.day, counter = c.id, procedure = t.procedure, lang = t.lang, at = now,
                recall = true}
  redis.call('LPUSH', D .. 'recent', cjson.encode(call))
  redis.call('LTRIM', D .. 'recent', 0, 19)
  local ev = emit({type = 'ticket.recalled', ticket = t, counter = public_counter(c)})
  return cjson.encode({ok = true, ticket = t, counter = public_counter(c), event = ev})
end

function ops.start()
  local c, t, err = counter_ticket('start')
  if err then return err end
  set_ticket(t, {state = 'serving', started_at = now})
  local ev = emit({type = 'ticket.serving', ticket = t, counter = public_counter(c)})
  return cjson.encode({ok = true, ticket = t, counter = public_counter(c), event = ev})
end

function ops.finish()
  local c, t, err = counter_ticket('finish')
  if err then return err end
  set_ticket(t, {state = 'done', finished_at = now})
  -- Measured service times feed the wait estimator; kept across days, newest first.
  redis.call('LPUSH', O .. 'services', cjson.encode({procedure = t.procedure, counter = c.id, day = t.day,
    called_at = t.called_at, started_at = t.started_at, finished_at = now}))
  redis.call('LTRIM', O .. 'services', 0, 19999)
  return release(c, t, 'ticket.done')
end

function ops.no_show()
  local c, t, err = counter_ticket('no_show')
  if err then return err end
  if (t.recalls or 0) < req.max_recalls then
    return fail('not_recalled_enough', {number = t.number, recalls = t.recalls or 0, needed = req.max_recalls})
  end
  set_ticket(t, {state = 'no_show', finished_at = now})
  return release(c, t, 'ticket.no_show')
end

function ops.hand_over()
  local c, t, err = counter_ticket('hand_over')
  if err then return err end
  local from = t.procedure
  local order = t.order
  -- Place kept: the visitor has waited once already and is called before those not yet served.
  -- To the back of the line: a fresh place, as a new ticket (see policy.py).
  local returning = 1
  if req.keep_place == false then order, returning = redis.call('INCR', D .. 'seq'), 0 end
  local score = score_of(t.priority, order, returning)
  redis.call('HDEL', ticket_key(t.day, t.number), 'counter', 'called_at', 'started_at', 'returning')
  t.counter, t.called_at, t.started_at, t.returning = nil, nil, nil, nil
  local fields = {state = 'waiting', procedure = req.to, order = order, score = score, recalls = 0,
                  handed_over_from = from, hand_over_reason = req.reason or ''}
  if returning == 1 then fields.returning = 1 end
  set_ticket(t, fields)
  redis.call('ZADD', D .. 'q:' .. req.to, score, t.number)
  return release(c, t, 'ticket.handed_over', {from = from})
end

function ops.cancel()
  local t = hash_table(D .. 't:' .. req.number)
  if not t then return fail('not_found', {what = 'ticket', number = req.number}) end
  local bad = check_state('cancel', t)
  if bad then return bad end
  redis.call('ZREM', D .. 'q:' .. t.procedure, t.number)
  local c = nil
  if t.state == 'called' and t.counter and t.counter ~= '' then
    c = load_counter(t.counter)
    if c.ticket == t.day .. '|' .. t.number then set_counter(c, {ticket = '', since = now}) end
  end
  set_ticket(t, {state = 'cancelled', finished_at = now})
  local ev = emit({type = 'ticket.cancelled', ticket = t, counter = c and public_counter(c) or nil})
  return cjson.encode({ok = true, ticket = t, event = ev})
end

function ops.counter_status()
  local c = load_counter(req.counter)
  local cur = current_ticket(c)
  if req.status ~= 'open' and cur and (cur.state == 'called' or cur.state == 'serving') then
    return fail('counter_busy', {counter = c.id, number = cur.number, state = cur.state})
  end
  if c.status == req.status then
    return cjson.encode({ok = true, counter = public_counter(c), unchanged = true})
  end
  set_counter(c, {status = req.status, since = now, staff = req.actor or ''})
  local ev = emit({type = 'counter.updated', counter = public_counter(c)})
  return cjson.encode({ok = true, counter = public_counter(c), event = ev})
end

function ops.procedure_status()
  if req.paused then redis.call('SADD', O .. 'paused', req.procedure)
  else redis.call('SREM', O .. 'paused', req.procedure) end
  local ev = emit({type = 'procedure.updated', procedure = req.procedure, paused = req.paused})
  return cjson.encode({ok = true, event = ev})
end

function ops.notice()
  redis.call('SET', O .. 'notice', req.text)
  local ev = emit({type = 'notice.updated', notice = req.text})
  return cjson.encode({ok = true, event = ev})
end

-- The office's live state and the sequence number of its last event, read in one step.
function ops.snapshot()
  local waiting = {}
  for _, proc in ipairs(req.office_procedures) do
    for _, number in ipairs(redis.call('ZRANGE', D .. 'q:' .. proc, 0, -1)) do
      table.insert(waiting, hash_table(D .. 't:' .. number))
    end
  end
  local counters, serving = {}, {}
  for _, id in ipairs(req.office_counters) do
    local c = load_counter(id)
    local t = current_ticket(c)
    if t and (t.state == 'called' or t.state == 'serving') then
      table.insert(serving, t)
    end
    table.insert(counters, public_counter(c))
  end
  local recent = {}
  for _, raw in ipairs(redis.call('LRANGE', D .. 'recent', 0, 19)) do table.insert(recent, cjson.decode(raw)) end
  local paused = redis.call('SMEMBERS', O .. 'paused')
  return cjson.encode({ok = true, seq = tonumber(redis.call('GET', O .. 'evseq') or '0'), day = today,
    waiting = waiting, active = serving, counters = counters, recent = recent, paused = paused,
    notice = redis.call('GET', O .. 'notice') or ''})
end

-- Only the day's change itself: the hub asks at midnight (the first step of the day would do it anyway).
function ops.start_day()
  return cjson.encode({ok = true, today = today})
end

local op = ops[req.op]
if not op then return fail('unknown_op', {op = req.op}) end
today = start_day()
D = O .. 'd:' .. (req.day or today) .. ':'

-- A retried request (same idempotency key) gets the first answer and changes nothing.
if req.idem and req.idem ~= '' then
  local key = P .. 'idem:' .. req.idem
  local scope = req.op .. ':' .. req.office .. ':' .. (req.counter or req.number or req.procedure or '') .. '|'
  local stored = redis.call('GET', key)
  if stored then
    if string.sub(stored, 1, #scope) ~= scope then return fail('idempotency_key_reused', {op = req.op}) end
    return string.sub(stored, #scope + 1)
  end
  local result = op()
  if string.find(result, '"ok":true', 1, true) then redis.call('SET', key, scope .. result, 'EX', 86400) end
  return result
end
return op()
