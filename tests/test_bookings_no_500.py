"""No booking request, however malformed, makes the server answer 500: random bodies, queries and codes."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from .conftest import Api
from .test_bookings_api import TUESDAY, booking_client, operator  # noqa: F401 (fixtures)
from .test_no_500 import random_json

pytestmark = pytest.mark.slow

VALUES = ["", "pickup", "application", TUESDAY, "2026-12-08", "20261299", "09:00", "9:00", "25:00", "ACDE-FHJ7",
          "acdefhj7", "x" * 300, "\u0000", "予約", "🙂", "../etc", "%00", "-1", "999", "0"]
FIELDS = ["procedure", "day", "slot", "reference", "lang", "code", "office", "zzz"]


async def test_random_booking_requests_never_get_a_500(operator: Api, booking_client: TestClient,
                                                       user: Callable[..., Api]) -> None:
    rng = random.Random(20261208)
    status, created = await operator.post("/api/callcenter/bookings", {"office": "main", "procedure": "pickup",
                                                                       "day": TUESDAY, "slot": "09:00"})
    assert status == 201, created
    code, secret = quote(created["code"]), created["secret"]
    paths = {
        "POST": ["/api/offices/main/bookings", "/api/callcenter/bookings", "/api/bookings/lookup",
                 "/api/offices/%00/bookings"],
        "PUT": [f"/api/bookings/by-secret/{secret}", f"/api/offices/main/bookings/by-code/{code}",
                "/api/offices/main/bookings/by-code/%F0%9F%98%80", "/api/bookings/by-secret/short"],
        "DELETE": ["/api/bookings/by-secret/AAAAAAAAAAAAAAAAAAAAAA", "/api/offices/main/bookings/by-code/ACDEFHJ"],
        "GET": ["/api/offices/main/bookings/availability", "/api/callcenter/slots", "/api/offices/main/bookings",
                f"/api/offices/main/bookings/by-code/{code}", f"/api/bookings/by-secret/{secret}"],
    }
    statuses: dict[int, int] = {}
    for _ in range(400):
        method = rng.choice(list(paths))
        path = rng.choice(paths[method])
        if method == "GET":
            query = "&".join(f"{rng.choice(['procedure', 'from', 'days', 'day', 'limit', 'x'])}="
                             f"{quote(rng.choice(VALUES))}" for _ in range(rng.randrange(4)))
            path += "?" + query
        body = rng.choice([
            json.dumps({rng.choice(FIELDS): rng.choice([*VALUES, random_json(rng)])
                        for _ in range(rng.randrange(5))}).encode(),
            json.dumps(random_json(rng)).encode(),
            bytes(rng.randrange(256) for _ in range(rng.randrange(64))),
            b"",
        ])
        headers = {"Content-Type": "application/json", "X-CSRF-Token": rng.choice([operator.csrf, "nope"])}
        if rng.random() < 0.3:
            headers["Idempotency-Key"] = rng.choice(["short", "k" * 120, "valid-key-123456"])
        client = operator if rng.random() < 0.7 else user(booking_client)
        resp = await client.http.request(method, path, data=body if method != "GET" else None, headers=headers)
        await resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert resp.status < 500, (method, path, body[:200], resp.status, await resp.text())
    assert {200, 400, 404, 422} <= set(statuses), statuses
