"""Checking a booked visitor in, through the HTTP API on a real socket and a real Valkey, and their place
in the calling order.

The office clock is the adjustable :class:`Clock`: bookings are made on Monday 2026-12-07 for Tuesday
(pickups close the previous open day at 17:00), and the clock is then set to Tuesday's times. Check-in
opens 30 minutes before the slot; a visitor more than 10 minutes late is a walk-in. Booked visitors
checked in on time take the numbers 700–799.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.config import Config, parse_config
from queue_server.domain.booking import check_character
from queue_server.web.keys import CLOCK

from .conftest import TESTS, Api
from .waiting import wait_until

TOKYO = dt.timezone(dt.timedelta(hours=9))
MONDAY_10 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
TUESDAY = "20261208"
WEDNESDAY = "20261209"


def tuesday(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 12, 8, hour, minute, tzinfo=TOKYO)


def set_clock(client: TestClient, at: dt.datetime) -> None:
    """Make the office clock read ``at`` now."""
    client.app[CLOCK].offset_ms = int(at.timestamp() * 1000) - time.time_ns() // 1_000_000


def checkin_config(tmp_path: Path) -> Config:
    """The test office with booked numbers for pickups, and a branch office that books pickups too."""
    data: dict[str, Any] = tomllib.loads((TESTS / "office.toml").read_text("utf-8"))
    main = data["offices"][0]
    pickup = next(p for p in main["procedures"] if p["id"] == "pickup")
    pickup["booked_number"] = {"range": [700, 799]}
    data["offices"].append({
        "id": "branch", "name": "テスト市役所 支所", "hours": main["hours"], "bookings": {"slot_minutes": 30},
        "procedures": [{"id": "pickup", "name": "カード交付", "number": {"range": [300, 599]}, "service_minutes": 10,
                        "booking": {"capacity": 2, "close_days_before": 1, "close_at": "17:00"}}],
        "counters": [{"id": "1", "procedures": ["pickup"]}]})
    config = parse_config(data, TESTS / "office.toml")
    return dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=tmp_path))


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[TestClient]], tmp_path: Path) -> TestClient:
    """The server on Monday at 10:00 (bookings for Tuesday still open)."""
    client = await make_client(checkin_config(tmp_path))
    set_clock(client, MONDAY_10)
    return client


async def book(api: Api, slot: str, day: str = TUESDAY, office: str = "main") -> dict[str, Any]:
    status, created = await api.post(f"/api/offices/{office}/bookings", {"procedure": "pickup", "day": day, "slot": slot})
    assert status == 201, created
    return created


async def check_in(api: Api, code: str, office: str = "main", **headers: str) -> tuple[int, Any]:
    return await api.post(f"/api/offices/{office}/check-in", {"code": code, "lang": "ja"}, **headers)


async def test_on_time_the_visitor_gets_a_booked_ticket_once(client: TestClient, visitor: Api) -> None:
    code = (await book(visitor, "09:00"))["code"]
    set_clock(client, tuesday(8, 40))
    # As typed on the kiosk's keypad or by a reader: any case, no hyphen.
    status, answer = await check_in(visitor, code.replace("-", "").lower(), **{"Idempotency-Key": "kiosk-try-1"})
    assert status == 201, answer
    ticket = answer["ticket"]
    assert ticket["number"] == "700" and ticket["booked"] == 1 and ticket["procedure"] == "pickup"
    assert answer["late"] is False and answer["ahead"] == 0
    assert answer["status_url"].endswith("/status/" + answer["token"])
    assert answer["booking"]["state"] == "checked_in"
    assert "code" not in answer["booking"] and "secret" not in answer["booking"]
    # The kiosk retrying the same press gets the same ticket, not a second one.
    status, again = await check_in(visitor, code, **{"Idempotency-Key": "kiosk-try-1"})
    assert status == 201 and again["ticket"]["number"] == "700" and again["token"] == answer["token"]
    # Checking in a second time is refused, naming the ticket.
    status, twice = await check_in(visitor, code)
    assert status == 409 and twice["error"]["code"] == "already_checked_in"
    assert twice["error"]["details"]["number"] == "700"
    status, view = await visitor.get(f"/api/tickets/{answer['token']}")
    assert status == 200 and view["number"] == "700" and view["state"] == "waiting"


async def test_too_early_says_from_when(client: TestClient, visitor: Api) -> None:
    code = (await book(visitor, "10:00"))["code"]
    set_clock(client, tuesday(9, 20))
    status, answer = await check_in(visitor, code)
    assert status == 409 and answer["error"]["code"] == "check_in_too_early"
    assert answer["error"]["details"]["opens"] == "09:30" and "09:30" in answer["error"]["message"]
    set_clock(client, tuesday(9, 30))
    status, answer = await check_in(visitor, code)
    assert status == 201 and answer["ticket"]["booked"] == 1


async def test_a_late_visitor_becomes_a_walk_in_from_the_check_in(client: TestClient, visitor: Api, staff: Api) -> None:
    created = await book(visitor, "09:00")
    set_clock(client, tuesday(9, 5))
    walk_in = (await visitor.issue("pickup"))["ticket"]["number"]
    set_clock(client, tuesday(9, 11))  # 11 minutes late: more than late_minutes (10)

    async def released() -> bool:
        # The hub releases the booking as a no-show (its place back to the slot) once it is that late.
        status, seen = await visitor.get(f"/api/bookings/by-secret/{created['secret']}")
        return status == 200 and seen["booking"]["state"] == "no_show"

    await wait_until(released, "the late booking released")
    status, answer = await check_in(visitor, created["code"])
    assert status == 201, answer
    assert answer["late"] is True and "booked" not in answer["ticket"]
    assert answer["ticket"]["number"] == "301"  # a walk-in's number, after the walk-in before
    assert answer["ahead"] == 1 and answer["booking"]["late"] == 1
    status, called = await staff.counter("2", "call-next")
    assert status == 200 and called["ticket"]["number"] == walk_in  # no precedence
    status, twice = await check_in(visitor, created["code"])
    assert status == 409 and twice["error"]["code"] == "already_checked_in"


async def test_a_booking_of_another_office_or_day_says_which(client: TestClient, visitor: Api) -> None:
    branch = (await book(visitor, "09:00", office="branch"))["code"]
    wednesday = (await book(visitor, "09:00", day=WEDNESDAY))["code"]
    set_clock(client, tuesday(8, 45))
    status, answer = await check_in(visitor, branch)
    assert status == 409 and answer["error"]["code"] == "wrong_office"
    assert answer["error"]["details"] == {"office": "branch", "office_name": "テスト市役所 支所", "day": TUESDAY,
                                          "slot": "09:00"}
    status, answer = await check_in(visitor, wednesday)
    assert status == 409 and answer["error"]["code"] == "wrong_day"
    assert answer["error"]["details"]["day"] == WEDNESDAY
    status, answer = await check_in(visitor, branch, office="branch")
    assert status == 201 and answer["ticket"]["number"] == "300"  # the branch has no booked numbers of its own


async def test_unknown_malformed_and_cancelled_codes(client: TestClient, visitor: Api) -> None:
    created = await book(visitor, "09:00")
    set_clock(client, tuesday(8, 45))
    code = created["code"].replace("-", "")
    # A well-formed code that nobody booked (the check character fits): 404 saying only that.
    other = next(body + check_character(body) for body in ("ACDEFHJ", "ACDEFHK", "ACDEFHM") if body != code[:7])
    status, answer = await check_in(visitor, other)
    assert status == 404 and answer["error"]["code"] == "not_found"
    assert answer["error"]["message"] == "no such booking"
    status, answer = await check_in(visitor, "ACDE-FHJ")
    assert status == 400 and answer["error"]["code"] == "invalid_code"
    status, answer = await visitor.post("/api/offices/main/check-in", {"lang": "ja"})
    assert status == 400 and answer["error"]["field"] == "code"
    resp = await visitor.http.delete(f"/api/bookings/by-secret/{created['secret']}")
    assert resp.status == 200
    status, answer = await check_in(visitor, code)
    assert status == 409 and answer["error"]["code"] == "booking_not_active"
    assert answer["error"]["details"]["state"] == "cancelled"


async def test_the_link_of_the_booking_qr_checks_in_too(client: TestClient, visitor: Api) -> None:
    created = await book(visitor, "09:00")
    set_clock(client, tuesday(8, 45))
    status, answer = await visitor.post("/api/offices/main/check-in", {"secret": created["secret"]})
    assert status == 201 and answer["ticket"]["number"] == "700"


async def test_staff_check_a_visitor_in_from_the_counter(client: TestClient, visitor: Api, staff: Api) -> None:
    code = (await book(visitor, "09:00"))["code"]
    set_clock(client, tuesday(8, 45))
    status, answer = await visitor.post("/api/offices/main/check-in", {"code": code, "counter": "2"})
    assert status == 401  # a counter's check-in needs staff
    status, answer = await staff.post("/api/offices/main/check-in", {"code": code, "counter": "2"})
    assert status == 201, answer
    assert answer["ticket"]["booked"] == 1 and answer["ticket"]["slot_start"] == int(tuesday(9, 0).timestamp() * 1000)


async def test_a_booked_ticket_goes_before_earlier_walk_ins_once_its_slot_starts(
        client: TestClient, visitor: Api, staff: Api) -> None:
    code = (await book(visitor, "09:00"))["code"]
    set_clock(client, tuesday(8, 40))
    walk_ins = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(3)]  # 300, 301, 302
    set_clock(client, tuesday(8, 45))
    status, booked = await check_in(visitor, code)
    assert status == 201 and booked["ahead"] == 3  # before its slot: like a walk-in who came now
    set_clock(client, tuesday(8, 50))
    status, called = await staff.counter("2", "call-next")
    assert called["ticket"]["number"] == walk_ins[0]  # not yet: the slot has not started
    await staff.counter("2", "start")
    await staff.counter("2", "finish")

    async def ahead(expected: int) -> bool:
        # The status page's figure comes from the live state, which follows the events.
        status, view = await visitor.get(f"/api/tickets/{booked['token']}")
        return status == 200 and view["ahead"] == expected

    await wait_until(lambda: ahead(2), "2 ahead of the booked ticket before its slot")
    set_clock(client, tuesday(9, 0))
    await wait_until(lambda: ahead(0), "the booked ticket first in line once its slot started")
    status, called = await staff.counter("2", "call-next")
    assert status == 200 and called["ticket"]["number"] == "700" and called["ticket"]["booked"] == 1
    await staff.counter("2", "start")
    await staff.counter("2", "finish")
    status, called = await staff.counter("2", "call-next")
    assert called["ticket"]["number"] == walk_ins[1]
