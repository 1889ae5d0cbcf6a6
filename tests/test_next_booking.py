"""The congestion view's next free booking slot per bookable procedure: read when the clock is set,
moved on when bookings fill a slot and back when one is cancelled, live on the WebSocket view."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from queue_server.web.keys import CLOCK

from .conftest import Api
from .waiting import PATIENCE_S, wait_until

TOKYO = dt.timezone(dt.timedelta(hours=9))


async def next_booking(api: Api, procedure: str = "pickup") -> Any:
    status, view = await api.get("/api/offices/main/congestion")
    assert status == 200, view
    [entry] = [p for p in view["procedures"] if p["id"] == procedure]
    return entry


async def test_the_next_free_slot_follows_bookings_and_cancellations(client: TestClient,
                                                                     user: Callable[..., Api]) -> None:
    # A Tuesday 10:00: today's pickups closed yesterday at 17:00, tomorrow opens at 08:30 (capacity 2).
    moment = dt.datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
    client.app[CLOCK].offset_ms = int(moment.timestamp() * 1000) - time.time_ns() // 1_000_000
    visitor = user()
    assert (await next_booking(visitor, "application"))["bookable"] is False
    assert (await next_booking(visitor, "application"))["next_booking"] is None

    async def slot_is(day: str, slot: str) -> bool:
        found = (await next_booking(visitor))["next_booking"]
        return found is not None and (found["day"], found["slot"]) == (day, slot)

    await wait_until(lambda: slot_is("20261125", "08:30"), "the first slot after the deadline")
    ws = await client.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "congestion", "office": "main"})
    codes = []
    for _ in range(2):
        status, booked = await visitor.post("/api/offices/main/bookings",
                                            {"procedure": "pickup", "day": "20261125", "slot": "08:30"})
        assert status == 201, booked
        codes.append(booked)
    await wait_until(lambda: slot_is("20261125", "09:00"), "moved on past the full slot")

    # The congestion WebSocket view says so too, without being asked again.
    async def pushed() -> bool:
        message = json.loads((await ws.receive(timeout=PATIENCE_S)).data)
        if message.get("type") != "view":
            return False
        entry = next(p for p in message["data"]["procedures"] if p["id"] == "pickup")
        return (entry["next_booking"] or {}).get("slot") == "09:00"

    await wait_until(pushed, "the WebSocket view with 09:00")
    resp = await visitor.http.delete(f"/api/bookings/by-secret/{codes[0]['secret']}")
    assert resp.status == 200, await resp.text()
    await wait_until(lambda: slot_is("20261125", "08:30"), "back to the slot with a place again")
    await ws.close()
