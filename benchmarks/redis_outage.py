"""Lobby displays through a Redis outage: what they get during it, and how soon after Redis is back.

    .venv/bin/python benchmarks/redis_outage.py                      # this tree's code
    .venv/bin/python benchmarks/redis_outage.py --code /work/main    # another checkout, for a before/after

Starts its own Valkey and a server on it, pre-issues tickets, connects ``--displays`` lobby
displays (10 per client address), and calls a number every ``--call-every`` seconds at counter 1.
Then the Valkey is killed (SIGKILL), kept down ``--outage`` seconds and started again on the same
files. From the moment it answers PING again, tickets are issued at ``--issue-rate`` a second (the
kiosks' traffic the hub misses until it is back) while the calls go on. Measured:

- during the outage: calls attempted and their answers (a call needs Redis);
- after: the first call answered, and for each display the first call or snapshot received after
  Redis was back; displays dropped by the server; call → display latency once recovered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from bench_live import ROOT, Display, Server, Staff, display_sessions  # benchmarks/ (run from here)
from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from stats import percentile

sys.path.insert(0, str(ROOT))
from queue_server.store.embedded import EmbeddedRedis  # noqa: E402 - the Valkey binary and its start-up

SMOKE_ARGS = ["--displays", "10", "--outage", "1", "--after", "2", "--issue-rate", "10"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=ROOT, help="the source tree whose server is measured")
    parser.add_argument("--displays", type=int, default=200)
    parser.add_argument("--outage", type=float, default=8.0, help="seconds Redis stays down")
    parser.add_argument("--after", type=float, default=12.0, help="seconds measured after Redis is back")
    parser.add_argument("--call-every", type=float, default=0.25)
    parser.add_argument("--issue-rate", type=float, default=50.0, help="tickets a second after Redis is back")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-outage-"))
    valkey = EmbeddedRedis(workdir / "valkey")
    await valkey.start()
    server = Server(args.code, workdir, 18000 + os.getpid() % 1000, redis_url=valkey.url)
    print_calibration()  # before the server and its load start
    await server.start()
    sessions = display_sessions(args.displays, 10)
    try:
        print(f"# Redis outage — code {args.code}, {args.displays} displays, outage {args.outage:.0f} s, "
              f"{args.issue_rate:.0f} tickets/s after")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            staff = Staff(http, server.url)
            await staff.sign_in()
            await staff.issue(2000)
            displays = [Display() for _ in range(args.displays)]
            tasks = [asyncio.create_task(d.run(sessions[i // 10], server.url)) for i, d in enumerate(displays)]
            await asyncio.wait_for(asyncio.gather(*(d.ready.wait() for d in displays)), 120)

            calls: list[tuple[str, float]] = []   # (number, sent) of answered calls
            answered_at: list[float] = []
            answers: Counter[str] = Counter()
            phase = "before"

            async def caller() -> None:
                while True:
                    sent = time.perf_counter()
                    try:
                        call = await staff.call()
                    except aiohttp.ClientError:
                        call = None
                    answers[f"{phase}: {'answered' if call else 'refused'}"] += 1
                    if call is not None:
                        calls.append((call[0], sent))
                        answered_at.append(call[1])
                    await asyncio.sleep(max(0.0, args.call_every - (time.perf_counter() - sent)))

            calling = asyncio.create_task(caller())
            await asyncio.sleep(3)
            killed = time.perf_counter()
            os.kill(valkey.pid or 0, signal.SIGKILL)
            phase = "outage"
            await asyncio.sleep(args.outage)
            await valkey.start()
            back = time.perf_counter()
            phase = "after"

            async def kiosks() -> None:
                while True:
                    started = time.perf_counter()
                    async with http.post(f"{server.url}/api/offices/bench/tickets", json={"procedure": "application"}) as r:
                        await r.read()
                    await asyncio.sleep(max(0.0, 1 / args.issue_rate - (time.perf_counter() - started)))

            issuing = asyncio.create_task(kiosks())
            await asyncio.sleep(args.after)
            for task in (calling, issuing):
                task.cancel()
            await asyncio.sleep(1)  # the last calls' deliveries

            during = [t for d in displays for t in d.calls.values() if killed < t < back]
            after_calls = [(n, s) for n, s in calls if s > back]
            first_answer = min((t for t in answered_at if t > back), default=float("nan")) - back
            current = []   # per display: first call or snapshot after Redis was back
            for d in displays:
                times = [t for t in (*d.calls.values(), *d.snapshots) if t > back]
                current.append(min(times) - back if times else float("inf"))
            dropped = sum(d.closed_at is not None for d in displays)
            recovered = [t for t in current if t != float("inf")]
            # Call → display latency for calls made once every display was current again.
            settled = back + (max(recovered) if recovered else 0)
            latencies = [d.calls[n] - s for n, s in after_calls if s > settled for d in displays if n in d.calls]
            expected = sum(1 for _, s in after_calls if s > settled) * (args.displays - dropped)

            print("\n| phase | calls answered | calls refused | deliveries to displays |\n|---|---|---|---|")
            for name in ("before", "outage", "after"):
                print(f"| {name} | {answers[f'{name}: answered']} | {answers[f'{name}: refused']} | "
                      f"{len(during) if name == 'outage' else '—'} |")
            print("\n| after Redis is back | value |\n|---|---|")
            print(f"| first call answered | {first_answer:.2f} s |")
            if recovered:
                print(f"| displays current again (first call or snapshot): p50 / max | "
                      f"{percentile(recovered, 50):.2f} s / {max(recovered):.2f} s |")
            print(f"| displays dropped by the server | {dropped} of {args.displays} |")
            print(f"| snapshots received after Redis was back (all displays) | "
                  f"{sum(1 for d in displays for t in d.snapshots if t > back)} |")
            if latencies:
                print(f"| call → display once recovered: p50 / p99 / deliveries | {percentile(latencies, 50) * 1000:.1f} ms / "
                      f"{percentile(latencies, 99) * 1000:.1f} ms / {len(latencies)} of {expected} |")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for session in sessions:
            await session.close()
        server.stop()
        await valkey.stop()


if __name__ == "__main__":
    asyncio.run(main())
