"""The office's booking line ([offices.bookings] phone, issue 15 item 9) on the three pages that say
where to book: the kiosk's hours line, the booking page and the congestion page — the last two, seen
on phones, as tel: links. Japanese first, the visitor's language from the catalogs.

Real Chromium against the real server; the test office with a booking line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from playwright.async_api import expect

from queue_server.config import Config, load_config

from ..conftest import TESTS
from .conftest import LiveServer, OpenPage
from .test_kiosk import LANDSCAPE, PORTRAIT, open_kiosk, text
from .test_kiosk_wait import LOWEST_EDGE

pytestmark = pytest.mark.browser

PHONE = "0561-01-2345"
HOURS = "平日 9:00〜17:00"
HOURS_EN = "weekdays 9:00–17:00"
PHONE_VIEWPORT = (390, 844)


@pytest.fixture
def server_config(tmp_path: Path) -> Config:
    """The test office (pickups bookable), with its booking line and when it answers."""
    source = (TESTS / "office.toml").read_text(encoding="utf-8").replace(
        "[offices.bookings]\n",
        f'[offices.bookings]\nphone = "{PHONE}"\nphone_hours = "{HOURS}"\nphone_hours_texts = {{ en = "{HOURS_EN}" }}\n', 1)
    path = tmp_path / "office.toml"
    path.write_text(source, encoding="utf-8")
    config = load_config(path)
    return dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=tmp_path))


def booking_url(live_server: LiveServer) -> str:
    return live_server.url("/book/main").split("://", 1)[1]


async def test_the_kiosk_says_the_booking_line_where_it_says_where_to_book(
        live_server: LiveServer, open_page: OpenPage) -> None:
    kiosk = await open_kiosk(open_page)
    phone = PHONE + text("ja", "common.booking_phone_hours", hours=HOURS)
    await expect(kiosk.locator("#booking-how")).to_have_text(
        text("ja", "kiosk.book_how_phone", url=booking_url(live_server), phone=phone))
    await expect(kiosk.locator("#booking-how .booking-phone-number")).to_have_text(PHONE)
    assert await kiosk.evaluate(LOWEST_EDGE) <= PORTRAIT[1], "the start screen runs off the screen"
    await kiosk.click("button.language[data-lang=en]")
    phone_en = PHONE + text("en", "common.booking_phone_hours", hours=HOURS_EN)
    await expect(kiosk.locator("#booking-how")).to_have_text(
        text("en", "kiosk.book_how_phone", url=booking_url(live_server), phone=phone_en))
    assert await kiosk.evaluate(LOWEST_EDGE) <= PORTRAIT[1], "the start screen runs off the screen"
    landscape = await open_kiosk(open_page, viewport=LANDSCAPE)
    await expect(landscape.locator("#booking-how .booking-phone-number")).to_have_text(PHONE)
    assert await landscape.evaluate(LOWEST_EDGE) <= LANDSCAPE[1], "the start screen runs off the screen"


@pytest.mark.parametrize("path", ["/book/main", "/congestion/main", "/congestion"])
async def test_the_booking_and_congestion_pages_give_the_line_as_a_tel_link(
        live_server: LiveServer, open_page: OpenPage, path: str) -> None:
    page = await open_page(path, viewport=PHONE_VIEWPORT)
    line = page.locator(".booking-phone")
    await expect(line).to_have_count(1)
    await expect(line).to_have_text(text("ja", "common.booking_phone") + " " + PHONE
                                    + text("ja", "common.booking_phone_hours", hours=HOURS))
    link = line.locator("a.booking-phone-number")
    await expect(link).to_have_attribute("href", "tel:0561012345")
    await expect(link).to_have_text(PHONE)
    english = await open_page(f"{path}?lang=en", viewport=PHONE_VIEWPORT)
    await expect(english.locator(".booking-phone")).to_contain_text(
        text("en", "common.booking_phone_hours", hours=HOURS_EN).strip())
