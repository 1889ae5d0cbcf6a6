-- The visit archive (ARCHITECTURE.md "The visit archive"): one compact record per finished visit,
-- written by the step that puts the visit in its final state, so a record is never lost or
-- written for a visit that did not end. Months are streams `O arch:{YYYYMM}` (the month of the
-- visit's own business day, so a visit closed out at midnight lands in its day's month); the
-- months held are listed in `O archmonths` for the retention step and the reports.
do

-- Fields never archived, whoever passes them: secrets (status token, booking code, link secret,
-- notice reference), free text staff type, and who on the staff did what (the archive is the
-- city's statistics, not a record of people).
local NEVER = {token = true, code = true, secret = true, reference = true, reason = true, hand_over_reason = true,
               claimed_by = true, actor = true, staff = true, by = true, note = true, name = true, phone = true}

-- Append `record` (a table) as one archive entry of `kind` (visit, task, booking) in the month of
-- `day` (YYYYMMDD; default: the record's `day`, else the business day). Other areas call it as
-- `lib.archive(kind, record)`. A record's own `kind` (a task's prepare/post) is kept as `{kind}_kind`.
function lib.archive(s, kind, record, day)
  local entry = {}
  for k, v in pairs(record) do
    -- `*_by` is who on the staff did it (claimed_by, done_by …)
    if not NEVER[k] and not string.find(k, '_by$') then entry[k] = v end
  end
  if entry.kind ~= nil and entry.kind ~= kind then entry[kind .. '_kind'] = entry.kind end
  entry.kind = kind
  entry.office = s.office
  entry.day = entry.day or day or s.today
  local month = string.sub(entry.day, 1, 6)
  redis.call('XADD', s.O .. 'arch:' .. month, '*', 'r', cjson.encode(entry))
  redis.call('ZADD', s.O .. 'archmonths', tonumber(month), month)
end

-- Hand-overs a ticket went through (kept on the ticket as JSON by hand_over; see counters.lua).
local function handovers_of(t)
  if not t.handovers or t.handovers == '' then return nil end
  return cjson.decode(t.handovers)
end

-- The visit record of ticket `t`, now in its final state. No personal data: numbers, ids, times,
-- and the hand-over's configured category, never the reason staff typed. `extra` adds fields.
function lib.archive_visit(s, t, extra)
  local channel = 'walk_in'
  if t.booked == 1 or t.booked == '1' then channel = 'booked'
  elseif t.late == 1 or t.late == '1' then channel = 'late' end
  local record = {
    day = t.day, number = t.number, procedure = t.procedure, state = t.state,
    expired_from = t.expired_from, channel = channel, priority = tonumber(t.priority) or 0,
    issued_at = tonumber(t.issued_at), first_called_at = tonumber(t.first_called_at), called_at = tonumber(t.called_at), started_at = tonumber(t.started_at),
    finished_at = tonumber(t.finished_at), counter = (t.counter ~= '' and t.counter) or nil,
    recalls = tonumber(t.recalls) or 0, estimate = tonumber(t.estimate_at_issue),
    handovers = handovers_of(t),
  }
  if t.booking and t.booking ~= '' then record.booking = t.booking end
  if extra then for k, v in pairs(extra) do record[k] = v end end
  lib.archive(s, 'visit', record, t.day)
end

-- Retention (`[archive] keep_years` fiscal years, April–March): months before the first month
-- kept are deleted. Run by the day's change (once a day per office), so no timer is needed.
function lib.prune_archive(s)
  local keep = tonumber(s.req.archive_keep_years)
  if not keep or keep <= 0 then return end
  local year, month = tonumber(string.sub(s.today, 1, 4)), tonumber(string.sub(s.today, 5, 6))
  local fiscal = (month >= 4) and year or (year - 1)
  local first_kept = (fiscal - keep + 1) * 100 + 4
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', s.O .. 'archmonths', '-inf', '(' .. first_kept)) do
    redis.call('UNLINK', s.O .. 'arch:' .. old)
    redis.call('ZREM', s.O .. 'archmonths', old)
  end
end

end
