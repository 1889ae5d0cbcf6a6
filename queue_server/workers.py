"""``madoguchi serve --workers N``: N server processes on one port, and the one Valkey they share.

The process the operator started becomes a small supervisor. It starts the embedded Valkey (unless
``server.redis_url`` names one) and keeps it running as a single server would, then starts N
workers: each is ``madoguchi serve`` itself in a fresh interpreter, given the Valkey's URL, binding
the same port with ``SO_REUSEPORT``. The kernel spreads new connections over the workers' listening
sockets by a hash of the client's address and port, so thousands of displays end up evenly spread
and no process hands connections to another. Every worker has its own hub, following the events
of every office, and delivers each call to the displays connected to it.

A worker that exits is started again (with a growing delay if it keeps dying); while it is away the
kernel sends new connections to the others, and its displays reconnect to them. SIGINT or SIGTERM
stops every worker (each closes its WebSockets as a single server does), then the Valkey. The
workers hold the read end of a pipe whose write end only the supervisor has: when the supervisor
dies, even by SIGKILL, the pipe ends and every worker stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from typing import Final

from .aio import stop_tasks
from .config import Config
from .store.embedded import EmbeddedRedis

log = logging.getLogger(__name__)

RESTART_FIRST_DELAY: Final = 0.2
RESTART_MAX_DELAY: Final = 30.0
STABLE_SECONDS: Final = 60.0      # up this long: the next exit counts as a first one again
STOP_SECONDS: Final = 20.0        # a worker still running this long after SIGTERM is killed

WorkerCommand = Callable[[int, str, int], Sequence[str]]
"""``(index, redis_url, parent_fd)`` → the worker's command line (``redis_url`` empty: the configured store)."""


class WorkersError(RuntimeError):
    """Workers cannot be started here (no SO_REUSEPORT, the port is taken or not fixed)."""


def check_port(host: str, port: int) -> None:
    """Fail clearly when the port is taken: with SO_REUSEPORT alone another server could share it silently."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise WorkersError("--workers needs SO_REUSEPORT (Linux); run one process per port instead")
    if port == 0:
        raise WorkersError("--workers needs a fixed port: the workers must all listen on the same one")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR, as the workers have: the connections of a server just stopped (TIME_WAIT) do
        # not count, a listening socket does. Without SO_REUSEPORT: a listening worker counts too.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise WorkersError(f"port {port} on {host} is in use (another madoguchi serve?)") from None
            raise


class Workers:
    """Start ``count`` worker processes and keep each running until :meth:`stop`."""

    def __init__(self, count: int, command: WorkerCommand, redis_url: str) -> None:
        self.count = count
        self.command = command
        self.redis_url = redis_url
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._read_fd, self._write_fd = os.pipe()  # both non-inheritable; the read end is passed on
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        """Start every worker; from now on each is started again whenever it exits."""
        self._tasks = [asyncio.create_task(self._keep_running(i), name=f"worker-{i}") for i in range(self.count)]

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        # Its own session: a Ctrl-C in the terminal reaches the supervisor only, which stops the
        # workers once and in order (a second SIGINT in a worker would cut its shutdown short).
        return await asyncio.create_subprocess_exec(
            *self.command(index, self.redis_url, self._read_fd), stdin=asyncio.subprocess.DEVNULL,
            pass_fds=(self._read_fd,), start_new_session=True)

    async def _keep_running(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_FIRST_DELAY
        while not self._stopping:
            started = loop.time()
            process = self.processes[index] = await self._spawn(index)
            log.info("worker %d started (pid %d)", index, process.pid)
            code = await process.wait()
            if self._stopping:
                return
            if loop.time() - started > STABLE_SECONDS:
                delay = RESTART_FIRST_DELAY
            log.error("worker %d (pid %d) exited with code %s; starting it again in %.1f s",
                      index, process.pid, code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_DELAY)
            self.restarts += 1

    async def stop(self) -> None:
        """SIGTERM every worker, wait for each (SIGKILL after ``STOP_SECONDS``), stop supervising."""
        self._stopping = True
        running = [p for p in self.processes.values() if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                log.error("worker pid %d did not stop within %.0f s; killing it", process.pid, STOP_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await stop_tasks(self._tasks)
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


async def serve_workers(config: Config, count: int, command: WorkerCommand) -> int:
    """Run the supervisor: the Valkey (embedded unless configured), ``count`` workers, until SIGINT/SIGTERM."""
    server = config.server
    check_port(server.host, server.port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    embedded, url = None, ""
    # With a store configured (redis_url, sentinel or a cluster) the workers connect to it
    # themselves, as a single server does.
    if server.deployment == "embedded":
        # One Valkey for all: the workers get its unix socket and start none of their own.
        embedded = EmbeddedRedis(server.data_dir)
        await embedded.start()
        embedded.supervise()
        url = embedded.url
    workers = Workers(count, command, url)
    try:
        workers.start()
        log.info("supervising %d workers on port %d (pid %d)", count, server.port, os.getpid())
        await stop.wait()
        log.info("stopping %d workers", count)
    finally:
        await workers.stop()
        if embedded is not None:
            await embedded.stop()
    return 0


def follow_supervisor(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """In a worker: stop as a SIGTERM would (gracefully) once the supervisor's pipe ``fd`` ends."""

    def readable() -> None:
        try:
            data = os.read(fd, 1)
        except BlockingIOError:
            return
        if not data:
            loop.remove_reader(fd)
            log.warning("the supervisor is gone; this worker stops")
            os.kill(os.getpid(), signal.SIGTERM)

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)
