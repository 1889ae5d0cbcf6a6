"""How good is the wait estimate? Simulated office days against realised waits.

Each day (08:30–17:15) is played with the real calling policy (``policy.choose_next``):
Poisson walk-ins with an hourly profile peaking mid-morning and early afternoon, booked
visitors at fixed slots (±5 min late or early, 5–10 % no-shows), lognormal visits per
procedure, counters serving different subsets, fewer counters over lunch. At every ticket
issue the estimator runs exactly as the server would: from that moment's snapshot, with the
service model learned from the day's finished visits so far and the configured priors. Its
median and 10–90 % range are compared with the ticket's realised wait (issue → call), next
to three baselines:

- ``QL``: (n+1)·mean ÷ s, n = ahead in the ticket's queue, s = open counters serving it;
- ``LES``: the wait of the last ticket of the same procedure to be called;
- ``ahead×mean÷counters``: everybody waiting in the office × mean visit ÷ open counters.

Two scenarios add the work of issues #7 and #8. ``kurume-booked``: about half of the pickups are
booked (checked in at the slot ± 5 min, 5–10 % no-shows, the booked precedence from the slot's
start, walk-ins when more than 10 min late); the extra baseline ``estimator, no bookings`` is the
same estimator told of no booked visitors to come. ``pickup-prep``: every same-day pickup waits
for its card, prepared by 1 or 2 back-office people (drawn per day) who also do the post-issuance
work after each pickup; the extra baseline ``estimator, no preparation`` is the same estimator
without the back office (tickets taken as callable at once).

    .venv/bin/python benchmarks/wait_accuracy.py --days 10 --seed 1

Prints Markdown tables; ``--workers`` spreads the days over processes (default 2).
``--compare-counter-ids`` also estimates every ticket from a model learned without the counter
ids (so with no speed factors), counts the days on which the counter ids made the estimate
worse, and shows the speed factors learned by each day's end beside the counters' true speeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from queue_server.domain.estimate import (
    DEFAULT_RUNS,
    BackOffice,
    BackOfficeTask,
    CounterState,
    ExpectedArrival,
    OfficeSnapshot,
    WaitingTicket,
    estimate_waits,
)
from queue_server.domain.model import BookedBeforeSlot, CallingOrder, NumberFormat, Procedure, Ticket, TicketState
from queue_server.domain.policy import choose_next, people_ahead, precedence_from
from queue_server.domain.service_model import BookingBehaviour, BookingOutcome, MeasuredDuration, ServiceModel, Stage

from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first

SMOKE_ARGS = ["--days", "1", "--runs", "20", "--workers", "1"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

OPEN: Final = 8 * 60 + 30  # 08:30, minutes since midnight
CLOSE: Final = 17 * 60 + 15  # 17:15
EPOCH_MS: Final = 1_800_000_000_000  # midnight of the simulated day
MS: Final = 60_000

HOURLY_PROFILE: Final = {8: 0.6, 9: 1.0, 10: 1.5, 11: 1.2, 12: 0.7, 13: 1.3, 14: 1.1, 15: 0.9, 16: 0.6, 17: 0.3}
"""Relative walk-in rate per hour: peaks mid-morning (10–11) and early afternoon (13–14)."""

SHOW_PROBABILITY: Final = 0.92
"""What the office tells the estimator about booked visitors (its long-run show rate)."""

FORGOT_FINISH: Final = 0.02
"""Share of visits whose recorded duration is inflated by a finish pressed 30–120 min late."""

ESTIMATORS: Final = ("estimator", "QL", "LES", "ahead×mean÷counters")

NO_BOOKINGS: Final = "estimator, no bookings"
"""The same estimator, told of no booked visitors still to come (issue #7's baseline)."""

NO_PREP: Final = "estimator, no preparation"
"""The same estimator without the back office: held tickets taken as callable at once (issue #8's baseline)."""

LATE_MINUTES: Final = 10
"""A booked visitor checked in more than this after the slot's start is a walk-in (``late_minutes``)."""

NO_IDS: Final = "estimator, no counter ids"
"""The same estimator with a model that never saw which counter served a visit."""


@dataclass(frozen=True)
class ProcedureSpec:
    """A procedure's true visit time and share of walk-ins, and the prior the office configured.

    ``prep`` and ``post`` (true mean, CV, configured prior) are its back-office stages, if any.
    """

    id: str
    mean: float
    cv: float
    prior: float
    share: float
    prep: tuple[float, float, float] | None = None
    post: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class CounterSpec:
    """A counter: what it serves (preference order), how fast its staff are, its lunch (minutes)."""

    id: str
    procedures: tuple[str, ...]
    speed: float = 1.0
    lunch: tuple[int, int] | None = None


@dataclass(frozen=True)
class Booking:
    """Booked slots for one procedure: every ``every`` minutes from ``first`` to ``last``, ``per_slot`` each."""

    procedure: str
    first: int
    last: int
    every: int
    per_slot: int
    priority: int = 1
    booked: bool = False  # checked in as a booked ticket (the booked precedence), not a priority class


@dataclass(frozen=True)
class Scenario:
    """One kind of office day."""

    name: str
    description: str
    procedures: tuple[ProcedureSpec, ...]
    counters: tuple[CounterSpec, ...]
    walk_ins: float
    calling_order: CallingOrder = CallingOrder.PRIORITY_THEN_WAITED
    bookings: tuple[Booking, ...] = ()
    exponential: bool = False
    flat_profile: bool = False
    walk_up: tuple[float, float] = (0.2, 1.2)
    skill_subsets: bool = True
    back_office: tuple[int, ...] = ()  # people on back-office work, one drawn per day
    booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN  # [calling] booked_before_slot


def _h(hh: int, mm: int = 0) -> int:
    return hh * 60 + mm


SCENARIOS: Final = {
    s.name: s
    for s in (
        Scenario(
            "mms",
            "plain M/M/4: one procedure, exponential visits of 10 min, flat Poisson arrivals (ρ = 0.9), no lunch",
            (ProcedureSpec("pickup", 10.0, 1.0, 10.0, 1.0),),
            tuple(CounterSpec(str(i), ("pickup",)) for i in range(1, 5)),
            walk_ins=0.9 * 4 / 10.0 * (CLOSE - OPEN),
            exponential=True,
            flat_profile=True,
            walk_up=(0.0, 0.0),
            skill_subsets=False,
        ),
        Scenario(
            "seto",
            "Seto-like, 6 counters: application/pickup/e-cert/PIN/other in subsets, 3 staggered lunches, "
            "booked pickups (priority) every 30 min",
            (
                ProcedureSpec("application", 20.0, 0.8, 15.0, 0.35),
                ProcedureSpec("pickup", 10.0, 0.6, 10.0, 0.25),
                ProcedureSpec("ecert", 12.0, 1.0, 10.0, 0.20),
                ProcedureSpec("pin", 8.0, 1.2, 10.0, 0.10),
                ProcedureSpec("other", 15.0, 1.5, 15.0, 0.10),
            ),
            (
                CounterSpec("1", ("application",)),
                CounterSpec("2", ("application", "other"), 1.1, (_h(11, 30), _h(12, 30))),
                CounterSpec("3", ("pickup",)),
                CounterSpec("4", ("pickup", "ecert"), 1.0, (_h(12), _h(13))),
                CounterSpec("5", ("ecert", "pin")),
                CounterSpec("6", ("pin", "other", "application"), 1.2, (_h(12, 30), _h(13, 30))),
            ),
            walk_ins=150,
            bookings=(Booking("pickup", _h(9), _h(16, 30), 30, 2),),
        ),
        Scenario(
            "kurume",
            "Kurume-like, 8 counters, pickup-heavy with booked pickups every 15 min, "
            "counter_procedure_order, 4 counters take lunch",
            (
                ProcedureSpec("pickup", 10.0, 0.5, 10.0, 0.55),
                ProcedureSpec("application", 25.0, 0.8, 20.0, 0.20),
                ProcedureSpec("ecert", 12.0, 1.0, 12.0, 0.15),
                ProcedureSpec("other", 15.0, 1.5, 15.0, 0.10),
            ),
            (
                CounterSpec("1", ("pickup",), 1.0, (_h(11, 45), _h(12, 45))),
                CounterSpec("2", ("pickup",), 0.9, (_h(11, 45), _h(12, 45))),
                CounterSpec("3", ("pickup",)),
                CounterSpec("4", ("pickup", "ecert")),
                CounterSpec("5", ("ecert", "pickup")),
                CounterSpec("6", ("application",), 1.0, (_h(12, 30), _h(13, 30))),
                CounterSpec("7", ("application", "other"), 1.15),
                CounterSpec("8", ("other", "ecert", "application"), 1.0, (_h(12, 30), _h(13, 30))),
            ),
            walk_ins=240,
            calling_order=CallingOrder.COUNTER_PROCEDURE_ORDER,
            bookings=(Booking("pickup", _h(9), _h(16, 45), 15, 2),),
        ),
        Scenario(
            "branch",
            "small office, 3 counters in subsets, one lunch",
            (
                ProcedureSpec("application", 18.0, 0.7, 20.0, 0.4),
                ProcedureSpec("pickup", 10.0, 0.5, 10.0, 0.35),
                ProcedureSpec("ecert", 10.0, 1.2, 10.0, 0.25),
            ),
            (
                CounterSpec("1", ("application",)),
                CounterSpec("2", ("pickup", "ecert")),
                CounterSpec("3", ("ecert", "application", "pickup"), 1.0, (_h(12), _h(13))),
            ),
            walk_ins=75,
        ),
        Scenario(
            "kurume-booked",
            "Kurume-like, 7 counters, counter_procedure_order, about half of the pickups booked "
            "(2 every 15 min, booked precedence from the slot's start), pickup counters busy (ρ ≈ 0.9)",
            (
                ProcedureSpec("pickup", 10.0, 0.5, 10.0, 0.40),
                ProcedureSpec("application", 25.0, 0.8, 20.0, 0.28),
                ProcedureSpec("ecert", 12.0, 1.0, 12.0, 0.19),
                ProcedureSpec("other", 15.0, 1.5, 15.0, 0.13),
            ),
            (
                CounterSpec("1", ("pickup",), 1.0, (_h(11, 45), _h(12, 45))),
                CounterSpec("2", ("pickup",), 0.9, (_h(12, 45), _h(13, 45))),
                CounterSpec("3", ("pickup", "ecert")),
                CounterSpec("4", ("ecert", "pickup")),
                CounterSpec("5", ("application",), 1.0, (_h(12, 30), _h(13, 30))),
                CounterSpec("6", ("application", "other"), 1.15),
                CounterSpec("7", ("other", "ecert", "application"), 1.0, (_h(11, 30), _h(12, 30))),
            ),
            walk_ins=175,
            calling_order=CallingOrder.COUNTER_PROCEDURE_ORDER,
            bookings=(Booking("pickup", _h(9), _h(16, 45), 15, 2, priority=0, booked=True),),
        ),
        Scenario(
            "pickup-prep",
            "small office, 3 counters; every same-day pickup waits for its card (prep 16 min, CV 0.5; "
            "prior 15), 1–2 back-office people, post-issuance work (10 min) after each pickup",
            (
                ProcedureSpec("application", 18.0, 0.7, 20.0, 0.4),
                ProcedureSpec("pickup", 10.0, 0.5, 10.0, 0.35, prep=(16.0, 0.5, 15.0), post=(10.0, 0.5, 10.0)),
                ProcedureSpec("ecert", 10.0, 1.2, 10.0, 0.25),
            ),
            (
                CounterSpec("1", ("application",)),
                CounterSpec("2", ("pickup", "ecert")),
                CounterSpec("3", ("ecert", "application", "pickup"), 1.0, (_h(12), _h(13))),
            ),
            walk_ins=75,
            back_office=(1, 2),
        ),
    )
}

# kurume-booked under the other two booked_before_slot rules: does the estimator model each as well?
for _rule, _name, _what in ((BookedBeforeSlot.AT_CHECK_IN, "kurume-at-check-in", "from the check-in"),
                            (BookedBeforeSlot.KEEP_FOR_SLOT, "kurume-kept", "kept for the slot: before it starts "
                             "called only when no walk-in waits; from its start")):
    SCENARIOS[_name] = dataclasses.replace(
        SCENARIOS["kurume-booked"], name=_name, booked_before_slot=_rule,
        description=SCENARIOS["kurume-booked"].description.replace("from the slot's start", _what))


@dataclass
class CounterRun:
    """A counter during the simulated day."""

    spec: CounterSpec
    busy_until: float = -math.inf
    ticket: Ticket | None = None
    called: float = 0.0
    started: float = 0.0

    def on_lunch(self, t: float) -> bool:
        """Whether the counter takes no visitor at ``t``."""
        return self.spec.lunch is not None and self.spec.lunch[0] <= t < self.spec.lunch[1]


@dataclass
class Prediction:
    """One issued ticket: what each estimator said at issue, and what happened."""

    procedure: str
    issued: float
    point: dict[str, float]
    low: float
    high: float
    actual: float = math.nan
    booked: bool = False


@dataclass
class DayResult:
    """One simulated day's predictions and the estimator's run times."""

    scenario: str
    predictions: list[Prediction] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    factors: dict[str, float] = field(default_factory=dict)  # counter → speed factor learned by the day's end


def _lognormal(rng: random.Random, mean: float, cv: float) -> float:
    """A lognormal draw with the given mean and CV."""
    sigma = math.sqrt(math.log1p(cv * cv))
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def _arrivals(sc: Scenario, rng: random.Random) -> list[tuple[float, str, int, int | None]]:
    """The day's arrivals: (minute, procedure, priority, booked slot or None), sorted by time."""
    out: list[tuple[float, str, int, int | None]] = []
    hours = range(OPEN // 60, CLOSE // 60 + 1)
    weight = {h: (1.0 if sc.flat_profile else HOURLY_PROFILE[h]) for h in hours}
    span = {h: max(0, min(CLOSE, (h + 1) * 60) - max(OPEN, h * 60)) for h in hours}
    per_minute = sc.walk_ins / sum(weight[h] * span[h] for h in hours)
    shares = [p.share for p in sc.procedures]
    for h in hours:
        start = max(OPEN, h * 60)
        t = float(start)
        while True:  # Poisson process within the hour
            t += rng.expovariate(per_minute * weight[h])
            if t >= start + span[h]:
                break
            p = rng.choices(sc.procedures, shares)[0].id
            out.append((t, p, 0, None))
    no_show = rng.uniform(0.05, 0.10)
    for b in sc.bookings:
        for slot in range(b.first, b.last + 1, b.every):
            for _ in range(b.per_slot):
                if rng.random() >= no_show:
                    out.append((slot + rng.uniform(-5.0, 5.0), b.procedure, b.priority, slot))
    out.sort()
    return out


def simulate_day(scenario: str, seed: int, runs: int, compare_ids: bool = False) -> DayResult:
    """Play one office day and score every ticket's estimate at issue."""
    sc = SCENARIOS[scenario]
    rng = random.Random(seed)
    specs = {p.id: p for p in sc.procedures}
    procedures = [Procedure(p.id, p.id, NumberFormat(), p.prior, p.prep[2] if p.prep else 0.0,
                            p.post[2] if p.post else 0.0) for p in sc.procedures]
    prepared = tuple(p.id for p in sc.procedures if p.prep)
    counters = [CounterRun(c) for c in sc.counters]
    arrivals = _arrivals(sc, rng)
    booking_of = {b.procedure: b for b in sc.bookings}
    bookings = sorted((slot, b) for b in sc.bookings for slot in range(b.first, b.last + 1, b.every) for _ in range(b.per_slot))
    arrived_slots: dict[int, int] = {}
    outcomes: list[BookingOutcome] = []  # today's booked visitors so far: lateness, or no-show once released
    queues: dict[str, list[Ticket]] = {p.id: [] for p in sc.procedures}
    records: list[MeasuredDuration] = []
    pending_records: list[tuple[float, int, MeasuredDuration]] = []  # heap: (minute it becomes known, tie, record)
    last_wait: dict[str, float] = {}
    walk_in_times: dict[str, list[float]] = {p.id: [] for p in sc.procedures}
    issued: dict[str, Prediction] = {}
    result = DayResult(scenario)
    baseline_cache: tuple[int, ServiceModel] | None = None
    # The back office: people's free times, open tasks (id → task), who holds which task.
    people = rng.choice(sc.back_office) if sc.back_office else 0
    person_free = [0.0] * people
    person_task: list[BackOfficeTask | None] = [None] * people
    open_tasks: dict[str, BackOfficeTask] = {}
    held: dict[str, str] = {}  # ticket number → its preparation task id
    task_seq = 0

    events: list[tuple[float, int, str, int]] = []  # (minute, tie, kind, index)
    for i, a in enumerate(arrivals):
        heapq.heappush(events, (a[0], 1, "arrive", i))
    for ci, c in enumerate(counters):
        if c.spec.lunch is not None:
            heapq.heappush(events, (float(c.spec.lunch[1]), 0, "free", ci))

    def callable_queues() -> dict[str, list[Ticket]]:
        return {p: [w for w in q if w.number not in held] for p, q in queues.items()} if held else queues

    def try_call(ci: int, t: float) -> None:
        c = counters[ci]
        if c.busy_until > t or c.on_lunch(t):
            return
        chosen = choose_next(callable_queues(), c.spec.procedures, sc.calling_order, _ms(t), sc.booked_before_slot)
        if chosen is None:
            c.ticket = None
            return
        queues[chosen.procedure].remove(chosen)
        spec = specs[chosen.procedure]
        walk = rng.uniform(*sc.walk_up)
        base = rng.expovariate(1 / spec.mean) if sc.exponential else _lognormal(rng, spec.mean, spec.cv)
        visit = base * c.spec.speed
        c.ticket, c.called, c.started, c.busy_until = chosen, t, t + walk, t + walk + visit
        recorded = visit + (rng.uniform(30, 120) if rng.random() < FORGOT_FINISH else 0.0)
        walked = MeasuredDuration(chosen.procedure, Stage.WALK_UP, walk, c.spec.id)
        served = MeasuredDuration(chosen.procedure, Stage.SERVICE, recorded, c.spec.id)
        heapq.heappush(pending_records, (t + walk, chosen.seq * 2, walked))
        heapq.heappush(pending_records, (t + walk + recorded, chosen.seq * 2 + 1, served))
        issued[chosen.number].actual = t - issued[chosen.number].issued
        last_wait[chosen.procedure] = t - issued[chosen.number].issued
        heapq.heappush(events, (c.busy_until, 0, "free", ci))
        if spec.post is not None and people:  # the post-issuance task appears when the visit ends
            heapq.heappush(events, (c.busy_until, 0, "post", list(specs).index(chosen.procedure)))

    def work_key(task: BackOfficeTask) -> tuple[int, float, int]:
        if task.kind == "post":
            return 2, float(task.created_at), int(task.id)
        return 0, float(task.line_score or 0.0), int(task.id)

    def assign(t: float) -> None:
        """Every free person takes the first open task in the panel's order."""
        for k in range(people):
            if person_task[k] is not None or not open_tasks:
                continue
            task = min(open_tasks.values(), key=work_key)
            del open_tasks[task.id]
            kind = specs[task.procedure].prep if task.kind == "prepare" else specs[task.procedure].post
            assert kind is not None
            minutes = _lognormal(rng, kind[0], kind[1])
            person_task[k] = dataclasses.replace(task, claimed_at=_ms(t))
            person_free[k] = t + minutes
            heapq.heappush(events, (t + minutes, 0, "task", k))

    def new_task(kind: str, procedure: str, t: float, ticket: Ticket | None = None) -> None:
        nonlocal task_seq
        task_seq += 1
        score = float(ticket.order) if ticket is not None else None  # waiting visitors' cards in line order
        open_tasks[str(task_seq)] = BackOfficeTask(str(task_seq), kind, procedure, _ms(t),  # type: ignore[arg-type]
                                                   ticket=ticket.number if ticket else None, line_score=score)
        if ticket is not None:
            held[ticket.number] = str(task_seq)
        assign(t)

    seq = 0
    while events:
        t, tie, kind, idx = heapq.heappop(events)
        if kind == "free":
            try_call(idx, t)
            continue
        if kind == "post":
            new_task("post", list(specs)[idx], t)
            continue
        if kind == "task":
            done = person_task[idx]
            assert done is not None and done.claimed_at is not None
            person_task[idx] = None
            stage = Stage.PREP if done.kind == "prepare" else Stage.POST
            records.append(MeasuredDuration(done.procedure, stage, t - (done.claimed_at - EPOCH_MS) / MS))
            if done.ticket is not None:
                held.pop(done.ticket, None)  # the card is ready: callable in its place
                for ci, c in enumerate(counters):
                    if done.procedure in c.spec.procedures:
                        try_call(ci, t)
            assign(t)
            continue
        _, procedure, priority, slot = arrivals[idx]
        booked_slot = slot is not None and procedure in booking_of and booking_of[procedure].booked
        if slot is not None:
            arrived_slots[slot] = arrived_slots.get(slot, 0) + 1
            if booked_slot:
                outcomes.append(BookingOutcome(t - slot))
        seq += 1
        if slot is None:
            walk_in_times[procedure].append(t)
        late = booked_slot and t > slot + LATE_MINUTES  # type: ignore[operator]
        ticket = Ticket(f"{procedure[0].upper()}{seq:03d}", procedure, TicketState.WAITING, seq, seq, _ms(t), priority,
                        slot_start=_ms(slot) if booked_slot else None, booked=booked_slot and not late, late=late)
        queues[procedure].append(ticket)
        if procedure in prepared and people and not booked_slot:
            new_task("prepare", procedure, t, ticket)  # a same-day pickup: held until its card is ready

        # What the server knows now: finished visits, who is where, bookings still to come.
        while pending_records and pending_records[0][0] <= t:
            records.append(heapq.heappop(pending_records)[2])
        ongoing = [
            MeasuredDuration(c.ticket.procedure, Stage.SERVICE, t - c.started, c.spec.id, ongoing=True)
            for c in counters
            if c.ticket is not None and c.started <= t < c.busy_until
        ]
        model = ServiceModel.learn(procedures, records + ongoing)
        # The yardsticks get the textbook mean: finished visits only (and the same priors).
        if baseline_cache is None or baseline_cache[0] != len(records):
            baseline_cache = (len(records), ServiceModel.learn(procedures, records))
        released = [BookingOutcome(None)] * _released(bookings, arrived_slots, t)
        behaviour = BookingBehaviour.learn(outcomes + released)
        waiting = tuple(dataclasses.replace(WaitingTicket.from_ticket(w), prep_pending=w.number in held,
                                            task=held.get(w.number),
                                            precedence_from=precedence_from(w, sc.booked_before_slot))
                        for q in queues.values() for w in q)
        claimed = [task for task in person_task if task is not None]
        # The people planned on duty (estimates.back_office_view): here, those the day has.
        back = BackOffice(people, tuple(claimed) + tuple(open_tasks.values()), prepared) if people else BackOffice()
        snap = OfficeSnapshot(
            now=_ms(t),
            closing=_ms(CLOSE),
            calling_order=sc.calling_order,
            waiting=waiting,
            counters=tuple(_counter_state(c, t) for c in counters),
            service=model,
            expected=_expected(bookings, arrived_slots, t, behaviour, sc.booked_before_slot),
            walk_ins_per_hour=_recent_rates(walk_in_times, t),
            back_office=back,
            booked_before_slot=sc.booked_before_slot,
        )
        started = time.perf_counter()
        forecast = estimate_waits(snap, runs=runs, seed=seq)
        result.seconds.append(time.perf_counter() - started)
        mine = forecast.ticket(ticket.number)
        # None means "no counter serves it today"; never happens here, scored as a 10-hour wait.
        point = {"estimator": _or(mine.median_minutes, 600.0)}
        if sc.bookings and any(b.booked for b in sc.bookings):
            blind = dataclasses.replace(snap, expected=())
            point[NO_BOOKINGS] = _or(estimate_waits(blind, runs=runs, seed=seq).ticket(ticket.number).median_minutes, 600.0)
        if people:
            blind = dataclasses.replace(snap, back_office=BackOffice(),
                                        waiting=tuple(dataclasses.replace(w, prep_pending=False) for w in waiting))
            point[NO_PREP] = _or(estimate_waits(blind, runs=runs, seed=seq).ticket(ticket.number).median_minutes, 600.0)
        if compare_ids:
            anonymous = [dataclasses.replace(m, counter=None) for m in records + ongoing]
            blind = dataclasses.replace(snap, service=ServiceModel.learn(procedures, anonymous))
            point[NO_IDS] = _or(estimate_waits(blind, runs=runs, seed=seq).ticket(ticket.number).median_minutes, 600.0)
            result.factors = {c.spec.id: model.counter_factor(c.spec.id) for c in counters}
        point.update(_baselines(sc, ticket, queues, counters, baseline_cache[1], last_wait, t))
        pred = Prediction(procedure, t, point, _or(mine.low_minutes, 0.0), _or(mine.high_minutes, 600.0),
                          booked=booked_slot)
        issued[ticket.number] = pred
        result.predictions.append(pred)
        for ci, c in enumerate(counters):
            if procedure in c.spec.procedures:
                try_call(ci, t)
    return result


def _or(x: float | None, default: float) -> float:
    """``x``, or ``default`` when it is None (0.0 is a real answer)."""
    return default if x is None else x


def _ms(t: float) -> int:
    """Epoch ms of minute ``t`` of the simulated day."""
    return EPOCH_MS + round(t * MS)


def _counter_state(c: CounterRun, t: float) -> CounterState:
    """The counter as the server's snapshot shows it."""
    serving = c.ticket.procedure if c.ticket is not None and c.busy_until > t else None
    return CounterState(
        id=c.spec.id,
        procedures=c.spec.procedures,
        serving=serving,
        called_at=_ms(c.called) if serving else None,
        started_at=_ms(c.started) if serving and c.started <= t else None,
        breaks=((_ms(c.spec.lunch[0]), _ms(c.spec.lunch[1])),) if c.spec.lunch else (),
    )


def _expected(bookings: Sequence[tuple[int, Booking]], arrived: dict[int, int], t: float,
              behaviour: BookingBehaviour, rule: BookedBeforeSlot) -> tuple[ExpectedArrival, ...]:
    """Booked visitors who have not come yet and may still come.

    Booked tickets (issue #7) as the server sends them: until the slot's end, with the learned show
    chance and lateness and the late rule. The older priority visitors at fixed slots: until 5 min
    past the slot, at the long-run show rate, within ±5 min (SD 5/√3).
    """
    seen = dict(arrived)
    out = []
    for slot, b in bookings:
        if seen.get(slot, 0) > 0:
            seen[slot] -= 1
            continue
        if b.booked and slot + b.every > t:
            out.append(ExpectedArrival(b.procedure, _ms(slot), b.priority, behaviour.show_probability,
                                       behaviour.lateness_sd, behaviour.lateness_mean, late_after_minutes=LATE_MINUTES,
                                       slot_end=_ms(slot + b.every),
                                       precedence_at_check_in=rule is BookedBeforeSlot.AT_CHECK_IN))
        elif not b.booked and slot + 5 > t:
            out.append(ExpectedArrival(b.procedure, _ms(slot), b.priority, SHOW_PROBABILITY, 5.0 / math.sqrt(3)))
    return tuple(out)


def _released(bookings: Sequence[tuple[int, Booking]], arrived: dict[int, int], t: float) -> int:
    """Booked visitors released as no-shows by ``t``: their slot ended and they never came."""
    seen = dict(arrived)
    count = 0
    for slot, b in bookings:
        if seen.get(slot, 0) > 0:
            seen[slot] -= 1
        elif b.booked and slot + b.every <= t:
            count += 1
    return count


def _recent_rates(walk_in_times: dict[str, list[float]], t: float) -> dict[str, float]:
    """Walk-ins per hour per procedure over the last hour (or since opening, at least 15 min)."""
    window = max(min(60.0, t - OPEN), 15.0)
    return {p: 60.0 * sum(1 for x in times if x > t - window) / window for p, times in walk_in_times.items()}


def _baselines(
    sc: Scenario,
    ticket: Ticket,
    queues: dict[str, list[Ticket]],
    counters: Sequence[CounterRun],
    model: ServiceModel,
    last_wait: dict[str, float],
    t: float,
) -> dict[str, float]:
    """The three yardsticks' estimates for ``ticket`` at ``t``."""
    p = ticket.procedure
    visit = {q.id: model.stage(q.id).mean_minutes + model.walk_up_minutes for q in sc.procedures}
    serving = [c for c in counters if p in c.spec.procedures]
    s = sum(1 for c in serving if not c.on_lunch(t)) or len(serving)
    # Fair to the yardsticks: a counter free for this ticket right now means no wait at all.
    if any(c.busy_until <= t and not c.on_lunch(t) for c in serving):
        return {"QL": 0.0, "LES": last_wait.get(p, 0.0), "ahead×mean÷counters": 0.0}
    n = people_ahead(ticket, queues[p], sc.calling_order, _ms(t), sc.booked_before_slot)
    ql = (n + 1) * visit[p] / s
    everyone = sum(len(q) for q in queues.values()) - 1
    weights = {q.id: q.share for q in sc.procedures}
    mean_visit = sum(visit[q] * w for q, w in weights.items()) / sum(weights.values())
    open_counters = sum(1 for c in counters if not c.on_lunch(t)) or len(counters)
    return {
        "QL": ql,
        "LES": last_wait.get(p, ql),
        "ahead×mean÷counters": everyone * mean_visit / open_counters,
    }


@dataclass(frozen=True)
class Score:
    """Accuracy of one estimator over one scenario's tickets."""

    n: int
    mae: float
    bias: float
    under10: float
    coverage: float | None
    coverage_waiting: float | None


def score(preds: Sequence[Prediction], name: str) -> Score:
    """MAE, bias (estimate − actual), share under-predicted by > 10 min, and 10–90 % coverage."""
    errors = [p.point[name] - p.actual for p in preds]
    coverage = coverage_waiting = None
    if name == "estimator":
        coverage = sum(1 for p in preds if p.low <= p.actual <= p.high) / len(preds)
        # A counter free at issue makes the range [0, 0] and trivially right; without those:
        waiting = [p for p in preds if p.high > 0]
        coverage_waiting = sum(1 for p in waiting if p.low <= p.actual <= p.high) / max(len(waiting), 1)
    return Score(
        len(preds),
        statistics.fmean(abs(e) for e in errors),
        statistics.fmean(errors),
        sum(1 for e in errors if e < -10) / len(errors),
        coverage,
        coverage_waiting,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the scenarios and print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20, help="office days per scenario (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="base seed (default 1)")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help=f"estimator runs per estimate (default {DEFAULT_RUNS})")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument("--compare-counter-ids", action="store_true",
                        help="also estimate without counter ids (twice the time) and show the learned speed factors")
    args = parser.parse_args(argv)
    names = [n for n in args.scenarios.split(",") if n]
    print_calibration()
    compare = args.compare_counter_ids

    started = time.perf_counter()
    jobs = [(n, args.seed * 1_000_003 + i * 7919 + k * 104_729, args.runs, compare)
            for k, n in enumerate(names) for i in range(args.days)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        days = list(pool.map(simulate_day, *zip(*jobs)))
    elapsed = time.perf_counter() - started

    print(f"Wait-estimate accuracy: {args.days} days per scenario, seed {args.seed}, {args.runs} runs per estimate\n")
    print("| scenario | estimator | tickets | MAE (min) | bias (min) | under by >10 min | 10–90 % coverage | coverage, range ≠ [0, 0] |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for name in names:
        preds = [p for d in days if d.scenario == name for p in d.predictions]
        extra = [e for e in (NO_BOOKINGS, NO_PREP) if preds and e in preds[0].point]
        scores = {e: score(preds, e) for e in (*ESTIMATORS, *extra)}
        for e, s in scores.items():
            cov = f"{s.coverage:.0%}" if s.coverage is not None else "—"
            cov_w = f"{s.coverage_waiting:.0%}" if s.coverage_waiting is not None else "—"
            print(f"| {name} | {e} | {s.n} | {s.mae:.1f} | {s.bias:+.1f} | {s.under10:.1%} | {cov} | {cov_w} |")
        best = min((e for e in scores if e != "estimator"), key=lambda e: scores[e].mae)
        gain = 1 - scores["estimator"].mae / scores[best].mae
        ql_ratio = scores["estimator"].mae / scores["QL"].mae
        verdicts.append((name, best, gain, ql_ratio, scores["estimator"].coverage))

    print("\n| scenario | best baseline | estimator MAE vs best baseline | estimator MAE ÷ QL MAE | coverage |")
    print("|---|---|---:|---:|---:|")
    for name, best, gain, ql_ratio, cov in verdicts:
        print(f"| {name} | {best} | {-gain:+.0%} | {ql_ratio:.2f} | {cov:.0%} |")
    _print_concerned(names, days)
    secs = sorted(s for d in days for s in d.seconds)
    print(
        f"\nEstimator time per call in these days: p50 {1000 * secs[len(secs) // 2]:.1f} ms, "
        f"p95 {1000 * secs[int(len(secs) * 0.95)]:.1f} ms, max {1000 * secs[-1]:.1f} ms "
        f"({len(secs)} calls). Wall time {elapsed:.0f} s with {args.workers} workers."
    )
    for name in names:
        d = [x for x in days if x.scenario == name]
        waits = [p.actual for x in d for p in x.predictions]
        per_day = statistics.fmean(len(x.predictions) for x in d)
        print(f"- {name}: {SCENARIOS[name].description}; {per_day:.0f} tickets/day, "
              f"mean wait {statistics.fmean(waits):.1f} min, max {max(waits):.0f} min")
    if compare:
        _print_counter_ids(names, days)


def _print_concerned(names: Sequence[str], days: Sequence[DayResult]) -> None:
    """The tickets bookings or card preparation concern: walk-in pickups, against the baseline that ignores them."""
    rows = []
    for name in names:
        preds = [p for d in days if d.scenario == name for p in d.predictions if p.procedure == "pickup" and not p.booked]
        for extra in (NO_BOOKINGS, NO_PREP):
            if preds and extra in preds[0].point:
                rows.append((name, extra, score(preds, "estimator"), score(preds, extra)))
    if not rows:
        return
    print("\n| scenario | walk-in pickups | estimator MAE / bias | baseline | its MAE / bias | under by >10 min, estimator / baseline |")
    print("|---|---:|---|---|---|---|")
    for name, extra, mine, other in rows:
        print(f"| {name} | {mine.n} | {mine.mae:.1f} / {mine.bias:+.1f} | {extra} | {other.mae:.1f} / {other.bias:+.1f} | "
              f"{mine.under10:.1%} / {other.under10:.1%} |")


def _print_counter_ids(names: Sequence[str], days: Sequence[DayResult]) -> None:
    """With against without counter ids, day by day; the learned speed factors against the true speeds."""
    print("\n| scenario | MAE with counter ids | MAE without | days worse with ids | "
          "factors of speed-1.0 counters at day's end: mean (min–max) | slower counters: true speed → mean factor |")
    print("|---|---:|---:|---:|---|---|")
    for name in names:
        d = [x for x in days if x.scenario == name]
        preds = [p for x in d for p in x.predictions]
        worse = sum(1 for x in d if score(x.predictions, "estimator").mae > score(x.predictions, NO_IDS).mae)
        specs = SCENARIOS[name].counters
        plain = [x.factors[c.id] for x in d for c in specs if c.speed == 1.0 and c.id in x.factors]
        slow = ", ".join(f"{c.id}: {c.speed:.2f} → {statistics.fmean(x.factors[c.id] for x in d):.2f}"
                         for c in specs if c.speed != 1.0)
        print(f"| {name} | {score(preds, 'estimator').mae:.2f} | {score(preds, NO_IDS).mae:.2f} | {worse} of {len(d)} | "
              f"{statistics.fmean(plain):.2f} ({min(plain):.2f}–{max(plain):.2f}) | {slow or '—'} |")


if __name__ == "__main__":
    main()
