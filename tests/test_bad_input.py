"""Input built to break the parser or the store gets a 4xx naming the problem, on HTTP and WebSocket."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .conftest import Api
from .test_api_lifecycle import receive

DEEP = b'{"procedure": ' + b"[" * 1000 + b"]" * 1000 + b"}"
HUGE_INT = b'{"procedure": "pickup", "priority": ' + b"9" * 5000 + b"}"
LONE_SURROGATE = "\\ud800"  # the JSON escape of half a character


@pytest.mark.parametrize(("raw", "words"), [(DEEP, "nested more than 16 levels deep"),
                                            (HUGE_INT, "a number has 5000 digits")])
async def test_deep_json_and_huge_integers_are_400(visitor: Api, raw: bytes, words: str) -> None:
    resp = await visitor.http.post("/api/offices/main/tickets", data=raw, headers={"Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "invalid_json" and words in body["error"]["message"], body


async def test_deep_json_and_huge_integers_on_the_websocket_keep_the_connection(visitor: Api) -> None:
    ws = await visitor.http.ws_connect("/api/ws")
    await ws.send_str("[" * 1000 + "]" * 1000)
    answer = await receive(ws, "result")
    assert answer["error"]["code"] == "invalid_json" and "nested" in answer["error"]["message"]
    await ws.send_str('{"id": ' + "1" * 4000 + ', "type": "ping"}')
    answer = await receive(ws, "result")
    assert answer["error"]["code"] == "invalid_json" and "4000 digits" in answer["error"]["message"]
    await ws.send_str('{"id": 1, "type": "subscribe", "view": "ticket", "token": "' + LONE_SURROGATE + 'abcdefghijk"}')
    answer = await receive(ws, "result")
    assert answer["error"]["field"] == "token" and "lone surrogate" in answer["error"]["message"]
    await ws.send_json({"id": 2, "type": "ping"})
    assert (await receive(ws, "pong"))["id"] == 2  # still connected
    await ws.close()


async def raw_json(api: Api, method: str, path: str, text: str) -> tuple[int, Any]:
    resp = await api.http.request(method, path, data=text.encode(),
                                  headers={"Content-Type": "application/json", "X-CSRF-Token": api.csrf})
    return resp.status, await resp.json()


async def test_a_lone_surrogate_is_400_naming_the_field(visitor: Api, user: Any) -> None:
    status, body = await raw_json(visitor, "POST", "/api/session",
                                  f'{{"username": "staff{LONE_SURROGATE}", "password": "test-password-1"}}')
    assert status == 400 and body["error"]["field"] == "username" and "lone surrogate" in body["error"]["message"]

    boss = user()
    await boss.sign_in("boss")
    status, body = await raw_json(boss, "PUT", "/api/offices/main/notice", f'{{"text": "混雑{LONE_SURROGATE}"}}')
    assert status == 400 and body["error"]["field"] == "text", body

    await visitor.issue("pickup")
    assert (await boss.counter("2", "open"))[0] == 200
    assert (await boss.counter("2", "call-next"))[0] == 200
    status, body = await raw_json(boss, "POST", "/api/offices/main/counters/2/hand-over",
                                  f'{{"to": "review", "reason": "確認{LONE_SURROGATE}"}}')
    assert status == 400 and body["error"]["field"] == "reason", body
    status, body = await raw_json(boss, "POST", "/api/offices/main/tickets", f'{{"{LONE_SURROGATE}": 1}}')
    assert status == 400 and "lone surrogate" in body["error"]["message"], body
    _, state = await visitor.get("/api/offices/main/state")
    assert [t["number"] for t in state["active"]] == ["300"]  # nothing changed by the refused requests


async def test_405_says_which_methods_are_allowed(visitor: Api) -> None:
    resp = await visitor.http.patch("/api/session", json={})
    body = await resp.json()
    assert resp.status == 405 and body["error"]["code"] == "invalid_request"
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "POST", "DELETE"}
    resp = await visitor.http.put("/api/offices/main/tickets", json={})
    assert resp.status == 405 and "POST" in resp.headers["Allow"]


async def test_cancel_endpoints_refuse_a_body_they_do_not_take(visitor: Api, staff: Api) -> None:
    mine = await visitor.issue("pickup")
    other = await visitor.issue("pickup")
    status, body = await visitor.post(f"/api/tickets/{mine['token']}/cancel", {"reason": "急用"})
    assert status == 400 and "unknown field 'reason'" in body["error"]["message"], body
    status, body = await staff.post(f"/api/offices/main/tickets/{other['ticket']['number']}/cancel", {"force": True})
    assert status == 400 and "unknown field 'force'" in body["error"]["message"], body
    _, state = await staff.get("/api/offices/main/state")  # staff see the waiting tickets themselves
    assert [t["number"] for t in state["waiting"]] == ["300", "301"]  # both still waiting
    assert (await visitor.post(f"/api/tickets/{mine['token']}/cancel"))[0] == 200


async def test_openapi_states_the_idempotency_key_and_announcement_number_formats(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    issue = spec["paths"]["/api/offices/{office}/tickets"]["post"]
    idem = next(p for p in issue["parameters"] if p["name"] == "Idempotency-Key")["schema"]
    assert idem["minLength"] == 8 and idem["maxLength"] == 100 and idem["pattern"] == "^[\\x20-\\x7e]+$"
    announcement = spec["paths"]["/api/offices/{office}/announcement"]["get"]
    number = next(p for p in announcement["parameters"] if p["name"] == "number")["schema"]
    assert number["pattern"] == "^[A-Za-z0-9-]{1,8}$"
    assert "429" in issue["responses"] and "rate_limited" in spec["components"]["schemas"]["Error"][
        "properties"]["error"]["properties"]["code"]["enum"]
