"""``madoguchi serve --workers 4``: real processes on one port. Every worker delivers each call to the
displays connected to it, a worker that dies comes back, limits behind a trusted proxy count the real
clients whichever worker answers, and a stop leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from queue_server.store.ratelimit import ADDRESS_FAILURES
from queue_server.web.app import WORKER_HEADER

from .servers import ServerProcess, add_staff, madoguchi, write_config
from .test_api_lifecycle import receive
from .waiting import wait_until

pytestmark = pytest.mark.slow

WORKERS = 4
PASSWORD = "test-password-1"


def workers_config(directory: Path) -> Path:
    """The test office behind a proxy on 127.0.0.1 (only: 127.0.0.2 is an ordinary client), with a staff user."""
    config = write_config(directory)
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[server]\n", '[server]\ntrusted_proxies = ["127.0.0.1"]\n', 1), encoding="utf-8")
    add_staff(config, PASSWORD)
    return config


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``serve --workers 4`` for the module's tests (starting four processes is the slow part)."""
    process = ServerProcess(workers_config(tmp_path_factory.mktemp("workers")), options=("--workers", str(WORKERS)))
    asyncio.run(process.start())
    yield process
    asyncio.run(process.stop())


class Displays:
    """Lobby displays, each on its own connection, each knowing which worker it is connected to."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sockets: dict[int, list[aiohttp.ClientWebSocketResponse]] = {}
        self._answered_by: list[int] = []
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._note_worker)
        self.http = aiohttp.ClientSession(trace_configs=[trace])
        self._opened = 0

    async def _note_worker(self, _session: Any, _context: SimpleNamespace, params: Any) -> None:
        self._answered_by.append(int(params.response.headers[WORKER_HEADER]))

    async def open(self) -> int:
        """One more display (from a client of its own behind the proxy); the worker it got."""
        self._opened += 1
        ws = await self.http.ws_connect(f"{self.url}/api/ws", headers={"X-Forwarded-For": f"203.0.113.{self._opened}"})
        worker = self._answered_by[-1]
        await ws.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
        await receive(ws, "snapshot")
        self.sockets.setdefault(worker, []).append(ws)
        return worker

    async def until_every_worker_has_one(self, workers: set[int]) -> None:
        """Open displays until each of ``workers`` has at least one (the kernel picks by a hash)."""
        for _ in range(400):
            if workers <= {w for w, sockets in self.sockets.items() if sockets}:
                return
            await self.open()
        raise AssertionError(f"400 connections and still displays on workers {sorted(self.sockets)} only")

    def live(self) -> list[aiohttp.ClientWebSocketResponse]:
        return [ws for sockets in self.sockets.values() for ws in sockets]

    async def close(self) -> None:
        for ws in self.live():
            await ws.close()
        await self.http.close()


@pytest.fixture
async def displays(server: ServerProcess) -> AsyncIterator[Displays]:
    screens = Displays(server.url)
    yield screens
    await screens.close()


async def staff_session(base: str) -> tuple[aiohttp.ClientSession, dict[str, str]]:
    session = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post("/api/session", json={"username": "staff", "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return session, {"X-CSRF-Token": (await r.json())["csrf_token"]}


async def call_one(staff: aiohttp.ClientSession, headers: dict[str, str], counter: str) -> str:
    """Open ``counter``, issue a ticket and call it there; its number."""
    async with staff.post(f"/api/offices/main/counters/{counter}/open", headers=headers) as r:
        assert r.status == 200, await r.text()
    async with staff.post("/api/offices/main/tickets", json={"procedure": "application"}) as r:
        assert r.status == 201, await r.text()
    async with staff.post(f"/api/offices/main/counters/{counter}/call-next", headers=headers) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["ticket"]["number"])


async def every_display_gets(displays: list[aiohttp.ClientWebSocketResponse], number: str) -> None:
    async def gets(ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            message = await receive(ws, "event")
            if message["event"]["type"] == "ticket.called" and message["event"]["ticket"]["number"] == number:
                return

    await asyncio.gather(*(gets(ws) for ws in displays))


async def health_of(url: str, worker: int) -> dict[str, Any]:
    """``/api/health`` as answered by ``worker`` (new connections until the kernel sends one there)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

        async def look() -> dict[str, Any] | None:
            try:
                async with http.get(f"{url}/api/health") as r:
                    body = await r.json()
            except aiohttp.ClientError:
                return None
            return body if r.status == 200 and body["worker"]["index"] == worker else None

        return await wait_until(look, f"answered by worker {worker}")


async def test_every_worker_delivers_each_call_to_its_displays_and_a_dead_one_comes_back(
        server: ServerProcess, displays: Displays) -> None:
    await displays.until_every_worker_has_one(set(range(WORKERS)))
    staff, headers = await staff_session(server.url)
    try:
        await every_display_gets(displays.live(), await call_one(staff, headers, "1"))

        # A worker killed outright: its displays lose their connection, the others carry on, and it is
        # started again under the same index, with displays of its own again.
        victim = await health_of(server.url, 2)
        os.kill(victim["worker"]["pid"], signal.SIGKILL)
        for ws in displays.sockets.pop(2):
            await ws.receive()  # the connection ends
        back = await health_of(server.url, 2)
        assert back["worker"]["pid"] != victim["worker"]["pid"]
        await displays.until_every_worker_has_one(set(range(WORKERS)))
        await every_display_gets(displays.live(), await call_one(staff, headers, "3"))
    finally:
        await staff.close()


async def failed_sign_ins(url: str, times: int, source: str = "127.0.0.1", **headers: str) -> list[int]:
    """Failed sign-ins from ``source``, each on a new connection (so the workers share them out)."""
    connector = aiohttp.TCPConnector(force_close=True, local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        statuses = []
        for n in range(times):
            async with http.post(f"{url}/api/session", json={"username": f"nobody{os.urandom(4).hex()}{n}",
                                                             "password": "wrong"}, headers=headers) as r:
                statuses.append(r.status)
        return statuses


async def test_limits_behind_a_trusted_proxy_count_the_real_clients_on_every_worker(server: ServerProcess) -> None:
    budget = ADDRESS_FAILURES.free + 1
    first = await failed_sign_ins(server.url, budget + 1, **{"X-Forwarded-For": "198.51.100.20"})
    assert first == [401] * budget + [429], first
    assert await failed_sign_ins(server.url, 1, **{"X-Forwarded-For": "198.51.100.21"}) == [401]
    # 127.0.0.2 is no trusted proxy: whatever it writes in the header, all its attempts share one budget.
    spoofer = [(await failed_sign_ins(server.url, 1, "127.0.0.2", **{"X-Forwarded-For": f"198.51.100.{100 + n}"}))[0]
               for n in range(budget + 1)]
    assert spoofer == [401] * budget + [429], spoofer


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().split()[2] != "Z"  # a zombie has ended; only its exit status is left


async def test_sigterm_stops_every_worker_and_the_valkey_and_workers_follow_a_killed_supervisor(
        tmp_path: Path) -> None:
    config = workers_config(tmp_path)
    server = ServerProcess(config, options=("--workers", "2"))
    for ending in ("SIGTERM", "SIGKILL"):
        await server.start()
        pids = [(await health_of(server.url, index))["worker"]["pid"] for index in range(2)]
        valkey = int((tmp_path / "data" / "valkey.pid").read_text())
        assert all(map(alive, [*pids, valkey]))
        if ending == "SIGTERM":
            await server.stop()
            assert server.process is not None and server.process.returncode == 0
            assert not any(map(alive, [*pids, valkey]))
        else:
            server.kill()  # the supervisor only: its workers see their pipe end and stop by themselves

            async def workers_gone() -> bool:
                return not any(map(alive, pids))

            await wait_until(workers_gone, "stopped after their supervisor died")
            os.kill(valkey, signal.SIGTERM)  # left running, as after a kill -9 of a single server


def test_workers_refuse_a_port_another_server_listens_on(tmp_path: Path) -> None:
    # SO_REUSEPORT alone would let a second server share the port silently, splitting the displays.
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = madoguchi("serve", "--config", str(write_config(tmp_path)), "--port", str(port), "--workers", "2")
    assert result.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in result.stderr, result.stderr
    assert not (tmp_path / "data" / "valkey.pid").exists()  # refused before starting anything
