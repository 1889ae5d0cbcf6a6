"""WebSocket limits: connections per client address, subscriptions per connection, messages per second."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from queue_server.config import Config

from .conftest import Api
from .servers import madoguchi
from .test_api_lifecycle import receive
from .waiting import PATIENCE_S

TESTS = Path(__file__).parent


@pytest.fixture
async def limited(make_client: Callable[..., Awaitable[TestClient]], config: Config) -> TestClient:
    """The test server with small limits: 3 connections per address, 2 subscriptions, 5 messages/s (burst 10)."""
    server = dataclasses.replace(config.server, ws_connections_per_address=3, ws_subscriptions_per_connection=2,
                                 ws_messages_per_second=5, ws_message_burst=10)
    return await make_client(dataclasses.replace(config, server=server))


async def lobby(api: Api, sub_id: int = 1) -> aiohttp.ClientWebSocketResponse:
    ws = await api.http.ws_connect("/api/ws")
    await ws.send_json({"id": sub_id, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await receive(ws, "result"))["success"] is True
    await receive(ws, "snapshot")
    return ws


async def test_one_address_gets_a_limited_number_of_connections(limited: TestClient, user: Callable[..., Api]) -> None:
    api = user(limited)
    open_ = [await lobby(api) for _ in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await api.http.ws_connect("/api/ws")
    assert refused.value.status == 429 and refused.value.headers is not None and "Retry-After" in refused.value.headers
    resp = await api.http.get("/api/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                  "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "rate_limited"
    # The connections that are open keep working; one closing makes room for a new one.
    await open_[0].close()
    for _ in range(200):
        try:
            again = await lobby(api)
            break
        except aiohttp.WSServerHandshakeError:
            await asyncio.sleep(0.02)  # the server has not finished tearing the closed one down yet
    else:
        raise AssertionError("a closed connection never made room for a new one")
    for ws in (*open_[1:], again):
        await ws.close()


async def test_subscriptions_per_connection_are_limited(limited: TestClient, user: Callable[..., Api]) -> None:
    ws = await lobby(user(limited))
    await ws.send_json({"id": 2, "type": "subscribe", "view": "congestion", "office": "main"})
    assert (await receive(ws, "result"))["success"] is True
    await ws.send_json({"id": 3, "type": "subscribe", "view": "lobby", "office": "main"})
    error = await receive(ws, "result")
    assert error["id"] == 3 and error["error"]["code"] == "invalid_request" and "2 subscriptions" in error["error"]["message"]
    await ws.close()


async def test_a_flooding_connection_is_refused_then_closed_and_others_keep_receiving(
        limited: TestClient, user: Callable[..., Api]) -> None:
    display = await lobby(user(limited))
    flooder = await user(limited).http.ws_connect("/api/ws")
    for i in range(100):  # far more than the burst of 10, much faster than 5 a second
        await flooder.send_json({"id": i, "type": "subscribe" if i % 2 else "unsubscribe", "view": "lobby",
                                 "office": "main", "subscription": i - 1})
    answers: list[dict] = []
    while (message := await asyncio.wait_for(flooder.receive(), PATIENCE_S)).type == WSMsgType.TEXT:
        answers.append(message.json())
    assert message.type == WSMsgType.CLOSE and flooder.close_code == WSCloseCode.POLICY_VIOLATION
    refused = [a for a in answers if a["type"] == "result" and not a["success"]]
    assert refused and all(a["error"]["code"] == "rate_limited" for a in refused[-5:])
    assert sum(a["type"] == "result" for a in answers) < 40  # the flood was cut short, not served
    # The display on the same server carries on.
    ticket = await user(limited).issue("pickup")
    event = await receive(display, "event")
    while event["event"]["type"] != "ticket.issued":
        event = await receive(display, "event")
    assert event["event"]["waiting_counts"]["pickup"] == 1 and ticket["ahead"] == 0  # the lobby counts it
    await display.close()


def test_check_config_names_a_wrong_websocket_limit(tmp_path: Path) -> None:
    text = (TESTS / "office.toml").read_text(encoding="utf-8")
    path = tmp_path / "office.toml"
    path.write_text(text.replace("[server]\n", "[server]\nws_connections_per_address = 0\nws_message_burst = \"lots\"\n", 1),
                    encoding="utf-8")
    result = madoguchi("check-config", str(path))
    assert result.returncode == 1
    assert "server.ws_connections_per_address: must be 1–100,000, got 0" in result.stdout
    assert "server.ws_message_burst: must be int" in result.stdout
    ok = madoguchi("check-config", str(TESTS.parent / "config" / "demo.toml"))
    assert ok.returncode == 0, ok.stdout
