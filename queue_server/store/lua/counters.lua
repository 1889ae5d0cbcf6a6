-- Counters: calling, serving, finishing, handing over; opening and closing.
do

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
  redis.call('ZREM', D .. 'bq:' .. t.procedure, t.number)
  local fields = {state = 'called', counter = c.id, called_at = now, recalls = 0}
  -- The visit's wait ends at its first call (recalls and calls after a hand-over move called_at).
  if not t.first_called_at then fields.first_called_at = now end
  set_ticket(t, fields)
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

function ops.call_next()
  local c, err = counter_ready_to_call()
  if err then return err end
  -- Among the served procedures, compare the queue heads and the booked tickets whose slot has
  -- started, rescored with the booked tier (see policy.choose_next).
  local best, best_score, best_seq
  local function consider(t, s)
    if not best or s < best_score or (s == best_score and t.seq < best_seq) then
      best, best_score, best_seq = t, s, t.seq
    end
  end
  for _, proc in ipairs(req.procedures) do
    local head = redis.call('ZRANGE', D .. 'q:' .. proc, 0, 0, 'WITHSCORES')
    if #head > 0 then
      consider(hash_table(D .. 't:' .. head[1]), tonumber(head[2]))
      for number, s in pairs(booked_started(proc)) do
        if s < best_score then consider(hash_table(D .. 't:' .. number), s) end
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
  if t.prep == 'pending' then return fail('card_not_ready', {number = t.number, task = t.task}) end
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
  lib.archive_visit(t)
  -- Post-issuance work follows the handover (tasks.lua); it is not bound to the day.
  if req.post_procedures and req.post_procedures[t.procedure] then
    lib.create_task({kind = 'post', procedure = t.procedure, ticket = t.day .. '|' .. t.number})
  end
  return release(c, t, 'ticket.done')
end

function ops.no_show()
  local c, t, err = counter_ticket('no_show')
  if err then return err end
  if (t.recalls or 0) < req.max_recalls then
    return fail('not_recalled_enough', {number = t.number, recalls = t.recalls or 0, needed = req.max_recalls})
  end
  set_ticket(t, {state = 'no_show', finished_at = now})
  lib.archive_visit(t)
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
  -- A booked ticket handed over goes on by the hand-over rule, not its booking (it left `bq` when called).
  local score = score_of(t.priority, order, returning == 1 and TIER_RETURNING or TIER_OTHER)
  -- The archive keeps each hand-over: where from and to, the configured reason category (never the
  -- free text) and the counter's call/start times, which the new queue's call will overwrite.
  local handovers = (t.handovers and t.handovers ~= '') and cjson.decode(t.handovers) or {}
  table.insert(handovers, {from = from, to = req.to, category = req.category, counter = c.id,
                           called_at = t.called_at, started_at = t.started_at, at = now})
  redis.call('HDEL', ticket_key(t.day, t.number), 'counter', 'called_at', 'started_at', 'returning')
  t.counter, t.called_at, t.started_at, t.returning = nil, nil, nil, nil
  local fields = {state = 'waiting', procedure = req.to, order = order, score = score, recalls = 0,
                  handed_over_from = from, hand_over_reason = req.reason or '',
                  handovers = cjson.encode(handovers)}
  if req.category then fields.hand_over_category = req.category end
  if returning == 1 then fields.returning = 1 end
  set_ticket(t, fields)
  redis.call('ZADD', D .. 'q:' .. req.to, score, t.number)
  return release(c, t, 'ticket.handed_over', {from = from})
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

end
