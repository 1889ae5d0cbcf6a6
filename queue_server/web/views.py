"""HTTP handlers of the JSON API: parse, call the store, answer. No business rules here."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ..config import Office
from ..domain.model import NotFound, Role
from ..domain.state import public_ticket, staff_ticket
from ..store.ratelimit import Subject
from .auth import SESSION_COOKIE, current_staff, require_counter_staff, require_staff
from .client_address import client_address
from .keys import ACCOUNTS, CLOCK, CONFIG, ESTIMATES, HUB, STORE, TOKEN_GUESSES
from .messages import ApiError, json_response
from .validation import Field, max_length, one_of, read_body

LANGUAGES: Final = ("ja", "ja-easy", "en", "zh", "ko", "pt", "vi")
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
IDEMPOTENCY_KEY_LENGTH: Final = (8, 100)
COUNTER_OPS: Final = {"recall": "recall", "start": "start", "finish": "finish", "no-show": "no_show"}
COUNTER_STATUS: Final = {"open": "open", "pause": "paused", "resume": "open", "close": "closed"}
DIRECT_TO_CITY_STAFF: Final = frozenset({Role.CITY, Role.SUPERVISOR})
"""Who may issue a ticket straight into a city-staff-only procedure (see ARCHITECTURE.md, HTTP API)."""


def _idem(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    shortest, longest = IDEMPOTENCY_KEY_LENGTH
    if key is not None and not (shortest <= len(key) <= longest and key.isascii() and key.isprintable()):
        raise ApiError("invalid_request",
                       f"{IDEMPOTENCY_HEADER} must be {shortest}–{longest} printable ASCII characters",
                       field=IDEMPOTENCY_HEADER)
    return key


def _office(request: web.Request) -> Office:
    return request.app[STORE].office(request.match_info["office"])


def public_base(request: web.Request) -> str:
    """Where visitors' phones reach this server: the configured public URL or this host."""
    return request.app[CONFIG].server.public_url or f"{request.scheme}://{request.host}"


def status_url(request: web.Request, token: str) -> str:
    """The visitor's status page for a token, on the configured public URL or this host."""
    return f"{public_base(request)}/status/{token}"


def office_info(office: Office, request: web.Request) -> dict[str, Any]:
    """An office's public description: procedures, counters, hours today, open now."""
    clock, config = request.app[CLOCK], request.app[CONFIG]
    now = clock.now()
    hours = office.hours.for_date(now.date())
    state = request.app[HUB].state(office.id)
    return {
        "id": office.id, "name": office.name, "short_name": office.short_name,
        "open_now": config.server.always_open or office.hours.is_open(now),
        "hours_today": hours.to_dict() if hours else None,
        "procedures": [{"id": p.id, "name": p.name, "description": p.description, "names": p.names,
                        "descriptions": p.descriptions, "city_staff_only": p.city_staff_only,
                        "service_minutes": p.service_minutes, "paused": p.id in state.paused,
                        "bookable": p.id in office.bookings.procedures,
                        "walk_ins_today": office.bookings.takes_walk_ins(p.id, now.date())}
                       for p in office.procedures.values()],
        # The booking rules a page explains to visitors (check-in window, lateness), if any are bookable.
        "bookings": {"slot_minutes": office.bookings.slot_minutes, "open_days_ahead": office.bookings.open_days_ahead,
                     "checkin_early_minutes": office.bookings.checkin_early_minutes,
                     "late_minutes": office.bookings.late_minutes} if office.bookings.procedures else None,
        "counters": [{"id": c.id, "name": c.name, "procedures": list(c.procedures), "staff": c.staff.value}
                     for c in office.counters.values()],
    }


async def list_offices(request: web.Request) -> web.Response:
    """GET /api/offices"""
    return json_response({"offices": [office_info(o, request) for o in request.app[CONFIG].offices.values()]})


async def get_office(request: web.Request) -> web.Response:
    """GET /api/offices/{office}"""
    return json_response(office_info(_office(request), request))


async def get_state(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/state — the live state, as the caller's WebSocket snapshot: the lobby's
    (calls and counts) for anyone, the counter panels' (every waiting ticket, hand-over reasons) for staff."""
    office = _office(request)
    state = request.app[HUB].state(office.id)
    return json_response(state.snapshot() if await current_staff(request) else state.lobby_snapshot())


ISSUE_SCHEMA: Final = {
    "procedure": Field(str, required=True),
    "lang": Field(str, default="ja", check=one_of(*LANGUAGES)),
    "priority": Field(int, default=0, check=lambda v: None if 0 <= v <= 9 else "must be 0–9"),
}


async def issue_ticket(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/tickets — take a numbered ticket (no sign-in)."""
    office = _office(request)
    body = await read_body(request, ISSUE_SCHEMA)
    procedure = office.procedures.get(body["procedure"])
    staff = None
    if body["priority"]:
        # Reception and sorting of visitors is the contractor's work, so any staff may give priority.
        staff = await require_staff(request)
    if procedure is not None and procedure.city_staff_only:
        # Contractor staff bring a case to city staff by handing it over from their counter (recorded
        # with where it came from); a ticket straight into that queue is city staff's own decision.
        staff = await require_staff(request)
        if staff.role not in DIRECT_TO_CITY_STAFF:
            raise ApiError("forbidden", f"only city staff or a supervisor may issue a ticket straight into "
                                        f"{procedure.id!r} (a city-staff-only procedure); contractor staff hand "
                                        "the visitor over from their counter (hand-over)")
    config, clock = request.app[CONFIG], request.app[CLOCK]
    if not config.server.always_open and not office.hours.is_open(clock.now()):
        raise ApiError("office_closed", f"{office.name} is not receiving visitors now")
    if procedure is not None and not office.bookings.takes_walk_ins(procedure.id, clock.now().date()):
        # A booking-only day (休日交付) or procedure: booked visitors check in with their code instead.
        raise ApiError("booking_only", f"{procedure.id} takes booked visitors only today: check in with your "
                                       "booking code, or book a slot")
    # The estimate for a ticket issued now in this procedure: what the kiosk shows and prints (and the
    # archive keeps, to report how accurate the shown estimates were).
    outlook = request.app[HUB].state(office.id).estimates.get("procedures", {}).get(body["procedure"])
    shown = outlook.get("median_minutes") if isinstance(outlook, dict) else None
    result = await request.app[STORE].issue(office.id, body["procedure"], lang=body["lang"], priority=body["priority"],
                                           idem=_idem(request),
                                           estimate_minutes=shown if isinstance(shown, int | float) else None)
    # Staff who gave a priority class or a staff-only queue see the staff fields (the class) they set.
    ticket = (staff_ticket if staff is not None else public_ticket)(result["ticket"])
    return json_response({"ticket": ticket, "token": result["token"],
                          "status_url": status_url(request, result["token"]), "ahead": result["ahead"],
                          "estimate": outlook}, status=201)


async def ticket_by_token(request: web.Request, token: str) -> tuple[str, str, str]:
    """``(office, day, number)`` of a status token; misses slow the client address down (never lock it)."""
    async with request.app[TOKEN_GUESSES].guard(Subject("address", client_address(request))):
        if not (10 <= len(token) <= 64):
            raise NotFound("no ticket with this status link")
        return await request.app[STORE].resolve_token(token)


async def get_ticket_status(request: web.Request) -> web.Response:
    """GET /api/tickets/{token} — the visitor's own ticket and place in line."""
    office, day, number = await ticket_by_token(request, request.match_info["token"])
    ticket = await request.app[STORE].ticket(office, day, number)
    return json_response({"office": office, **request.app[HUB].state(office).ticket_view(day, number, ticket)})


async def cancel_by_visitor(request: web.Request) -> web.Response:
    """POST /api/tickets/{token}/cancel — the visitor leaves the line."""
    await read_body(request, {})
    office, day, number = await ticket_by_token(request, request.match_info["token"])
    result = await request.app[STORE].cancel(office, number, day=day, actor="visitor", idem=_idem(request))
    return json_response({"ticket": public_ticket(result["ticket"])})


async def cancel_by_staff(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/tickets/{number}/cancel"""
    office = _office(request)
    staff = await require_staff(request)
    await read_body(request, {})
    result = await request.app[STORE].cancel(office.id, request.match_info["number"], actor=staff.username,
                                            idem=_idem(request))
    return json_response({"ticket": staff_ticket(result["ticket"])})


def _hand_over_category(request: web.Request) -> Any:
    """The check of a hand-over's ``category``: one of the configured reason categories."""
    categories = request.app[CONFIG].calling.hand_over_categories
    return lambda v: None if v in categories else f"must be one of: {', '.join(categories) or '(none configured)'}"


def _counter_answer(result: dict[str, Any]) -> web.Response:
    """A counter action's answer: to the staff member at the counter, so with the staff fields."""
    body: dict[str, Any] = {"counter": result["counter"]}
    if "ticket" in result:
        body["ticket"] = staff_ticket(result["ticket"])
    return json_response(body)


async def counter_action(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/counters/{counter}/{action}"""
    office = _office(request)
    counter_id, action = request.match_info["counter"], request.match_info["action"]
    if counter_id not in office.counters:
        raise NotFound(f"no counter {counter_id!r} at {office.id}; counters: {', '.join(office.counters)}")
    store = request.app[STORE]
    staff = await require_counter_staff(request, office, counter_id)
    idem, actor = _idem(request), staff.username
    if action == "call-next":
        await read_body(request, {})
        return _counter_answer(await store.call_next(office.id, counter_id, actor=actor, idem=idem))
    if action == "call":
        body = await read_body(request, {"number": Field(str, required=True, check=max_length(8))})
        return _counter_answer(await store.call_number(office.id, counter_id, body["number"], actor=actor, idem=idem))
    if action in COUNTER_OPS:
        await read_body(request, {})
        return _counter_answer(await store.counter_op(COUNTER_OPS[action], office.id, counter_id, actor=actor, idem=idem))
    if action == "hand-over":
        body = await read_body(request, {"to": Field(str, required=True, check=one_of(*office.procedures)),
                                         "reason": Field(str, default="", check=max_length(200)),
                                         "category": Field(str, default=None, check=_hand_over_category(request)),
                                         "keep_place": Field(bool, default=True)})
        return _counter_answer(await store.hand_over(office.id, counter_id, body["to"], body["reason"],
                                                     keep_place=body["keep_place"], category=body["category"],
                                                     actor=actor, idem=idem))
    if action in COUNTER_STATUS:
        await read_body(request, {})
        return _counter_answer(await store.set_counter_status(office.id, counter_id, COUNTER_STATUS[action],
                                                              actor=actor, idem=idem))
    allowed = ", ".join(["call-next", "call", *COUNTER_OPS, "hand-over", *COUNTER_STATUS])
    raise NotFound(f"no counter action {action!r}; actions: {allowed}")


def notice_texts(texts: Any) -> str | None:
    """A check of ``texts``: the notice in the other languages, ``{lang: text}`` of at most 200 characters."""
    for lang, text in texts.items():
        if lang not in LANGUAGES or lang == "ja":
            return f"has {lang!r}, not one of {', '.join(LANGUAGES[1:])} (the Japanese text is 'text')"
        if not isinstance(text, str) or len(text) > 200:
            return f"{lang!r} must be a string of at most 200 characters"
    return None


async def set_notice(request: web.Request) -> web.Response:
    """PUT /api/offices/{office}/notice — the lobby display's notice line (supervisor): ``text`` in
    Japanese, ``texts`` the other languages' (the display and the congestion page show their own)."""
    office = _office(request)
    staff = await require_staff(request, Role.SUPERVISOR)
    body = await read_body(request, {"text": Field(str, required=True, check=max_length(200)),
                                     "texts": Field(dict, default={}, check=notice_texts)})
    texts = {lang: text for lang, text in body["texts"].items() if text.strip()} if body["text"] else {}
    await request.app[STORE].set_notice(office.id, body["text"], texts=texts, actor=staff.username)
    return json_response({"notice": body["text"], "notices": texts})


async def procedure_status(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/procedures/{procedure}/{pause|resume} (supervisor)"""
    office = _office(request)
    staff = await require_staff(request, Role.SUPERVISOR)
    action = request.match_info["action"]
    if action not in ("pause", "resume"):
        raise NotFound(f"no procedure action {action!r}; actions: pause, resume")
    await read_body(request, {})
    procedure = request.match_info["procedure"]
    await request.app[STORE].set_procedure_paused(office.id, procedure, action == "pause", actor=staff.username)
    return json_response({"procedure": procedure, "paused": action == "pause"})


async def service_model(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/service-model — measured times and the model behind the estimates (supervisor)."""
    office = _office(request)
    await require_staff(request, Role.SUPERVISOR)
    state = request.app[HUB].state(office.id)
    model = await request.app[ESTIMATES].model(office, state, fresh=True)
    return json_response({"office": office.id, "model": model.explain(), "estimates": state.estimates})


async def sign_in(request: web.Request) -> web.Response:
    """POST /api/session — sign in with user name and password; sets the session cookie."""
    body = await read_body(request, {"username": Field(str, required=True, check=max_length(32)),
                                     "password": Field(str, required=True, check=max_length(200))})
    staff = await request.app[ACCOUNTS].sign_in(body["username"], body["password"], client_address(request))
    if staff is None:
        raise ApiError("unauthorized", "wrong user name or password")
    response = json_response({"username": staff.username, "role": staff.role.value,
                              "display_name": staff.display_name, "csrf_token": staff.csrf})
    response.set_cookie(SESSION_COOKIE, staff.session, httponly=True, samesite="Strict", path="/",
                        secure=request.app[CONFIG].server.secure_cookies, max_age=12 * 3600)
    return response


async def whoami(request: web.Request) -> web.Response:
    """GET /api/session — the signed-in staff member, with the CSRF token pages need."""
    staff = await current_staff(request)
    if staff is None:
        raise ApiError("unauthorized", "not signed in")
    return json_response({"username": staff.username, "role": staff.role.value,
                          "display_name": staff.display_name, "csrf_token": staff.csrf})


async def sign_out(request: web.Request) -> web.Response:
    """DELETE /api/session"""
    staff = await require_staff(request)
    await request.app[ACCOUNTS].sign_out(staff)
    response = json_response({"signed_out": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
