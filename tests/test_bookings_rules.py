"""Booking rules over HTTP: every refusal names what is wrong, retries apply once, the notice reference
is for staff only and expires, booking-only holiday openings refuse walk-ins, no-shows are released."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tomllib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.config import Config, parse_config
from queue_server.domain import booking as rules
from queue_server.store.ratelimit import ADDRESS_MISSES
from queue_server.web.keys import BOOKINGS, CLOCK, STORE

from .conftest import TESTS, Api
from .test_bookings_api import MONDAY_10, TOKYO, TUESDAY, book, set_clock
from .waiting import wait_until

HOLIDAY_OPENING = dt.date(2026, 12, 13)  # a Sunday


def office_config(**bookings: Any) -> Config:
    """The test office with a booking-only holiday opening on Sunday 2026-12-13 and ``bookings`` settings."""
    data = tomllib.loads((TESTS / "office.toml").read_text(encoding="utf-8"))
    office = data["offices"][0]
    office["hours"]["special"] = [{"date": HOLIDAY_OPENING, "hours": "08:30-12:30", "booking_only": True}]
    office["bookings"].update(bookings)
    return parse_config(data, TESTS / "office.toml")


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    client = await make_client(office_config(reference_keep_days=30))
    set_clock(client, MONDAY_10)
    return client


@pytest.fixture
async def visitor(client: TestClient, user: Callable[..., Api]) -> Api:
    return user(client)


def error(answer: tuple[int, Any]) -> tuple[int, str]:
    status, body = answer
    return status, body["error"]["code"]


async def test_every_bad_booking_is_refused_naming_the_rule(visitor: Api) -> None:
    assert error(await book(visitor, "09:30", day="20261207")) == (422, "slot_past")
    assert error(await book(visitor, "07:30")) == (422, "slot_outside_hours")
    assert error(await book(visitor, "09:10")) == (422, "slot_outside_hours")
    assert error(await book(visitor, "09:00", day="20261212")) == (422, "day_closed")  # Saturday
    assert error(await book(visitor, "09:00", day="20270112")) == (422, "booking_not_open")  # > 28 days
    assert error(await book(visitor, "15:00", day="20261207")) == (422, "booking_closed")  # closed Friday 17:00
    status, body = await visitor.post("/api/offices/main/bookings",
                                      {"procedure": "application", "day": TUESDAY, "slot": "09:00"})
    assert (status, body["error"]["code"]) == (422, "not_bookable") and "pickup" in body["error"]["message"]
    status, body = await book(visitor, "9:00")
    assert status == 400 and "HH:MM" in body["error"]["message"]
    status, body = await book(visitor, "09:00", day="2026-12-32")
    assert status == 400 and body["error"]["field"] == "day"
    status, body = await book(visitor, "09:00", name="山田")
    assert status == 400 and "unknown field 'name'" in body["error"]["message"]
    status, body = await book(visitor, "09:00", reference="山田 太郎")
    assert status == 400 and "notice postcard" in body["error"]["message"]
    status, body = await visitor.post("/api/offices/nowhere/bookings", {"procedure": "pickup", "day": TUESDAY,
                                                                        "slot": "09:00"})
    assert status == 404
    status, body = await visitor.get("/api/offices/main/bookings/availability?procedure=pickup&days=99")
    assert status == 400 and body["error"]["field"] == "days"


async def test_a_full_slot_is_named_and_the_booking_being_moved_stays_where_it_was(visitor: Api) -> None:
    assert (await book(visitor, "09:00"))[0] == 201
    assert (await book(visitor, "09:00"))[0] == 201
    status, body = await book(visitor, "09:00")
    assert status == 409 and body["error"]["code"] == "slot_full"
    assert "20261208 09:00" in body["error"]["message"]
    _, mine = await book(visitor, "09:30")
    link = f"/api/bookings/by-secret/{mine['secret']}"
    resp = await visitor.http.put(link, json={"day": TUESDAY, "slot": "09:00"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "slot_full"
    assert (await visitor.get(link))[1]["booking"]["slot"] == "09:30"


async def test_a_cancelled_booking_cannot_be_changed_or_cancelled_again(visitor: Api) -> None:
    _, mine = await book(visitor, "10:00")
    link = f"/api/bookings/by-secret/{mine['secret']}"
    assert (await visitor.http.delete(link)).status == 200
    resp = await visitor.http.delete(link)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "booking_state"
    resp = await visitor.http.put(link, json={"day": TUESDAY, "slot": "11:00"})
    body = await resp.json()
    assert resp.status == 409 and "cancelled" in body["error"]["message"]


async def test_unknown_and_malformed_codes(client: TestClient, visitor: Api) -> None:
    status, body = await visitor.post("/api/bookings/lookup", {"code": "ACDE-FHJ0"})
    assert status == 400 and body["error"]["code"] == "invalid_code"
    unknown = rules.display_code("ACDEFHJ" + rules.check_character("ACDEFHJ"))
    status, body = await visitor.post("/api/bookings/lookup", {"code": unknown})
    assert status == 404 and body == {"error": {"code": "not_found", "message": "no such booking"}}
    assert (await visitor.get("/api/bookings/by-secret/" + "x" * 22))[0] == 404


async def test_guessing_codes_is_slowed_not_locked(client: TestClient, visitor: Api) -> None:
    _, mine = await book(visitor, "10:00")
    for i in range(ADDRESS_MISSES.free):
        body = rules.ALPHABET[i % 25] + "CDEFHJ"
        status, answer = await visitor.post("/api/bookings/lookup", {"code": body + rules.check_character(body)})
        assert status == 404 and "retry_after" not in answer["error"]
    body = "YCDEFHJ"
    status, answer = await visitor.post("/api/bookings/lookup", {"code": body + rules.check_character(body)})
    assert status == 404 and answer["error"]["retry_after"] == 1  # the address waits a second now
    status, answer = await visitor.post("/api/bookings/lookup", {"code": mine["code"]})
    assert status == 429 and answer["error"]["code"] == "rate_limited" and answer["error"]["retry_after"] == 1
    client.app[CLOCK].offset_ms += 1000
    status, answer = await visitor.post("/api/bookings/lookup", {"code": mine["code"]})
    assert status == 200 and answer["secret"] == mine["secret"]


async def test_a_retried_booking_is_applied_once(client: TestClient, visitor: Api) -> None:
    first = await visitor.post("/api/offices/main/bookings", {"procedure": "pickup", "day": TUESDAY,
                                                              "slot": "11:00"}, **{"Idempotency-Key": "book-0001"})
    again = await visitor.post("/api/offices/main/bookings", {"procedure": "pickup", "day": TUESDAY,
                                                              "slot": "11:00"}, **{"Idempotency-Key": "book-0001"})
    assert first[0] == 201 and again[0] == 201 and again[1]["code"] == first[1]["code"]
    listed = await client.app[BOOKINGS].day_list("main", dt.date(2026, 12, 8))
    assert len(listed) == 1
    link = f"/api/bookings/by-secret/{first[1]['secret']}"
    for _ in range(2):
        resp = await visitor.http.put(link, json={"day": TUESDAY, "slot": "11:30"},
                                      headers={"Idempotency-Key": "move-0001"})
        assert resp.status == 200
    for _ in range(2):
        resp = await visitor.http.delete(link, headers={"Idempotency-Key": "cancel-0001"})
        assert resp.status == 200 and (await resp.json())["booking"]["state"] == "cancelled"
    events = await client.app[STORE].events_since("main", 0)
    assert [e["type"] for e in events if e["type"].startswith("booking.")] == [
        "booking.created", "booking.changed", "booking.cancelled"]


async def test_the_reference_is_for_staff_only_never_in_events_and_expires(
        client: TestClient, visitor: Api, user: Callable[..., Api]) -> None:
    status, created = await visitor.post("/api/offices/main/bookings", {
        "procedure": "pickup", "day": TUESDAY, "slot": "13:00", "reference": "KT-20261208"},
        **{"Idempotency-Key": "with-reference-1"})
    assert status == 201 and "reference" not in created["booking"]
    secret, code = created["secret"], created["code"]
    assert "reference" not in (await visitor.get(f"/api/bookings/by-secret/{secret}"))[1]["booking"]
    assert "reference" not in (await visitor.post("/api/bookings/lookup", {"code": code}))[1]["booking"]

    staff = user(client)
    await staff.sign_in("staff")
    _, listed = await staff.get(f"/api/offices/main/bookings?day={TUESDAY}")
    assert listed["bookings"][0]["reference"] == "KT-20261208"

    # Events (the lobby's and the counters' alike) never carry the code, secret or reference.
    events = json.dumps(await client.app[STORE].events_since("main", 0))
    for secret_text in ("KT-20261208", secret, code.replace("-", "")):
        assert secret_text not in events
    # Nor the first answer kept for a retried request (it lives a day, the reference must not).
    office_key = client.app[STORE].office_key("main")
    kept = await client.app[STORE].redis.get(f"{office_key}idem:with-reference-1")
    assert kept is not None and b"KT-20261208" not in kept
    ws = await visitor.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    await book(visitor, "13:30", reference="KT-1")
    while (message := await ws.receive_json())["type"] != "event":
        pass
    assert message["event"]["type"] == "booking.created" and "booking" not in message["event"]
    await ws.close()

    # Deleted reference_keep_days after the slot's end.
    key = f"{client.app[STORE].office_key('main')}bkref:{listed['bookings'][0]['id']}"
    slot_end = int(dt.datetime(2026, 12, 8, 13, 30, tzinfo=TOKYO).timestamp() * 1000)
    assert await client.app[STORE].redis.pexpiretime(key) == slot_end + 30 * 86_400_000
    assert (await visitor.http.delete(f"/api/bookings/by-secret/{secret}")).status == 200
    assert await client.app[STORE].redis.exists(key) == 0  # cancelled: the back office needs it no more


async def test_a_booking_only_holiday_opening_takes_bookings_but_no_walk_ins_for_pickup(
        client: TestClient, visitor: Api) -> None:
    status, created = await book(visitor, "08:30", day="20261213")
    assert status == 201, created
    set_clock(client, dt.datetime(2026, 12, 13, 9, 0, tzinfo=TOKYO))
    _, office = await visitor.get("/api/offices/main")  # the kiosk can say so before a touch
    procedures = {p["id"]: p for p in office["procedures"]}
    assert procedures["pickup"]["bookable"] and not procedures["pickup"]["walk_ins_today"]
    assert procedures["application"]["walk_ins_today"] and not procedures["application"]["bookable"]
    assert office["bookings"]["late_minutes"] == 10
    status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "pickup"})
    assert status == 409 and body["error"]["code"] == "booking_only"
    status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "application"})
    assert status == 201, body
    set_clock(client, dt.datetime(2026, 12, 14, 9, 0, tzinfo=TOKYO))  # Monday: walk-ins again
    assert (await visitor.post("/api/offices/main/tickets", {"procedure": "pickup"}))[0] == 201


async def test_a_no_show_is_released_and_its_place_returns_while_the_slot_runs(
        client: TestClient, visitor: Api) -> None:
    _, late = await book(visitor, "09:00")
    _, on_time = await book(visitor, "09:00")
    _, after = await book(visitor, "10:00")
    key = f"{client.app[STORE].office_key('main')}slot:{TUESDAY}:pickup"

    # 09:11 on Tuesday: more than late_minutes (10) after the slot's start, still inside it. The hub
    # releases when the clock is set (and every minute).
    set_clock(client, dt.datetime(2026, 12, 8, 9, 11, tzinfo=TOKYO))
    # Every server process's hub asks at once (here: this one's and five more askers): released once.
    await asyncio.gather(*(client.app[BOOKINGS].release("main") for _ in range(5)))

    async def released() -> bool:
        return (await client.app[STORE].redis.hget(key, "09:00")) == b"0"

    await wait_until(released, "the 09:00 places returned")
    for mine in (late, on_time):
        assert (await visitor.get(f"/api/bookings/by-secret/{mine['secret']}"))[1]["booking"]["state"] == "no_show"
    assert (await visitor.get(f"/api/bookings/by-secret/{after['secret']}"))[1]["booking"]["state"] == "booked"
    events = await client.app[STORE].events_since("main", 0)
    assert [e["returned"] for e in events if e["type"] == "booking.released"] == [True, True]
    # The archive (reports) gets one record per released booking: ids and times, no code or secret.
    archived = await client.app[STORE].redis.xrange(f"{client.app[STORE].office_key('main')}arch:202612")
    records = [json.loads(fields[b"r"]) for _id, fields in archived]
    assert sorted((r["kind"], r["state"], r["slot"]) for r in records) == [("booking", "no_show", "09:00")] * 2
    assert not {"code", "secret", "reference"} & {k for r in records for k in r}

    # Released only after the slot ended (the server was down meanwhile): the place is not returned.
    set_clock(client, dt.datetime(2026, 12, 8, 10, 45, tzinfo=TOKYO))
    await wait_until(lambda: _state(visitor, after["secret"], "no_show"), "the 10:00 booking released")
    assert await client.app[STORE].redis.hget(key, "10:00") == b"1"


async def _state(visitor: Api, secret: str, state: str) -> bool:
    return (await visitor.get(f"/api/bookings/by-secret/{secret}"))[1]["booking"]["state"] == state


async def test_capacity_from_counters_follows_the_measured_service_time(
        make_client: Callable[..., Awaitable[TestClient]], user: Callable[..., Api]) -> None:
    data = tomllib.loads((TESTS / "office.toml").read_text(encoding="utf-8"))
    pickup = next(p for p in data["offices"][0]["procedures"] if p["id"] == "pickup")
    pickup["booking"] = {"counters": 1, "close_days_before": 1, "close_at": "17:00"}
    client = await make_client(parse_config(data, TESTS / "office.toml"))
    visitor, staff = user(client), user(client)
    await staff.sign_in("staff")
    availability = "/api/offices/main/bookings/availability?procedure=pickup&from=20261209&days=1"

    # Last Friday: twelve pickups served in 4 minutes each at counter 2 (the prior is 10 minutes).
    at = dt.datetime(2026, 12, 4, 9, 0, tzinfo=TOKYO)
    set_clock(client, at)
    assert (await staff.counter("2", "open"))[0] == 200
    for _ in range(12):
        await visitor.issue("pickup")
        for action in ("call-next", "start"):
            assert (await staff.counter("2", action))[0] == 200
        at += dt.timedelta(minutes=4)
        set_clock(client, at)
        assert (await staff.counter("2", "finish"))[0] == 200

    set_clock(client, MONDAY_10)
    _, found = await visitor.get(availability)
    capacity = found["days"][0]["slots"][0]["capacity"]
    # One counter for 30 minutes: 3 places at the prior's 10 minutes; more at the measured ~4–5.
    assert capacity > 3, found["days"][0]["slots"][0]
