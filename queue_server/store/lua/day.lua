-- The business day: closing out what a day left open, once (ARCHITECTURE.md "The business day").
do

-- The day's end (see ARCHITECTURE.md "The business day"): every ticket of `day` still waiting,
-- called or being served becomes `expired` (a final state the visitor's page shows), its queue is
-- emptied and a counter holding it is freed; one `day.closed` event tells every process.
local function close_day(s, day)
  local DD = s.O .. 'd:' .. day .. ':'
  local expired, freed = {}, {}
  local function expire(t)
    if not t or not ALLOWED_FROM.expire[t.state] then return end
    set_ticket(s, t, {state = 'expired', expired_from = t.state, finished_at = s.now})
    lib.archive_visit(s, t)  -- under the ticket's own day (and month), not the new one
    table.insert(expired, t.number)
  end
  for _, proc in ipairs(s.req.office_procedures) do
    for _, number in ipairs(redis.call('ZRANGE', DD .. 'q:' .. proc, 0, -1)) do
      expire(hash_table(DD .. 't:' .. number))
    end
    redis.call('DEL', DD .. 'q:' .. proc, DD .. 'bq:' .. proc)
  end
  -- Held tickets (card not prepared yet) close out too, and their preparation is no longer needed.
  for _, t in ipairs(lib.held_tickets(s, day)) do
    expire(t)
    lib.cancel_task(s, t.task, 'day_closed')
  end
  for _, proc in ipairs(s.req.office_procedures) do redis.call('DEL', DD .. 'hold:' .. proc) end
  local held = day .. '|'
  for _, id in ipairs(s.req.office_counters) do
    local c = load_counter(s, id)
    if c.ticket and string.sub(c.ticket, 1, #held) == held then
      expire(current_ticket(s, c))
      set_counter(s, c, {ticket = '', since = s.now})
      table.insert(freed, public_counter(c))
    end
  end
  redis.call('ZREM', s.O .. 'days', day)
  return emit(s, {type = 'day.closed', closed = day, expired = #expired > 0 and expired or nil,
               counters = #freed > 0 and freed or nil, tasks_carried_over = lib.carried_over(s)})
end
lib.close_day = close_day  -- the supervisor's close-out of today (supervisor.lua)

-- The office's business day: `O today` only moves forward, so a step computed just before
-- midnight that runs after another process began the new day (or one on a clock set back) works
-- on the current day. Moving it forward closes every earlier day that had tickets (`O days`).
function lib.start_day(s)
  local current = redis.call('GET', s.O .. 'today')
  if current and current >= s.req.today then return current end
  redis.call('SET', s.O .. 'today', s.req.today)
  s.today = s.req.today
  if not current then
    -- First step with day-keeping (a new office, or data from before it): a counter may still hold
    -- a ticket of an earlier day, which must be closed out like the rest.
    for _, id in ipairs(s.req.office_counters) do
      local c = load_counter(s, id)
      local sep = c.ticket and string.find(c.ticket, '|', 1, true)
      if sep then
        local day = string.sub(c.ticket, 1, sep - 1)
        if day < s.today then redis.call('ZADD', s.O .. 'days', tonumber(day), day) end
      end
    end
  end
  for _, day in ipairs(redis.call('ZRANGEBYSCORE', s.O .. 'days', '-inf', '(' .. tonumber(s.today))) do
    close_day(s, day)
  end
  lib.prune_archive(s)
  return s.today
end

-- Only the day's change itself: the hub asks at midnight (the first step of the day would do it anyway).
op('start_day', function(s)
  return cjson.encode({ok = true, today = s.today})
end)

end
