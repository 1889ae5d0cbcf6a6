-- The library's functions: one per operation, `mg_{op}`, each run the same way (its context, the
-- business day, idempotency); and `mg_version`, the library's version (scripts.py puts VERSION first).
do

-- KEYS[1] is the office's `O evseq` (the key that routes the call on a cluster); every other key
-- the step touches is computed from O, so it is in the same slot.
local ROUTING_KEY = '^((.*)o:{([^{}]+)}:)evseq$'

local function context(keys, args)
  local O, P, office = string.match(keys[1] or '', ROUTING_KEY)
  if not O then return nil end
  local req = cjson.decode(args[1])
  return {req = req, O = O, P = P, office = office, now = req.now}
end

-- The office's business day: `O today` only moves forward (day.lua). A step whose request is of a
-- later day than the office's is answered `day_not_started`: the adapter runs mg_start_day (with
-- the office's procedures and counters, which closing out a day needs) and sends the step again.
local function business_day(s, name)
  if name == 'start_day' then return lib.start_day(s) end
  local current = redis.call('GET', s.O .. 'today')
  if current and current >= s.req.today then return current end
  return nil
end

-- A retried request (same idempotency key) gets the first answer and changes nothing.
local function once(s, name, step)
  local req = s.req
  local key = s.O .. 'idem:' .. req.idem
  local scope = name .. ':' .. s.office .. ':' .. (req.counter or req.number or req.booking or req.procedure or req.task or '') .. '|'
  local stored = redis.call('GET', key)
  if stored then
    if string.sub(stored, 1, #scope) ~= scope then return fail('idempotency_key_reused', {op = name}) end
    return string.sub(stored, #scope + 1)
  end
  local result = step(s)
  if string.find(result, '"ok":true', 1, true) then redis.call('SET', key, scope .. result, 'EX', 86400) end
  return result
end

local function run(name, step, keys, args)
  local s = context(keys, args)
  if not s then return fail('bad_routing_key', {op = name}) end
  s.today = business_day(s, name)
  if not s.today then return fail('day_not_started', {op = name}) end
  s.D = s.O .. 'd:' .. (s.req.day or s.today) .. ':'
  if s.req.idem and s.req.idem ~= '' then return once(s, name, step) end
  return step(s)
end

for i = 1, #op_names do
  local name = op_names[i]
  local step = ops[name]
  redis.register_function{function_name = 'mg_' .. name, flags = op_flags[name],
                           callback = function(keys, args) return run(name, step, keys, args) end}
end
redis.register_function{function_name = 'mg_version', callback = function() return VERSION end, flags = {'no-writes'}}

end
