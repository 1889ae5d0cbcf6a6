"""Others' call delivery while one client abuses WebSocket connections.

    .venv/bin/python benchmarks/ws_abuse.py                      # this tree's code
    .venv/bin/python benchmarks/ws_abuse.py --code /work/main    # another checkout, for a before/after

Starts a server (embedded Valkey) and ``--displays`` honest lobby displays, 10 per client address
(127.0.1.x). Times ``--calls`` calls from POST call-next to each display's receipt, first with
no abuse, then while one client (127.0.2.1) holds ``--stalled`` connections that subscribe to the
lobby and never read (tiny receive buffers), and ``--flooders`` connections that send subscribe
and unsubscribe as fast as they can (each subscribe costs a lobby snapshot of ``--waiting`` tickets).
A delivery not received within 3 s counts as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
from bench_live import ROOT, Display, Server, Staff, display_sessions  # benchmarks/ (run from here)
from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from stats import percentile

SMOKE_ARGS = ["--displays", "10", "--calls", "3", "--stalled", "20", "--flooders", "1", "--waiting", "50"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

ABUSER = "127.0.2.1"
SUBSCRIBE = json.dumps({"id": 1, "type": "subscribe", "view": "lobby", "office": "bench"}).encode()


def _frame(payload: bytes) -> bytes:
    """One masked client text frame."""
    mask = b"\x01\x02\x03\x04"
    head = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else bytes([0x81, 0xFE]) + len(payload).to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_stalled(port: int, count: int, sockets: list[socket.socket], refused: list[int]) -> None:
    """Open ``count`` connections from the abuser's address that subscribe and then never read."""
    for _ in range(count):
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        raw.bind((ABUSER, 0))
        raw.settimeout(10)
        try:
            raw.connect(("127.0.0.1", port))
            raw.sendall(b"GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            response = b""
            while b"\r\n\r\n" not in response:
                chunk = raw.recv(1)
                if not chunk:
                    break
                response += chunk
            if not response.startswith(b"HTTP/1.1 101"):
                refused.append(1)
                raw.close()
                continue
            raw.sendall(_frame(SUBSCRIBE))
            sockets.append(raw)
        except OSError:
            refused.append(1)
            raw.close()


async def flood(url: str, counts: dict[str, int], stop: asyncio.Event) -> None:
    """Subscribe and unsubscribe as fast as the socket takes it, reading the answers."""
    connector = aiohttp.TCPConnector(limit=0, local_addr=(ABUSER, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            ws = await session.ws_connect(f"{url}/api/ws", max_msg_size=0)
        except aiohttp.WSServerHandshakeError:
            counts["flooders refused"] += 1
            return

        async def read() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and '"rate_limited"' in msg.data:
                    counts["answered rate_limited"] += 1

        reader = asyncio.create_task(read())
        i = 0
        while not stop.is_set() and not ws.closed:
            i += 1
            message = {"id": i, "type": "subscribe", "view": "lobby", "office": "bench"} if i % 2 else \
                {"id": i, "type": "unsubscribe", "subscription": i - 1}
            try:
                await ws.send_json(message)
            except (ConnectionError, RuntimeError):
                break
            counts["flood messages sent"] += 1
            if i % 20 == 0:
                await asyncio.sleep(0)
        if ws.closed:
            counts["flooders closed by the server"] += 1
        reader.cancel()
        await ws.close()


async def measure(staff: Staff, displays: list[Display], calls: int) -> tuple[list[float], int]:
    """Call ``calls`` numbers; latencies of the deliveries, and how many were lost."""
    latencies: list[float] = []
    lost = 0
    for _ in range(calls):
        sent = time.perf_counter()
        call = await staff.call()
        if call is None:
            raise RuntimeError("a call was refused")
        number = call[0]
        deadline = time.perf_counter() + 3
        while time.perf_counter() < deadline and not all(number in d.calls for d in displays if d.closed_at is None):
            await asyncio.sleep(0.01)
        got = [d.calls[number] - sent for d in displays if number in d.calls]
        latencies += got
        lost += len(displays) - len(got)
        await asyncio.sleep(0.1)
    return latencies, lost


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=ROOT, help="the source tree whose server is measured")
    parser.add_argument("--displays", type=int, default=100)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--stalled", type=int, default=500)
    parser.add_argument("--flooders", type=int, default=5)
    parser.add_argument("--waiting", type=int, default=2000, help="tickets waiting: the size of each lobby snapshot")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-abuse-"))
    server = Server(args.code, workdir, 18000 + os.getpid() % 1000)
    print_calibration()  # before the server and its load start
    await server.start()
    sessions = display_sessions(args.displays, 10)
    stalled: list[socket.socket] = []
    try:
        print(f"# WebSocket abuse — code {args.code}, {args.displays} displays, {args.stalled} stalled + "
              f"{args.flooders} flooding connections from one address, {args.waiting} waiting")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            staff = Staff(http, server.url)
            await staff.sign_in()
            await staff.issue(args.waiting + 2 * args.calls)
            displays = [Display() for _ in range(args.displays)]
            tasks = [asyncio.create_task(d.run(sessions[i // 10], server.url)) for i, d in enumerate(displays)]
            await asyncio.wait_for(asyncio.gather(*(d.ready.wait() for d in displays)), 120)
            rows = [("no abuse", *await measure(staff, displays, args.calls))]

            counts: dict[str, int] = dict.fromkeys(("flood messages sent", "answered rate_limited", "flooders refused",
                                                    "flooders closed by the server"), 0)
            stop = asyncio.Event()
            flooders = [asyncio.create_task(flood(server.url, counts, stop)) for _ in range(args.flooders)]
            refused: list[int] = []
            opener = threading.Thread(target=open_stalled, args=(server.port, args.stalled, stalled, refused))
            opener.start()
            await asyncio.to_thread(opener.join)
            rows.append(("one client abusing", *await measure(staff, displays, args.calls)))
            stop.set()
            await asyncio.gather(*flooders)

            print("\n| honest displays | deliveries | lost | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
            for name, latencies, lost in rows:
                print(f"| {name} | {len(latencies)} | {lost} | {percentile(latencies, 50) * 1000:.1f} | "
                      f"{percentile(latencies, 99) * 1000:.1f} | {max(latencies) * 1000:.1f} |")
            print(f"\nabuser: {len(stalled)} stalled connections accepted, {len(refused)} refused; "
                  + ", ".join(f"{k}: {v}" for k, v in counts.items())
                  + f"; displays dropped: {sum(d.closed_at is not None for d in displays)}")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for raw in stalled:
            raw.close()
        for session in sessions:
            await session.close()
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
