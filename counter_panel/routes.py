"""The counter panel's URLs: the page ``/counter/{office}[?counter=3]``; it acts only through the public API."""

from __future__ import annotations

from aiohttp import web

from queue_server.web.keys import CONFIG, STORE
from queue_server.web.pages import render_page


async def counter_page(request: web.Request) -> web.Response:
    """GET /counter/{office} — sign in, choose the counter, call and serve."""
    office = request.app[STORE].office(request.match_info["office"])
    config = request.app[CONFIG]
    data = {
        "office": {
            "id": office.id, "name": office.name,
            "procedures": [{"id": p.id, "name": p.name, "city_staff_only": p.city_staff_only}
                           for p in office.procedures.values()],
            "counters": [{"id": c.id, "name": c.name, "procedures": list(c.procedures), "staff": c.staff.value}
                         for c in office.counters.values()],
        },
        "timezone": config.server.timezone,
        "calling_order": config.calling.order.value,
        "booked_before_slot": config.calling.booked_before_slot.value,
        "max_recalls": config.calling.max_recalls,
        # The archive keeps a hand-over's category (for the monthly report), never the reason typed.
        "hand_over_categories": [{"id": k, "name": v} for k, v in config.calling.hand_over_categories.items()],
    }
    return render_page(request, "counter.html", catalog_sections=("counter",), page_data=data, office=office)


def setup(app: web.Application) -> None:
    """Register the counter panel page."""
    app.router.add_get("/counter/{office}", counter_page)
