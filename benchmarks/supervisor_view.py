"""What the supervisor console costs the hub: building and serialising one office's ``supervisor`` view.

The view is computed once per change of an office (an event, fresh estimates) when at least one
supervisor follows it, and shared by every supervisor (``OfficeState.derived``). The office: a busy
day's waiting line (``--waiting``, default 2,000) over 3 procedures, 12 counters, 600 first calls
already counted today.

    .venv/bin/python benchmarks/supervisor_view.py --waiting 2000 --calls 200
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Final

from queue_server.domain.model import CallingOrder
from queue_server.domain.state import OfficeState
from queue_server.domain.supervision import supervisor_view
from queue_server.web.messages import dumps

from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first

SMOKE_ARGS = ["--waiting", "50", "--calls", "5"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

DAY: Final = "20261201"
MIN: Final = 60_000
START: Final = 1_800_000_000_000
PROCEDURES: Final = ("application", "pickup", "ecert")


def busy_office(waiting: int) -> OfficeState:
    """An office state with ``waiting`` tickets in line, 12 counters (8 serving) and a day's figures."""
    state = OfficeState.from_snapshot("main", {
        "seq": 0, "day": DAY, "recent": [], "paused": [], "notice": "",
        "waiting": [{"number": str(1000 + i), "procedure": PROCEDURES[i % 3], "state": "waiting", "seq": i,
                     "order": i, "priority": 0, "issued_at": START + i * 10_000, "day": DAY} for i in range(waiting)],
        "active": [{"number": str(100 + c), "procedure": PROCEDURES[c % 3], "state": "serving", "seq": 100 + c,
                    "order": 100 + c, "issued_at": START, "called_at": START + MIN, "started_at": START + 2 * MIN,
                    "day": DAY} for c in range(8)],
        "counters": [{"id": str(c), "status": "open", "staff": f"staff{c}", "since": START,
                      **({"ticket": f"{DAY}|{100 + c}"} if c < 8 else {})} for c in range(12)],
    }, CallingOrder.PRIORITY_THEN_WAITED)
    state.estimates = {"procedures": {p: {"median_minutes": 25.0, "low_minutes": 10.0, "high_minutes": 50.0}
                                      for p in PROCEDURES}}
    for i in range(600):
        key = f"{DAY}|{5000 + i}"
        state.figures.on_issued(key, PROCEDURES[i % 3], state.estimates["procedures"][PROCEDURES[i % 3]])
        state.figures.on_called(key, {"procedure": PROCEDURES[i % 3], "issued_at": START,
                                      "called_at": START + (i % 60) * MIN})
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    print_calibration()
    state = busy_office(args.waiting)
    times, size = [], 0
    for _ in range(args.calls):
        state.changed()   # as every event does: the view is built again
        began = time.perf_counter()
        body = dumps(supervisor_view(state, 30, 0.9))
        times.append((time.perf_counter() - began) * 1000)
        size = len(body.encode())
    times.sort()
    print(f"supervisor view, {args.waiting} waiting, 12 counters, 600 calls today: "
          f"p50 {statistics.median(times):.2f} ms, p95 {times[int(len(times) * 0.95)]:.2f} ms, {size:,} bytes")


if __name__ == "__main__":
    main()
