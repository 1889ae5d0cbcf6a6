"""Someone trying passwords or status tokens is slowed, then stopped, and it is recorded without
keeping what they typed; everyone else is not affected."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from queue_server.store.ratelimit import ADDRESS_FAILURES, ADDRESS_MISSES, USER_FAILURES, Subject
from queue_server.web.keys import ACCOUNTS, CLOCK, REDIS, TOKEN_GUESSES

from .conftest import PASSWORD, Api
from .test_api_lifecycle import receive


async def sign_in(api: Api, username: str, password: str) -> tuple[int, Any, str | None]:
    resp = await api.http.post("/api/session", json={"username": username, "password": password})
    return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def audit(client: TestClient) -> list[dict[str, str]]:
    accounts = client.app[ACCOUNTS]
    return [{k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in await accounts.redis.xrange(f"{accounts.prefix}audit")]


async def test_failed_sign_ins_slow_then_lock_the_user_name_and_are_audited(client: TestClient, user: Any) -> None:
    clock, api = client.app[CLOCK], user()
    for _ in range(USER_FAILURES.free + 1):  # a few typos cost nothing; the next failure sets a delay
        status, body, _ = await sign_in(api, "staff", "wrong-password")
        assert status == 401, body
    status, body, retry = await sign_in(api, "staff", PASSWORD)  # even the right password waits
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert "this user name" in body["error"]["message"] and retry == "2" and body["error"]["retry_after"] == 2

    # Each further failure doubles the wait, until the name is locked.
    failures = USER_FAILURES.free + 1
    while failures < USER_FAILURES.lock_after:
        clock.offset_ms += USER_FAILURES.max_delay_seconds * 1000
        status, body, _ = await sign_in(api, "staff", "wrong-password")
        assert status == 401, body
        failures += 1
    status, body, retry = await sign_in(api, "staff", PASSWORD)
    assert status == 429 and "locked for 15 minutes" in body["error"]["message"], body
    assert retry is not None and 0 < int(retry) <= USER_FAILURES.lock_seconds
    locks = [e for e in await audit(client) if e["action"] == "sign_in.locked"]
    assert [(e["actor"], e["scope"], e["seconds"]) for e in locks] == [("staff", "user", "900")]

    clock.offset_ms += USER_FAILURES.lock_seconds * 1000  # the lock passes; the right password works
    status, body, _ = await sign_in(api, "staff", PASSWORD)
    assert status == 200, body


async def test_failures_from_one_address_slow_it_whatever_names_it_tries(user: Any) -> None:
    api = user()
    for n in range(ADDRESS_FAILURES.free + 1):
        status, body, _ = await sign_in(api, f"guess{n}", "wrong-password")
        assert status == 401, body
    status, body, retry = await sign_in(api, "another-name", "wrong-password")
    assert status == 429 and "your address" in body["error"]["message"] and retry is not None, body


async def test_the_limit_holds_across_server_processes(
        make_client: Callable[..., Awaitable[TestClient]], user: Any) -> None:
    other = await make_client()  # a second server on the same Valkey and key prefix
    here, there = user(), user(other)
    for _ in range(USER_FAILURES.free + 1):
        assert (await sign_in(here, "city", "wrong-password"))[0] == 401
    status, body, _ = await sign_in(there, "city", PASSWORD)
    assert status == 429, body


async def test_a_flood_of_sign_ins_is_bounded_not_queued(user: Any) -> None:
    # Password checks run in a small pool off the event loop; beyond its backlog they are refused at once.
    api = user()
    answers = await asyncio.gather(*(sign_in(api, f"flood{n}", "wrong-password") for n in range(30)))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {401, 429, 503}, statuses
    busy = [(body, retry) for status, body, retry in answers if status == 503]
    assert busy, statuses
    assert all(b["error"]["code"] == "unavailable" and retry == "1" for b, retry in busy)
    assert statuses.count(401) >= 2  # the pool did check some


async def test_the_audit_keeps_no_typed_name_that_is_not_an_account(client: TestClient, user: Any) -> None:
    api = user()
    typed = "Tr0ub4dor&3-secret"  # a password typed into the name field
    assert (await sign_in(api, typed, "wrong-password"))[0] == 401
    assert (await sign_in(api, "staff", "wrong-password"))[0] == 401
    failed = [e for e in await audit(client) if e["action"] == "sign_in.failed"]
    assert [e["actor"] for e in failed] == ["(unknown)", "staff"]
    # Not in the audit, not in any key or value under this server's prefix.
    redis, prefix = client.app[REDIS], client.app[ACCOUNTS].prefix
    async for key in redis.scan_iter(f"{prefix}*"):
        assert typed.encode() not in key
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            assert all(typed.encode() not in v for v in (await redis.hgetall(key)).values())
        elif kind == "string":
            assert typed.encode() not in await redis.get(key)
        elif kind == "stream":
            assert all(typed.encode() not in v for _, e in await redis.xrange(key) for v in e.values())


async def test_guessing_status_tokens_is_slowed_per_address_never_locked(
        client: TestClient, visitor: Api, user: Any) -> None:
    mine = await visitor.issue("pickup")
    for _ in range(3):  # looking up one's own ticket, however often, is never limited
        assert (await visitor.get(f"/api/tickets/{mine['token']}"))[0] == 200
    # ... and writes nothing: every phone does it at each page load and reconnect.
    pacer_key = client.app[TOKEN_GUESSES].key(Subject("address", "127.0.0.1"))
    assert not await client.app[REDIS].exists(pacer_key)
    guesser = user()  # the same address as the visitor's phone (guest Wi-Fi, carrier NAT)
    for _ in range(ADDRESS_MISSES.free):
        status, body = await guesser.get(f"/api/tickets/{secrets.token_urlsafe(16)}")
        assert status == 404 and "retry_after" not in body["error"], body
    waits = []
    for _ in range(7):
        resp = await guesser.http.get(f"/api/tickets/{secrets.token_urlsafe(16)}")
        assert resp.status == 404
        waits.append(int(resp.headers["Retry-After"]))
        # Within the wait every lookup from the address is refused, saying how long is left.
        resp = await guesser.http.get(f"/api/tickets/{mine['token']}")
        body = await resp.json()
        assert resp.status == 429 and body["error"]["code"] == "rate_limited", body
        assert int(resp.headers["Retry-After"]) == waits[-1]
        client.app[CLOCK].offset_ms += waits[-1] * 1000
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    await guesser.get(f"/api/tickets/{secrets.token_urlsafe(16)}")
    resp = await guesser.http.post(f"/api/tickets/{mine['token']}/cancel", json={})
    assert resp.status == 429 and 0 < int(resp.headers["Retry-After"]) <= 30

    # The WebSocket ticket subscription answers with the same code and keeps the connection.
    ws = await guesser.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "ticket", "token": mine["token"]})
    result = await receive(ws, "result")
    assert result["success"] is False and result["error"]["code"] == "rate_limited"
    assert 0 < result["error"]["retry_after"] <= 30
    await ws.send_json({"id": 2, "type": "ping"})
    assert (await receive(ws, "pong"))["id"] == 2
    await ws.close()

    # The visitor's phone behind the same address waits at most the cap, never the old 10 minutes.
    client.app[CLOCK].offset_ms += 30_000
    assert (await visitor.get(f"/api/tickets/{mine['token']}"))[0] == 200


async def test_ticket_subscriptions_count_as_guesses(visitor: Api) -> None:
    ws = await visitor.http.ws_connect("/api/ws")
    for n in range(ADDRESS_MISSES.free + 1):
        await ws.send_json({"id": n, "type": "subscribe", "view": "ticket", "token": secrets.token_urlsafe(16)})
        assert (await receive(ws, "result"))["error"]["code"] == "not_found"
    status, body = await visitor.get(f"/api/tickets/{secrets.token_urlsafe(16)}")
    assert status == 429, body
    await ws.close()
