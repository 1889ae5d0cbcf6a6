-- The office as a whole: pausing procedures, the notice, the snapshot.
do

function ops.procedure_status()
  if req.paused then redis.call('SADD', O .. 'paused', req.procedure)
  else redis.call('SREM', O .. 'paused', req.procedure) end
  local ev = emit({type = 'procedure.updated', procedure = req.procedure, paused = req.paused})
  return cjson.encode({ok = true, event = ev})
end

function ops.notice()
  redis.call('SET', O .. 'notice', req.text)
  local ev = emit({type = 'notice.updated', notice = req.text})
  return cjson.encode({ok = true, event = ev})
end

-- The office's live state and the sequence number of its last event, read in one step.
function ops.snapshot()
  local waiting = {}
  for _, proc in ipairs(req.office_procedures) do
    for _, number in ipairs(redis.call('ZRANGE', D .. 'q:' .. proc, 0, -1)) do
      table.insert(waiting, hash_table(D .. 't:' .. number))
    end
  end
  -- Held tickets (card being prepared) wait too, marked by prep = pending; and the open tasks.
  for _, t in ipairs(lib.held_tickets(today)) do table.insert(waiting, t) end
  local tasks, tasktimes = lib.open_tasks()
  local counters, serving = {}, {}
  for _, id in ipairs(req.office_counters) do
    local c = load_counter(id)
    local t = current_ticket(c)
    if t and (t.state == 'called' or t.state == 'serving') then
      table.insert(serving, t)
    end
    table.insert(counters, public_counter(c))
  end
  local recent = {}
  for _, raw in ipairs(redis.call('LRANGE', D .. 'recent', 0, 19)) do table.insert(recent, cjson.decode(raw)) end
  local paused = redis.call('SMEMBERS', O .. 'paused')
  return cjson.encode({ok = true, seq = tonumber(redis.call('GET', O .. 'evseq') or '0'), day = today,
    waiting = waiting, active = serving, counters = counters, recent = recent, paused = paused,
    notice = redis.call('GET', O .. 'notice') or '', tasks = tasks, tasktimes = tasktimes})
end


end
