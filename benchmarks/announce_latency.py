"""Time from a counter's call to the lobby display holding playable announcement audio.

Against a running server (``madoguchi serve --demo``), as the display does it: a WebSocket
follows the office's lobby view; each measurement starts just before POST call-next (or recall)
and ends when the call's event has arrived, the announcement endpoint has answered and every WAV
it lists (chime and voice) has been downloaded in full.

- cold: a new number each time, its clips never rendered (the speech cache folder is emptied
  first, so also numbers called on earlier days are cold); the server starts rendering when the
  call event reaches it, and the display's request joins that render.
- warm: a recall of the same ticket: the same words, answered from the cache.

Run::

    .venv/bin/python benchmarks/announce_latency.py [--calls 100] [--lang ja|en|…]   # starts its own demo server
    madoguchi serve --demo &                       # or against one that runs: --url (and its --cache-dir)
    .venv/bin/python benchmarks/announce_latency.py --url http://127.0.0.1:8080 [--cache-dir var/demo/speech]

Without ``--url`` the script runs ``serve --demo`` on the demo configuration copied into a temporary
folder (its own embedded Valkey and speech cache there, on a free port) and stops it at the end.

Demo staff ``staff`` / ``madoguchi-demo`` works at counter 5 (electronic certificates) of office ``honcho``:
a card pickup would wait for its card preparation (back-office stage) before it can be called.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import aiohttp

from bench_server import wait_until_up
from calibration import print_calibration  # benchmarks/calibration.py: the machine's speed first
from stats import percentile  # benchmarks/stats.py (scripts run from this folder)

SMOKE_ARGS = ["--calls", "2", "--pause", "0"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

ROOT: Final = Path(__file__).resolve().parents[1]
OFFICE: Final = "honcho"
COUNTER: Final = "5"
PROCEDURE: Final = "ecert"



class Bench:
    """One staff session and one lobby WebSocket on the server."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, csrf: str) -> None:
        self.http, self.ws, self.csrf = http, ws, csrf
        self.started = 0.0

    async def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        async with self.http.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf}) as resp:
            return resp.status, await resp.json()

    async def counter(self, action: str) -> tuple[int, dict[str, Any]]:
        return await self.post(f"/api/offices/{OFFICE}/counters/{COUNTER}/{action}")

    async def event_for(self, number: str, kinds: set[str]) -> dict[str, Any]:
        """The next lobby event of ``kinds`` about ticket ``number``."""
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), 30)
            event = message.get("event") or {}
            if message.get("type") == "event" and event.get("type") in kinds and event["ticket"]["number"] == number:
                return event

    async def playable(self, number: str, lang: str) -> tuple[float, float, float]:
        """Ms since the call until: the endpoint answered; chime + Japanese fetched; every WAV fetched."""
        started = self.started
        async with self.http.get(f"/api/offices/{OFFICE}/announcement",
                                 params={"number": number, "counter": COUNTER, "lang": lang}) as resp:
            answer = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"announcement {number}: {resp.status} {answer}")
        times = [time.perf_counter()]
        for clip in answer["audio"]:
            async with self.http.get(clip["url"]) as resp:
                body = await resp.read()
                if resp.status != 200 or len(body) < 1000:
                    raise RuntimeError(f"{clip['url']}: {resp.status}, {len(body)} bytes")
            times.append(time.perf_counter())
        answered, japanese, everything = times[0], times[2], times[-1]
        return (answered - started) * 1000, (japanese - started) * 1000, (everything - started) * 1000

    async def call(self, action: str, lang: str) -> tuple[float, float, float]:
        """POST ``action`` (call-next or recall) and wait until its announcement is playable."""
        self.started = time.perf_counter()
        status, body = await self.counter(action)
        if status != 200:
            raise RuntimeError(f"{action}: {status} {body}")
        number = body["ticket"]["number"]
        await self.event_for(number, {"ticket.called", "ticket.recalled"})
        return await self.playable(number, body["ticket"].get("lang") or lang)


async def run(args: argparse.Namespace) -> None:
    cache = Path(args.cache_dir)
    if cache.is_dir():
        removed = 0
        for clip in cache.glob("*.wav"):
            clip.unlink(missing_ok=True)
            removed += 1
        print(f"emptied the speech cache {cache} ({removed} clips)")
    else:
        print(f"warning: no speech cache at {cache}; numbers called before may be warm")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=args.url, cookie_jar=jar) as http:
        async with http.post("/api/session", json={"username": args.user, "password": args.password}) as resp:
            session = await resp.json()
            if resp.status != 200:
                raise SystemExit(f"sign-in failed: {session}")
        ws = await http.ws_connect("/api/ws")
        await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": OFFICE})
        bench = Bench(http, ws, session["csrf_token"])
        await bench.counter("open")
        # Free the counter if an earlier run left a ticket at it.
        for action in ("start", "finish"):
            await bench.counter(action)
        cold: list[tuple[float, float, float]] = []
        warm: list[tuple[float, float, float]] = []
        for _ in range(args.calls):
            async with http.post(f"/api/offices/{OFFICE}/tickets", json={"procedure": PROCEDURE, "lang": args.lang}) as resp:
                if resp.status != 201:
                    raise SystemExit(f"issuing a ticket failed: {await resp.text()}")
            cold.append(await bench.call("call-next", args.lang))
            warm.append(await bench.call("recall", args.lang))
            await bench.counter("start")
            await bench.counter("finish")
            await asyncio.sleep(args.pause)
        await ws.close()

    stages = ("endpoint answered", "chime + Japanese WAV fetched", "every WAV fetched")
    rows = [(f"{kind}: {stage}", [sample[i] for sample in samples])
            for kind, samples in (("cold", cold), ("warm", warm)) for i, stage in enumerate(stages)
            if args.lang != "ja" or i < 2]
    print(f"\n{args.calls} calls, visitor language {args.lang}, server {args.url}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}\n")
    print("| from POST to …                           |   n |  p50 ms |  p99 ms |  max ms |")
    print("|------------------------------------------|----:|--------:|--------:|--------:|")
    for label, values in rows:
        print(f"| {label:40} | {len(values):3} | {statistics.median(values):7.1f} | "
              f"{percentile(values, 99):7.1f} | {max(values):7.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(rows), indent=1), encoding="utf-8")


@contextlib.contextmanager
def demo_server() -> Iterator[tuple[str, Path]]:
    """``serve --demo`` on a copy of the demo configuration in a temporary folder: its URL and speech cache."""
    with tempfile.TemporaryDirectory(prefix="madoguchi-bench-") as tmp:
        config = Path(tmp) / "config" / "demo.toml"     # its data_dir "../var/demo": inside tmp
        config.parent.mkdir()
        shutil.copy(ROOT / "config" / "demo.toml", config)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "queue_server", "serve", "--demo", "--config", str(config),
                                   "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(wait_until_up(url))
            yield url, Path(tmp) / "var" / "demo" / "speech"
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running demo server (default: start one, see above)")
    parser.add_argument("--user", default="staff")
    parser.add_argument("--password", default="madoguchi-demo")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--lang", default="ja", help="the visitor's language (ja: one voice clip; others: two)")
    parser.add_argument("--cache-dir", help="the server's speech cache, emptied first so every new number is cold "
                                            "(default: the started server's; with --url var/demo/speech)")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between calls")
    parser.add_argument("--json", help="also write the raw times (ms) to this file")
    args = parser.parse_args()
    print_calibration()
    if args.url:
        args.cache_dir = args.cache_dir or str(ROOT / "var" / "demo" / "speech")
        asyncio.run(run(args))
        return
    with demo_server() as (url, cache):
        args.url, args.cache_dir = url, args.cache_dir or str(cache)
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
