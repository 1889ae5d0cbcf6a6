-- Counters: calling, serving, finishing, handing over; opening and closing.
do

-- The counter must be open and free to call; returns counter or an error string.
local function counter_ready_to_call(s)
  local c = load_counter(s, s.req.counter)
  if c.status ~= 'open' then return nil, fail('counter_not_open', {counter = c.id, status = c.status}) end
  local cur = current_state(s, c)
  if cur and (cur.state == 'called' or cur.state == 'serving') then
    return nil, fail('counter_busy', {counter = c.id, number = cur.number, state = cur.state})
  end
  return c, nil
end

-- The call (or recall) in the day's recent calls, the newest 20.
local function push_call(s, c, t, recall)
  push_capped(s.D .. 'recent', cjson.encode({number = t.number, day = t.day, counter = c.id, procedure = t.procedure,
                                             lang = t.lang, at = s.now, recall = recall}), 20)
end

-- Emit `ev`, ticket t's event at counter c, and answer with the ticket, the counter and the event.
local function announce(s, c, t, ev)
  local counter = public_counter(c)
  ev.ticket, ev.counter = t, counter
  local _, payload = emit(s, ev)
  return answer_event({ok = true, ticket = t, counter = counter}, payload)
end

local function do_call(s, c, t, event_type)
  redis.call('ZREM', s.D .. 'q:' .. t.procedure, t.number)
  -- Only an on-time booked ticket is in `D bq:` (checkin.lua).
  if t.booked == 1 then redis.call('ZREM', s.D .. 'bq:' .. t.procedure, t.number) end
  local fields = {state = 'called', counter = c.id, called_at = s.now, recalls = 0}
  -- The visit's wait ends at its first call (recalls and calls after a hand-over move called_at).
  if not t.first_called_at then fields.first_called_at = s.now end
  set_ticket(s, t, fields)
  set_counter(s, c, {ticket = t.day .. '|' .. t.number, since = s.now, staff = s.req.actor or ''})
  push_call(s, c, t, false)
  return announce(s, c, t, {type = event_type})
end

-- The counter's current ticket, checked for `op`; returns counter, ticket or an error string.
local function counter_ticket(s, op)
  local c = load_counter(s, s.req.counter)
  local t = current_ticket(s, c)
  if not t or (t.state ~= 'called' and t.state ~= 'serving') then
    return nil, nil, fail('no_ticket', {counter = c.id, op = op})
  end
  local bad = check_state(op, t)
  if bad then return nil, nil, bad end
  return c, t, nil
end

local function release(s, c, t, event_type, extra)
  set_counter(s, c, {ticket = '', since = s.now})
  local ev = {type = event_type}
  if extra then for k, v in pairs(extra) do ev[k] = v end end
  return announce(s, c, t, ev)
end

op('call_next', function(s)
  local c, err = counter_ready_to_call(s)
  if err then return err end
  -- Among the served procedures, compare the queue heads and the booked tickets whose slot has
  -- started, rescored with the booked tier (see policy.choose_next).
  -- Candidates are compared by number and score; a ticket is read whole only once it is chosen
  -- (and its seq only on a tie of scores).
  local best, best_score, best_seq
  local function seq_of(number) return tonumber(redis.call('HGET', s.D .. 't:' .. number, 'seq')) end
  local function consider(number, score)
    if best and score > best_score then return end
    if best and score == best_score then
      best_seq = best_seq or seq_of(best)
      local seq = seq_of(number)
      if seq >= best_seq then return end
      best, best_score, best_seq = number, score, seq
      return
    end
    best, best_score, best_seq = number, score, nil
  end
  for _, proc in ipairs(lib.counter_procedures(s, c) or s.req.procedures) do
    local head = redis.call('ZRANGE', s.D .. 'q:' .. proc, 0, 0, 'WITHSCORES')
    if #head > 0 then
      consider(head[1], tonumber(head[2]))
      for number, score in pairs(booked_started(s, proc)) do
        if score < best_score then consider(number, score) end
      end
      if s.req.calling_order == 'counter_procedure_order' then break end
    end
  end
  if not best then return fail('queue_empty', {counter = c.id}) end
  return do_call(s, c, hash_table(s.D .. 't:' .. best), 'ticket.called')
end)

op('call_number', function(s)
  local c, err = counter_ready_to_call(s)
  if err then return err end
  local t = hash_table(s.D .. 't:' .. s.req.number)
  if not t then return fail('not_found', {what = 'ticket', number = s.req.number}) end
  local bad = check_state('call', t)
  if bad then return bad end
  if t.prep == 'pending' then return fail('card_not_ready', {number = t.number, task = t.task}) end
  local allowed = false
  for _, proc in ipairs(s.req.procedures) do if proc == t.procedure then allowed = true end end
  if not allowed then return fail('procedure_not_allowed', {number = t.number, procedure = t.procedure, counter = c.id}) end
  return do_call(s, c, t, 'ticket.called')
end)

op('recall', function(s)
  local c, t, err = counter_ticket(s, 'recall')
  if err then return err end
  set_ticket(s, t, {recalls = (t.recalls or 0) + 1, called_at = s.now})
  push_call(s, c, t, true)
  return announce(s, c, t, {type = 'ticket.recalled'})
end)

op('start', function(s)
  local c, t, err = counter_ticket(s, 'start')
  if err then return err end
  set_ticket(s, t, {state = 'serving', started_at = s.now})
  return announce(s, c, t, {type = 'ticket.serving'})
end)

op('finish', function(s)
  local c, t, err = counter_ticket(s, 'finish')
  if err then return err end
  set_ticket(s, t, {state = 'done', finished_at = s.now})
  -- Measured service times feed the wait estimator; kept across days, newest first.
  push_capped(s.O .. 'services', cjson.encode({procedure = t.procedure, counter = c.id, day = t.day,
    called_at = t.called_at, started_at = t.started_at, finished_at = s.now}), 20000)
  lib.archive_visit(s, t)
  -- Post-issuance work follows the handover (tasks.lua); it is not bound to the day.
  if s.req.post_procedures and s.req.post_procedures[t.procedure] then
    lib.create_task(s, {kind = 'post', procedure = t.procedure, ticket = t.day .. '|' .. t.number})
  end
  return release(s, c, t, 'ticket.done')
end)

op('no_show', function(s)
  local c, t, err = counter_ticket(s, 'no_show')
  if err then return err end
  if (t.recalls or 0) < s.req.max_recalls then
    return fail('not_recalled_enough', {number = t.number, recalls = t.recalls or 0, needed = s.req.max_recalls})
  end
  set_ticket(s, t, {state = 'no_show', finished_at = s.now})
  lib.archive_visit(s, t)
  return release(s, c, t, 'ticket.no_show')
end)

op('hand_over', function(s)
  local c, t, err = counter_ticket(s, 'hand_over')
  if err then return err end
  local from = t.procedure
  local order = t.order
  -- Place kept: the visitor has waited once already and is called before those not yet served.
  -- To the back of the line: a fresh place, as a new ticket (see policy.py).
  local returning = 1
  if s.req.keep_place == false then order, returning = redis.call('INCR', s.D .. 'seq'), 0 end
  -- A booked ticket handed over goes on by the hand-over rule, not its booking (it left `bq` when called).
  local score = score_of(s, t.priority, order, returning == 1 and TIER_RETURNING or TIER_OTHER)
  -- The archive keeps each hand-over: where from and to, the configured reason category (never the
  -- free text) and the counter's call/start times, which the new queue's call will overwrite.
  local handovers = (t.handovers and t.handovers ~= '') and cjson.decode(t.handovers) or {}
  table.insert(handovers, {from = from, to = s.req.to, category = s.req.category, counter = c.id,
                           called_at = t.called_at, started_at = t.started_at, at = s.now})
  redis.call('HDEL', ticket_key(s, t.day, t.number), 'counter', 'called_at', 'started_at', 'returning')
  t.counter, t.called_at, t.started_at, t.returning = nil, nil, nil, nil
  local fields = {state = 'waiting', procedure = s.req.to, order = order, score = score, recalls = 0,
                  handed_over_from = from, hand_over_reason = s.req.reason or '',
                  handovers = cjson.encode(handovers)}
  if s.req.category then fields.hand_over_category = s.req.category end
  if returning == 1 then fields.returning = 1 end
  set_ticket(s, t, fields)
  redis.call('ZADD', s.D .. 'q:' .. s.req.to, score, t.number)
  return release(s, c, t, 'ticket.handed_over', {from = from})
end)

op('counter_status', function(s)
  local c = load_counter(s, s.req.counter)
  local cur = current_state(s, c)
  if s.req.status ~= 'open' and cur and (cur.state == 'called' or cur.state == 'serving') then
    return fail('counter_busy', {counter = c.id, number = cur.number, state = cur.state})
  end
  if c.status == s.req.status then
    return cjson.encode({ok = true, counter = public_counter(c), unchanged = true})
  end
  set_counter(s, c, {status = s.req.status, since = s.now, staff = s.req.actor or ''})
  local ev = emit(s, {type = 'counter.updated', counter = public_counter(c)})
  return cjson.encode({ok = true, counter = public_counter(c), event = ev})
end)

end
