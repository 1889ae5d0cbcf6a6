"""The wait estimator: plays the calling policy forward from the office's current state."""

from __future__ import annotations

import dataclasses
import json
import math
import random

import numpy as np
import pytest

import queue_server.domain.estimate as estimate_module
from queue_server.domain.estimate import (
    BackOffice,
    BackOfficeTask,
    CounterState,
    ExpectedArrival,
    OfficeSnapshot,
    WaitingTicket,
    estimate_waits,
)
from queue_server.domain.model import (
    BookedBeforeSlot,
    CallingOrder,
    CounterStatus,
    NotFound,
    NumberFormat,
    Procedure,
    Ticket,
    TicketState,
)
from queue_server.domain.policy import choose_next
from queue_server.domain.service_model import CounterSpeed, LearningSettings, ServiceModel

MIN = 60_000  # epoch ms per minute
NOW = 1_800_000_000_000
PTW = CallingOrder.PRIORITY_THEN_WAITED

A = Procedure("a", "交付申請受付", NumberFormat(prefix="A"), service_minutes=10.0)
B = Procedure("b", "カード交付", NumberFormat(prefix="B"), service_minutes=10.0)

# Nearly fixed 10-minute visits and no walk-up: the known answers below are exact to seconds.
FIXED = ServiceModel.learn([A, B], settings=LearningSettings(prior_cv=0.001, walk_up_prior_minutes=0.0))


def ticket(number: str, procedure: str, order: int, priority: int = 0) -> WaitingTicket:
    """A ticket waiting since a minute before ``NOW``."""
    return WaitingTicket(number, procedure, priority, order, order, NOW - MIN)


def snapshot(
    waiting: list[WaitingTicket],
    counters: list[CounterState],
    *,
    model: ServiceModel = FIXED,
    order: CallingOrder = PTW,
    closing_in: float = 480,
    expected: tuple[ExpectedArrival, ...] = (),
) -> OfficeSnapshot:
    """The office at ``NOW``."""
    return OfficeSnapshot(NOW, NOW + int(closing_in * MIN), order, tuple(waiting), tuple(counters), model, expected)


def medians(snap: OfficeSnapshot) -> dict[str, float | None]:
    """Median minutes until each waiting ticket is called."""
    return {t.number: t.median_minutes for t in estimate_waits(snap).tickets}


@pytest.mark.parametrize(("servers", "ahead"), [(1, 0), (2, 5), (3, 19), (6, 40)])
def test_mms_agrees_with_n_plus_one_over_s_mu(servers: int, ahead: int) -> None:
    model = ServiceModel.learn([A], settings=LearningSettings(family="exponential", walk_up_prior_minutes=0.0))
    waiting = [ticket(f"A{i}", "a", i) for i in range(ahead + 1)]
    busy = [CounterState(str(c), ("a",), serving="a", called_at=NOW - 9 * MIN, started_at=NOW - 8 * MIN) for c in range(servers)]
    means = [
        estimate_waits(snapshot(waiting, busy, model=model), runs=4000, seed=s).tickets[-1].mean_minutes
        for s in range(3)
    ]
    expected = (ahead + 1) * 10.0 / servers
    assert sum(m for m in means if m is not None) / 3 == pytest.approx(expected, rel=0.03)


def test_counters_serving_different_procedures() -> None:
    # Counter 1 serves only A, counter 2 only B: B's queue is empty, A's has five.
    waiting = [ticket(f"A{i}", "a", i) for i in range(1, 6)]
    forecast = estimate_waits(snapshot(waiting, [CounterState("1", ("a",)), CounterState("2", ("b",))]))
    assert [forecast.ticket(f"A{i}").median_minutes for i in range(1, 6)] == pytest.approx([0, 10, 20, 30, 40], abs=0.1)
    assert forecast.procedure("b").median_minutes == pytest.approx(0.0, abs=0.1)
    assert forecast.procedure("a").median_minutes == pytest.approx(50.0, abs=0.2)
    assert forecast.procedure("a").counters_open == 1


def test_a_shared_counter_takes_the_longest_waiting_across_its_procedures() -> None:
    waiting = [ticket("A1", "a", 1), ticket("B1", "b", 2), ticket("A2", "a", 3), ticket("A3", "a", 4), ticket("B2", "b", 5)]
    counters = [CounterState("1", ("a",)), CounterState("2", ("b", "a"))]
    got = medians(snapshot(waiting, counters))
    assert got == pytest.approx({"A1": 0, "B1": 0, "A2": 10, "A3": 10, "B2": 20}, abs=0.1)


def test_counter_procedure_order_serves_the_preferred_queue_first() -> None:
    waiting = [ticket("A1", "a", 1), ticket("A2", "a", 2), ticket("B1", "b", 3)]
    counters = [CounterState("2", ("b", "a"))]
    got = medians(snapshot(waiting, counters, order=CallingOrder.COUNTER_PROCEDURE_ORDER))
    assert got == pytest.approx({"B1": 0, "A1": 10, "A2": 20}, abs=0.1)


def test_a_paused_counter_does_not_call_until_it_resumes() -> None:
    waiting = [ticket(f"A{i}", "a", i) for i in range(1, 5)]
    paused = CounterState("2", ("a",), status=CounterStatus.PAUSED)
    alone = medians(snapshot(waiting, [CounterState("1", ("a",)), paused]))
    assert list(alone.values()) == pytest.approx([0, 10, 20, 30], abs=0.1)
    back = CounterState("2", ("a",), status=CounterStatus.PAUSED, resumes_at=NOW + 15 * MIN)
    both = medians(snapshot(waiting, [CounterState("1", ("a",)), back]))
    assert list(both.values()) == pytest.approx([0, 10, 15, 20], abs=0.1)


def test_a_counter_paused_on_its_lunch_break_resumes_when_the_break_ends() -> None:
    waiting = [ticket(f"A{i}", "a", i) for i in range(1, 4)]
    lunch = ((NOW - 10 * MIN, NOW + 50 * MIN),)
    at_lunch = CounterState("1", ("a",), status=CounterStatus.PAUSED, breaks=lunch)
    assert medians(snapshot(waiting, [at_lunch])) == pytest.approx({"A1": 50, "A2": 60, "A3": 70}, abs=0.1)
    assert not estimate_waits(snapshot(waiting, [at_lunch])).ticket("A3").past_closing
    # Paused after the break, or closed: nobody knows when it comes back.
    after = CounterState("1", ("a",), status=CounterStatus.PAUSED, breaks=((NOW - 70 * MIN, NOW - 10 * MIN),))
    closed = CounterState("1", ("a",), status=CounterStatus.CLOSED, breaks=lunch)
    assert medians(snapshot(waiting, [after]))["A1"] is None
    assert medians(snapshot(waiting, [closed]))["A1"] is None


def test_nobody_serving_the_procedure_gives_no_minutes_and_past_closing() -> None:
    closed = CounterState("1", ("a",), status=CounterStatus.CLOSED)
    estimate = estimate_waits(snapshot([ticket("A1", "a", 1)], [closed])).ticket("A1")
    assert estimate.median_minutes is None
    assert estimate.past_closing


def test_a_priority_ticket_jumps_the_line() -> None:
    waiting = [ticket("A1", "a", 1), ticket("A2", "a", 2), ticket("A3", "a", 3, priority=1)]
    forecast = estimate_waits(snapshot(waiting, [CounterState("1", ("a",))]))
    assert [forecast.ticket(n).median_minutes for n in ("A3", "A1", "A2")] == pytest.approx([0, 10, 20], abs=0.1)
    assert [forecast.ticket(n).people_ahead for n in ("A3", "A1", "A2")] == [0, 1, 2]
    # In "waited" order the priority class does not count.
    plain = medians(snapshot(waiting, [CounterState("1", ("a",))], order=CallingOrder.WAITED))
    assert plain == pytest.approx({"A1": 0, "A2": 10, "A3": 20}, abs=0.1)


def test_the_visit_in_progress_ends_after_its_remaining_time() -> None:
    waiting = [ticket("A1", "a", 1)]
    eight_in = CounterState("1", ("a",), serving="a", called_at=NOW - 9 * MIN, started_at=NOW - 8 * MIN)
    assert medians(snapshot(waiting, [eight_in]))["A1"] == pytest.approx(2.0, abs=0.1)
    # Long past any normal visit: somebody forgot to press finish; expect the counter soon.
    forgotten = CounterState("1", ("a",), serving="a", called_at=NOW - 95 * MIN, started_at=NOW - 90 * MIN)
    assert medians(snapshot(waiting, [forgotten]))["A1"] == pytest.approx(0.0, abs=0.5)


def test_the_rest_of_a_variable_visit_depends_on_the_time_spent() -> None:
    # A model sure of its mean (huge prior weight), so only the visit's own spread counts.
    sure = LearningSettings(prior_cv=1.0, prior_weight=1e9, walk_up_prior_minutes=0.0)
    model = ServiceModel.learn([A], settings=sure)
    waiting = [ticket("A1", "a", 1)]

    def first_call(minutes_in: float) -> float:
        busy = CounterState("1", ("a",), serving="a", called_at=NOW, started_at=NOW - int(minutes_in * MIN))
        m = estimate_waits(snapshot(waiting, [busy], model=model), runs=2000).ticket("A1").median_minutes
        assert m is not None
        return m

    just_started, well_in = first_call(0.0), first_call(12.0)
    # Mean 10, CV 1: log-SD √ln 2, median 10/√2. Twelve minutes in, half the visits that
    # lasted that long end by the 13.1 % survival point, exp(ln 7.07 + 0.833 · 1.122) ≈ 18.0.
    assert just_started == pytest.approx(10.0 / 2**0.5, rel=0.08)
    assert well_in == pytest.approx(18.0 - 12.0, rel=0.08)


def test_a_lunch_break_stops_calling_but_not_the_visit_in_progress() -> None:
    waiting = [ticket("A1", "a", 1), ticket("A2", "a", 2)]
    lunch = CounterState("1", ("a",), breaks=((NOW + 5 * MIN, NOW + 35 * MIN),))
    assert medians(snapshot(waiting, [lunch])) == pytest.approx({"A1": 0, "A2": 35}, abs=0.1)
    leaves = CounterState("1", ("a",), until=NOW + 5 * MIN)
    assert medians(snapshot(waiting, [leaves]))["A2"] is None


def test_a_booked_visitor_with_priority_is_served_on_arrival() -> None:
    waiting = [ticket("A1", "a", 1)]
    busy = CounterState("1", ("a",), serving="a", called_at=NOW, started_at=NOW)
    booked = ExpectedArrival("a", NOW + 5 * MIN, priority=1, show_probability=1.0, spread_minutes=0.0)
    assert medians(snapshot(waiting, [busy], expected=(booked,)))["A1"] == pytest.approx(20.0, abs=0.1)
    no_show = ExpectedArrival("a", NOW + 5 * MIN, priority=1, show_probability=0.0)
    assert medians(snapshot(waiting, [busy], expected=(no_show,)))["A1"] == pytest.approx(10.0, abs=0.1)
    late = ExpectedArrival("a", NOW + 15 * MIN, priority=1, show_probability=1.0, spread_minutes=0.0)
    assert medians(snapshot(waiting, [busy], expected=(late,)))["A1"] == pytest.approx(10.0, abs=0.1)


def test_later_walk_ins_overtake_only_under_counter_procedure_order() -> None:
    # The counter prefers B; A1 waits. Walk-ins for B come at 12 an hour until closing.
    waiting = [ticket("A1", "a", 1)]
    busy = CounterState("2", ("b", "a"), serving="a", called_at=NOW, started_at=NOW)
    cpo = CallingOrder.COUNTER_PROCEDURE_ORDER
    plain = snapshot(waiting, [busy], order=cpo, closing_in=12)
    rush = dataclasses.replace(plain, walk_ins_per_hour={"b": 12.0})
    assert medians(plain)["A1"] == pytest.approx(10.0, abs=0.1)
    # No B by minute 10 (e⁻² = 13.5 %): A1 at 10. Otherwise every B of the 12 minutes to
    # closing (Poisson, mean 2.4) goes first, 10 minutes each: P(≤ 20) = 32 %, P(≤ 30) = 57 %.
    # (Enough runs that the chance is not left to a few of them; the uncertain rate makes it about 0.84.)
    a1 = estimate_waits(rush, runs=2000).ticket("A1")
    assert a1.median_minutes == pytest.approx(30.0, abs=0.1)
    assert a1.low_minutes == pytest.approx(10.0, abs=0.1)
    assert a1.past_closing_chance == pytest.approx(1 - math.exp(-2), abs=0.05)
    # Under the other orders a later ticket is never called first: the rate changes nothing.
    waited = dataclasses.replace(rush, calling_order=PTW)
    assert medians(waited)["A1"] == pytest.approx(10.0, abs=0.1)


def test_past_closing_is_flagged() -> None:
    waiting = [ticket(f"A{i}", "a", i) for i in range(10)]
    forecast = estimate_waits(snapshot(waiting, [CounterState("1", ("a",))], closing_in=45))
    flags = [forecast.ticket(f"A{i}").past_closing for i in range(10)]
    assert flags == [False] * 5 + [True] * 5
    assert forecast.ticket("A9").past_closing_chance == 1.0
    assert forecast.ticket("A0").past_closing_chance == 0.0
    assert forecast.procedure("a").past_closing


def test_range_and_median_are_ordered_and_widen_down_the_line() -> None:
    model = ServiceModel.learn([A], settings=LearningSettings(prior_cv=0.8))
    waiting = [ticket(f"A{i}", "a", i) for i in range(1, 21)]
    forecast = estimate_waits(snapshot(waiting, [CounterState(str(c), ("a",)) for c in range(3)], model=model))
    widths = []
    for t in forecast.tickets:
        assert t.low_minutes is not None and t.median_minutes is not None and t.high_minutes is not None
        assert t.low_minutes <= t.median_minutes <= t.high_minutes
        widths.append(t.high_minutes - t.low_minutes)
    assert widths[-1] > widths[5] > 0


def test_the_same_seed_gives_the_same_answer() -> None:
    model = ServiceModel.learn([A, B])
    waiting = [ticket(f"A{i}", "a" if i % 3 else "b", i) for i in range(30)]
    counters = [CounterState("1", ("a",)), CounterState("2", ("a", "b"), serving="b", started_at=NOW - 3 * MIN)]
    snap = snapshot(waiting, counters, model=model)
    first = estimate_waits(snap, seed=7).to_dict()
    assert estimate_waits(snap, seed=7).to_dict() == first
    assert estimate_waits(snap, seed=8).to_dict() != first
    assert json.loads(json.dumps(first))["tickets"][0]["number"] == "A0"


def test_outlook_counts_waiting_per_procedure() -> None:
    waiting = [ticket("A1", "a", 1), ticket("A2", "a", 2), ticket("B1", "b", 3)]
    forecast = estimate_waits(snapshot(waiting, [CounterState("1", ("a", "b"))]))
    assert {p.procedure: p.waiting for p in forecast.procedures} == {"a": 2, "b": 1}
    assert forecast.procedure("a").median_minutes == pytest.approx(30.0, abs=0.1)


def test_a_procedure_the_model_does_not_know_is_refused() -> None:
    with pytest.raises(NotFound):
        estimate_waits(snapshot([ticket("C1", "c", 1)], [CounterState("1", ("c",))]))


def _back_office_replay(snap: OfficeSnapshot, prep: dict[str, float], post: dict[str, float]) -> dict[str, float]:
    """Reference: when each preparation ends (minutes from now), tasks taken one by one in the panel's order.

    The order: preparations for visitors waiting now, a priority visitor's first, then by issue
    time; then the others by deadline; then post-issuance work by creation; ties by task id as text.
    """
    back = snap.back_office
    held = {t.number: t for t in snap.waiting if t.prep_pending}
    tasks = {task.id: task for task in back.tasks}
    line: dict[str, float] = {}
    for t in held.values():
        if t.task not in tasks:
            tasks[f"held:{t.number}"] = BackOfficeTask(f"held:{t.number}", "prepare", t.procedure, t.issued_at,
                                                        ticket=t.number)
        tid = t.task if t.task in tasks else f"held:{t.number}"
        line[tid] = (9 - t.priority) * 10.0**13 + t.issued_at  # priority first, then the longest waiting
    claimed = [task for task in tasks.values() if task.claimed_at is not None]

    def key(x: BackOfficeTask) -> tuple[int, float, str]:
        ident = x.id  # ties by id as text, as the store's sorted set
        if x.kind == "post":
            return 2, x.created_at, ident
        score = line.get(x.id, x.line_score)
        if score is not None:
            return 0, score, ident
        return 1, x.due_at if x.due_at is not None else x.created_at, ident

    ranked = sorted((task for task in tasks.values() if task.claimed_at is None), key=key)
    order = [x for x in ranked if key(x)[0] == 0]
    order += [BackOfficeTask(f"now:{p}", "prepare", p, NOW) for p in snap.procedures if p in back.prep_procedures]
    order += [x for x in ranked if key(x)[0] > 0]
    times = {"prepare": prep, "post": post}
    free = [max(times[x.kind][x.procedure] - (NOW - x.claimed_at) / MIN, 0.0) for x in claimed]  # type: ignore[operator]
    ends = {x.id: f for x, f in zip(claimed, free, strict=True)}
    free += [0.0] * (back.people - len(claimed))
    for x in order:
        if not free:
            ends[x.id] = math.inf
            continue
        p = min(range(len(free)), key=lambda i: free[i])
        free[p] += times[x.kind][x.procedure]
        ends[x.id] = free[p]
    for t in held.values():
        ends[f"ticket:{t.number}"] = ends[t.task if t.task in tasks else f"held:{t.number}"]
    return ends


def _replay(snap: OfficeSnapshot, minutes: dict[str, float], prep: dict[str, float] | None = None,
            post: dict[str, float] | None = None) -> dict[str, float]:
    """Reference: one fixed-time future played ticket by ticket with ``policy.choose_next`` itself."""
    model = snap.service
    walk = model.walk_up_minutes
    ready = _back_office_replay(snap, prep or {}, post or {})

    def rel(ms: int) -> float:
        return (ms - NOW) / MIN

    def settle(c: CounterState, t: float) -> float:
        for start, end in sorted(c.breaks):
            if rel(start) <= t < rel(end):
                t = rel(end)
        return math.inf if c.until is not None and t >= rel(c.until) else t

    free: list[float] = []
    for c in snap.counters:
        t = 0.0
        if c.serving is not None:
            visit = model.counter_factor(c.id) * minutes[c.serving]
            if c.started_at is not None:
                t = max(visit - (NOW - c.started_at) / MIN, 0.0)
            else:
                t = max(walk - (NOW - (c.called_at or NOW)) / MIN, 0.0) + visit
        if c.status is not CounterStatus.OPEN:
            resumes_at = c.resumes(NOW)
            t = max(t, rel(resumes_at) if resumes_at is not None else math.inf)
        free.append(settle(c, t))
    # Each ticket: callable from (minutes from now).
    callable_from: dict[str, float] = {}
    waiting: list[Ticket] = []
    for w in snap.waiting:
        # Booked from ``precedence_from`` on: as a ticket with that slot start (rule "walk_in" or "keep_for_slot").
        waiting.append(Ticket(w.number, w.procedure, TicketState.WAITING, w.seq, w.order, w.issued_at, w.priority,
                              returning=w.returning, booked=w.precedence_from is not None, slot_start=w.precedence_from))
        callable_from[w.number] = ready[f"ticket:{w.number}"] if w.prep_pending else 0.0
    last = max((w.order for w in snap.waiting), default=0)
    arrivals = sorted(((e.at - NOW) / MIN + e.lateness_minutes, j, e) for j, e in enumerate(snap.expected))
    for n, (at, j, e) in enumerate(arrivals):
        at = max(at, 0.0)
        number = f"E{j}"
        checked_in = NOW + round(at * MIN)
        on_time = e.late_after_minutes is None or at <= rel(e.at) + e.late_after_minutes
        precedence = checked_in if e.precedence_at_check_in else e.at
        waiting.append(Ticket(number, e.procedure, TicketState.WAITING, last + 1 + n, last + 1 + n, checked_in, e.priority,
                              booked=on_time, slot_start=precedence, late=not on_time))
        callable_from[number] = max(at, ready.get(e.task, 0.0)) if e.task else at
    calls: dict[str, float] = {}
    while True:
        ci = min(range(len(free)), key=lambda i: (free[i], i))
        t, counter = free[ci], snap.counters[ci]
        if t == math.inf:
            return calls
        queues: dict[str, list[Ticket]] = {}
        for w in waiting:
            if callable_from[w.number] <= t:
                queues.setdefault(w.procedure, []).append(w)
        now = NOW + round(t * MIN)
        chosen = choose_next(queues, counter.procedures, snap.calling_order, now, snap.booked_before_slot)
        if chosen is None:
            later = [callable_from[w.number] for w in waiting
                     if callable_from[w.number] > t and w.procedure in counter.procedures]
            free[ci] = settle(counter, min(later)) if later else math.inf
            continue
        calls[chosen.number] = t
        waiting = [w for w in waiting if w is not chosen]
        free[ci] = settle(counter, t + walk + model.counter_factor(counter.id) * minutes[chosen.procedure])


def _random_office(rng: random.Random) -> tuple[OfficeSnapshot, dict[str, float], dict[str, float], dict[str, float]]:
    """A random office state with (nearly) fixed visit and task times and distinct counter speeds.

    Some tickets are booked (slot started or not), some held for their card; booked visitors to
    come, early or late; a back office of 0–3 people, some of them busy.
    """
    procedures = ["p0", "p1", "p2", "p3"][: rng.randint(1, 4)]
    minutes = {p: rng.choice([5.13, 7.37, 10.71, 13.97]) for p in procedures}
    prep = {p: rng.choice([3.31, 8.77, 15.07]) for p in procedures}
    post = {p: rng.choice([2.19, 9.53]) for p in procedures}
    exact = LearningSettings(prior_cv=1e-6, prior_weight=1e12, walk_up_prior_minutes=rng.choice([0.0, 0.5]))
    model = ServiceModel.learn([Procedure(p, p, NumberFormat(), minutes[p], prep[p], post[p]) for p in procedures],
                               settings=exact)
    # Distinct speeds so no two counters free up at the same instant (ties are arbitrary).
    model = dataclasses.replace(model, counters={str(i): CounterSpeed(str(i), 100, 1 + 0.0173 * i) for i in range(6)})
    prepared = tuple(p for p in procedures if rng.random() < 0.5)
    with_bookings, with_back_office = rng.random() < 0.6, rng.random() < 0.6
    waiting = []
    tasks = []
    for i in range(rng.randint(0, 25)):
        p = rng.choice(procedures)
        booked = with_bookings and rng.random() < 0.3
        held = with_back_office and p in prepared and rng.random() < 0.4
        task = None
        if held and rng.random() < 0.9:  # a few held tickets whose task the snapshot lacks
            task = str(1000 - i)
            claimed = NOW - int(rng.uniform(0, 5) * MIN) if rng.random() < 0.2 else None
            tasks.append(BackOfficeTask(task, "prepare", p, NOW - int(rng.uniform(0, 60) * MIN),
                                        claimed_at=claimed, ticket=f"T{i}"))
        waiting.append(WaitingTicket(
            f"T{i}", p, rng.choice([0, 0, 0, 1, 2]), 3 * i + rng.randint(0, 2), i, NOW - rng.randint(0, 90) * MIN,
            returning=rng.random() < 0.2,  # handed over with their place kept
            precedence_from=NOW + int(rng.uniform(-30, 60) * MIN) + 7_919 if booked else None,
            prep_pending=held, task=task,
        ))
    counters = []
    for ci in range(rng.randint(1, 5)):
        status = rng.choice([CounterStatus.OPEN] * 4 + [CounterStatus.PAUSED, CounterStatus.CLOSED])
        serving = rng.choice([None, rng.choice(procedures)])
        started = NOW - int(rng.uniform(0, 4) * MIN) if serving and rng.random() < 0.8 else None
        breaks: tuple[tuple[int, int], ...] = ()
        if rng.random() < 0.4:
            s = rng.uniform(-10, 60)
            breaks = ((NOW + int(s * MIN), NOW + int((s + rng.uniform(5, 60)) * MIN)),)
        counters.append(
            CounterState(
                str(ci),
                tuple(rng.sample(procedures, rng.randint(1, len(procedures)))),
                status,
                serving,
                NOW - 5 * MIN if serving else None,
                started,
                breaks,
                NOW + int(rng.uniform(30, 200) * MIN) if rng.random() < 0.2 else None,
                NOW + int(rng.uniform(0, 40) * MIN) if status is not CounterStatus.OPEN and rng.random() < 0.6 else None,
            )
        )
    expected = []
    for j in range(rng.randint(0, 6) if with_bookings or rng.random() < 0.5 else 0):
        p = rng.choice(procedures)
        task = None
        if with_back_office and p in prepared and rng.random() < 0.5:
            task = str(300 + j)
            tasks.append(BackOfficeTask(task, "prepare", p, NOW - int(rng.uniform(60, 600) * MIN),
                                        due_at=NOW + int(rng.uniform(-20, 90) * MIN)))
        expected.append(ExpectedArrival(
            p, NOW + int(rng.uniform(1, 90) * MIN) + 3_371 * j, rng.choice([0, 1]), 1.0, 0.0,
            lateness_minutes=rng.choice([0.0, 0.0, -7.1, -2.3, 4.3]),
            late_after_minutes=rng.choice([None, 3.0]), precedence_at_check_in=rng.random() < 0.2, task=task,
        ))
    order = rng.choice(list(CallingOrder))
    if with_back_office:
        tasks += [BackOfficeTask(str(400 - k), "post", rng.choice(procedures), NOW - k * MIN,
                                 claimed_at=NOW - int(rng.uniform(0, 3) * MIN) if rng.random() < 0.3 else None)
                  for k in range(rng.randint(0, 3))]
        # Cards for visitors waiting at a branch whose cards this back office prepares.
        tasks += [BackOfficeTask(str(500 + k), "prepare", rng.choice(procedures), NOW - 3 * MIN,
                                 line_score=9 * 10.0**13 + NOW - rng.randint(0, 80) * MIN)
                  for k in range(rng.randint(0, 2))]
    # At most one person free now: the others' free times come from their claimed tasks' random
    # remainders, so no two cards are ready at the same instant (ties would be arbitrary).
    busy = sum(1 for task in tasks if task.claimed_at is not None)
    back = BackOffice(busy + rng.randint(0, 1), tuple(tasks), prepared if with_back_office else ())
    snap = OfficeSnapshot(NOW, NOW + 300 * MIN, order, tuple(waiting), tuple(counters), model, tuple(expected),
                          procedures=tuple(procedures), back_office=back,
                          booked_before_slot=rng.choice([BookedBeforeSlot.WALK_IN, BookedBeforeSlot.KEEP_FOR_SLOT]))
    return snap, minutes, prep, post


@pytest.mark.parametrize("seed", range(200))
def test_the_simulation_calls_tickets_as_choose_next_would(seed: int) -> None:
    snap, minutes, prep, post = _random_office(random.Random(seed))
    want = _replay(snap, minutes, prep, post)
    got = {t.number: t.median_minutes for t in estimate_waits(snap, runs=10).tickets}
    for number, minutes_until in got.items():
        if number in want:
            assert minutes_until == pytest.approx(want[number], abs=0.01), number
        else:
            assert minutes_until is None, number


def _walk_in_office(closing_in: float = 240) -> OfficeSnapshot:
    """Counter procedure order, 40 waiting, three counters with different preferences, walk-ins."""
    model = ServiceModel.learn([A, B], settings=LearningSettings(prior_cv=0.6))
    waiting = [ticket(f"T{i}", "a" if i % 3 else "b", i, priority=int(i % 7 == 0)) for i in range(40)]
    counters = [
        CounterState("1", ("b", "a"), serving="a", called_at=NOW - 4 * MIN, started_at=NOW - 3 * MIN),
        CounterState("2", ("a", "b"), breaks=((NOW + 60 * MIN, NOW + 90 * MIN),)),
        CounterState("3", ("b",)),
    ]
    booked = (ExpectedArrival("b", NOW + 20 * MIN, priority=1), ExpectedArrival("a", NOW + 50 * MIN))
    snap = snapshot(
        waiting, counters, model=model, order=CallingOrder.COUNTER_PROCEDURE_ORDER, closing_in=closing_in, expected=booked
    )
    return dataclasses.replace(snap, walk_ins_per_hour={"a": 6.0, "b": 9.0})


@pytest.mark.parametrize("closing_in", [0, 30, 240])
def test_dropping_finished_runs_from_the_simulation_changes_nothing(monkeypatch: pytest.MonkeyPatch, closing_in: float) -> None:
    # Runs that have called everybody leave the simulation's state early; the answer is the
    # same as when every run is played until all are done (share 0: never dropped) or dropped
    # as soon as one is done (a huge share).
    snap = _walk_in_office(closing_in)
    answer = estimate_waits(snap, seed=3).to_dict()
    for share in (0, 10**9):
        monkeypatch.setattr(estimate_module, "_COMPACT_SHARE", share)
        assert estimate_waits(snap, seed=3).to_dict() == answer


def test_walk_ins_to_come_are_a_poisson_stream_until_closing() -> None:
    # 9 an hour for 4 hours: 36 per run on average (the rate's uncertainty keeps the mean),
    # spread uniformly over the 240 minutes, in arrival order, ordered after everybody waiting.
    snap = _walk_in_office(240)
    sim = estimate_module._Simulation(snap, 4000, np.random.default_rng(5))
    keys, arrive, durations, starts = sim._layout(0, sim._walk_in_arrivals(), [None] * len(sim.streams))
    stream = next(si for si, ((qi, _), rate) in enumerate(sim.streams) if rate > 0 and sim.procedures[qi] == "b")
    lo = int(starts[stream])
    hi = int(starts[stream + 1]) if stream + 1 < len(starts) else arrive.shape[1]
    times, order = arrive[:, lo : hi - 1], keys[:, lo : hi - 1]
    came = np.isfinite(times)
    assert came.sum(axis=1).mean() == pytest.approx(36.0, rel=0.03)
    assert times[came].min() >= 0 and times[came].max() < 240
    assert times[came].mean() == pytest.approx(120.0, rel=0.02)
    assert np.all(np.diff(np.where(came, times, 1e9), axis=1) >= 0)
    assert np.all(np.isfinite(order) == came) and np.all(np.diff(np.where(came, order, 1e300), axis=1) >= 0)
    assert order[came].min() > max(k for k in sim.key_a if math.isfinite(k))
    assert np.all(durations[:, lo : hi - 1][came] > 0)
    assert np.all(np.isinf(arrive[:, hi - 1])) and np.all(np.isinf(keys[:, hi - 1]))


# Bookings (#7) and the back office (#8).

PICKUP = Procedure("pickup", "カード交付", NumberFormat(prefix="P"), service_minutes=10.0, prep_minutes=15.0,
                   post_minutes=10.0)


def test_a_booked_visitor_is_called_before_the_walk_ins_once_the_slot_has_started() -> None:
    waiting = [ticket("A1", "a", 1)]
    busy = CounterState("1", ("a",), serving="a", called_at=NOW, started_at=NOW)
    # Checked in already, the slot starts in 5 minutes: at the counter's next call (10) they go first.
    early = WaitingTicket("A2", "a", 0, 2, 2, NOW, precedence_from=NOW + 5 * MIN)
    assert medians(snapshot(waiting + [early], [busy])) == pytest.approx({"A1": 20.0, "A2": 10.0}, abs=0.1)
    # The slot starts after the counter's next call: until then they wait like a walk-in.
    later = dataclasses.replace(early, precedence_from=NOW + 15 * MIN)
    assert medians(snapshot(waiting + [later], [busy])) == pytest.approx({"A1": 10.0, "A2": 20.0}, abs=0.1)
    # Not checked in yet: coming at the slot (5 min), called at 10 before the walk-in.
    coming = ExpectedArrival("a", NOW + 5 * MIN, show_probability=1.0, spread_minutes=0.0)
    assert medians(snapshot(waiting, [busy], expected=(coming,)))["A1"] == pytest.approx(20.0, abs=0.1)
    # Too late (more than late_after_minutes after the slot): a walk-in behind A1.
    late = dataclasses.replace(coming, lateness_minutes=4.0, late_after_minutes=3.0)
    assert medians(snapshot(waiting, [busy], expected=(late,)))["A1"] == pytest.approx(10.0, abs=0.1)
    # Released at the slot's end before they would come: they do not come at all.
    in_time = dataclasses.replace(coming, lateness_minutes=4.0, slot_end=NOW + 10 * MIN)
    assert medians(snapshot(waiting, [busy], expected=(in_time,)))["A1"] == pytest.approx(20.0, abs=0.1)
    released = dataclasses.replace(in_time, lateness_minutes=6.0)
    assert medians(snapshot(waiting, [busy], expected=(released,)))["A1"] == pytest.approx(10.0, abs=0.1)


def test_a_walk_ins_estimate_counts_the_booked_visitors_by_their_show_rate() -> None:
    # Four booked visitors due in 5 minutes, each coming with chance 0.75: the walk-in behind
    # them waits 10 min for the counter plus 10 per booked visitor who came (binomial 4, 0.75).
    waiting = [ticket("A1", "a", 1)]
    busy = CounterState("1", ("a",), serving="a", called_at=NOW, started_at=NOW)
    booked = tuple(ExpectedArrival("a", NOW + 5 * MIN, show_probability=0.75, spread_minutes=0.0) for _ in range(4))
    a1 = estimate_waits(snapshot(waiting, [busy], expected=booked), runs=4000).ticket("A1")
    assert a1.mean_minutes == pytest.approx(10.0 + 10.0 * 4 * 0.75, abs=0.5)
    assert a1.median_minutes == pytest.approx(40.0, abs=0.1)  # 3 of 4 is the likeliest count (42 %)


def test_a_booked_visitor_not_yet_here_after_the_slot_start_is_likelier_a_no_show() -> None:
    # Lateness N(0, 5 min), 10 % no-shows; the slot started 5 minutes ago (1 SD): P(arrival > now)
    # = 15.9 %, so the chance they still come is 0.9·0.159 / (0.9·0.159 + 0.1) = 58.8 %, and at once-ish.
    e = ExpectedArrival("a", NOW - 5 * MIN, show_probability=0.9, spread_minutes=5.0)
    snap = snapshot([], [CounterState("1", ("a",))], expected=(e,))
    sim = estimate_module._Simulation(snap, 20_000, np.random.default_rng(1))
    arrive = sim._booked_arrivals()[:, 0]
    came = np.isfinite(arrive)
    assert came.mean() == pytest.approx(0.9 * 0.1587 / (0.9 * 0.1587 + 0.1), abs=0.01)
    # Given they come, the lateness beyond 1 SD: E[Z | Z > 1] = 1.525 SDs after the slot start.
    assert arrive[came].min() >= 0
    assert arrive[came].mean() == pytest.approx(1.525 * 5.0 - 5.0, abs=0.15)


def test_a_held_ticket_is_called_in_its_place_when_its_card_is_ready() -> None:
    model = ServiceModel.learn([A, PICKUP], settings=LearningSettings(prior_cv=0.001, walk_up_prior_minutes=0.0))
    held = WaitingTicket("P1", "pickup", 0, 1, 1, NOW - MIN, prep_pending=True, task="7")
    others = [ticket("P2", "pickup", 2), ticket("P3", "pickup", 3), ticket("P4", "pickup", 4)]
    # Somebody has been preparing P1's card for 6 of its 15 minutes: ready at 9.
    work = BackOffice(1, (BackOfficeTask("7", "prepare", "pickup", NOW - 7 * MIN, claimed_at=NOW - 6 * MIN,
                                         ticket="P1"),))
    snap = dataclasses.replace(snapshot([held, *others], [CounterState("1", ("pickup",))], model=model),
                               back_office=work)
    # P2 at 0; P1's card is ready at 9, and at 10 P1 is first in line again: before P3.
    assert medians(snap) == pytest.approx({"P2": 0.0, "P1": 10.0, "P3": 20.0, "P4": 30.0}, abs=0.1)
    # Nobody on back-office work: the card is never ready today.
    idle = dataclasses.replace(snap, back_office=BackOffice(0))
    assert medians(idle)["P1"] is None


def _five_pickups(model: ServiceModel, counters: int = 2) -> OfficeSnapshot:
    """Five same-day pickups issued together, each held for its card; one back-office person, free."""
    held = [WaitingTicket(f"P{i}", "pickup", 0, i, i, NOW, prep_pending=True, task=str(i)) for i in range(1, 6)]
    tasks = tuple(BackOfficeTask(str(i), "prepare", "pickup", NOW, ticket=f"P{i}") for i in range(1, 6))
    snap = snapshot(held, [CounterState(str(c), ("pickup",)) for c in range(1, counters + 1)], model=model)
    return dataclasses.replace(snap, back_office=BackOffice(1, tasks, ("pickup",)))


def test_five_same_day_pickups_and_one_back_office_person() -> None:
    # The test: the fifth's estimate includes the four preparations before theirs.
    fixed = ServiceModel.learn([PICKUP], settings=LearningSettings(prior_cv=0.001, walk_up_prior_minutes=0.0))
    forecast = estimate_waits(_five_pickups(fixed))
    assert [forecast.ticket(f"P{i}").median_minutes for i in range(1, 6)] == pytest.approx([15, 30, 45, 60, 75], abs=0.1)
    # A ticket issued now waits for the five cards before its own and then its own: 6 × 15.
    assert forecast.procedure("pickup").median_minutes == pytest.approx(90.0, abs=0.1)
    assert forecast.procedure("pickup").waiting == 5

    # With the priors as configured (15 min, CV 0.8, the learned mean itself uncertain), the
    # fifth card is ready after five lognormal preparations: 75 min on average, the first 15;
    # two counters are free long before, so the call is the card's readiness. A sum of
    # lognormals has its median below its mean, and the range spans the four cards before.
    priors = ServiceModel.learn([PICKUP])
    forecast = estimate_waits(_five_pickups(priors), runs=4000)
    first, fifth = forecast.ticket("P1"), forecast.ticket("P5")
    assert first.mean_minutes == pytest.approx(15.0, rel=0.05)
    assert fifth.mean_minutes == pytest.approx(75.0, rel=0.05)
    assert fifth.low_minutes is not None and fifth.high_minutes is not None and fifth.median_minutes is not None
    assert fifth.low_minutes < 60 < fifth.median_minutes < 75 < fifth.high_minutes
    # Counter time alone (nobody held) would have said 20 min for the fifth with two counters.
    ignoring = dataclasses.replace(_five_pickups(fixed), waiting=tuple(
        dataclasses.replace(t, prep_pending=False) for t in _five_pickups(fixed).waiting))
    assert estimate_waits(ignoring).ticket("P5").median_minutes == pytest.approx(20.0, abs=0.1)


def _back_office_with(people: int, by_hour: dict[str, int] | None = None) -> tuple[object, object]:
    """An office planning ``people`` on back-office work, and its live state at 11:00 (Asia/Tokyo, a Tuesday):
    five pickups held for their cards, one of them being prepared by "sato"; "suzuki" is between tasks."""
    from pathlib import Path

    from queue_server.config import parse_config
    from queue_server.domain.state import OfficeState

    back = {"people": people, **({"people_by_hour": by_hour} if by_hour else {})}
    config = parse_config({"offices": [{
        "id": "o", "name": "o", "hours": {"week": {"tue": "08:30-17:15"}}, "back_office": back,
        "procedures": [{"id": "pickup", "name": "カード交付", "number": {"prefix": "P"}, "service_minutes": 10,
                        "stages": ["prepare"], "prep_minutes": 15}],
        "counters": [{"id": "1", "procedures": ["pickup"]}],
    }]}, Path("o.toml"))
    state = OfficeState(office="o", seq=0, day="20261124", calling_order=PTW)
    for i in range(1, 6):
        state.waiting[f"P{i}"] = {"number": f"P{i}", "procedure": "pickup", "state": "waiting", "seq": i, "order": i,
                                  "priority": 0, "issued_at": NOW, "prep": "pending", "task": str(i)}
        state.tasks[str(i)] = {"id": str(i), "kind": "prepare", "procedure": "pickup", "state": "open",
                               "created_at": NOW, "ticket": f"P{i}"}
    state.tasks["1"].update(state="claimed", claimed_by="sato", claimed_at=NOW)
    return config, state


def test_the_back_office_is_planned_with_the_people_on_duty_not_only_those_claiming_now() -> None:
    import datetime as dt

    from queue_server.estimates import back_office_view

    eleven = dt.datetime(2026, 11, 24, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    config, state = _back_office_with(2)
    # Two planned, one claiming a card now, the other between two tasks: the estimate plans with two
    # (it used to count only the one claiming).
    back = back_office_view(config.offices["o"], state, [], config, eleven)
    assert back.people == 2 and back.off_duty == ()
    fixed = ServiceModel.learn([PICKUP], settings=LearningSettings(prior_cv=0.001, walk_up_prior_minutes=0.0))
    snap = dataclasses.replace(_five_pickups(fixed), back_office=dataclasses.replace(
        back, tasks=tuple(dataclasses.replace(t, claimed_at=None) for t in back.tasks)))
    # Two people, 15 minutes a card: ready at 15, 15, 30, 30, 45 (one person: 15, 30, … 75).
    assert medians(snap) == pytest.approx({"P1": 15.0, "P2": 15.0, "P3": 30.0, "P4": 30.0, "P5": 45.0}, abs=0.1)

    # One planned, but two active: the one claiming and one who finished a card 10 minutes ago.
    config, state = _back_office_with(1)
    recent = [{"kind": "prepare", "procedure": "pickup", "claimed_at": NOW - 25 * MIN, "done_at":
               int(eleven.timestamp() * 1000) - 10 * MIN, "by": "suzuki"}]
    assert back_office_view(config.offices["o"], state, [], config, eleven, recent).people == 2
    # Finished 20 minutes ago: no longer a sign of being on back-office duty.
    recent[0]["done_at"] -= 10 * MIN
    assert back_office_view(config.offices["o"], state, [], config, eleven, recent).people == 1


def test_an_hour_planned_with_fewer_back_office_people_slows_the_cards() -> None:
    import datetime as dt

    from queue_server.estimates import back_office_view

    tokyo = dt.timezone(dt.timedelta(hours=9))
    at_1130 = dt.datetime(2026, 11, 24, 11, 30, tzinfo=tokyo)
    config, state = _back_office_with(2, {"12": 0})
    back = back_office_view(config.offices["o"], state, [], config, at_1130)
    noon = int(dt.datetime(2026, 11, 24, 12, 0, tzinfo=tokyo).timestamp() * 1000)
    assert back.people == 2 and back.off_duty[0] == (noon, noon + 60 * MIN, 0)
    fixed = ServiceModel.learn([PICKUP], settings=LearningSettings(prior_cv=0.001, walk_up_prior_minutes=0.0))
    # That hour moved to 25–85 minutes from now: two cards at 15, two more begun before it at 30;
    # the fifth waits until the hour's end and is ready at 100.
    plan = BackOffice(2, _five_pickups(fixed).back_office.tasks, ("pickup",),
                      tuple((s - noon + NOW + 25 * MIN, e - noon + NOW + 25 * MIN, n) for s, e, n in back.off_duty))
    snap = dataclasses.replace(_five_pickups(fixed), back_office=plan)
    assert medians(snap) == pytest.approx({"P1": 15.0, "P2": 15.0, "P3": 30.0, "P4": 30.0, "P5": 100.0}, abs=0.1)


def test_post_issuance_work_in_hand_delays_the_cards() -> None:
    # Two people: one 4 minutes into a 10-minute post-issuance task, one free. Open post tasks
    # come after every preparation, so only the one in hand counts.
    fixed = ServiceModel.learn([PICKUP], settings=LearningSettings(prior_cv=0.001, walk_up_prior_minutes=0.0))
    snap = _five_pickups(fixed)
    post = (BackOfficeTask("p1", "post", "pickup", NOW - 20 * MIN, claimed_at=NOW - 4 * MIN),
            BackOfficeTask("p2", "post", "pickup", NOW - 30 * MIN))
    snap = dataclasses.replace(snap, back_office=BackOffice(2, snap.back_office.tasks + post, ("pickup",)))
    # Person 1 free at 0: P1 → 15, P3 → 30 (at 15, person 2 is free since 6 with P2 → 21), …
    got = medians(snap)
    assert got == pytest.approx({"P1": 15.0, "P2": 21.0, "P3": 30.0, "P4": 36.0, "P5": 45.0}, abs=0.1)


def test_a_booked_pickup_whose_card_is_not_ready_waits_for_it() -> None:
    # Booked for a slot in 5 minutes; their card's task (due before the slot) is still open,
    # behind a waiting visitor's (P1, held) and a ticket issued now: ready at 45.
    fixed = ServiceModel.learn([PICKUP], settings=LearningSettings(prior_cv=0.001, walk_up_prior_minutes=0.0))
    waiting = [WaitingTicket("P1", "pickup", 0, 1, 1, NOW, prep_pending=True, task="1"), ticket("P2", "pickup", 2)]
    tasks = (BackOfficeTask("1", "prepare", "pickup", NOW, ticket="P1"),
             BackOfficeTask("b", "prepare", "pickup", NOW - 600 * MIN, due_at=NOW - 25 * MIN))
    coming = ExpectedArrival("pickup", NOW + 5 * MIN, show_probability=1.0, spread_minutes=0.0, task="b")
    busy = CounterState("1", ("pickup",), serving="pickup", called_at=NOW, started_at=NOW - 6 * MIN)
    snap = dataclasses.replace(snapshot(waiting, [busy], model=fixed, expected=(coming,)),
                               back_office=BackOffice(1, tasks, ("pickup",)))
    # P2 at 4 (till 14); P1's card at 15: called then. A ticket issued now: card at 30.
    assert medians(snap) == pytest.approx({"P2": 4.0, "P1": 15.0}, abs=0.1)
    assert estimate_waits(snap).procedure("pickup").median_minutes == pytest.approx(30.0, abs=0.1)
    # Their card done already: they come at 5, have the precedence from the slot's start and
    # are called at 14, before P1 (ready at 15 anyway) — P1 at 24.
    done = dataclasses.replace(snap, expected=(dataclasses.replace(coming, task=None),),
                               back_office=BackOffice(1, tasks[:1], ("pickup",)))
    assert medians(done) == pytest.approx({"P2": 4.0, "P1": 24.0}, abs=0.1)


def test_walk_ins_to_come_wait_for_their_cards_too() -> None:
    # Counter procedure order, the counter prefers pickups; 12 walk-in pickups an hour, each card
    # 15 minutes for the one back-office person. A1 waits for the counter's next call at 10: no
    # walk-in's card can be ready by then, so A1 is called at 10 in every future (without cards,
    # a pickup arriving in those 10 minutes would go first: e⁻² = 13.5 % of futures call A1 then).
    fixed = ServiceModel.learn([A, PICKUP], settings=LearningSettings(prior_cv=0.001, walk_up_prior_minutes=0.0))
    busy = CounterState("1", ("pickup", "a"), serving="a", called_at=NOW, started_at=NOW)
    snap = snapshot([ticket("A1", "a", 1)], [busy], model=fixed, order=CallingOrder.COUNTER_PROCEDURE_ORDER,
                    closing_in=120)
    snap = dataclasses.replace(snap, walk_ins_per_hour={"pickup": 12.0}, back_office=BackOffice(1, (), ("pickup",)))
    a1 = estimate_waits(snap, runs=2000).ticket("A1")
    assert (a1.low_minutes, a1.median_minutes, a1.high_minutes) == pytest.approx((10.0, 10.0, 10.0), abs=0.05)
    no_cards = dataclasses.replace(snap, back_office=BackOffice())
    assert estimate_waits(no_cards, runs=2000).ticket("A1").high_minutes > 10.5
    # One person, first come first served: each card at least 15 minutes after the one before
    # and after its own walk-in's arrival.
    sim = estimate_module._Simulation(snap, 500, np.random.default_rng(3))
    arrive = sim._walk_in_arrivals()
    finish, ready = sim._play_back_office(arrive)
    cards = ready[0]
    assert cards is not None
    came = np.isfinite(arrive[0])
    assert np.all(cards[came] >= arrive[0][came] + 15 - 0.1)
    both = came[:, 1:] & came[:, :-1]
    gaps = np.where(came, cards, 0.0)
    assert np.all(np.diff(gaps, axis=1)[both] >= 15 - 0.1)
    # The phantom (a pickup issued now) is first in line for the back office: ready at 15.
    assert np.allclose(finish["now:pickup"], 15.0, atol=0.1)


def test_the_back_office_takes_walk_ins_cards_before_other_work_once_they_exist() -> None:
    # One person; a pickup issued now (its card first), an open post-issuance task, and walk-in
    # pickups to come at minutes 5 and 40. 15 minutes a card, 10 a post task.
    fixed = ServiceModel.learn([A, PICKUP], settings=LearningSettings(prior_cv=1e-6, prior_weight=1e12,
                                                                       walk_up_prior_minutes=0.0))
    post = BackOfficeTask("9", "post", "pickup", NOW - 30 * MIN)
    snap = snapshot([], [CounterState("1", ("pickup",))], model=fixed, order=CallingOrder.COUNTER_PROCEDURE_ORDER)
    snap = dataclasses.replace(snap, walk_ins_per_hour={"pickup": 6.0}, back_office=BackOffice(1, (post,), ("pickup",)))
    sim = estimate_module._Simulation(snap, 3, np.random.default_rng(0))
    walk_ins = [np.array([[5.0, 40.0, np.inf]] * 3)]
    finish, ready = sim._play_back_office(walk_ins)
    # 0–15 the card issued now; 15–30 the first walk-in's (there since 5); 30–40 the post task
    # (the second walk-in comes at 40); 40–55 the second walk-in's card.
    assert np.allclose(finish["now:pickup"], 15.0) and np.allclose(finish["9"], 40.0)
    assert ready[0] is not None
    assert np.allclose(ready[0][:, :2], [30.0, 55.0]) and np.all(np.isinf(ready[0][:, 2]))


def test_the_back_office_takes_two_procedures_walk_ins_cards_in_the_order_they_came() -> None:
    # Two procedures whose cards the one back-office person prepares, 15 minutes each: walk-in
    # pickups at minutes 5 and 40, a renewal at 20; their two streams merge into arrival order.
    renew = dataclasses.replace(PICKUP, id="renew", name="更新", number=NumberFormat(prefix="R"))
    fixed = ServiceModel.learn([PICKUP, renew], settings=LearningSettings(prior_cv=1e-6, prior_weight=1e12,
                                                                           walk_up_prior_minutes=0.0))
    post = BackOfficeTask("9", "post", "pickup", NOW - 30 * MIN)
    snap = snapshot([], [CounterState("1", ("pickup", "renew"))], model=fixed, order=CallingOrder.COUNTER_PROCEDURE_ORDER)
    snap = dataclasses.replace(snap, walk_ins_per_hour={"pickup": 6.0, "renew": 6.0},
                               back_office=BackOffice(1, (post,), ("pickup", "renew")))
    sim = estimate_module._Simulation(snap, 3, np.random.default_rng(0))
    assert [sim.procedures[qi] for (qi, _), _ in sim.streams] == ["pickup", "renew"]
    finish, ready = sim._play_back_office([np.array([[5.0, 40.0, np.inf]] * 3), np.array([[20.0, np.inf]] * 3)])
    # 0–15 and 15–30 the cards of a pickup and a renewal issued now; then the walk-ins' cards as they
    # came: the pickup of 5 (30–45), the renewal of 20 (45–60), the pickup of 40 (60–75); the post task last.
    assert np.allclose(finish["now:pickup"], 15.0) and np.allclose(finish["now:renew"], 30.0)
    assert ready[0] is not None and ready[1] is not None
    assert np.allclose(ready[0][:, :2], [45.0, 75.0]) and np.all(np.isinf(ready[0][:, 2]))
    assert np.allclose(ready[1][:, 0], 60.0) and np.all(np.isinf(ready[1][:, 1]))
    assert np.allclose(finish["9"], 85.0)
