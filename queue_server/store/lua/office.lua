-- The office as a whole: pausing procedures, the notice, the snapshot.
do

op('procedure_status', function(s)
  if s.req.paused then redis.call('SADD', s.O .. 'paused', s.req.procedure)
  else redis.call('SREM', s.O .. 'paused', s.req.procedure) end
  local ev = emit(s, {type = 'procedure.updated', procedure = s.req.procedure, paused = s.req.paused})
  return cjson.encode({ok = true, event = ev})
end)

-- The notice: `notice` the Japanese text, `notices` the other languages' (lang -> text, may be empty).
op('notice', function(s)
  redis.call('SET', s.O .. 'notice', s.req.text)
  redis.call('DEL', s.O .. 'notices')
  for lang, text in pairs(s.req.texts or {}) do redis.call('HSET', s.O .. 'notices', lang, text) end
  local ev = emit(s, {type = 'notice.updated', notice = s.req.text, notices = s.req.texts or {}})
  return cjson.encode({ok = true, event = ev})
end)

-- The office's live state and the sequence number of its last event, read in one step.
op('snapshot', function(s)
  local waiting = {}
  for _, proc in ipairs(s.req.office_procedures) do
    for _, number in ipairs(redis.call('ZRANGE', s.D .. 'q:' .. proc, 0, -1)) do
      table.insert(waiting, hash_table(s.D .. 't:' .. number))
    end
  end
  -- Held tickets (card being prepared) wait too, marked by prep = pending; and the open tasks.
  for _, t in ipairs(lib.held_tickets(s, s.today)) do table.insert(waiting, t) end
  local tasks, tasktimes = lib.open_tasks(s)
  local counters, serving = {}, {}
  for _, id in ipairs(s.req.office_counters) do
    local c = load_counter(s, id)
    local t = current_ticket(s, c)
    if t and (t.state == 'called' or t.state == 'serving') then
      table.insert(serving, t)
    end
    table.insert(counters, public_counter(c))
  end
  local recent = {}
  for _, raw in ipairs(redis.call('LRANGE', s.D .. 'recent', 0, 19)) do table.insert(recent, cjson.decode(raw)) end
  local paused = redis.call('SMEMBERS', s.O .. 'paused')
  return cjson.encode({ok = true, seq = tonumber(redis.call('GET', s.O .. 'evseq') or '0'), day = s.today,
    waiting = waiting, active = serving, counters = counters, recent = recent, paused = paused,
    notice = redis.call('GET', s.O .. 'notice') or '', notices = hash_table(s.O .. 'notices') or {},
    outage = lib.outage(s), tasks = tasks, tasktimes = tasktimes})
end, {'no-writes'})  -- it only reads: a new day is begun by mg_start_day first (main.lua)


end
