"""Resident memory of a fresh ``madoguchi serve --demo``, once it answers: the main process and its children.

    .venv/bin/python benchmarks/startup_memory.py                                    # this tree
    .venv/bin/python benchmarks/startup_memory.py --tree . --tree /work/main --tree /tmp/old-aa834ea

Each round starts one fresh server per tree (rounds alternate the trees' order) from that tree's
``config/demo.toml`` on a new data folder, with embedded Valkey, on a free port, and waits until
``GET /api/health`` answers 200 (``GET /api/offices`` for a build without it). Then it reads
``VmRSS`` from ``/proc/<pid>/status`` of the main process, and of each of its descendants (the
estimates worker and its forkserver, Valkey) separately, and stops the server. Medians over the
rounds are printed, in MB (MiB): one page is counted once per process that maps it, so a
descendant's figure includes what it shares with others.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Final

import aiohttp
from calibration import print_calibration

ROOT: Final = Path(__file__).resolve().parent.parent
SMOKE_ARGS: Final = ["--rounds", "1"]
"""A small configuration the test suite may run."""
START_TIMEOUT_S: Final = 120.0
SETTLE_S: Final = 1.0
"""After the first 200, the start-up work scheduled right behind it (first estimates) gets this long."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """``VmRSS`` of one process in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _command(pid: int) -> str:
    """A short name for a process: its program and, for Python, the module or script it runs."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    words = [a.decode(errors="replace") for a in args if a]
    program = Path(words[0]).name if words else "?"
    if "valkey" in program or "redis" in program:
        return "valkey"
    rest = " ".join(words[1:])
    if "forkserver" in rest:
        return "python (forkserver)"
    if "multiprocessing" in rest or "spawn_main" in rest:
        return "python (worker)"
    return f"{program} {rest[:40]}"


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children…), from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(f"{url}/api/health") as r:
            if r.status == 200:
                return True
            if r.status != 404:
                return False
        async with session.get(f"{url}/api/offices") as r:  # a build from before /api/health
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def measure(tree: Path) -> dict[str, float]:
    """One fresh demo server of the build at ``tree``: MiB of the main process and of each descendant."""
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-memory-"))
    demo = (tree / "config" / "demo.toml").read_text(encoding="utf-8")
    config = workdir / "demo.toml"
    config.write_text(re.sub(r'(?m)^data_dir = .*$', 'data_dir = "data"', demo, count=1), encoding="utf-8")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "queue_server", "serve", "--demo", "--config", str(config), "--port", str(port)],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not await _answers(session, url):
                if server.poll() is not None:
                    raise RuntimeError(f"{tree}: server exited with {server.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{tree}: no answer within {START_TIMEOUT_S:g} s")
                await asyncio.sleep(0.1)
        await asyncio.sleep(SETTLE_S)
        figures = {"main": rss_mib(server.pid)}
        for child in descendants(server.pid):
            try:
                name = _command(child)
                figures[name] = figures.get(name, 0.0) + rss_mib(child)
            except (OSError, RuntimeError):
                continue  # gone meanwhile
        return figures
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, action="append", help="a checkout to measure (repeatable; default: this one)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print_calibration()
    trees = [t.resolve() for t in args.tree or [ROOT]]
    results: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    for round_ in range(args.rounds):
        for tree in trees if round_ % 2 == 0 else reversed(trees):
            results[tree].append(await measure(tree))
    print(f"# {args.rounds} interleaved rounds; VmRSS in MiB once /api/health answered, median of the rounds")
    print("\n| tree | main process | descendants (each) |\n|---|---|---|")
    for tree, runs in results.items():
        names = sorted({k for run in runs for k in run} - {"main"})
        others = ", ".join(f"{n} {statistics.median(r.get(n, 0.0) for r in runs):.0f}" for n in names)
        print(f"| {tree} | {statistics.median(r['main'] for r in runs):.0f} | {others} |")
    print("\nevery round (main process): " + "; ".join(
        f"{tree.name}: " + ", ".join(f"{r['main']:.0f}" for r in runs) for tree, runs in results.items()))


if __name__ == "__main__":
    asyncio.run(main())
