"""The call-centre desk in a real Chromium, by keyboard as an operator on the phone works it: find the
next free slots of a procedure across the offices, book one for the caller with the notice
reference, read the code back; find the booking by its code, change it, cancel it; an office's
bookings of a day. Every action is recorded with the operator's name."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from queue_server.domain.model import Role
from queue_server.web.keys import ACCOUNTS

from ..conftest import PASSWORD
from .conftest import LiveServer, MakeUser, OpenPage, save_screenshot
from .test_booking_page import CODE, axe_violations, booking_of, book_by_api, server_config, set_clock  # noqa: F401
from .test_kiosk import text

pytestmark = pytest.mark.browser


async def open_desk(live_server: LiveServer, open_page: OpenPage, username: str = "phone",
                    role: Role = Role.CALLCENTER) -> Any:
    """The desk, signed in by keyboard as a call-centre operator."""
    await live_server.app[ACCOUNTS].add_user(username, PASSWORD, role)
    page = await open_page("/callcenter")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.press("input[name=password]", "Enter")
    return page


async def test_book_for_a_caller_read_the_code_back_find_it_change_and_cancel_by_keyboard(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    await book_by_api(web_user, "20261125", "08:30", times=2)   # the first slot is full
    desk = await open_desk(live_server, open_page)
    await expect(desk.locator("body[data-ready=true]")).to_have_count(1)
    await expect(desk.locator("#procedure")).to_be_focused()

    # Enter in the procedure list searches; the soonest free slots come first, the full one not at all.
    await desk.keyboard.press("Enter")
    rows = desk.locator("#free tr")
    await expect(rows.first).to_have_attribute("data-slot", "09:00")
    await expect(rows.first).to_have_attribute("data-day", "20261125")
    await expect(rows.first.locator("td").nth(3)).to_have_text(text("ja", "callcenter.places", n=2))
    await expect(rows.first.locator("button")).to_be_focused()
    await desk.keyboard.press("ArrowDown")
    await expect(rows.nth(1).locator("button")).to_be_focused()
    await desk.keyboard.press("Enter")
    await expect(desk.locator("#reference")).to_be_focused()
    await desk.keyboard.type("X-20261")
    await desk.keyboard.press("Enter")

    result = desk.locator("#result")
    await expect(result).to_be_focused()
    await expect(desk.locator("#result-heading")).to_have_text(text("ja", "callcenter.booked"))
    await expect(desk.locator("#result-code")).to_have_text(CODE)
    code = await desk.locator("#result-code").inner_text()
    # Each character with its reading to say on the phone.
    readings = dict(pair.split(":", 1) for pair in text("ja", "booking.letter_readings").split())
    await expect(desk.locator("#result-spelled .cc-char-reading")).to_have_text(
        [readings[c] for c in code.replace("-", "")])
    await save_screenshot(desk, "callcenter")
    assert await axe_violations(desk) == []
    booking = await booking_of(web_user, code)
    assert (booking["day"], booking["slot"], booking["reference"], booking["channel"], booking["actor"]) == \
        ("20261125", "09:30", "X-20261", "callcenter", "phone")

    # Look it up by code (as the caller reads it, lower case with a space), then change it.
    await desk.keyboard.press("2")
    await expect(desk.locator("#find-code")).to_be_focused()
    await desk.keyboard.type(code.replace("-", " ").lower())
    await desk.keyboard.press("Enter")
    details = desk.locator("#found-details")
    await expect(details.locator("dd[data-field=reference]")).to_have_text("X-20261")
    await expect(details.locator("dd[data-field=col_state]")).to_have_text(text("ja", "booking.state_booked"))
    # The caller finds the postcard: the number corrected.
    await desk.fill("#found-reference", "X-20262")
    await desk.press("#found-reference", "Enter")
    await expect(desk.locator("#message")).to_have_text(text("ja", "callcenter.reference_saved"))
    await expect(details.locator("dd[data-field=reference]")).to_have_text("X-20262")
    assert (await booking_of(web_user, code))["reference"] == "X-20262"
    await desk.locator("#found-reference").blur()
    await desk.keyboard.press("c")
    change_rows = desk.locator("#change-free tr")
    await expect(change_rows.first.locator("button")).to_be_focused()
    # Its own slot is not offered as a change.
    await expect(desk.locator("#change-free tr[data-day='20261125'][data-slot='09:30']")).to_have_count(0)
    new_day = await change_rows.first.get_attribute("data-day")
    new_slot = await change_rows.first.get_attribute("data-slot")
    await desk.keyboard.press("Enter")
    await expect(desk.locator("#result-heading")).to_have_text(text("ja", "callcenter.changed"))
    await expect(details.locator("dd[data-field=col_time]")).to_have_text(new_slot or "")
    booking = await booking_of(web_user, code)
    assert (booking["day"], booking["slot"], booking["state"]) == (new_day, new_slot, "booked")

    await desk.keyboard.press("x")
    await expect(desk.locator("#cancel-confirm")).to_be_focused()
    await desk.keyboard.press("Enter")
    await expect(details.locator("dd[data-field=col_state]")).to_have_text(text("ja", "booking.state_cancelled"))
    await expect(desk.locator("#message")).to_have_text(text("ja", "callcenter.cancelled", code=code))
    assert (await booking_of(web_user, code))["state"] == "cancelled"


async def test_an_offices_bookings_of_a_day_with_codes_and_times(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    late, early = (await book_by_api(web_user, "20261126", "11:00"))[0], (await book_by_api(web_user, "20261126", "09:00"))[0]
    desk = await open_desk(live_server, open_page)
    await expect(desk.locator("body[data-ready=true]")).to_have_count(1)
    await desk.locator("#procedure").blur()
    await desk.keyboard.press("3")
    await expect(desk.locator("#list-office")).to_be_focused()
    await expect(desk.locator("#list-day")).to_have_value("2026-11-24")   # the office's today
    await desk.fill("#list-day", "2026-11-26")
    await desk.press("#list-day", "Enter")
    rows = desk.locator("#list tr")
    await expect(rows).to_have_count(2)
    await expect(rows.locator("td.cc-time")).to_have_text(["09:00", "11:00"])
    await expect(rows.locator("td.cc-list-code")).to_have_text([early, late])


async def test_only_call_centre_staff_and_supervisors_get_the_desk(
        live_server: LiveServer, open_page: OpenPage) -> None:
    desk = await open_desk(live_server, open_page, username="counter1", role=Role.CONTRACTOR)
    await expect(desk.locator("#message")).to_have_text(text("ja", "callcenter.wrong_role"))
    await expect(desk.locator("#desk")).to_be_hidden()
    boss = await open_desk(live_server, open_page, username="boss2", role=Role.SUPERVISOR)
    await expect(boss.locator("#desk")).to_be_visible()
    await expect(boss.locator("#shortcuts")).to_have_text(re.compile("Enter"))


async def test_the_desk_signs_in_and_out_with_the_staff_pages_form(
        live_server: LiveServer, open_page: OpenPage) -> None:
    """The shared sign-in (staff.js, staff.html): the desk's own heading, a wrong password said in
    Japanese, and signing out back to the form with the name field ready to type in."""
    await live_server.app[ACCOUNTS].add_user("phone3", PASSWORD, Role.CALLCENTER)
    desk = await open_page("/callcenter")
    await expect(desk.locator("#sign-in h1")).to_have_text(text("ja", "callcenter.sign_in_heading"))
    await expect(desk.locator("input[name=username]")).to_be_focused()
    await desk.fill("input[name=username]", "phone3")
    await desk.fill("input[name=password]", "not the password")
    await desk.press("input[name=password]", "Enter")
    await expect(desk.locator("#message")).to_have_text(text("ja", "callcenter.sign_in_failed"))
    await desk.fill("input[name=password]", PASSWORD)
    await desk.press("input[name=password]", "Enter")
    await expect(desk.locator("#procedure")).to_be_focused()
    await expect(desk.locator("#message")).to_be_hidden()
    await desk.click("#sign-out")
    await expect(desk.locator("#desk")).to_be_hidden()
    await expect(desk.locator("input[name=username]")).to_be_focused()
    await desk.reload()
    await expect(desk.locator("#sign-in")).to_be_visible()


async def test_a_slot_taken_while_the_caller_decides_is_refused_and_the_list_read_again(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    desk = await open_desk(live_server, open_page)
    await expect(desk.locator("body[data-ready=true]")).to_have_count(1)
    await desk.keyboard.press("Enter")
    first = desk.locator("#free tr").first
    await expect(first).to_have_attribute("data-slot", "08:30")
    await desk.keyboard.press("Enter")
    await expect(desk.locator("#reference")).to_be_focused()
    await book_by_api(web_user, "20261125", "08:30", times=2)   # the web page took both places meanwhile
    await desk.keyboard.press("Enter")
    await expect(desk.locator("#message")).to_have_text(text("ja", "error.slot_full.message"))
    await expect(first).to_have_attribute("data-slot", "09:00")
    await expect(desk.locator("#result")).to_be_hidden()
