"""Redis outages: the hub reconnects promptly and catches displays up with one snapshot, a WebSocket
survives a request that needed Redis, and a killed embedded Valkey is started again."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from queue_server.clock import Clock
from queue_server.config import Config, load_config
from queue_server.live import RECONNECT_MAX_SECONDS
from queue_server.store.embedded import EmbeddedRedis
from queue_server.store.redis_store import QueueStore
from queue_server.web.app import init_app

from .conftest import Api, api_users
from .servers import ServerProcess, write_config
from .test_api_lifecycle import receive
from .waiting import PATIENCE_S

pytestmark = pytest.mark.slow


@pytest.fixture
async def valkey(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    """A Valkey of this test's own, which the test may kill and start again."""
    server = EmbeddedRedis(tmp_path / "valkey")
    await server.start()
    yield server
    await server.stop()


async def kill(server: EmbeddedRedis) -> None:
    """SIGKILL the Valkey, as a crash would, and wait until it is gone."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    while server.running:
        await asyncio.sleep(0.02)


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, attempts: int = 600) -> None:
    """Poll ``check`` until it holds (the state, not a time, is what the test waits for)."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def health(api: Api) -> dict[str, Any]:
    status, body = await api.get("/api/health")
    assert (status == 200) == (body["status"] == "ok"), body
    return body


@pytest.fixture
async def outage_client(aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config,
                        valkey: EmbeddedRedis, key_prefix: str) -> TestClient:
    """The app on the test's own Valkey."""
    return await aiohttp_client(init_app(config, redis_url=valkey.url, key_prefix=key_prefix))


@pytest.fixture
async def api(outage_client: TestClient) -> AsyncIterator[Api]:
    async with api_users(str(outage_client.make_url("/"))) as make:
        yield make()


async def test_a_ticket_subscription_during_an_outage_gets_unavailable_and_the_connection_stays(
        api: Api, valkey: EmbeddedRedis) -> None:
    ticket = await api.issue("pickup")
    ws = await api.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await receive(ws, "result"))["success"] is True
    lobby = await receive(ws, "snapshot")
    await kill(valkey)

    await ws.send_json({"id": 2, "type": "subscribe", "view": "ticket", "token": ticket["token"]})
    answer = await receive(ws, "result")
    assert answer["id"] == 2 and answer["success"] is False and answer["error"]["code"] == "unavailable"
    await ws.send_json({"id": 3, "type": "ping"})
    assert (await receive(ws, "pong"))["id"] == 3
    assert not ws.closed

    # Once Redis is back, the same connection's lobby goes on and the ticket subscription works.
    await valkey.start()
    await wait_until(lambda: _issued(api), "a ticket issued after the outage")
    message = await _next_update(ws)
    while message["type"] == "snapshot" and message["seq"] == lobby["seq"]:
        message = await _next_update(ws)  # the hub's fresh snapshot after the outage, taken before the issue
    assert message["seq"] > lobby["seq"]
    await ws.send_json({"id": 4, "type": "subscribe", "view": "ticket", "token": ticket["token"]})
    assert (await receive(ws, "result"))["success"] is True
    assert (await receive(ws, "view"))["data"]["number"] == ticket["ticket"]["number"]
    await ws.close()


async def _issued(api: Api) -> bool:
    status, _ = await api.post("/api/offices/main/tickets", {"procedure": "pickup"})
    return status == 201


async def _next_update(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next event or snapshot of the lobby subscription."""
    while True:
        message = await asyncio.wait_for(ws.receive_json(), PATIENCE_S)
        if message["type"] in ("event", "snapshot"):
            return message


async def test_the_hub_keeps_retrying_promptly_through_a_long_outage_and_displays_resume(
        api: Api, valkey: EmbeddedRedis) -> None:
    ws = await api.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await receive(ws, "result"))["success"] is True
    await receive(ws, "snapshot")
    await kill(valkey)

    # However long Redis stays away, the wait between attempts stays short.
    async def many_failed() -> bool:
        return (await health(api))["events"]["failed_attempts"] >= 10

    await wait_until(many_failed, "ten failed reconnect attempts")
    down = await health(api)
    assert down["status"] == "unavailable" and down["error"]["code"] == "unavailable"
    assert down["redis"]["up"] is False and down["events"]["connected"] is False
    assert 0 < down["events"]["retry_seconds"] <= RECONNECT_MAX_SECONDS

    await valkey.start()

    async def healthy() -> bool:
        return (await health(api))["status"] == "ok"

    await wait_until(healthy, "the events channel followed again")
    assert (await health(api))["events"]["disconnects"] == 1
    status, issued = await api.post("/api/offices/main/tickets", {"procedure": "pickup"})
    assert status == 201, issued
    message = await _next_update(ws)
    # The lobby hears of the issue as its new count (public views list no waiting tickets).
    while message["type"] != "event" or message["event"]["type"] != "ticket.issued":
        message = await _next_update(ws)
    assert message["event"]["waiting_counts"]["pickup"] == issued["ahead"] + 1
    await ws.close()


async def test_after_missing_many_events_each_display_gets_one_snapshot_not_a_burst(
        tmp_path: Path, valkey: EmbeddedRedis) -> None:
    server = ServerProcess(write_config(tmp_path, redis_url=valkey.url))
    await server.start()
    assert server.process is not None
    redis = Redis.from_url(valkey.url)
    config = load_config(server.config)
    store = QueueStore(redis, config, Clock(config.server.timezone))
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{server.url}/api/ws") as ws:
            await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
            assert (await receive(ws, "result"))["success"] is True
            before = await receive(ws, "snapshot")
            # The server misses everything from here: frozen while its Redis connections die and
            # 300 tickets are issued (more than a display's outgoing queue holds).
            server.process.send_signal(signal.SIGSTOP)
            try:
                await kill(valkey)
                await valkey.start()
                for _ in range(300):
                    await store.issue("main", "application")
                latest = before["seq"] + 300
            finally:
                server.process.send_signal(signal.SIGCONT)
            events = 0
            message = await _next_update(ws)
            while message["type"] == "event":
                events += 1
                message = await _next_update(ws)
            assert message["type"] == "snapshot" and message["seq"] == latest, message.get("seq")
            assert events <= 16
            # The display was not dropped as a slow reader: it goes on receiving.
            await store.issue("main", "application")
            assert (await receive(ws, "event"))["seq"] == latest + 1
    finally:
        await redis.aclose()
        await server.stop()


async def test_a_killed_embedded_valkey_is_started_again_and_nothing_is_lost(
        aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config, tmp_path: Path) -> None:
    own = dataclasses.replace(config, server=dataclasses.replace(config.server, redis_url="", data_dir=tmp_path / "data"))
    client = await aiohttp_client(init_app(own))
    async with api_users(str(client.make_url("/"))) as make:
        api = make()
        first = await api.issue("pickup")
        up = await health(api)
        assert up["embedded_valkey"]["running"] is True and up["embedded_valkey"]["restarts"] == 0
        os.kill(up["embedded_valkey"]["pid"], signal.SIGKILL)

        async def restarted() -> bool:
            body = await health(api)
            return body["status"] == "ok" and body["embedded_valkey"]["restarts"] == 1

        await wait_until(restarted, "the embedded Valkey restarted", attempts=1200)
        after = await health(api)
        assert after["embedded_valkey"]["pid"] != up["embedded_valkey"]["pid"]
        assert after["embedded_valkey"]["last_exit"] == -signal.SIGKILL
        second = await api.issue("pickup")
        assert int(second["ticket"]["number"]) == int(first["ticket"]["number"]) + 1  # numbering survived
        status, view = await api.get(f"/api/tickets/{first['token']}")
        assert status == 200 and view["state"] == "waiting"
