"""The visitor's phone at the business day's end: a ticket still waiting at midnight says it expired."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from playwright.async_api import expect

from queue_server.web.keys import CLOCK

from .conftest import LiveServer, MakeUser, OpenPage
from .test_kiosk import text
from .test_status_congestion import open_status

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_a_ticket_still_waiting_at_midnight_shows_that_it_expired(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser, lang: str) -> None:
    clock = live_server.app[CLOCK]
    mine = await web_user().issue("pickup", lang=lang)
    page = await open_status(open_page, mine["token"])
    await expect(page.locator("#state")).to_have_text(text(lang, "status.state_waiting"))
    await expect(page.locator("#alerts-control")).to_be_visible()

    # One second before the end of the office clock's day; the page stays open, nobody does anything.
    today = clock.now().date()
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), clock.zone) - dt.timedelta(seconds=1)
    clock.offset_ms = int(end.timestamp() * 1000) - time.time_ns() // 1_000_000

    # A loaded machine may take a few seconds: one second to midnight, then the store, the hub, the page.
    await expect(page.locator("#state")).to_have_text(text(lang, "status.state_expired"))
    await expect(page.locator("#ahead")).to_be_hidden()
    await expect(page.locator("#alerts-control")).to_be_hidden()
