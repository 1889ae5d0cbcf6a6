-- Check-in of a booked visitor: the booking becomes a numbered ticket (ARCHITECTURE.md "Calling policy").
do

-- The booking hash `O bk:{id}` (bookings.lua writes it) as a table, or nil.
local function load_booking(id)
  local flat = redis.call('HGETALL', O .. 'bk:' .. id)
  if #flat == 0 then return nil end
  local b = {}
  for i = 1, #flat, 2 do b[flat[i]] = flat[i + 1] end
  return b
end

-- What a booking event carries: never the code, the link secret or the notice reference.
local function booking_view(b)
  return {id = b.id, procedure = b.procedure, day = b.day, slot = b.slot, state = b.state,
          late = tonumber(b.late or '0')}
end

-- req: booking (id), lang, token, formats {procedure → {number, booked}}, early_ms, late_ms,
-- at_check_in (the booked precedence from the check-in rather than the slot's start).
-- On time: a booked ticket (`booked` = 1) from the procedure's booked numbers, in the queue with a
-- walk-in's score and in `D bq:{procedure}` from when its precedence begins. More than late_ms late:
-- a walk-in from now (`late` = 1), with the procedure's own numbers and no precedence.
function ops.check_in()
  local b = load_booking(req.booking)
  if not b then return fail('booking_not_found', {}) end
  if b.state == 'checked_in' then
    return fail('already_checked_in', {ticket = b.ticket, day = b.day, slot = b.slot})
  end
  if b.state ~= 'booked' then return fail('booking_not_active', {state = b.state, day = b.day, slot = b.slot}) end
  if b.day ~= today then
    return fail('wrong_day', {office = req.office, day = b.day, slot = b.slot, procedure = b.procedure})
  end
  local slot_start = tonumber(b.slot_start)
  if now < slot_start - req.early_ms then
    return fail('check_in_too_early', {opens_at = slot_start - req.early_ms, day = b.day, slot = b.slot})
  end
  local formats = req.formats[b.procedure]
  if not formats then return fail('booking_not_found', {}) end  -- a procedure no longer configured
  local late = now > slot_start + req.late_ms
  local fields = {booking = b.id, slot_start = slot_start}
  local fmt, number_key = formats.number, nil
  if late then
    fields.late = 1
  else
    fields.booked = 1
    if formats.booked then fmt, number_key = formats.booked, D .. 'n:' .. b.procedure .. ':booked' end
  end
  local t, err = lib.new_ticket(b.procedure, 0, fmt, number_key, fields)
  if err then return err end
  if not late then
    redis.call('ZADD', D .. 'bq:' .. t.procedure, req.at_check_in and now or slot_start, t.number)
  end
  set_fields(O .. 'bk:' .. b.id, b, {state = 'checked_in', ticket = today .. '|' .. t.number,
                                       late = late and 1 or 0, changed_at = now, actor = req.actor or ''})
  local ahead = ahead_of(t)
  t.token = nil  -- events are public: the status token never leaves in one
  local ev = emit({type = 'ticket.issued', ticket = t})
  emit({type = 'booking.checked_in', booking = booking_view(b)})
  return cjson.encode({ok = true, ticket = t, token = req.token, ahead = ahead, event = ev,
                       booking = booking_view(b)})
end

end
