"""The three deployments of the store as fixtures: the single node (the suite's Valkey), a primary with
a replica behind 3 Sentinels, and a Valkey Cluster of 3 primaries + 3 replicas.

Tests here that use the app (``make_client``, and through it ``client``, ``staff``, ``visitor``) run
once per deployment: ``make_client`` gives every configuration it starts the deployment's
``[server]`` keys, so the app builds its client through ``store/connect.py`` as in production, and
with replicas every change waits for a replica (``replica_acks = 1``).

The Sentinel group and the cluster are started once per session and shared (each test has its own
key prefix); their failure detection is slow enough (5 s) that a loaded machine is not mistaken
for a dead node. The failover tests start deployments of their own, with quick detection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from queue_server.clock import Clock
from queue_server.config import Config, SentinelSettings
from queue_server.domain.model import Role
from queue_server.web.app import init_app
from queue_server.web.keys import ACCOUNTS

from ..conftest import PASSWORD
from .engines import SERVICE, SentinelGroup, ValkeyCluster

DEPLOYMENTS = ("single", "sentinel", "cluster")


@pytest.fixture(scope="session")
def sentinel_group() -> Iterator[SentinelGroup]:
    with SentinelGroup(failover_ms=5000) as group:
        yield group


@pytest.fixture(scope="session")
def valkey_cluster() -> Iterator[ValkeyCluster]:
    with ValkeyCluster(failover_ms=5000) as cluster:
        yield cluster


def sentinel_settings(group: SentinelGroup) -> dict[str, Any]:
    """The ``[server]`` keys of a Sentinel deployment."""
    return {"sentinel": SentinelSettings(master=SERVICE, addresses=tuple(("127.0.0.1", s.port) for s in group.sentinels)),
            "replica_acks": 1}


def cluster_settings(cluster: ValkeyCluster) -> dict[str, Any]:
    """The ``[server]`` keys of a cluster deployment."""
    return {"cluster_url": cluster.url, "replica_acks": 1}


@pytest.fixture(params=DEPLOYMENTS)
def deployment(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``[server]`` keys of one deployment (the test runs once for each)."""
    if request.param == "single":
        return {"redis_url": request.getfixturevalue("valkey_url")}
    if request.param == "sentinel":
        return sentinel_settings(request.getfixturevalue("sentinel_group"))
    return cluster_settings(request.getfixturevalue("valkey_cluster"))


def deployed(config: Config, settings: dict[str, Any]) -> Config:
    """``config`` with the deployment's keys in ``[server]``."""
    return dataclasses.replace(config, server=dataclasses.replace(config.server, **settings))


@pytest.fixture
def config(config: Config, deployment: dict[str, Any]) -> Config:
    return deployed(config, deployment)


@pytest.fixture
async def make_client(aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config, deployment: dict[str, Any],
                      key_prefix: str) -> Callable[..., Awaitable[TestClient]]:
    """Start the real app on the deployment (on a real socket) and return a client for it."""

    async def make(cfg: Config | None = None, clock: Clock | None = None) -> TestClient:
        app = init_app(deployed(cfg or config, deployment), clock=clock, key_prefix=key_prefix)
        client = await aiohttp_client(app)
        for name, role in (("staff", Role.CONTRACTOR), ("city", Role.CITY), ("boss", Role.SUPERVISOR)):
            await client.app[ACCOUNTS].add_user(name, PASSWORD, role)
        return client

    return make
