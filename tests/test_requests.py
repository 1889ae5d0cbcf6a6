"""Bad requests get a 4xx naming the problem; retries apply once; staff actions need the right person."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .conftest import Api


@pytest.mark.parametrize(("body", "status", "words"), [
    ({}, 400, "'procedure' is required"),
    ({"procedure": "pickup", "colour": "red"}, 400, "unknown field 'colour'"),
    ({"procedure": 7}, 400, "'procedure' must be a string"),
    ({"procedure": "pickup", "lang": "xx"}, 400, "'lang' must be one of"),
    ({"procedure": "pickup", "priority": True}, 400, "'priority' must be an integer"),
    ({"procedure": "passport"}, 404, "no procedure 'passport'"),
    ([1, 2], 400, "must be a JSON object"),
])
async def test_bad_ticket_requests_name_the_problem(visitor: Api, body: Any, status: int, words: str) -> None:
    resp = await visitor.http.post("/api/offices/main/tickets", json=body)
    assert resp.status == status
    assert words in (await resp.json())["error"]["message"]


async def test_malformed_json_and_wrong_content_type(visitor: Api) -> None:
    resp = await visitor.http.post("/api/offices/main/tickets", data=b'{"procedure": ',
                                   headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await visitor.http.post("/api/offices/main/tickets", data=b"procedure=pickup",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415


async def test_unknown_things_are_404_with_what_exists(staff: Api, visitor: Api) -> None:
    status, body = await visitor.get("/api/offices/nowhere")
    assert status == 404 and "offices: main" in body["error"]["message"]
    status, body = await staff.counter("42", "call-next")
    assert status == 404 and "counters: 1, 2, 3, 9" in body["error"]["message"]
    status, body = await staff.counter("1", "dance")
    assert status == 404 and "call-next" in body["error"]["message"]
    status, body = await visitor.get("/api/tickets/not-a-real-token-at-all")
    assert status == 404
    status, body = await visitor.get("/api/no/such/path")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_impossible_transitions_are_409_saying_why(staff: Api, visitor: Api) -> None:
    status, body = await staff.counter("2", "finish")
    assert status == 409 and body["error"]["code"] == "no_ticket"
    await visitor.issue("pickup")
    await staff.counter("2", "call-next")
    status, body = await staff.counter("2", "finish")
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    assert body["error"]["message"] == "cannot finish ticket 300: it is called, and only a serving ticket can be"
    status, body = await staff.counter("2", "call-next")
    assert status == 409 and body["error"]["code"] == "counter_busy"
    status, body = await staff.counter("2", "close")
    assert status == 409 and "still has ticket 300" in body["error"]["message"]


async def test_a_retried_request_is_applied_once(staff: Api, visitor: Api) -> None:
    first = await visitor.issue("pickup", **{})
    key = {"Idempotency-Key": "kiosk-7-touch-000123"}
    status, a = await visitor.post("/api/offices/main/tickets", {"procedure": "pickup"}, **key)
    status2, b = await visitor.post("/api/offices/main/tickets", {"procedure": "pickup"}, **key)
    assert status == status2 == 201 and a == b
    assert a["ticket"]["number"] == "301"
    second = await visitor.issue("pickup")
    assert second["ticket"]["number"] == "302"  # the retry took no number

    call = {"Idempotency-Key": "counter-2-press-0001"}
    s1, c1 = await staff.counter("2", "call-next", **call)
    s2, c2 = await staff.counter("2", "call-next", **call)
    assert s1 == s2 == 200 and c1["ticket"]["number"] == c2["ticket"]["number"] == first["ticket"]["number"]
    _, state = await staff.get("/api/offices/main/state")  # the staff view lists the waiting
    assert [t["number"] for t in state["active"]] == ["300"]
    assert [t["number"] for t in state["waiting"]] == ["301", "302"]

    s3, c3 = await staff.counter("1", "call-next", **call)  # same key, other request
    assert s3 == 422 and c3["error"]["code"] == "idempotency_key_reused"


async def test_counter_actions_need_sign_in_and_the_right_role(client: TestClient, user: Any, visitor: Api) -> None:
    await visitor.issue("pickup")
    status, body = await visitor.counter("2", "call-next")
    assert status == 401 and body["error"]["code"] == "unauthorized"

    staff = user()
    await staff.sign_in("staff")
    staff.csrf = "forged"
    status, body = await staff.counter("2", "open")
    assert status == 403 and body["error"]["code"] == "csrf_failed"

    city = user()
    await city.sign_in("city")
    status, body = await city.counter("2", "open")
    assert status == 403 and "staffed by contractor staff" in body["error"]["message"]
    status, body = await city.put("/api/offices/main/notice", {"text": "本日は混雑しています"})
    assert status == 403 and "supervisor" in body["error"]["message"]

    boss = user()
    await boss.sign_in("boss")
    assert (await boss.counter("2", "open"))[0] == 200  # supervisors may work any counter
    assert (await boss.put("/api/offices/main/notice", {"text": "本日は混雑しています"}))[0] == 200

    resp = await client.post("/api/session", json={"username": "staff", "password": "wrong-password"})
    assert resp.status == 401


async def test_only_city_staff_or_a_supervisor_issue_straight_into_the_city_staff_queue(
        visitor: Api, staff: Api, user: Any) -> None:
    status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "review"})
    assert status == 401, body
    # Contractor staff bring a visitor to city staff by a hand-over from their counter.
    for extra in ({}, {"priority": 5}):
        status, body = await staff.post("/api/offices/main/tickets", {"procedure": "review", **extra})
        assert status == 403 and body["error"]["code"] == "forbidden", body
        assert "only city staff or a supervisor" in body["error"]["message"]
        assert "hand-over" in body["error"]["message"]
    city, boss = user(), user()
    await city.sign_in("city")
    await boss.sign_in("boss")
    assert (await city.issue("review"))["ticket"]["number"] == "R001"
    assert (await boss.issue("review", priority=5))["ticket"]["priority"] == 5
    _, state = await staff.get("/api/offices/main/state")  # staff see the waiting tickets
    assert sorted(t["number"] for t in state["waiting"]) == ["R001", "R002"]  # the refused ones took no number


async def test_any_signed_in_staff_may_give_a_priority_class(visitor: Api, staff: Api, user: Any) -> None:
    status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "pickup", "priority": 3})
    assert status == 401, body
    city = user()
    await city.sign_in("city")
    for api in (staff, city):
        assert (await api.issue("pickup", priority=3))["ticket"]["priority"] == 3


async def test_requests_from_another_site_are_refused(staff: Api) -> None:
    status, body = await staff.counter("2", "call-next", Origin="https://evil.example")
    assert status == 403 and body["error"]["code"] == "origin_not_allowed"


async def test_session_cookie_is_httponly_and_samesite(client: TestClient) -> None:
    resp = await client.post("/api/session", json={"username": "staff", "password": "test-password-1"})
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_staff_actions_are_recorded_with_who_and_when(staff: Api, visitor: Api, client: TestClient) -> None:
    from queue_server.web.keys import STORE

    await visitor.issue("pickup")
    await staff.counter("2", "call-next")
    events = await client.app[STORE].events_since("main", 0)
    called = [e for e in events if e["type"] == "ticket.called"]
    assert called[0]["actor"] == "staff" and called[0]["at"] > 0


async def test_openapi_document_lists_every_route(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    routes = {r.resource.canonical for r in client.app.router.routes() if r.resource is not None}
    api = {r for r in routes if r.startswith("/api/")}
    assert api - set(spec["paths"]) == set(), (
        "routes missing from the OpenAPI document: document them with queue_server.web.openapi.add_paths(app, …)")
