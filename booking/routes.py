"""The booking page's URLs: the city's offices, one office's booking page, a booking's secret link.

- ``/book`` — the offices that take bookings, each a link to its page.
- ``/book/{office}`` — choose procedure, day (a month calendar) and slot, optionally the notice
  postcard's reference for a pickup; the answer is the booking code and a QR code of the secret
  link, printable. A code typed in leads to the secret link page too (the server limits misses).
- ``/book/{office}/b/{secret}`` — the booking behind a secret link: see it, change day and slot in
  one step, or cancel it.
- ``/book/{office}/b/{secret}/qr.svg`` — the QR code of that link (nothing is looked up: it draws
  the URL it is given, like the status page's QR code).

``?lang=`` chooses the language (Japanese by default). The pages get everything from the public
HTTP API (``/api/offices/{office}/bookings…``); these handlers only render the frame.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any, Final

from aiohttp import web

from queue_server.config import Office
from queue_server.domain.booking import day_id
from queue_server.web.keys import CLOCK, CONFIG
from queue_server.web.pages import page_language, render_page
from queue_server.web.views import public_base
from ticket_kiosk.api import qr_svg

SECRET: Final = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
"""A link secret's shape (``secrets.token_urlsafe``); anything else is no booking, without a lookup."""
AVAILABILITY_DAYS: Final = 62
"""The most days one availability request may ask for (the API's limit)."""


def _office(request: web.Request) -> Office:
    office = request.app[CONFIG].offices.get(request.match_info["office"])
    if office is None:
        raise web.HTTPNotFound(text=f"no office {request.match_info['office']!r}")
    return office


def _secret(request: web.Request) -> str:
    secret = request.match_info["secret"]
    if not SECRET.match(secret):
        raise web.HTTPNotFound(text="no booking with this link")
    return secret


def bookable_procedures(office: Office) -> list[dict[str, Any]]:
    """The office's procedures that take bookings, in configuration order, as the pages need them.

    ``reference``: the page offers the notice postcard's reference field — for a procedure whose card
    the back office prepares before the visit (``prep_minutes``), the pickup.
    """
    return [{"id": p.id, "name": p.name, "names": p.names, "reference": p.prep_minutes > 0}
            for p in office.procedures.values() if p.id in office.bookings.procedures]


def calendar_marks(office: Office, today: dt.date) -> dict[str, Any]:
    """What the calendar marks besides room, from the office calendar: the booking window (``today`` to
    ``last``, ``days`` to ask the availability for), the closed days, holiday openings (days open
    although the week or a national holiday would close them) and each procedure's booking-only days.
    """
    window = min(office.bookings.open_days_ahead + 1, AVAILABILITY_DAYS)
    days = [today + dt.timedelta(days=i) for i in range(window)]
    regular = dataclasses.replace(office.hours, special={})
    only = {procedure: [day_id(d) for d in days if not office.bookings.takes_walk_ins(procedure, d)]
            for procedure in office.bookings.procedures}
    return {"today": day_id(today), "last": day_id(days[-1]), "days": window,
            "closed": [day_id(d) for d in days if office.hours.for_date(d) is None],
            "holiday_openings": [day_id(d) for d in days
                                 if office.hours.for_date(d) is not None and regular.for_date(d) is None],
            "booking_only": only}


def booking_url(request: web.Request, office: str, secret: str) -> str:
    """The secret link of a booking, on the configured public URL or this host (what the QR code holds)."""
    return f"{public_base(request)}/book/{office}/b/{secret}"


async def offices_page(request: web.Request) -> web.Response:
    """GET /book — the offices of the city that take bookings."""
    offices = [o for o in request.app[CONFIG].offices.values() if o.bookings.procedures]
    return render_page(request, "book_offices.html", lang=page_language(request), catalog_sections=("booking",),
                       offices=offices)


async def book_page(request: web.Request) -> web.Response:
    """GET /book/{office}"""
    office = _office(request)
    lang = page_language(request)
    return render_page(request, "book.html", lang=lang, catalog_sections=("booking",), office=office,
                       page_data={"office": office.id, "office_name": office.name, "lang": lang,
                                  "procedures": bookable_procedures(office),
                                  "calendar": calendar_marks(office, request.app[CLOCK].now().date())})


async def booking_page(request: web.Request) -> web.Response:
    """GET /book/{office}/b/{secret} — see, change or cancel a booking."""
    office = _office(request)
    secret = _secret(request)
    lang = page_language(request)
    response = render_page(request, "booking.html", lang=lang, catalog_sections=("booking",), office=office,
                           secret=secret,
                           page_data={"office": office.id, "office_name": office.name, "lang": lang,
                                      "secret": secret, "procedures": bookable_procedures(office),
                                      "calendar": calendar_marks(office, request.app[CLOCK].now().date())})
    response.headers["Cache-Control"] = "private, no-store"   # the URL is the key to the booking
    return response


async def booking_qr(request: web.Request) -> web.Response:
    """GET /book/{office}/b/{secret}/qr.svg — the QR code of the secret link (an SVG)."""
    office = _office(request)
    secret = _secret(request)
    return web.Response(body=qr_svg(booking_url(request, office.id, secret)), content_type="image/svg+xml",
                        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})


def setup(app: web.Application) -> None:
    """Register the booking pages."""
    app.router.add_get("/book", offices_page)
    app.router.add_get("/book/{office}", book_page)
    app.router.add_get("/book/{office}/b/{secret}", booking_page)
    app.router.add_get("/book/{office}/b/{secret}/qr.svg", booking_qr)
