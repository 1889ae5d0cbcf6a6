"""Failover under load: kill -9 the primary holding the office while 16 clients issue tickets and book;
the replica is promoted (by the Sentinels / by the cluster itself), the server recovers by itself, and
every acknowledged ticket and booking is still there, once. And a resharding: the office's slot moved
to another primary while clients run gives no error beyond a retried request.

Each test has a deployment of its own that detects a dead primary within about a second. The killed
node is started again once its replica has taken over, as its process supervisor would, with the
data on its disk (``appendonly``, as docs/deployment.md sets the nodes up): with ``replica_acks = 1``
and a single replica per primary, changes wait for it (503 meanwhile). ``MADOGUCHI_KEEP_DEPLOYMENTS=1``
keeps the nodes' folders (their logs) after the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..waiting import PATIENCE_S
from .engines import SentinelGroup, ValkeyCluster, wait_for
from .load import Load, check_everything_acknowledged_survived, clients, lobby_display, start_server, waiting_shown

pytestmark = pytest.mark.slow

BEFORE: int = 60   # acknowledged requests before the kill
AFTER: int = 60    # and after the deployment is whole again
EVSEQ = "mg:o:{main}:evseq"


@pytest.fixture
def sentinel_group() -> Iterator[SentinelGroup]:
    with SentinelGroup(failover_ms=1000) as group:
        yield group


@pytest.fixture
def valkey_cluster() -> Iterator[ValkeyCluster]:
    with ValkeyCluster(failover_ms=1000) as cluster:
        yield cluster


async def _until(look: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not await look():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout:.0f} s")
        await asyncio.sleep(0.02)


async def _failover_under_load(tmp_path: Path, deployment: SentinelGroup | ValkeyCluster) -> None:
    server = await start_server(tmp_path, deployment)
    load, stop = Load(), asyncio.Event()
    seen: list[dict[str, Any]] = []
    display_ready = asyncio.Event()
    display = asyncio.create_task(lobby_display(server.url, seen, display_ready))
    running = asyncio.create_task(clients(server.url, load, stop))
    try:
        await asyncio.wait_for(display_ready.wait(), PATIENCE_S)

        async def acknowledged(count: int) -> bool:
            if running.done():
                running.result()  # a client's failure, raised here
            return load.acknowledged >= count

        await _until(lambda: acknowledged(BEFORE), f"{BEFORE} requests acknowledged")
        primary = await asyncio.to_thread(deployment.primary_of, EVSEQ)
        killed_at = time.monotonic()
        primary.kill()
        await asyncio.to_thread(wait_for, lambda: deployment.promoted_from(primary, EVSEQ), "the replica promoted", 120)
        promoted_after = time.monotonic() - killed_at
        primary.start()  # its supervisor starts it again; it comes back as the new primary's replica
        await asyncio.to_thread(deployment.wait_healthy, 120)
        whole_after = time.monotonic() - killed_at
        target = load.acknowledged + AFTER
        await _until(lambda: acknowledged(target), f"{AFTER} more requests acknowledged after the failover")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 150)
    try:
        await check_everything_acknowledged_survived(server.url, load)
        # Every request that failed was retried with its key and applied once: the counts above hold
        # exactly, and the display, which got a fresh snapshot after the outage, shows them.
        snapshots_after = [m for m in seen if m["type"] == "snapshot" and m["received"] > killed_at]
        assert snapshots_after, "the display got no snapshot after the failover"

        async def display_agrees() -> bool:
            return waiting_shown(seen) == len(load.tickets)

        await _until(display_agrees, f"the display showing {len(load.tickets)} waiting")
        print(f"\n{deployment.kind} failover: replica promoted {promoted_after:.2f} s after the kill, deployment "
              f"whole again after {whole_after:.2f} s; no request answered for {load.longest_silence(killed_at):.2f} s; failed attempts (503 / lost connection) for "
              f"{load.outage_seconds():.2f} s, {len(load.retried)} requests retried, {len(load.tickets)} tickets "
              f"and {len(load.bookings)} bookings acknowledged, all there, once")
        assert load.retried, "no request failed: the kill did not hit the office"
    finally:
        display.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await display
        await server.stop()


async def test_sentinel_failover_under_load_loses_no_acknowledged_ticket_or_booking(
        tmp_path: Path, sentinel_group: SentinelGroup) -> None:
    await _failover_under_load(tmp_path, sentinel_group)


async def test_cluster_failover_under_load_loses_no_acknowledged_ticket_or_booking(
        tmp_path: Path, valkey_cluster: ValkeyCluster) -> None:
    await _failover_under_load(tmp_path, valkey_cluster)


async def test_moving_the_offices_slot_to_another_primary_while_it_runs(
        tmp_path: Path, valkey_cluster: ValkeyCluster) -> None:
    server = await start_server(tmp_path, valkey_cluster)
    load, stop = Load(), asyncio.Event()
    running = asyncio.create_task(clients(server.url, load, stop))
    try:
        async def acknowledged(count: int) -> bool:
            if running.done():
                running.result()
            return load.acknowledged >= count

        await _until(lambda: acknowledged(BEFORE), f"{BEFORE} requests acknowledged")
        source = await asyncio.to_thread(valkey_cluster.owner, EVSEQ)
        target = next(p for p in await asyncio.to_thread(valkey_cluster.primaries) if p is not source)
        await asyncio.to_thread(valkey_cluster.move_slot, EVSEQ, target)
        assert await asyncio.to_thread(valkey_cluster.owner, EVSEQ) is target
        goal = load.acknowledged + AFTER
        await _until(lambda: acknowledged(goal), f"{AFTER} more requests acknowledged after the move")
    finally:
        stop.set()
        await asyncio.wait_for(running, 150)
    try:
        await check_everything_acknowledged_survived(server.url, load)
        print(f"\nresharding: {len(load.retried)} requests retried "
              f"({', '.join(sorted({what for _, what in load.failures})) or 'none'}), "
              f"{len(load.tickets)} tickets and {len(load.bookings)} bookings acknowledged, all there, once")
    finally:
        await server.stop()
