"""The Lua store and the Python calling policy choose the same tickets, on many random offices."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from queue_server.clock import Clock
from queue_server.config import Config, parse_config
from queue_server.domain.model import CallingOrder, Ticket, TicketState
from queue_server.domain.policy import choose_next
from queue_server.store.redis_store import QueueStore

OFFICES = 25


def random_office(rng: random.Random, order: CallingOrder) -> Config:
    """2–4 procedures, 2–5 counters each serving a random subset in a random preference order."""
    procedures = [f"p{i}" for i in range(rng.randint(2, 4))]
    counters = []
    for c in range(rng.randint(2, 5)):
        served = rng.sample(procedures, rng.randint(1, len(procedures)))
        counters.append({"id": f"c{c}", "procedures": served})
    return parse_config({
        "server": {"always_open": True},
        "calling": {"order": order.value},
        "offices": [{"id": "o", "name": "office",
                     "procedures": [{"id": p, "name": p, "number": {"prefix": chr(65 + i), "width": 3},
                                     "service_minutes": 10} for i, p in enumerate(procedures)],
                     "counters": counters}],
    }, Path("random.toml"))


def as_ticket(t: dict[str, Any]) -> Ticket:
    return Ticket(number=t["number"], procedure=t["procedure"], state=TicketState(t["state"]), seq=t["seq"],
                  order=t["order"], issued_at=t["issued_at"], priority=t.get("priority", 0))


@pytest.mark.parametrize("order", list(CallingOrder))
async def test_store_calls_exactly_what_the_policy_chooses(valkey_url: str, order: CallingOrder) -> None:
    redis = Redis.from_url(valkey_url)
    rng = random.Random(f"agreement-{order.value}")
    compared = 0
    for n in range(OFFICES):
        config = random_office(rng, order)
        office = config.offices["o"]
        store = QueueStore(redis, config, Clock(), prefix=f"agree-{order.value}-{n}:")
        for counter in office.counters:
            await store.set_counter_status("o", counter, "open")
        for _ in range(rng.randint(5, 30)):
            await store.issue("o", rng.choice(list(office.procedures)), priority=rng.choice([0, 0, 0, 1, 5]))
        for _ in range(40):
            snapshot = await store.snapshot("o")
            queues: dict[str, list[Ticket]] = {}
            for t in snapshot["waiting"]:
                queues.setdefault(t["procedure"], []).append(as_ticket(t))
            counter = rng.choice(list(office.counters.values()))
            expected = choose_next(queues, counter.procedures, order)
            try:
                result = await store.call_next("o", counter.id)
            except Exception as e:  # noqa: BLE001 - compared below
                assert expected is None, f"store refused ({e}) but policy chose {expected}"
                continue
            assert expected is not None and result["ticket"]["number"] == expected.number
            compared += 1
            # Sometimes hand the ticket over (it re-enters another queue), otherwise serve it.
            if rng.random() < 0.2:
                await store.hand_over("o", counter.id, rng.choice(list(office.procedures)), "",
                                      keep_place=rng.random() < 0.5)
            else:
                await store.counter_op("start", "o", counter.id)
                await store.counter_op("finish", "o", counter.id)
    await redis.aclose()
    assert compared > OFFICES * 5
