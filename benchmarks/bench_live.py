"""Server, staff and lobby-display clients for the robustness benchmarks (outage, WebSocket abuse).

The server runs from a chosen source tree: ``--code /path/to/checkout`` runs the same benchmark against another checkout (the code before a fix),
so before and after are measured by one script on one machine.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from bench_server import BENCH_OFFICE, wait_until_up  # benchmarks/ (scripts run from this folder)

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password"


def config_text(redis_url: str) -> str:
    """The benchmark office on ``redis_url``, with the default per-address limits (ws_abuse.py measures them)."""
    return f'[server]\nalways_open = true\ndata_dir = "data"\nredis_url = "{redis_url}"\n{BENCH_OFFICE}'


class Server:
    """``madoguchi serve`` from ``code`` on a benchmark office, and the staff user ``bench``."""

    def __init__(self, code: Path, workdir: Path, port: int, redis_url: str = "") -> None:
        self.code, self.workdir, self.port = code, workdir, port
        self.config = workdir / "bench.toml"
        self.config.write_text(config_text(redis_url), encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _cli(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        # Run from the tree's folder: ``-m queue_server`` then imports that tree's code.
        return subprocess.run([sys.executable, "-m", "queue_server", *args], cwd=self.code, text=True,
                              capture_output=True, check=True, **kwargs)

    async def start(self) -> None:
        """Create the staff user, start the server and wait until it answers."""
        self._cli("add-user", "bench", "--role", "contractor", "--config", str(self.config), "--password-stdin",
                  input=PASSWORD + "\n")
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - the child keeps its own copy
        self.process = subprocess.Popen([sys.executable, "-m", "queue_server", "serve", "--config", str(self.config),
                                         "--port", str(self.port)], cwd=self.code, stdout=log, stderr=log)
        log.close()
        try:
            await wait_until_up(self.url)
        except RuntimeError:
            raise RuntimeError(f"the server did not start; see {self.workdir / 'server.log'}") from None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()


class Staff:
    """The signed-in counter 1: call the next ticket, and finish it so the counter is free again."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url, self.headers = session, url, {}

    async def sign_in(self) -> None:
        async with self.session.post(f"{self.url}/api/session", json={"username": "bench", "password": PASSWORD}) as r:
            r.raise_for_status()
            self.headers = {"X-CSRF-Token": (await r.json())["csrf_token"]}
        await self.action("open")

    async def action(self, action: str) -> tuple[int, Any]:
        async with self.session.post(f"{self.url}/api/offices/bench/counters/1/{action}", headers=self.headers) as r:
            return r.status, await r.json(content_type=None)

    async def issue(self, count: int) -> None:
        for _ in range(count):
            async with self.session.post(f"{self.url}/api/offices/bench/tickets", json={"procedure": "application"}) as r:
                if r.status != 201:
                    raise RuntimeError(f"issue failed: {r.status} {await r.text()}")

    async def call(self) -> tuple[str, float] | None:
        """Call the next number (finishing it at once): the number and when the call was answered;
        None when the call was refused (e.g. 503)."""
        status, body = await self.action("call-next")
        answered = time.perf_counter()
        if status == 409 and body.get("error", {}).get("code") == "counter_busy":
            # A call answered just before an outage whose finish failed: finish it, call next time.
            await self.action("start")
            await self.action("finish")
        if status != 200:
            return None
        await self.action("start")
        await self.action("finish")
        return str(body["ticket"]["number"]), answered


class Display:
    """A lobby display: follows the office and stamps when each called number (or a snapshot) arrives."""

    def __init__(self) -> None:
        self.calls: dict[str, float] = {}
        self.snapshots: list[float] = []
        self.closed_at: float | None = None
        self.ready = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession, url: str) -> None:
        try:
            async with session.ws_connect(f"{url}/api/ws", max_msg_size=0, heartbeat=None) as ws:
                await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "bench"})
                async for msg in ws:
                    now = time.perf_counter()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    if '"ticket.called"' in msg.data:
                        self.calls.setdefault(msg.json()["event"]["ticket"]["number"], now)
                    elif msg.data.startswith('{"id":1,"type":"snapshot"'):
                        self.snapshots.append(now)
                        self.ready.set()
        finally:
            self.closed_at = time.perf_counter()
            self.ready.set()


def display_sessions(count: int, per_address: int) -> list[aiohttp.ClientSession]:
    """Client sessions from different loopback addresses (127.0.1.x), ``per_address`` displays each."""
    sessions = []
    for i in range((count + per_address - 1) // per_address):
        connector = aiohttp.TCPConnector(limit=0, local_addr=(f"127.0.1.{i + 1}", 0))
        sessions.append(aiohttp.ClientSession(connector=connector))
    return sessions
