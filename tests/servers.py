"""Running the real ``madoguchi`` command as separate server processes, for crash and multi-process tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from .waiting import PATIENCE_S, wait_until

TESTS = Path(__file__).parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(directory: Path, redis_url: str = "", source: str = "office.toml") -> Path:
    """The test office's configuration (or ``source`` in tests/) with its data directory (and embedded
    Valkey) in ``directory``."""
    text = (TESTS / source).read_text(encoding="utf-8")
    server = f'[server]\ndata_dir = "data"\nredis_url = "{redis_url}"\n'
    path = directory / "office.toml"
    path.write_text(text.replace("[server]\n", server, 1), encoding="utf-8")
    return path


def madoguchi(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``madoguchi`` command line and wait for it."""
    return subprocess.run([sys.executable, "-m", "queue_server", *args], input=stdin, capture_output=True,
                          text=True, timeout=2 * PATIENCE_S, check=False)


def add_staff(config: Path, password: str = "test-password-1") -> None:
    """Create the contractor user ``staff`` with ``password`` through the real command line."""
    added = madoguchi("add-user", "staff", "--role", "contractor", "--config", str(config), "--password-stdin",
                      stdin=password + "\n")
    assert added.returncode == 0, added.stderr


class ServerProcess:
    """``madoguchi serve`` in a child process on its own port."""

    def __init__(self, config: Path, port: int | None = None, redis_url: str | None = None,
                 options: tuple[str, ...] = ()) -> None:
        self.config = config
        self.port = port or free_port()
        self.redis_url = redis_url
        self.options = options  # more ``serve`` options, e.g. ``--clock-offset``
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the server and wait until it answers."""
        args = [sys.executable, "-m", "queue_server", "serve", "--config", str(self.config), "--port", str(self.port),
                *self.options]
        if self.redis_url is not None:
            args += ["--redis-url", self.redis_url]
        log = self.config.parent / f"server-{self.port}.log"
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(args, stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        process = self.process
        async with aiohttp.ClientSession() as session:

            async def answers() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited with {process.returncode}; see {log}")
                try:
                    async with session.get(f"{self.url}/api/offices") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            # Starting means importing, spawning the estimates worker and perhaps Valkey: slow when loaded.
            await wait_until(answers, f"answering on {self.url} (see {log})", timeout=2 * PATIENCE_S)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a power cut of the process."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    async def stop(self) -> None:
        """A normal stop (SIGTERM)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            await asyncio.get_running_loop().run_in_executor(None, self.process.wait)
