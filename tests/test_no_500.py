"""No request, however malformed, makes the server answer 500: random bodies, paths and headers."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from .conftest import Api

pytestmark = pytest.mark.slow

PATHS = [
    "/api/offices/main/tickets", "/api/offices/main/tickets/300/cancel", "/api/offices/main/counters/1/call-next",
    "/api/offices/main/counters/1/call", "/api/offices/main/counters/1/hand-over", "/api/offices/main/counters/1/open",
    "/api/offices/main/counters/9/pause", "/api/offices/main/notice", "/api/offices/main/procedures/pickup/pause",
    "/api/tickets/AAAAAAAAAAAAAAAAAAAAAA/cancel", "/api/offices/%00/tickets",
    "/api/offices/main/counters/%F0%9F%98%80/call", "/api/offices/main/state", "/api/offices/main/congestion",
    "/api/offices/main/check-in",
]
FIELDS = ["procedure", "lang", "priority", "number", "to", "reason", "keep_place", "text", "username", "password",
          "code", "secret", "counter"]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, 10**30, 3.5, float("1e308")])
    if kind in (3, 4):
        return rng.choice(["", "pickup", "review", "A001", "300", "ja", "x" * 5000, "\u0000", "窓口", "🙂", "../etc",
                           "\ud800", "a\udfffb"])  # lone surrogates: Redis cannot store them
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELDS + ["zzz"]): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


async def test_random_requests_never_get_a_500(staff: Api) -> None:
    rng = random.Random(20261123)
    statuses: dict[int, int] = {}
    for _ in range(600):
        path = rng.choice(PATHS)
        right = "PUT" if path.endswith("/notice") else "GET" if path.endswith(("/state", "/congestion")) else "POST"
        method = right if rng.random() < 0.85 else rng.choice(["POST", "PUT", "GET", "PATCH"])
        body = rng.choice([
            json.dumps(random_json(rng)).encode(),
            json.dumps({rng.choice(FIELDS): random_json(rng) for _ in range(rng.randrange(4))}).encode(),
            bytes(rng.randrange(256) for _ in range(rng.randrange(64))),
            b"",
            # Built to break a parser: deep nesting, an integer of thousands of digits.
            b"[" * 2000 + b"]" * 2000, b'{"priority": ' + b"7" * 5000 + b"}",
        ])
        headers = {"Content-Type": rng.choice(["application/json", "text/plain", "application/json; charset=latin-1"]),
                   "X-CSRF-Token": rng.choice([staff.csrf, staff.csrf, staff.csrf, "", "nope"])}
        if rng.random() < 0.3:
            headers["Idempotency-Key"] = rng.choice(["short", "k" * 120, "valid-key-123456", "ключ-ключ-ключ"])
        resp = await staff.http.request(method, path, data=body, headers=headers)
        await resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert resp.status < 500, (method, path, body[:200], headers, resp.status, await resp.text())
    # The requests really explored: accepted ones, and each kind of refusal.
    assert {200, 400, 403, 404, 409} <= set(statuses), statuses
