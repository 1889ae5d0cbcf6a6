-- Check-in of a booked visitor: the booking becomes a numbered ticket (ARCHITECTURE.md "Calling policy").
do

-- req: booking (id), lang, token, formats {procedure → {number, booked}}, early_ms, late_ms,
-- at_check_in (the booked precedence from the check-in rather than the slot's start), keep_for_slot
-- (until the slot starts, after everybody else of the class: the stored score's tier 3).
-- On time: a booked ticket (`booked` = 1) from the procedure's booked numbers, in the queue with a
-- walk-in's score and in `D bq:{procedure}` from when its precedence begins. More than late_ms late:
-- a walk-in from now (`late` = 1), with the procedure's own numbers and no precedence, whether or not
-- the booking was already released as a no-show (bookings.lua releases it `late_ms` after the start).
op('check_in', function(s)
  local b = lib.load_booking(s, s.req.booking)
  if not b then return fail('booking_not_found', {}) end
  if b.state == 'checked_in' then
    return fail('already_checked_in', {ticket = b.ticket, day = b.day, slot = b.slot})
  end
  if b.day ~= s.today then
    return fail('wrong_day', {office = s.office, day = b.day, slot = b.slot, procedure = b.procedure})
  end
  -- Released today (not checked in `late_ms` after the slot's start, its place returned): the visitor
  -- came after all, later than the rule allows, and is a walk-in from now.
  local released = b.state == 'no_show'
  if b.state ~= 'booked' and not released then
    return fail('booking_not_active', {state = b.state, day = b.day, slot = b.slot})
  end
  local slot_start = b.slot_start
  if s.now < slot_start - s.req.early_ms then
    return fail('check_in_too_early', {opens_at = slot_start - s.req.early_ms, day = b.day, slot = b.slot})
  end
  local formats = s.req.formats[b.procedure]
  if not formats then return fail('booking_not_found', {}) end  -- a procedure no longer configured
  local late = released or s.now > slot_start + s.req.late_ms
  local fields = {booking = b.id, slot_start = slot_start}
  local fmt, number_key = formats.number, nil
  if late then
    fields.late = 1
  else
    fields.booked = 1
    if formats.booked then fmt, number_key = formats.booked, s.D .. 'n:' .. b.procedure .. ':booked' end
  end
  local t, err = lib.new_ticket(s, b.procedure, 0, fmt, number_key, fields)
  if err then return err end
  if not late then
    redis.call('ZADD', s.D .. 'bq:' .. t.procedure, s.req.at_check_in and s.now or slot_start, t.number)
  end
  if not late and s.req.keep_for_slot then  -- in the queue, or held for the card: the same place, tier 3
    set_ticket(s, t, {score = score_of(s, t.priority, t.order, TIER_KEPT)})
    local line = t.prep == 'pending' and s.D .. 'hold:' .. t.procedure or s.D .. 'q:' .. t.procedure
    redis.call('ZADD', line, t.score, t.number)
  end
  lib.save_booking(s, b, {state = 'checked_in', ticket = s.today .. '|' .. t.number, late = late and 1 or 0,
                       changed_at = s.now, actor = s.req.actor or ''})
  -- The areas that follow bookings (the back office: a pickup whose card is not ready yet).
  if lib.on_booking then lib.on_booking(s, 'checked_in', b) end
  local ahead = ahead_of(s, t)
  t.token = nil  -- events are public: the status token never leaves in one
  local ev = emit(s, {type = 'ticket.issued', ticket = t})
  emit(s, {type = 'booking.checked_in', booking = lib.event_booking(b)})
  return cjson.encode({ok = true, ticket = t, token = s.req.token, ahead = ahead, event = ev,
                       booking = lib.event_booking(b)})
end)

end
