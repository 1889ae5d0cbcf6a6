-- Every state change of madoguchi as one atomic step: the shared part of the `madoguchi` library.
--
-- The library is this file followed by one module per area (day, tickets, counters, office, ...)
-- and main.lua, joined by store/scripts.py in the order it lists and loaded once with FUNCTION LOAD.
-- Each area module is a `do ... end` block adding its operations to `ops` (and helpers other areas
-- need to `lib`), so its local helpers stay its own; main.lua registers one function per operation
-- (`mg_{op}`).
--
-- The library is loaded once and its functions are called many times: the chunk itself holds only
-- constants and functions. Everything of one call lives in its context `s`, passed first to every
-- helper and operation that needs it:
--   s.req    the JSON request (ARGV[1]): {today, now, day, idem, actor, ...the operation's inputs}
--   s.O      the office's key prefix `P o:{office}:`, from KEYS[1] (`O evseq`); s.P and s.office too
--   s.now    the request's time (ms); s.today the office's business day
--   s.D      the key prefix of the day the step works on: req.day (a ticket's own day) or today
-- The result is a JSON string: {"ok": true, ...} or {"err": CODE, ...details}; the Python adapter
-- turns errors into domain exceptions. Each change appends one event to the office's stream (the
-- day's history and audit trail) and announces it on the office's sharded channel `O events` as a
-- wake-up for the other server processes.
--
-- Every step works on the office's business day (`O today`): the first step of a new day is
-- answered `day_not_started`, and the adapter then runs `mg_start_day` with the office's
-- procedures and counters, which closes out what the earlier days left open (day.lua), once.
--
-- Every key of an office shares the hash tag {office}: one step touches one office's keys only,
-- all under s.O, so the office can live on one node of a Valkey Cluster.
--
-- The calling policy mirrors queue_server/domain/policy.py; tests check that they agree.

local NUMERIC = {seq = true, order = true, priority = true, issued_at = true, called_at = true,
                 started_at = true, finished_at = true, recalls = true, score = true, returning = true,
                 slot_start = true, booked = true, late = true}
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

-- A hash as a table, the fields `numeric` names as numbers; nil when there is no such key.
local function read_hash(key, numeric)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local t = {}
  for i = 1, #flat, 2 do
    local k, v = flat[i], flat[i + 1]
    if numeric[k] then t[k] = tonumber(v) else t[k] = v end
  end
  return t
end

local function hash_table(key)
  local t = read_hash(key, NUMERIC)
  -- The status token is the visitor's secret: it never leaves in an event or a snapshot.
  if t then t.token = nil end
  return t
end

local function ticket_key(s, day, number) return s.O .. 'd:' .. day .. ':t:' .. number end
local function counter_key(s, id) return s.O .. 'c:' .. id end

local function load_counter(s, id)
  local c = hash_table(counter_key(s, id)) or {}
  c.id = id
  c.status = c.status or 'closed'
  return c
end

-- A counter's current ticket is stored as "day|number" so it survives the day's end.
local function current_ticket(s, counter)
  if not counter.ticket or counter.ticket == '' then return nil end
  local sep = string.find(counter.ticket, '|', 1, true)
  local day, number = string.sub(counter.ticket, 1, sep - 1), string.sub(counter.ticket, sep + 1)
  return hash_table(ticket_key(s, day, number))
end

-- Only the number and state of the counter's current ticket (nil: none), which say whether it is busy.
local function current_state(s, counter)
  if not counter.ticket or counter.ticket == '' then return nil end
  local sep = string.find(counter.ticket, '|', 1, true)
  local number = string.sub(counter.ticket, sep + 1)
  local state = redis.call('HGET', ticket_key(s, string.sub(counter.ticket, 1, sep - 1), number), 'state')
  if not state then return nil end
  return {number = number, state = state}
end

local function emit(s, ev)
  local seq = redis.call('INCR', s.O .. 'evseq')
  ev.seq = seq
  ev.office = s.office
  ev.day = s.today
  ev.at = s.now
  ev.actor = s.req.actor
  local payload = cjson.encode(ev)
  redis.call('XADD', s.O .. 'events', 'MAXLEN', '~', 200000, seq .. '-0', 'e', payload)
  redis.call('SPUBLISH', s.O .. 'events', payload)
  return ev, payload
end

-- A step's answer: `fields` (a table with `ok`) and the event `emit` announced, spliced in as the
-- JSON emit already wrote (encoding the event again would cost as much as the first time).
local function answer_event(fields, payload)
  return string.sub(cjson.encode(fields), 1, -2) .. ',"event":' .. payload .. '}'
end

local function public_counter(c)
  local out = {id = c.id, status = c.status, ticket = c.ticket ~= '' and c.ticket or nil,
               since = tonumber(c.since), staff = c.staff}
  -- The procedures the supervisor set for today (supervisor.lua); staff views only.
  if c.procedures and c.procedures ~= '' then out.procedures, out.procedures_day = cjson.decode(c.procedures), c.procedures_day end
  return out
end

local function check_state(op, t)
  if not ALLOWED_FROM[op][t.state] then
    return fail('bad_state', {op = op, number = t.number, state = t.state})
  end
  return nil
end

-- policy.queue_score: inside a priority class, tier 0 (returning: handed over, place kept), tier 1
-- (booked, slot started), tier 2 (everybody else), tier 3 (booked, kept for a slot still to start:
-- booked_before_slot = "keep_for_slot"), then time in line. Stored scores use tier 0, 2 or 3; a
-- booked ticket's tier 1 is computed when its precedence has begun (`D bq:{procedure}`).
local TIER = 1000000000
local TIER_RETURNING, TIER_BOOKED, TIER_OTHER, TIER_KEPT = 0, 1, 2, 3
local function score_of(s, priority, order, tier)
  tier = tier or TIER_OTHER
  local calling_order = s.req.calling_order or error('this step needs calling_order in its request')
  if calling_order == 'waited' then return tier * TIER + order end
  return (9 - priority) * 4 * TIER + tier * TIER + order
end

-- LPUSH `value` to the list `key`, kept to its newest `keep` (trimmed only once it is longer).
local function push_capped(key, value, keep)
  if redis.call('LPUSH', key, value) > keep then redis.call('LTRIM', key, 0, keep - 1) end
end

-- Set `fields` on the table `obj` and on the hash `key` alike.
local function set_fields(key, obj, fields)
  local flat = {}
  for k, v in pairs(fields) do
    obj[k] = v
    table.insert(flat, k)
    table.insert(flat, tostring(v))
  end
  redis.call('HSET', key, unpack(flat))
end

local function set_ticket(s, t, fields) set_fields(ticket_key(s, t.day, t.number), t, fields) end
local function set_counter(s, c, fields) set_fields(counter_key(s, c.id), c, fields) end

-- The booked tickets of a queue whose precedence has begun (their `D bq:` score, the slot start or
-- the check-in, is due) and that are in the queue now: number → the score call-next gives them.
local function booked_started(s, procedure)
  local scores = {}
  for _, number in ipairs(redis.call('ZRANGEBYSCORE', s.D .. 'bq:' .. procedure, '-inf', s.now)) do
    -- A ticket held out of the queue (its card not prepared) is not callable, booked or not.
    if redis.call('ZSCORE', s.D .. 'q:' .. procedure, number) then
      local t = hash_table(s.D .. 't:' .. number)
      scores[number] = score_of(s, t.priority, t.order, TIER_BOOKED)
    end
  end
  return scores
end

-- policy.people_ahead: how many in t's queue call-next would take before it now.
local function ahead_of(s, t)
  local q = s.D .. 'q:' .. t.procedure
  local booked = booked_started(s, t.procedure)
  local mine = booked[t.number] or t.score
  -- Stored scores are never below the effective ones: count those below mine, then the booked
  -- tickets whose stored score is not but whose tier-1 score is.
  local ahead = redis.call('ZCOUNT', q, '-inf', '(' .. mine)
  for number, score in pairs(booked) do
    if number ~= t.number and score < mine and tonumber(redis.call('ZSCORE', q, number)) >= mine then
      ahead = ahead + 1
    end
  end
  -- Held tickets (card being prepared) ahead count too: they are people in line before this one.
  return ahead + redis.call('ZCOUNT', s.D .. 'hold:' .. t.procedure, '-inf', '(' .. mine)
end


-- The operations, filled in once as the library loads: `op(name, function(s) ... end)` in each area.
-- main.lua registers each as the function `mg_{name}` (while loading, Lua's globals such as `pairs`
-- are out of reach, so the names are kept in a list as well).
local ops = {}       -- operation name → function(s)
local op_names = {}  -- the names, in the order the areas define them
local op_flags = {}  -- name → the function's flags: {'no-writes'} for a step that truly writes nothing
local function op(name, fn, flags)
  ops[name] = fn
  op_names[#op_names + 1] = name
  op_flags[name] = flags
end
local lib = {}  -- helpers one area module lends another
