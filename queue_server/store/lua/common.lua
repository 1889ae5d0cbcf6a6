-- Every state change of madoguchi as one atomic step: the shared part of the script.
--
-- The script is this file followed by one module per area (day, tickets, counters, office, ...)
-- and main.lua, joined by store/scripts.py in the order it lists. Each area module is a
-- `do ... end` block adding its operations to `ops` (and helpers other areas need to `lib`),
-- so its local helpers stay its own.
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
-- Every key of an office shares the hash tag {office}: one step touches one office's keys only,
-- so the office can live on one node of a Valkey Cluster.
local O = P .. 'o:{' .. req.office .. '}:'
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

local function set_ticket(t, fields) set_fields(ticket_key(t.day, t.number), t, fields) end
local function set_counter(c, fields) set_fields(counter_key(c.id), c, fields) end

local function ahead_of(t)
  return redis.call('ZCOUNT', D .. 'q:' .. t.procedure, '-inf', '(' .. t.score)
end


local ops = {}  -- operation name → function; main.lua runs the one asked for
local lib = {}  -- helpers one area module lends another
