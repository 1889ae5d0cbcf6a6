"""Before a touch, the kiosk warns when a ticket taken now would likely not be called before closing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest
from playwright.async_api import expect

from queue_server.config import Config
from queue_server.web.keys import CLOCK

from .conftest import LiveServer, MakeUser, OpenPage
from .test_kiosk import open_kiosk, text

pytestmark = pytest.mark.browser

TOKYO = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
def server_config(config: Config) -> Config:
    """The test office keeping its calendar (weekdays 08:30–17:15)."""
    return dataclasses.replace(config, server=dataclasses.replace(config.server, always_open=False))


async def test_a_procedure_whose_wait_runs_past_closing_warns_on_its_button(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    at = dt.datetime(2026, 11, 24, 16, 55, tzinfo=TOKYO)  # a Tuesday, 20 minutes before closing
    live_server.app[CLOCK].offset_ms = int(at.timestamp() * 1000) - time.time_ns() // 1_000_000
    staff, visitor = web_user(), web_user()
    await staff.sign_in("staff")
    assert (await staff.counter("2", "open"))[0] == 200  # one counter for pickup: ~10 min a visit
    for _ in range(5):
        await visitor.issue("pickup")

    page = await open_kiosk(open_page)
    pickup = page.locator("button.procedure[data-procedure=pickup]")
    await expect(pickup.locator(".procedure-warning")).to_have_text(text("ja", "common.past_closing"))
    # No counter serves applications now: no estimate, so no warning either; the button still works.
    application = page.locator("button.procedure[data-procedure=application]")
    await expect(application.locator(".procedure-warning")).to_have_count(0)
