-- Bookings (予約): book, change, cancel, the notice reference, and the release of no-shows.
--
-- The places taken per slot are `O slot:{day}:{procedure}` (hash HH:MM → count); the capacity is
-- computed in Python (domain/booking.py) and passed in, and checked here in the same step that
-- takes the place, so no concurrency can overbook a slot. A change takes the new place and gives
-- back the old one in one step: never "cancelled but not rebooked". Keys: ARCHITECTURE.md.
-- Events carry `booking = {id, procedure, day, slot, state, late}` only: never the code, the
-- secret link or the notice reference.
do

local NUMBERS = {slot_start = true, slot_end = true, created_at = true, changed_at = true, late = true}

local function booking_key(s, id) return s.O .. 'bk:' .. id end
local function slot_key(s, day, procedure) return s.O .. 'slot:' .. day .. ':' .. procedure end

-- The booking hash as a table (numbers as numbers), or nil.
local function load_booking(s, id) return read_hash(booking_key(s, id), NUMBERS) end

local function save_booking(s, b, fields) set_fields(booking_key(s, b.id), b, fields) end

-- What an event (public or not) says of a booking.
local function event_booking(b)
  return {id = b.id, procedure = b.procedure, day = b.day, slot = b.slot, state = b.state, late = b.late or 0}
end

-- Keep a key until `at` (ms) at least: keys shared by several bookings only ever live longer.
local function keep_until(key, at)
  local current = redis.call('PEXPIRETIME', key)  -- -1: no expiry yet
  if current < at then redis.call('PEXPIREAT', key, at) end
end

-- A booking, its code, secret and reference live until `req.expire_at` (slot end + reference_keep_days).
local function expire_booking(s, b)
  local at = s.req.expire_at
  redis.call('PEXPIREAT', booking_key(s, b.id), at)
  redis.call('PEXPIREAT', s.O .. 'bkcode:' .. b.code, at)
  redis.call('PEXPIREAT', s.O .. 'bksecret:' .. b.secret, at)
  if redis.call('EXISTS', s.O .. 'bkref:' .. b.id) == 1 then redis.call('PEXPIREAT', s.O .. 'bkref:' .. b.id, at) end
  keep_until(slot_key(s, b.day, b.procedure), at)
  keep_until(s.O .. 'bkday:' .. b.day, at)
end

local function set_reference(s, b, reference)
  if reference == nil then return end
  if reference == '' then
    redis.call('DEL', s.O .. 'bkref:' .. b.id)
  else
    redis.call('SET', s.O .. 'bkref:' .. b.id, reference, 'PXAT', s.req.expire_at)
  end
end

-- Take one place of the asked slot if one is left; the error answer otherwise.
local function take_place(s)
  local key = slot_key(s, s.req.slot_day, s.req.procedure)
  local taken = tonumber(redis.call('HGET', key, s.req.slot) or '0')
  if taken >= s.req.capacity then
    return fail('slot_full', {procedure = s.req.procedure, day = s.req.slot_day, slot = s.req.slot, capacity = s.req.capacity})
  end
  redis.call('HINCRBY', key, s.req.slot, 1)
  return nil
end

local function give_back(s, b)
  local key = slot_key(s, b.day, b.procedure)
  if tonumber(redis.call('HGET', key, b.slot) or '0') > 0 then redis.call('HINCRBY', key, b.slot, -1) end
end

-- Other areas follow bookings through one hook, defined if they are loaded: the back office
-- creates, moves and cancels a booked pickup's preparation task (`lib.on_booking(kind, b, from)`,
-- kind `created`/`changed`/`cancelled`/`released`; `b` may be updated with lib.save_booking).
local function tell(s, kind, b, from)
  if lib.on_booking then lib.on_booking(s, kind, b, from) end
end

local function archive(s, b)
  if lib.archive then
    lib.archive(s, 'booking', {id = b.id, procedure = b.procedure, day = b.day, slot = b.slot, state = b.state,
                            channel = b.channel, created_at = b.created_at, at = s.now})
  end
end

-- The answer (kept a day for a retried request): the booking with its code and secret for the one
-- who asked, never the reference (staff answers read it from its own key).
local function answer(b, ev)
  return cjson.encode({ok = true, booking = b, event = ev})
end

local function must_be_booked(s, b)
  if not b then return fail('not_found', {what = 'booking'}) end
  if b.state ~= 'booked' then return fail('booking_state', {id = b.id, state = b.state}) end
  if b.slot_start <= s.now then return fail('booking_state', {id = b.id, state = 'started'}) end
  return nil
end

op('book', function(s)
  local full = take_place(s)
  if full then return full end
  local code = nil
  for _, candidate in ipairs(s.req.codes) do
    if redis.call('EXISTS', s.O .. 'bkcode:' .. candidate) == 0 then code = candidate break end
  end
  if not code then
    redis.call('HINCRBY', slot_key(s, s.req.slot_day, s.req.procedure), s.req.slot, -1)
    return fail('code_taken', {})
  end
  local id = tostring(redis.call('INCR', s.O .. 'bkseq'))
  local b = {id = id, code = code, secret = s.req.secret, procedure = s.req.procedure, day = s.req.slot_day, slot = s.req.slot,
             slot_start = s.req.slot_start, slot_end = s.req.slot_end, state = 'booked', created_at = s.now,
             changed_at = s.now, channel = s.req.channel, actor = s.req.actor or '', lang = s.req.lang or 'ja', late = 0}
  save_booking(s, b, b)
  redis.call('SET', s.O .. 'bkcode:' .. code, id)
  redis.call('SET', s.O .. 'bksecret:' .. s.req.secret, id)
  redis.call('ZADD', s.O .. 'bkday:' .. s.req.slot_day, s.req.slot_start, id)
  redis.call('ZADD', s.O .. 'bkopen', s.req.release_at, id)
  set_reference(s, b, s.req.reference)
  expire_booking(s, b)
  tell(s, 'created', b)
  local ev = emit(s, {type = 'booking.created', booking = event_booking(b), channel = b.channel})
  return answer(b, ev)
end)

op('booking_change', function(s)
  local b = load_booking(s, s.req.booking)
  local bad = must_be_booked(s, b)
  if bad then return bad end
  local from = {procedure = b.procedure, day = b.day, slot = b.slot}
  local moved = s.req.slot_day and (s.req.slot_day ~= b.day or s.req.slot ~= b.slot or s.req.procedure ~= b.procedure)
  if moved then
    local full = take_place(s)
    if full then return full end
    give_back(s, b)
    redis.call('ZREM', s.O .. 'bkday:' .. b.day, b.id)
    redis.call('ZADD', s.O .. 'bkday:' .. s.req.slot_day, s.req.slot_start, b.id)
    redis.call('ZADD', s.O .. 'bkopen', s.req.release_at, b.id)
    save_booking(s, b, {procedure = s.req.procedure, day = s.req.slot_day, slot = s.req.slot, slot_start = s.req.slot_start,
                     slot_end = s.req.slot_end})
  end
  if not moved and s.req.reference == nil then return answer(b, nil) end
  save_booking(s, b, {changed_at = s.now, actor = s.req.actor or ''})
  set_reference(s, b, s.req.reference)
  expire_booking(s, b)
  if moved then tell(s, 'changed', b, from) end
  local ev = emit(s, {type = 'booking.changed', booking = event_booking(b), from = moved and from or nil,
                   reference_changed = s.req.reference ~= nil or nil})
  return answer(b, ev)
end)

op('booking_cancel', function(s)
  local b = load_booking(s, s.req.booking)
  local bad = must_be_booked(s, b)
  if bad then return bad end
  give_back(s, b)
  redis.call('ZREM', s.O .. 'bkopen', b.id)
  -- The back office no longer needs the postcard's reference: it goes now, not days later.
  redis.call('DEL', s.O .. 'bkref:' .. b.id)
  save_booking(s, b, {state = 'cancelled', changed_at = s.now, actor = s.req.actor or ''})
  tell(s, 'cancelled', b)
  local ev = emit(s, {type = 'booking.cancelled', booking = event_booking(b)})
  archive(s, b)
  return answer(b, ev)
end)

-- No-shows: a booking still `booked` when its release time (late_minutes after the slot's start,
-- at the latest its end) has come is released; its place returns to the slot while the slot runs.
op('release_bookings', function(s)
  local due = redis.call('ZRANGEBYSCORE', s.O .. 'bkopen', '-inf', s.now, 'LIMIT', 0, 500)
  local released = {}
  for _, id in ipairs(due) do
    redis.call('ZREM', s.O .. 'bkopen', id)
    local b = load_booking(s, id)
    if b and b.state == 'booked' then
      local returned = s.now < b.slot_end
      if returned then give_back(s, b) end
      save_booking(s, b, {state = 'no_show', changed_at = s.now})
      tell(s, 'released', b)
      emit(s, {type = 'booking.released', booking = event_booking(b), returned = returned})
      archive(s, b)
      table.insert(released, id)
    end
  end
  return cjson.encode({ok = true, released = released, more = #due == 500})
end)

lib.load_booking = load_booking
lib.save_booking = save_booking
lib.event_booking = event_booking

end
