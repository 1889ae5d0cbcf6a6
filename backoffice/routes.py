"""The back-office panel's URL: ``/backoffice/{office}``; the page acts only through the public API.

The page shows the office's back-office work (交付前準備 before the counter, 交付後処理 after it, cards
prepared here for a branch whose cards are kept at this office) in the order the server gives, and
claims, finishes and gives back tasks with the task endpoints. This handler only renders the frame
with the names the page needs (offices and their procedures) and today's closing time, after which
the page shows what is carried over to the next day.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from queue_server.config import Office
from queue_server.web.keys import CLOCK, CONFIG, STORE
from queue_server.web.pages import page_language, render_page


def _closing_ms(office: Office, request: web.Request) -> int | None:
    """Today's closing time of ``office`` in epoch ms (the page shows what is carried over after it)."""
    closing = office.hours.closing_time(request.app[CLOCK].now())
    return None if closing is None else int(closing.timestamp() * 1000)


async def backoffice_page(request: web.Request) -> web.Response:
    """GET /backoffice/{office} — sign in, then claim, finish and give back back-office tasks."""
    office = request.app[STORE].office(request.match_info["office"])
    config = request.app[CONFIG]
    data: dict[str, Any] = {
        "office": {"id": office.id, "name": office.name},
        # Every office's names: the list holds the tasks of branches whose cards are kept here, and a
        # card prepared here for a branch is marked with the branch it goes to.
        "offices": {o.id: {"name": o.short_name or o.name,
                           "procedures": {p.id: p.name for p in o.procedures.values()}}
                    for o in config.offices.values()},
        "closing_at": _closing_ms(office, request),
    }
    return render_page(request, "backoffice.html", lang=page_language(request), catalog_sections=("backoffice",),
                       page_data=data, office=office)


def setup(app: web.Application) -> None:
    """Register the back-office panel page."""
    app.router.add_get("/backoffice/{office}", backoffice_page)
