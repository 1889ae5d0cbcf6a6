-- Runs the operation asked for, after settling the business day; retried requests get their first answer.

local op = ops[req.op]
if not op then return fail('unknown_op', {op = req.op}) end
today = lib.start_day()
D = O .. 'd:' .. (req.day or today) .. ':'

-- A retried request (same idempotency key) gets the first answer and changes nothing.
if req.idem and req.idem ~= '' then
  local key = O .. 'idem:' .. req.idem
  local scope = req.op .. ':' .. req.office .. ':' .. (req.counter or req.number or req.booking or req.procedure or req.task or '') .. '|'
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
