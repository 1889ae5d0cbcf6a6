"""The kiosk's two server endpoints: print a ticket on the receipt printer, and draw a status QR code.

``POST /api/tickets/{token}/print`` prints the ticket the token belongs to, once it has just been
issued: numbers, procedure, people ahead, the estimate and the status QR code, never personal
data. It answers ``{"printed": true}``, ``{"printed": false}`` when printing is off
(``[printer] kind = "none"``), or 503 with the code ``printer_error`` and the printer module's
Japanese message for staff. ``GET /kiosk/qr/{token}.svg`` is the QR code of a status page on
this server; it encodes nothing but this server's status URL.
"""

from __future__ import annotations

import io
import logging
import re
from collections import OrderedDict
from typing import Any, Final

import segno
from aiohttp import web

from queue_server.config import ConfigError
from queue_server.domain.model import NotFound
from queue_server.web.keys import CLOCK, CONFIG, HUB, STORE
from queue_server.web.messages import ApiError, error_body, json_response
from queue_server.web.openapi import add_paths, operation
from queue_server.web.views import status_url, ticket_by_token

from .printer import PrinterConfig, PrinterConfigError, PrinterError, TicketPrint, TicketPrinter

log = logging.getLogger(__name__)

TOKEN: Final = re.compile(r"^[A-Za-z0-9_.-]{10,64}$")  # {office}.{secrets.token_urlsafe} (older ones: no office)
PRINTER_ERROR_STATUS: Final = 503
PRINT_WINDOW_MS: Final = 10 * 60_000   # a ticket is printed right after issue, not later from a phone
MAX_PRINTS: Final = 2                  # the first print, and one retry after staff fix the printer
REMEMBERED_TICKETS: Final = 10_000

PRINTER: Final = web.AppKey("ticket_printer", TicketPrinter)
PRINTS: Final = web.AppKey("ticket_prints", OrderedDict)  # token -> prints so far (bounded, oldest dropped)


def _token(request: web.Request) -> str:
    token = request.match_info["token"]
    if not TOKEN.match(token):
        raise NotFound("no ticket with this status link")
    return token


def _minutes(estimate: object) -> int | None:
    """The median of a ticket view's estimate as whole minutes, when there is one."""
    if isinstance(estimate, dict) and isinstance(estimate.get("median_minutes"), int | float):
        return max(1, round(estimate["median_minutes"]))
    return None


async def print_ticket(request: web.Request) -> web.Response:
    """POST /api/tickets/{token}/print — print a just-issued ticket on the kiosk's printer."""
    token = _token(request)
    store, clock, config = request.app[STORE], request.app[CLOCK], request.app[CONFIG]
    office_id, day, number = await ticket_by_token(request, token)  # misses limited per address
    ticket = await store.ticket(office_id, day, number)
    if ticket.get("state") != "waiting" or clock.now_ms() - int(ticket.get("issued_at", 0)) > PRINT_WINDOW_MS:
        raise ApiError("conflict", f"ticket {number} can only be printed while waiting and within "
                                   f"{PRINT_WINDOW_MS // 60_000} minutes of issue")
    printer = request.app[PRINTER]
    if not printer.enabled:
        return json_response({"printed": False, "reason": "printer_off"})
    prints = request.app[PRINTS]
    if prints.get(token, 0) >= MAX_PRINTS:
        raise ApiError("conflict", f"ticket {number} was already printed {MAX_PRINTS} times")
    office = config.offices[office_id]
    procedure = office.procedures[ticket["procedure"]]
    lang = ticket.get("lang", "ja")
    state = request.app[HUB].state(office_id)
    view = state.ticket_view(day, number, ticket)
    # Right after issuing, this ticket's own estimate may not be computed yet: the procedure's outlook
    # for a ticket issued now is the same figure the kiosk showed.
    estimate = view.get("estimate") or state.estimates.get("procedures", {}).get(ticket["procedure"])
    ticket_print = TicketPrint(
        office_name=office.name, number=number, procedure_name=procedure.name,
        procedure_name_local=procedure.names.get(lang), lang=lang,
        issued_at=clock.local(int(ticket["issued_at"])), status_url=status_url(request, token),
        ahead=view.get("ahead"),
        wait_minutes=None if isinstance(estimate, dict) and estimate.get("past_closing") else _minutes(estimate),
        booked_slot=f"{clock.local(int(ticket['slot_start'])):%H:%M}" if ticket.get("booked") == "1" else None,
    )
    prints[token] = prints.get(token, 0) + 1
    prints.move_to_end(token)
    while len(prints) > REMEMBERED_TICKETS:
        prints.popitem(last=False)
    try:
        printed = await printer.print_ticket(ticket_print)
    except PrinterError as e:
        log.warning("ticket %s at %s not printed: %s", number, office_id, e)
        body = error_body(ApiError("printer_error", e.message))
        body["error"]["reason"] = e.reason
        return json_response(body, status=PRINTER_ERROR_STATUS)
    return json_response({"printed": printed})


def qr_svg(data: str) -> bytes:
    """``data`` as a QR code in SVG (error correction M: a scratched ticket still scans)."""
    buffer = io.BytesIO()
    segno.make(data, error="m", micro=False).save(
        buffer, kind="svg", scale=10, border=2, dark="#111a2b", xmldecl=False, svgclass=None, lineclass=None)
    return buffer.getvalue()


async def status_qr(request: web.Request) -> web.Response:
    """GET /kiosk/qr/{token}.svg — the QR code of the status page of a token (an SVG)."""
    token = _token(request)
    # The picture carries the visitor's token: never stored by a proxy or shared cache.
    return web.Response(body=qr_svg(status_url(request, token)), content_type="image/svg+xml",
                        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})


def _openapi() -> dict[str, Any]:
    """The print endpoint's OpenAPI entry (the QR code is a page resource, not API)."""
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "the status token from issuing"}
    op = operation("Print a just-issued ticket on the kiosk's receipt printer (no personal data)",
                   '{"printed": true}, or {"printed": false, "reason": "printer_off"} when [printer] kind = "none"',
                   params=[token])
    op["responses"]["503"] = {
        "description": 'printer_error: not printed; error.message tells staff what to check (Japanese), '
                       'error.reason is one of unreachable, timeout, disconnected, paper_out, driver_missing, busy',
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {"/api/tickets/{token}/print": {"post": op}}


def setup_api(app: web.Application) -> None:
    """The printer from ``[printer]`` (a wrong table stops the server with every problem named) and the routes."""
    config = app[CONFIG]
    try:
        app[PRINTER] = TicketPrinter(PrinterConfig.from_mapping(config.printer))
    except PrinterConfigError as e:
        raise ConfigError([f"{config.source}: {problem}" for problem in e.problems]) from None
    app[PRINTS] = OrderedDict()
    app.router.add_post("/api/tickets/{token}/print", print_ticket)
    add_paths(app, _openapi())
    app.router.add_get("/kiosk/qr/{token}.svg", status_qr)
