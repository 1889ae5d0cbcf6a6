"""The Lua store and the Python calling policy choose the same tickets, on many random offices."""

from __future__ import annotations

import dataclasses
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
from queue_server.store.tasks import TaskStore

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
                  order=t["order"], issued_at=t["issued_at"], priority=t.get("priority", 0),
                  returning=bool(t.get("returning")), prep=t.get("prep"))


@pytest.mark.parametrize("order", list(CallingOrder))
async def test_store_calls_exactly_what_the_policy_chooses(valkey_url: str, order: CallingOrder) -> None:
    redis = Redis.from_url(valkey_url)
    rng = random.Random(f"agreement-{order.value}")
    compared = returning_called = 0
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
            returning_called += expected.returning
            # Often hand the ticket over (it re-enters another queue, returning or at the back), else serve it.
            if rng.random() < 0.35:
                await store.hand_over("o", counter.id, rng.choice(list(office.procedures)), "",
                                      keep_place=rng.random() < 0.5)
            else:
                await store.counter_op("start", "o", counter.id)
                await store.counter_op("finish", "o", counter.id)
    await redis.aclose()
    assert compared > OFFICES * 5
    assert returning_called > OFFICES  # the hand-over rule was exercised, not only fresh tickets


async def test_a_handed_over_visitor_is_called_before_an_older_ticket_not_yet_served(valkey_url: str) -> None:
    """Counter 6 (city staff) serves PIN resets and the review queue: the visitor handed over from an
    application desk has waited once already and comes before an older PIN-reset ticket."""
    config = parse_config({
        "server": {"always_open": True},
        "offices": [{"id": "o", "name": "office", "procedures": [
            {"id": "application", "name": "交付申請受付", "number": {"prefix": "A", "width": 3}, "service_minutes": 20},
            {"id": "pin_reset", "name": "暗証番号再設定", "number": {"prefix": "P", "width": 3}, "service_minutes": 10},
            {"id": "review", "name": "市職員対応", "number": {"prefix": "R", "width": 3}, "service_minutes": 8,
             "city_staff_only": True}],
            "counters": [{"id": "1", "procedures": ["application"]},
                         {"id": "6", "procedures": ["pin_reset", "review"], "staff": "city"}]}],
    }, Path("counter6.toml"))
    redis = Redis.from_url(valkey_url)
    store = QueueStore(redis, config, Clock(), prefix="agree-counter6:")
    try:
        for counter in ("1", "6"):
            await store.set_counter_status("o", counter, "open")
        await store.issue("o", "pin_reset")             # P001, issued first
        handed = (await store.issue("o", "application"))["ticket"]["number"]
        await store.issue("o", "pin_reset")             # P002
        await store.call_next("o", "1")
        await store.hand_over("o", "1", "review", "")    # to city staff, place kept
        called = [(await store.call_next("o", "6"))["ticket"]["number"]]
        for _ in range(2):
            await store.counter_op("start", "o", "6")
            await store.counter_op("finish", "o", "6")
            called.append((await store.call_next("o", "6"))["ticket"]["number"])
        assert called == [handed, "P001", "P002"]
    finally:
        await redis.aclose()


def with_preparation(config: Config, rng: random.Random) -> Config:
    """The same office with a card-preparation stage on a random half of its procedures (at least one)."""
    office = config.offices["o"]
    ids = list(office.procedures)
    prepared = set(rng.sample(ids, max(1, len(ids) // 2)))
    procedures = {p.id: dataclasses.replace(p, stages=("prepare",), prep_minutes=15) if p.id in prepared else p
                  for p in office.procedures.values()}
    return dataclasses.replace(config, offices={"o": dataclasses.replace(office, procedures=procedures)})


@pytest.mark.parametrize("order", list(CallingOrder))
async def test_store_passes_over_held_tickets_as_the_policy_does(valkey_url: str, order: CallingOrder) -> None:
    """Tickets whose card is being prepared are skipped by both; once ready they are called in their place."""
    redis = Redis.from_url(valkey_url)
    rng = random.Random(f"held-{order.value}")
    compared = held_skipped = ready_called = 0
    for n in range(OFFICES):
        config = with_preparation(random_office(rng, order), rng)
        office = config.offices["o"]
        store = QueueStore(redis, config, Clock(), prefix=f"agree-held-{order.value}-{n}:")
        tasks = TaskStore(store)
        for counter in office.counters:
            await store.set_counter_status("o", counter, "open")
        for _ in range(rng.randint(5, 30)):
            await store.issue("o", rng.choice(list(office.procedures)), priority=rng.choice([0, 0, 0, 1, 5]))
        readied: set[str] = set()
        for _ in range(40):
            # The back office prepares a card now and then (any open one, not necessarily the first).
            snapshot = await store.snapshot("o")
            open_tasks = [t for t in snapshot["tasks"] if t["state"] == "open"]
            if open_tasks and rng.random() < 0.5:
                task = rng.choice(open_tasks)
                await tasks.claim("o", task["id"], actor="bo")
                await tasks.finish("o", task["id"], actor="bo")
                readied.add(task["number"])
                snapshot = await store.snapshot("o")
            queues: dict[str, list[Ticket]] = {}
            for t in snapshot["waiting"]:
                queues.setdefault(t["procedure"], []).append(as_ticket(t))
            counter = rng.choice(list(office.counters.values()))
            expected = choose_next(queues, counter.procedures, order)
            held_skipped += any(t.prep == "pending" for p in counter.procedures for t in queues.get(p, ()))
            try:
                result = await store.call_next("o", counter.id)
            except Exception as e:  # noqa: BLE001 - compared below
                assert expected is None, f"store refused ({e}) but policy chose {expected}"
                continue
            assert expected is not None and result["ticket"]["number"] == expected.number
            assert expected.prep != "pending"
            compared += 1
            ready_called += expected.number in readied
            await store.counter_op("start", "o", counter.id)
            await store.counter_op("finish", "o", counter.id)
    await redis.aclose()
    assert compared > OFFICES * 3
    assert held_skipped > OFFICES and ready_called > OFFICES  # both sides of the rule were exercised
