"""Under load: counters calling at once never share a ticket, and none is lost or duplicated."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.config import Config, parse_config


pytestmark = pytest.mark.slow

TICKETS = 2000
COUNTERS = 6


def busy_office() -> Config:
    """One procedure (numbers A0001…) served by six counters."""
    return parse_config({
        "server": {"always_open": True},
        "offices": [{
            "id": "main", "name": "繁忙テスト",
            "procedures": [{"id": "application", "name": "交付申請受付", "number": {"prefix": "A", "width": 4},
                            "service_minutes": 15}],
            "counters": [{"id": str(i), "procedures": ["application"]} for i in range(1, COUNTERS + 1)],
        }],
    }, Path("busy.toml"))


async def test_six_counters_calling_next_at_once_get_each_of_2000_tickets_exactly_once(
        make_client: Any, user: Any) -> None:
    client: TestClient = await make_client(busy_office())
    kiosk, staff = user(client), user(client)
    await staff.sign_in("staff")
    for counter in range(1, COUNTERS + 1):
        assert (await staff.counter(str(counter), "open"))[0] == 200

    issued: list[str] = []
    issuing_done = asyncio.Event()

    async def issue_all() -> None:
        async def one() -> None:
            issued.append((await kiosk.issue("application"))["ticket"]["number"])

        for start in range(0, TICKETS, 50):
            await asyncio.gather(*(one() for _ in range(min(50, TICKETS - start))))
        issuing_done.set()

    called: dict[str, list[str]] = {str(c): [] for c in range(1, COUNTERS + 1)}

    async def serve(counter: str) -> None:
        while True:
            status, body = await staff.counter(counter, "call-next")
            if status == 409 and body["error"]["code"] == "queue_empty":
                if issuing_done.is_set():
                    return
                await asyncio.sleep(0.001)
                continue
            assert status == 200, body
            called[counter].append(body["ticket"]["number"])
            assert (await staff.counter(counter, "start"))[0] == 200
            assert (await staff.counter(counter, "finish"))[0] == 200

    await asyncio.gather(issue_all(), *(serve(c) for c in called))

    everything = [n for numbers in called.values() for n in numbers]
    assert len(issued) == TICKETS and len(set(issued)) == TICKETS
    duplicates = [n for n, k in Tally(everything).items() if k > 1]
    assert duplicates == []
    assert sorted(everything) == sorted(issued)
    assert all(called.values()), "every counter took part"
    _, state = await staff.get("/api/offices/main/state")  # the staff view lists the waiting
    assert state["waiting"] == [] and state["active"] == []
