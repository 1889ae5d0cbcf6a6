"""What one wait estimate costs: p50/p95 of ``estimate_waits`` for a busy office, on one core.

The office: 300 waiting tickets over 5 procedures (a tenth with priority), 8 counters serving
different subsets, 6 of them mid-visit, 3 with a lunch break ahead, 20 booked visitors to come.
``--bookings-and-cards`` makes it the office of issues #7 and #8 as well: 60 bookings still to come
(booked precedence, learned lateness, late rule), a tenth of the waiting booked with slots still
to start, every third pickup held for its card, 2 back-office people with 30 more open tasks.

    .venv/bin/python benchmarks/estimator_cost.py --calls 200
    .venv/bin/python benchmarks/estimator_cost.py --calls 100 --against /tmp/old-tree   # A/B
    .venv/bin/python benchmarks/estimator_cost.py --learn --bookings-and-cards --against /tmp/main

``--against TREE`` (repeatable) loads another copy of the estimator from another checkout (e.g.
``git worktree add --detach /tmp/old-tree main``) and times them alternately, call by call, on the
same offices built by each tree's own ``busy_office``: on a shared machine the load then falls on
all alike, which timing them one after the other does not promise. ``--learn`` times the worker's
whole step, learning the service model from a morning's visits and then estimating.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

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
from queue_server.domain.model import CallingOrder, NumberFormat, Procedure
from queue_server.domain.service_model import MeasuredDuration, ServiceModel, Stage

from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first

SMOKE_ARGS = ["--calls", "3", "--waiting", "30", "--runs", "20"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

MIN: Final = 60_000
NOW: Final = 1_800_000_000_000 + 10 * 60 * MIN  # 10:00
PROCEDURES: Final = {"application": 20.0, "pickup": 10.0, "ecert": 12.0, "pin": 8.0, "other": 15.0}
SUBSETS: Final = (
    ("application",),
    ("application", "other"),
    ("pickup",),
    ("pickup", "ecert"),
    ("ecert", "pin"),
    ("pin", "other", "application"),
    ("pickup", "application"),
    ("ecert", "pickup", "other"),
)


def busy_office(rng: random.Random, calling_order: CallingOrder, waiting: int, counters: int) -> OfficeSnapshot:
    """A morning peak: ``waiting`` tickets, ``counters`` counters, a learned service model."""
    procedures = [Procedure(p, p, NumberFormat(), m) for p, m in PROCEDURES.items()]
    measured = [
        MeasuredDuration(p, Stage.SERVICE, rng.lognormvariate(0, 0.7) * m, str(rng.randint(1, counters)))
        for p, m in PROCEDURES.items()
        for _ in range(30)
    ]
    model = ServiceModel.learn(procedures, measured)
    names = list(PROCEDURES)
    tickets = tuple(
        WaitingTicket(f"T{i:03d}", rng.choice(names), 1 if rng.random() < 0.1 else 0, i, i, NOW - (waiting - i) * MIN // 3)
        for i in range(waiting)
    )
    desks = []
    for c in range(counters):
        served = SUBSETS[c % len(SUBSETS)]
        mid_visit = c < 6
        lunch = ((NOW + (90 + 30 * c) * MIN, NOW + (150 + 30 * c) * MIN),) if c in (1, 3, 5) else ()
        desks.append(
            CounterState(
                str(c + 1),
                served,
                serving=served[0] if mid_visit else None,
                called_at=NOW - 6 * MIN if mid_visit else None,
                started_at=NOW - 5 * MIN if mid_visit else None,
                breaks=lunch,
            )
        )
    booked = tuple(ExpectedArrival("pickup", NOW + 15 * k * MIN, priority=1) for k in range(20))
    rates = {p: 10.0 for p in names}
    return OfficeSnapshot(NOW, NOW + 435 * MIN, calling_order, tickets, tuple(desks), model, booked, walk_ins_per_hour=rates)


def bookings_and_cards(snap: OfficeSnapshot, rng: random.Random) -> OfficeSnapshot:
    """``snap`` with issue #7's bookings and #8's held tickets and back office added."""
    held, waiting, tasks = [], [], []
    pickups = 0
    for t in snap.waiting:
        if t.procedure == "pickup":
            pickups += 1
            if pickups % 3 == 0:
                held.append(t.number)
                tasks.append(BackOfficeTask(str(len(tasks) + 1), "prepare", "pickup", t.issued_at, ticket=t.number))
                t = dataclasses.replace(t, prep_pending=True, task=tasks[-1].id)
        if rng.random() < 0.1:
            t = dataclasses.replace(t, precedence_from=NOW + rng.randint(1, 60) * MIN)
        waiting.append(t)
    tasks[0] = dataclasses.replace(tasks[0], claimed_at=NOW - 4 * MIN)
    for k in range(60):
        tasks.append(BackOfficeTask(str(len(tasks) + 1), "prepare" if k % 2 else "post", "pickup", NOW - k * MIN,
                                    due_at=NOW + (30 + 7 * k) * MIN if k % 2 else None))
    expected = tuple(ExpectedArrival("pickup", NOW + (5 + 7 * k) * MIN, 0, 0.92, 3.0, 1.0, late_after_minutes=10,
                                     slot_end=NOW + (35 + 7 * k) * MIN, task=tasks[-1 - k].id if k % 2 else None)
                     for k in range(60))
    service = dataclasses.replace(snap.service, stages={
        **snap.service.stages,
        **ServiceModel.learn([Procedure("pickup", "pickup", NumberFormat(), 10.0, 15.0, 10.0)]).stages})
    return dataclasses.replace(snap, waiting=tuple(waiting), expected=expected, service=service,
                               back_office=BackOffice(2, tuple(tasks), ("pickup",)))


@dataclasses.dataclass
class Tree:
    """One checkout's estimator, office builders and model classes (loaded apart from the others)."""

    name: str
    estimate: Callable[..., Any]
    busy_office: Callable[..., Any]
    bookings_and_cards: Callable[..., Any] | None
    orders: Any
    learn: Callable[..., Any]
    measured: Callable[..., Any]
    procedure: Callable[..., Any]
    number_format: Callable[..., Any]
    service_stage: Any


def _this_tree() -> Tree:
    """The checkout this script is run from."""
    return Tree("this tree", estimate_waits, busy_office, bookings_and_cards, CallingOrder, ServiceModel.learn,
                MeasuredDuration, Procedure, NumberFormat, Stage.SERVICE)


def _load_tree(tree: Path) -> Tree:
    """The estimator of the checkout at ``tree``, loaded apart.

    The ``queue_server`` modules already imported are set aside and put back afterwards, so every
    copy stays usable in this process. The tree's own modules are put in place again around each
    of its calls (:func:`_in_place`): a module its estimator imports lazily (``estimate_loop``)
    must be its own, not this tree's.
    """
    saved = _ours()
    for name in saved:
        del sys.modules[name]
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    try:
        cost = importlib.import_module("estimator_cost")
        model = importlib.import_module("queue_server.domain.model")
        learning = importlib.import_module("queue_server.domain.service_model")
        try:
            importlib.import_module("queue_server.domain.estimate_loop")
        except ModuleNotFoundError:
            pass  # a tree from before the compiled loop
        own = _ours()
        return Tree(str(tree), _in_place(cost.estimate_waits, own), cost.busy_office, getattr(cost, "bookings_and_cards", None),
                    model.CallingOrder, _in_place(learning.ServiceModel.learn, own), learning.MeasuredDuration, model.Procedure,
                    model.NumberFormat, learning.Stage.SERVICE)
    finally:
        del sys.path[:2]
        for name in _ours():
            del sys.modules[name]
        sys.modules.update(saved)


def _ours() -> dict[str, Any]:
    """The imported modules that belong to a tree: ``queue_server`` and this script."""
    return {name: mod for name, mod in sys.modules.items() if name.split(".")[0] in ("queue_server", "estimator_cost")}


def _in_place(call: Callable[..., Any], modules: dict[str, Any]) -> Callable[..., Any]:
    """``call`` run with ``modules`` in ``sys.modules`` (a few µs a call), and the others put back."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        saved = {name: sys.modules[name] for name in modules if name in sys.modules}
        sys.modules.update(modules)
        try:
            return call(*args, **kwargs)
        finally:
            for name in modules:
                del sys.modules[name]
            sys.modules.update(saved)

    return wrapped


def _pct(times: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max of ``times``."""
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], times[-1]


VISITS_LEARNED: Final = 60
"""Finished visits per procedure the timed learning step sees (with ``--learn``), plus 6 at the counters now."""


def _learning(tree: Tree, rng: random.Random, counters: int) -> Callable[[], Any]:
    """The estimate worker's learning step for ``tree``: its ``ServiceModel.learn`` on a morning's visits."""
    procedures = [tree.procedure(p, p, tree.number_format(), m) for p, m in PROCEDURES.items()]
    measured = [tree.measured(p, tree.service_stage, rng.lognormvariate(0, 0.7) * m, str(rng.randint(1, counters)))
                for p, m in PROCEDURES.items() for _ in range(VISITS_LEARNED)]
    measured += [tree.measured(p, tree.service_stage, 5.0, str(k + 1), ongoing=True)
                 for k, p in enumerate(list(PROCEDURES)[:6])]
    return lambda: tree.learn(procedures, measured)


def main(argv: Sequence[str] | None = None) -> None:
    """Time the estimator and print p50/p95 per calling order."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=300)
    parser.add_argument("--counters", type=int, default=8)
    parser.add_argument("--runs", type=int, default=None, help="runs per estimate (default: each tree's own)")
    parser.add_argument("--against", type=Path, action="append", default=[],
                        help="another checkout whose estimator is timed alternately (A/B); may be repeated")
    parser.add_argument("--bookings-and-cards", action="store_true",
                        help="add bookings to come, booked and held tickets and a back office "
                             "(trees without them are left out)")
    parser.add_argument("--learn", action="store_true", help="time learning the service model too (learn + estimate)")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as promised
    print_calibration()  # on the core the timings run on
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, pinned to one core")
    if hasattr(os, "getloadavg"):  # other processes on the machine make the timings upper bounds
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    trees = [_this_tree(), *(_load_tree(t.resolve()) for t in args.against)]
    if args.bookings_and_cards:
        for tree in [t for t in trees if t.bookings_and_cards is None]:
            print(f"(left out: {tree.name} has no bookings and cards)")
        trees = [t for t in trees if t.bookings_and_cards is not None]
    runs = f"{args.runs}" if args.runs else "each tree's default"
    print(f"{args.waiting} waiting, {args.counters} counters, {runs} runs per estimate, {args.calls} calls, "
          f"{'learn + estimate' if args.learn else 'estimate'}{', bookings and cards' if args.bookings_and_cards else ''}\n")
    # CPU time beside the wall clock: on a shared machine it shows the build's own cost.
    print("| calling order | tree | p50 (ms) | p95 (ms) | max (ms) | CPU p50 (ms) | CPU p95 (ms) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    extra = {"runs": args.runs} if args.runs else {}
    for order in CallingOrder:
        offices, learns = [], []
        for tree in trees:
            rng = random.Random(1)
            snapshots = [tree.busy_office(rng, tree.orders(order.value), args.waiting, args.counters) for _ in range(10)]
            if args.bookings_and_cards:
                snapshots = [tree.bookings_and_cards(snap, rng) for snap in snapshots]
            tree.estimate(snapshots[0], **extra)  # warm up
            offices.append(snapshots)
            learns.append(_learning(tree, random.Random(2), args.counters) if args.learn else None)
        times: list[list[float]] = [[] for _ in trees]
        cpu_times: list[list[float]] = [[] for _ in trees]
        for i in range(args.calls):
            for k, tree in enumerate(trees):  # alternately: the same load on each
                started, cpu = time.perf_counter(), time.thread_time()
                if learns[k] is not None:
                    learns[k]()
                tree.estimate(offices[k][i % len(offices[k])], seed=i, **extra)
                times[k].append(1000 * (time.perf_counter() - started))
                cpu_times[k].append(1000 * (time.thread_time() - cpu))
        for k, tree in enumerate(trees):
            p50, p95, top = _pct(times[k])
            cpu50, cpu95, _ = _pct(cpu_times[k])
            print(f"| {order.value} | {tree.name} | {p50:.1f} | {p95:.1f} | {top:.1f} | {cpu50:.1f} | {cpu95:.1f} |")
    if hasattr(os, "getloadavg"):
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
