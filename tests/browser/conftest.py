"""Browser fixtures: the real app on a real port, Debian's Chromium driven by Playwright, screenshots.

    pytestmark = pytest.mark.browser

    async def test_x(live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
        page = await open_page("/kiosk/main", viewport=(1080, 1920))
        staff = web_user(); await staff.sign_in("staff")
        await save_screenshot(page, "kiosk-portrait")

Every wait (Playwright's ``expect``, clicks, navigation, ``expect_request``) lasts up to
``tests.waiting.PATIENCE_MS``: it returns as soon as the state holds, and a loaded machine may take
seconds to lay out a page or compute an estimate. Screenshots go to a temporary folder, or to
``$MADOGUCHI_SCREENSHOTS`` (``./dev screenshots`` sets it to docs/screenshots/ for the README).

``server_config`` (default: tests/office.toml) may be overridden by a module or class fixture.
``open_page`` gives each page its own browser context (own cookies, viewport, locale); a page that
throws an uncaught JavaScript error fails the test. Users ``staff`` (contractor), ``city`` and
``boss`` (supervisor) exist with password ``tests.conftest.PASSWORD``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from queue_server.config import Config, load_config
from queue_server.domain.model import Role
from queue_server.web.app import init_app
from queue_server.web.keys import ACCOUNTS

from ..conftest import PASSWORD, Api, api_users
from ..waiting import PATIENCE_MS

CHROMIUM: str = os.environ.get("MADOGUCHI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS: list[str] = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SHUTDOWN_SECONDS: float = 1.0
SCREENSHOTS_ENV: str = "MADOGUCHI_SCREENSHOTS"
"""Where ``save_screenshot`` writes, when set (``./dev screenshots``: the README's docs/screenshots/)."""

# Playwright's assertions wait 5 s by default: on a loaded machine an estimate or a layout can come later.
expect.set_options(timeout=PATIENCE_MS)


@dataclass
class LiveServer:
    """The real app listening on 127.0.0.1:<port>."""

    app: web.Application
    server: TestServer

    def url(self, path: str = "/") -> str:
        """An absolute URL on the server."""
        return str(self.server.make_url(path))


MakeUser = Callable[[], Api]


DEMO: Final = Path(__file__).resolve().parents[2] / "config" / "demo.toml"


def demo_office_without_back_office() -> Config:
    """The demo configuration, always open, with no back-office stages: for tests of the counters,
    the display and the visitor's pages, where a pickup must be callable as soon as it is issued
    (with its preparation stage it would wait for its card, see tests/test_tasks.py)."""
    demo = load_config(DEMO)
    offices = {oid: dataclasses.replace(o, procedures={pid: dataclasses.replace(p, stages=())
                                                       for pid, p in o.procedures.items()})
               for oid, o in demo.offices.items()}
    return dataclasses.replace(demo, offices=offices, server=dataclasses.replace(demo.server, always_open=True))


@pytest.fixture
def server_config(config: Config) -> Config:
    """The configuration ``live_server`` runs (tests/office.toml); override it in a module or class."""
    return config


@pytest.fixture
async def live_server(aiohttp_server: Callable[..., Awaitable[TestServer]], server_config: Config, valkey_url: str,
                      key_prefix: str) -> LiveServer:
    """Start the app on the test Valkey (own key prefix) on a real port, with the test users."""
    return await start_server(aiohttp_server, server_config, valkey_url, key_prefix)


async def start_server(aiohttp_server: Callable[..., Awaitable[TestServer]], config: Config, valkey_url: str,
                       key_prefix: str) -> LiveServer:
    """What ``live_server`` does, for a test that needs its own configuration."""
    app = init_app(config, redis_url=valkey_url, key_prefix=key_prefix)
    # Open pages keep WebSockets that aiohttp would wait up to 60 s for when the server stops.
    server = await aiohttp_server(app, shutdown_timeout=SHUTDOWN_SECONDS)
    for name, role in (("staff", Role.CONTRACTOR), ("city", Role.CITY), ("boss", Role.SUPERVISOR)):
        await app[ACCOUNTS].add_user(name, PASSWORD, role)
    return LiveServer(app, server)


@pytest.fixture
async def web_user(live_server: LiveServer) -> AsyncIterator[MakeUser]:
    """Make HTTP users of the live server (each with its own cookies), as in tests/conftest.py."""
    async with api_users(live_server.url("/")) as make:
        yield lambda: make()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright; each launch has a fresh temporary profile."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (./dev test installs it; or set MADOGUCHI_CHROMIUM)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageErrors:
    """Uncaught JavaScript errors of the pages a test opened."""

    errors: list[str] = field(default_factory=list)


OpenPage = Callable[..., Awaitable[Any]]


@pytest.fixture
async def open_page(browser: Any, live_server: LiveServer) -> AsyncIterator[OpenPage]:
    """Open a server path (or absolute URL) in a new browser context: ``await open_page(path, viewport=(w, h))``.

    With ``wait=False`` the page is not loaded yet (add init scripts, then ``goto``).
    """
    contexts: list[Any] = []
    seen = PageErrors()

    async def open_(path: str, *, viewport: tuple[int, int] = (1280, 800), wait: bool = True, **options: Any) -> Any:
        context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                            locale=options.pop("locale", "ja-JP"), **options)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(PATIENCE_MS)
        page.on("pageerror", lambda error: seen.errors.append(f"{path}: {error}"))
        if wait:
            await page.goto(path if path.startswith(("http://", "https://")) else live_server.url(path))
        return page

    yield open_
    for context in contexts:
        await context.close()
    assert not seen.errors, f"uncaught JavaScript errors: {seen.errors}"


@pytest.fixture(scope="session", autouse=True)
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this run's screenshots go: ``$MADOGUCHI_SCREENSHOTS``, else a temporary folder.

    A test run must leave the working tree clean, so only ``./dev screenshots`` rewrites the README's.
    """
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    _screenshots[:] = [folder]
    return folder


_screenshots: list[Path] = []
"""The folder ``screenshots_dir`` chose for this run (a plain function cannot take a fixture)."""


async def save_screenshot(page: Any, name: str) -> Path:
    """Save ``<name>.png`` in this run's screenshot folder (``./dev screenshots``: the README's)."""
    path = _screenshots[0] / f"{name}.png"
    await page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path
