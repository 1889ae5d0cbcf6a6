"""The supervisor console's URLs: the page ``/supervisor`` (sign-in like the counter panel) and its API.

The page follows every office over the WebSocket view ``supervisor`` and acts only through the
public API (pausing procedures, the notice, counters, outage mode, the day's close-out).
"""

from __future__ import annotations

from aiohttp import web

from queue_server.web.keys import CONFIG
from queue_server.web.pages import render_page

from .api import setup_api


async def supervisor_page(request: web.Request) -> web.Response:
    """GET /supervisor — every office on one screen."""
    config = request.app[CONFIG]
    levels = config.service_levels
    data = {
        "offices": [{
            "id": o.id, "name": o.name, "short_name": o.short_name,
            "procedures": [{"id": p.id, "name": p.name, "city_staff_only": p.city_staff_only}
                           for p in o.procedures.values()],
            "counters": [{"id": c.id, "name": c.name, "procedures": list(c.procedures), "staff": c.staff.value}
                         for c in o.counters.values()],
        } for o in config.offices.values()],
        "outage_notices": [{"id": n.id, "text": dict(n.text)} for n in config.outage_notices.values()],
        "target_wait_minutes": levels.target_wait_minutes,
        "target_share": levels.target_share,
        "notice_languages": ["ja-easy", "en", "zh", "ko", "pt", "vi"],
    }
    return render_page(request, "supervisor.html", catalog_sections=("supervisor", "counter"), page_data=data)


def setup(app: web.Application) -> None:
    """Register the console page and the supervisor's endpoints."""
    setup_api(app)
    app.router.add_get("/supervisor", supervisor_page)
