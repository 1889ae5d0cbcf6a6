"""The WebSocket protocol: snapshot then events, a fresh snapshot after a disconnect, slow clients dropped."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.web.keys import HUB

from .conftest import Api
from .test_api_lifecycle import receive


async def subscribe(ws: Any, view: str = "lobby", **params: str) -> dict[str, Any]:
    await ws.send_json({"id": 1, "type": "subscribe", "view": view, **params})
    assert (await receive(ws, "result"))["success"] is True
    return await receive(ws, "snapshot" if view in ("lobby", "counter") else "view")


async def test_reconnecting_client_gets_a_fresh_snapshot_with_what_it_missed(staff: Api, visitor: Api) -> None:
    ws = await visitor.http.ws_connect("/api/ws")
    first = await subscribe(ws, office="main")
    await visitor.issue("pickup")
    # Events follow the snapshot without a gap. The staff fixture's counter opening may still come
    # first (the hub had not applied it when the snapshot was taken): count from the issue's event.
    seq = first["seq"]
    while True:
        event = await receive(ws, "event")
        assert event["seq"] == seq + 1
        seq = event["seq"]
        if event["event"]["type"] == "ticket.issued":
            break
    issued_seq = seq
    await ws.close()  # the connection drops…

    missed = await visitor.issue("pickup")  # …while a ticket is issued and another called
    await staff.counter("2", "call-next")

    ws = await visitor.http.ws_connect("/api/ws")
    again = await subscribe(ws, office="main")
    # The snapshot is the state as of its seq; anything after it follows as events, none skipped.
    seq, later = again["seq"], []
    while seq < issued_seq + 2:
        event = await receive(ws, "event")
        assert event["seq"] == seq + 1
        seq, later = event["seq"], [*later, event["event"]["type"]]
    called = [c["number"] for c in again["data"]["recent"]]
    if "ticket.called" not in later:  # the lobby counts the waiting; it does not list them
        assert called[:1] == ["300"] and again["data"]["waiting_counts"] == {"pickup": 1}
        assert missed["ticket"]["number"] == "301"
    await visitor.issue("pickup")
    assert (await receive(ws, "event"))["seq"] == seq + 1
    await ws.close()


async def test_ticket_view_follows_one_ticket_by_its_token(staff: Api, visitor: Api) -> None:
    first = await visitor.issue("pickup")
    mine = await visitor.issue("pickup")
    ws = await visitor.http.ws_connect("/api/ws")
    view = await subscribe(ws, view="ticket", token=mine["token"])
    assert view["data"]["ahead"] == 1 and view["data"]["state"] == "waiting"
    await staff.counter("2", "call-next")
    update = await receive(ws, "view")
    assert update["data"]["ahead"] == 0
    await staff.counter("2", "start")
    await staff.counter("2", "finish")
    await staff.counter("2", "call-next")
    called = await receive(ws, "view")
    while called["data"]["state"] != "called":
        called = await receive(ws, "view")
    assert called["data"]["counter"] == "2" and called["data"]["number"] == mine["ticket"]["number"]
    assert first["token"] not in str(called)
    await ws.close()


async def test_bad_subscriptions_get_coded_errors(visitor: Api) -> None:
    ws = await visitor.http.ws_connect("/api/ws")
    await ws.send_str("{not json")
    assert (await receive(ws, "result"))["error"]["code"] == "invalid_json"
    await ws.send_json({"id": 2, "type": "subscribe", "view": "lobby", "office": "nowhere"})
    error = await receive(ws, "result")
    assert error["id"] == 2 and error["error"]["code"] == "not_found"
    await ws.send_json({"id": 3, "type": "subscribe", "view": "counter", "office": "main", "counter": "1"})
    assert (await receive(ws, "result"))["error"]["code"] == "unauthorized"
    await ws.send_json({"id": 4, "type": "subscribe", "view": "ticket", "token": "x" * 22})
    assert (await receive(ws, "result"))["error"]["code"] == "not_found"
    await ws.send_json({"id": 5, "type": "subscribe", "view": "lobby", "office": "main", "colour": "red"})
    error = await receive(ws, "result")
    assert error["error"]["code"] == "invalid_request" and "colour" in error["error"]["message"]
    await ws.close()


async def test_websocket_from_another_site_is_refused(client: TestClient) -> None:
    resp = await client.get("/api/ws", headers={"Origin": "https://evil.example", "Upgrade": "websocket",
                                                "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                                                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "origin_not_allowed"


def stalled_client(host: str, port: int) -> socket.socket:
    """A WebSocket client that subscribes to the lobby and then never reads again (tiny receive buffer)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    raw.connect((host, port))
    raw.sendall(b"GET /api/ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host.encode(), port))
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    payload = b'{"id": 1, "type": "subscribe", "view": "lobby", "office": "main"}'
    mask = b"\x01\x02\x03\x04"
    raw.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return raw


@pytest.mark.slow
async def test_a_client_that_stops_reading_is_dropped_and_the_others_keep_receiving(
        client: TestClient, visitor: Api, user: Any) -> None:
    hub = client.app[HUB]
    stalled = await asyncio.to_thread(stalled_client, client.host, client.port)
    reader = await visitor.http.ws_connect("/api/ws")
    start = await subscribe(reader, office="main")
    subscribed = len(hub.subscribers["main"])  # both clients, and any server-side listeners
    boss = user()
    await boss.sign_in("boss")
    notice = "お知らせ：" + "本日は大変混み合っております。" * 12
    sent = 0
    while len(hub.subscribers["main"]) == subscribed and sent < 3000:
        status, _ = await boss.put("/api/offices/main/notice", {"text": f"{sent} {notice}"[:200]})
        assert status == 200
        sent += 1
        # The reader gets every event in order while the other client stalls.
        assert (await receive(reader, "event"))["seq"] == start["seq"] + sent
    assert len(hub.subscribers["main"]) == subscribed - 1, f"the stalled client was still subscribed after {sent} events"
    for _ in range(20):
        await boss.put("/api/offices/main/notice", {"text": "その後も届きます"})
        sent += 1
        assert (await receive(reader, "event"))["seq"] == start["seq"] + sent
    stalled.close()
    await reader.close()
