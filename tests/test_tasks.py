"""Back-office tasks over HTTP: a same-day pickup waits for its card, the back office prepares it, the
visitor is called in their place, and the visit's post-issuance task follows (issue #8)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from queue_server.clock import Clock
from queue_server.config import load_config
from queue_server.web.keys import CLOCK
from queue_server.store.redis_store import QueueStore
from queue_server.store.tasks import TaskStore

from .conftest import TESTS, Api
from .test_api_lifecycle import receive
from .waiting import next_millisecond

TOKYO = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[TestClient]], tmp_path: Path) -> TestClient:
    """The test office with back-office stages for pickups, and a branch whose cards it keeps."""
    config = load_config(TESTS / "backoffice.toml")
    return await make_client(dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=tmp_path)))


async def tasks(api: Api, office: str = "main") -> dict[str, Any]:
    status, body = await api.get(f"/api/offices/{office}/tasks")
    assert status == 200, body
    return body


async def task_action(api: Api, task: dict[str, Any], action: str, **headers: str) -> tuple[int, Any]:
    return await api.post(f"/api/offices/{task['office']}/tasks/{task['id']}/{action}", **headers)


async def test_a_same_day_pickup_waits_for_its_card_and_is_then_called_in_its_place(staff: Api, visitor: Api) -> None:
    first = await visitor.issue("pickup")
    second = await visitor.issue("pickup")
    assert first["ticket"]["prep"] == "pending"
    assert second["ahead"] == 1  # the first visitor is ahead in line, card ready or not
    # Nobody is callable: both cards are being prepared.
    status, body = await staff.counter("2", "call-next")
    assert status == 409 and body["error"]["code"] == "queue_empty", body
    # Calling a held ticket by number says why it cannot be.
    status, body = await staff.counter("2", "call", {"number": first["ticket"]["number"]})
    assert status == 409 and body["error"]["code"] == "card_not_ready", body
    assert "being prepared" in body["error"]["message"]

    work = await tasks(staff)
    assert [t["number"] for t in work["tasks"]] == ["300", "301"]
    assert all((t["kind"], t["group"], t["state"]) == ("prepare", "visitor_waiting", "open") for t in work["tasks"])
    assert work["backlog"]["prepare_waiting"]["tasks"] == 2
    assert work["backlog"]["prepare_waiting"]["minutes"] == 30  # the 15-minute prior, nothing measured yet
    assert work["people_on_work"] == 0

    # The second visitor's card is prepared first: they are callable, the first still not.
    second_task = work["tasks"][1]
    status, body = await task_action(staff, second_task, "claim")
    assert status == 200 and body["task"]["state"] == "claimed", body
    assert (await tasks(staff))["people_on_work"] == 1
    status, body = await task_action(staff, second_task, "finish")
    assert status == 200 and body["task"]["state"] == "done", body
    assert body["ticket_ready"]["number"] == "301" and body["ticket_ready"]["prep"] == "ready"
    status, view = await visitor.get(f"/api/tickets/{first['token']}")
    assert view["prep"] == "pending"

    # Claim-next takes the first visitor's card now; when it is ready, they are called before 301:
    # their place in line was kept.
    status, body = await staff.post("/api/offices/main/tasks/claim-next")
    assert status == 200 and body["task"]["number"] == "300", body
    status, body = await task_action(staff, body["task"], "finish")
    assert status == 200, body
    called = []
    for _ in range(2):
        status, body = await staff.counter("2", "call-next")
        assert status == 200, body
        called.append(body["ticket"]["number"])
        await staff.counter("2", "start")
        await staff.counter("2", "finish")
    assert called == ["300", "301"]

    # Each finished visit left its post-issuance task.
    work = await tasks(staff)
    assert [(t["kind"], t["number"], t["group"]) for t in work["tasks"]] == [("post", "300", "post"),
                                                                             ("post", "301", "post")]
    assert work["backlog"]["post"]["tasks"] == 2


async def test_finishing_an_unclaimed_task_or_claiming_a_finished_one_is_refused_naming_its_state(
        staff: Api, visitor: Api) -> None:
    await visitor.issue("pickup")
    task = (await tasks(staff))["tasks"][0]
    status, body = await task_action(staff, task, "finish")
    assert status == 409 and "it is open" in body["error"]["message"] and "claim it first" in body["error"]["message"]
    status, body = await task_action(staff, task, "return")
    assert status == 409 and "it is open" in body["error"]["message"]
    assert (await task_action(staff, task, "claim"))[0] == 200
    status, body = await task_action(staff, task, "claim")
    assert status == 409 and "it is claimed" in body["error"]["message"], body
    assert (await task_action(staff, task, "finish"))[0] == 200
    status, body = await task_action(staff, task, "claim")
    assert status == 409 and "it is done" in body["error"]["message"], body
    status, body = await task_action(staff, task, "finish")
    assert status == 409 and "it is done" in body["error"]["message"], body
    # Unknown tasks and actions: 404.
    for path in ("/api/offices/main/tasks/999/claim", "/api/offices/main/tasks/abc/claim",
                 "/api/offices/main/tasks/1/destroy", "/api/offices/nowhere/tasks/1/claim"):
        status, body = await staff.post(path)
        assert status == 404, (path, body)
    status, body = await staff.post("/api/offices/main/tasks/claim-next")
    assert status == 409 and body["error"]["code"] == "no_task", body


async def test_tasks_need_a_signed_in_staff_member(visitor: Api, staff: Api) -> None:
    await visitor.issue("pickup")
    status, body = await visitor.get("/api/offices/main/tasks")
    assert status == 401, body
    status, body = await visitor.post("/api/offices/main/tasks/claim-next")
    assert status == 401, body


async def test_double_presses_and_retries_are_safe(staff: Api, visitor: Api) -> None:
    await visitor.issue("pickup")
    await visitor.issue("pickup")
    first = await staff.post("/api/offices/main/tasks/claim-next", **{"Idempotency-Key": "claim-next-0001"})
    again = await staff.post("/api/offices/main/tasks/claim-next", **{"Idempotency-Key": "claim-next-0001"})
    assert first == again and first[0] == 200
    work = await tasks(staff)
    assert [t["state"] for t in work["tasks"]] == ["claimed", "open"]  # the retry claimed nothing more
    task = first[1]["task"]
    done = await task_action(staff, task, "finish", **{"Idempotency-Key": "finish-0001"})
    assert done == await task_action(staff, task, "finish", **{"Idempotency-Key": "finish-0001"})
    assert done[0] == 200 and done[1]["ticket_ready"]["number"] == "300"
    # A key reused for another task is refused, not answered with the other task's answer.
    other = work["tasks"][1]
    status, body = await task_action(staff, other, "claim", **{"Idempotency-Key": "finish-0001"})
    assert status == 422, body


async def test_a_visitor_leaving_cancels_the_preparation(staff: Api, visitor: Api) -> None:
    leaving = await visitor.issue("pickup")
    staying = await visitor.issue("pickup")
    status, body = await visitor.post(f"/api/tickets/{leaving['token']}/cancel")
    assert status == 200, body
    assert [t["number"] for t in (await tasks(staff))["tasks"]] == [staying["ticket"]["number"]]


async def test_a_branch_pickup_is_prepared_by_the_office_keeping_its_cards(staff: Api, visitor: Api) -> None:
    await visitor.issue("pickup", office="branch")
    work = await tasks(staff, "main")
    assert work["offices"] == ["main", "branch"]
    [task] = work["tasks"]
    assert (task["office"], task["number"], task["work_office"]) == ("branch", "P001", "main")
    status, body = await staff.post("/api/offices/main/tasks/claim-next")
    assert status == 200 and body["task"]["office"] == "branch", body
    status, body = await task_action(staff, body["task"], "finish")
    assert status == 200 and body["ticket_ready"]["number"] == "P001"


async def test_counter_and_ticket_views_show_a_held_ticket_as_its_card_being_prepared(staff: Api, visitor: Api) -> None:
    ws = await staff.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "counter", "office": "main", "counter": "2"})
    assert (await receive(ws, "result"))["success"] is True
    await receive(ws, "snapshot")
    issued = await visitor.issue("pickup")
    event = (await receive(ws, "event"))["event"]
    while event["type"] != "ticket.issued":
        event = (await receive(ws, "event"))["event"]
    assert event["ticket"]["prep"] == "pending"
    status, state = await staff.get("/api/offices/main/state")
    assert [(t["number"], t["prep"]) for t in state["waiting"]] == [("300", "pending")]
    status, view = await visitor.get(f"/api/tickets/{issued['token']}")
    assert view["state"] == "waiting" and view["prep"] == "pending"
    await ws.close()


async def test_the_day_close_expires_held_tickets_cancels_their_preparation_and_carries_post_work_over(
        valkey_url: str, key_prefix: str) -> None:
    config = load_config(TESTS / "backoffice.toml")
    evening = dt.datetime(2026, 12, 1, 18, 0, tzinfo=TOKYO)
    clock = Clock("Asia/Tokyo", int(evening.timestamp() * 1000) - time.time_ns() // 1_000_000)
    redis = Redis.from_url(valkey_url)
    store = QueueStore(redis, config, clock, prefix=key_prefix)
    tasks = TaskStore(store)
    try:
        served, held_open, held_claimed = [(await store.issue("main", "pickup"))["ticket"] for _ in range(3)]
        # The first visitor's card is prepared and the visit finished: its post-issuance task is open.
        await tasks.claim("main", served["task"], actor="bo")
        await tasks.finish("main", served["task"], actor="bo")
        await store.set_counter_status("main", "2", "open")
        assert (await store.call_next("main", "2"))["ticket"]["number"] == served["number"]
        await store.counter_op("start", "main", "2")
        await store.counter_op("finish", "main", "2")
        await tasks.claim("main", held_claimed["task"], actor="bo")  # someone is on this card at closing
        # The finished preparation is in the archive (for the monthly report), without who did it.
        entries = await redis.xrange(f"{store.office_key('main')}arch:{served['day'][:6]}")
        records = [json.loads(fields[b"r"]) for _, fields in entries]
        [prepared] = [r for r in records if r["kind"] == "task"]
        assert (prepared["task_kind"], prepared["number"], prepared["state"]) == ("prepare", served["number"], "done")
        assert "claimed_by" not in prepared and "done_by" not in prepared
        before = await store.latest_event_seq("main")

        clock.offset_ms += 7 * 3_600_000  # past midnight
        await store.start_day("main")
        events = await store.events_since("main", before)
        cancelled = [e["task"] for e in events if e["type"] == "task.cancelled"]
        assert sorted(t["number"] for t in cancelled) == [held_open["number"], held_claimed["number"]]
        assert all(t["cancelled_because"] == "day_closed" for t in cancelled)
        closed = events[-1]
        assert closed["type"] == "day.closed"
        assert sorted(closed["expired"]) == [held_open["number"], held_claimed["number"]]
        assert closed["tasks_carried_over"] == {"post": 1}
        for ticket in (held_open, held_claimed):
            stored = await store.ticket("main", ticket["day"], ticket["number"])
            assert stored["state"] == "expired" and stored["expired_from"] == "waiting"
        snapshot = await store.snapshot("main")
        assert snapshot["waiting"] == []
        assert [(t["kind"], t["number"]) for t in snapshot["tasks"]] == [("post", served["number"])]
        assert not await redis.keys(f"{store.office_key('main')}d:{served['day']}:hold:*")
    finally:
        await redis.aclose()


async def test_the_backoffice_view_follows_the_work_of_the_office_and_its_branches(staff: Api, visitor: Api) -> None:
    ws = await staff.http.ws_connect("/api/ws")
    await ws.send_json({"id": 5, "type": "subscribe", "view": "backoffice", "office": "main"})
    assert (await receive(ws, "result"))["success"] is True
    view = (await receive(ws, "view"))["data"]
    assert view["tasks"] == [] and view["offices"] == ["main", "branch"] and view["people_on_work"] == 0

    await visitor.issue("pickup", office="branch")
    await visitor.issue("pickup")
    event = await receive(ws, "event")
    assert event["event"]["type"] == "task.created" and "actor" not in event["event"]

    async def latest_view(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            data = (await receive(ws, "view"))["data"]
            if check(data):
                return data

    view = await latest_view(lambda v: len(v["tasks"]) == 2)
    assert [(t["office"], t["number"], t["group"]) for t in view["tasks"]] == [("branch", "P001", "visitor_waiting"),
                                                                               ("main", "300", "visitor_waiting")]
    status, body = await staff.post("/api/offices/main/tasks/claim-next")
    assert status == 200 and body["task"]["office"] == "branch"
    view = await latest_view(lambda v: v["people_on_work"] == 1)
    assert [t["state"] for t in view["tasks"]] == ["claimed", "open"]
    assert view["tasks"][0]["claimed_by"] == "staff"
    await task_action(staff, body["task"], "finish")
    view = await latest_view(lambda v: len(v["tasks"]) == 1)
    assert view["tasks"][0]["number"] == "300"

    # A visitor may not follow the back office.
    other = await visitor.http.ws_connect("/api/ws")
    await other.send_json({"id": 1, "type": "subscribe", "view": "backoffice", "office": "main"})
    result = await receive(other, "result")
    assert result["success"] is False and result["error"]["code"] == "unauthorized"
    await other.close()
    await ws.close()


async def test_the_lobby_hears_a_card_ready_but_never_sees_the_tasks(staff: Api, visitor: Api) -> None:
    ws = await visitor.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    await receive(ws, "result")
    await receive(ws, "snapshot")
    await visitor.issue("pickup")
    task = (await tasks(staff))["tasks"][0]
    await task_action(staff, task, "claim")
    await task_action(staff, task, "finish")
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != "ticket.ready":
        event = (await receive(ws, "event"))["event"]
        if event["type"] != "counter.updated":  # the counters opened just before subscribing may come late
            seen.append(event)
    assert [e["type"] for e in seen] == ["ticket.issued", "task.created", "task.claimed", "task.done", "ticket.ready"]
    assert all("task" not in e for e in seen)  # the lobby keeps the sequence, not the back office's work
    assert seen[-1]["ticket"]["number"] == "300" and seen[-1]["ticket"]["prep"] == "ready"
    assert seen[-1]["waiting_counts"] == {"pickup": 1}
    await ws.close()


async def test_claim_next_takes_the_work_in_the_order_the_list_shows(staff: Api, visitor: Api) -> None:
    """Waiting visitors' cards first (a priority visitor's first, then the longest waiting, whichever office),
    post-issuance work after: claim-next (Lua) follows the list (domain.tasks.work_key)."""
    served = await visitor.issue("pickup")
    done = (await tasks(staff))["tasks"][0]
    await task_action(staff, done, "claim")
    await task_action(staff, done, "finish")
    for action in ("call-next", "start", "finish"):
        assert (await staff.counter("2", action))[0] == 200
    # A millisecond between issues: two in one would tie on their issue time ("the longest waiting").
    await visitor.issue("pickup")
    await next_millisecond()
    await visitor.issue("pickup", office="branch")
    await next_millisecond()
    await staff.issue("pickup", priority=5)
    await next_millisecond()
    await visitor.issue("pickup")
    listed = [(t["office"], t["number"], t["group"]) for t in (await tasks(staff))["tasks"]]
    assert listed == [("main", "302", "visitor_waiting"), ("main", "301", "visitor_waiting"),
                      ("branch", "P001", "visitor_waiting"), ("main", "303", "visitor_waiting"),
                      ("main", served["ticket"]["number"], "post")]
    claimed = []
    for _ in listed:
        status, body = await staff.post("/api/offices/main/tasks/claim-next")
        assert status == 200, body
        claimed.append((body["task"]["office"], body["task"]["number"]))
    assert claimed == [(office, number) for office, number, _ in listed]


async def test_a_booked_pickup_is_prepared_before_its_slot_and_a_branch_card_is_marked_for_sending(
        client: TestClient, staff: Api, visitor: Api) -> None:
    monday_10 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
    client.app[CLOCK].offset_ms = int(monday_10.timestamp() * 1000) - time.time_ns() // 1_000_000
    status, main_booking = await visitor.post("/api/offices/main/bookings",
                                              {"procedure": "pickup", "day": "20261208", "slot": "10:00",
                                               "reference": "A-12345"})
    assert status == 201, main_booking
    status, branch_booking = await visitor.post("/api/offices/branch/bookings",
                                                {"procedure": "pickup", "day": "20261208", "slot": "09:00"})
    assert status == 201, branch_booking
    work = await tasks(staff)
    by_office = {t["office"]: t for t in work["tasks"]}
    assert len(by_office) == 2, work
    tuesday_10 = dt.datetime(2026, 12, 8, 10, 0, tzinfo=TOKYO)
    own = by_office["main"]
    assert (own["kind"], own["group"], own["booking"]) == ("prepare", "due", "1")
    assert own["due_at"] == int(tuesday_10.timestamp() * 1000) - 30 * 60_000
    assert own["reference"] == "A-12345"  # the notice reference, for staff
    # The branch's card is prepared at main, leaves on Monday (main's last open day before the slot)
    # and must be ready by main's closing time that day.
    sent = by_office["branch"]
    assert (sent["work_office"], sent["send_to"], sent["leave_day"]) == ("main", "branch", "20261207")
    assert sent["due_at"] == int(dt.datetime(2026, 12, 7, 17, 15, tzinfo=TOKYO).timestamp() * 1000)
    assert [t["office"] for t in work["tasks"]] == ["branch", "main"]  # soonest deadline first
    assert work["backlog"]["to_send"]["tasks"] == 1
    assert {day: f["tasks"] for day, f in work["backlog"]["prepare_due_by_day"].items()} == {"20261207": 1,
                                                                                            "20261208": 1}

    # Moving the booking moves its deadline; cancelling it cancels the preparation.
    status, body = await visitor.put(f"/api/bookings/by-secret/{main_booking['secret']}",
                                     {"day": "20261208", "slot": "14:00"})
    assert status == 200, body
    [moved] = [t for t in (await tasks(staff))["tasks"] if t["office"] == "main"]
    assert moved["booking"] == own["booking"] and moved["id"] != own["id"]
    assert moved["due_at"] == own["due_at"] + 4 * 3_600_000
    resp = await visitor.http.delete(f"/api/bookings/by-secret/{branch_booking['secret']}")
    assert resp.status == 200, await resp.text()
    assert [t["office"] for t in (await tasks(staff))["tasks"]] == ["main"]


async def test_a_booked_visitor_checking_in_before_their_card_is_ready_waits_then_keeps_the_booked_precedence(
        client: TestClient, staff: Api, visitor: Api) -> None:
    def set_clock(at: dt.datetime) -> None:
        client.app[CLOCK].offset_ms = int(at.timestamp() * 1000) - time.time_ns() // 1_000_000

    set_clock(dt.datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO))
    status, booking = await visitor.post("/api/offices/main/bookings",
                                         {"procedure": "pickup", "day": "20261208", "slot": "10:00"})
    assert status == 201, booking
    set_clock(dt.datetime(2026, 12, 8, 9, 45, tzinfo=TOKYO))
    walk_in = (await visitor.issue("pickup"))["ticket"]
    walk_in_task = next(t for t in (await tasks(staff))["tasks"] if t.get("number") == walk_in["number"])
    await task_action(staff, walk_in_task, "claim")
    await task_action(staff, walk_in_task, "finish")

    status, checked_in = await visitor.post("/api/offices/main/check-in", {"secret": booking["secret"]})
    assert status in (200, 201), checked_in
    booked = checked_in["ticket"]
    assert booked["prep"] == "pending"
    # The booking's own preparation task now names the visitor waiting for it.
    [task] = (await tasks(staff))["tasks"]
    assert (task["booking"], task["number"], task["group"]) == ("1", booked["number"], "visitor_waiting")
    status, body = await staff.counter("2", "call", {"number": booked["number"]})
    assert status == 409 and body["error"]["code"] == "card_not_ready", body

    # The slot has begun when the card is ready: the booked visitor goes before the earlier walk-in.
    set_clock(dt.datetime(2026, 12, 8, 10, 5, tzinfo=TOKYO))
    await task_action(staff, task, "claim")
    status, body = await task_action(staff, task, "finish")
    assert status == 200 and body["ticket_ready"]["number"] == booked["number"], body
    status, body = await staff.counter("2", "call-next")
    assert status == 200 and body["ticket"]["number"] == booked["number"], body
