"""The call-centre desk's URL: ``/callcenter`` — sign in (role ``callcenter`` or supervisor), then book,
change and cancel for callers across every office. The page acts only through the staff bookings API,
so every action is recorded with who did it and when, like counter actions."""

from __future__ import annotations

from aiohttp import web

from booking.routes import bookable_procedures
from queue_server.web.keys import CLOCK, CONFIG
from queue_server.web.pages import render_page


async def callcenter_page(request: web.Request) -> web.Response:
    """GET /callcenter"""
    config = request.app[CONFIG]
    offices = [{"id": o.id, "name": o.name, "short_name": o.short_name, "procedures": bookable_procedures(o)}
               for o in config.offices.values() if o.bookings.procedures]
    # Every procedure bookable somewhere, once, in the order the offices list them.
    procedures: dict[str, dict[str, object]] = {}
    for office in offices:
        for procedure in office["procedures"]:
            procedures.setdefault(procedure["id"], procedure)
    return render_page(request, "callcenter.html", catalog_sections=("callcenter", "booking"),
                       offices=offices, procedures=list(procedures.values()),
                       page_data={"offices": offices, "procedures": list(procedures.values()),
                                  "today": request.app[CLOCK].now().date().isoformat()})


def setup(app: web.Application) -> None:
    """Register the call-centre desk."""
    app.router.add_get("/callcenter", callcenter_page)
