"""What one wait estimate costs: p50/p95 of ``estimate_waits`` for a busy office, on one core.

The office: 300 waiting tickets over 5 procedures (a tenth with priority), 8 counters serving
different subsets, 6 of them mid-visit, 3 with a lunch break ahead, 20 booked visitors to come.

    .venv/bin/python benchmarks/estimator_cost.py --calls 200
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Sequence
from typing import Final

from queue_server.domain.estimate import (
    DEFAULT_RUNS,
    CounterState,
    ExpectedArrival,
    OfficeSnapshot,
    WaitingTicket,
    estimate_waits,
)
from queue_server.domain.model import CallingOrder, NumberFormat, Procedure
from queue_server.domain.service_model import MeasuredDuration, ServiceModel, Stage

from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first

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


def main(argv: Sequence[str] | None = None) -> None:
    """Time the estimator and print p50/p95 per calling order."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=300)
    parser.add_argument("--counters", type=int, default=8)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as promised
    print_calibration()  # on the core the timings run on
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, pinned to one core")
    if hasattr(os, "getloadavg"):  # other processes on the machine make the timings upper bounds
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    print(f"{args.waiting} waiting, {args.counters} counters, {args.runs} runs per estimate, {args.calls} calls\n")
    print("| calling order | p50 (ms) | p95 (ms) | max (ms) |")
    print("|---|---:|---:|---:|")
    for order in CallingOrder:
        rng = random.Random(1)
        snapshots = [busy_office(rng, order, args.waiting, args.counters) for _ in range(10)]
        estimate_waits(snapshots[0], runs=args.runs)  # warm up
        times = []
        for i in range(args.calls):
            started = time.perf_counter()
            estimate_waits(snapshots[i % len(snapshots)], runs=args.runs, seed=i)
            times.append(1000 * (time.perf_counter() - started))
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(f"| {order.value} | {statistics.median(times):.1f} | {p95:.1f} | {times[-1]:.1f} |")
    if hasattr(os, "getloadavg"):
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
