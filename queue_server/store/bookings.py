"""Bookings in the store: each change one step of ``lua/bookings.lua``; lookups and availability read keys.

Keys (``O`` = ``P o:{office}:``; see ARCHITECTURE.md): ``O bkseq``, ``O bk:{id}`` (the booking),
``O bkref:{id}`` (the notice-postcard reference, staff only, expiring), ``O bkcode:{CODE}`` and
``O bksecret:{secret}`` (→ id), ``O slot:{day}:{procedure}`` (``HH:MM`` → places taken),
``O bkday:{day}`` (the day's bookings by slot start) and ``O bkopen`` (bookings not yet settled, by
the time they are released as no-shows).

The rules (which slots exist, capacity, deadlines) are ``domain/booking.py``'s and are checked here
before the step; the step itself checks what concurrency could change: places left, the booking's
state.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from ..config import Office
from ..domain import booking as rules
from ..domain import tasks
from ..domain.model import Conflict, DomainError, NotFound
from .redis_store import QueueStore, Result

CODE_CANDIDATES: Final = 3
"""Codes offered to one booking step: the first not yet used in the office is taken (a clash of
random 7-character codes is already rare; three in a row practically never happens)."""
SECRET_BYTES: Final = 16  # 128 bits: the secret link cannot be guessed
DAY_MS: Final = 86_400_000
NUMBERS: Final = ("slot_start", "slot_end", "created_at", "changed_at", "late")

ServiceMinutes = Callable[[str, str], float | None]
"""(office, procedure) → the measured median service minutes, or None to use the configured prior."""


def _errors(result: Mapping[str, Any]) -> DomainError | None:
    """The domain error for the booking step's own error answers."""
    code = result["err"]
    if code == "slot_full":
        return rules.SlotFull(f"the slot {result['day']} {result['slot']} of {result['procedure']} is full "
                              f"({result['capacity']} places all taken); choose another slot")
    if code == "booking_state":
        state = result["state"]
        why = "its slot has begun" if state == "started" else f"it is {state}"
        return Conflict(f"booking {result['id']} can no longer be changed or cancelled: {why}", code="booking_state")
    if code == "not_found" and result.get("what") == "booking":
        return NotFound("no such booking")
    if code == "code_taken":
        return Conflict("no free booking code could be drawn; try again", code="conflict")
    return None


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, Any]:
    booking: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
    for key in NUMBERS:
        if key in booking:
            booking[key] = int(float(booking[key]))
    return booking


class Bookings:
    """Booking, changing, cancelling and finding bookings of every office (one :class:`QueueStore`)."""

    def __init__(self, store: QueueStore, service_minutes: ServiceMinutes | None = None) -> None:
        self.store = store
        self.service_minutes = service_minutes or (lambda _office, _procedure: None)
        self._calendars: dict[tuple[str, str], rules.SlotCalendar] = {}

    def calendar(self, office: Office, procedure: str) -> rules.SlotCalendar:
        """The (remembered) slots and deadlines of a bookable procedure's days."""
        key = (office.id, procedure)
        if key not in self._calendars:
            self._calendars[key] = rules.SlotCalendar(office.hours, office.bookings, procedure, self.store.clock.zone)
        return self._calendars[key]

    # -- rules -------------------------------------------------------------------------------

    def office(self, office_id: str) -> Office:
        """The configured office, or NotFound."""
        return self.store.office(office_id)

    def capacity(self, office: Office, procedure: str) -> int:
        """Places per slot of a procedure now (from the measured service time when there is one)."""
        minutes = self.service_minutes(office.id, procedure) or office.procedures[procedure].service_minutes
        return rules.slot_capacity(office.bookings.procedures[procedure], office.bookings.slot_minutes, minutes)

    def _checked(self, office: Office, procedure: str, day: dt.date, slot: str) -> rules.Slot:
        if procedure not in office.procedures:
            raise NotFound(f"no procedure {procedure!r} at {office.id}; procedures: {', '.join(office.procedures)}")
        if procedure not in office.bookings.procedures:
            raise rules.not_bookable(office.bookings, procedure)
        return self.calendar(office, procedure).check(day, slot, self.store.clock.now_ms())

    def _slot_params(self, office: Office, procedure: str, found: rules.Slot) -> dict[str, Any]:
        """What the step needs to take a place in ``found`` and to keep and release the booking."""
        settings = office.bookings
        return {"procedure": procedure, "slot_day": found.day, "slot": found.slot, "slot_start": found.start_ms,
                "slot_end": found.end_ms, "capacity": self.capacity(office, procedure),
                "release_at": min(found.start_ms + settings.late_minutes * 60_000, found.end_ms),
                "expire_at": found.end_ms + settings.reference_keep_days * DAY_MS,
                "prep_task": self._preparation(office, procedure, found)}

    def _preparation(self, office: Office, procedure: str, found: rules.Slot) -> dict[str, Any] | None:
        """The booked card's preparation task (back office, ``domain/tasks.py``), if the procedure has one."""
        if "prepare" not in office.procedures[procedure].stages:
            return None
        sending = None
        if office.work_office != office.id:
            sending = tasks.sending_day(self.store.office(office.work_office).hours, rules.parse_day(found.day),
                                        self.store.clock.zone)
        return tasks.preparation_fields(procedure=procedure, office=office.id, work_office=office.work_office,
                                        slot_start=found.start_ms, sending=sending)

    # -- changes -----------------------------------------------------------------------------

    async def book(self, office_id: str, procedure: str, day: dt.date, slot: str, *, channel: str = "web",
                   reference: str | None = None, lang: str = "ja", actor: str | None = None,
                   idem: str | None = None) -> Result:
        """Book a place; the answer's ``booking`` has the code and the secret (for the one who booked)."""
        office = self.office(office_id)
        found = self._checked(office, procedure, day, slot)
        return await self.store._run(
            "book", office.id, idem=idem, actor=actor, errors=_errors, channel=channel, lang=lang,
            reference=rules.check_reference(reference) if reference else None,
            codes=[rules.new_code() for _ in range(CODE_CANDIDATES)], secret=secrets.token_urlsafe(SECRET_BYTES),
            **self._slot_params(office, procedure, found))

    async def change(self, office_id: str, booking_id: str, *, procedure: str | None = None,
                     day: dt.date | None = None, slot: str | None = None, reference: str | None = None,
                     actor: str | None = None, idem: str | None = None) -> Result:
        """Move a booking to another slot (and procedure) in one step, and/or set its notice reference
        (``""`` deletes it). The new slot must be bookable now; the old place is given back in the same step."""
        office = self.office(office_id)
        current = await self.get(office.id, booking_id)
        params: dict[str, Any] = {}
        if day is not None or slot is not None or procedure is not None:
            target_day = day or rules.parse_day(current["day"])
            found = self._checked(office, procedure or current["procedure"], target_day, slot or current["slot"])
            params = self._slot_params(office, procedure or current["procedure"], found)
        else:
            params["expire_at"] = current["slot_end"] + office.bookings.reference_keep_days * DAY_MS
        if reference is not None:
            params["reference"] = rules.check_reference(reference) if reference else ""
        return await self.store._run("booking_change", office.id, idem=idem, actor=actor, errors=_errors,
                                     booking=booking_id, **params)

    async def cancel(self, office_id: str, booking_id: str, *, actor: str | None = None,
                     idem: str | None = None) -> Result:
        """Cancel a booking not yet begun; its place is free at once."""
        self.office(office_id)
        return await self.store._run("booking_cancel", office_id, idem=idem, actor=actor, errors=_errors,
                                     booking=booking_id)

    async def release(self, office_id: str) -> list[str]:
        """Release the office's no-shows that are due (the hub calls this every minute); their ids."""
        released: list[str] = []
        while True:
            result = await self.store._run("release_bookings", office_id, errors=_errors)
            released += [str(i) for i in (result["released"] or [])]
            if not result.get("more"):
                return released

    # -- reading -----------------------------------------------------------------------------

    async def get(self, office_id: str, booking_id: str, *, reference: bool = False) -> dict[str, Any]:
        """One booking as stored (with its notice reference if ``reference``: staff only), or NotFound."""
        key = self.store.office_key(office_id)
        async with self.store.redis.pipeline(transaction=False) as pipe:
            raw, ref = await pipe.hgetall(f"{key}bk:{booking_id}").get(f"{key}bkref:{booking_id}").execute()
        if not raw:
            raise NotFound("no such booking")
        booking = _decode(raw)
        booking["office"] = office_id
        if reference and ref is not None:
            booking["reference"] = ref.decode()
        return booking

    async def _find(self, kind: str, value: str, offices: Iterable[str]) -> tuple[str, str]:
        """(office, booking id) of a code or secret, trying ``offices`` in order; NotFound otherwise."""
        order = list(offices)
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for office_id in order:
                pipe.get(f"{self.store.office_key(office_id)}{kind}:{value}")
            ids = await pipe.execute()
        for office_id, booking_id in zip(order, ids, strict=True):
            if booking_id is not None:
                return office_id, booking_id.decode()
        raise NotFound("no such booking")

    async def find_by_code(self, typed: str, offices: Sequence[str] | None = None, *,
                           reference: bool = False) -> dict[str, Any]:
        """The booking of a code as a person typed it (``MalformedCode`` if it cannot be one). A code is
        unique in its office; without ``offices`` every configured office is tried, in configuration order."""
        code = rules.normalise_code(typed)
        office_id, booking_id = await self._find("bkcode", code, offices or self.store.config.offices)
        return await self.get(office_id, booking_id, reference=reference)

    async def find_by_secret(self, secret: str) -> dict[str, Any]:
        """The booking of a secret link (any office), or NotFound."""
        if not (16 <= len(secret) <= 64 and secret.isascii()):
            raise NotFound("no such booking")
        office_id, booking_id = await self._find("bksecret", secret, self.store.config.offices)
        return await self.get(office_id, booking_id)

    async def day_list(self, office_id: str, day: dt.date) -> list[dict[str, Any]]:
        """Every booking of ``day`` (cancelled and released ones too), by slot, with notice references."""
        key = self.store.office_key(self.office(office_id).id)
        ids = [i.decode() for i in await self.store.redis.zrange(f"{key}bkday:{rules.day_id(day)}", 0, -1)]
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for booking_id in ids:
                pipe.hgetall(f"{key}bk:{booking_id}").get(f"{key}bkref:{booking_id}")
            answers = await pipe.execute()
        out = []
        for raw, ref in zip(answers[::2], answers[1::2], strict=True):
            if raw:
                booking = {**_decode(raw), "office": office_id}
                if ref is not None:
                    booking["reference"] = ref.decode()
                out.append(booking)
        return out

    async def availability(self, requests: Sequence[tuple[str, str]], first: dt.date,
                           days: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """For each (office, procedure): the days from ``first`` (at most ``days``) with bookable slots,
        each ``{day, remaining, slots: [{slot, start, end, remaining, capacity}]}`` (full slots with 0).

        All offices' slot counts are read in one pipeline round trip: the call centre's slot-finder asks
        for weeks of days at every office at once."""
        now = self.store.clock.now_ms()
        plan: list[tuple[tuple[str, str], str, list[rules.Slot], int]] = []
        for office_id, procedure in requests:
            office = self.office(office_id)
            if procedure not in office.bookings.procedures:
                continue
            capacity = self.capacity(office, procedure)
            by_day: dict[str, list[rules.Slot]] = {}
            for found in self.calendar(office, procedure).bookable(first, days, now):
                by_day.setdefault(found.day, []).append(found)
            plan += [((office_id, procedure), day, slots, capacity) for day, slots in by_day.items()]
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for (office_id, procedure), day, _slots, _capacity in plan:
                pipe.hgetall(f"{self.store.office_key(office_id)}slot:{day}:{procedure}")
            taken_by_day = await pipe.execute()
        out: dict[tuple[str, str], list[dict[str, Any]]] = {request: [] for request in requests}
        for (request, day, slots, capacity), taken in zip(plan, taken_by_day, strict=True):
            listed = [{"slot": s.slot, "start": s.start_ms, "end": s.end_ms,
                       "remaining": max(0, capacity - int(taken.get(s.slot.encode(), 0))), "capacity": capacity}
                      for s in slots]
            out[request].append({"day": day, "remaining": sum(s["remaining"] for s in listed), "slots": listed})
        return out
