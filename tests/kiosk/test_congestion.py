"""The public congestion JSON: whether the office takes visitors now, its hours, the numbers being
called, and past closing only when an estimate says so."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.config import Config
from queue_server.web.keys import CLOCK

from ..conftest import Api
from ..test_api_lifecycle import receive
from ..test_estimates_live import follow
from ..waiting import PATIENCE_S, next_millisecond

TOKYO = dt.timezone(dt.timedelta(hours=9))
TUESDAY = dt.date(2026, 11, 24)
SUNDAY = dt.date(2026, 11, 29)


def at(client: TestClient, day: dt.date, hour: int, minute: int = 0) -> None:
    """Set the server's clock to ``day`` ``hour:minute`` in Tokyo."""
    moment = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TOKYO)
    client.app[CLOCK].offset_ms = int(moment.timestamp() * 1000) - time.time_ns() // 1_000_000


@pytest.fixture
async def calendar_client(make_client: Callable[..., Awaitable[TestClient]], config: Config) -> TestClient:
    """The test office keeping its calendar (weekdays 08:30–17:15, Thursdays to 19:00)."""
    return await make_client(dataclasses.replace(config, server=dataclasses.replace(config.server, always_open=False)))


async def congestion(api: Api) -> dict[str, Any]:
    status, body = await api.get("/api/offices/main/congestion")
    assert status == 200, body
    return body


@pytest.mark.parametrize(("day", "hour", "reception"), [
    (TUESDAY, 7, "not_yet_open"), (TUESDAY, 18, "ended"), (SUNDAY, 11, "closed_today")])
async def test_a_closed_office_says_why_and_gives_its_hours(
        calendar_client: TestClient, user: Callable[..., Api], day: dt.date, hour: int, reception: str) -> None:
    at(calendar_client, day, hour)
    view = await congestion(user(calendar_client.server))
    assert view["open"] is False
    assert view["reception"] == reception
    assert view["date"] == day.isoformat()
    assert view["hours_today"] == (None if day == SUNDAY else {"opens": "08:30", "closes": "17:15"})
    everything = (await user(calendar_client.server).get("/api/congestion"))[1]["offices"][0]
    assert everything["reception"] == reception


async def test_an_office_opens_when_its_hours_begin(calendar_client: TestClient, user: Callable[..., Api]) -> None:
    api = user(calendar_client.server)
    at(calendar_client, TUESDAY, 8, 0)
    assert (await congestion(api))["reception"] == "not_yet_open"
    at(calendar_client, TUESDAY, 8, 30)  # nothing happened in the office meanwhile: no cached answer
    view = await congestion(api)
    assert view["open"] is True and view["reception"] == "open"


async def test_no_estimate_is_not_past_closing(visitor: Api) -> None:
    lobby = await follow(visitor, "lobby")
    await visitor.issue("pickup")
    # No counter is open: the estimator has no median, and flags the procedure as past closing.
    while True:
        outlook = (await receive(lobby, "estimates", timeout=PATIENCE_S))["data"]["procedures"].get("pickup")
        if outlook and outlook["waiting"] == 1:
            break
    assert outlook["median_minutes"] is None
    pickup = next(p for p in (await congestion(visitor))["procedures"] if p["id"] == "pickup")
    assert pickup["estimate_minutes"] is None and pickup["past_closing"] is False
    await lobby.close()


async def test_the_numbers_being_called(staff: Api, visitor: Api) -> None:
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(3)]
    application = (await visitor.issue("application"))["ticket"]["number"]
    view = await congestion(visitor)
    assert view["open"] is True and view["reception"] == "open"
    assert (await staff.counter("2", "call-next"))[0] == 200
    await next_millisecond()  # else the two calls may tie, and "the newest first" is either
    assert (await staff.counter("1", "call-next"))[0] == 200
    assert (await staff.counter("3", "call-next"))[0] == 200
    assert (await staff.counter("2", "start"))[0] == 200  # being served is still "being called"
    rows = {p["id"]: p for p in (await congestion(visitor))["procedures"]}
    assert rows["pickup"]["now_calling"] == [numbers[1], numbers[0]]  # the newest call first
    assert rows["application"]["now_calling"] == [application]
    assert rows["pickup"]["waiting"] == 1


async def test_the_openapi_document_describes_the_congestion_answer(visitor: Api) -> None:
    status, spec = await visitor.get("/api/openapi.json")
    assert status == 200
    schema = spec["components"]["schemas"]["Congestion"]
    assert {"open", "reception", "hours_today", "date", "procedures"} <= set(schema["required"])
    procedure = schema["properties"]["procedures"]["items"]["properties"]
    assert {"now_calling", "past_closing", "level"} <= set(procedure)
    answer = spec["paths"]["/api/offices/{office}/congestion"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Congestion"}


async def congestion_watcher_view(api: Api) -> dict[str, Any]:
    """Subscribe to the main office's congestion view on a new WebSocket; its first view."""
    ws = await api.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "congestion", "office": "main"})
    view = (await receive(ws, "view"))["data"]
    await ws.close()
    return view


async def test_a_phone_that_starts_watching_after_opening_time_sees_the_office_open(
        calendar_client: TestClient, user: Callable[..., Api]) -> None:
    api = user(calendar_client.server)
    at(calendar_client, TUESDAY, 8, 0)
    assert (await congestion_watcher_view(api))["reception"] == "not_yet_open"
    at(calendar_client, TUESDAY, 8, 30)  # nothing happened in the office meanwhile
    view = await congestion_watcher_view(api)
    assert view["open"] is True and view["reception"] == "open"
