"""The day change, the archive and status links on every deployment, and what replicas add: a change
is acknowledged only once a replica holds it."""

from __future__ import annotations

import datetime as dt
import os
import signal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.clock import Clock
from queue_server.store.archive import Archive
from queue_server.web.keys import CLOCK, REDIS

from ..conftest import Api, api_users
from ..test_api_lifecycle import receive
from ..test_day_change import EVENING, MIDNIGHT, evening_at_the_office, offset_to
from .engines import Node, SentinelGroup, ValkeyCluster


@pytest.fixture
async def evening(make_client: Any) -> TestClient:
    return await make_client(clock=Clock("Asia/Tokyo", offset_to(EVENING)))


async def test_at_midnight_the_day_is_closed_out_archived_and_old_status_links_still_answer(
        evening: TestClient, key_prefix: str) -> None:
    async with api_users(str(evening.make_url("/"))) as user:
        await _day_change(evening, lambda _client: user(), key_prefix)


async def _day_change(evening: TestClient, user: Any, key_prefix: str) -> None:
    office = await evening_at_the_office(evening, user)
    staff, visitor, tokens = office["staff"], office["visitor"], office["tokens"]
    assert (await staff.counter("2", "finish"))[0] == 200  # 300 is served to the end
    lobby = await visitor.http.ws_connect("/api/ws")
    await lobby.send_json({"id": 1, "type": "subscribe", "view": "lobby", "office": "main"})
    assert (await receive(lobby, "snapshot"))["data"]["day"] == "20261201"

    evening.app[CLOCK].offset_ms = offset_to(MIDNIGHT - dt.timedelta(seconds=1))
    closed = await receive(lobby, "event")
    while closed["event"]["type"] != "day.closed":
        closed = await receive(lobby, "event")
    assert sorted(closed["event"]["expired"]) == ["301", "A001", "A002"]
    assert (await receive(lobby, "snapshot"))["data"]["day"] == "20261202"

    # Every visit of the day is archived once, with how it ended.
    archive = Archive(evening.app[REDIS], key_prefix)
    records = [r async for r in archive.records(["main"], ["202612"], kinds=frozenset({"visit"}))]
    assert sorted((r["number"], r["state"]) for r in records) == [
        ("300", "done"), ("301", "expired"), ("A001", "expired"), ("A002", "expired")]
    # Yesterday's status links still say what became of each ticket; today starts again at A001.
    for number, token in tokens.items():
        status, view = await visitor.get(f"/api/tickets/{token}")
        assert status == 200 and (view["day"], view["number"]) == ("20261201", number)
        assert view["state"] == ("done" if number == "300" else "expired")
    assert (await visitor.issue("application"))["ticket"]["number"] == "A001"
    await lobby.close()


def _replica_of_the_office(request: pytest.FixtureRequest, deployment: dict[str, Any], key_prefix: str) -> Node:
    if "sentinel" in deployment:
        group: SentinelGroup = request.getfixturevalue("sentinel_group")
        primary = group.primary()
        return next(n for n in group.data_nodes if n is not primary and n.alive)
    cluster: ValkeyCluster = request.getfixturevalue("valkey_cluster")
    return cluster.replicas_of(cluster.owner(f"{key_prefix}o:{{main}}:evseq"))[0]


async def test_with_replicas_a_change_no_replica_confirms_is_503_and_its_retry_applies_it_once(
        request: pytest.FixtureRequest, deployment: dict[str, Any], staff: Api, visitor: Api, key_prefix: str) -> None:
    if "replica_acks" not in deployment:
        pytest.skip("the single node has no replicas to wait for")
    first = await visitor.issue("application")
    replica = _replica_of_the_office(request, deployment, key_prefix)
    assert replica.process is not None
    os.kill(replica.process.pid, signal.SIGSTOP)  # the replica hangs: nothing it receives is confirmed
    try:
        status, body = await visitor.post("/api/offices/main/tickets", {"procedure": "application"},
                                          **{"Idempotency-Key": "one-press"})
        assert status == 503 and body["error"]["code"] == "unavailable", body
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
    # The kiosk retries the same press: the ticket the first attempt made, not a second one.
    status, retried = await visitor.post("/api/offices/main/tickets", {"procedure": "application"},
                                         **{"Idempotency-Key": "one-press"})
    assert status == 201, retried
    assert retried["ticket"]["number"] == "A002" and first["ticket"]["number"] == "A001"
    status, state = await staff.get("/api/offices/main/state")
    assert [t["number"] for t in state["waiting"]] == ["A001", "A002"]
