-- The supervisor's steps: outage mode, a counter's procedures for the rest of the day, closing the day.
do

-- The office's outage as snapshots and events carry it (public: the notice is a prepared text from
-- the configuration), or nil when there is none.
function lib.outage(s)
  local o = redis.call('HMGET', s.O .. 'outage', 'active', 'procedures', 'notice_id', 'notice', 'since')
  if o[1] ~= '1' then return nil end
  return {active = true, procedures = cjson.decode(o[2]), notice_id = o[3], notice = cjson.decode(o[4]),
          since = tonumber(o[5])}
end

-- The office's paused procedures after the step, for the event; none: nil (cjson would write an
-- empty table as the object {}, which no reader takes for an empty list).
local function paused_list(s)
  local paused = redis.call('SMEMBERS', s.O .. 'paused')
  if #paused == 0 then return nil end
  return paused
end

-- Outage mode begins: the chosen procedures stop issuing, in the same step as the notice goes up.
-- `paused` remembers which of them this step paused, so that ending the outage resumes only those
-- (a procedure paused before the outage stays paused).
op('outage_start', function(s)
  local current = redis.call('HMGET', s.O .. 'outage', 'active', 'procedures', 'notice_id')
  if current[1] == '1' then
    -- The same outage again (a retry): nothing to do. Another one: end this one first.
    if current[2] == cjson.encode(s.req.procedures) and current[3] == s.req.notice_id then
      return cjson.encode({ok = true, outage = lib.outage(s), unchanged = true})
    end
    return fail('outage_active', {office = s.office})
  end
  local paused_now = {}
  for _, proc in ipairs(s.req.procedures) do
    if redis.call('SADD', s.O .. 'paused', proc) == 1 then table.insert(paused_now, proc) end
  end
  redis.call('DEL', s.O .. 'outage')
  redis.call('HSET', s.O .. 'outage', 'active', '1', 'procedures', cjson.encode(s.req.procedures),
             'paused', cjson.encode(paused_now), 'notice_id', s.req.notice_id, 'notice', cjson.encode(s.req.notice),
             'since', s.now)
  local outage = lib.outage(s)
  local ev = emit(s, {type = 'outage.started', outage = outage, paused = paused_list(s)})
  return cjson.encode({ok = true, outage = outage, event = ev})
end)

op('outage_end', function(s)
  local outage = lib.outage(s)
  if not outage then return fail('no_outage', {office = s.office}) end
  for _, proc in ipairs(cjson.decode(redis.call('HGET', s.O .. 'outage', 'paused') or '[]')) do
    redis.call('SREM', s.O .. 'paused', proc)
  end
  redis.call('DEL', s.O .. 'outage')
  local ev = emit(s, {type = 'outage.ended', since = outage.since, paused = paused_list(s)})
  return cjson.encode({ok = true, event = ev})
end)

-- The procedures a counter serves today when the supervisor changed them (nil: its configured ones).
function lib.counter_procedures(s, c)
  if c.procedures and c.procedures ~= '' and c.procedures_day == s.today then return cjson.decode(c.procedures) end
  return nil
end

-- Change which procedures a counter serves for the rest of the business day; none: back to its own.
op('counter_procedures', function(s)
  local c = load_counter(s, s.req.counter)
  if s.req.procedures then
    set_counter(s, c, {procedures = cjson.encode(s.req.procedures), procedures_day = s.today})
  else
    redis.call('HDEL', counter_key(s, c.id), 'procedures', 'procedures_day')
    c.procedures, c.procedures_day = nil, nil
  end
  local ev = emit(s, {type = 'counter.updated', counter = public_counter(c)})
  return cjson.encode({ok = true, counter = public_counter(c), event = ev})
end)

-- Closing the day (after closing time): refused while visitors are waiting or at a counter unless
-- confirmed; then what is left is closed out as at midnight (expired, one day.closed event).
op('day_close', function(s)
  local waiting, active = 0, 0
  for _, proc in ipairs(s.req.office_procedures) do waiting = waiting + redis.call('ZCARD', s.D .. 'q:' .. proc) end
  for _, id in ipairs(s.req.office_counters) do
    local t = current_ticket(s, load_counter(s, id))
    if t and (t.state == 'called' or t.state == 'serving') then active = active + 1 end
  end
  if waiting + active > 0 and not s.req.confirm then
    return fail('visitors_waiting', {waiting = waiting, active = active})
  end
  local ev = lib.close_day(s, s.today)
  return cjson.encode({ok = true, day = s.today, waiting = waiting, active = active, event = ev})
end)

end
