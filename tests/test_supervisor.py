"""The supervisor's API and WebSocket view: outage mode, counter procedures today, the notice in every
language, the day's close-out; bad input gets a 4xx naming what is wrong, other roles a 403."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.web.keys import HUB

from .conftest import Api
from .test_api_lifecycle import receive
from .waiting import wait_until

OUTAGE = {"offices": ["main"], "procedures": ["pickup"], "notice": "system"}


@pytest.fixture
async def boss(user: Callable[[], Api]) -> Api:
    """A signed-in supervisor."""
    api = user()
    await api.sign_in("boss")
    return api


async def supervisor_views(ws: Any, office: str = "main") -> dict[str, Any]:
    """The next supervisor view of ``office``."""
    while True:
        message = await receive(ws, "view")
        if message["office"] == office:
            assert message["view"] == "supervisor"
            return message["data"]


async def test_supervisor_view_shows_waiting_counters_and_the_share_called_within_target(
        client: TestClient, boss: Api, staff: Api, visitor: Api) -> None:
    ws = await boss.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "supervisor"})
    assert (await receive(ws, "result"))["success"] is True
    first = await supervisor_views(ws)
    assert first["still_waiting"]["count"] == 0 and first["today"]["service_level"]["called"] == 0
    await visitor.issue("pickup")
    await visitor.issue("pickup")
    status, _ = await staff.counter("2", "call-next")
    assert status == 200
    view = await supervisor_views(ws)
    while view["today"]["service_level"]["called"] < 1:
        view = await supervisor_views(ws)
    assert view["procedures"]["pickup"]["waiting"] == 1
    assert view["procedures"]["pickup"]["oldest_issued_at"] > 0
    counter = next(c for c in view["counters"] if c["id"] == "2")
    assert counter["status"] == "open" and counter["staff"] == "staff"
    assert counter["ticket"]["number"] == "300" and counter["ticket"]["state"] == "called"
    level = view["today"]["service_level"]
    assert level["within_target"] == 1 and level["share"] == 1.0 and level["met"] is True
    assert level["target_wait_minutes"] == 30
    assert view["still_waiting"]["numbers"] == [{"number": "301", "procedure": "pickup",
                                                 "issued_at": view["still_waiting"]["numbers"][0]["issued_at"]}]
    await ws.close()


async def test_supervisor_view_is_for_supervisors_only(staff: Api, visitor: Api) -> None:
    for api, code in ((visitor, "unauthorized"), (staff, "forbidden")):
        ws = await api.http.ws_connect("/api/ws")
        await ws.send_json({"id": 1, "type": "subscribe", "view": "supervisor"})
        result = await receive(ws, "result")
        assert result["success"] is False and result["error"]["code"] == code
        await ws.close()


async def test_estimate_accuracy_compares_the_estimate_shown_at_issue_with_the_real_wait(
        client: TestClient, boss: Api, staff: Api, visitor: Api) -> None:
    hub = client.app[HUB]
    hub.publish_estimates("main", {"procedures": {"pickup": {"median_minutes": 12.0, "low_minutes": 5.0,
                                                             "high_minutes": 20.0}}, "tickets": {}})
    await visitor.issue("pickup")
    await wait_until(lambda: _async(len(hub.state("main").figures.shown) == 1), "the issue seen by the hub")
    await staff.counter("2", "call-next")
    await wait_until(lambda: _async(bool(hub.state("main").figures.waits)), "the call seen by the hub")
    status, report = await boss.get("/api/offices/main/day/report")
    assert status == 200
    accuracy = report["today"]["estimates"]
    # Called at once: the real wait (≈0) was about 12 minutes shorter than shown, below the range.
    assert accuracy["compared"] == 1 and 11 < accuracy["mean_abs_error"] <= 12 and accuracy["bias"] < -11
    assert accuracy["within_range"] == 0


async def _async(value: Any) -> Any:
    return value


async def test_outage_pauses_the_procedures_shows_the_notice_and_ending_restores_them(
        client: TestClient, boss: Api, visitor: Api) -> None:
    status, _ = await boss.post("/api/offices/main/procedures/application/pause")
    assert status == 200
    mine = await visitor.issue("pickup")
    status, body = await boss.post("/api/outage", {**OUTAGE, "procedures": ["pickup", "application"]})
    assert status == 200, body
    assert body["outages"][0]["notice"]["ja"].startswith("システム障害")
    status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "pickup"})
    assert status == 409 and body["error"]["code"] == "procedure_paused"
    hub = client.app[HUB]
    await wait_until(lambda: _async(hub.state("main").outage), "the outage in the hub")
    status, ticket = await visitor.get(f"/api/tickets/{mine['token']}")
    assert ticket["wait_unknown"] is True and ticket["estimate"] is None
    assert ticket["outage_notice"]["en"].startswith("Some procedures")
    status, congestion = await visitor.get("/api/offices/main/congestion")
    assert congestion["outage_notice"]["ja"].startswith("システム障害")
    pickup = next(p for p in congestion["procedures"] if p["id"] == "pickup")
    assert pickup["wait_unknown"] is True and pickup["estimate_minutes"] is None and pickup["paused"] is True
    status, lobby = await visitor.get("/api/offices/main/state")
    assert lobby["outage"]["procedures"] == ["pickup", "application"]

    status, body = await boss.post("/api/outage", OUTAGE)
    assert status == 409 and body["error"]["code"] == "outage_active"

    status, body = await boss.post("/api/outage/end", {"offices": ["main"]})
    assert status == 200, body
    # Pickup was paused by the outage and takes tickets again; application was paused before and stays so.
    assert (await visitor.post("/api/offices/main/tickets", {"procedure": "pickup"}))[0] == 201
    status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "application"})
    assert status == 409 and body["error"]["code"] == "procedure_paused"
    await wait_until(lambda: _async(hub.state("main").outage is None), "the outage ended in the hub")
    status, ticket = await visitor.get(f"/api/tickets/{mine['token']}")
    assert ticket["wait_unknown"] is False and ticket["outage_notice"] is None
    status, body = await boss.post("/api/outage/end", {"offices": ["main"]})
    assert status == 409 and body["error"]["code"] == "no_outage"
    # The events say which procedures are paused as a list (absent when none, never an empty object).
    events = await hub.store.events_since("main", 0)
    ended = [e for e in events if e["type"] == "outage.ended"][-1]
    assert ended["paused"] == ["application"]


async def test_outage_is_applied_once_for_a_retried_request(client: TestClient, boss: Api) -> None:
    hub = client.app[HUB]
    first = await boss.post("/api/outage", OUTAGE, **{"Idempotency-Key": "outage-retry-1"})
    assert first[0] == 200
    events_before = await hub.store.latest_event_seq("main")
    await wait_until(lambda: _async(hub.state("main").outage), "the outage in the hub")
    # The hub has seen it: the retry still gets the first answer, and no second step runs.
    assert await boss.post("/api/outage", OUTAGE, **{"Idempotency-Key": "outage-retry-1"}) == first
    assert (await boss.post("/api/outage", OUTAGE))[0] == 200          # the same outage again: no change
    assert await hub.store.latest_event_seq("main") == events_before
    status, body = await boss.post("/api/outage", {**OUTAGE, "procedures": ["application"]})
    assert status == 409 and body["error"]["code"] == "outage_active"
    ended = await boss.post("/api/outage/end", {"offices": ["main"]}, **{"Idempotency-Key": "outage-end-1"})
    assert ended[0] == 200
    await wait_until(lambda: _async(hub.state("main").outage is None), "the outage ended in the hub")
    assert await boss.post("/api/outage/end", {"offices": ["main"]}, **{"Idempotency-Key": "outage-end-1"}) == ended


@pytest.mark.parametrize(("body", "field"), [
    ({"offices": [], "procedures": ["pickup"], "notice": "system"}, "offices"),
    ({"offices": ["main"], "procedures": ["nope"], "notice": "system"}, "procedures"),
    ({"offices": ["main"], "procedures": ["pickup"], "notice": "nope"}, "notice"),
    ({"offices": ["main"], "procedures": "pickup", "notice": "system"}, "procedures"),
    ({"offices": ["main"], "procedures": ["pickup"]}, "notice"),
    ({"offices": ["main"], "procedures": ["pickup"], "notice": "system", "extra": 1}, "extra"),
])
async def test_outage_bad_input_names_the_field(boss: Api, body: dict[str, Any], field: str) -> None:
    status, answer = await boss.post("/api/outage", body)
    assert status == 400 and answer["error"]["field"] == field, answer


async def test_unknown_office_is_404_and_other_roles_get_403(boss: Api, staff: Api) -> None:
    status, answer = await boss.post("/api/outage", {**OUTAGE, "offices": ["nowhere"]})
    assert status == 404 and "nowhere" in answer["error"]["message"]
    for path, body in (("/api/outage", OUTAGE), ("/api/outage/end", {"offices": ["main"]}),
                       ("/api/offices/main/day/close", {})):
        status, answer = await staff.post(path, body)
        assert status == 403 and "supervisor" in answer["error"]["message"]
    resp = await staff.http.put("/api/offices/main/counters/1/procedures", json={"procedures": ["pickup"]},
                                headers={"X-CSRF-Token": staff.csrf})
    assert resp.status == 403


async def test_counter_serves_the_procedures_set_for_today(client: TestClient, boss: Api, staff: Api,
                                                           visitor: Api) -> None:
    await visitor.issue("application")
    await visitor.issue("pickup")
    # Counter 1 serves application first by its configuration; today only pickup.
    status, body = await boss.put("/api/offices/main/counters/1/procedures", {"procedures": ["pickup"]})
    assert status == 200 and body["counter"]["procedures"] == ["pickup"], body
    status, called = await staff.counter("1", "call-next")
    assert status == 200 and called["ticket"]["procedure"] == "pickup"
    await staff.counter("1", "start")
    await staff.counter("1", "finish")
    status, _ = await staff.counter("1", "call-next")
    assert status == 409  # only application waits, which counter 1 does not serve today
    status, body = await boss.put("/api/offices/main/counters/1/procedures", {"procedures": None})
    assert status == 200 and "procedures" not in body["counter"]
    status, called = await staff.counter("1", "call-next")
    assert status == 200 and called["ticket"]["procedure"] == "application"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"procedures": ["review"]}, 409, "procedure_not_allowed"),   # city staff only; counter 1 is a contractor's
    ({"procedures": ["nope"]}, 404, "not_found"),
    ({"procedures": []}, 400, "invalid_request"),
    ({"procedures": "pickup"}, 400, "invalid_request"),
    ({}, 400, "invalid_request"),
])
async def test_counter_procedures_bad_input(boss: Api, body: dict[str, Any], status: int, code: str) -> None:
    resp = await boss.http.put("/api/offices/main/counters/1/procedures", json=body,
                               headers={"X-CSRF-Token": boss.csrf})
    answer = await resp.json()
    assert resp.status == status and answer["error"]["code"] == code, answer


async def test_notice_in_every_language_reaches_the_lobby_and_the_congestion_view(client: TestClient, boss: Api,
                                                                                   visitor: Api) -> None:
    status, body = await boss.put("/api/offices/main/notice", {"text": "本日は混み合っています", "texts": {
        "en": "It is busy today", "pt": ""}})
    assert status == 200 and body["notices"] == {"en": "It is busy today"}
    hub = client.app[HUB]
    await wait_until(lambda: _async(hub.state("main").notices), "the notice in the hub")
    status, lobby = await visitor.get("/api/offices/main/state")
    assert lobby["notice"] == "本日は混み合っています" and lobby["notices"] == {"en": "It is busy today"}
    status, congestion = await visitor.get("/api/offices/main/congestion")
    assert congestion["notice"] == {"ja": "本日は混み合っています", "en": "It is busy today"}
    status, answer = await boss.put("/api/offices/main/notice", {"text": "x", "texts": {"xx": "?"}})
    assert status == 400 and answer["error"]["field"] == "texts" and "'xx'" in answer["error"]["message"]
    status, answer = await boss.put("/api/offices/main/notice", {"text": "x", "texts": {"en": "y" * 201}})
    assert status == 400 and answer["error"]["field"] == "texts"


async def test_closing_the_day_is_refused_while_visitors_wait_unless_confirmed(client: TestClient, boss: Api,
                                                                               visitor: Api) -> None:
    mine = await visitor.issue("pickup")
    hub = client.app[HUB]
    await wait_until(lambda: _async(hub.state("main").waiting), "the ticket in the hub")
    status, answer = await boss.post("/api/offices/main/day/close", {})
    assert status == 409 and answer["error"]["code"] == "visitors_waiting" and "1 visitors" in answer["error"]["message"]
    status, report = await boss.post("/api/offices/main/day/close", {"confirm": True})
    assert status == 200, report
    assert report["expired"] == [mine["ticket"]["number"]] and report["today"]["issued"] == 1
    assert report["closed_by"] == "boss"
    # The archive's day report (日報) of the closed day, with its downloads.
    assert report["archive_report"]["title"].startswith("日報")
    day = report["day"]
    assert report["downloads"]["xlsx"] == f"/api/reports/daily?day={day[:4]}-{day[4:6]}-{day[6:]}&office=main&format=xlsx"
    resp = await boss.http.get(report["downloads"]["xlsx"])
    assert resp.status == 200 and resp.content_type.endswith("spreadsheetml.sheet")
    status, ticket = await visitor.get(f"/api/tickets/{mine['token']}")
    assert ticket["state"] == "expired"
    await wait_until(lambda: _async(not hub.state("main").waiting), "the expired ticket gone from the hub")
    status, saved = await boss.get(f"/api/offices/main/day/report?day={report['day']}")
    assert status == 200 and saved["expired"] == report["expired"]
    status, answer = await boss.get("/api/offices/main/day/report?day=2026-01")
    assert status == 400 and answer["error"]["field"] == "day"
    status, answer = await boss.post("/api/offices/main/day/close", {"confirm": "yes"})
    assert status == 400 and answer["error"]["field"] == "confirm"


async def test_closing_the_day_waits_for_closing_time(make_client: Callable[..., Any], config: Any,
                                                      user: Callable[..., Api]) -> None:
    import dataclasses
    import datetime as dt
    import time

    from queue_server.web.keys import CLOCK

    client = await make_client(dataclasses.replace(config, server=dataclasses.replace(config.server, always_open=False)))
    boss = user(client.server)
    await boss.sign_in("boss")
    tokyo = dt.timezone(dt.timedelta(hours=9))

    def at(hour: int) -> int:   # Tuesday 2027-01-05 (after any day the server began) at ``hour``: open 08:30–17:15
        return int(dt.datetime(2027, 1, 5, hour, tzinfo=tokyo).timestamp() * 1000) - time.time_ns() // 1_000_000

    client.app[CLOCK].offset_ms = at(10)
    status, answer = await boss.post("/api/offices/main/day/close", {})
    assert status == 409 and answer["error"]["code"] == "office_open" and "closing time" in answer["error"]["message"]
    client.app[CLOCK].offset_ms = at(18)
    status, report = await boss.post("/api/offices/main/day/close", {})
    assert status == 200 and report["day"] == "20270105" and report["expired"] == []


async def test_the_console_counts_today_s_bookings_still_to_come(make_client: Callable[..., Any],
                                                                 user: Callable[..., Api]) -> None:
    import datetime as dt
    import time

    from queue_server.web.keys import CLOCK

    client = await make_client()
    tokyo = dt.timezone(dt.timedelta(hours=9))

    def set_clock(at: dt.datetime) -> None:
        client.app[CLOCK].offset_ms = int(at.timestamp() * 1000) - time.time_ns() // 1_000_000

    set_clock(dt.datetime(2027, 1, 4, 10, 0, tzinfo=tokyo))    # Monday: book Tuesday's slots
    visitor = user(client.server)
    for slot in ("09:00", "11:00", "11:30"):
        status, created = await visitor.post("/api/offices/main/bookings",
                                             {"procedure": "pickup", "day": "20270105", "slot": slot})
        assert status == 201, created
    resp = await visitor.http.delete(f"/api/bookings/by-secret/{created['secret']}")   # 11:30 cancelled
    assert resp.status == 200, await resp.text()
    # Tuesday 09:05: the 09:00 visitor is late but within late_minutes (10), so not released yet.
    set_clock(dt.datetime(2027, 1, 5, 9, 5, tzinfo=tokyo))
    boss = user(client.server)
    await boss.sign_in("boss")
    ws = await boss.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "supervisor"})
    assert (await receive(ws, "result"))["success"] is True
    view = await supervisor_views(ws)
    while not view.get("bookings") or view["day"] != "20270105" or view["bookings"]["to_come"] != 2:
        view = await supervisor_views(ws)
    bookings = view["bookings"]
    assert bookings["procedures"] == {"pickup": bookings["to_come"]} and bookings["past_slot_start"] == 1
    assert bookings["next_slot"] == "11:00"
    assert view["back_office"] is None    # no procedure here has back-office stages: no figure, not a zero
    await ws.close()


async def test_back_office_backlog_counts_open_and_claimed_tasks_by_kind(client: TestClient) -> None:
    from queue_server.store.supervisor import back_office_backlog

    store = client.app[HUB].store
    key = store.office_key("main")
    tasks = {"1": ("prepare", "open", 1_000), "2": ("prepare", "claimed", 9_000), "3": ("post", "open", None),
             "4": ("post", "done", None)}
    for task_id, (kind, state, due) in tasks.items():
        await store.redis.hset(f"{key}task:{task_id}", mapping={"id": task_id, "kind": kind, "state": state,
                                                                 **({"due_at": due} if due else {})})
        if state != "done":
            await store.redis.zadd(f"{key}tasks", {task_id: 1})
    backlog = await back_office_backlog(store, "main", now_ms=5_000)
    assert backlog == {"kinds": {"prepare": {"open": 1, "claimed": 1}, "post": {"open": 1, "claimed": 0}},
                       "total": 3, "overdue": 1}
