"""A server killed with SIGKILL leaves no process of its own behind (the estimates worker, the forkserver)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from .servers import ServerProcess, write_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (children, grandchildren, …)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[1], []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


async def test_a_killed_server_leaves_no_estimates_worker_or_forkserver(tmp_path: Path, valkey_url: str) -> None:
    # On the tests' Valkey: an embedded one is meant to outlive a killed server (the next start stops it).
    server = ServerProcess(write_config(tmp_path, redis_url=valkey_url))
    await server.start()
    assert server.process is not None
    below: set[int] = set()
    try:
        # The estimates run at start, so the forkserver and its worker (a grandchild) appear soon.
        for _ in range(600):
            below = descendants(server.process.pid)
            forkservers = {p for p in below if "multiprocessing.forkserver" in command(p)}
            workers = {p for p in below if (s := _stat(p)) is not None and s[1] in forkservers}
            if workers:
                break
            await asyncio.sleep(0.05)
        assert workers, f"no estimates worker below the server: {[command(p) for p in below]}"
        server.kill()
        left = below
        for _ in range(600):
            left = {p for p in below if alive(p)}
            if not left:
                break
            await asyncio.sleep(0.05)
        assert not left, f"left running after the server's SIGKILL: {[command(p)[:80] for p in left]}"
    finally:
        await server.stop()
        for pid in below:  # whatever a failed run left behind, so it does not pile up
            if alive(pid):
                os.kill(pid, 9)
