"""The business day's change at midnight (Asia/Tokyo): what was still open is closed out, numbers start again.

The office clock is the project's adjustable :class:`Clock`: each test starts its servers on a day
of its own and sets the clock to just before midnight once the day's tickets are in place.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from queue_server.clock import Clock
from queue_server.config import Config
from queue_server.domain.model import Role
from queue_server.store.embedded import EmbeddedRedis
from queue_server.store.redis_store import QueueStore
from queue_server.web.app import init_app
from queue_server.web.keys import ACCOUNTS, CLOCK, STORE

from .conftest import PASSWORD, Api, api_users
from .servers import ServerProcess, add_staff, write_config
from .test_api_lifecycle import receive
from .waiting import PATIENCE_S

TOKYO = dt.timezone(dt.timedelta(hours=9))
EVENING = dt.datetime(2026, 12, 1, 18, 0, tzinfo=TOKYO)  # a Tuesday; the next day is the 2nd
MIDNIGHT = dt.datetime(2026, 12, 2, 0, 0, tzinfo=TOKYO)


def offset_to(at: dt.datetime) -> int:
    """The clock offset (ms) that makes the office clock read ``at`` now."""
    return int(at.timestamp() * 1000) - time.time_ns() // 1_000_000


async def wait_for(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` after PATIENCE_S seconds."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {PATIENCE_S:.0f} s for {what}; last: {result!r}")
        await asyncio.sleep(0.05)


Servers = Callable[[], Awaitable[TestClient]]


@pytest.fixture
async def servers(aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config, valkey_url: str,
                  key_prefix: str) -> Servers:
    """Start server apps on the same Valkey and key prefix (as several processes would be), each with
    its own office clock reading the evening of 1 December."""

    async def start() -> TestClient:
        app = init_app(config, clock=Clock("Asia/Tokyo", offset_to(EVENING)), redis_url=valkey_url,
                       key_prefix=key_prefix)
        client = await aiohttp_client(app)
        for name, role in (("staff", Role.CONTRACTOR), ("city", Role.CITY), ("boss", Role.SUPERVISOR)):
            await app[ACCOUNTS].add_user(name, PASSWORD, role)
        return client

    return start


@pytest.fixture
async def users(servers: Servers) -> AsyncIterator[Callable[[TestClient], Api]]:
    async with api_users("http://unused") as make:
        yield lambda client: make(str(client.make_url("/")))


async def evening_at_the_office(client: TestClient, users: Callable[[TestClient], Api]) -> dict[str, Any]:
    """The day's last hour: A001 called to counter 3, 300 being served at counter 2, A002 and 301 waiting."""
    staff, visitor = users(client), users(client)
    await staff.sign_in("staff")
    for counter in ("2", "3"):
        assert (await staff.counter(counter, "open"))[0] == 200
    tickets = {}
    for procedure in ("application", "application", "pickup", "pickup"):
        issued = await visitor.issue(procedure)
        tickets[issued["ticket"]["number"]] = issued["token"]
    assert list(tickets) == ["A001", "A002", "300", "301"]
    assert (await staff.counter("3", "call-next"))[1]["ticket"]["number"] == "A001"
    assert (await staff.counter("2", "call-next"))[1]["ticket"]["number"] == "300"
    assert (await staff.counter("2", "start"))[0] == 200
    return {"staff": staff, "visitor": visitor, "tokens": tickets}


async def stream_events(valkey_url: str, key_prefix: str, kind: str) -> list[dict[str, Any]]:
    """The office's events of one type, from its stream (the history every process shares)."""
    redis = Redis.from_url(valkey_url)
    try:
        entries = await redis.xrange(f"{key_prefix}o:{{main}}:events")
    finally:
        await redis.aclose()
    events = [json.loads(fields[b"e"]) for _id, fields in entries]
    return [e for e in events if e["type"] == kind]


async def test_at_midnight_open_tickets_are_closed_out_and_the_new_day_starts_clean(
        servers: Servers, users: Callable[[TestClient], Api], valkey_url: str, key_prefix: str) -> None:
    client = await servers()
    office = await evening_at_the_office(client, users)
    staff, visitor, tokens = office["staff"], office["visitor"], office["tokens"]
    lobby = await visitor.http.ws_connect("/api/ws")
    await lobby.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await receive(lobby, "snapshot"))["data"]["day"] == "20261201"
    phone = await visitor.http.ws_connect("/api/ws")
    await phone.send_json({"id": 2, "type": "subscribe", "view": "ticket", "token": tokens["A002"]})
    assert (await receive(phone, "view"))["data"]["state"] == "waiting"

    # One second before midnight; nobody does anything after it.
    client.app[CLOCK].offset_ms = offset_to(MIDNIGHT - dt.timedelta(seconds=1))

    # The lobby hears that the day was closed out, then gets the new day's (empty) state.
    # (events of the evening may still be on their way to the lobby: the close-out comes after them)
    closed = await receive(lobby, "event")
    while closed["event"]["type"] != "day.closed":
        assert closed["event"]["day"] == "20261201", closed
        closed = await receive(lobby, "event")
    assert closed["event"]["closed"] == "20261201"
    assert sorted(closed["event"]["expired"]) == ["300", "301", "A001", "A002"]
    midnight_ms = int(MIDNIGHT.timestamp() * 1000)
    # At midnight itself, not at a later periodic look at the clock (that came up to 30 s late).
    assert midnight_ms <= closed["event"]["at"] < midnight_ms + 10_000
    fresh = (await receive(lobby, "snapshot"))["data"]
    assert fresh["day"] == "20261202" and fresh["active"] == [] and fresh["recent"] == []
    assert {c["id"]: c.get("ticket") for c in fresh["counters"]} == dict.fromkeys("1239")
    # The visitor still waiting at midnight sees that the ticket is closed, on the open page…
    # (a view sent before midnight, e.g. with a fresh estimate, may come first: wait for the change)
    view = (await receive(phone, "view"))["data"]
    while view["state"] == "waiting":
        view = (await receive(phone, "view"))["data"]
    assert view["state"] == "expired"
    # …and so does everyone whose status link is opened later: waiting, called or being served.
    for number, token in tokens.items():
        status, view = await visitor.get(f"/api/tickets/{token}")
        assert status == 200 and (view["state"], view["day"], view["number"]) == ("expired", "20261201", number)
        assert view["ahead"] is None and view["now_calling"] == []

    # The new day: numbers start again, and today's A001 is not yesterday's.
    today = await visitor.issue("application")
    assert today["ticket"]["number"] == "A001" and today["ahead"] == 0
    status, yesterday = await visitor.get(f"/api/tickets/{tokens['A001']}")
    assert yesterday["state"] == "expired" and yesterday["day"] == "20261201"
    status, state = await staff.get("/api/offices/main/state")
    assert [(t["number"], t["day"]) for t in state["waiting"]] == [("A001", "20261202")]
    assert state["active"] == []
    # Counter 3 held yesterday's A001: it is free, and calls today's.
    status, called = await staff.counter("3", "call-next")
    assert status == 200 and (called["ticket"]["number"], called["ticket"]["day"]) == ("A001", "20261202")
    status, mine = await visitor.get(f"/api/tickets/{today['token']}")
    assert (mine["state"], mine["counter"]) == ("called", "3")
    assert mine["now_calling"] == [{"number": "A001", "counter": "3"}]
    status, yesterday = await visitor.get(f"/api/tickets/{tokens['A001']}")
    assert (yesterday["state"], yesterday["now_calling"]) == ("expired", [])
    # Yesterday's tickets cannot be called or cancelled any more.
    status, body = await visitor.post(f"/api/tickets/{tokens['A002']}/cancel")
    assert status == 409 and body["error"]["code"] == "invalid_transition", body
    assert len(await stream_events(valkey_url, key_prefix, "day.closed")) == 1
    await lobby.close()
    await phone.close()


async def test_several_servers_close_the_day_once_and_all_follow_it(
        servers: Servers, users: Callable[[TestClient], Api], valkey_url: str, key_prefix: str) -> None:
    first, second = await servers(), await servers()
    office = await evening_at_the_office(first, users)
    tokens = office["tokens"]
    watcher = users(second)
    lobby = await watcher.http.ws_connect("/api/ws")
    await lobby.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await receive(lobby, "snapshot"))["data"]["day"] == "20261201"

    # The first server's clock passes midnight and the kiosk issues the day's first ticket through it;
    # the second server's clock is a little behind, so it learns of the new day from the events.
    first.app[CLOCK].offset_ms = offset_to(MIDNIGHT + dt.timedelta(seconds=1))
    second.app[CLOCK].offset_ms = offset_to(MIDNIGHT - dt.timedelta(seconds=30))
    today = await users(first).issue("application")
    assert today["ticket"]["number"] == "A001"

    fresh = (await receive(lobby, "snapshot"))["data"]
    while fresh["day"] == "20261201":  # a catch-up of the evening (a gap filled) may come first
        fresh = (await receive(lobby, "snapshot"))["data"]
    assert fresh["day"] == "20261202" and fresh["active"] == []
    status, state = await users(second).get("/api/offices/main/state")
    assert state["day"] == "20261202" and state["active"] == []
    assert {c["id"]: c.get("ticket") for c in state["counters"]} == dict.fromkeys("1239")
    status, old = await watcher.get(f"/api/tickets/{tokens['A001']}")
    assert (old["state"], old["day"]) == ("expired", "20261201")
    status, new = await watcher.get(f"/api/tickets/{today['token']}")
    assert (new["state"], new["day"], new["ahead"]) == ("waiting", "20261202", 0)

    # Every server asks to begin the day at its midnight, at the same moment here: one close-out.
    second.app[CLOCK].offset_ms = offset_to(MIDNIGHT + dt.timedelta(seconds=1))
    days = await asyncio.gather(*(c.app[STORE].start_day("main") for c in (first, second, first, second)))
    assert set(days) == {"20261202"}
    closed = await stream_events(valkey_url, key_prefix, "day.closed")
    assert [(e["closed"], sorted(e["expired"])) for e in closed] == [("20261201", ["300", "301", "A001", "A002"])]
    await lobby.close()


@pytest.mark.slow
async def test_servers_started_the_next_morning_close_out_what_the_day_left_open(tmp_path: Path) -> None:
    """Two real server processes on one (fresh) Valkey; both stopped in the evening, both started again
    at the same moment the next morning: the day is closed out once, every view shows it."""
    valkey = EmbeddedRedis(tmp_path / "valkey")
    await valkey.start()
    config = write_config(tmp_path, redis_url=valkey.url)
    add_staff(config, PASSWORD)

    def at(moment: dt.datetime) -> tuple[str, ...]:
        return ("--clock-offset", str(offset_to(moment) / 1000))

    processes = [ServerProcess(config, options=at(EVENING)), ServerProcess(config, options=at(EVENING))]
    try:
        await asyncio.gather(*(p.start() for p in processes))
        async with api_users(processes[0].url) as make:
            staff, visitor = make(processes[1].url), make(processes[0].url)
            await staff.sign_in("staff")
            tokens = {}
            for procedure in ("application", "application", "pickup"):
                issued = await visitor.issue(procedure)
                tokens[issued["ticket"]["number"]] = issued["token"]
            for action in ("open", "call-next", "start"):
                assert (await staff.counter("3", action))[0] == 200  # A001 at counter 3 when the day ends
            status, view = await visitor.get(f"/api/tickets/{tokens['A002']}")
            assert view["state"] == "waiting"
            processes[0].kill()  # one without a chance to clean up
            await processes[1].stop()

            morning = dt.datetime(2026, 12, 2, 8, 30, tzinfo=TOKYO)
            processes = [ServerProcess(config, options=at(morning)), ServerProcess(config, options=at(morning))]
            await asyncio.gather(*(p.start() for p in processes))
            for server in processes:
                reader = make(server.url)
                await reader.sign_in("staff")
                status, state = await reader.get("/api/offices/main/state")
                assert (state["day"], state["waiting"], state["active"]) == ("20261202", [], [])
                assert all(c.get("ticket") is None for c in state["counters"])
                for number, token in tokens.items():
                    status, view = await reader.get(f"/api/tickets/{token}")
                    assert (view["number"], view["state"], view["day"]) == (number, "expired", "20261201")
            today = await make(processes[0].url).issue("application")
            assert today["ticket"]["number"] == "A001"
            assert (await reader.counter("3", "call-next"))[1]["ticket"]["day"] == "20261202"  # counter 3 is free
        closed = await stream_events(valkey.url, "mg:", "day.closed")
        assert [(e["closed"], sorted(e["expired"])) for e in closed] == [("20261201", ["300", "A001", "A002"])]
    finally:
        await asyncio.gather(*(p.stop() for p in processes))
        await valkey.stop()


async def test_a_step_computed_before_midnight_that_runs_after_the_change_works_on_the_new_day(
        config: Config, valkey_url: str, key_prefix: str) -> None:
    """Two processes' requests straddle midnight: the later-arriving one must not reopen the closed day."""
    redis = Redis.from_url(valkey_url)
    after = QueueStore(redis, config, Clock("Asia/Tokyo", offset_to(MIDNIGHT + dt.timedelta(seconds=1))), key_prefix)
    before = QueueStore(redis, config, Clock("Asia/Tokyo", offset_to(MIDNIGHT - dt.timedelta(seconds=1))), key_prefix)
    try:
        yesterday = await before.issue("main", "pickup")
        assert yesterday["ticket"]["day"] == "20261201"
        assert (await after.issue("main", "pickup"))["ticket"]["day"] == "20261202"  # closes out the 1st
        late = await before.issue("main", "pickup")  # computed at 23:59:59, run after the change
        assert (late["ticket"]["day"], late["ticket"]["number"]) == ("20261202", "301")
        assert (await before.ticket("main", "20261201", "300"))["state"] == "expired"
        assert await before.start_day("main") == "20261202"
        assert len(await stream_events(valkey_url, key_prefix, "day.closed")) == 1
    finally:
        await redis.aclose()
