"""The kiosk says, on the button of a procedure that takes bookings, when its next free booking slot is
— live, as slots fill — and where to book, and on a booking-only day it says so instead of issuing.

Real Chromium against the real server; the test office of test_booking_page (pickups bookable, two
places a slot, closing the previous day at 17:00; a booking-only holiday opening on Sunday 29 November).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.async_api import expect

from .conftest import LiveServer, MakeUser, OpenPage
from .test_booking_page import NOW, TOKYO, axe_violations, book_by_api, server_config, set_clock  # noqa: F401
from .test_kiosk import open_kiosk, text, waiting_numbers

pytestmark = pytest.mark.browser

HOLIDAY_OPENING = dt.datetime(2026, 11, 29, 9, 0, tzinfo=TOKYO)
"""Sunday 29 November 09:00: the booking-only holiday opening (休日交付) is on."""


def booking_url(live_server: LiveServer) -> str:
    """The booking page's address as the kiosk shows it (without its scheme)."""
    return live_server.url("/book/main").split("://", 1)[1]


def next_slot(when: str, lang: str = "ja") -> str:
    """The booking line of a button: the next free slot."""
    return text(lang, "congestion.next_slot", when=when)


def button(kiosk: Any, procedure: str) -> Any:
    return kiosk.locator(f"button.procedure[data-procedure={procedure}]")


async def test_the_next_free_slot_is_on_the_bookable_procedures_button_and_follows_bookings(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server, NOW)   # Tuesday 10:00: the first bookable day is Wednesday
    await book_by_api(web_user, "20261125", "08:30", times=2)   # 08:30 full: the next free is 09:00
    kiosk = await open_kiosk(open_page)
    pickup = button(kiosk, "pickup").locator(".procedure-booking")
    await expect(pickup).to_have_text(next_slot("11月25日(水) 09:00"))
    # Where to book, once under the hours.
    await expect(kiosk.locator("#booking-how")).to_have_text(text("ja", "kiosk.book_how", url=booking_url(live_server)))
    # A procedure that takes no bookings says nothing of bookings; the bookable one still issues tickets.
    await expect(button(kiosk, "application").locator(".procedure-booking")).to_have_count(0)
    await expect(button(kiosk, "pickup")).not_to_have_attribute("aria-disabled", "true")
    # 09:00 booked full through the API: the button moves on to 09:30 by itself.
    await book_by_api(web_user, "20261125", "09:00", times=2)
    await expect(pickup).to_have_text(next_slot("11月25日(水) 09:30"))
    assert await axe_violations(kiosk) == []
    # In another language, in its own words and date format.
    await kiosk.click("button.language[data-lang=en]")
    await expect(pickup).to_have_text(next_slot("Wed, November 25 09:30", "en"))


async def test_on_a_booking_only_day_the_button_says_so_and_when_to_book_instead_of_issuing(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server, HOLIDAY_OPENING)
    kiosk = await open_kiosk(open_page)
    pickup = button(kiosk, "pickup")
    await expect(pickup).to_have_attribute("aria-disabled", "true")
    await expect(pickup.locator(".procedure-meta")).to_have_text(text("ja", "kiosk.booking_only"))
    # Today's pickups closed yesterday at 17:00: the next free slot is Monday's first.
    await expect(pickup.locator(".procedure-booking")).to_have_text(next_slot("11月30日(月) 08:30"))
    assert await axe_violations(kiosk) == []
    await pickup.click(force=True)   # a touch reaches it: aria-disabled keeps it focusable and named
    # Walk-ins of the procedures without bookings are taken as on any day. The next touch is handled
    # after the first: once it shows its ticket, the booking-only one issued nothing.
    await button(kiosk, "application").click()
    number = kiosk.locator("#ticket-number")
    await expect(number).not_to_be_empty()
    assert await waiting_numbers(web_user) == [await number.text_content()]
    status, office = await web_user().get("/api/offices/main")
    assert status == 200
    [entry] = [p for p in office["procedures"] if p["id"] == "pickup"]
    assert entry["bookable"] and entry["walk_ins_today"] is False
