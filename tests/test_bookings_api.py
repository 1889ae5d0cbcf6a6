"""Bookings through the HTTP API on a real socket and a real Valkey: book, see, change, cancel, look up.

The office clock is set to a Monday morning (2026-12-07 10:00 in Tokyo); the test office books
pickups in 30-minute slots, 2 places each, closing the previous open day at 17:00.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.config import Config
from queue_server.domain.model import Role
from queue_server.web.keys import ACCOUNTS, CLOCK, STORE

from .conftest import PASSWORD, Api

TOKYO = dt.timezone(dt.timedelta(hours=9))
MONDAY_10 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
TUESDAY = "20261208"


def set_clock(client: TestClient, at: dt.datetime) -> None:
    """Make the office clock read ``at`` now."""
    client.app[CLOCK].offset_ms = int(at.timestamp() * 1000) - time.time_ns() // 1_000_000


@pytest.fixture
async def booking_client(make_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    """The test office on a Monday at 10:00, with a call-centre operator ``cc``."""
    client = await make_client()
    set_clock(client, MONDAY_10)
    await client.app[ACCOUNTS].add_user("cc", PASSWORD, Role.CALLCENTER)
    return client


@pytest.fixture
async def operator(booking_client: TestClient, user: Callable[..., Api]) -> Api:
    api = user(booking_client)
    await api.sign_in("cc")
    return api


async def book(api: Api, slot: str = "09:00", day: str = TUESDAY, **extra: Any) -> tuple[int, Any]:
    return await api.post("/api/offices/main/bookings", {"procedure": "pickup", "day": day, "slot": slot, **extra})


async def test_a_visitor_books_sees_changes_and_cancels_with_the_secret_link(
        booking_client: TestClient, user: Callable[..., Api]) -> None:
    visitor = user(booking_client)
    status, created = await book(visitor, "09:00", reference="A-12345")
    assert status == 201, created
    code, secret = created["code"], created["secret"]
    assert len(code) == 9 and code[4] == "-"
    assert created["link"].endswith(f"/book/main/b/{secret}")
    booking = created["booking"]
    assert booking["day"] == TUESDAY and booking["slot"] == "09:00" and booking["state"] == "booked"
    assert "reference" not in booking and "secret" not in booking and "actor" not in booking

    status, seen = await visitor.get(f"/api/bookings/by-secret/{secret}")
    assert status == 200 and seen["booking"]["code"] == code

    resp = await visitor.http.put(f"/api/bookings/by-secret/{secret}", json={"day": TUESDAY, "slot": "10:30"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["booking"]["slot"] == "10:30"
    _, availability = await visitor.get(f"/api/offices/main/bookings/availability?procedure=pickup&from={TUESDAY}&days=1")
    slots = {s["slot"]: s["remaining"] for s in availability["days"][0]["slots"]}
    assert slots["09:00"] == 2 and slots["10:30"] == 1

    resp = await visitor.http.delete(f"/api/bookings/by-secret/{secret}")
    assert resp.status == 200 and (await resp.json())["booking"]["state"] == "cancelled"
    _, availability = await visitor.get(f"/api/offices/main/bookings/availability?procedure=pickup&from={TUESDAY}&days=1")
    assert {s["slot"]: s["remaining"] for s in availability["days"][0]["slots"]}["10:30"] == 2


async def test_the_call_centre_books_for_a_caller_and_sees_the_reference(
        booking_client: TestClient, operator: Api, user: Callable[..., Api]) -> None:
    status, created = await operator.post("/api/callcenter/bookings", {
        "office": "main", "procedure": "pickup", "day": TUESDAY, "slot": "11:00", "reference": "1234-5678"})
    assert status == 201, created
    assert created["booking"]["reference"] == "1234-5678" and created["booking"]["actor"] == "cc"
    assert created["booking"]["channel"] == "callcenter"
    code = created["code"]
    status, found = await operator.get(f"/api/offices/main/bookings/by-code/{code.lower().replace('-', ' ')}")
    assert status == 200 and found["booking"]["reference"] == "1234-5678"
    status, listed = await operator.get(f"/api/offices/main/bookings?day={TUESDAY}")
    assert status == 200 and [b["code"] for b in listed["bookings"]] == [code]
    assert listed["bookings"][0]["reference"] == "1234-5678"

    visitor = user(booking_client)
    status, public = await visitor.post("/api/bookings/lookup", {"code": code})
    assert status == 200 and "reference" not in public["booking"]
    status, _ = await visitor.get(f"/api/offices/main/bookings?day={TUESDAY}")
    assert status == 401

    # Change and cancel by code for the caller: one step each, recorded with who did it.
    by_code = f"/api/offices/main/bookings/by-code/{code}"
    resp = await operator.http.put(by_code, json={"day": TUESDAY, "slot": "14:00"},
                                   headers={"X-CSRF-Token": operator.csrf})
    assert resp.status == 200 and (await resp.json())["booking"]["slot"] == "14:00"
    resp = await operator.http.delete(by_code, headers={"X-CSRF-Token": operator.csrf})
    assert resp.status == 200 and (await resp.json())["booking"]["state"] == "cancelled"
    events = [e for e in await booking_client.app[STORE].events_since("main", 0) if e["type"].startswith("booking.")]
    assert [(e["type"], e["actor"]) for e in events] == [
        ("booking.created", "cc"), ("booking.changed", "cc"), ("booking.cancelled", "cc")]
    assert events[1]["from"] == {"procedure": "pickup", "day": TUESDAY, "slot": "11:00"}
    assert events[1]["booking"] == {"id": created["booking"]["id"], "procedure": "pickup", "day": TUESDAY,
                                    "slot": "14:00", "state": "booked", "late": 0}


async def test_only_the_call_centre_and_supervisors_book_for_callers(booking_client: TestClient,
                                                                      user: Callable[..., Api]) -> None:
    counter_staff = user(booking_client)
    await counter_staff.sign_in("staff")
    status, body = await counter_staff.post("/api/callcenter/bookings", {
        "office": "main", "procedure": "pickup", "day": TUESDAY, "slot": "11:00"})
    assert status == 403 and "callcenter or supervisor" in body["error"]["message"]
    boss = user(booking_client)
    await boss.sign_in("boss")
    status, body = await boss.post("/api/callcenter/bookings", {
        "office": "main", "procedure": "pickup", "day": TUESDAY, "slot": "11:00"})
    assert status == 201 and body["booking"]["actor"] == "boss"
    status, body = await counter_staff.get(f"/api/offices/main/bookings?day={TUESDAY}")
    assert status == 200 and len(body["bookings"]) == 1  # any staff reads: the counter checks visitors in


async def test_the_openapi_document_describes_the_booking_api(booking_client: TestClient) -> None:
    spec = await (await booking_client.get("/api/openapi.json")).json()
    assert "201" in spec["paths"]["/api/offices/{office}/bookings"]["post"]["responses"]
    assert {"get", "put", "delete"} <= set(spec["paths"]["/api/bookings/by-secret/{secret}"])
    assert "slot_full" in spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]


async def test_the_slot_finder_lists_the_next_free_slots(operator: Api) -> None:
    status, found = await operator.get("/api/callcenter/slots?procedure=pickup&days=3")
    assert status == 200, found
    first = found["slots"][0]
    # Monday's slots closed at Friday 17:00 (the previous open day); Tuesday's close today at 17:00.
    assert (first["office"], first["day"], first["slot"], first["remaining"]) == ("main", TUESDAY, "08:30", 2)


def test_config_fixture_has_bookings(config: Config) -> None:
    assert config.offices["main"].bookings.procedures["pickup"].capacity == 2
