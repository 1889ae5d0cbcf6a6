"""The report endpoints (role supervisor): the day's and the month's figures as JSON, .xlsx or CSV."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from ..config import Config
from ..domain.model import Role
from ..reports import load, render
from ..reports.figures import Report
from ..reports.staffing import staffing_report
from ..store.archive import Archive
from .auth import require_staff
from .openapi import add_paths, operation
from .keys import CONFIG, STORE
from .messages import ApiError, json_response

FORMATS: Final = ("json", "xlsx", "csv")
CONTENT_TYPES: Final = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        "csv": "text/csv; charset=utf-8"}
ALLOWED_QUERY: Final = {"daily": frozenset({"day", "office", "format"}),
                        "monthly": frozenset({"month", "office", "format"}),
                        "staffing": frozenset({"day", "days", "office", "format"})}


def _query(request: web.Request, kind: str) -> tuple[str, str | None, str]:
    """(period, office, format) of the query string; 400 naming a missing, unknown or bad field."""
    query = request.query
    for name in query:
        if name not in ALLOWED_QUERY[kind]:
            raise ApiError("invalid_request", f"unknown query parameter {name!r}; allowed: "
                                              f"{', '.join(sorted(ALLOWED_QUERY[kind]))}", field=name)
    period_field = "month" if kind == "monthly" else "day"
    for required in (period_field, "office") if kind == "staffing" else (period_field,):
        if required not in query:
            raise ApiError("invalid_request", f"{required} is required", field=required)
    fmt = query.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError("invalid_request", f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", field="format")
    return query[period_field], query.get("office") or None, fmt


async def _answer(request: web.Request, kind: str,
                  make: Callable[[Archive, Config, str, str | None], Awaitable[Report]]) -> web.StreamResponse:
    await require_staff(request, Role.SUPERVISOR)
    period, office, fmt = _query(request, kind)
    store = request.app[STORE]
    try:
        report = await make(Archive(store.redis, store.prefix), request.app[CONFIG], period, office)
    except load.PeriodError as e:
        raise ApiError("invalid_request", str(e), field=e.field) from None
    if fmt == "json":
        return json_response(report.to_json())
    # Writing a workbook is CPU work: off the event loop, so live views keep flowing meanwhile.
    body = await asyncio.to_thread(render.to_xlsx if fmt == "xlsx" else render.to_csv, report)
    name = f"madoguchi-{kind}-{period}{'-' + office if office else ''}.{fmt}"
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPES[fmt],
                                            "Content-Disposition": f'attachment; filename="{name}"'})


async def daily(request: web.Request) -> web.StreamResponse:
    """GET /api/reports/daily?day=YYYY-MM-DD[&office=][&format=json|xlsx|csv] — the day's report (supervisor)."""
    return await _answer(request, "daily", load.daily_report)


async def monthly(request: web.Request) -> web.StreamResponse:
    """GET /api/reports/monthly?month=YYYY-MM[&office=][&format=json|xlsx|csv] — the monthly report, 月報 (supervisor)."""
    return await _answer(request, "monthly", load.monthly_report)


async def staffing(request: web.Request) -> web.StreamResponse:
    """GET /api/staffing?office=&day=YYYY-MM-DD[&days=1–7][&format=json|xlsx|csv] — counters per hour for
    a coming day or week (supervisor)."""
    days_text = request.query.get("days", "1")
    if not days_text.isdigit():
        raise ApiError("invalid_request", f"days must be a whole number of days (1–7), got {days_text!r}", field="days")

    async def make(archive: Archive, config: Config, day: str, office: str | None) -> Report:
        return await staffing_report(archive, config, day, office or "", days=int(days_text))

    return await _answer(request, "staffing", make)


def setup_reports(app: web.Application) -> None:
    """Register the report endpoints."""
    app.router.add_get("/api/reports/daily", daily)
    app.router.add_get("/api/reports/monthly", monthly)
    app.router.add_get("/api/staffing", staffing)
    office = {"name": "office", "in": "query", "required": False, "schema": {"type": "string"},
              "description": "one office's id; without it, the whole city"}
    fmt = {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": list(FORMATS)},
           "description": "json (default): {title, period, scope, tables: [{key, title, headers, rows}]}; "
                          "xlsx (workbook with charts) or csv (UTF-8 with BOM) as a download"}
    add_paths(app, {
        "/api/reports/daily": {"get": {**operation(
            "The day's report from the visit archive (supervisor)", "the report",
            params=[{"name": "day", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}},
                    office, fmt]), "security": [{"session": []}]}},
        "/api/reports/monthly": {"get": {**operation(
            "The monthly report (月報) from the visit archive (supervisor)", "the report",
            params=[{"name": "month", "in": "query", "required": True,
                     "schema": {"type": "string", "pattern": "^\\d{4}-\\d{2}$"}}, office, fmt]),
            "security": [{"session": []}]}},
        "/api/staffing": {"get": {**operation(
            "Staffing advice (要員配置) for a coming day: counters per hour by Erlang C and by a simulation of "
            "the calling policy, the current plan's service level, back-office people (supervisor; takes seconds)",
            "the advice, as a report with one table 要員配置",
            params=[{"name": "day", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}},
                    {"name": "days", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 7, "default": 1},
                     "description": "days from `day` (a week: 7)"},
                    {**office, "required": True, "description": "the office's id"}, fmt]),
            "security": [{"session": []}]}},
    })
