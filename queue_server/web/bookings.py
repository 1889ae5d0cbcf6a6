"""HTTP handlers for bookings (予約): the citizen's (no sign-in) and the call centre's. Thin: parse,
check who asks, call ``store/bookings.py``, answer with ``domain.booking.booking_view``.

Public answers never carry the notice reference or who booked; the secret link (``/book/{office}/b/
{secret}``) is given to the one who booked, and to whoever knows the code (lookups whose misses are
slowed per address: ``store/ratelimit.py`` ``MissPacer``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from aiohttp import web

from ..domain import booking as rules
from ..domain.model import DomainError, Role
from .auth import current_staff, require_staff
from .client_address import client_address
from .keys import BOOKING_GUESSES, BOOKINGS, CLOCK, CONFIG, STORE
from .messages import ApiError, json_response
from .openapi import _CSRF, _IDEM, add_paths, operation
from .validation import Field, check_fields, max_length, one_of, read_body
from .guessing import booking_subject
from .views import LANGUAGES, _idem, public_base

BOOKING_STAFF: Final = (Role.CALLCENTER, Role.SUPERVISOR)
"""Who books, changes and cancels for a caller. Any signed-in staff may read bookings (the counter
checks visitors in, the back office prepares booked pickups' cards)."""
MAX_DAYS: Final = 62
SLOTS_LISTED: Final = 20
_DAY_FIELD: Final = Field(str, required=True, check=max_length(10))
_SLOT_FIELD: Final = Field(str, required=True, check=max_length(5))
_REFERENCE_FIELD: Final = Field(str, check=max_length(40))


def _day(value: str, field: str) -> dt.date:
    try:
        return rules.parse_day(value)
    except DomainError as e:
        raise ApiError("invalid_request", e.message, field=field) from None


def _view(request: web.Request, booking: dict[str, Any], *, staff: bool) -> dict[str, Any]:
    office = request.app[STORE].office(booking["office"])
    return rules.booking_view(booking, office.bookings, staff=staff)


async def _answer_view(request: web.Request, office: str, result: dict[str, Any], *, staff: bool) -> dict[str, Any]:
    """A changed booking as its answer shows it; staff see it as stored now, with its reference."""
    if staff:
        return _view(request, await request.app[BOOKINGS].get(office, result["booking"]["id"], reference=True),
                     staff=True)
    return _view(request, {**result["booking"], "office": office}, staff=False)


def _link(request: web.Request, office: str, secret: str) -> str:
    """The secret link (and QR code) to see, change or cancel a booking."""
    return f"{public_base(request)}/book/{office}/b/{secret}"


async def _created(request: web.Request, office: str, result: dict[str, Any], *, staff: bool) -> web.Response:
    booking = result["booking"]
    return json_response({"code": rules.display_code(booking["code"]), "secret": booking["secret"],
                          "link": _link(request, office, booking["secret"]),
                          "booking": await _answer_view(request, office, result, staff=staff)}, status=201)


def _range_query(request: web.Request) -> tuple[str, dt.date, int]:
    """``procedure``, ``from`` (default today) and ``days`` (default up to the open window) of a query."""
    query = check_fields(dict(request.query), {"procedure": Field(str, required=True, check=max_length(32)),
                                               "from": Field(str, check=max_length(10)),
                                               "days": Field(str, check=max_length(3)),
                                               "limit": Field(str, check=max_length(3))}, where="query")
    first = _day(query["from"], "from") if query["from"] else request.app[CLOCK].now().date()
    days = query["days"] or "29"
    if not days.isdigit() or not 1 <= int(days) <= MAX_DAYS:
        raise ApiError("invalid_request", f"days must be a whole number 1–{MAX_DAYS}", field="days")
    return query["procedure"], first, int(days)


# -- public ---------------------------------------------------------------------------------------

async def availability(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/bookings/availability?procedure=&from=&days= — bookable days and the
    places left in each slot (full slots with 0; days with no bookable slot are absent)."""
    office = request.app[STORE].office(request.match_info["office"])
    procedure, first, days = _range_query(request)
    if procedure not in office.bookings.procedures:
        raise rules.not_bookable(office.bookings, procedure)
    found = await request.app[BOOKINGS].availability([(office.id, procedure)], first, days)
    return json_response({"office": office.id, "procedure": procedure, "slot_minutes": office.bookings.slot_minutes,
                          "days": found[(office.id, procedure)]})


BOOK_SCHEMA: Final = {
    "procedure": Field(str, required=True, check=max_length(32)),
    "day": _DAY_FIELD,
    "slot": _SLOT_FIELD,
    "reference": _REFERENCE_FIELD,
    "lang": Field(str, default="ja", check=one_of(*LANGUAGES)),
}


async def book(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/bookings — book a slot (no sign-in) → 201 with code and secret link."""
    office = request.app[STORE].office(request.match_info["office"])
    body = await read_body(request, BOOK_SCHEMA)
    result = await request.app[BOOKINGS].book(
        office.id, body["procedure"], _day(body["day"], "day"), body["slot"], channel="web", lang=body["lang"],
        reference=body["reference"], actor="visitor", idem=_idem(request))
    return await _created(request, office.id, result, staff=False)


async def _by_secret(request: web.Request) -> dict[str, Any]:
    async with request.app[BOOKING_GUESSES].guard(await booking_subject(request)):
        return await request.app[BOOKINGS].find_by_secret(request.match_info["secret"])


async def get_by_secret(request: web.Request) -> web.Response:
    """GET /api/bookings/by-secret/{secret} — the booking of a secret link."""
    booking = await _by_secret(request)
    return json_response({"booking": _view(request, booking, staff=False)})


CHANGE_SCHEMA: Final = {
    "procedure": Field(str, check=max_length(32)),
    "day": Field(str, check=max_length(10)),
    "slot": Field(str, check=max_length(5)),
    "reference": _REFERENCE_FIELD,
}


async def _change(request: web.Request, booking: dict[str, Any], actor: str, *, staff: bool) -> web.Response:
    body = await read_body(request, CHANGE_SCHEMA)
    if not any(body[k] is not None for k in CHANGE_SCHEMA):
        raise ApiError("invalid_request", "say what to change: day and slot (and procedure), or reference")
    result = await request.app[BOOKINGS].change(
        booking["office"], booking["id"], procedure=body["procedure"],
        day=_day(body["day"], "day") if body["day"] else None, slot=body["slot"], reference=body["reference"],
        actor=actor, idem=_idem(request))
    return json_response({"booking": await _answer_view(request, booking["office"], result, staff=staff)})


async def _cancel(request: web.Request, booking: dict[str, Any], actor: str, *, staff: bool) -> web.Response:
    await read_body(request, {})
    result = await request.app[BOOKINGS].cancel(booking["office"], booking["id"], actor=actor, idem=_idem(request))
    return json_response({"booking": await _answer_view(request, booking["office"], result, staff=staff)})


async def change_by_secret(request: web.Request) -> web.Response:
    """PUT /api/bookings/by-secret/{secret} {day, slot[, procedure][, reference]} — move it in one step."""
    return await _change(request, await _by_secret(request), "visitor", staff=False)


async def cancel_by_secret(request: web.Request) -> web.Response:
    """DELETE /api/bookings/by-secret/{secret}"""
    return await _cancel(request, await _by_secret(request), "visitor", staff=False)


async def lookup(request: web.Request) -> web.Response:
    """POST /api/bookings/lookup {code[, office]} — the booking of a code, and its secret link (to change
    or cancel it). Anonymous lookups count misses per address; an unknown code is a plain 404."""
    body = await read_body(request, {"code": Field(str, required=True, check=max_length(20)),
                                     "office": Field(str, check=max_length(32))})
    offices = [request.app[STORE].office(body["office"]).id] if body["office"] else None
    staff = await current_staff(request)
    find = request.app[BOOKINGS].find_by_code
    if staff is not None:
        booking = await find(body["code"], offices, reference=True)
    else:
        # A malformed code costs the store nothing (and is answered 400 before this); only misses count.
        rules.normalise_code(body["code"])
        async with request.app[BOOKING_GUESSES].guard(await booking_subject(request)):
            booking = await find(body["code"], offices)
    return json_response({"booking": _view(request, booking, staff=staff is not None), "secret": booking["secret"],
                          "link": _link(request, booking["office"], booking["secret"])})


# -- staff ----------------------------------------------------------------------------------------

async def callcenter_slots(request: web.Request) -> web.Response:
    """GET /api/callcenter/slots?procedure=&from=&days=&limit= — the next free slots for a procedure at
    every office that books it, soonest first, and each office's days with room (staff)."""
    await require_staff(request)
    procedure, first, days = _range_query(request)
    limit = request.query.get("limit", str(SLOTS_LISTED))
    if not limit.isdigit() or not 1 <= int(limit) <= 200:
        raise ApiError("invalid_request", "limit must be a whole number 1–200", field="limit")
    config = request.app[CONFIG]
    offices = [o for o in config.offices.values() if procedure in o.bookings.procedures]
    if not offices:
        raise rules.BookingRefused(f"no office takes bookings for {procedure!r}", code="not_bookable")
    found = await request.app[BOOKINGS].availability([(o.id, procedure) for o in offices], first, days)
    free = sorted(({"office": o.id, "day": d["day"], **s} for o in offices for d in found[(o.id, procedure)]
                   for s in d["slots"] if s["remaining"] > 0), key=lambda s: (s["start"], s["office"]))
    return json_response({
        "procedure": procedure, "slots": free[:int(limit)],
        "offices": [{"office": o.id, "name": o.name, "short_name": o.short_name,
                     "days": [{"day": d["day"], "remaining": d["remaining"]} for d in found[(o.id, procedure)]]}
                    for o in offices]})


async def callcenter_book(request: web.Request) -> web.Response:
    """POST /api/callcenter/bookings {office, procedure, day, slot[, reference]} — book for a caller."""
    staff = await require_staff(request, *BOOKING_STAFF)
    body = await read_body(request, {**BOOK_SCHEMA, "office": Field(str, required=True, check=max_length(32))})
    office = request.app[STORE].office(body["office"])
    result = await request.app[BOOKINGS].book(
        office.id, body["procedure"], _day(body["day"], "day"), body["slot"], channel="callcenter",
        lang=body["lang"], reference=body["reference"], actor=staff.username, idem=_idem(request))
    return await _created(request, office.id, result, staff=True)


async def _by_code(request: web.Request) -> dict[str, Any]:
    office = request.app[STORE].office(request.match_info["office"])
    return await request.app[BOOKINGS].find_by_code(request.match_info["code"], [office.id], reference=True)


async def get_by_code(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/bookings/by-code/{code} — one booking with its reference (staff)."""
    await require_staff(request)
    booking = await _by_code(request)
    return json_response({"booking": _view(request, booking, staff=True), "secret": booking["secret"],
                          "link": _link(request, booking["office"], booking["secret"])})


async def change_by_code(request: web.Request) -> web.Response:
    """PUT /api/offices/{office}/bookings/by-code/{code} {day, slot[, procedure][, reference]} (call centre)."""
    staff = await require_staff(request, *BOOKING_STAFF)
    return await _change(request, await _by_code(request), staff.username, staff=True)


async def cancel_by_code(request: web.Request) -> web.Response:
    """DELETE /api/offices/{office}/bookings/by-code/{code} (call centre)."""
    staff = await require_staff(request, *BOOKING_STAFF)
    return await _cancel(request, await _by_code(request), staff.username, staff=True)


async def day_list(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/bookings?day= — the day's bookings with codes and references (staff)."""
    await require_staff(request)
    office = request.app[STORE].office(request.match_info["office"])
    query = check_fields(dict(request.query), {"day": Field(str, check=max_length(10))}, where="query")
    day = _day(query["day"], "day") if query["day"] else request.app[CLOCK].now().date()
    bookings = await request.app[BOOKINGS].day_list(office.id, day)
    return json_response({"office": office.id, "day": rules.day_id(day),
                          "bookings": [_view(request, b, staff=True) for b in bookings]})


def setup_routes(app: web.Application) -> None:
    """Register the booking endpoints (called from ``routes.setup_routes``)."""
    r = app.router
    r.add_get("/api/offices/{office}/bookings/availability", availability)
    r.add_get("/api/offices/{office}/bookings/by-code/{code}", get_by_code)
    r.add_put("/api/offices/{office}/bookings/by-code/{code}", change_by_code)
    r.add_delete("/api/offices/{office}/bookings/by-code/{code}", cancel_by_code)
    r.add_get("/api/offices/{office}/bookings", day_list)
    r.add_post("/api/offices/{office}/bookings", book)
    r.add_get("/api/bookings/by-secret/{secret}", get_by_secret)
    r.add_put("/api/bookings/by-secret/{secret}", change_by_secret)
    r.add_delete("/api/bookings/by-secret/{secret}", cancel_by_secret)
    r.add_post("/api/bookings/lookup", lookup)
    r.add_get("/api/callcenter/slots", callcenter_slots)
    r.add_post("/api/callcenter/bookings", callcenter_book)
    add_paths(app, OPENAPI_PATHS)



# -- OpenAPI ---------------------------------------------------------------------------------------

_PATH: Final = {"office": "office id", "secret": "the secret link's token (128 bits)",
                "code": "booking code, any case, with or without the hyphen"}
_QUERY_RANGE: Final = [
    {"name": "procedure", "in": "query", "required": True, "schema": {"type": "string"}},
    {"name": "from", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]{8}$"},
     "description": "first day YYYYMMDD (default today)"},
    {"name": "days", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}},
]
_BOOKING: Final = {"type": "object", "description": "a booking; staff answers add id, channel, actor, created_at, "
                   "changed_at, late, task and the notice reference", "properties": {
                       "code": {"type": "string", "pattern": "^[ACDEFHJKLMNPQRTUVWXY34679]{4}-[ACDEFHJKLMNPQRTUVWXY34679]{4}$"},
                       "office": {"type": "string"}, "procedure": {"type": "string"},
                       "day": {"type": "string", "pattern": "^[0-9]{8}$"}, "slot": {"type": "string"},
                       "slot_start": {"type": "integer"}, "slot_end": {"type": "integer"},
                       "state": {"type": "string", "enum": ["booked", "checked_in", "cancelled", "no_show"]},
                       "checkin_opens": {"type": "integer", "description": "epoch ms"},
                       "late_after": {"type": "integer", "description": "epoch ms: checked in later, a walk-in"},
                       "reference": {"type": "string", "description": "staff answers only"}}}
_BOOK_BODY: Final = {"type": "object", "additionalProperties": False, "required": ["procedure", "day", "slot"],
                     "properties": {"procedure": {"type": "string"}, "day": {"type": "string", "pattern": "^[0-9]{8}$"},
                                    "slot": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$"},
                                    "reference": {"type": "string", "pattern": "^[0-9A-Za-z][0-9A-Za-z-]{0,31}$",
                                                  "description": "the notice postcard's number (staff see it)"},
                                    "lang": {"type": "string", "enum": list(LANGUAGES)}}}
_CHANGE_BODY: Final = {"type": "object", "additionalProperties": False, "properties": {
    k: v for k, v in _BOOK_BODY["properties"].items() if k != "lang"}}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": _PATH[name]}


def _doc(summary: str, ok: str, *, params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
         staff: bool = False, created: bool = False) -> dict[str, Any]:
    op = operation(summary, ok, params=params, body=body)
    if "booking" in ok:  # answers with a booking: {booking[, code, secret, link]}
        op["responses"]["200"]["content"] = {"application/json": {"schema": {"type": "object", "properties": {
            "booking": _BOOKING, "code": {"type": "string"}, "secret": {"type": "string"},
            "link": {"type": "string", "description": "the secret link /book/{office}/b/{secret} (for the QR code)"}}}}}
    if created:
        op["responses"] = {"201": op["responses"].pop("200"), **op["responses"]}
    if staff:
        op["security"] = [{"session": []}]
    return op


OPENAPI_PATHS: Final = {
    "/api/offices/{office}/bookings/availability": {"get": _doc(
        "Bookable days from `from` and the places left in each slot (full slots 0; days with no bookable slot "
        "absent)", "{office, procedure, slot_minutes, days: [{day, remaining, slots: [{slot, start, end, remaining, "
        "capacity}]}]}", params=[_param("office"), *_QUERY_RANGE])},
    "/api/offices/{office}/bookings": {
        "post": _doc("Book a slot (no sign-in) → code, secret link, booking. 409 slot_full; 422 not_bookable, "
                     "day_closed, slot_outside_hours, slot_past, booking_not_open, booking_closed",
                     "{code, secret, link, booking}", params=[_param("office"), _IDEM], body=_BOOK_BODY,
                     created=True),
        "get": _doc("The day's bookings with codes and notice references (staff)", "{office, day, bookings}",
                    params=[_param("office"), {"name": "day", "in": "query", "required": False,
                                               "schema": {"type": "string"}}], staff=True)},
    "/api/offices/{office}/bookings/by-code/{code}": {
        "get": _doc("One booking by code, with its reference and secret link (staff)", "{booking, secret, link}",
                    params=[_param("office"), _param("code")], staff=True),
        "put": _doc("Move a booking to another slot in one step, or set its reference (call centre, supervisor)",
                    "{booking}", params=[_param("office"), _param("code"), _IDEM, _CSRF],
                    body=_CHANGE_BODY, staff=True),
        "delete": _doc("Cancel a booking (call centre, supervisor)", "{booking}",
                       params=[_param("office"), _param("code"), _IDEM, _CSRF], staff=True)},
    "/api/bookings/by-secret/{secret}": {
        "get": _doc("The booking of a secret link", "{booking}", params=[_param("secret")]),
        "put": _doc("Move it to another slot in one step", "{booking}", params=[_param("secret"), _IDEM],
                    body=_CHANGE_BODY),
        "delete": _doc("Cancel it", "{booking}", params=[_param("secret"), _IDEM])},
    "/api/bookings/lookup": {"post": _doc(
        "A booking by its code (and its secret link, to change or cancel it). Unknown codes are a plain 404 and "
        "slow the address down (after 10, the next lookup waits 1, 2, 4 … 30 s: Retry-After on the 404, 429 within "
        "the wait; never locked); signed-in staff also see the reference",
        "{booking, secret, link}", body={"type": "object", "additionalProperties": False, "required": ["code"],
                                         "properties": {"code": {"type": "string"}, "office": {"type": "string"}}})},
    "/api/callcenter/slots": {"get": _doc(
        "The next free slots for a procedure at every office that books it, soonest first (staff)",
        "{procedure, slots: [{office, day, slot, start, end, remaining, capacity}], offices: [{office, name, "
        "short_name, days: [{day, remaining}]}]}",
        params=[*_QUERY_RANGE, {"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 200}}], staff=True)},
    "/api/callcenter/bookings": {"post": _doc(
        "Book for a caller (call centre, supervisor); the actor is recorded", "{code, secret, link, booking}",
        params=[_IDEM, _CSRF], body={**_BOOK_BODY, "required": ["office", "procedure", "day", "slot"],
                                                   "properties": {**_BOOK_BODY["properties"],
                                                                  "office": {"type": "string"}}},
        staff=True, created=True)},
}
"""The booking endpoints' part of ``/api/openapi.json``."""
