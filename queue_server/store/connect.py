"""The one place that builds the store's client for the configured deployment (``[server]``):

- nothing set: the embedded Valkey (its unix socket URL is passed in as ``url``);
- ``redis_url``: one external Valkey;
- ``sentinel``: a primary with replicas, through redis-py's ``Sentinel`` (``master_for``): the pool asks
  the Sentinels where the primary is on every new connection, so after a failover the next
  connection reaches the promoted replica;
- ``cluster_url`` / ``cluster_nodes``: a Valkey Cluster, through redis-py's ``RedisCluster``, which
  routes each call by its first key (the office's ``O evseq``) and follows MOVED/ASK and failovers.

Every consumer (the store, accounts, rate limits, the archive, bookings, the hub) uses the client
made here. The two are not the same class (``RedisCluster`` is not a ``Redis``), but they answer
the commands this project uses alike; ``is_cluster`` tells the few places that differ.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from ..config import ServerSettings

Client: TypeAlias = "Redis | RedisCluster"

MAX_CONNECTIONS: Final = 64
POOL_WAIT_SECONDS: Final = 5
"""How long a request waits for a free connection before it is answered 503."""
CONNECT_TIMEOUT_SECONDS: Final = 2.0
"""A node that does not answer the connect within this is taken as down (the next one is tried)."""
HEALTH_CHECK_SECONDS: Final = 30


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (asks the Sentinels for the primary) that waits for a free connection when
    all are in use, as the single-node pool does, rather than failing the request at once."""


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is a cluster client (sharded pub/sub and per-node commands differ)."""
    return isinstance(client, RedisCluster)


def replicated(server: ServerSettings) -> bool:
    """Whether the deployment has replicas to acknowledge writes (``replica_acks`` applies)."""
    return server.replica_acks > 0


async def close(client: Client) -> None:
    """Close the client and its connections; through Sentinel also the clients that asked the
    Sentinels where the primary is (the pool's ``sentinel_manager``)."""
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    await client.aclose()
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


def connect(server: ServerSettings, url: str | None = None) -> Client:
    """The client of the configured deployment; ``url`` replaces ``redis_url`` (the embedded
    Valkey's socket, a test's server). Nothing is connected until the first command."""
    # A burst of requests beyond the pool waits its turn for a connection (a few seconds at most)
    # rather than failing with 503: 200 visitors booking at once must each get an answer.
    if server.sentinel is not None and not url:
        sentinel = server.sentinel
        sentinels = Sentinel(list(sentinel.addresses), socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                             sentinel_kwargs={"password": sentinel.sentinel_password or None,
                                              "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS})
        return sentinels.master_for(sentinel.master, redis_class=Redis,
                                    connection_pool_class=BlockingSentinelConnectionPool,
                                    max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_SECONDS,
                                    password=sentinel.password or None, health_check_interval=HEALTH_CHECK_SECONDS)
    if (server.cluster_url or server.cluster_nodes) and not url:
        options: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
                                   "health_check_interval": HEALTH_CHECK_SECONDS}
        if server.cluster_url:
            return RedisCluster.from_url(server.cluster_url, **options)
        return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in server.cluster_nodes], **options)
    pool = BlockingConnectionPool.from_url(url or server.redis_url, max_connections=MAX_CONNECTIONS,
                                           timeout=POOL_WAIT_SECONDS, health_check_interval=HEALTH_CHECK_SECONDS)
    return Redis.from_pool(pool)  # the client closes its pool
