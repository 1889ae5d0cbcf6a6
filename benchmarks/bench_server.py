"""Start a madoguchi server for a benchmark: a benchmark office, a staff user, embedded Valkey.

Shared by the benchmark scripts (run from this folder's parent: ``.venv/bin/python benchmarks/x.py``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

BENCH_OFFICE = """
[[offices]]
id = "bench"
name = "ベンチマーク"

[[offices.procedures]]
id = "application"
name = "交付申請受付"
number = { prefix = "A", width = 4 }
service_minutes = 15

[[offices.counters]]
id = "1"
procedures = ["application"]
"""
"""The one-counter office every benchmark serves."""

BENCH_CONFIG = """
[server]
always_open = true
data_dir = "data"
# api_load.py's thousand displays all connect from 127.0.0.1; real displays each have an address.
ws_connections_per_address = 20000
""" + BENCH_OFFICE


async def start_server(user: str, password: str, config: str = BENCH_CONFIG,
                       tree: Path | None = None, options: Sequence[str] = ()) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m queue_server serve`` (with more ``options``, e.g. ``--workers 4``) on a fresh data
    folder, from ``tree`` (another checkout, to compare) or this one, with one contractor ``user``; return
    the process and its URL once it answers."""
    workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-"))
    (workdir / "bench.toml").write_text(config, encoding="utf-8")
    cli = [sys.executable, "-m", "queue_server"]
    where: dict[str, Any] = {} if tree is None else {"cwd": tree, "env": {**os.environ, "PYTHONPATH": str(tree)}}
    subprocess.run([*cli, "add-user", user, "--role", "contractor", "--config", str(workdir / "bench.toml"),
                    "--password-stdin"], input=password + "\n", text=True, check=True, capture_output=True, **where)
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen([*cli, "serve", "--config", str(workdir / "bench.toml"), "--port", str(port), *options],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **where)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_up(url)
    except BaseException:
        server.kill()
        raise
    return server, url


async def wait_until_up(url: str) -> None:
    """Poll until the server answers (30 s at most)."""
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            try:
                async with s.get(f"{url}/api/offices") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"no server at {url}")
