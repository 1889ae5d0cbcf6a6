"""Wait estimates are computed from the live state and pushed to every view, and issuing returns one."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from queue_server.config import Config
from queue_server.web.keys import CLOCK, ESTIMATES, HUB

from .conftest import Api, api_users
from .test_api_lifecycle import receive


async def wait_for_estimates(ws: Any, ticket: str) -> dict[str, Any]:
    """The first estimates message that covers ``ticket``."""
    while True:
        message = await receive(ws, "estimates")
        if ticket in message["data"].get("tickets", {}):
            return message["data"]


async def follow(api: Api, view: str) -> Any:
    """A WebSocket following the main office's lobby, or counter 2 (staff)."""
    ws = await api.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": view, "office": "main", "counter": "2"}
                       if view == "counter" else {"id": 1, "type": "subscribe", "view": view, "office": "main"})
    await receive(ws, "snapshot")
    return ws


async def test_estimates_reach_counter_lobby_status_and_congestion_views(staff: Api, visitor: Api) -> None:
    counter, lobby = await follow(staff, "counter"), await follow(visitor, "lobby")
    tickets = [await visitor.issue("pickup") for _ in range(6)]
    last = tickets[-1]["ticket"]["number"]
    estimates = await wait_for_estimates(counter, last)
    # Pickup is served by counters 1 and 2 (open); 5 ahead at ~10 min each over two counters.
    mine = estimates["tickets"][last]
    assert 10 <= mine["median_minutes"] <= 45
    assert mine["low_minutes"] < mine["median_minutes"] < mine["high_minutes"]
    first = estimates["tickets"][tickets[0]["ticket"]["number"]]
    assert first["median_minutes"] < mine["median_minutes"]
    assert estimates["procedures"]["pickup"]["waiting"] == 6
    # The lobby gets the per-procedure outlook only: per-ticket estimates are for the counters.
    lobby_view = await receive(lobby, "estimates")
    assert "tickets" not in lobby_view["data"] and "pickup" in lobby_view["data"]["procedures"]

    status, view = await visitor.get(f"/api/tickets/{tickets[-1]['token']}")
    assert view["estimate"]["median_minutes"] == mine["median_minutes"]
    status, congestion = await visitor.get("/api/offices/main/congestion")
    pickup = next(p for p in congestion["procedures"] if p["id"] == "pickup")
    assert pickup["estimate_minutes"] is not None and pickup["level"] in ("medium", "high")
    assert congestion["procedures"] and all(p["id"] != "review" for p in congestion["procedures"])

    issued = await visitor.issue("pickup")
    assert issued["estimate"]["median_minutes"] >= mine["median_minutes"] - 1
    await lobby.close()
    await counter.close()


async def test_closing_counters_makes_the_estimate_longer(staff: Api, visitor: Api) -> None:
    lobby = await follow(staff, "counter")
    tickets = [await visitor.issue("application") for _ in range(4)]
    last = tickets[-1]["ticket"]["number"]
    before = (await wait_for_estimates(lobby, last))["tickets"][last]["median_minutes"]
    # Application is served by counters 1 and 3; closing counter 3 leaves one.
    assert (await staff.counter("3", "close"))[0] == 200
    while True:
        data = await wait_for_estimates(lobby, last)
        after = data["tickets"][last]["median_minutes"]
        if after != before:
            break
    assert after > before * 1.4
    await lobby.close()


async def test_supervisor_sees_the_model_behind_the_estimates(client: Any, user: Any, staff: Api, visitor: Api) -> None:
    await visitor.issue("pickup")
    await staff.counter("2", "call-next")
    await staff.counter("2", "start")
    client.app[CLOCK].offset_ms += 14 * 60_000  # a 14-minute visit
    await staff.counter("2", "finish")
    boss = user()
    await boss.sign_in("boss")
    status, body = await boss.get("/api/offices/main/service-model")
    assert status == 200
    pickup = body["model"]["procedures"]["pickup"]["service"]
    assert pickup["prior_minutes"] == 10 and pickup["n_measured"] == 1
    assert 10 < pickup["mean_minutes"] < 14  # one measurement moves the prior toward it, not all the way
    status, _ = await staff.get("/api/offices/main/service-model")
    assert status == 403


async def test_a_counter_paused_for_its_lunch_break_is_expected_back_at_the_break_end(
        make_client: Callable[..., Awaitable[Any]], config: Config) -> None:
    # Counter 2, the only pickup counter open, takes lunch 12:00–13:00; its staff press pause at 12:10.
    main = config.offices["main"]
    lunch = dataclasses.replace(main.counters["2"], breaks=((dt.time(12), dt.time(13)),))
    main = dataclasses.replace(main, counters={**main.counters, "2": lunch})
    client = await make_client(dataclasses.replace(config, offices={**config.offices, "main": main}))
    clock = client.app[CLOCK]
    noon_ten = clock.local(clock.now_ms()).replace(hour=12, minute=10, second=0, microsecond=0)
    clock.offset_ms += int(noon_ten.timestamp() * 1000) - clock.now_ms()  # same day: no day change
    async with api_users(str(client.make_url("/"))) as make:
        staff, visitor = make(), make()
        await staff.sign_in("staff")
        assert (await staff.counter("2", "open"))[0] == 200
        assert (await staff.counter("2", "pause"))[0] == 200
        tickets = [await visitor.issue("pickup") for _ in range(3)]
        last = tickets[-1]["ticket"]["number"]
        counter = await follow(staff, "counter")
        # The first estimate starts the worker process: slow on a loaded machine.
        mine = (await wait_for_estimates(counter, last))["tickets"][last]
        # Back at 13:00, 50 minutes on; then two 10-minute visits before the third is called.
        assert mine["median_minutes"] is not None and 60 <= mine["median_minutes"] <= 85, mine
        assert not mine["past_closing"]
        await counter.close()


async def test_todays_bookings_reach_the_estimate_as_expected_arrivals(
        make_client: Callable[..., Awaitable[Any]], config: Config) -> None:
    # Pickups bookable for the same day here; the clock reads Monday 10:00; two bookings for 11:00,
    # one for 11:30 cancelled.
    main = config.offices["main"]
    rules = main.bookings.procedures["pickup"]
    same_day = dataclasses.replace(main.bookings, procedures={
        **main.bookings.procedures, "pickup": dataclasses.replace(rules, close_days_before=0, close_at=None)})
    main = dataclasses.replace(main, bookings=same_day)
    client = await make_client(dataclasses.replace(config, offices={**config.offices, "main": main}))
    clock = client.app[CLOCK]
    monday_10 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    clock.offset_ms += int(monday_10.timestamp() * 1000) - clock.now_ms()
    async with api_users(str(client.make_url("/"))) as make:
        visitor = make()
        made = []
        for slot in ("11:00", "11:00", "11:30"):
            status, body = await visitor.post("/api/offices/main/bookings",
                                              {"procedure": "pickup", "day": "20261207", "slot": slot})
            assert status == 201, body
            made.append(body)
        resp = await visitor.http.delete(f"/api/bookings/by-secret/{made[2]['secret']}")
        assert resp.status == 200
    service, hub = client.app[ESTIMATES], client.app[HUB]
    eleven = int(monday_10.replace(hour=11).timestamp() * 1000)
    rows = await service.bookings("main", ["20261207"])
    assert sorted(r["state"] for r in rows) == ["booked", "booked", "cancelled"]
    assert sorted(r["slot_start"] for r in rows) == [eleven, eleven, eleven + 1_800_000]
    inputs = await service.inputs(main, hub.states["main"], fresh=True)
    expected = inputs.expected(inputs.behaviour())
    # The cancelled one is not expected; the others come at 11:00 as far as anyone knows (the
    # priors: 10 % no-shows, ±5 min), walk-ins if more than late_minutes late.
    assert [e.at for e in expected] == [eleven, eleven]
    assert all(e.show_probability == 0.9 and e.late_after_minutes == main.bookings.late_minutes for e in expected)
