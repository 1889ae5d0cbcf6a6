"""The ticket kiosk's URLs: the kiosk, the visitor's status page, the public congestion page.

- ``/kiosk/{office}`` — the touch kiosk (発券機), portrait 1080×1920 or landscape 1920×1080.
  ``?print=`` chooses how the kiosk prints, per kiosk terminal (its start URL):
  ``auto`` (default) prints on the server's ``[printer]``; with ``kind = "none"`` it prints
  nothing (the visitor notes the number or scans the QR code on screen); when that printer fails
  the kiosk says so and falls back to the browser's print layout (80 mm roll, ``@media print``).
  ``browser`` always uses the browser's print layout (a printer attached to the kiosk PC; run
  Chromium with ``--kiosk-printing`` so no dialog appears). ``off`` never prints.
  ``?lang=`` sets the start language (default Japanese; the kiosk returns to it after each visitor).
- ``/status/{token}`` — the visitor's phone: live place in line, alert when near and when called.
- ``/congestion`` and ``/congestion/{office}`` — public waiting times per office and procedure.

The pages get everything live from the public HTTP/WebSocket API; these handlers only render
the page frame with the office's name and the page's texts.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from queue_server.config import Office
from queue_server.domain.booking import ALPHABET
from queue_server.web.guessing import KIOSK_COOKIE, registered_kiosk, set_kiosk_cookie
from queue_server.web.keys import CONFIG
from queue_server.web.pages import page_language, render_page
from queue_server.web.views import public_base

from .api import TOKEN, setup_api
from .setup import setup_routes as setup_kiosk_setup

PRINT_MODES: Final = ("auto", "browser", "off")
RETURN_SECONDS: Final = 20       # the ticket screen goes back to the start by itself
IDLE_RESET_SECONDS: Final = 60   # a language chosen but not used is reset for the next visitor


def _office(request: web.Request) -> Office:
    office = request.app[CONFIG].offices.get(request.match_info["office"])
    if office is None:
        raise web.HTTPNotFound(text=f"no office {request.match_info['office']!r}")
    return office


async def kiosk_page(request: web.Request) -> web.Response:
    """GET /kiosk/{office}"""
    office = _office(request)
    mode = request.query.get("print", "auto")
    if mode not in PRINT_MODES:
        raise web.HTTPBadRequest(text=f"print must be one of {', '.join(PRINT_MODES)}, got {mode!r}")
    lang = page_language(request)
    # Check-in of booked visitors, where the office takes bookings: its rules are shown in plain words.
    rules = office.bookings
    checkin = {"early_minutes": rules.checkin_early_minutes, "late_minutes": rules.late_minutes} if rules.procedures else None
    # Where to book, said on the hours' line when a procedure takes bookings (their buttons say the next
    # free slot in the congestion section's texts): the address without its scheme, read off the screen,
    # and the booking line ([offices.bookings] phone) when the office has one.
    booking_url = f"{public_base(request)}/book/{office.id}".split("://", 1)[-1] if rules.procedures else None
    response = render_page(request, "kiosk.html", lang=lang, catalog_sections=("kiosk", "checkin", "congestion"),
                       all_languages=True, office=office, checkin=checkin, code_alphabet=list(ALPHABET), page_data={
                           "checkin": checkin, "booking_url": booking_url,
                           "booking_phone": rules.phone_view() if rules.procedures else None,
                           "office": office.id, "office_name": office.name, "print_mode": mode,
                           "default_lang": lang, "return_seconds": RETURN_SECONDS,
                           "idle_reset_seconds": IDLE_RESET_SECONDS,
                           "warn_past_closing": request.app[CONFIG].warn_past_closing})
    if await registered_kiosk(request, office.id) is not None:
        set_kiosk_cookie(request, response, request.cookies[KIOSK_COOKIE])  # renewed: browsers cap a cookie's life
    return response


async def status_page(request: web.Request) -> web.Response:
    """GET /status/{token} — in the ticket's language once the page has read the ticket."""
    token = request.match_info["token"]
    if not TOKEN.match(token):
        raise web.HTTPNotFound(text="no ticket with this status link")
    config = request.app[CONFIG]
    lang = page_language(request)
    return render_page(request, "status.html", lang=lang, catalog_sections=("status",), all_languages=True,
                       page_data={"token": token, "near_turn_ahead": config.calling.near_turn_ahead,
                                  "lang": request.query.get("lang") and lang})


async def congestion_page(request: web.Request) -> web.Response:
    """GET /congestion and /congestion/{office}"""
    config = request.app[CONFIG]
    offices = [_office(request)] if "office" in request.match_info else list(config.offices.values())
    return render_page(request, "congestion.html", lang=page_language(request), catalog_sections=("congestion",),
                       offices=offices, single=len(offices) == 1 and "office" in request.match_info,
                       levels=config.congestion_minutes,
                       page_data={"offices": [o.id for o in offices]})


def setup(app: web.Application) -> None:
    """Register the kiosk's pages, its print endpoint and the status QR code."""
    setup_api(app)
    setup_kiosk_setup(app)
    app.router.add_get("/kiosk/{office}", kiosk_page)
    app.router.add_get("/status/{token}", status_page)
    app.router.add_get("/congestion", congestion_page)
    app.router.add_get("/congestion/{office}", congestion_page)
