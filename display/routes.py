"""The lobby display's URLs: the page ``/display/{office}`` and the announcement audio API."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from queue_server.web.keys import STORE

from .api import setup_api


@aiohttp_jinja2.template("display.html")
async def display_page(request: web.Request) -> dict[str, Any]:
    """GET /display/{office} — the call display; everything live comes from the public API."""
    office = request.app[STORE].office(request.match_info["office"])
    return {"office": office}


def setup(app: web.Application) -> None:
    """Register the display page, the announcement API and the speech service."""
    setup_api(app)
    app.router.add_get("/display/{office}", display_page)
