"""A booked visitor checks in at the kiosk and is called ahead of earlier walk-ins once the slot starts,
seen on the counter panel and the lobby display (real Chromium, real server, the adjustable clock).

Bookings are made on Monday 2026-12-07 for Tuesday 09:00 (pickups close the previous open day);
the office clock is then set to Tuesday morning. Booked pickups take the numbers 700–799.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from queue_server.config import Config
from queue_server.web.keys import CLOCK

from ..conftest import Api
from ..test_checkin import MONDAY_10, checkin_config, tuesday
from .conftest import LiveServer, MakeUser, OpenPage
from .test_display_counter import open_display, open_panel
from .test_kiosk import LANDSCAPE, PORTRAIT, open_kiosk, text
from .test_kiosk_wait import LOWEST_EDGE

pytestmark = pytest.mark.browser


@pytest.fixture
def server_config(tmp_path: Path) -> Config:
    """The test office with booked numbers (700–799) and a branch."""
    return checkin_config(tmp_path)


def set_clock(live_server: LiveServer, at: dt.datetime) -> None:
    """Make the server's office clock read ``at`` now."""
    live_server.app[CLOCK].offset_ms = int(at.timestamp() * 1000) - time.time_ns() // 1_000_000


async def book_tuesday_nine(live_server: LiveServer, web_user: MakeUser) -> tuple[Api, dict[str, Any]]:
    """A pickup booked on Monday for Tuesday 09:00."""
    set_clock(live_server, MONDAY_10)
    visitor = web_user()
    status, created = await visitor.post("/api/offices/main/bookings",
                                         {"procedure": "pickup", "day": "20261208", "slot": "09:00"})
    assert status == 201, created
    return visitor, created


async def test_checked_in_at_the_kiosk_and_called_ahead_of_earlier_walk_ins_once_the_slot_starts(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    visitor, created = await book_tuesday_nine(live_server, web_user)
    set_clock(live_server, tuesday(8, 40))
    walk_ins = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(2)]
    assert walk_ins == ["300", "301"]
    set_clock(live_server, tuesday(8, 45))
    display = await open_display(open_page)
    panel = await open_panel(open_page, counter="2")

    kiosk = await open_kiosk(open_page)
    await kiosk.click("#checkin-start")
    assert await kiosk.evaluate(LOWEST_EDGE) <= PORTRAIT[1], "the check-in screen runs off the screen"
    # The rules in plain words: from when check-in opens, what happens when late.
    await expect(kiosk.locator("#checkin-rule-open")).to_have_text(text("ja", "checkin.rules_open", minutes=30))
    await expect(kiosk.locator("#checkin-rule-late")).to_have_text(text("ja", "checkin.rules_late", minutes=10))
    for char in created["code"].replace("-", ""):
        await kiosk.click(f"#keypad [data-key='{char}']")
    await expect(kiosk.locator("#checkin-code")).to_have_value(created["code"])
    await kiosk.click("#checkin-submit")
    # The booked ticket, shown (and printed) as a walk-in's: number, QR code, people ahead.
    await expect(kiosk.locator("#ticket-number")).to_have_text("700")
    await expect(kiosk.locator("#ticket-booked")).to_contain_text(text("ja", "checkin.booked_note", slot="09:00"))
    await expect(kiosk.locator("#ticket-qr")).to_have_attribute("data-status-url", re.compile(r"/status/"))
    await expect(kiosk.locator("#ticket-ahead")).to_contain_text("2")
    await expect(kiosk.locator("#pt-booked")).to_have_text(text("ja", "checkin.print_booked", slot="09:00"))

    # On the counter panel, marked 「予」 with its slot; before 09:00 it waits behind the earlier walk-ins.
    booked_row = panel.locator("#waiting tr[data-number='700']")
    await expect(booked_row.locator(".cp-booked")).to_have_text(text("ja", "checkin.mark"))
    await expect(booked_row.locator(".cp-slot")).to_have_text("09:00")
    rows = panel.locator("#waiting tr")
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_have_attribute("data-number", "300")

    # 09:00: the slot starts. A walk-in arriving now (an event the panel reads the time from) …
    set_clock(live_server, tuesday(9, 0))
    assert (await visitor.issue("pickup"))["ticket"]["number"] == "302"
    await expect(rows).to_have_count(4)
    # … and the panel lists the booked visitor first, ahead of 300 and 301.
    await expect(rows.first).to_have_attribute("data-number", "700")
    await expect(rows.nth(1)).to_have_attribute("data-number", "300")

    await panel.click("[data-action='call-next']")
    await expect(panel.locator("#current-number")).to_have_text("700")
    # The display shows the call with the booked mark (a mark, never the booking).
    card = display.locator(".call-card[data-number='700'][data-counter='2']").first
    await expect(card).to_be_visible()
    await expect(card.locator(".booked-mark")).to_have_text(text("ja", "checkin.mark"))
    await expect(display.locator(".call-card[data-number='300'] .booked-mark")).to_have_count(0)


async def test_a_reader_typing_the_booking_link_checks_in_and_too_early_says_from_when(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    _, created = await book_tuesday_nine(live_server, web_user)
    set_clock(live_server, tuesday(8, 20))
    kiosk = await open_kiosk(open_page, viewport=LANDSCAPE)
    # A visitor reading English: the button, the rules and the answers in English.
    await kiosk.click("button.language[data-lang='en']")
    await expect(kiosk.locator("#checkin-start")).to_contain_text(text("en", "checkin.button"))
    await kiosk.click("#checkin-start")
    await expect(kiosk.locator("#checkin-rule-open")).to_have_text(text("en", "checkin.rules_open", minutes=30))
    assert await kiosk.evaluate(LOWEST_EDGE) <= LANDSCAPE[1], "the check-in screen runs off the screen"
    # A QR reader types like a keyboard: the booking's link, then Enter.
    await kiosk.locator("#checkin-code").focus()
    await kiosk.keyboard.type(created["link"])
    await kiosk.keyboard.press("Enter")
    await expect(kiosk.locator("#checkin-message")).to_have_text(text("en", "checkin.too_early", time="08:30"))
    await expect(kiosk.locator("#screen-checkin")).to_be_visible()

    set_clock(live_server, tuesday(8, 30))
    await kiosk.click("#checkin-submit")
    await expect(kiosk.locator("#ticket-number")).to_have_text("700")
    await expect(kiosk.locator("#ticket-booked")).to_contain_text(text("en", "checkin.booked_first"))
    # What the printer gets is Japanese first, whatever the visitor's language (as a walk-in's ticket).
    await expect(kiosk.locator("#pt-booked")).to_have_text(text("ja", "checkin.print_booked", slot="09:00"))


async def test_staff_check_a_visitor_in_from_the_counter_panel(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    _, created = await book_tuesday_nine(live_server, web_user)
    set_clock(live_server, tuesday(9, 5))
    panel = await open_panel(open_page, counter="2")
    # The visitor lost the QR code; staff type the code read out from the booking confirmation.
    await panel.fill("#checkin-code", created["code"].lower())
    await panel.click("#checkin-submit")
    await expect(panel.locator("#message")).to_have_text(text("ja", "checkin.staff_done", number="700", slot="09:00"))
    await expect(panel.locator("#waiting tr[data-number='700'] .cp-booked")).to_have_text(text("ja", "checkin.mark"))
    await expect(panel.locator("#checkin-code")).to_have_value("")
    # The same code again: the panel says it is already checked in, with the number.
    await panel.fill("#checkin-code", created["code"])
    await panel.click("#checkin-submit")
    await expect(panel.locator("#message")).to_have_text(text("ja", "checkin.already", number="700"))
