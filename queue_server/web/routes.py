"""Every URL of the server in one place."""

from __future__ import annotations

from aiohttp import web

from . import bookings, checkin, congestion, health, openapi, reports, tasks, views, ws


def setup_routes(app: web.Application) -> None:
    """Register the JSON API, the WebSocket and the OpenAPI document."""
    r = app.router
    r.add_get("/api/openapi.json", openapi.get_openapi)
    r.add_get("/api/offices", views.list_offices)
    r.add_get("/api/offices/{office}", views.get_office)
    r.add_get("/api/offices/{office}/state", views.get_state)
    r.add_get("/api/offices/{office}/congestion", congestion.get_congestion)
    r.add_get("/api/offices/{office}/service-model", views.service_model)
    r.add_get("/api/congestion", congestion.get_all_congestion)
    r.add_post("/api/offices/{office}/tickets", views.issue_ticket)
    r.add_post("/api/offices/{office}/tickets/{number}/cancel", views.cancel_by_staff)
    r.add_post("/api/offices/{office}/counters/{counter}/{action}", views.counter_action)
    r.add_put("/api/offices/{office}/notice", views.set_notice)
    r.add_post("/api/offices/{office}/procedures/{procedure}/{action}", views.procedure_status)
    r.add_get("/api/tickets/{token}", views.get_ticket_status)
    r.add_post("/api/tickets/{token}/cancel", views.cancel_by_visitor)
    r.add_post("/api/session", views.sign_in)
    r.add_get("/api/session", views.whoami)
    r.add_delete("/api/session", views.sign_out)
    r.add_get("/api/ws", ws.websocket)
    tasks.setup_routes(app)
    bookings.setup_routes(app)
    checkin.setup_routes(app)
    health.setup_health(app)
    reports.setup_reports(app)
