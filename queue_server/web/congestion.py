"""The public congestion view (混雑状況): waiting count, estimate and level per procedure."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..domain.state import OfficeState
from .keys import CONFIG, HUB, STORE
from .messages import json_response

CORS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}


def level(minutes: float | None, thresholds: tuple[int, int]) -> str:
    """``low`` / ``medium`` / ``high`` by the configured minute thresholds; ``unknown`` without an estimate."""
    if minutes is None:
        return "unknown"
    return "low" if minutes < thresholds[0] else "medium" if minutes <= thresholds[1] else "high"


def congestion_view(app: web.Application, state: OfficeState) -> dict[str, Any]:
    """Per procedure of an office: waiting, estimated wait for a ticket taken now, level.

    Computed once per change of the office and shared by every watcher (thousands of phones)."""
    cached = state.derived.get("congestion")
    if cached is None:
        cached = state.derived["congestion"] = _congestion_view(app, state)
    return cached


def _congestion_view(app: web.Application, state: OfficeState) -> dict[str, Any]:
    config = app[CONFIG]
    office = config.offices[state.office]
    counts = state.waiting_counts()
    estimates = state.estimates.get("procedures", {})
    procedures = []
    for p in office.procedures.values():
        if p.city_staff_only:
            continue  # the city-staff queue is internal: visitors never take it at the kiosk
        outlook = estimates.get(p.id, {})
        minutes = outlook.get("median_minutes")
        procedures.append({"id": p.id, "name": p.name, "names": p.names, "waiting": counts.get(p.id, 0),
                           "estimate_minutes": minutes, "low_minutes": outlook.get("low_minutes"),
                           "high_minutes": outlook.get("high_minutes"),
                           "past_closing": outlook.get("past_closing", False),
                           "level": level(minutes, config.congestion_minutes), "paused": p.id in state.paused})
    return {"office": office.id, "name": office.name, "procedures": procedures, "seq": state.seq}


async def get_congestion(request: web.Request) -> web.Response:
    """GET /api/offices/{office}/congestion (CORS open, for the city's website)."""
    office = request.app[STORE].office(request.match_info["office"])
    response = json_response(congestion_view(request.app, request.app[HUB].state(office.id)))
    response.headers.update(CORS)
    return response


async def get_all_congestion(request: web.Request) -> web.Response:
    """GET /api/congestion — every office."""
    hub = request.app[HUB]
    response = json_response({"offices": [congestion_view(request.app, hub.state(o)) for o in request.app[CONFIG].offices]})
    response.headers.update(CORS)
    return response
