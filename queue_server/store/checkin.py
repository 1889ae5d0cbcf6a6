"""Check-in of booked visitors: a booking code (or the secret link of its QR) becomes a numbered ticket.

The booking records are ``lua/bookings.lua``'s (``O bk:{id}``, ``O bkcode:{CODE}``,
``O bksecret:{secret}``); the check-in itself is one step, ``ops.check_in`` in ``lua/checkin.lua``.
The rules (``[offices.bookings]``): check-in opens ``checkin_early_minutes`` before the slot;
a visitor more than ``late_minutes`` late becomes a walk-in from the check-in (``late``); on time,
the ticket is ``booked`` and, once its slot starts, called before the walk-ins of its priority
class (``domain/policy.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..domain.model import BookedBeforeSlot, Conflict, DomainError, NotFound, NumberFormat
from .redis_store import QueueStore, Result


class CheckInRefused(Conflict):
    """A booking that cannot be checked in now; ``details`` lets a page say why in the visitor's language."""

    def __init__(self, message: str, *, code: str, details: Mapping[str, Any]) -> None:
        super().__init__(message, code=code)
        self.details = dict(details)


def _format(fmt: NumberFormat) -> dict[str, Any]:
    return {"prefix": fmt.prefix, "width": fmt.width, "first": fmt.first, "last": fmt.last}


def _day(day: str) -> str:
    """``YYYYMMDD`` as people read it: ``2026-12-01``."""
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


async def check_in(store: QueueStore, office_id: str, booking: Mapping[str, Any], *, lang: str = "ja",
                   actor: str | None = None, idem: str | None = None, estimate_minutes: float | None = None) -> Result:
    """Check the visitor of ``booking`` (as ``Bookings.find_by_code``/``find_by_secret`` give it: its
    ``office`` and ``id``) in at ``office_id``; the ticket, its status token and people ahead.
    ``estimate_minutes``: the wait shown at check-in, kept on the ticket as at issue (reports).

    ``CheckInRefused`` (409) for a booking of another office or day, too early, already checked in or
    cancelled. A visitor more than ``late_minutes`` late, their booking released as a no-show or not
    yet, gets a walk-in's ticket (``late``).
    """
    office = store.office(office_id)
    if booking["office"] != office_id:
        day, slot = str(booking.get("day", "")), str(booking.get("slot", ""))
        other = store.config.offices[booking["office"]]
        raise CheckInRefused(
            f"this booking is for {other.name} on {_day(day)} at {slot}; please check in there",
            code="wrong_office", details={"office": other.id, "office_name": other.name, "day": day, "slot": slot})
    rules = office.bookings
    clock = store.clock

    def refused(answer: Mapping[str, Any]) -> DomainError | None:
        code, day, slot = answer["err"], answer.get("day", ""), answer.get("slot", "")
        if code == "booking_not_found":
            return NotFound("no such booking")
        if code == "check_in_too_early":
            opens = clock.local(int(answer["opens_at"]))
            return CheckInRefused(
                f"check-in for the {slot} booking opens at {opens:%H:%M} ({rules.checkin_early_minutes} minutes "
                "before the slot); please come back then",
                code="check_in_too_early", details={"opens_at": int(answer["opens_at"]), "opens": f"{opens:%H:%M}",
                                                    "day": day, "slot": slot})
        if code == "wrong_day":
            return CheckInRefused(f"this booking is for {office.name} on {_day(day)} at {slot}, not today",
                                  code="wrong_day", details={"office": office_id, "office_name": office.name,
                                                             "day": day, "slot": slot})
        if code == "already_checked_in":
            number = str(answer.get("ticket", "")).split("|")[-1]
            return CheckInRefused(f"this booking is already checked in: ticket {number}",
                                  code="already_checked_in", details={"number": number, "day": day, "slot": slot})
        if code == "booking_not_active":
            state = answer["state"]
            return CheckInRefused(f"this booking is {state}; please take a ticket at the kiosk",
                                  code="booking_not_active", details={"state": state, "day": day, "slot": slot})
        return None

    formats = {p.id: {"number": _format(p.number), **({"booked": _format(p.booked_number)} if p.booked_number else {})}
               for p in office.procedures.values()}
    return await store._run(  # noqa: SLF001 - an area module of the store (ARCHITECTURE.md, "Store")
        "check_in", office_id, idem=idem, actor=actor, errors=refused, booking=str(booking["id"]), lang=lang,
        token=store.new_token(office_id), formats=formats, estimate_minutes=estimate_minutes,
        early_ms=rules.checkin_early_minutes * 60_000, late_ms=rules.late_minutes * 60_000,
        at_check_in=store.config.calling.booked_before_slot is BookedBeforeSlot.AT_CHECK_IN,
        keep_for_slot=store.config.calling.booked_before_slot is BookedBeforeSlot.KEEP_FOR_SLOT)
