-- Visitors' tickets: issue and cancel.
do

-- A new waiting ticket of `procedure`, numbered from `number_format` by the day counter
-- `number_key` (default: the procedure's own), queued, its status token set; used by issue and by
-- check_in (checkin.lua). `fields` adds to the ticket (a booking's). Returns the ticket (token
-- still in it), or nil and the error answer.
function lib.new_ticket(procedure, priority, number_format, number_key, fields)
  local fmt = number_format
  number_key = number_key or (D .. 'n:' .. procedure)
  local n = redis.call('INCR', number_key)
  local value = fmt.first + n - 1
  if value > fmt.last then
    redis.call('DECR', number_key)
    return nil, fail('numbers_exhausted', {procedure = procedure, first = fmt.first, last = fmt.last})
  end
  local number = fmt.prefix .. string.format('%0' .. fmt.width .. 'd', value)
  local seq = redis.call('INCR', D .. 'seq')
  local t = {number = number, procedure = procedure, state = 'waiting', seq = seq, order = seq,
             priority = priority, lang = req.lang, day = today, issued_at = now, recalls = 0,
             score = score_of(priority, seq), token = req.token}
  for k, v in pairs(fields or {}) do t[k] = v end
  -- A card to prepare first (tasks.lua): the ticket waits held, in its place, until it is ready.
  if not lib.hold_ticket(t) then redis.call('ZADD', D .. 'q:' .. t.procedure, t.score, number) end
  set_ticket(t, t)
  -- The days with tickets: the day's end closes out what each left open.
  redis.call('ZADD', O .. 'days', tonumber(today), today)
  redis.call('SET', P .. 'tok:' .. req.token, req.office .. '|' .. today .. '|' .. number, 'EX', 259200)
  return t, nil
end

function ops.issue()
  if redis.call('SISMEMBER', O .. 'paused', req.procedure) == 1 then
    return fail('procedure_paused', {procedure = req.procedure})
  end
  -- the estimate the kiosk showed (minutes), for the reports' estimate accuracy
  local t, err = lib.new_ticket(req.procedure, req.priority, req.number_format, nil,
                                {estimate_at_issue = req.estimate_minutes})
  if err then return err end
  local ahead = ahead_of(t)
  t.token = nil  -- events are public: the status token never leaves in one
  local ev = emit({type = 'ticket.issued', ticket = t})
  if t.task then lib.create_task({id = t.task, kind = 'prepare', procedure = t.procedure, ticket = today .. '|' .. t.number}) end
  return cjson.encode({ok = true, ticket = t, token = req.token, ahead = ahead, event = ev})
end

function ops.cancel()
  local t = hash_table(D .. 't:' .. req.number)
  if not t then return fail('not_found', {what = 'ticket', number = req.number}) end
  local bad = check_state('cancel', t)
  if bad then return bad end
  redis.call('ZREM', D .. 'q:' .. t.procedure, t.number)
  redis.call('ZREM', D .. 'bq:' .. t.procedure, t.number)
  -- A visitor leaving while their card is prepared: the preparation is no longer needed today.
  if redis.call('ZREM', D .. 'hold:' .. t.procedure, t.number) == 1 then lib.cancel_task(t.task, 'ticket_cancelled') end
  local c = nil
  if t.state == 'called' and t.counter and t.counter ~= '' then
    c = load_counter(t.counter)
    if c.ticket == t.day .. '|' .. t.number then set_counter(c, {ticket = '', since = now}) end
  end
  set_ticket(t, {state = 'cancelled', finished_at = now})
  lib.archive_visit(t)
  local ev = emit({type = 'ticket.cancelled', ticket = t, counter = c and public_counter(c) or nil})
  return cjson.encode({ok = true, ticket = t, event = ev})
end

end
