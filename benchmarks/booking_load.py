"""Booking throughput and latency with clients competing for the same few slots, and the call centre's
slot-finder latency over 4 weeks × 4 offices, against a madoguchi server it starts itself.

    .venv/bin/python benchmarks/booking_load.py
    .venv/bin/python benchmarks/booking_load.py --capacity 500 --refusals 2000 --finder 300

Four offices, each booking pickups in 30-minute slots on weekdays 08:30–17:15 (17 slots a day),
four weeks ahead, closing the previous open day at 17:00. 16 clients book the same 4 slots of the
first bookable day of one office until every place is taken (``POST /api/offices/{office}/bookings``:
one Lua step each on the same slot hash), then keep trying (409 ``slot_full``); the places taken are
checked to equal the capacity exactly. Then ``GET /api/callcenter/slots?procedure=pickup&days=28``
(every office's slot hashes for 4 weeks read in one pipeline) is timed at concurrency 1 and 16.
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

SMOKE_ARGS = ["--capacity", "4", "--refusals", "20", "--finder", "10"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

OFFICES = ("north", "south", "east", "west")
CLIENTS = 16
SLOTS = 4


def config(capacity: int) -> str:
    """A server with four offices booking pickups (``capacity`` places per slot)."""
    head = """
[server]
always_open = true
data_dir = "data"
"""
    office = """
[[offices]]
id = "{id}"
name = "{id}"

[offices.hours]
week = {{ mon = "08:30-17:15", tue = "08:30-17:15", wed = "08:30-17:15", thu = "08:30-17:15", fri = "08:30-17:15" }}

[offices.bookings]
slot_minutes = 30
open_days_ahead = 28

[[offices.procedures]]
id = "pickup"
name = "カード交付"
number = {{ range = [300, 599] }}
service_minutes = 10
booking = {{ capacity = {capacity}, close_days_before = 1, close_at = "17:00" }}

[[offices.counters]]
id = "1"
procedures = ["pickup"]
"""
    return head + "".join(office.format(id=o, capacity=capacity) for o in OFFICES)


async def timed(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any, float]:
    start = time.perf_counter()
    async with session.request(method, url, **kwargs) as resp:
        body = await resp.json()
        return resp.status, body, time.perf_counter() - start


async def book_contested(url: str, office: str, day: str, slots: list[str], capacity: int,
                         refusals: int) -> dict[str, Any]:
    """16 clients book ``slots`` round-robin until all ``capacity × len(slots)`` places are taken, then
    ``refusals`` more attempts; latencies of both kinds of answer."""
    booked: list[float] = []
    refused: list[float] = []
    attempts = capacity * len(slots) + refusals
    counter = 0
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:
        target = f"{url}/api/offices/{office}/bookings"

        async def client() -> None:
            nonlocal counter
            while counter < attempts:
                slot = slots[counter % len(slots)]
                counter += 1
                status, body, seconds = await timed(session, "POST", target,
                                                    json={"procedure": "pickup", "day": day, "slot": slot})
                if status == 201:
                    booked.append(seconds)
                elif status == 409 and body["error"]["code"] == "slot_full":
                    refused.append(seconds)
                else:
                    raise RuntimeError(f"booking answered {status}: {body}")

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - began
        _, availability, _ = await timed(session, "GET", f"{url}/api/offices/{office}/bookings/availability"
                                                         f"?procedure=pickup&from={day}&days=1")
    left = {s["slot"]: s["remaining"] for s in availability["days"][0]["slots"] if s["slot"] in slots}
    return {"attempts": attempts, "per_second": attempts / elapsed, "booked": len(booked), "refused": len(refused),
            "booked_p50": percentile(booked, 50) * 1000, "booked_p99": percentile(booked, 99) * 1000,
            "refused_p50": percentile(refused, 50) * 1000 if refused else 0.0,
            "refused_p99": percentile(refused, 99) * 1000 if refused else 0.0,
            "exact": len(booked) == capacity * len(slots) and all(v == 0 for v in left.values())}


async def slot_finder(url: str, user: str, password: str, requests: int, concurrency: int) -> dict[str, float]:
    """Latency of the call centre's next-free-slots view over 28 days × every office."""
    latencies: list[float] = []
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async with session.post(f"{url}/api/session", json={"username": user, "password": password}) as r:
            if r.status != 200:
                raise RuntimeError(f"sign-in failed: {await r.text()}")
        target = f"{url}/api/callcenter/slots?procedure=pickup&days=28&limit=20"
        remaining = requests
        days = slots = 0

        async def client() -> None:
            nonlocal remaining, days, slots
            while remaining > 0:
                remaining -= 1
                status, body, seconds = await timed(session, "GET", target)
                if status != 200:
                    raise RuntimeError(f"slot-finder answered {status}: {body}")
                latencies.append(seconds)
                days = sum(len(o["days"]) for o in body["offices"])
                slots = len(body["slots"])

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"requests": requests, "per_second": requests / elapsed, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "office_days": days, "listed": slots}


async def first_bookable(url: str, office: str) -> tuple[str, list[str]]:
    """The first day with bookable slots at ``office`` and its first ``SLOTS`` slots."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/api/offices/{office}/bookings/availability?procedure=pickup&days=28") as r:
            days = (await r.json())["days"]
    day = next(d for d in days if len(d["slots"]) >= SLOTS)
    return day["day"], [s["slot"] for s in day["slots"][:SLOTS]]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, default=500, help="places per slot (4 slots contested)")
    parser.add_argument("--refusals", type=int, default=2000, help="attempts after the slots are full")
    parser.add_argument("--finder", type=int, default=300, help="slot-finder requests per concurrency")
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-password")
    args = parser.parse_args()
    print_calibration()
    server, url = await start_server(args.user, args.password, config(args.capacity))
    try:
        print(f"# madoguchi booking benchmark — {url}")
        day, slots = await first_bookable(url, OFFICES[0])
        # Warm-up on another office (the same code paths, other slot hashes).
        warm_day, warm_slots = await first_bookable(url, OFFICES[1])
        await book_contested(url, OFFICES[1], warm_day, warm_slots[:1], 50, 50)
        r = await book_contested(url, OFFICES[0], day, slots, args.capacity, args.refusals)
        print(f"\n{CLIENTS} clients, slots {', '.join(slots)} of {day}, {args.capacity} places each\n")
        print("| booking | attempts | attempts/s | booked | booked p50 ms | booked p99 ms | refused | refused p50 ms "
              "| refused p99 ms | capacity exact |\n|---|---|---|---|---|---|---|---|---|---|")
        print(f"| contested | {r['attempts']} | {r['per_second']:.0f} | {r['booked']} | {r['booked_p50']:.1f} | "
              f"{r['booked_p99']:.1f} | {r['refused']} | {r['refused_p50']:.1f} | {r['refused_p99']:.1f} | "
              f"{'yes' if r['exact'] else 'NO'} |")
        print("\n| slot-finder (4 offices × 28 days) | requests | requests/s | p50 ms | p99 ms | office-days read |"
              "\n|---|---|---|---|---|---|")
        for concurrency in (1, CLIENTS):
            f = await slot_finder(url, args.user, args.password, args.finder, concurrency)
            print(f"| concurrency {concurrency} | {f['requests']} | {f['per_second']:.0f} | {f['p50_ms']:.1f} | "
                  f"{f['p99_ms']:.1f} | {f['office_days']} |")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
