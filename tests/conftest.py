"""Shared fixtures: a real Valkey server started by the tests, and the real app on a real socket."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient

from queue_server.config import Config, load_config
from queue_server.domain.model import Role
from queue_server.store.embedded import EmbeddedRedis
from queue_server.web.app import init_app
from queue_server.web.keys import ACCOUNTS

TESTS = Path(__file__).parent
PASSWORD = "test-password-1"
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def valkey_url() -> Any:
    """One real Valkey server for the whole run (each test uses its own key prefix)."""
    import asyncio

    data_dir = Path(tempfile.mkdtemp(prefix="madoguchi-valkey-"))
    server = EmbeddedRedis(data_dir)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(server.start())
    yield server.url
    loop.run_until_complete(server.stop())
    loop.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The small test office, its data folder (speech cache) in the test's own temporary folder."""
    config = load_config(TESTS / "office.toml")
    return dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=tmp_path))


@pytest.fixture
def key_prefix() -> str:
    """A fresh key namespace, so tests share the server but not their state."""
    return f"test{next(_prefixes)}:"


Client = TestClient


class Api:
    """One HTTP user of the server (own cookies): sign in, and send JSON with the CSRF token."""

    def __init__(self, session: ClientSession) -> None:
        self.http = session
        self.csrf = ""

    async def sign_in(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        resp = await self.http.post("/api/session", json={"username": username, "password": password})
        assert resp.status == 200, await resp.text()
        data = await resp.json()
        self.csrf = data["csrf_token"]
        return data

    async def get(self, path: str) -> tuple[int, Any]:
        resp = await self.http.get(path)
        return resp.status, await resp.json()

    async def post(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> tuple[int, Any]:
        resp = await self.http.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf, **headers})
        return resp.status, await resp.json()

    async def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = await self.http.put(path, json=body, headers={"X-CSRF-Token": self.csrf})
        return resp.status, await resp.json()

    async def issue(self, procedure: str, office: str = "main", **extra: Any) -> dict[str, Any]:
        status, data = await self.post(f"/api/offices/{office}/tickets", {"procedure": procedure, **extra})
        assert status == 201, data
        return data

    async def counter(self, counter: str, action: str, body: dict[str, Any] | None = None, office: str = "main",
                      **headers: str) -> tuple[int, Any]:
        return await self.post(f"/api/offices/{office}/counters/{counter}/{action}", body, **headers)


@contextlib.asynccontextmanager
async def api_users(default_base: str) -> AsyncIterator[Callable[[str | None], Api]]:
    """Make HTTP users (each with its own cookies) of a server at ``default_base`` or another base URL."""
    sessions: list[ClientSession] = []

    def make(base: str | None = None) -> Api:
        session = ClientSession(base_url=base or default_base, cookie_jar=CookieJar(unsafe=True))
        sessions.append(session)
        return Api(session)

    try:
        yield make
    finally:
        for session in sessions:
            await session.close()


@pytest.fixture
async def user(client: TestClient) -> AsyncIterator[Callable[..., Api]]:
    """Make API users of the test server (or of ``server``), each with its own cookies."""
    async with api_users(str(client.make_url("/"))) as make:
        yield lambda server=None: make(str(server.make_url("/")) if server is not None else None)


@pytest.fixture
async def make_client(aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config, valkey_url: str,
                      key_prefix: str) -> Callable[..., Awaitable[TestClient]]:
    """Start the real app (against the test Valkey) on a real socket and return a client for it."""

    async def make(cfg: Config | None = None) -> TestClient:
        app = init_app(cfg or config, redis_url=valkey_url, key_prefix=key_prefix)
        client = await aiohttp_client(app)
        for name, role in (("staff", Role.CONTRACTOR), ("city", Role.CITY), ("boss", Role.SUPERVISOR)):
            await client.app[ACCOUNTS].add_user(name, PASSWORD, role)
        return client

    return make


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    """A client of the test office's server, no one signed in."""
    return await make_client()


@pytest.fixture
async def staff(user: Callable[[], Api]) -> Api:
    """Signed-in contractor staff, with counters 1–3 open."""
    api = user()
    await api.sign_in("staff")
    for counter in ("1", "2", "3"):
        status, body = await api.counter(counter, "open")
        assert status == 200, body
    return api


@pytest.fixture
async def visitor(user: Callable[[], Api]) -> Api:
    """A visitor at the kiosk or on a phone (no sign-in)."""
    return user()
