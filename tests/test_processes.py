"""Whole server processes: a SIGKILL of the server and its Valkey, and two servers on one Redis."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from .servers import ServerProcess, add_staff, write_config
from .waiting import PATIENCE_S

pytestmark = pytest.mark.slow


async def sign_in(session: aiohttp.ClientSession, base: str, username: str) -> str:
    async with session.post(f"{base}/api/session", json={"username": username, "password": "test-password-1"}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["csrf_token"]


async def test_every_acknowledged_ticket_survives_sigkill_of_server_and_valkey(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    add_staff(config)
    server = ServerProcess(config)
    await server.start()
    acknowledged: list[str] = []
    try:
        await _issue_kill_restart(server, tmp_path, acknowledged)
    finally:
        await server.stop()


async def _issue_kill_restart(server: ServerProcess, tmp_path: Path, acknowledged: list[str]) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        for _ in range(40):
            async with session.post(f"{server.url}/api/offices/main/tickets", json={"procedure": "application"}) as r:
                assert r.status == 201
                acknowledged.append((await r.json())["ticket"]["number"])
        valkey_pid = int((tmp_path / "data" / "valkey.pid").read_text())
        server.kill()
        os.kill(valkey_pid, signal.SIGKILL)

        await server.start()
        # The staff account also survived; its view lists the waiting tickets.
        csrf = await sign_in(session, server.url, "staff")
        async with session.get(f"{server.url}/api/offices/main/state") as r:
            state = await r.json()
        assert [t["number"] for t in state["waiting"]] == acknowledged
        async with session.post(f"{server.url}/api/offices/main/tickets", json={"procedure": "application"}) as r:
            assert (await r.json())["ticket"]["number"] == "A041"  # numbering goes on, nothing reused
        # Counters still work.
        async with session.post(f"{server.url}/api/offices/main/counters/1/open", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        async with session.post(f"{server.url}/api/offices/main/counters/1/call-next",
                                headers={"X-CSRF-Token": csrf}) as r:
            assert (await r.json())["ticket"]["number"] == "A001"


async def test_a_call_through_one_server_reaches_a_websocket_client_of_another(tmp_path: Path, valkey_url: str) -> None:
    config = write_config(tmp_path, redis_url=valkey_url)  # both processes on the tests' Valkey
    add_staff(config)
    first, second = ServerProcess(config), ServerProcess(config)
    await asyncio.gather(first.start(), second.start())
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session, session.ws_connect(f"{second.url}/api/ws") as ws:
            await ws.send_json({"id": 7, "type": "subscribe", "view": "lobby", "office": "main"})
            assert (await ws.receive_json(timeout=PATIENCE_S))["success"] is True
            assert (await ws.receive_json(timeout=PATIENCE_S))["type"] == "snapshot"
            async with session.post(f"{first.url}/api/offices/main/tickets", json={"procedure": "pickup"}) as r:
                number = (await r.json())["ticket"]["number"]
            csrf = await sign_in(session, first.url, "staff")
            for action in ("open", "call-next"):
                async with session.post(f"{first.url}/api/offices/main/counters/2/{action}",
                                        headers={"X-CSRF-Token": csrf}) as r:
                    assert r.status == 200, await r.text()
            seen: list[dict] = []
            while len(seen) < 3:
                message = await ws.receive_json(timeout=PATIENCE_S)
                if message["type"] == "event":  # estimates messages may come in between
                    seen.append(message)
            assert [m["event"]["type"] for m in seen] == ["ticket.issued", "counter.updated", "ticket.called"]
            assert seen[2]["event"]["ticket"]["number"] == number
            assert seen[2]["event"]["counter"]["id"] == "2"
            assert [m["seq"] for m in seen] == [seen[0]["seq"], seen[0]["seq"] + 1, seen[0]["seq"] + 2]
    finally:
        await asyncio.gather(first.stop(), second.stop())
