"""HTTP handler for checking a booked visitor in: at the kiosk (no sign-in) or from a counter panel.

``POST /api/offices/{office}/check-in {code | secret, lang[, counter]}``: the booking code as typed
(any case, with or without the hyphen) or the secret of the booking's link (its QR code, read by a
scanner that types like a keyboard). With ``counter`` it is staff at that counter checking a visitor
in (a lost QR code, no phone): signed in, and not counted as guesses. Without it, misses count
against the registered kiosk sending them, else the address (``web/guessing.py``). The answer is the issue
answer (ticket, token, status URL, people ahead) plus the booking, so the kiosk prints and shows the
ticket as for a walk-in.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ..domain import booking as rules
from ..domain.state import public_ticket, staff_ticket
from ..store.checkin import check_in as store_check_in
from .auth import require_counter_staff
from .client_address import client_address
from .keys import BOOKING_GUESSES, BOOKINGS, CLOCK, CONFIG, HUB, STORE
from .messages import ApiError, json_response
from .openapi import add_paths, operation
from .validation import Field, max_length, one_of, read_body
from .guessing import booking_subject
from .views import LANGUAGES, _idem, status_url

CHECK_IN_SCHEMA: Final = {
    "code": Field(str, check=max_length(20)),
    "secret": Field(str, check=max_length(64)),
    "lang": Field(str, default="ja", check=one_of(*LANGUAGES)),
    "counter": Field(str, check=max_length(32)),
}


async def check_in(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/check-in — a booked visitor's numbered ticket."""
    office = request.app[STORE].office(request.match_info["office"])
    body = await read_body(request, CHECK_IN_SCHEMA)
    if (body["code"] is None) == (body["secret"] is None):
        raise ApiError("invalid_request", "give the booking code or the secret of its link (one of them)", field="code")
    staff = None
    if body["counter"] is not None:
        if body["counter"] not in office.counters:
            raise ApiError("invalid_request", f"no counter {body['counter']!r} at {office.id}", field="counter")
        staff = await require_counter_staff(request, office, body["counter"])
    config, clock = request.app[CONFIG], request.app[CLOCK]
    if not config.server.always_open and not office.hours.is_open(clock.now()):
        raise ApiError("office_closed", f"{office.name} is not receiving visitors now")
    bookings = request.app[BOOKINGS]
    # A code is tried at this office first, then at the city's other offices (to say where it belongs).
    offices = [office.id, *(o for o in config.offices if o != office.id)]

    async def find() -> dict[str, Any]:
        if body["code"] is not None:
            return await bookings.find_by_code(body["code"], offices)
        return await bookings.find_by_secret(body["secret"])

    if staff is not None:
        booking = await find()
    else:
        if body["code"] is not None:
            rules.normalise_code(body["code"])  # a malformed code is a 400 and costs no guess
        async with request.app[BOOKING_GUESSES].guard(await booking_subject(request, office.id)):
            booking = await find()
    # The estimate shown for a ticket of this procedure now (kept on the ticket for the reports, as at issue).
    outlook = request.app[HUB].state(office.id).estimates.get("procedures", {}).get(booking.get("procedure"))
    shown = outlook.get("median_minutes") if isinstance(outlook, dict) else None
    result = await store_check_in(request.app[STORE], office.id, booking, lang=body["lang"],
                                  actor=staff.username if staff else "kiosk", idem=_idem(request),
                                  estimate_minutes=shown if isinstance(shown, int | float) else None)
    ticket = result["ticket"]
    return json_response({
        "ticket": (staff_ticket if staff is not None else public_ticket)(ticket), "token": result["token"],
        "status_url": status_url(request, result["token"]), "ahead": result["ahead"], "estimate": outlook,
        "booking": result["booking"], "late": bool(ticket.get("late")),
        "slot_start": ticket.get("slot_start"),
    }, status=201)


def setup_routes(app: web.Application) -> None:
    """Register the check-in endpoint (called from ``routes.setup_routes``) and document it."""
    app.router.add_post("/api/offices/{office}/check-in", check_in)
    op = operation(
        "Check a booked visitor in: the booking code (any case, hyphen optional) or the secret of its link "
        "(no sign-in; misses slowed per registered kiosk — its cookie from /kiosk/setup — or per address, never "
        "locked: a kiosk's miss is answered up to 1 s later, an address is told Retry-After); with counter, "
        "staff at that counter (session, CSRF). "
        "Answers 201 like taking a ticket, plus booking and late. 409 check_in_too_early (details.opens), "
        "wrong_office / wrong_day (details: office, day, slot), already_checked_in (details.number), "
        "booking_not_active; 404 for an unknown code",
        "checked in",
        params=[{"name": "office", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}],
        body={"type": "object", "additionalProperties": False, "properties": {
            "code": {"type": "string", "maxLength": 20}, "secret": {"type": "string", "maxLength": 64},
            "lang": {"type": "string", "enum": list(LANGUAGES)}, "counter": {"type": "string", "maxLength": 32}}})
    op["responses"]["201"] = op["responses"].pop("200")
    add_paths(app, {"/api/offices/{office}/check-in": {"post": op}})
