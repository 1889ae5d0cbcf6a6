"""The public congestion page says when an office is closed and why, with its hours, the date, the
numbers being called and what each level means."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time

import pytest
from playwright.async_api import expect

from queue_server.config import Config
from queue_server.web.keys import CLOCK

from .conftest import LiveServer, MakeUser, OpenPage
from .test_kiosk import text

pytestmark = pytest.mark.browser

TOKYO = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
def server_config(config: Config) -> Config:
    """The test office keeping its calendar (weekdays 08:30–17:15)."""
    return dataclasses.replace(config, server=dataclasses.replace(config.server, always_open=False))


def set_clock(live_server: LiveServer, moment: dt.datetime) -> None:
    live_server.app[CLOCK].offset_ms = int(moment.timestamp() * 1000) - time.time_ns() // 1_000_000


async def test_a_closed_office_says_its_reception_has_ended_with_its_hours(
        live_server: LiveServer, open_page: OpenPage) -> None:
    set_clock(live_server, dt.datetime(2026, 11, 24, 18, 0, tzinfo=TOKYO))  # a Tuesday, after 17:15
    page = await open_page("/congestion/main")
    reception = page.locator("#reception-main")
    await expect(reception).to_have_text(text("ja", "congestion.reception_ended", hours="08:30〜17:15"))
    await expect(page.locator("#date-main")).to_have_text(re.compile(r"11月24日.*火"))
    pickup = page.locator("#rows-main tr[data-procedure=pickup]")
    await expect(pickup.locator(".estimate")).to_have_text(text("ja", "congestion.closed_short"))


async def test_before_opening_the_page_gives_todays_hours(live_server: LiveServer, open_page: OpenPage) -> None:
    set_clock(live_server, dt.datetime(2026, 11, 26, 7, 30, tzinfo=TOKYO))  # a Thursday: open until 19:00
    page = await open_page("/congestion/main?lang=en")
    await expect(page.locator("#reception-main")).to_have_text(
        text("en", "congestion.reception_not_yet_open", hours="08:30〜19:00"))


async def test_an_open_office_shows_the_numbers_being_called_and_the_legend(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server, dt.datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO))
    visitor, staff = web_user(), web_user()
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(2)]
    await staff.sign_in("staff")
    assert (await staff.counter("2", "open"))[0] == 200
    page = await open_page("/congestion/main")
    await expect(page.locator("#reception-main")).to_have_text(
        text("ja", "congestion.reception_open", hours="08:30〜17:15"))
    calling = page.locator("#rows-main tr[data-procedure=pickup] .calling-number")
    await expect(calling).to_have_count(0)
    assert (await staff.counter("2", "call-next"))[0] == 200
    await expect(calling).to_have_text([numbers[0]])
    legend = page.locator(".legend li")
    await expect(legend).to_have_text([
        f"{text('ja', 'congestion.level_low')} {text('ja', 'congestion.legend_low', minutes=15)}",
        f"{text('ja', 'congestion.level_medium')} {text('ja', 'congestion.legend_medium', low=15, high=30)}",
        f"{text('ja', 'congestion.level_high')} {text('ja', 'congestion.legend_high', minutes=30)}"])
