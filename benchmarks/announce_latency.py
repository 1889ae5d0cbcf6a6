"""Time from a counter's call to the lobby display holding playable announcement audio; and a burst.

Latency (the default), against a running server (``madoguchi serve --demo``), as the display does it: a WebSocket
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

Burst (``--burst``): what a real lobby display (Chromium, the page's own announcer) does with 11 calls
in 27 s at six counters — first calls and recalls, a third of the visitors of another language.
Starts its own server (embedded Valkey, empty speech cache) from each ``--tree`` in turn, ``--runs``
times, alternating, so that an earlier build (e.g. ``git archive main``) and this one meet the same
machine. Reported per build: calls spoken and not (and why), the delay from the call reaching the
display to its announcement's first sound (p50, max), announcements made, visitor languages spoken
or left out. ::

    .venv/bin/python benchmarks/announce_latency.py --burst --tree /tmp/old-tree --tree . --runs 2
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
from collections import Counter
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

BURST_COUNTERS: Final = 6
BURST_USER, BURST_PASSWORD = "bench", "bench-password"
BURST_CONFIG: Final = """
[server]
always_open = true
data_dir = "data"

[[offices]]
id = "bench"
name = "ベンチマーク"

[[offices.procedures]]
id = "application"
name = "交付申請受付"
number = { range = [101, 999] }
service_minutes = 15
""" + "".join(f'\n[[offices.counters]]\nid = "{n}"\nprocedures = ["application"]\n'
              for n in range(1, BURST_COUNTERS + 1))
BURST: Final = [("1", "call-next"), ("2", "call-next"), ("3", "call-next"), ("1", "recall"), ("4", "call-next"),
                ("5", "call-next"), ("2", "recall"), ("6", "call-next"), ("3", "recall"), ("4", "recall"),
                ("5", "recall")]
"""The burst's calls in order, evenly spread over ``--seconds``: six first calls, five recalls."""
LANGS: Final = ["ja", "en", "ja", "zh", "ja", "ja"]
"""The visitors' languages, ticket by ticket: the demo's usual mix has a few visitors of another language."""
CHROMIUM: Final = os.environ.get("MADOGUCHI_CHROMIUM", "/usr/bin/chromium")


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


async def burst_run(tree: Path, browser: Any, seconds: float) -> list[dict[str, Any]]:
    """One burst on a fresh server from ``tree``; the display's log of what it did with each call."""
    from bench_server import start_server  # benchmarks/bench_server.py

    server, url = await start_server(BURST_USER, BURST_PASSWORD, BURST_CONFIG, tree=tree)
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base_url=url, cookie_jar=jar) as http:
            async with http.post("/api/session", json={"username": BURST_USER, "password": BURST_PASSWORD}) as resp:
                csrf = (await resp.json())["csrf_token"]
            headers = {"X-CSRF-Token": csrf}
            for counter in range(1, BURST_COUNTERS + 1):
                async with http.post(f"/api/offices/bench/counters/{counter}/open", headers=headers) as resp:
                    if resp.status != 200:
                        raise SystemExit(f"opening counter {counter}: {await resp.text()}")
            for lang in LANGS:
                async with http.post("/api/offices/bench/tickets", json={"procedure": "application", "lang": lang}):
                    pass
            context = await browser.new_context(viewport={"width": 1920, "height": 1080})
            page = await context.new_page()
            await page.goto(f"{url}/display/bench")
            await page.wait_for_function("() => document.body.dataset.live === 'ready'")
            started = time.perf_counter()
            for index, (counter, action) in enumerate(BURST):
                await asyncio.sleep(max(0.0, started + index * seconds / (len(BURST) - 1) - time.perf_counter()))
                async with http.post(f"/api/offices/bench/counters/{counter}/{action}", headers=headers) as resp:
                    if resp.status != 200:
                        raise SystemExit(f"{action} at {counter}: {await resp.text()}")
            # Done when every call has its outcome and nothing is being spoken any more.
            await page.wait_for_function(
                f"() => window.madoguchiDisplay.announcements.length >= {len(BURST)}"
                " && !document.querySelector('.call-card.speaking')", timeout=120_000, polling=200)
            log: list[dict[str, Any]] = await page.evaluate("() => window.madoguchiDisplay.announcements")
            await context.close()
            return log
    finally:
        server.terminate()
        server.wait(timeout=30)


def burst_summary(name: str, logs: list[list[dict[str, Any]]]) -> str:
    """One table row per build: every run's calls together."""
    entries = [entry for log in logs for entry in log]
    spoken = [entry for entry in entries if entry["outcome"] == "spoken"]
    unspoken = Counter(entry["outcome"] for entry in entries if entry["outcome"] != "spoken")
    delays = [entry["late_ms"] / 1000 for entry in spoken]
    # The old display has no groups: one announcement per spoken call.
    announcements = sum(len({e.get("group", i) for i, e in enumerate(log) if e["outcome"] == "spoken"}) for log in logs)
    foreign = [entry for entry in spoken if entry.get("lang", "ja") != "ja" or entry.get("skipped")]
    played = sum(1 for entry in foreign if len(entry.get("langs", [])) > 1)
    left_out = sum(1 for entry in foreign if entry.get("skipped"))
    not_spoken = ", ".join(f"{n} {outcome}" for outcome, n in sorted(unspoken.items())) or "0"
    return (f"| {name} | {len(entries)} | {len(spoken)} | {not_spoken} | {statistics.median(delays):.1f} s | "
            f"{max(delays):.1f} s | {announcements} | {played} / {left_out} |")


async def burst(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    trees = [Path(tree).resolve() for tree in args.tree or [str(ROOT)]]
    names = {}
    for tree in trees:
        commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
        names[tree] = f"{tree.name} ({commit})" if commit else str(tree)
    logs: dict[Path, list[list[dict[str, Any]]]] = {tree: [] for tree in trees}
    args_chromium = ["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args_chromium)
        try:
            for run in range(args.runs):
                for tree in trees:
                    log = await burst_run(tree, browser, args.seconds)
                    logs[tree].append(log)
                    print(f"run {run + 1}, {names[tree]}: " + json.dumps(log, ensure_ascii=False))
        finally:
            await browser.close()
    print(f"\n{len(BURST)} calls in {args.seconds:g} s at {BURST_COUNTERS} counters, {args.runs} run(s) per build; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| build | calls | spoken | not spoken | start delay p50 | start delay max | announcements "
          "| visitor language spoken / left out |")
    print("|---|---:|---:|---|---:|---:|---:|---|")
    for tree in trees:
        print(burst_summary(names[tree], logs[tree]))


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
    parser.add_argument("--burst", action="store_true", help="a burst of calls on a real display (see above)")
    parser.add_argument("--tree", action="append", help="--burst: a checkout whose server to run (repeatable; "
                        "default: this one)")
    parser.add_argument("--runs", type=int, default=1, help="--burst: bursts per build, alternating builds")
    parser.add_argument("--seconds", type=float, default=27.0, help="--burst: from the first call to the last")
    args = parser.parse_args()
    print_calibration()
    if args.burst:  # starts a server of each build itself
        asyncio.run(burst(args))
        return
    if args.url:
        args.cache_dir = args.cache_dir or str(ROOT / "var" / "demo" / "speech")
        asyncio.run(run(args))
        return
    with demo_server() as (url, cache):
        args.url, args.cache_dir = url, args.cache_dir or str(cache)
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
