"""Idle lobby displays: the server memory each one costs, and the public views' size with a long queue.

    .venv/bin/python benchmarks/idle_displays.py                          # 10,000 displays, 2,000 waiting
    .venv/bin/python benchmarks/idle_displays.py --displays 1000 --waiting 6000

Starts its own server (embedded Valkey, the benchmark office of ``bench_server.py``) with the open-file
limit raised to the hard limit, issues ``--waiting`` tickets, and measures the public lobby snapshot,
the congestion view and ``GET …/state`` (public and staff). Then ``--processes`` client processes open
``--displays`` lobby WebSockets in all, each from its own loopback address (127.1.x.y, as displays on
many PCs would), and keep them idle, answering the server's heartbeat pings. Once every display has
its snapshot, the server process's RSS is read again: (after − before) / displays is what one idle
display costs. Finally a few calls check that every display still receives each call, and how fast.

Targets (issue #10, item 23): lobby and congestion snapshots ≤ 20 KB with 2,000 waiting; ≤ 50 KB of
server memory per idle display; 10,000 idle displays on one server process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import queue
import resource
import time
from multiprocessing.synchronize import Event as EventType
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from bench_server import start_server  # benchmarks/ (scripts run from this folder)
from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from stats import percentile

SMOKE_ARGS = ["--displays", "20", "--processes", "1", "--waiting", "50", "--calls", "2"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

CONNECTS_AT_ONCE: Final = 64       # handshakes in flight per client process (the server's accept backlog is 128)
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


# --- a minimal WebSocket client: thousands of them per process, so no per-connection library state ----

def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unfragmented server frame: (opcode, payload)."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(n)


def _source_address(index: int) -> str:
    """A loopback address of its own for display ``index`` (per-address connection limits stay out of it)."""
    return f"127.1.{index // 250}.{index % 250 + 1}"


async def _displays(url: str, office: str, first: int, count: int, reports: Any, stop: EventType) -> None:
    host, port = urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or 80
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    received: dict[str, list[float]] = {}
    alive, failed = 0, 0
    writers: list[asyncio.StreamWriter] = []
    subscribe = json.dumps({"id": 1, "type": "subscribe", "view": "lobby", "office": office}).encode()

    async def display(index: int) -> None:
        nonlocal alive, failed
        try:
            async with gate:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, local_addr=(_source_address(index), 0), limit=2**20), 60)
                writers.append(writer)
                key = base64.b64encode(os.urandom(16)).decode()
                writer.write(f"GET /api/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                             .encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                if not head.startswith(b"HTTP/1.1 101"):
                    raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
                writer.write(_frame(TEXT, subscribe))
                while True:
                    opcode, payload = await asyncio.wait_for(_read_frame(reader), 60)
                    if opcode == PING:
                        writer.write(_frame(PONG, payload))
                    elif opcode == TEXT and payload.startswith(b'{"id":1,"type":"snapshot"'):
                        break
            alive += 1
            while True:  # idle: answer pings, note calls
                opcode, payload = await _read_frame(reader)
                if opcode == PING:
                    writer.write(_frame(PONG, payload))
                elif opcode == CLOSE:
                    break
                elif opcode == TEXT and b'"ticket.called"' in payload:
                    at = time.monotonic()
                    number = json.loads(payload)["event"]["ticket"]["number"]
                    times = received.setdefault(number, [])
                    times.append(at)
                    if len(times) == alive:
                        reports.put(("call", number, times))
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as e:
            failed += 1
            if failed <= 3:
                reports.put(("error", f"display {index}: {type(e).__name__}: {e}"))

    tasks = [asyncio.create_task(display(i)) for i in range(first, first + count)]
    while alive + failed < count:
        await asyncio.sleep(0.2)
    reports.put(("ready", alive, failed))
    await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    for writer in writers:
        writer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def client_process(url: str, office: str, first: int, count: int, reports: Any, stop: EventType) -> None:
    """One client process's share of the displays."""
    asyncio.run(_displays(url, office, first, count, reports, stop))


# --- the measurements -------------------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    """Resident memory of a process, KiB (Linux)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def first_message(session: aiohttp.ClientSession, url: str, kind: str, **params: str) -> bytes:
    """Subscribe to a view and return the bytes of its first ``kind`` message."""
    async with session.ws_connect(f"{url}/api/ws", max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"id": 1, "type": "subscribe", **params}))
        async for msg in ws:
            if f'"type":"{kind}"' in msg.data:
                return msg.data.encode()
    raise RuntimeError(f"no {kind} message")


async def sizes(url: str, office: str, staff: aiohttp.ClientSession) -> dict[str, int]:
    """Bytes of each view a display, a phone or a counter panel starts with."""
    async with aiohttp.ClientSession() as anonymous:
        out = {"lobby snapshot (WebSocket)": len(await first_message(anonymous, url, "snapshot", view="lobby", office=office)),
               "congestion view (WebSocket)": len(await first_message(anonymous, url, "view", view="congestion", office=office))}
        async with anonymous.get(f"{url}/api/offices/{office}/state") as r:
            out["GET …/state, public"] = len(await r.read())
    out["counter snapshot (staff)"] = len(await first_message(staff, url, "snapshot", view="counter", office=office,
                                                              counter="1"))
    async with staff.get(f"{url}/api/offices/{office}/state") as r:
        out["GET …/state, staff"] = len(await r.read())
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--displays", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4, help="client processes sharing the displays")
    parser.add_argument("--waiting", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-password")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the server and the clients
    if args.displays + 100 > hard:
        raise SystemExit(f"the open-file hard limit is {hard}: raise it (ulimit -Hn) for {args.displays} displays")
    print_calibration()
    print(f"# idle lobby displays — open files {soft} → {hard}")
    server, url = await start_server(args.user, args.password)
    office, reports, stop = "bench", None, None
    procs: list[Any] = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as staff:
            async with staff.post(f"{url}/api/session", json={"username": args.user, "password": args.password}) as r:
                headers = {"X-CSRF-Token": (await r.json())["csrf_token"]}
            async with staff.post(f"{url}/api/offices/{office}/counters/1/open", headers=headers) as r:
                assert r.status == 200, await r.text()

            async def issue(n: int) -> None:
                for _ in range(n):
                    async with staff.post(f"{url}/api/offices/{office}/tickets", json={"procedure": "application"}) as r:
                        assert r.status == 201, await r.text()

            await asyncio.gather(*(issue(args.waiting // 16 + (i < args.waiting % 16)) for i in range(16)))
            print(f"\n{args.waiting} waiting.\n\n| view | bytes |\n|---|---|")
            for name, size in (await sizes(url, office, staff)).items():
                print(f"| {name} | {size:,} |")

            # Warm up the server's code paths and allocator, then take the baseline.
            async with aiohttp.ClientSession() as warm:
                for _ in range(20):
                    await first_message(warm, url, "snapshot", view="lobby", office=office)
            await asyncio.sleep(2)
            before = rss_kib(server.pid)

            ctx = mp.get_context("spawn")
            reports, stop = ctx.Queue(), ctx.Event()
            share = [args.displays // args.processes + (i < args.displays % args.processes) for i in range(args.processes)]
            began = time.monotonic()
            procs = [ctx.Process(target=client_process, args=(url, office, sum(share[:i]), n, reports, stop))
                     for i, n in enumerate(share)]
            for p in procs:
                p.start()
            alive = failed = ready = 0
            loop = asyncio.get_running_loop()
            while ready < len(procs):
                kind, *rest = await loop.run_in_executor(None, reports.get, True, 900)
                if kind == "ready":
                    ready, alive, failed = ready + 1, alive + rest[0], failed + rest[1]
                elif kind == "error":
                    print(f"  ({rest[0]})")
            connect_s = time.monotonic() - began
            await asyncio.sleep(5)  # let the last snapshots' buffers go
            after = rss_kib(server.pid)
            per_display = (after - before) / max(alive, 1)
            print(f"\n| idle lobby displays | connected | failed | connect s | server RSS before MiB | after MiB | "
                  f"per display KiB |\n|---|---|---|---|---|---|---|\n"
                  f"| {args.displays} | {alive} | {failed} | {connect_s:.1f} | {before / 1024:.0f} | "
                  f"{after / 1024:.0f} | {per_display:.1f} |")

            latencies: list[float] = []
            delivered = 0
            for _ in range(args.calls):
                sent = time.monotonic()
                async with staff.post(f"{url}/api/offices/{office}/counters/1/call-next", headers=headers) as r:
                    number = (await r.json())["ticket"]["number"]
                got, deadline = 0, time.monotonic() + 30
                while got < len(procs) and time.monotonic() < deadline:
                    try:
                        kind, *rest = await loop.run_in_executor(None, reports.get, True, 1)
                    except queue.Empty:
                        continue
                    if kind == "call" and rest[0] == number:
                        got += 1
                        delivered += len(rest[1])
                        latencies += [t - sent for t in rest[1]]
                for action in ("start", "finish"):
                    async with staff.post(f"{url}/api/offices/{office}/counters/1/{action}", headers=headers) as r:
                        await r.read()
            if latencies:
                print(f"\n| call → idle displays | calls | deliveries | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n"
                      f"| lobby view | {args.calls} | {delivered} of {alive * args.calls} | "
                      f"{percentile(latencies, 50) * 1000:.0f} | {percentile(latencies, 99) * 1000:.0f} | "
                      f"{max(latencies) * 1000:.0f} |")
            print(f"\nserver RSS at the end: {rss_kib(server.pid) / 1024:.0f} MiB")
    finally:
        if stop is not None:
            stop.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    asyncio.run(main())
