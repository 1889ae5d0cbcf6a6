"""Bookings (予約): codes a person can read over the phone, the slots of a day, capacity and deadlines.

Plain Python: no aiohttp, Redis or file I/O. The store (``store/bookings.py``, ``lua/bookings.lua``)
keeps the places taken per slot and never lets a slot run over the capacity computed here.

- A **code** is 8 characters from :data:`ALPHABET` (no 0/O, 1/I, 2/Z, 5/S, 8/B: nothing a caller
  can mishear or misread), the last a check character over the first seven (:func:`check_character`:
  every single wrong character and every swap of two neighbours, or of two characters one apart, is
  caught before any lookup). Shown as ``XXXX-XXXX``; accepted in any case, with or without the hyphen
  or spaces.
- A day's **slots** run from the opening time in steps of ``slot_minutes``, each ending by closing
  time; closed days have none, holiday openings (``hours.special``) have theirs.
- **Capacity** is configured per slot, or follows from the counters kept for bookings:
  ``counters × slot_minutes / service_minutes``, rounded down, at least 1.
- **Deadlines**: bookings open ``open_days_ahead`` days ahead and close ``close_days_before`` open
  days before the slot's day at ``close_at`` (the previous business day at 17:00 for a card pickup:
  the back office must prepare the card); never after the slot has started.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from .hours import DayHours
from .model import Conflict, DomainError

ALPHABET: Final = "ACDEFHJKLMNPQRTUVWXY34679"
"""The 25 characters of a booking code: none that sounds or looks like another (0/O, 1/I, 2/Z, 5/S, 8/B)."""
CODE_LENGTH: Final = 8
_WEIGHTS: Final = (9, 8, 7, 6, 4, 3, 2)
"""Weights of the seven characters in the check sum mod 25 (the check character's own weight is 1).
Each is prime to 5, so any single wrong character changes the sum; neighbours' weights, and weights
two apart, differ by a number prime to 5, so swapping such two characters changes it too."""
_INDEX: Final = {c: i for i, c in enumerate(ALPHABET)}
_SEPARATORS: Final = re.compile(r"[\s\-‐‑‒–—―ー－]+")
"""What people type between the halves: spaces (also full-width), hyphens and dashes of every kind."""
_DAY: Final = re.compile(r"^\d{8}$")
_SLOT: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
SEARCH_DAYS_BACK: Final = 62
"""How far back the close deadline looks for open days (two months of closure is beyond any calendar)."""


# -- errors ---------------------------------------------------------------------------------------

class BookingRefused(DomainError):
    """A booking the office's rules do not allow (a closed day, past the deadline …): HTTP 422."""

    code = "booking_refused"


class MalformedCode(DomainError):
    """What was typed cannot be a booking code (length, characters or check character)."""

    code = "invalid_code"


class SlotFull(Conflict):
    """Every place of the slot is taken."""

    code = "slot_full"


# -- codes ----------------------------------------------------------------------------------------

def check_character(body: str) -> str:
    """The check character of the first seven characters: the one that makes the weighted sum of all
    eight (:data:`_WEIGHTS`, then 1) a multiple of 25.

    (Luhn mod N would not do: with an odd number of characters its doubling maps two characters to
    the same value, so some single errors would pass.)"""
    total = sum(w * _INDEX[c] for w, c in zip(_WEIGHTS, body, strict=True))
    return ALPHABET[-total % len(ALPHABET)]


def new_code() -> str:
    """A random booking code (seven random characters, 25⁷ ≈ 6·10⁹ of them, and the check character)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH - 1))
    return body + check_character(body)


def normalise_code(typed: str) -> str:
    """The code in its stored form (``ACDEFHJ7``) from what a person typed (``acde-fhj7``, ``ACDE FHJ7``).

    Raises :class:`MalformedCode` saying what is wrong; a well-formed code may still be unknown.
    """
    code = _SEPARATORS.sub("", typed).upper()
    if len(code) != CODE_LENGTH:
        raise MalformedCode(f"a booking code has {CODE_LENGTH} characters (like ACDE-FHJ7); got {len(code)}")
    wrong = sorted({c for c in code if c not in _INDEX})
    if wrong:
        raise MalformedCode(f"a booking code uses only {ALPHABET}; {''.join(wrong)!r} cannot be in one")
    if check_character(code[:-1]) != code[-1]:
        raise MalformedCode("this is not a booking code: a character is wrong or two are swapped")
    return code


def display_code(code: str) -> str:
    """The code as shown and read out: ``ACDE-FHJ7``."""
    return f"{code[:4]}-{code[4:]}"


# -- configuration ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ProcedureBooking:
    """How one procedure takes bookings.

    ``capacity`` places per slot, or ``counters`` kept for bookings (capacity from the service time).
    Closes ``close_days_before`` open days before the slot's day at ``close_at`` (None: the slot's
    start, or with 0 days at the opening of the day). ``booking_only``: no walk-ins at all;
    ``booking_only_dates``: no walk-ins on those days.
    """

    capacity: int | None = None
    counters: int | None = None
    close_days_before: int = 0
    close_at: dt.time | None = None
    booking_only: bool = False
    booking_only_dates: frozenset[dt.date] = frozenset()


@dataclass(frozen=True, slots=True)
class OfficeBookings:
    """An office's booking rules and the procedures that take bookings.

    ``booking_only_dates`` are the office's days (holiday openings marked ``booking_only``) on which
    every procedure that takes bookings takes no walk-ins.
    """

    slot_minutes: int = 30
    open_days_ahead: int = 28
    checkin_early_minutes: int = 30
    late_minutes: int = 10
    reference_keep_days: int = 30
    procedures: dict[str, ProcedureBooking] = field(default_factory=dict)
    booking_only_dates: frozenset[dt.date] = frozenset()
    phone: str = ""              # the booking line, as people dial it ("0561-88-2650"); "" for none
    phone_hours: str = ""        # when it answers, in Japanese ("平日 9:00〜17:00"); "" to say nothing
    phone_hours_texts: dict[str, str] = field(default_factory=dict)  # the same in the other languages

    def phone_view(self) -> dict[str, Any] | None:
        """The booking line for pages: ``{number, tel (a tel: link), hours: {lang: text} | None}``."""
        if not self.phone:
            return None
        hours = {"ja": self.phone_hours, **self.phone_hours_texts} if self.phone_hours else None
        return {"number": self.phone, "tel": "tel:" + re.sub(r"[^0-9+]", "", self.phone), "hours": hours}

    def takes_walk_ins(self, procedure: str, day: dt.date) -> bool:
        """Whether a numbered ticket may be taken without a booking for ``procedure`` on ``day``."""
        rules = self.procedures.get(procedure)
        if rules is None:
            return True
        return not (rules.booking_only or day in rules.booking_only_dates or day in self.booking_only_dates)


def slot_capacity(rules: ProcedureBooking, slot_minutes: int, service_minutes: float) -> int:
    """Places per slot: the configured capacity, or what the counters kept for bookings serve in one
    slot at ``service_minutes`` a visitor (the measured median when known, else the configured prior),
    rounded down, at least 1."""
    if rules.capacity is not None:
        return rules.capacity
    counters = rules.counters or 1
    return max(1, math.floor(counters * slot_minutes / max(service_minutes, 0.1)))


# -- slots ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Slot:
    """One bookable slot: its day (``YYYYMMDD``), start (``HH:MM``) and epoch-ms start and end."""

    day: str
    slot: str
    start_ms: int
    end_ms: int


def parse_day(value: str) -> dt.date:
    """``YYYYMMDD`` (or ISO ``YYYY-MM-DD``) → date; :class:`DomainError` naming the format otherwise."""
    text = value.replace("-", "") if len(value) == 10 else value
    if _DAY.match(text):
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    raise DomainError(f"day must be a date as YYYYMMDD (e.g. 20261203), got {value[:20]!r}")


def day_id(day: dt.date) -> str:
    """A date as the store's day: ``YYYYMMDD``."""
    return day.strftime("%Y%m%d")


def _ms(day: dt.date, time: dt.time, zone: ZoneInfo) -> int:
    return int(dt.datetime.combine(day, time, zone).timestamp() * 1000)


class Calendar(Protocol):
    """What the rules need of an office calendar: the hours of a date (None: closed)."""

    def for_date(self, day: dt.date) -> DayHours | None: ...


class _RememberedCalendar:
    """An office calendar that looks each date up once: the slot-finder asks for weeks of days and
    the dates before each (holiday look-ups are not free)."""

    def __init__(self, hours: Calendar) -> None:
        self.hours = hours
        self.known: dict[dt.date, DayHours | None] = {}

    def for_date(self, day: dt.date) -> DayHours | None:
        """The hours of ``day`` (looked up the first time only)."""
        if day not in self.known:
            self.known[day] = self.hours.for_date(day)
        return self.known[day]


def day_slots(hours: Calendar, day: dt.date, slot_minutes: int, zone: ZoneInfo) -> list[Slot]:
    """The slots of ``day`` by the office calendar: from opening, every ``slot_minutes``, each ending by
    closing time; none on a closed day."""
    opening = hours.for_date(day)
    if opening is None:
        return []
    opens = opening.opens.hour * 60 + opening.opens.minute
    closes = opening.closes.hour * 60 + opening.closes.minute  # at most 23:59: slots end on their day
    midnight, name = _ms(day, dt.time(0), zone), day_id(day)
    # Minutes from midnight in the office's time zone: no time change happens in office hours there.
    return [Slot(name, f"{m // 60:02d}:{m % 60:02d}", midnight + m * 60_000, midnight + (m + slot_minutes) * 60_000)
            for m in range(opens, closes - slot_minutes + 1, slot_minutes)]


def find_slot(slots: list[Slot], day: dt.date, slot: str, slot_minutes: int) -> Slot:
    """The slot starting at ``slot`` (``HH:MM``) among ``day``'s ``slots``; :class:`BookingRefused` on a
    closed day or for a time that is not one of the day's slots."""
    if not _SLOT.match(slot):
        raise DomainError(f"slot must be a time as HH:MM (e.g. 09:30), got {slot[:20]!r}")
    if not slots:
        raise BookingRefused(f"the office is closed on {day.isoformat()}: there are no slots that day",
                             code="day_closed")
    for candidate in slots:
        if candidate.slot == slot:
            return candidate
    raise BookingRefused(f"{slot} is not a slot on {day.isoformat()}: slots start every {slot_minutes} minutes "
                         f"from {slots[0].slot} to {slots[-1].slot}", code="slot_outside_hours")


def day_deadline(hours: Calendar, day: dt.date, rules: ProcedureBooking, zone: ZoneInfo) -> int | None:
    """Epoch ms after which ``day``'s slots can no longer be booked: ``close_days_before`` open days of the
    office calendar before it, at ``close_at``; None when only the slot's start closes it."""
    if rules.close_days_before == 0:
        return None if rules.close_at is None else _ms(day, rules.close_at, zone)
    found, back = 0, day
    for _ in range(SEARCH_DAYS_BACK):
        back -= dt.timedelta(days=1)
        if hours.for_date(back) is not None:
            found += 1
            if found == rules.close_days_before:
                break
    else:
        back = day - dt.timedelta(days=rules.close_days_before)  # no open days at all: calendar days
    return _ms(back, rules.close_at or dt.time(0), zone)


def check_bookable(hours: Calendar, office: OfficeBookings, procedure: str, day: dt.date, slot: str,
                   now_ms: int, zone: ZoneInfo) -> Slot:
    """The slot if ``procedure`` may be booked for ``day`` at ``slot`` now; otherwise the rule it breaks
    (see :meth:`SlotCalendar.check`, and ``not_bookable`` for a procedure that takes no bookings)."""
    if procedure not in office.procedures:
        raise not_bookable(office, procedure)
    return SlotCalendar(hours, office, procedure, zone).check(day, slot, now_ms)


def not_bookable(office: OfficeBookings, procedure: str) -> BookingRefused:
    """The refusal for a procedure that takes no bookings (naming those that do)."""
    bookable = ", ".join(office.procedures) or "none"
    return BookingRefused(f"procedure {procedure!r} takes no bookings here; bookable: {bookable}",
                          code="not_bookable")


class SlotCalendar:
    """The slots and close deadline of each day for one procedure of one office, worked out once per day
    (the configuration does not change while the server runs): the call centre's slot-finder asks for
    four weeks at every office on each search."""

    KEPT_DAYS: Final = 400
    """Days remembered before starting afresh (the open window is a few weeks; old days are never asked)."""

    def __init__(self, hours: Calendar, office: OfficeBookings, procedure: str, zone: ZoneInfo) -> None:
        self.hours = _RememberedCalendar(hours)
        self.office = office
        self.rules = office.procedures[procedure]
        self.zone = zone
        self._days: dict[dt.date, tuple[int | None, list[Slot]]] = {}

    def day(self, day: dt.date) -> tuple[int | None, list[Slot]]:
        """``(close deadline or None, slots)`` of ``day``."""
        known = self._days.get(day)
        if known is None:
            if len(self._days) >= self.KEPT_DAYS:
                self._days.clear()
                self.hours.known.clear()
            known = self._days[day] = (day_deadline(self.hours, day, self.rules, self.zone),
                                       day_slots(self.hours, day, self.office.slot_minutes, self.zone))
        return known

    def check(self, day: dt.date, slot: str, now_ms: int) -> Slot:
        """The slot if it may be booked (or moved to) now; otherwise :class:`BookingRefused` naming the rule:
        ``day_closed``, ``slot_outside_hours``, ``slot_past``, ``booking_not_open``, ``booking_closed``."""
        deadline, slots = self.day(day)
        found = find_slot(slots, day, slot, self.office.slot_minutes)
        if found.start_ms <= now_ms:
            raise BookingRefused(f"the slot {day.isoformat()} {slot} has already begun", code="slot_past")
        ahead = self.office.open_days_ahead
        if day > dt.datetime.fromtimestamp(now_ms / 1000, self.zone).date() + dt.timedelta(days=ahead):
            raise BookingRefused(f"bookings open {ahead} days ahead: {day.isoformat()} can be booked from "
                                 f"{(day - dt.timedelta(days=ahead)).isoformat()}", code="booking_not_open")
        if deadline is not None and now_ms >= deadline:
            closed = dt.datetime.fromtimestamp(deadline / 1000, self.zone).strftime("%Y-%m-%d %H:%M")
            raise BookingRefused(f"bookings for {day.isoformat()} {slot} closed at {closed}", code="booking_closed")
        return found

    def bookable(self, first: dt.date, days: int, now_ms: int) -> Iterator[Slot]:
        """Every slot that may be booked now, on ``days`` days from ``first`` (the open window and the
        deadlines applied; capacity is the store's)."""
        today = dt.datetime.fromtimestamp(now_ms / 1000, self.zone).date()
        last = min(first + dt.timedelta(days=days - 1), today + dt.timedelta(days=self.office.open_days_ahead))
        day = max(first, today)
        while day <= last:
            deadline, slots = self.day(day)
            if deadline is None or now_ms < deadline:
                yield from (slot for slot in slots if slot.start_ms > now_ms)
            day += dt.timedelta(days=1)


def bookable_slots(hours: Calendar, office: OfficeBookings, procedure: str, first: dt.date, days: int,
                   now_ms: int, zone: ZoneInfo) -> Iterator[Slot]:
    """Every slot of ``procedure`` that may be booked now, on ``days`` days from ``first`` (none if the
    procedure takes no bookings); see :class:`SlotCalendar`."""
    if procedure in office.procedures:
        yield from SlotCalendar(hours, office, procedure, zone).bookable(first, days, now_ms)


# -- the notice reference and what a booking shows ----------------------------------------------------

_REFERENCE: Final = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$")
PUBLIC_FIELDS: Final = ("office", "procedure", "day", "slot", "slot_start", "slot_end", "state", "lang", "ticket")
"""What the visitor holding the code or secret link sees: where and when, and the state."""
STAFF_FIELDS: Final = (*PUBLIC_FIELDS, "id", "channel", "actor", "created_at", "changed_at", "late", "task",
                       "reference")
"""What signed-in staff see besides: who booked, when, and the notice-postcard reference."""


def check_reference(text: str) -> str:
    """The notice-postcard reference (交付通知書の番号) as stored: letters, digits and hyphens, at most 32.

    Free text is refused on purpose: the reference is the one identifier a booking may carry, and a
    field that took any text would soon hold names and phone numbers."""
    reference = text.strip().upper()
    if not _REFERENCE.match(reference):
        raise DomainError("reference must be the number on the notice postcard: 1–32 letters, digits or hyphens",
                          code="invalid_request")
    return reference


def booking_view(booking: Mapping[str, Any], office: OfficeBookings, *, staff: bool) -> dict[str, Any]:
    """A booking as an answer shows it: its code (``XXXX-XXXX``), when check-in opens and when a visitor
    counts as late; staff also see who booked and the notice reference. Never the secret."""
    fields = STAFF_FIELDS if staff else PUBLIC_FIELDS
    view = {k: booking[k] for k in fields if booking.get(k) not in (None, "")}
    view["code"] = display_code(booking["code"])
    start = int(booking["slot_start"])
    view["checkin_opens"] = start - office.checkin_early_minutes * 60_000
    view["late_after"] = start + office.late_minutes * 60_000
    return view
