"""Mistyped booking codes never lock anybody out (issue 15, item 7), through real HTTP and a real Valkey.

A registered kiosk (set up once by its one-time link) has its misses slowed a little and forgotten at
the next visitor's success; any other client is slowed by address with a growing wait it is told
(``Retry-After``), never locked for the window. Every test client connects from 127.0.0.1: the same
address, as a lobby kiosk and the phones on the office's guest Wi-Fi would be.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.domain.booking import ALPHABET, check_character, display_code
from queue_server.store.ratelimit import ADDRESS_MISSES, KIOSK_MISSES, Subject
from queue_server.web.guessing import KIOSK_COOKIE
from queue_server.web.keys import BOOKING_GUESSES, BOOKINGS, CLOCK, KIOSKS

from .conftest import Api
from .test_checkin import MONDAY_10, book, check_in, checkin_config, set_clock, tuesday


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[TestClient]], tmp_path: Path) -> TestClient:
    client = await make_client(checkin_config(tmp_path))
    set_clock(client, MONDAY_10)
    return client


def unknown_codes(n: int, avoid: str) -> list[str]:
    """``n`` well-formed codes (right check character) that are not ``avoid``: misses, not typos."""
    codes = []
    while len(codes) < n:
        body = "".join(secrets.choice(ALPHABET) for _ in range(7))
        if display_code(body + check_character(body)) != avoid:
            codes.append(body + check_character(body))
    return codes


async def set_up_kiosk(client: TestClient, kiosk: Api, name: str = "lobby-1") -> None:
    """What staff do once: register the kiosk, open its setup link on it and confirm."""
    code = await client.app[KIOSKS].add("main", name, actor="test")
    page = await kiosk.http.get(f"/kiosk/setup/{code}")
    assert page.status == 200 and name in await page.text()
    confirmed = await kiosk.http.post(f"/kiosk/setup/{code}", allow_redirects=False)
    assert confirmed.status == 303 and confirmed.headers["Location"] == "/kiosk/main"
    cookie = confirmed.cookies[KIOSK_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and int(cookie["max-age"]) > 300 * 86_400


def tick(client: TestClient, seconds: float) -> None:
    client.app[CLOCK].offset_ms += int(seconds * 1000)


async def test_twenty_mistyped_codes_at_a_registered_kiosk_then_a_valid_one_checks_in(
        client: TestClient, user: Callable[[], Api]) -> None:
    kiosk, phone = user(), user()
    await set_up_kiosk(client, kiosk)
    code = (await book(phone, "09:00"))["code"]
    set_clock(client, tuesday(8, 40))
    statuses = []
    for guess in unknown_codes(20, code):
        status, answer = await check_in(kiosk, guess)
        statuses.append(status)
        assert "retry_after" not in answer["error"]  # a kiosk is never told to wait, only answered later
    assert statuses == [404] * 20
    status, answer = await check_in(kiosk, code)
    assert status == 201, answer
    assert answer["ticket"]["booked"] == 1 and answer["booking"]["state"] == "checked_in"
    booking = await client.app[BOOKINGS].find_by_code(code, ["main"])
    assert booking["state"] == "checked_in"
    # The kiosk's misses were its own: a phone on the same address is not slowed by them.
    status, answer = await phone.post("/api/bookings/lookup", {"code": unknown_codes(1, code)[0]})
    assert status == 404 and "retry_after" not in answer["error"]


async def test_a_registered_kiosk_is_held_a_moment_per_miss_and_forgets_them_at_a_success(
        client: TestClient, user: Callable[[], Api]) -> None:
    kiosk, phone = user(), user()
    await set_up_kiosk(client, kiosk)
    first, second = (await book(phone, "09:00"))["code"], (await book(phone, "09:30"))["code"]
    set_clock(client, tuesday(8, 40))
    pacer = client.app[BOOKING_GUESSES]
    pacer_key, redis = pacer.key(Subject("kiosk", "main/lobby-1")), pacer.redis
    for guess in unknown_codes(KIOSK_MISSES.free + 2, first):
        assert (await check_in(kiosk, guess))[0] == 404
    assert int(await redis.hget(pacer_key, "n")) == KIOSK_MISSES.free + 2
    assert (await check_in(kiosk, first))[0] == 201
    assert int(await redis.hget(pacer_key, "n")) == 0  # the next visitor starts with no delay
    set_clock(client, tuesday(9, 0))
    assert (await check_in(kiosk, second))[0] == 201


async def test_misses_from_an_address_are_slowed_by_a_growing_wait_never_locked(
        client: TestClient, user: Callable[[], Api]) -> None:
    guesser, honest = user(), user()   # two phones behind one address (guest Wi-Fi, carrier NAT)
    code = (await book(honest, "09:00"))["code"]
    set_clock(client, tuesday(8, 40))
    guesses = iter(unknown_codes(40, code))
    for _ in range(ADDRESS_MISSES.free):
        status, answer = await check_in(guesser, next(guesses))
        assert status == 404 and "retry_after" not in answer["error"]
    waits = []
    for _ in range(7):
        resp = await guesser.http.post("/api/offices/main/check-in", json={"code": next(guesses), "lang": "ja"})
        answer = await resp.json()
        assert resp.status == 404
        waits.append(int(resp.headers["Retry-After"]))
        assert answer["error"]["retry_after"] == waits[-1]
        # Within the wait the address is refused, saying how long is left; nothing is counted meanwhile.
        status, refused = await check_in(guesser, next(guesses))
        assert status == 429 and refused["error"]["retry_after"] == waits[-1]
        tick(client, waits[-1])
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    # The honest phone behind the same address waits at most the cap (30 s), never the old 10 minutes.
    status, answer = await check_in(guesser, next(guesses))
    assert status == 404 and answer["error"]["retry_after"] == 30
    status, refused = await check_in(honest, code)
    assert status == 429 and refused["error"]["retry_after"] <= 30
    tick(client, refused["error"]["retry_after"])
    status, answer = await check_in(honest, code)
    assert status == 201 and answer["booking"]["state"] == "checked_in"


async def test_concurrent_guesses_from_one_address_are_not_all_looked_up(
        client: TestClient, user: Callable[[], Api]) -> None:
    guesser = user()
    set_clock(client, tuesday(8, 40))
    answers = await asyncio.gather(*(check_in(guesser, guess) for guess in unknown_codes(40, "")))
    statuses = [status for status, _ in answers]
    # The free misses, then one more that sets the first wait (1 s); the rest are refused unlooked-up (a
    # slow machine may let one or two more through as the waits end).
    assert statuses.count(404) <= ADDRESS_MISSES.free + 3 and statuses.count(429) + statuses.count(404) == 40


async def test_a_forged_or_foreign_kiosk_credential_counts_as_the_address(
        client: TestClient, user: Callable[[], Api]) -> None:
    kiosk, forger = user(), user()
    await set_up_kiosk(client, kiosk)
    forger.http.cookie_jar.update_cookies({KIOSK_COOKIE: secrets.token_urlsafe(32)})
    set_clock(client, tuesday(8, 40))
    guesses = iter(unknown_codes(ADDRESS_MISSES.free + 2, ""))
    for _ in range(ADDRESS_MISSES.free):
        assert (await check_in(forger, next(guesses)))[0] == 404
    status, answer = await check_in(forger, next(guesses))
    assert status == 404 and answer["error"]["retry_after"] == 1
    # The registered kiosk of main is its own subject; at another office's check-in it is the address.
    assert (await check_in(kiosk, next(guesses)))[0] == 404
    status, answer = await check_in(kiosk, unknown_codes(1, "")[0], office="branch")
    assert status == 429


async def test_the_setup_link_works_once_and_registering_again_revokes_the_old_credential(
        client: TestClient, user: Callable[[], Api]) -> None:
    kiosk = user()
    code = await client.app[KIOSKS].add("main", "lobby-1", actor="test")
    assert (await kiosk.http.post(f"/kiosk/setup/{code}", allow_redirects=False)).status == 303
    again = await user().http.post(f"/kiosk/setup/{code}", allow_redirects=False)
    assert again.status == 404 and KIOSK_COOKIE not in again.cookies
    assert (await user().http.get(f"/kiosk/setup/{code}")).status == 404
    token = kiosk.http.cookie_jar.filter_cookies(client.make_url("/"))[KIOSK_COOKIE].value
    assert (await client.app[KIOSKS].find(token)) is not None
    await client.app[KIOSKS].add("main", "lobby-1", actor="test")   # a lost or leaked kiosk: register again
    assert (await client.app[KIOSKS].find(token)) is None
    listed: list[dict[str, Any]] = await client.app[KIOSKS].all()
    assert [(k["office"], k["name"], k["token"]) for k in listed] == [("main", "lobby-1", "")]
    assert all(token not in str(k) and code not in str(k) for k in listed)  # digests only
