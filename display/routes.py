"""The lobby display's URLs: the page ``/display/{office}`` and the announcement audio API."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from queue_server.web.keys import CONFIG, STORE
from queue_server.web.pages import CATALOGS, page_language, render_page, sections

from .api import setup_api

SUBTITLE_DEFAULT: Final = "en"


def office_data(request: web.Request, office_id: str) -> dict[str, object]:
    """What the page's script needs before its first snapshot: names of procedures and counters."""
    office = request.app[STORE].office(office_id)
    return {"id": office.id, "name": office.name,
            "procedures": [{"id": p.id, "name": p.name} for p in office.procedures.values()],
            "counters": [{"id": c.id, "name": c.name} for c in office.counters.values()]}


async def display_page(request: web.Request) -> web.Response:
    """GET /display/{office}[?lang=ja&sub=en|none] — the call display; live data comes from the public API."""
    office = request.app[STORE].office(request.match_info["office"])
    lang = page_language(request)
    sub_lang = request.query.get("sub", SUBTITLE_DEFAULT)
    catalogs = request.app[CATALOGS]
    sub = sections(catalogs[sub_lang], ("display",)) if sub_lang in catalogs and sub_lang != lang else None
    return render_page(request, "display.html", lang=lang, catalog_sections=("display", "checkin"),
                       page_data={"office": office_data(request, office.id),
                                  "timezone": request.app[CONFIG].server.timezone},
                       office=office, sub=sub, sub_lang=sub_lang)


def setup(app: web.Application) -> None:
    """Register the display page, the announcement API and the speech service."""
    setup_api(app)
    app.router.add_get("/display/{office}", display_page)
