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
from queue_server.domain.booking import new_code
from queue_server.domain.model import BookedBeforeSlot, CallingOrder, Ticket, TicketState
from queue_server.domain.policy import choose_next
from queue_server.store.bookings import Bookings
from queue_server.store.checkin import check_in
from queue_server.store.redis_store import QueueStore
from queue_server.store.tasks import TaskStore

OFFICES = 25


def random_office(rng: random.Random, order: CallingOrder,
                  booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN) -> Config:
    """2–4 procedures, 2–5 counters each serving a random subset in a random preference order; check-in
    opens 4 hours before a slot, and a visitor more than 20 minutes late is a walk-in."""
    procedures = [f"p{i}" for i in range(rng.randint(2, 4))]
    counters = []
    for c in range(rng.randint(2, 5)):
        served = rng.sample(procedures, rng.randint(1, len(procedures)))
        counters.append({"id": f"c{c}", "procedures": served})
    return parse_config({
        "server": {"always_open": True},
        "calling": {"order": order.value, "booked_before_slot": booked_before_slot.value},
        "offices": [{"id": "o", "name": "office", "bookings": {"checkin_early_minutes": 240, "late_minutes": 20},
                     "procedures": [{"id": p, "name": p, "number": {"prefix": chr(65 + i), "width": 3},
                                     "service_minutes": 10} for i, p in enumerate(procedures)],
                     "counters": counters}],
    }, Path("random.toml"))


def as_ticket(t: dict[str, Any]) -> Ticket:
    return Ticket(number=t["number"], procedure=t["procedure"], state=TicketState(t["state"]), seq=t["seq"],
                  order=t["order"], issued_at=t["issued_at"], priority=t.get("priority", 0),
                  returning=bool(t.get("returning")), handed_over_from=t.get("handed_over_from"),
                  booking=t.get("booking"), slot_start=t.get("slot_start"), booked=bool(t.get("booked")),
                  late=bool(t.get("late")), prep=t.get("prep"))


async def call_once(store: QueueStore, rng: random.Random, order: CallingOrder, hand_over_share: float,
                    now: int | None = None, before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN,
                    ) -> tuple[Ticket | None, dict[str, list[Ticket]]]:
    """Call-next at a random counter of office "o", checked against ``policy.choose_next`` on the
    snapshot just before; then the called ticket is handed over (another queue, returning or at the
    back) or served. Returns the ticket called (None: nobody) and the queues it was chosen from."""
    office = store.config.offices["o"]
    snapshot = await store.snapshot("o")
    queues: dict[str, list[Ticket]] = {}
    for t in snapshot["waiting"]:
        queues.setdefault(t["procedure"], []).append(as_ticket(t))
    counter = rng.choice(list(office.counters.values()))
    expected = choose_next(queues, counter.procedures, order, now, before_slot)
    try:
        result = await store.call_next("o", counter.id)
    except Exception as e:  # noqa: BLE001 - compared below
        assert expected is None, f"store refused ({e}) but policy chose {expected}"
        return None, queues
    assert expected is not None and result["ticket"]["number"] == expected.number, (now, expected)
    if rng.random() < hand_over_share:
        await store.hand_over("o", counter.id, rng.choice(list(office.procedures)), "", keep_place=rng.random() < 0.5)
    else:
        await store.counter_op("start", "o", counter.id)
        await store.counter_op("finish", "o", counter.id)
    return expected, queues


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
            called, _queues = await call_once(store, rng, order, 0.35)
            if called is not None:
                compared += 1
                returning_called += called.returning
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
            open_tasks = [t for t in (await store.snapshot("o"))["tasks"] if t["state"] == "open"]
            if open_tasks and rng.random() < 0.5:
                task = rng.choice(open_tasks)
                await tasks.claim("o", task["id"], actor="bo")
                await tasks.finish("o", task["id"], actor="bo")
                readied.add(task["number"])
            called, queues = await call_once(store, rng, order, 0.0)
            held_skipped += any(t.prep == "pending" for q in queues.values() for t in q)
            if called is not None:
                assert called.prep != "pending"
                compared += 1
                ready_called += called.number in readied
    await redis.aclose()
    assert compared > OFFICES * 3
    assert held_skipped > OFFICES and ready_called > OFFICES  # both sides of the rule were exercised


async def put_booking(store: QueueStore, office: str, booking_id: int, procedure: str, slot_start: int) -> str:
    """A booking of today as ``lua/bookings.lua`` keeps it (any slot start, which booking would refuse
    in the past); returns its code."""
    code = new_code()
    key = store.office_key(office)
    await store.redis.hset(f"{key}bk:{booking_id}", mapping={
        "id": booking_id, "code": code, "procedure": procedure, "day": store.clock.day(slot_start),
        "slot": store.clock.local(slot_start).strftime("%H:%M"), "slot_start": slot_start,
        "slot_end": slot_start + 30 * MINUTE, "state": "booked"})
    await store.redis.set(f"{key}bkcode:{code}", booking_id)
    return code


MINUTE = 60_000


@pytest.mark.parametrize("order", list(CallingOrder))
async def test_store_calls_booked_tickets_exactly_when_the_policy_does(valkey_url: str, order: CallingOrder) -> None:
    """Random offices with walk-ins and booked visitors checked in before, at and after their slot's
    start (some too late: walk-ins); the office clock moves on a few minutes between calls, so slots
    start while people wait. The clock is set to whole minutes and slots start on the half minute.
    Each of the three ``booked_before_slot`` rules on a third of the offices."""
    redis = Redis.from_url(valkey_url)
    rng = random.Random(f"agreement-booked-{order.value}")
    compared = booked_first = booked_waiting = kept_back = 0
    rules = list(BookedBeforeSlot)
    for n in range(OFFICES):
        before_slot = rules[n % len(rules)]
        config = random_office(rng, order, before_slot)
        office = config.offices["o"]
        clock = Clock()
        now = (clock.now_ms() // MINUTE) * MINUTE
        # Away from midnight, so the whole office day stays one business day.
        local = clock.local(now)
        now -= (local.hour * 60 + local.minute - 10 * 60) * MINUTE

        def set_time(ms: int, clock: Clock = clock) -> None:
            clock.offset_ms = 0
            clock.offset_ms = ms - clock.now_ms()

        set_time(now)
        store = QueueStore(redis, config, clock, prefix=f"agree-booked-{order.value}-{n}:")
        for counter in office.counters:
            await store.set_counter_status("o", counter, "open")
        for b in range(rng.randint(8, 30)):
            procedure = rng.choice(list(office.procedures))
            if rng.random() < 0.5:
                await store.issue("o", procedure, priority=rng.choice([0, 0, 0, 1, 5]))
            else:
                slot_start = now + rng.randint(-30, 60) * MINUTE + MINUTE // 2
                code = await put_booking(store, "o", b, procedure, slot_start)
                await check_in(store, "o", await Bookings(store).find_by_code(code, ["o"]))
            now += rng.randint(0, 2) * MINUTE
            set_time(now)
        for _ in range(40):
            called, queues = await call_once(store, rng, order, 0.25, now, before_slot)
            booked_waiting += sum(t.booked for q in queues.values() for t in q)
            if called is not None:
                compared += 1
                # A booked ticket called while an earlier walk-in of its queue and class waits: the precedence.
                booked_first += called.booked and not called.handed_over_from and any(
                    t.order < called.order and t.priority == called.priority and not t.booked
                    for t in queues[called.procedure])
                # keep_for_slot: an earlier booked visitor whose slot is still to come passed over for a walk-in.
                kept_back += before_slot is BookedBeforeSlot.KEEP_FOR_SLOT and not called.booked and any(
                    t.booked and not t.handed_over_from and t.order < called.order and t.priority == called.priority
                    and t.slot_start is not None and t.slot_start > now for t in queues[called.procedure])
            now += rng.randint(0, 4) * MINUTE
            set_time(now)
    await redis.aclose()
    assert compared > OFFICES * 5
    assert booked_first > OFFICES // 2  # booked visitors did go before earlier walk-ins
    assert booked_waiting > OFFICES * 5
    assert kept_back > OFFICES // 6  # the third rule kept early booked visitors for their slot
