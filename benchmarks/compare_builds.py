"""Two builds side by side in one run: issue rate and p99, fresh memory, Valkey's time per step.

    .venv/bin/python benchmarks/compare_builds.py --old /tmp/old-tree          # OLD = another checkout
    git worktree add --detach /tmp/old-tree aa834ea                            # e.g. the earlier build

Rounds alternate OLD and NEW (OLD first in odd rounds, NEW first in even ones), each round a fresh
server of each build on the benchmark office (``bench_server.py``: embedded Valkey), so a machine
that slows down or speeds up during the run weighs on both alike. Each round measures:

* the server process's resident memory once it answers (``VmRSS`` of the main process; the
  estimator's and Valkey's processes are their own);
* ticket issue at concurrency 1 and 16 (``api_load.issue_load``): tickets/s and p99;
* Valkey's own time per step, from its slow log with a threshold of 0 µs (every command logged with
  its duration): issue steps during the c16 run; call-next, start and finish steps of a counter
  working through tickets. Both builds' steps are found whatever their form (``EVALSHA`` with the op
  in its JSON request, or ``FCALL mg_<op>``).

Medians over the rounds are printed, with each build's figures per round below them.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from pathlib import Path
from typing import Any, Final

import aiohttp
from api_load import issue_load
from bench_server import BENCH_OFFICE, start_server
from calibration import print_calibration
from redis.asyncio import Redis

SMOKE_ARGS: Final = ["--rounds", "1", "--tickets", "40", "--calls", "10"]
"""A small configuration the test suite runs (tests/test_benchmarks.py)."""

USER: Final = "bench"
PASSWORD: Final = "bench-password"
CONFIG: Final = '[server]\nalways_open = true\ndata_dir = "data"\n' + BENCH_OFFICE
"""The benchmark office with only the server keys every build knows (no WebSocket limits: none are opened)."""
ROOT: Final = Path(__file__).resolve().parent.parent


def _rss_kib(pid: int) -> int:
    """Resident memory of one process (kB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _step_name(command: bytes) -> str | None:
    """The store operation a slow-log entry ran, or None when it is not a store step.

    The slow log keeps each argument's first 128 bytes: enough for ``FCALL mg_issue`` or the
    ``{"op": "issue", …`` at the head of an EVALSHA's JSON request."""
    if match := re.match(rb'(?i)FCALL mg_(\w+)', command):
        return match[1].decode()
    if match := re.match(rb'(?i)EVALSHA \w+ \d+ .*?\{"op": "(\w+)"', command):
        return match[1].decode()
    return None


async def _step_micros(valkey: Redis, wanted: set[str]) -> dict[str, list[int]]:
    """Durations (µs) of the logged store steps named in ``wanted``, then the log emptied."""
    entries = await valkey.slowlog_get(100_000)
    await valkey.slowlog_reset()
    found: dict[str, list[int]] = {}
    for entry in entries:
        name = _step_name(entry["command"])
        if name in wanted:
            found.setdefault(name, []).append(int(entry["duration"]))
    return found


async def _counter_steps(url: str, calls: int) -> None:
    """A counter signs in, opens and works through ``calls`` tickets (call-next, start, finish)."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.post(f"{url}/api/session", json={"username": USER, "password": PASSWORD}) as r:
            headers = {"X-CSRF-Token": (await r.json())["csrf_token"]}
        base = f"{url}/api/offices/bench/counters/1"
        async with session.post(f"{base}/open", headers=headers) as r:
            await r.read()
        for _ in range(calls):
            for action in ("call-next", "start", "finish"):
                async with session.post(f"{base}/{action}", headers=headers) as r:
                    if r.status != 200:
                        raise RuntimeError(f"{action}: {r.status} {await r.text()}")


async def measure(tree: Path, tickets: int, calls: int) -> dict[str, Any]:
    """One fresh server of the build at ``tree``: its figures."""
    server, url = await start_server(USER, PASSWORD, CONFIG, tree=tree)
    try:
        rss = _rss_kib(server.pid)
        socket = Path(server.args[server.args.index("--config") + 1]).parent / "data" / "valkey.sock"
        valkey = Redis(unix_socket_path=str(socket))
        await valkey.config_set("slowlog-log-slower-than", 0)
        await valkey.config_set("slowlog-max-len", 100_000)
        await issue_load(url, "bench", "application", 16, 300)  # warm-up
        c1 = await issue_load(url, "bench", "application", 1, tickets)
        await valkey.slowlog_reset()
        c16 = await issue_load(url, "bench", "application", 16, tickets)
        issued = await _step_micros(valkey, {"issue"})
        await _counter_steps(url, calls)
        counter = await _step_micros(valkey, {"call_next", "start", "finish"})
        await valkey.aclose()
    finally:
        server.terminate()
        server.wait()
    micros = {**issued, **counter}
    return {"rss_mb": rss / 1024, "c1": c1["per_second"], "c1_p99": c1["p99_ms"], "c16": c16["per_second"],
            "c16_p99": c16["p99_ms"], **{f"us_{k}": statistics.median(v) for k, v in micros.items()}}


COLUMNS: Final = [("c1", "issue c1 /s", 0), ("c1_p99", "c1 p99 ms", 1), ("c16", "issue c16 /s", 0),
                  ("c16_p99", "c16 p99 ms", 1), ("rss_mb", "fresh RSS MB", 0), ("us_issue", "Valkey µs issue", 1),
                  ("us_call_next", "µs call-next", 1), ("us_start", "µs start", 1), ("us_finish", "µs finish", 1)]


def _row(name: str, figures: dict[str, Any]) -> str:
    cells = [f"{figures[k]:.{digits}f}" if k in figures else "–" for k, _, digits in COLUMNS]
    return f"| {name} | " + " | ".join(cells) + " |"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, help="the other checkout (OLD); default: this tree against itself")
    parser.add_argument("--new", type=Path, default=ROOT, help="the checkout measured as NEW (default: this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tickets", type=int, default=2000, help="tickets per issue run (each concurrency)")
    parser.add_argument("--calls", type=int, default=300, help="call-next/start/finish rounds timed in Valkey")
    args = parser.parse_args()
    print_calibration()
    builds = {"OLD": (args.old or args.new).resolve(), "NEW": args.new.resolve()}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    began = time.perf_counter()
    for round_ in range(args.rounds):
        order = list(builds) if round_ % 2 == 0 else list(reversed(builds))
        for name in order:
            results[name].append(await measure(builds[name], args.tickets, args.calls))
    print(f"# {args.rounds} interleaved rounds in {time.perf_counter() - began:.0f} s; "
          + "; ".join(f"{name} = {tree}" for name, tree in builds.items()))
    header = "| build | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    print("\nmedian of the rounds:\n\n" + header + "\n|" + "---|" * (len(COLUMNS) + 1))
    for name, runs in results.items():
        keys = {k for run in runs for k in run}
        print(_row(name, {k: statistics.median(run[k] for run in runs if k in run) for k in keys}))
    print("\nevery round:\n\n" + header + "\n|" + "---|" * (len(COLUMNS) + 1))
    for round_ in range(args.rounds):
        for name, runs in results.items():
            print(_row(f"{name} round {round_ + 1}", runs[round_]))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
