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

local function booking_key(id) return O .. 'bk:' .. id end
local function slot_key(day, procedure) return O .. 'slot:' .. day .. ':' .. procedure end

-- The booking hash as a table (numbers as numbers), or nil.
local function load_booking(id) return read_hash(booking_key(id), NUMBERS) end

local function save_booking(b, fields) set_fields(booking_key(b.id), b, fields) end

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
local function expire_booking(b)
  local at = req.expire_at
  redis.call('PEXPIREAT', booking_key(b.id), at)
  redis.call('PEXPIREAT', O .. 'bkcode:' .. b.code, at)
  redis.call('PEXPIREAT', O .. 'bksecret:' .. b.secret, at)
  if redis.call('EXISTS', O .. 'bkref:' .. b.id) == 1 then redis.call('PEXPIREAT', O .. 'bkref:' .. b.id, at) end
  keep_until(slot_key(b.day, b.procedure), at)
  keep_until(O .. 'bkday:' .. b.day, at)
end

local function set_reference(b, reference)
  if reference == nil then return end
  if reference == '' then
    redis.call('DEL', O .. 'bkref:' .. b.id)
  else
    redis.call('SET', O .. 'bkref:' .. b.id, reference, 'PXAT', req.expire_at)
  end
end

-- Take one place of the asked slot if one is left; the error answer otherwise.
local function take_place()
  local key = slot_key(req.slot_day, req.procedure)
  local taken = tonumber(redis.call('HGET', key, req.slot) or '0')
  if taken >= req.capacity then
    return fail('slot_full', {procedure = req.procedure, day = req.slot_day, slot = req.slot, capacity = req.capacity})
  end
  redis.call('HINCRBY', key, req.slot, 1)
  return nil
end

local function give_back(b)
  local key = slot_key(b.day, b.procedure)
  if tonumber(redis.call('HGET', key, b.slot) or '0') > 0 then redis.call('HINCRBY', key, b.slot, -1) end
end

-- Other areas follow bookings through one hook, defined if they are loaded: the back office
-- creates, moves and cancels a booked pickup's preparation task (`lib.on_booking(kind, b, from)`,
-- kind `created`/`changed`/`cancelled`/`released`; `b` may be updated with lib.save_booking).
local function tell(kind, b, from)
  if lib.on_booking then lib.on_booking(kind, b, from) end
end

local function archive(b)
  if lib.archive then
    lib.archive('booking', {id = b.id, procedure = b.procedure, day = b.day, slot = b.slot, state = b.state,
                            channel = b.channel, created_at = b.created_at, at = now})
  end
end

-- The answer (kept a day for a retried request): the booking with its code and secret for the one
-- who asked, never the reference (staff answers read it from its own key).
local function answer(b, ev)
  return cjson.encode({ok = true, booking = b, event = ev})
end

local function must_be_booked(b)
  if not b then return fail('not_found', {what = 'booking'}) end
  if b.state ~= 'booked' then return fail('booking_state', {id = b.id, state = b.state}) end
  if b.slot_start <= now then return fail('booking_state', {id = b.id, state = 'started'}) end
  return nil
end

function ops.book()
  local full = take_place()
  if full then return full end
  local code = nil
  for _, candidate in ipairs(req.codes) do
    if redis.call('EXISTS', O .. 'bkcode:' .. candidate) == 0 then code = candidate break end
  end
  if not code then
    redis.call('HINCRBY', slot_key(req.slot_day, req.procedure), req.slot, -1)
    return fail('code_taken', {})
  end
  local id = tostring(redis.call('INCR', O .. 'bkseq'))
  local b = {id = id, code = code, secret = req.secret, procedure = req.procedure, day = req.slot_day, slot = req.slot,
             slot_start = req.slot_start, slot_end = req.slot_end, state = 'booked', created_at = now,
             changed_at = now, channel = req.channel, actor = req.actor or '', lang = req.lang or 'ja', late = 0}
  save_booking(b, b)
  redis.call('SET', O .. 'bkcode:' .. code, id)
  redis.call('SET', O .. 'bksecret:' .. req.secret, id)
  redis.call('ZADD', O .. 'bkday:' .. req.slot_day, req.slot_start, id)
  redis.call('ZADD', O .. 'bkopen', req.release_at, id)
  set_reference(b, req.reference)
  expire_booking(b)
  tell('created', b)
  local ev = emit({type = 'booking.created', booking = event_booking(b), channel = b.channel})
  return answer(b, ev)
end

function ops.booking_change()
  local b = load_booking(req.booking)
  local bad = must_be_booked(b)
  if bad then return bad end
  local from = {procedure = b.procedure, day = b.day, slot = b.slot}
  local moved = req.slot_day and (req.slot_day ~= b.day or req.slot ~= b.slot or req.procedure ~= b.procedure)
  if moved then
    local full = take_place()
    if full then return full end
    give_back(b)
    redis.call('ZREM', O .. 'bkday:' .. b.day, b.id)
    redis.call('ZADD', O .. 'bkday:' .. req.slot_day, req.slot_start, b.id)
    redis.call('ZADD', O .. 'bkopen', req.release_at, b.id)
    save_booking(b, {procedure = req.procedure, day = req.slot_day, slot = req.slot, slot_start = req.slot_start,
                     slot_end = req.slot_end})
  end
  if not moved and req.reference == nil then return answer(b, nil) end
  save_booking(b, {changed_at = now, actor = req.actor or ''})
  set_reference(b, req.reference)
  expire_booking(b)
  if moved then tell('changed', b, from) end
  local ev = emit({type = 'booking.changed', booking = event_booking(b), from = moved and from or nil,
                   reference_changed = req.reference ~= nil or nil})
  return answer(b, ev)
end

function ops.booking_cancel()
  local b = load_booking(req.booking)
  local bad = must_be_booked(b)
  if bad then return bad end
  give_back(b)
  redis.call('ZREM', O .. 'bkopen', b.id)
  -- The back office no longer needs the postcard's reference: it goes now, not days later.
  redis.call('DEL', O .. 'bkref:' .. b.id)
  save_booking(b, {state = 'cancelled', changed_at = now, actor = req.actor or ''})
  tell('cancelled', b)
  local ev = emit({type = 'booking.cancelled', booking = event_booking(b)})
  archive(b)
  return answer(b, ev)
end

-- No-shows: a booking still `booked` when its release time (late_minutes after the slot's start,
-- at the latest its end) has come is released; its place returns to the slot while the slot runs.
function ops.release_bookings()
  local due = redis.call('ZRANGEBYSCORE', O .. 'bkopen', '-inf', now, 'LIMIT', 0, 500)
  local released = {}
  for _, id in ipairs(due) do
    redis.call('ZREM', O .. 'bkopen', id)
    local b = load_booking(id)
    if b and b.state == 'booked' then
      local returned = now < b.slot_end
      if returned then give_back(b) end
      save_booking(b, {state = 'no_show', changed_at = now})
      tell('released', b)
      emit({type = 'booking.released', booking = event_booking(b), returned = returned})
      archive(b)
      table.insert(released, id)
    end
  end
  return cjson.encode({ok = true, released = released, more = #due == 500})
end

lib.load_booking = load_booking
lib.save_booking = save_booking
lib.event_booking = event_booking

end
