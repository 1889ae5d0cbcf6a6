"""Back-office tasks under load: people claiming and finishing card preparations at once over a large
backlog, against a madoguchi server it starts itself.

    .venv/bin/python benchmarks/task_load.py
    .venv/bin/python benchmarks/task_load.py --tasks 4000 --people 16

One office whose pickups need their card prepared. ``--tasks`` same-day pickups are issued (each
creates its preparation task and waits held), then ``GET /api/offices/{office}/tasks`` (the whole work
list with the backlog, read from the store) is timed with that backlog; then ``--people`` back-office
users press claim-next and finish until nothing is left (claim-next is one Lua step that picks the
first open task in the work order among all open ones, so its cost grows with the backlog). Every
task must be claimed exactly once ("each once") and every held visitor become callable.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
from bench_server import start_server  # benchmarks/ (scripts run from this folder)
from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from stats import percentile

SMOKE_ARGS = ["--tasks", "20", "--people", "2", "--lists", "3"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

CONFIG = """
[server]
always_open = true
data_dir = "data"

[[offices]]
id = "bench"
name = "ベンチマーク"

[offices.back_office]
people = 2

[[offices.procedures]]
id = "pickup"
name = "カード交付"
number = { prefix = "P", width = 4 }
service_minutes = 10
prep_minutes = 15
post_minutes = 10
stages = ["prepare", "post"]

[[offices.counters]]
id = "1"
procedures = ["pickup"]
"""


async def timed(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any, float]:
    start = time.perf_counter()
    async with session.request(method, url, **kwargs) as resp:
        body = await resp.json()
        return resp.status, body, time.perf_counter() - start


async def signed_in(url: str, user: str, password: str) -> tuple[aiohttp.ClientSession, dict[str, str]]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(f"{url}/api/session", json={"username": user, "password": password}) as r:
        if r.status != 200:
            raise RuntimeError(f"sign-in failed: {await r.text()}")
        return session, {"X-CSRF-Token": (await r.json())["csrf_token"]}


async def issue(url: str, count: int) -> None:
    """``count`` same-day pickups, 16 at a time."""
    remaining = count
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

        async def kiosk() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                status, body, _ = await timed(session, "POST", f"{url}/api/offices/bench/tickets",
                                              json={"procedure": "pickup"})
                if status != 201:
                    raise RuntimeError(f"issue answered {status}: {body}")

        await asyncio.gather(*(kiosk() for _ in range(16)))


async def work_list(url: str, user: str, password: str, requests: int) -> dict[str, float]:
    """Latency of the whole work list with the backlog in place."""
    session, _ = await signed_in(url, user, password)
    latencies, listed = [], 0
    try:
        for _ in range(requests):
            status, body, seconds = await timed(session, "GET", f"{url}/api/offices/bench/tasks")
            if status != 200:
                raise RuntimeError(f"work list answered {status}: {body}")
            latencies.append(seconds)
            listed = len(body["tasks"])
    finally:
        await session.close()
    return {"listed": listed, "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


async def work_through(url: str, user: str, password: str, people: int) -> dict[str, Any]:
    """``people`` users claim-next and finish until no task is left."""
    claims: list[float] = []
    finishes: list[float] = []
    claimed: list[str] = []
    sessions = [await signed_in(url, user, password) for _ in range(people)]

    async def person(session: aiohttp.ClientSession, headers: dict[str, str]) -> None:
        while True:
            status, body, seconds = await timed(session, "POST", f"{url}/api/offices/bench/tasks/claim-next",
                                                headers=headers)
            if status == 409 and body["error"]["code"] == "no_task":
                return
            if status != 200:
                raise RuntimeError(f"claim-next answered {status}: {body}")
            claims.append(seconds)
            task = body["task"]
            claimed.append(task["id"])
            status, body, seconds = await timed(session, "POST", f"{url}/api/offices/bench/tasks/{task['id']}/finish",
                                                headers=headers)
            if status != 200 or not body.get("ticket_ready"):
                raise RuntimeError(f"finish answered {status}: {body}")
            finishes.append(seconds)

    began = time.perf_counter()
    try:
        await asyncio.gather(*(person(s, h) for s, h in sessions))
    finally:
        for session, _ in sessions:
            await session.close()
    elapsed = time.perf_counter() - began
    return {"tasks": len(claimed), "once": len(claimed) == len(set(claimed)), "per_second": len(claimed) / elapsed,
            "claim_p50": percentile(claims, 50) * 1000, "claim_p99": percentile(claims, 99) * 1000,
            "finish_p50": percentile(finishes, 50) * 1000, "finish_p99": percentile(finishes, 99) * 1000}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000, help="open preparation tasks to work through")
    parser.add_argument("--people", type=int, default=8, help="back-office users pressing at once")
    parser.add_argument("--lists", type=int, default=50, help="work-list requests timed with the full backlog")
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-password")
    args = parser.parse_args()
    print_calibration()
    server, url = await start_server(args.user, args.password, CONFIG)
    try:
        print(f"# madoguchi back-office task benchmark — {url}")
        await issue(url, args.tasks)
        w = await work_list(url, args.user, args.password, args.lists)
        r = await work_through(url, args.user, args.password, args.people)
        print(f"\n{args.tasks} held pickups, {args.people} back-office users\n")
        print("| work list (GET …/tasks) | tasks listed | p50 ms | p99 ms |\n|---|---|---|---|")
        print(f"| full backlog | {w['listed']} | {w['p50_ms']:.1f} | {w['p99_ms']:.1f} |")
        print("\n| claim-next + finish | tasks | tasks/s | claim p50 ms | claim p99 ms | finish p50 ms | finish p99 ms "
              "| each once |\n|---|---|---|---|---|---|---|---|")
        print(f"| {args.people} people | {r['tasks']} | {r['per_second']:.0f} | {r['claim_p50']:.1f} | "
              f"{r['claim_p99']:.1f} | {r['finish_p50']:.1f} | {r['finish_p99']:.1f} | "
              f"{'yes' if r['once'] and r['tasks'] == args.tasks else 'NO'} |")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
