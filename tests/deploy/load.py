"""A running ``madoguchi serve`` on a deployment, and 16 clients issuing tickets and booking over HTTP with
Idempotency-Keys, retrying a 503 or a lost connection with the same key until it is answered — the
kiosk's and the booking page's behaviour. For the failover and resharding tests and the benchmark."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

from ..servers import ServerProcess, add_staff
from .engines import SERVICE, SentinelGroup, ValkeyCluster

TESTS: Final = Path(__file__).parent.parent
TOKYO: Final = dt.timezone(dt.timedelta(hours=9))
MONDAY_10: Final = dt.datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)  # bookings open for the days after
BOOKING_DAYS: Final = ("20261208", "20261209", "20261210", "20261211", "20261214", "20261215")
PASSWORD: Final = "failover-password"
REQUEST_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)


def deployment_toml(deployment: SentinelGroup | ValkeyCluster) -> str:
    """The ``[server]`` lines naming the deployment."""
    if isinstance(deployment, SentinelGroup):
        addresses = ", ".join(f'"{a}"' for a in deployment.sentinel_addresses)
        return f'sentinel = {{ master = "{SERVICE}", addresses = [{addresses}] }}\n'
    return f'cluster_url = "{deployment.url}"\n'


async def start_server(directory: Path, deployment: SentinelGroup | ValkeyCluster, extra: str = "") -> ServerProcess:
    """``madoguchi serve`` of the test office on ``deployment``, its clock on a Monday at 10:00, with staff
    user ``staff`` (created through ``madoguchi add-user`` on the same deployment)."""
    text = (TESTS / "office.toml").read_text(encoding="utf-8")
    config = directory / "office.toml"
    config.write_text(text.replace("[server]\n", f'[server]\ndata_dir = "data"\n{deployment_toml(deployment)}{extra}', 1),
                      encoding="utf-8")
    await asyncio.to_thread(add_staff, config, PASSWORD)
    offset = MONDAY_10.timestamp() - time.time()
    server = ServerProcess(config, options=("--clock-offset", f"{offset:.3f}"))
    await server.start()
    return server


@dataclass
class Load:
    """What the clients sent and what was acknowledged."""

    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)   # Idempotency-Key → the 201 answer
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)  # Idempotency-Key → the 201 answer
    full: int = 0                       # bookings refused 409 slot_full (an answer, not a failure)
    retried: dict[str, int] = field(default_factory=dict)  # Idempotency-Key → attempts that failed first
    failures: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, what) of each failed attempt
    latencies: list[float] = field(default_factory=list)   # of acknowledged requests, retries included
    answered: list[float] = field(default_factory=list)    # monotonic time of each acknowledgement

    def longest_silence(self, after: float) -> float:
        """The longest time without any acknowledgement, from ``after`` (a kill) on."""
        times = [after, *sorted(t for t in self.answered if t >= after)]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    @property
    def acknowledged(self) -> int:
        return len(self.tickets) + len(self.bookings)

    def outage_seconds(self) -> float:
        """From the first failed attempt to the last (0 when none failed)."""
        return self.failures[-1][0] - self.failures[0][0] if self.failures else 0.0


async def _send(session: aiohttp.ClientSession, load: Load, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """One intended request, retried with its Idempotency-Key until it gets an answer other than 503."""
    key = uuid.uuid4().hex
    began = time.perf_counter()
    deadline = time.monotonic() + 120
    while True:
        try:
            async with session.post(path, json=body, headers={"Idempotency-Key": key}, timeout=REQUEST_TIMEOUT) as resp:
                answer = await resp.json()
                if resp.status != 503:
                    load.latencies.append(time.perf_counter() - began)
                    load.answered.append(time.monotonic())
                    if resp.status == 201:
                        (load.tickets if "tickets" in path else load.bookings)[key] = answer
                    return resp.status, answer
                what = "503"
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            what = type(e).__name__
        load.failures.append((time.monotonic(), what))
        load.retried[key] = load.retried.get(key, 0) + 1
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still failing after 120 s ({what})")
        await asyncio.sleep(0.05 + random.random() * 0.1)  # the page's retry delay, jittered


async def clients(url: str, load: Load, stop: asyncio.Event, count: int = 16, booking_share: float = 0.25,
                  office: str = "main") -> None:
    """``count`` clients issuing tickets (and, a quarter of the time, booking a pickup) until ``stop``."""
    async with aiohttp.ClientSession(base_url=url, connector=aiohttp.TCPConnector(limit=count)) as session:

        async def client() -> None:
            while not stop.is_set():
                if random.random() < booking_share:
                    day, slot = random.choice(BOOKING_DAYS), f"{random.randint(9, 15):02d}:{random.choice((0, 30)):02d}"
                    status, body = await _send(session, load, f"/api/offices/{office}/bookings",
                                               {"procedure": "pickup", "day": day, "slot": slot})
                    if status == 409 and body["error"]["code"] == "slot_full":
                        load.full += 1
                        continue
                    assert status in (201, 422), body  # 422: a slot outside the day's hours
                else:
                    status, body = await _send(session, load, f"/api/offices/{office}/tickets", {"procedure": "application"})
                    assert status == 201, body

        await asyncio.gather(*(client() for _ in range(count)))


async def check_everything_acknowledged_survived(url: str, load: Load) -> None:
    """Each acknowledged ticket and booking is there, once; no number twice; nothing that was not acknowledged."""
    numbers = [t["ticket"]["number"] for t in load.tickets.values()]
    assert len(numbers) == len(set(numbers)), "a number was given to two different requests"
    async with aiohttp.ClientSession(base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post("/api/session", json={"username": "staff", "password": PASSWORD}) as resp:
            assert resp.status == 200, await resp.text()
        async with session.get("/api/offices/main/state") as resp:
            state = await resp.json()
        waiting = [t["number"] for t in state["waiting"] if t["procedure"] == "application"]
        assert sorted(waiting) == sorted(numbers), (
            f"lost: {sorted(set(numbers) - set(waiting))}; not acknowledged: {sorted(set(waiting) - set(numbers))}")
        for answer in random.sample(list(load.tickets.values()), min(50, len(load.tickets))):
            async with session.get(f"/api/tickets/{answer['token']}") as resp:
                view = await resp.json()
                assert resp.status == 200 and view["number"] == answer["ticket"]["number"], view
        codes = [b["code"] for b in load.bookings.values()]
        assert len(codes) == len(set(codes)), "a booking code was given twice"
        places: dict[tuple[str, str], int] = {}
        for answer in load.bookings.values():
            async with session.get(f"/api/bookings/by-secret/{answer['secret']}") as resp:
                found = await resp.json()
                assert resp.status == 200 and found["booking"]["state"] == "booked", found
            slot = (found["booking"]["day"], found["booking"]["slot"])
            places[slot] = places.get(slot, 0) + 1
        assert max(places.values(), default=0) <= 2, "a slot was booked beyond its capacity of 2"


async def lobby_display(url: str, seen: list[dict[str, Any]], ready: asyncio.Event) -> None:
    """A lobby display following the office, keeping every snapshot and event it is sent."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}/api/ws") as ws:
            await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
            async for message in ws:
                data = message.json()
                if data["type"] in ("snapshot", "event"):
                    seen.append({**data, "received": time.monotonic()})
                    ready.set()


def waiting_shown(seen: list[dict[str, Any]]) -> int | None:
    """How many the display last showed waiting for ``application`` (from a snapshot or a ticket event)."""
    for message in reversed(seen):
        counts = message["data"]["waiting_counts"] if message["type"] == "snapshot" else message["event"].get("waiting_counts")
        if counts is not None:
            return int(counts.get("application", 0))
    return None
