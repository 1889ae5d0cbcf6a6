"""What the reports cost: the monthly report of one office, and a fiscal year of four offices.

A private Valkey gets a fiscal year (April 2026 – March 2027) of archive records for four offices,
about 150,000 visits (plus the back-office task records of card pickups and booking records). The
records have the shape ``lua/archive.lua`` writes; to check that, and to measure what a record
costs in memory, a day of visits (``--sample``; more than one office day if the procedure's numbers
run out) is first played through the real store steps (issue, call, start, finish, some hand-overs)
and its stream measured with MEMORY USAGE.

Timed: reading the records from Valkey, computing the figures and writing the ``.xlsx`` — as
``madoguchi report`` does — and then the same under tracemalloc for the peak of Python memory.

    flock /tmp/madoguchi-bench.lock .venv/bin/python benchmarks/report_load.py
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import random
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from redis.asyncio import Redis

from queue_server.cli import demo_config_path
from queue_server.clock import Clock
from queue_server.config import Config, load_config
from queue_server.reports import load, render
from queue_server.store.archive import Archive, month_range
from queue_server.store.embedded import EmbeddedRedis
from queue_server.store.redis_store import QueueStore

from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first

SMOKE_ARGS = ["--per-day", "2", "--sample", "250"]  # more visits than the 200 numbers of a day
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

PREFIX: Final = "bench:"
TOKYO: Final = dt.timezone(dt.timedelta(hours=9))
MINUTE: Final = 60_000
OFFICES: Final = ("honcho", "mizuno", "hatayama", "shinano")
PROCEDURES: Final = {"application": 20, "pickup": 10, "ecert": 12, "pin": 10, "other": 10}
TARGET_MONTH_S: Final = 5.0
TARGET_YEAR_S: Final = 30.0


class SetClock(Clock):
    """The office clock at ``t`` (epoch ms), set by the sample day before each step."""

    def __init__(self) -> None:
        super().__init__("Asia/Tokyo")
        self.t = 0

    def now_ms(self) -> int:
        return self.t


def four_offices() -> Config:
    """The demo configuration with four copies of its main office (Seto's main office and three branches)."""
    config = load_config(demo_config_path())
    main = config.offices["honcho"]
    offices = {o: dataclasses.replace(main, id=o, name=f"{main.name}（{o}）", short_name=o) for o in OFFICES}
    return dataclasses.replace(config, offices=offices)


async def sample_day(redis: Redis, config: Config, visits: int) -> tuple[dict[str, Any], float]:
    """Play ``visits`` visits through the real store steps; return one record and bytes per record.

    The visits fill as many office days of November as the procedure's numbers need (the demo's
    ``application`` has 200 a day: its range 100–299)."""
    clock = SetClock()
    store = QueueStore(redis, config, clock, prefix="sample:")
    number = config.offices["honcho"].procedures["application"].number
    per_day = number.last - number.first + 1
    day = dt.date(2026, 11, 5)
    t = 0
    for i in range(visits):
        if i % per_day == 0:     # the first visit of a new office day (a weekday)
            if i:
                day += dt.timedelta(days=1)
                while day.weekday() >= 5:
                    day += dt.timedelta(days=1)
            clock.t = t = int(dt.datetime.combine(day, dt.time(9, 0), TOKYO).timestamp() * 1000)
            await store.start_day("honcho")
            await store.set_counter_status("honcho", "3", "open")
            await store.set_counter_status("honcho", "6", "open")
        clock.t = t = t + 20_000
        # A procedure without back-office stages: a pickup would wait held for its card preparation.
        await store.issue("honcho", "application", estimate_minutes=20.0)
        for op in ("call_next", "start", "finish"):
            clock.t = t = t + 20_000
            if op == "call_next":
                await store.call_next("honcho", "3")
            elif op == "finish" and i % 10 == 0:
                await store.hand_over("honcho", "3", "review", "free text", category="review")
                for step in ("call_next", "start", "finish"):
                    clock.t = t = t + 20_000
                    await (store.call_next("honcho", "6") if step == "call_next"
                           else store.counter_op(step, "honcho", "6"))
            else:
                await store.counter_op(op, "honcho", "3")
    key = "sample:o:{honcho}:arch:202611"
    used = await redis.memory_usage(key, samples=0)
    (_id, fields), = await redis.xrange(key, count=1)
    return json.loads(fields[b"r"]), int(used or 0) / await redis.xlen(key)


def synthetic_year(rng: random.Random, per_office_day: int) -> dict[str, dict[str, list[str]]]:
    """office → month → record JSONs: weekday visits (more in March), task and booking records."""
    out: dict[str, dict[str, list[str]]] = {o: {} for o in OFFICES}
    day = dt.date(2026, 4, 1)
    while day < dt.date(2027, 4, 1):
        if day.weekday() < 5:
            ymd, ym = day.strftime("%Y%m%d"), day.strftime("%Y%m")
            opening = int(dt.datetime.combine(day, dt.time(9, 0), TOKYO).timestamp() * 1000)
            n = per_office_day * (13 if day.month == 3 else 10) // 10
            for office in OFFICES:
                month = out[office].setdefault(ym, [])
                for i in range(n):
                    month.extend(_visit(rng, office, ymd, opening, i))
        day += dt.timedelta(days=1)
    return out


def _visit(rng: random.Random, office: str, day: str, opening: int, i: int) -> list[str]:
    """The records of one visit: the visit, and for a pickup its prepare/post tasks (and a booking)."""
    procedure = rng.choices(list(PROCEDURES), (25, 40, 15, 10, 10))[0]
    issued = opening + rng.randrange(0, 7 * 60 * MINUTE)
    called = issued + int(rng.expovariate(1 / 15) * MINUTE)
    started = called + rng.randrange(20_000, 90_000)
    finished = started + int(rng.lognormvariate(0, 0.5) * PROCEDURES[procedure] * MINUTE)
    state = rng.choices(("done", "no_show", "cancelled", "expired"), (90, 4, 5, 1))[0]
    record: dict[str, Any] = {
        "kind": "visit", "office": office, "day": day, "number": str(100 + i), "procedure": procedure,
        "state": state, "channel": rng.choices(("walk_in", "booked", "late"), (80, 17, 3))[0],
        "priority": 0, "issued_at": issued, "first_called_at": called, "called_at": called, "started_at": started,
        "finished_at": finished, "counter": str(rng.randint(1, 6)), "recalls": 0,
        "estimate": round(rng.uniform(5, 30), 1)}
    if state == "cancelled":
        for key in ("first_called_at", "called_at", "started_at", "counter"):
            del record[key]
        record["finished_at"] = issued + 10 * MINUTE
    elif rng.random() < 0.08:
        record["handovers"] = [{"from": procedure, "to": "review", "category": rng.choice(("review", "pin", "other")),
                                "counter": record["counter"], "called_at": called, "started_at": started,
                                "at": started + 5 * MINUTE}]
        record["procedure"] = "review"
    records = [json.dumps(record, separators=(",", ":"), ensure_ascii=False)]
    if procedure == "pickup":
        for kind, minutes in (("prepare", 15), ("post", 10)):
            claimed = issued - 60 * MINUTE if kind == "prepare" else finished
            records.append(json.dumps({"kind": "task", "office": office, "day": day, "task_kind": kind,
                                       "procedure": procedure, "claimed_at": claimed,
                                       "done_at": claimed + int(rng.lognormvariate(0, 0.3) * minutes * MINUTE)}))
        if record["channel"] != "walk_in":
            records.append(json.dumps({"kind": "booking", "office": office, "day": day, "procedure": procedure,
                                       "state": "checked_in", "late": int(record["channel"] == "late")}))
    return records


async def fill(redis: Redis, year: dict[str, dict[str, list[str]]]) -> tuple[int, int]:
    """XADD every record (pipelined); returns (visits, records)."""
    visits = records = 0
    for office, months in year.items():
        key = f"{PREFIX}o:{{{office}}}:"
        for month, entries in months.items():
            for start in range(0, len(entries), 2000):
                pipe = redis.pipeline(transaction=False)
                for entry in entries[start:start + 2000]:
                    pipe.xadd(key + "arch:" + month, {"r": entry})
                await pipe.execute()
            await redis.zadd(key + "archmonths", {month: int(month)})
            records += len(entries)
            visits += sum('"kind":"visit"' in e for e in entries)
    return visits, records


async def timed(make: Callable[[], Awaitable[Any]]) -> tuple[float, float, int]:
    """Seconds of one run, then the Python peak (MiB) of a second run under tracemalloc; and the xlsx size."""
    start = time.perf_counter()
    report = await make()
    data = render.to_xlsx(report)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    report = await make()
    render.to_xlsx(report)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, len(data)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-day", type=int, default=140,
                        help="visits per office per weekday (March: 1.3×); 140 makes about 150,000 in the year")
    parser.add_argument("--sample", type=int, default=300, help="visits of the real-store sample day")
    args = parser.parse_args()
    print_calibration()
    config = four_offices()
    with tempfile.TemporaryDirectory(prefix="madoguchi-bench-") as tmp:
        valkey = EmbeddedRedis(Path(tmp))
        await valkey.start()
        redis = Redis.from_url(valkey.url)
        try:
            sample, per_record = await sample_day(redis, config, args.sample)
            print(f"real store sample: {args.sample} visits; {per_record:.0f} bytes per archived record "
                  f"(MEMORY USAGE of the month's stream / entries); fields: {', '.join(sorted(sample))}")
            year = synthetic_year(random.Random(1), args.per_day)
            visits, records = await fill(redis, year)
            used = sum([int(await redis.memory_usage(f"{PREFIX}o:{{{o}}}:arch:{m}", samples=0) or 0)
                        for o in OFFICES for m in month_range("202604", "202703")])
            print(f"archive: {visits:,} visits, {records:,} records (tasks, bookings included) in 4 offices × 12 "
                  f"months; Valkey MEMORY USAGE {used / 2**20:.1f} MiB ({used / records:.0f} bytes per record)")
            archive = Archive(redis, PREFIX)
            month_s, month_peak, month_size = await timed(
                lambda: load.monthly_report(archive, config, "2026-11", "honcho"))
            month_visits = sum('"kind":"visit"' in e for e in year["honcho"]["202611"])
            print(f"monthly report, one office (2026-11, {month_visits:,} visits): {month_s:.2f} s "
                  f"(target ≤ {TARGET_MONTH_S:.0f} s), Python peak {month_peak:.0f} MiB, xlsx {month_size / 1024:.0f} KiB")
            year_s, year_peak, year_size = await timed(
                lambda: load.year_report(archive, config, "2026-04", "2027-03"))
            print(f"fiscal year, 4 offices ({visits:,} visits): {year_s:.2f} s (target ≤ {TARGET_YEAR_S:.0f} s), "
                  f"Python peak {year_peak:.0f} MiB, xlsx {year_size / 1024:.0f} KiB")
        finally:
            await redis.aclose()
            await valkey.stop()


if __name__ == "__main__":
    asyncio.run(main())
