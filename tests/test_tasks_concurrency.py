"""Back-office tasks under concurrency: people pressing at once never get the same task, and a kill -9
of the server (and its Valkey) loses no task and duplicates none."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from queue_server.config import load_config
from queue_server.web.keys import STORE

from .conftest import TESTS, Api, api_users
from .servers import ServerProcess, add_staff, write_config
from .test_tasks import tasks
from .waiting import wait_until


@pytest.fixture
def config(tmp_path: Path) -> Any:
    """The back-office test configuration (pickups need their card prepared)."""
    import dataclasses

    config = load_config(TESTS / "backoffice.toml")
    return dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=tmp_path))


async def test_people_claiming_at_once_never_get_the_same_task(
        make_client: Callable[..., Awaitable[TestClient]], visitor: Api) -> None:
    """Eight back-office users on two server processes (one store) press claim-next 40 times at once
    for 20 open tasks: 20 distinct claims, 20 refusals; ten presses on one task: one claim."""
    servers = [await make_client(), await make_client()]
    for _ in range(16):
        await visitor.issue("pickup")
    for _ in range(4):
        await visitor.issue("pickup", office="branch")
    async with api_users("http://unused") as make:
        people = [make(str(servers[i % 2].make_url("/"))) for i in range(8)]
        for person in people:
            await person.sign_in("staff")
        presses = [people[i % 8].post("/api/offices/main/tasks/claim-next") for i in range(40)]
        answers = await asyncio.gather(*presses)
        claimed = [(body["task"]["office"], body["task"]["id"]) for status, body in answers if status == 200]
        refused = [body["error"]["code"] for status, body in answers if status != 200]
        assert len(claimed) == 20 and len(set(claimed)) == 20, claimed
        assert refused == ["no_task"] * 20
        # Every task is claimed exactly once, as the store says too.
        work = await tasks(people[0])
        assert len(work["tasks"]) == 20 and all(t["state"] == "claimed" for t in work["tasks"])

        # Ten people press "claim" on the same given-back task at once: one gets it.
        office, task_id = claimed[0]
        status, body = await people[0].post(f"/api/offices/{office}/tasks/{task_id}/return")
        assert status == 200, body
        answers = await asyncio.gather(*(people[i % 8].post(f"/api/offices/{office}/tasks/{task_id}/claim")
                                         for i in range(10)))
        assert sorted(status for status, _ in answers) == [200] + [409] * 9
        assert all("it is claimed" in body["error"]["message"] for status, body in answers if status == 409)
        # Ten presses of finish on it: one finishes, the others are told it is done.
        answers = await asyncio.gather(*(people[i % 8].post(f"/api/offices/{office}/tasks/{task_id}/finish")
                                         for i in range(10)))
        assert sorted(status for status, _ in answers) == [200] + [409] * 9
        assert sum(1 for _, body in answers if body.get("ticket_ready")) == 1
    raw = await servers[0].app[STORE].redis.lrange(f"{servers[0].app[STORE].office_key(office)}tasktimes", 0, -1)
    assert len(raw) == 1  # measured once


async def sign_in(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(f"{base}/api/session", json={"username": "staff", "password": "test-password-1"}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["csrf_token"])


@pytest.mark.slow
async def test_a_kill_of_server_and_valkey_mid_work_loses_no_task_and_duplicates_none(tmp_path: Path) -> None:
    config = write_config(tmp_path, source="backoffice.toml")
    add_staff(config)
    server = ServerProcess(config)
    await server.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            issued: list[str] = []
            for _ in range(30):
                async with session.post(f"{server.url}/api/offices/main/tickets", json={"procedure": "pickup"}) as r:
                    assert r.status == 201
                    issued.append((await r.json())["ticket"]["number"])
            csrf = await sign_in(session, server.url)
            headers = {"X-CSRF-Token": csrf}
            finished: list[str] = []   # tickets whose card's preparation was acknowledged finished
            claimed: list[str] = []    # tasks whose claim was acknowledged

            async def worker() -> None:
                """Claim and finish until the server is gone."""
                try:
                    while True:
                        claim_next = f"{server.url}/api/offices/main/tasks/claim-next"
                        async with session.post(claim_next, headers=headers) as r:
                            if r.status != 200:
                                return
                            task = (await r.json())["task"]
                            claimed.append(task["id"])
                        async with session.post(f"{server.url}/api/offices/main/tasks/{task['id']}/finish",
                                                headers=headers) as r:
                            assert r.status == 200, await r.text()
                            finished.append(task["number"])
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    return

            workers = [asyncio.create_task(worker()) for _ in range(4)]

            async def some_finished() -> bool:
                return len(finished) >= 8

            await wait_until(some_finished, "8 preparations finished")  # then kill mid-way
            valkey_pid = int((tmp_path / "data" / "valkey.pid").read_text())
            server.kill()
            os.kill(valkey_pid, signal.SIGKILL)
            await asyncio.gather(*workers)

            await server.start()
            csrf = await sign_in(session, server.url)
            headers = {"X-CSRF-Token": csrf}
            async with session.get(f"{server.url}/api/offices/main/tasks") as r:
                work = await r.json()
            left = {t["id"]: t for t in work["tasks"]}
            async with session.get(f"{server.url}/api/offices/main/state") as r:
                waiting = {t["number"]: t["prep"] for t in (await r.json())["waiting"]}
            # Nothing lost: every ticket still waits, its card either prepared or with its task listed,
            # exactly once; every acknowledged finish stayed done.
            assert sorted(waiting) == sorted(issued)
            assert Counter(t["number"] for t in left.values()).most_common(1)[0][1] == 1
            assert {t["number"] for t in left.values()} == {n for n, prep in waiting.items() if prep == "pending"}
            assert set(finished) <= {n for n, prep in waiting.items() if prep == "ready"}
            # An acknowledged claim stayed claimed (whoever had it carries on or gives it back), or its finish
            # reached the store just before the kill; it never fell back to open.
            assert all(left[i]["state"] == "claimed" for i in claimed if i in left)
            # The work goes on: claimed ones are finished, the rest claimed and finished; each card once.
            ready: list[str] = []
            for task in sorted(left.values(), key=lambda t: int(t["id"])):
                if task["state"] == "open":
                    async with session.post(f"{server.url}/api/offices/main/tasks/{task['id']}/claim",
                                            headers=headers) as r:
                        assert r.status == 200, await r.text()
                async with session.post(f"{server.url}/api/offices/main/tasks/{task['id']}/finish",
                                        headers=headers) as r:
                    assert r.status == 200, await r.text()
                    ready.append((await r.json())["ticket_ready"]["number"])

            async def all_ready() -> dict[str, str] | None:
                async with session.get(f"{server.url}/api/offices/main/state") as r:
                    waiting = {t["number"]: t["prep"] for t in (await r.json())["waiting"]}
                return waiting if set(waiting.values()) == {"ready"} else None

            assert sorted(await wait_until(all_ready, "every card prepared")) == sorted(issued)
            assert len(ready) == len(set(ready)) == len(left)
            async with session.post(f"{server.url}/api/offices/main/tasks/claim-next", headers=headers) as r:
                assert r.status == 409 and (await r.json())["error"]["code"] == "no_task"
    finally:
        await server.stop()
