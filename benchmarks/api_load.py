"""Ticket-issue throughput/latency and call-to-client latency against a running madoguchi server.

    .venv/bin/python benchmarks/api_load.py                 # starts its own server (embedded Valkey)
    .venv/bin/python benchmarks/api_load.py --url http://127.0.0.1:8080 --office honcho --procedure application

Targets (2 cores, load generator on the same machine): ≥ 1,500 tickets/s with p99 ≤ 25 ms at
concurrency 16; a call reaches all 1,000 WebSocket clients with p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
from bench_server import start_server  # benchmarks/ (scripts run from this folder)
from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from stats import percentile

SMOKE_ARGS = ["--tickets", "40", "--clients", "20", "--calls", "3"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""


async def issue_load(url: str, office: str, procedure: str, concurrency: int, total: int) -> dict[str, float]:
    """Issue ``total`` tickets from ``concurrency`` parallel clients; throughput and latency."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        body = json.dumps({"procedure": procedure}).encode()
        headers = {"Content-Type": "application/json"}
        target = f"{url}/api/offices/{office}/tickets"
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                async with session.post(target, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 201:
                        raise RuntimeError(f"issue failed: {resp.status} {await resp.text()}")
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"tickets": total, "per_second": total / elapsed, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000}


async def call_fanout(url: str, office: str, procedure: str, counter: str, clients: int, calls: int,
                      username: str, password: str) -> dict[str, float]:
    """Time from sending a call to its receipt by each of ``clients`` WebSocket clients."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=aiohttp.TCPConnector(limit=0)) as session:
        async with session.post(f"{url}/api/session", json={"username": username, "password": password}) as r:
            if r.status != 200:
                raise RuntimeError(f"sign-in failed: {await r.text()} (create the user with madoguchi add-user)")
            csrf = (await r.json())["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        for action in ("open",):
            async with session.post(f"{url}/api/offices/{office}/counters/{counter}/{action}", headers=headers) as r:
                await r.read()
        for _ in range(calls):
            async with session.post(f"{url}/api/offices/{office}/tickets", json={"procedure": procedure}) as r:
                assert r.status == 201, await r.text()

        received: dict[str, list[float]] = {}
        ready = 0
        all_ready = asyncio.Event()

        async def client() -> None:
            nonlocal ready
            async with session.ws_connect(f"{url}/api/ws", max_msg_size=0) as ws:
                await ws.send_str(json.dumps({"id": 1, "type": "subscribe", "view": "lobby", "office": office}))
                await ws.receive()  # result
                await ws.receive()  # snapshot
                ready += 1
                if ready == clients:
                    all_ready.set()
                async for msg in ws:
                    # Stamp first; parse only calls (cheap check) so the generator's own work stays small.
                    now = time.perf_counter()
                    if '"ticket.called"' in msg.data:
                        number = json.loads(msg.data)["event"]["ticket"]["number"]
                        received.setdefault(number, []).append(now)

        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        await asyncio.wait_for(all_ready.wait(), 120)
        latencies: list[float] = []
        for _ in range(calls):
            sent = time.perf_counter()
            async with session.post(f"{url}/api/offices/{office}/counters/{counter}/call-next", headers=headers) as r:
                number = (await r.json())["ticket"]["number"]
            for _ in range(200):
                if len(received.get(number, ())) == clients:
                    break
                await asyncio.sleep(0.01)
            latencies += [t - sent for t in received.get(number, ())]
            for action in ("start", "finish"):
                async with session.post(f"{url}/api/offices/{office}/counters/{counter}/{action}", headers=headers) as r:
                    await r.read()
            await asyncio.sleep(0.05)
        # A supervisor-only notice would end the clients; cancelling them is simpler for a benchmark.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    complete = len(latencies) == clients * calls
    return {"clients": clients, "calls": calls, "deliveries": len(latencies), "complete": float(complete),
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "max_ms": max(latencies) * 1000}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start one with a benchmark office)")
    parser.add_argument("--office", default="bench")
    parser.add_argument("--procedure", default="application")
    parser.add_argument("--counter", default="1")
    parser.add_argument("--tickets", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-password")
    args = parser.parse_args()
    print_calibration()

    server = None
    url = args.url
    if url is None:
        server, url = await start_server(args.user, args.password)
    try:
        print(f"# madoguchi API benchmark — {url}")
        await issue_load(url, args.office, args.procedure, 16, 300)  # warm-up
        print("\n| ticket issue | tickets | tickets/s | p50 ms | p99 ms |\n|---|---|---|---|---|")
        for concurrency in (1, 16):
            r = await issue_load(url, args.office, args.procedure, concurrency, args.tickets)
            print(f"| concurrency {concurrency} | {r['tickets']} | {r['per_second']:.0f} | {r['p50_ms']:.1f} | "
                  f"{r['p99_ms']:.1f} |")
        r = await call_fanout(url, args.office, args.procedure, args.counter, args.clients, args.calls,
                              args.user, args.password)
        print("\n| call → WebSocket clients | clients | calls | deliveries | p50 ms | p99 ms | max ms |\n"
              "|---|---|---|---|---|---|---|")
        print(f"| lobby view | {r['clients']} | {r['calls']} | {r['deliveries']} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} |")
    finally:
        if server is not None:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
