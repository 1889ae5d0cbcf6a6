"""The public congestion view (混雑状況): per office, whether it receives visitors now and its hours
today; per procedure, people waiting, the estimated wait for a ticket taken now, its level, the
numbers being called and, for a procedure that takes bookings, the next free booking slot."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from aiohttp import web

from ..config import Office
from ..domain.state import OfficeState
from .keys import CLOCK, CONFIG, HUB, STORE
from .messages import json_response
from .next_booking import NEXT_BOOKING

CORS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}
NOW_CALLING: Final = 3
"""Numbers being called shown per procedure: the newest calls; more would not fit a phone's row."""
RECEPTION: Final = ("open", "not_yet_open", "ended", "closed_today")
"""Why an office is or is not taking tickets now (``reception``)."""


def level(minutes: float | None, thresholds: tuple[int, int]) -> str:
    """``low`` / ``medium`` / ``high`` by the configured minute thresholds; ``unknown`` without an estimate."""
    if minutes is None:
        return "unknown"
    return "low" if minutes < thresholds[0] else "medium" if minutes <= thresholds[1] else "high"


def reception(office: Office, now: dt.datetime, always_open: bool) -> str:
    """One of :data:`RECEPTION`: open now, not yet open today, closed for today, or closed all day."""
    if always_open or office.hours.is_open(now):
        return "open"
    hours = office.hours.for_date(now.date())
    if hours is None:
        return "closed_today"
    return "not_yet_open" if now.time() < hours.opens else "ended"


def congestion_view(app: web.Application, state: OfficeState) -> dict[str, Any]:
    """Per procedure of an office: waiting, estimated wait for a ticket taken now, level.

    Computed once per change of the office and shared by every watcher (thousands of phones);
    time passing changes whether the office is open, so that is part of the cache's key."""
    config, now = app[CONFIG], app[CLOCK].now()
    office = config.offices[state.office]
    # The next free booking slots are read apart from the state (next_booking.py): part of the key too.
    next_booking = app[NEXT_BOOKING].get(office.id) if NEXT_BOOKING in app else {}
    key = (now.date(), reception(office, now, config.server.always_open), next_booking)
    cached = state.derived.get("congestion")
    if cached is None or cached[0] != key:
        cached = state.derived["congestion"] = (key, _congestion_view(app, state, *key))
    return cached[1]


def _now_calling(state: OfficeState) -> dict[str, list[str]]:
    """Per procedure, the numbers at a counter now (called or being served), the newest call first."""
    active = sorted(state.active.values(), key=lambda t: int(t.get("called_at") or 0), reverse=True)
    calling: dict[str, list[str]] = {}
    for ticket in active:
        numbers = calling.setdefault(ticket["procedure"], [])
        if len(numbers) < NOW_CALLING:
            numbers.append(ticket["number"])
    return calling


def _congestion_view(app: web.Application, state: OfficeState, day: dt.date, status: str,
                     next_booking: dict[str, Any]) -> dict[str, Any]:
    config = app[CONFIG]
    office = config.offices[state.office]
    counts = state.waiting_counts()
    calling = _now_calling(state)
    estimates = state.estimates.get("procedures", {})
    # Outage mode: the procedures it stopped show no minutes (they are no longer true), only "unknown".
    unknown = set(state.outage["procedures"]) if state.outage else set()
    procedures = []
    for p in office.procedures.values():
        if p.city_staff_only:
            continue  # the city-staff queue is internal: visitors never take it at the kiosk
        outlook = {} if p.id in unknown else estimates.get(p.id, {})
        minutes = outlook.get("median_minutes")
        procedures.append({"id": p.id, "name": p.name, "names": p.names, "waiting": counts.get(p.id, 0),
                           "estimate_minutes": minutes, "low_minutes": outlook.get("low_minutes"),
                           "high_minutes": outlook.get("high_minutes"),
                           # Only an estimate can say a ticket would be called after closing.
                           "past_closing": minutes is not None and bool(outlook.get("past_closing")),
                           "level": level(minutes, config.congestion_minutes), "paused": p.id in state.paused,
                           "now_calling": calling.get(p.id, []),
                           # Procedures that take bookings: the next free slot ({day, slot, start}), or None.
                           "bookable": p.id in office.bookings.procedures,
                           "next_booking": next_booking.get(p.id), "wait_unknown": p.id in unknown})
    hours = office.hours.for_date(day)
    return {"office": office.id, "name": office.name, "date": day.isoformat(), "open": status == "open",
            "reception": status, "hours_today": hours.to_dict() if hours else None,
            "procedures": procedures, "seq": state.seq,
            # The booking line ({number, tel, hours: {lang: text}}), where the office takes bookings.
            "booking_phone": office.bookings.phone_view() if office.bookings.procedures else None,
            # The lobby's notice ({lang: text}, Japanese under "ja") and outage mode's prepared notice.
            "notice": {"ja": state.notice, **state.notices} if state.notice else None,
            "outage_notice": state.outage["notice"] if state.outage else None}


async def get_congestion(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/congestion (CORS open, for the city's website)."""
    office = request.app[STORE].office(request.match_info["office"])
    response = json_response(congestion_view(request.app, request.app[HUB].state(office.id)))
    response.headers.update(CORS)
    return response


async def get_all_congestion(request: web.Request) -> web.Response:
    """GET /api/congestion — every office."""
    hub = request.app[HUB]
    response = json_response({"offices": [congestion_view(request.app, hub.state(o)) for o in request.app[CONFIG].offices]})
    response.headers.update(CORS)
    return response
