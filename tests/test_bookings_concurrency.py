"""Bookings under concurrency: a slot is never overbooked, and a booking changed and cancelled at once
ends in one consistent state (the places taken always equal the bookings holding them)."""

from __future__ import annotations

import asyncio
import random
import tomllib
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.config import Config, parse_config
from queue_server.web.keys import BOOKINGS, STORE

from .conftest import TESTS, Api
from .test_bookings_api import MONDAY_10, TUESDAY, set_clock

pytestmark = pytest.mark.slow


def office_with(capacity: int) -> Config:
    """The test office with ``capacity`` places per pickup slot."""
    data = tomllib.loads((TESTS / "office.toml").read_text(encoding="utf-8"))
    for procedure in data["offices"][0]["procedures"]:
        if procedure["id"] == "pickup":
            procedure["booking"]["capacity"] = capacity
    return parse_config(data, TESTS / "office.toml")


async def places_taken(client: TestClient, day: str = TUESDAY) -> dict[str, int]:
    raw = await client.app[STORE].redis.hgetall(f"{client.app[STORE].office_key('main')}slot:{day}:pickup")
    return {k.decode(): int(v) for k, v in raw.items() if int(v)}


async def test_200_simultaneous_bookings_of_a_10_place_slot_give_exactly_10(
        make_client: Callable[..., Awaitable[TestClient]], user: Callable[..., Api]) -> None:
    client = await make_client(office_with(10))
    set_clock(client, MONDAY_10)
    visitors = [user(client) for _ in range(8)]  # a few connections' worth of clients, all at once

    async def one(i: int) -> tuple[int, Any]:
        return await visitors[i % len(visitors)].post(
            "/api/offices/main/bookings", {"procedure": "pickup", "day": TUESDAY, "slot": "09:00"})

    answers = await asyncio.gather(*(one(i) for i in range(200)))
    statuses = Tally(status for status, _ in answers)
    assert statuses == {201: 10, 409: 190}, statuses
    refusals = [body["error"] for status, body in answers if status == 409]
    assert {e["code"] for e in refusals} == {"slot_full"}
    assert "20261208 09:00" in refusals[0]["message"] and "10 places" in refusals[0]["message"]
    codes = {body["code"] for status, body in answers if status == 201}
    assert len(codes) == 10
    assert await places_taken(client) == {"09:00": 10}
    listed = await client.app[BOOKINGS].day_list("main", MONDAY_10.date().replace(day=8))
    assert len(listed) == 10 and all(b["state"] == "booked" for b in listed)


async def test_changes_and_a_cancel_racing_on_one_booking_leave_it_consistent(
        make_client: Callable[..., Awaitable[TestClient]], user: Callable[..., Api]) -> None:
    client = await make_client(office_with(3))
    set_clock(client, MONDAY_10)
    visitor = user(client)
    slots = ["09:00", "09:30", "10:00", "10:30", "11:00"]
    rng = random.Random(7)
    for _round in range(6):
        status, created = await visitor.post("/api/offices/main/bookings",
                                             {"procedure": "pickup", "day": TUESDAY, "slot": rng.choice(slots)})
        assert status == 201, created
        link = f"/api/bookings/by-secret/{created['secret']}"

        async def change(slot: str, link: str = link) -> int:
            resp = await visitor.http.put(link, json={"day": TUESDAY, "slot": slot})
            return resp.status

        async def cancel(link: str = link) -> int:
            return (await visitor.http.delete(link)).status

        results = await asyncio.gather(*(change(rng.choice(slots)) for _ in range(8)), cancel())
        assert set(results) <= {200, 409}, results  # 409: cancelled already, or the target full
        assert results[-1] == 200  # the cancel always finds it booked: changes keep it booked
        _, seen = await visitor.get(link)
        assert seen["booking"]["state"] == "cancelled"

    # A place is taken exactly by every booking still booked, in its own slot.
    bookings = await client.app[BOOKINGS].day_list("main", MONDAY_10.date().replace(day=8))
    held = Tally(b["slot"] for b in bookings if b["state"] == "booked")
    assert await places_taken(client) == dict(held) == {}


async def test_changes_racing_for_the_last_place_never_overbook(
        make_client: Callable[..., Awaitable[TestClient]], user: Callable[..., Api]) -> None:
    client = await make_client(office_with(1))
    set_clock(client, MONDAY_10)
    visitor = user(client)
    links = []
    for slot in ("09:00", "09:30", "10:00", "10:30"):
        status, created = await visitor.post("/api/offices/main/bookings",
                                             {"procedure": "pickup", "day": TUESDAY, "slot": slot})
        assert status == 201
        links.append(f"/api/bookings/by-secret/{created['secret']}")

    async def move(link: str) -> int:
        return (await visitor.http.put(link, json={"day": TUESDAY, "slot": "11:00"})).status

    assert sorted(await asyncio.gather(*(move(link) for link in links))) == [200, 409, 409, 409]
    taken = await places_taken(client)
    assert taken["11:00"] == 1 and sum(taken.values()) == 4  # the winner's old place was given back


async def test_two_server_processes_booking_the_same_slot_share_its_capacity(
        make_client: Callable[..., Awaitable[TestClient]], user: Callable[..., Api]) -> None:
    config = office_with(10)
    first, second = await make_client(config), await make_client(config)  # one Valkey, one key prefix
    for client in (first, second):
        set_clock(client, MONDAY_10)
    visitors = [user(first), user(second)]

    async def one(i: int) -> int:
        status, _ = await visitors[i % 2].post("/api/offices/main/bookings",
                                               {"procedure": "pickup", "day": TUESDAY, "slot": "10:00"})
        return status

    assert Tally(await asyncio.gather(*(one(i) for i in range(100)))) == {201: 10, 409: 90}
    assert await places_taken(first) == {"10:00": 10}
