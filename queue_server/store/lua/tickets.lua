-- Visitors' tickets: issue and cancel.
do

-- A new waiting ticket of `procedure`, numbered from `number_format` by the day counter
-- `number_key` (default: the procedure's own), queued, its status token set; used by issue and by
-- check_in (checkin.lua). `fields` adds to the ticket (a booking's). Returns the ticket (token
-- still in it), or nil and the error answer.
function lib.new_ticket(s, procedure, priority, number_format, number_key, fields)
  local fmt = number_format
  number_key = number_key or (s.D .. 'n:' .. procedure)
  local n = redis.call('INCR', number_key)
  local value = fmt.first + n - 1
  if value > fmt.last then
    redis.call('DECR', number_key)
    return nil, fail('numbers_exhausted', {procedure = procedure, first = fmt.first, last = fmt.last})
  end
  local number = fmt.prefix .. string.format('%0' .. fmt.width .. 'd', value)
  local seq = redis.call('INCR', s.D .. 'seq')
  local t = {number = number, procedure = procedure, state = 'waiting', seq = seq, order = seq,
             priority = priority, lang = s.req.lang, day = s.today, issued_at = s.now, recalls = 0,
             score = score_of(s, priority, seq), token = s.req.token,
             -- the estimate the kiosk showed (minutes), for the reports' estimate accuracy
             estimate_at_issue = s.req.estimate_minutes}
  for k, v in pairs(fields or {}) do t[k] = v end
  -- A card to prepare first (tasks.lua): the ticket waits held, in its place, until it is ready.
  if not lib.hold_ticket(s, t) then redis.call('ZADD', s.D .. 'q:' .. t.procedure, t.score, number) end
  set_ticket(s, t, t)
  -- The days with tickets: the day's end closes out what each left open.
  redis.call('ZADD', s.O .. 'days', tonumber(s.today), s.today)
  -- The status token is `{office}.{random}`: its office's `O tok:{random}` finds the ticket.
  local random = string.match(s.req.token, '^[^.]+%.(.+)$') or error('a status token names its office')
  redis.call('SET', s.O .. 'tok:' .. random, s.today .. '|' .. number, 'EX', 259200)
  return t, nil
end

op('issue', function(s)
  if redis.call('SISMEMBER', s.O .. 'paused', s.req.procedure) == 1 then
    return fail('procedure_paused', {procedure = s.req.procedure})
  end
  -- the estimate the kiosk showed (minutes), for the reports' estimate accuracy
  local t, err = lib.new_ticket(s, s.req.procedure, s.req.priority, s.req.number_format, nil,
                                {estimate_at_issue = s.req.estimate_minutes})
  if err then return err end
  local ahead = ahead_of(s, t)
  t.token = nil  -- events are public: the status token never leaves in one
  local _, payload = emit(s, {type = 'ticket.issued', ticket = t})
  if t.task then lib.create_task(s, {id = t.task, kind = 'prepare', procedure = t.procedure, ticket = s.today .. '|' .. t.number}) end
  return answer_event({ok = true, ticket = t, token = s.req.token, ahead = ahead}, payload)
end)

op('cancel', function(s)
  local t = hash_table(s.D .. 't:' .. s.req.number)
  if not t then return fail('not_found', {what = 'ticket', number = s.req.number}) end
  local bad = check_state('cancel', t)
  if bad then return bad end
  redis.call('ZREM', s.D .. 'q:' .. t.procedure, t.number)
  redis.call('ZREM', s.D .. 'bq:' .. t.procedure, t.number)
  -- A visitor leaving while their card is prepared: the preparation is no longer needed today.
  if redis.call('ZREM', s.D .. 'hold:' .. t.procedure, t.number) == 1 then lib.cancel_task(s, t.task, 'ticket_cancelled') end
  local c = nil
  if t.state == 'called' and t.counter and t.counter ~= '' then
    c = load_counter(s, t.counter)
    if c.ticket == t.day .. '|' .. t.number then set_counter(s, c, {ticket = '', since = s.now}) end
  end
  set_ticket(s, t, {state = 'cancelled', finished_at = s.now})
  lib.archive_visit(s, t)
  local ev = emit(s, {type = 'ticket.cancelled', ticket = t, counter = c and public_counter(c) or nil})
  return cjson.encode({ok = true, ticket = t, event = ev})
end)

end
