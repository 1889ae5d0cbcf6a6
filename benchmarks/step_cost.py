"""Valkey's own time per store step (µs inside Valkey), for this build and others, through ``QueueStore``.

    .venv/bin/python benchmarks/step_cost.py                          # this tree
    .venv/bin/python benchmarks/step_cost.py --ref aa834ea --ref main # and other builds (git worktrees)
    .venv/bin/python benchmarks/step_cost.py --tree /path/to/checkout # or any other checkout

Each build runs in its own process (``PYTHONPATH`` = its tree, so its own ``queue_server`` is
imported), against a fresh embedded Valkey (``queue_server/store/embedded.py``, as the tests start
it: its append-only file fsynced on every write), on the benchmark office (``bench_server.py``):
``--tickets`` issue steps, then as many rounds of call-next, start and finish at its counter. The
time is Valkey's ``INFO commandstats`` ``usec`` of the script commands (``FCALL``, ``EVALSHA``,
``EVAL``), the difference around each step (the INFO calls between are not script commands); the
median step of a run is its figure (the mean, printed too, also counts the steps during which a
shared machine descheduled Valkey). Nothing of the network or of Python is in these figures; the
fsync after each step does leave Valkey's caches cold for the next (``--no-aof`` turns the file off).
Rounds alternate the builds; medians over the rounds are printed. ``--ref`` makes (or reuses) a
detached worktree of the revision under ``/tmp/madoguchi-step-cost/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from bench_server import BENCH_OFFICE
from calibration import print_calibration

SMOKE_ARGS: Final = ["--tickets", "30", "--rounds", "1"]
"""A small run for tests/test_benchmarks.py: it must exit 0 and print its figures, in seconds."""

ROOT: Final = Path(__file__).resolve().parent.parent
WORKTREES: Final = Path("/tmp/madoguchi-step-cost")
SCRIPT_COMMANDS: Final = ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval")
CONFIG: Final = '[server]\nalways_open = true\ntimezone = "Asia/Tokyo"\n' + BENCH_OFFICE
"""The benchmark office (one procedure, one counter) with only the server keys every build knows."""


async def _script_usec(redis: Any) -> tuple[int, int]:
    """(calls, µs) of the script commands so far."""
    stats = await redis.info("commandstats")
    return (sum(int(stats.get(c, {}).get("calls", 0)) for c in SCRIPT_COMMANDS),
            sum(int(stats.get(c, {}).get("usec", 0)) for c in SCRIPT_COMMANDS))


async def measure(tickets: int, aof: bool = True) -> dict[str, float]:
    """One build (the ``queue_server`` on sys.path) against a fresh embedded Valkey: µs per step."""
    from redis.asyncio import Redis

    from queue_server.clock import Clock
    from queue_server.config import load_config
    from queue_server.store.embedded import EmbeddedRedis
    from queue_server.store.redis_store import QueueStore

    work = Path(tempfile.mkdtemp(prefix="madoguchi-step-cost-"))
    (work / "office.toml").write_text(CONFIG, encoding="utf-8")
    config = load_config(work / "office.toml")
    valkey = EmbeddedRedis(work / "valkey")
    await valkey.start()
    redis = Redis.from_url(valkey.url)
    try:
        if not aof:  # the embedded server fsyncs every write: without it, Valkey's caches stay warm between steps
            await redis.config_set("appendonly", "no")
        store = QueueStore(redis, config, Clock(config.server.timezone), prefix="cost:")
        if hasattr(store, "load_functions"):
            await store.load_functions()
        await store.set_counter_status("bench", "1", "open")  # also begins the business day
        await store.issue("bench", "application")  # the script cached, every key of the office there
        spent: dict[str, list[float]] = {"issue": [], "call_next": [], "finish": []}

        async def timed(op: str, step: Any) -> None:
            first = await _script_usec(redis)
            await step
            last = await _script_usec(redis)
            if op in spent:
                spent[op].append((last[1] - first[1]) / (last[0] - first[0]))

        for _ in range(tickets):
            await timed("issue", store.issue("bench", "application"))
        for _ in range(tickets):
            await timed("call_next", store.call_next("bench", "1"))
            await timed("start", store.counter_op("start", "bench", "1"))  # finish needs a serving ticket
            await timed("finish", store.counter_op("finish", "bench", "1"))
        # The median: a step during which the shared machine descheduled Valkey is counted whole.
        return {op: statistics.median(v) for op, v in spent.items()} | {f"{op}_mean": statistics.mean(v)
                                                                         for op, v in spent.items()}
    finally:
        await redis.aclose()
        await valkey.stop()


def _tree_of(ref: str) -> Path:
    """A detached worktree of ``ref`` (made once, reused)."""
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True,
                         check=True).stdout.strip()
    tree = WORKTREES / rev
    if not tree.exists():
        WORKTREES.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)
    return tree


def _run_build(tree: Path, tickets: int, aof: bool) -> dict[str, float]:
    """Measure the build at ``tree`` in a child process importing that tree's ``queue_server``."""
    done = subprocess.run([sys.executable, __file__, "--measure", "--tickets", str(tickets),
                           *([] if aof else ["--no-aof"])], cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1000, help="issue steps, then call-next + finish rounds")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each build, alternating the builds")
    parser.add_argument("--ref", action="append", default=[], help="another build: a git revision of this repository")
    parser.add_argument("--tree", action="append", default=[], type=Path, help="another build: a checkout's path")
    parser.add_argument("--no-aof", action="store_true",
                        help="Valkey without its append-only file (the embedded server fsyncs every write)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(measure(args.tickets, aof=not args.no_aof))))
        return
    print_calibration()
    builds = {"this tree": ROOT, **{ref: _tree_of(ref) for ref in args.ref}, **{str(t): t.resolve() for t in args.tree}}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in builds}
    for round_ in range(args.rounds):
        for name in (list(builds) if round_ % 2 == 0 else list(reversed(builds))):
            runs[name].append(_run_build(builds[name], args.tickets, aof=not args.no_aof))
    print(f"\nValkey µs per step (INFO commandstats of FCALL/EVALSHA/EVAL): median step, mean in brackets; "
          f"median of {args.rounds} rounds, {args.tickets} issues then {args.tickets} call-next + start + finish"
          f"{', append-only file off' if args.no_aof else ''}:\n")
    print("| build | issue | call-next | finish |\n|---|---|---|---|")
    for name, results in runs.items():
        cells = [f"{statistics.median(r[op] for r in results):.1f} ({statistics.median(r[op + '_mean'] for r in results):.1f})"
                 for op in ("issue", "call_next", "finish")]
        print(f"| {name} ({builds[name]}) | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
