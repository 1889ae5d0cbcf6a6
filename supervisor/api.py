"""The supervisor's endpoints (role supervisor): outage mode, a counter's procedures today, closing the day.

- ``POST /api/outage`` ``{"offices", "procedures", "notice"}`` — outage mode (機器障害・システム障害) in the
  chosen offices: the chosen procedures stop issuing and the prepared ``[[outage_notices]]`` text goes up
  on every public screen, in one step per office. ``POST /api/outage/end`` ``{"offices"}`` ends it.
- ``PUT /api/offices/{office}/counters/{counter}/procedures`` ``{"procedures": [...] | null}`` — what the
  counter serves for the rest of the business day (null: its configured procedures again).
- ``POST /api/offices/{office}/day/close`` ``{"confirm"}`` — the close-out: refused with 409
  ``visitors_waiting`` while visitors wait or are at a counter unless confirmed (they then expire);
  answers the day report, kept for ``GET /api/offices/{office}/day/report[?day=YYYYMMDD]``.

Pausing a procedure, the notice and opening/pausing/closing a counter are the existing endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from queue_server.aio import stop_tasks
from queue_server.config import Office
from queue_server.domain.model import Conflict, NotFound, Role
from queue_server.domain.supervision import supervisor_view
from queue_server.reports import load
from queue_server.store.archive import Archive
from queue_server.store.supervisor import SupervisorSteps, back_office_backlog, bookings_to_come
from queue_server.web.auth import require_staff
from queue_server.web.keys import CLOCK, CONFIG, HUB, STORE
from queue_server.web.messages import ApiError, json_response
from queue_server.web.openapi import add_paths, operation
from queue_server.web.validation import Field, read_body
from queue_server.web.views import _idem
from queue_server.web.ws import SupervisorSubscription

STEPS: Final = web.AppKey("supervisor_steps", SupervisorSteps)
EXTRAS_EVERY_SECONDS: Final = 10.0
"""How often the console's figures from other areas' keys are read again (sooner after a change)."""
EXTRAS_SPACING_SECONDS: Final = 2.0
"""At least this long between two reads, however busy the offices (every change wakes the reader)."""
MAX_LISTED: Final = 50
"""Offices or procedures one request may name (a city has a handful)."""


def _ids(what: str) -> Any:
    """A check that a list holds 1–50 distinct strings."""
    def check(values: list[Any]) -> str | None:
        if not values or len(values) > MAX_LISTED:
            return f"must list 1–{MAX_LISTED} {what}"
        if not all(isinstance(v, str) for v in values) or len(set(values)) != len(values):
            return f"must list distinct {what} ids (strings)"
        return None
    return check


def _offices(request: web.Request, ids: list[str]) -> list[Office]:
    store = request.app[STORE]
    return [store.office(i) for i in ids]  # NotFound names the unknown one and the offices there are


async def start_outage(request: web.Request) -> web.Response:
    """POST /api/outage — outage mode in the chosen offices."""
    staff = await require_staff(request, Role.SUPERVISOR)
    config = request.app[CONFIG]
    body = await read_body(request, {"offices": Field(list, required=True, check=_ids("offices")),
                                     "procedures": Field(list, required=True, check=_ids("procedures")),
                                     "notice": Field(str, required=True)})
    offices = _offices(request, body["offices"])
    notice = config.outage_notices.get(body["notice"])
    if notice is None:
        raise ApiError("invalid_request", f"field 'notice' must be one of the prepared [[outage_notices]]: "
                                          f"{', '.join(config.outage_notices) or '(none configured)'}", field="notice")
    for p in body["procedures"]:
        if not any(p in o.procedures for o in offices):
            raise ApiError("invalid_request", f"field 'procedures': no procedure {p!r} in the chosen offices",
                           field="procedures")
    hub = request.app[HUB]
    chosen = {o.id: [p for p in body["procedures"] if p in o.procedures] for o in offices}
    # Checked for every office before any starts, so a refusal changes nothing. The same outage
    # again (a retried request) is no refusal: each office's step leaves it as it is.
    if busy := [o for o, procedures in chosen.items() if (outage := hub.state(o).outage)
                and (outage["procedures"] != procedures or outage["notice_id"] != notice.id)]:
        raise Conflict(f"already in outage mode: {', '.join(busy)}; end it first", code="outage_active")
    idem, started = _idem(request), []
    for office in offices:
        procedures = chosen[office.id]
        result = await request.app[STEPS].outage_start(office.id, procedures, notice.id, notice.text,
                                                       actor=staff.username, idem=idem)
        started.append({"office": office.id, **result["outage"]})
    return json_response({"outages": started})


async def end_outage(request: web.Request) -> web.Response:
    """POST /api/outage/end — end outage mode in the chosen offices."""
    staff = await require_staff(request, Role.SUPERVISOR)
    body = await read_body(request, {"offices": Field(list, required=True, check=_ids("offices"))})
    offices = _offices(request, body["offices"])
    hub, idem = request.app[HUB], _idem(request)
    # A retried request (same Idempotency-Key) gets its first answer from each office's step.
    if not idem and (idle := [o.id for o in offices if not hub.state(o.id).outage]):
        raise Conflict(f"not in outage mode: {', '.join(idle)}", code="no_outage")
    for office in offices:
        await request.app[STEPS].outage_end(office.id, actor=staff.username, idem=idem)
    return json_response({"ended": [o.id for o in offices]})


async def counter_procedures(request: web.Request) -> web.Response:
    """PUT /api/offices/{office}/counters/{counter}/procedures — what a counter serves for the rest of today."""
    staff = await require_staff(request, Role.SUPERVISOR)
    office = request.app[STORE].office(request.match_info["office"])
    body = await read_body(request, {"procedures": Field((list, type(None)), required=True)})
    procedures = body["procedures"]
    if procedures is not None and (problem := _ids("procedures")(procedures)):
        raise ApiError("invalid_request", f"field 'procedures' {problem}, or null for the configured ones",
                       field="procedures")
    result = await request.app[STEPS].counter_procedures(office.id, request.match_info["counter"], procedures,
                                                         actor=staff.username, idem=_idem(request))
    return json_response({"counter": result["counter"]})


def day_report(request: web.Request, office: Office) -> dict[str, Any]:
    """The console's own figures of the day for an office (the archive's daily report is separate)."""
    levels = request.app[CONFIG].service_levels
    view = supervisor_view(request.app[HUB].state(office.id), levels.target_wait_minutes, levels.target_share)
    return {"office": office.id, "name": office.name, "day": view["day"], "today": view["today"],
            "still_waiting": view["still_waiting"],
            "counters_open": [c["id"] for c in view["counters"] if c["status"] != "closed"]}


async def close_day(request: web.Request) -> web.Response:
    """POST /api/offices/{office}/day/close — close today out and keep its report."""
    staff = await require_staff(request, Role.SUPERVISOR)
    office = request.app[STORE].office(request.match_info["office"])
    body = await read_body(request, {"confirm": Field(bool, default=False)})
    config, clock = request.app[CONFIG], request.app[CLOCK]
    # After closing time (by the office's hours; a server kept open for a demo may close at any time).
    if not config.server.always_open and office.hours.is_open(clock.now()):
        raise ApiError("office_open", f"{office.name} is still receiving visitors until closing time; "
                                      "close the day after it")
    state = request.app[HUB].state(office.id)
    if not body["confirm"] and (state.waiting or state.active):
        # The store checks again in its step; this answer can name how many.
        raise Conflict(f"{len(state.waiting)} visitors are still waiting and {len(state.active)} are at a counter; "
                       "serve them first, or close the day with confirm: true (their tickets then expire)",
                       code="visitors_waiting")
    steps = request.app[STEPS]
    result = await steps.close_day(office.id, confirm=body["confirm"], actor=staff.username, idem=_idem(request))
    report = {**day_report(request, office), "day": result["day"], "closed_at": result["event"]["at"],
              "closed_by": staff.username, "expired": result["event"].get("expired") or [],
              "downloads": report_downloads(result["day"], office.id)}
    await steps.save_day_report(office.id, result["day"], report)
    # The day's report (日報) from the visit archive, now that every visit of the day is final.
    archived = await load.daily_report(Archive(steps.store.redis, steps.store.prefix), config,
                                       iso_day(result["day"]), office.id)
    return json_response({**report, "archive_report": archived.to_json()})


def iso_day(day: str) -> str:
    """``20261201`` → ``2026-12-01`` (the reports' form)."""
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


def report_downloads(day: str, office: str) -> dict[str, str]:
    """The day report's downloads (the archive's GET /api/reports/daily)."""
    return {fmt: f"/api/reports/daily?day={iso_day(day)}&office={office}&format={fmt}" for fmt in ("xlsx", "csv")}


async def get_day_report(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/day/report[?day=YYYYMMDD] — the saved close-out report, or today's figures so far."""
    await require_staff(request, Role.SUPERVISOR)
    office = request.app[STORE].office(request.match_info["office"])
    day = request.query.get("day")
    if day is None:
        return json_response({**day_report(request, office), "closed_at": None})
    if not (len(day) == 8 and day.isdigit()):
        raise ApiError("invalid_request", f"day must be YYYYMMDD, got {day[:20]!r}", field="day")
    report = await request.app[STEPS].day_report(office.id, day)
    if report is None:
        raise NotFound(f"no close-out report of {office.id} for {day}")
    return json_response(report)


def _openapi() -> dict[str, Any]:
    office = {"name": "office", "in": "path", "required": True, "schema": {"type": "string"}}
    counter = {"name": "counter", "in": "path", "required": True, "schema": {"type": "string"}}
    ids = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_LISTED, "uniqueItems": True}

    def staff_op(summary: str, ok: str, params: list[dict[str, Any]], body: dict[str, Any] | None) -> dict[str, Any]:
        op = operation(summary, ok, params=params, body=body)
        op["security"] = [{"session": []}]
        return op

    return {
        "/api/outage": {"post": staff_op(
            "Outage mode (supervisor): pause the procedures in the offices and show a prepared notice everywhere",
            '{"outages": [{office, active, procedures, notice_id, notice: {lang: text}, since}]}; 409 outage_active',
            [], {"type": "object", "additionalProperties": False, "required": ["offices", "procedures", "notice"],
                 "properties": {"offices": ids, "procedures": ids,
                                "notice": {"type": "string", "description": "an [[outage_notices]] id"}}})},
        "/api/outage/end": {"post": staff_op(
            "End outage mode (supervisor): the notice goes; procedures paused by it resume, others stay paused",
            '{"ended": [office ids]}; 409 no_outage', [],
            {"type": "object", "additionalProperties": False, "required": ["offices"], "properties": {"offices": ids}})},
        "/api/offices/{office}/counters/{counter}/procedures": {"put": staff_op(
            "The procedures a counter serves for the rest of the business day (supervisor); null: its configured ones",
            '{"counter": {id, status, procedures, procedures_day, …}}', [office, counter],
            {"type": "object", "additionalProperties": False, "required": ["procedures"],
             "properties": {"procedures": {"oneOf": [ids, {"type": "null"}]}}})},
        "/api/offices/{office}/day/close": {"post": staff_op(
            "Close the day (supervisor, after closing time): 409 visitors_waiting unless confirm (they then expire)",
            "the day report: {office, day, today: {issued, procedures, service_level, estimates}, still_waiting, "
            "counters_open, closed_at, closed_by, expired}", [office],
            {"type": "object", "additionalProperties": False, "properties": {"confirm": {"type": "boolean"}}})},
        "/api/offices/{office}/day/report": {"get": staff_op(
            "The day report (supervisor): a closed day's (?day=YYYYMMDD), else today's figures so far",
            "as the close-out answers", [office, {"name": "day", "in": "query", "required": False,
                                                  "schema": {"type": "string", "pattern": "^[0-9]{8}$"}}], None)},
    }


async def refresh_extras(app: web.Application) -> None:
    """Keep each office's bookings still to come today and back-office backlog on its live state.

    Read from the store (``O bkday``/``O bk``, ``O tasks``/``O task``, as ARCHITECTURE.md lists them) every
    few seconds and soon after any change, only for offices that take bookings or have procedures with
    back-office stages; a change is sent to every supervisor view of the office."""
    hub, store, clock = app[HUB], app[STORE], app[CLOCK]
    woken = asyncio.Event()
    hub.listeners.append(lambda _office, _state: woken.set())
    while True:
        for office in store.config.offices.values():
            state = hub.state(office.id)
            extras: dict[str, Any] = {}
            try:
                if getattr(getattr(office, "bookings", None), "procedures", None):
                    extras["bookings"] = await bookings_to_come(store, office.id, state.day, clock.now_ms())
                if any(getattr(p, "stages", ()) for p in office.procedures.values()):
                    extras["back_office"] = await back_office_backlog(store, office.id, clock.now_ms())
            except (RedisConnectionError, RedisTimeoutError):
                continue  # the store is away: the figures stay as they were until it is back
            state = hub.state(office.id)  # the hub may have rebuilt it meanwhile
            if extras != state.extras:
                state.extras = extras
                state.derived.pop("supervisor", None)
                for subscriber in list(hub.subscribers[office.id]):
                    if isinstance(subscriber, SupervisorSubscription):
                        subscriber.on_event({}, state)
        await asyncio.sleep(EXTRAS_SPACING_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), EXTRAS_EVERY_SECONDS - EXTRAS_SPACING_SECONDS)
        woken.clear()


def setup_api(app: web.Application) -> None:
    """The supervisor's endpoints and their OpenAPI entries."""

    async def steps(app: web.Application) -> Any:
        app[STEPS] = SupervisorSteps(app[STORE])
        task = asyncio.create_task(refresh_extras(app), name="supervisor-extras")
        yield
        await stop_tasks([task])

    app.cleanup_ctx.append(steps)
    r = app.router
    r.add_post("/api/outage", start_outage)
    r.add_post("/api/outage/end", end_outage)
    r.add_put("/api/offices/{office}/counters/{counter}/procedures", counter_procedures)
    r.add_post("/api/offices/{office}/day/close", close_day)
    r.add_get("/api/offices/{office}/day/report", get_day_report)
    add_paths(app, _openapi())
