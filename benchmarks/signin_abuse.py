"""Everyone else's latency while one client abuses sign-in (wrong passwords at concurrency 4).

    .venv/bin/python benchmarks/signin_abuse.py                       # this tree's server
    .venv/bin/python benchmarks/signin_abuse.py --tree /tmp/old-tree  # another checkout, for comparison

Starts its own server (embedded Valkey) from ``--tree``. Three phases of ``--seconds`` each —
before, during and after the abuse — in which one kiosk client issues tickets one after another
and a counter calls next while a lobby display (WebSocket) receives the calls. During the abuse
four more clients send wrong sign-ins as fast as they are answered (the real staff name and
guessed ones). Reported per phase: issue latency, call → display delivery latency, and what the
abuser got (answers by status, how many passwords the server actually checked).

Target: during the abuse, others' p50 stays within a few ms of the quiet phase and no call
reaches the display later than 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import aiohttp
from bench_server import BENCH_CONFIG, start_server  # the same one-counter benchmark office
from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from stats import percentile  # benchmarks/stats.py (scripts run from this folder)

SMOKE_ARGS = ["--seconds", "1"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

HERE = Path(__file__).parent
OFFICE, PROCEDURE, COUNTER = "bench", "application", "1"
USER, PASSWORD = "bench", "bench-password"
ABUSERS = 4
SPARE_PREFIXES = "BCDEFGH"
"""More procedures like ``application``, that the kiosk turns to when a day's 9,999 numbers are used up
(one-after-another issues pass that in about 30 s on a quiet machine); the counter calls ``application``."""
CONFIG = BENCH_CONFIG + "".join(f"""
[[offices.procedures]]
id = "application-{p.lower()}"
name = "交付申請受付 {p}"
number = {{ prefix = "{p}", width = 4 }}
service_minutes = 15
""" for p in SPARE_PREFIXES)


class Phase:
    """What the other clients measured during one phase."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.issue: list[float] = []
        self.delivery: list[float] = []
        self.lost_calls = 0
        self.abuse: Counter[int] = Counter()


async def kiosk(session: aiohttp.ClientSession, url: str, phase: Phase, stop: asyncio.Event) -> None:
    """Issue tickets one after another, timing each (a procedure whose numbers are used up: the next one)."""
    target = f"{url}/api/offices/{OFFICE}/tickets"
    procedures = iter([PROCEDURE, *(f"{PROCEDURE}-{p.lower()}" for p in SPARE_PREFIXES)])
    body = {"procedure": next(procedures)}
    while not stop.is_set():
        start = time.perf_counter()
        async with session.post(target, json=body) as resp:
            answer = await resp.read()
            if resp.status == 409 and b'"numbers_exhausted"' in answer:
                body = {"procedure": next(procedures)}
                continue
            if resp.status != 201:
                raise RuntimeError(f"issue failed: {resp.status} {answer.decode()}")
        phase.issue.append(time.perf_counter() - start)


async def counter(session: aiohttp.ClientSession, url: str, csrf: str, received: dict[str, float],
                  phase: Phase, stop: asyncio.Event) -> None:
    """Call next, time the call's arrival at the display, serve, and again."""
    headers = {"X-CSRF-Token": csrf}
    base = f"{url}/api/offices/{OFFICE}/counters/{COUNTER}"
    while not stop.is_set():
        sent = time.perf_counter()
        async with session.post(f"{base}/call-next", headers=headers) as resp:
            if resp.status != 200:  # nobody waiting yet
                await resp.read()
                await asyncio.sleep(0.05)
                continue
            number = (await resp.json())["ticket"]["number"]
        deadline = sent + 5.0
        while number not in received and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)
        if number in received:
            phase.delivery.append(received[number] - sent)
        else:
            phase.lost_calls += 1
        for action in ("start", "finish"):
            async with session.post(f"{base}/{action}", headers=headers) as resp:
                await resp.read()
        await asyncio.sleep(0.1)


async def display(session: aiohttp.ClientSession, url: str, received: dict[str, float], ready: asyncio.Event) -> None:
    """A lobby display: stamp each call when it arrives."""
    async with session.ws_connect(f"{url}/api/ws", max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"id": 1, "type": "subscribe", "view": "lobby", "office": OFFICE}))
        ready.set()
        async for msg in ws:
            now = time.perf_counter()
            if '"ticket.called"' in msg.data:
                received[json.loads(msg.data)["event"]["ticket"]["number"]] = now


async def abuser(session: aiohttp.ClientSession, url: str, names: itertools.cycle[str], phase: Phase,
                 stop: asyncio.Event) -> None:
    """Wrong sign-ins, one after another, as fast as they are answered."""
    while not stop.is_set():
        async with session.post(f"{url}/api/session", json={"username": next(names), "password": "wrong-guess"}) as r:
            await r.read()
            phase.abuse[r.status] += 1


async def run(url: str, seconds: float) -> list[Phase]:
    """The three phases against a running server."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as staff, aiohttp.ClientSession() as public, \
            aiohttp.ClientSession() as attacker:
        async with staff.post(f"{url}/api/session", json={"username": USER, "password": PASSWORD}) as r:
            csrf = (await r.json())["csrf_token"]
        async with staff.post(f"{url}/api/offices/{OFFICE}/counters/{COUNTER}/open", headers={"X-CSRF-Token": csrf}) as r:
            await r.read()
        received: dict[str, float] = {}
        ready = asyncio.Event()
        shown = asyncio.create_task(display(public, url, received, ready))
        await ready.wait()
        names = itertools.cycle([USER, "admin", *(f"guess{n}" for n in range(50))])
        phases = []
        for name in ("before", "during abuse", "after"):
            phase, stop = Phase(name), asyncio.Event()
            tasks = [asyncio.create_task(kiosk(public, url, phase, stop)),
                     asyncio.create_task(counter(staff, url, csrf, received, phase, stop))]
            if name == "during abuse":
                tasks += [asyncio.create_task(abuser(attacker, url, names, phase, stop)) for _ in range(ABUSERS)]
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)
            phases.append(phase)
        shown.cancel()
        await asyncio.gather(shown, return_exceptions=True)
    return phases


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}" if values else "–"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=HERE.parent, help="the checkout whose server to run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    args = parser.parse_args()
    tree = args.tree.resolve()
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "not a git checkout"
    print_calibration()  # before the server and its load start
    server, url = await start_server(USER, PASSWORD, CONFIG, tree=tree)
    try:
        print(f"# sign-in abuse — server from {tree} ({commit})")
        phases = await run(url, args.seconds)
    finally:
        server.terminate()
        server.wait()
    print("\n| phase | issued | issue p50 ms | issue p99 ms | issue max ms | calls | delivery p50 ms | "
          "delivery p99 ms | delivery max ms | calls not delivered in 5 s | abuser's answers |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p in phases:
        abuse = ", ".join(f"{n}×{status}" for status, n in sorted(p.abuse.items())) or "–"
        print(f"| {p.name} | {len(p.issue)} | {ms(p.issue, 50)} | {ms(p.issue, 99)} | {ms(p.issue, 100)} | "
              f"{len(p.delivery)} | {ms(p.delivery, 50)} | {ms(p.delivery, 99)} | {ms(p.delivery, 100)} | "
              f"{p.lost_calls} | {abuse} |")


if __name__ == "__main__":
    asyncio.run(main())
