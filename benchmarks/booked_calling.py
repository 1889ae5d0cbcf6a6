"""The cost of the booked precedence in the Lua steps: call-next and issue with booked visitors waiting.

    .venv/bin/python benchmarks/booked_calling.py
    .venv/bin/python benchmarks/booked_calling.py --waiting 1000 --booked 0 50 200 --calls 100

Call-next compares the queue head with every booked ticket whose slot has started (``D bq:``, each
rescored from its hash), and issue/check-in count people ahead the same way, so both grow with the
booked visitors waiting past their slot's start. One office, one procedure, one counter, on a private
Valkey (the store alone, no HTTP): ``--waiting`` walk-ins, then ``--booked`` booked visitors checked in
whose slot started 10 minutes ago; ``--calls`` call-next (each followed by start and finish, not
timed) and as many walk-in issues are timed. Figures are per step, as the server's caller sees them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from redis.asyncio import Redis
from stats import percentile

from queue_server.clock import Clock
from queue_server.config import Config, parse_config
from queue_server.domain.booking import new_code
from queue_server.store.bookings import Bookings
from queue_server.store.checkin import check_in
from queue_server.store.embedded import EmbeddedRedis
from queue_server.store.redis_store import QueueStore

SMOKE_ARGS = ["--waiting", "20", "--booked", "0", "5", "--calls", "5"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

MINUTE = 60_000


def office_config() -> Config:
    return parse_config({
        "server": {"always_open": True},
        "offices": [{"id": "o", "name": "office", "bookings": {"checkin_early_minutes": 60, "late_minutes": 30},
                     "procedures": [{"id": "pickup", "name": "カード交付", "number": {"range": [1, 9999], "width": 4},
                                     "booked_number": {"prefix": "Y", "width": 4}, "service_minutes": 10}],
                     "counters": [{"id": "1", "procedures": ["pickup"]}]}],
    }, Path("booked_calling.toml"))


async def scenario(redis: Redis, waiting: int, booked: int, calls: int, run: int) -> dict[str, float]:
    """Fill one office and time ``calls`` call-next and ``calls`` issues."""
    config = office_config()
    store = QueueStore(redis, config, Clock(), prefix=f"bench-booked-{run}:")
    await store.set_counter_status("o", "1", "open")
    for _ in range(waiting):
        await store.issue("o", "pickup")
    now = store.clock.now_ms()
    bookings = Bookings(store)
    key = store.office_key("o")
    for i in range(booked):
        # A booking of today whose slot began 10 minutes ago, as bookings.lua keeps it (booking a slot in
        # the past is refused, so it is written directly), checked in by the real step.
        slot_start = now - 10 * MINUTE
        code = new_code()
        await redis.hset(f"{key}bk:{i}", mapping={
            "id": i, "code": code, "procedure": "pickup", "day": store.clock.day(now),
            "slot": store.clock.local(slot_start).strftime("%H:%M"), "slot_start": slot_start,
            "slot_end": slot_start + 30 * MINUTE, "state": "booked"})
        await redis.set(f"{key}bkcode:{code}", i)
        await check_in(store, "o", await bookings.find_by_code(code, ["o"]))
    call_times: list[float] = []
    issue_times: list[float] = []
    for _ in range(calls):
        began = time.perf_counter()
        await store.call_next("o", "1")
        call_times.append(time.perf_counter() - began)
        await store.counter_op("start", "o", "1")
        await store.counter_op("finish", "o", "1")
        began = time.perf_counter()
        await store.issue("o", "pickup")
        issue_times.append(time.perf_counter() - began)
    return {"call_p50": percentile(call_times, 50) * 1000, "call_p99": percentile(call_times, 99) * 1000,
            "issue_p50": percentile(issue_times, 50) * 1000, "issue_p99": percentile(issue_times, 99) * 1000}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", type=int, default=500, help="walk-ins waiting (default 500)")
    parser.add_argument("--booked", type=int, nargs="+", default=[0, 20, 100], help="booked waiting past their slot's start")
    parser.add_argument("--calls", type=int, default=100, help="timed call-next and issues per scenario")
    args = parser.parse_args()
    print_calibration()
    with tempfile.TemporaryDirectory(prefix="madoguchi-bench-") as folder:
        valkey = EmbeddedRedis(Path(folder))
        await valkey.start()
        redis = Redis.from_url(valkey.url)
        try:
            print(f"{args.waiting} walk-ins waiting, {args.calls} calls and issues timed per row")
            print(f"{'booked':>7} {'call-next p50':>14} {'p99':>8} {'issue p50':>10} {'p99':>8}   (ms)")
            for run, booked in enumerate(args.booked):
                r = await scenario(redis, args.waiting, booked, args.calls, run)
                print(f"{booked:>7} {r['call_p50']:>14.2f} {r['call_p99']:>8.2f} {r['issue_p50']:>10.2f} {r['issue_p99']:>8.2f}")
        finally:
            await redis.aclose()
            await valkey.stop()


if __name__ == "__main__":
    asyncio.run(main())
