"""The citizen's booking page in a real Chromium against the real server: book a slot and get the
code and QR code, change it through the secret link, cancel it; a full slot shown as full; a code
typed in (and trying codes stopped); a booking-only holiday opening marked; every language; axe
finds nothing on a phone or a PC; and the congestion page saying when the next free slot is."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import expect

from queue_server.config import Config, load_config
from queue_server.domain.booking import display_code, new_code
from queue_server.store.ratelimit import ADDRESS_MISSES
from queue_server.web.views import LANGUAGES
from queue_server.web.keys import CLOCK

from ..conftest import TESTS
from .conftest import LiveServer, MakeUser, OpenPage, save_screenshot
from .test_kiosk import RAW_KEY, shown, text

pytestmark = pytest.mark.browser

TOKYO = dt.timezone(dt.timedelta(hours=9))
PHONE = (390, 844)
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
"""A Tuesday morning: today's pickups closed yesterday at 17:00, tomorrow's close today at 17:00."""
CODE = re.compile(r"^[ACDEFHJKLMNPQRTUVWXY34679]{4}-[ACDEFHJKLMNPQRTUVWXY34679]{4}$")


@pytest.fixture
def server_config(tmp_path: Path) -> Config:
    """The test office with a booking-only holiday opening on Sunday 29 November (休日交付)."""
    source = (TESTS / "office.toml").read_text(encoding="utf-8").replace(
        "[offices.hours]\n",
        '[offices.hours]\nspecial = [{ date = 2026-11-29, hours = "08:30-12:30", note = "休日開庁", booking_only = true }]\n', 1)
    path = tmp_path / "office.toml"
    path.write_text(source, encoding="utf-8")
    config = load_config(path)
    return dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=tmp_path))


def set_clock(live_server: LiveServer, moment: dt.datetime = NOW) -> None:
    live_server.app[CLOCK].offset_ms = int(moment.timestamp() * 1000) - time.time_ns() // 1_000_000


async def open_booking(open_page: OpenPage, path: str = "/book/main", viewport: tuple[int, int] = PHONE) -> Any:
    """The booking page with the calendar of its one bookable procedure (pickup) shown."""
    page = await open_page(path, viewport=viewport)
    await expect(page.locator("body[data-ready=true][data-calendar=ready]")).to_have_count(1)
    return page


async def choose(page: Any, prefix: str, day: str, slot: str) -> None:
    """Choose a day in the calendar and a slot of it."""
    await page.click(f"#{prefix}-days td[data-day='{day}'] button")
    await page.click(f"#{prefix}-slots button[data-slot='{slot}']")
    await expect(page.locator(f"#{prefix}-slots button[data-slot='{slot}']")).to_have_attribute("aria-pressed", "true")


async def booking_of(web_user: MakeUser, code: str) -> dict[str, Any]:
    """A booking as the call centre sees it (with its reference)."""
    boss = web_user()
    await boss.sign_in("boss")
    status, found = await boss.post("/api/bookings/lookup", {"code": code})
    assert status == 200, found
    return found["booking"]


async def axe_violations(page: Any) -> list[str]:
    """What axe-core finds on the page as it is now (it must have checked something)."""
    results = await Axe().run(page)
    assert results.response["passes"], "axe checked nothing"
    return [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in results.response["violations"]]


async def test_book_see_the_code_change_through_the_link_and_cancel(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    page = await open_booking(open_page)
    # Today's slots closed yesterday at 17:00 (the card must be prepared); the past is past.
    await expect(page.locator("#book-days td[data-day='20261124']")).to_have_attribute("data-state", "unavailable")
    await expect(page.locator("#book-days td[data-day='20261120']")).to_have_attribute("data-state", "past")
    await expect(page.locator("#book-days td[data-day='20261128']")).to_have_attribute("data-state", "closed")
    await choose(page, "book", "20261126", "10:00")
    await expect(page.locator("#book-slots button[data-slot='10:00'] .slot-free")).to_have_text(
        text("ja", "booking.slot_free", n=2))
    await expect(page.locator("#reference-box")).to_be_visible()
    await page.fill("#reference", "ab-1234")
    await page.click("#confirm")

    done = page.locator("#done")
    await expect(done).to_be_visible()
    code = page.locator("#done-code")
    await expect(code).to_have_text(CODE)
    shown_code = await code.inner_text()
    # Each character with how to say it; the QR code drawn.
    await expect(page.locator("#done-code-spelled .spelled")).to_have_count(8)
    qr = page.locator("#done-qr")
    await expect(qr).to_be_visible()
    assert await qr.evaluate("(img) => img.complete && img.naturalWidth > 0")
    await expect(page.locator("#done-summary dd[data-field=summary_time]")).to_have_text("10:00")
    # The rules in plain words: check-in from 30 minutes before, released 10 minutes after the start.
    await expect(page.locator("#done-rules")).to_have_text(text("ja", "booking.rules", opens="09:30", late="10:10"))
    await save_screenshot(page, "booking-done-phone")
    booking = await booking_of(web_user, shown_code)
    assert (booking["day"], booking["slot"], booking["state"], booking["reference"]) == \
        ("20261126", "10:00", "booked", "AB-1234")

    # The secret link, as the QR code holds it.
    link = await page.locator("#done-link").get_attribute("href")
    qr_source = await qr.get_attribute("src")
    assert link is not None and qr_source is not None
    assert qr_source.split("?")[0] == link.split("?")[0] + "/qr.svg"
    mine = await open_page(link, viewport=PHONE)
    await expect(mine.locator("body[data-ready=true]")).to_have_count(1)
    await expect(mine.locator("#booking-code")).to_have_text(shown_code)
    await expect(mine.locator("#booking-state")).to_have_text(text("ja", "booking.state_booked"))

    await mine.click("#change")
    await expect(mine.locator("body[data-calendar=ready]")).to_have_count(1)
    await choose(mine, "change", "20261127", "11:00")
    await mine.click("#change-confirm")
    await expect(mine.locator("#info")).to_have_text(text("ja", "booking.changed"))
    await expect(mine.locator("#booking-summary dd[data-field=summary_time]")).to_have_text("11:00")
    await expect(mine.locator("#booking-rules")).to_have_text(text("ja", "booking.rules", opens="10:30", late="11:10"))
    await expect(mine.locator("#booking-code")).to_have_text(shown_code)
    booking = await booking_of(web_user, shown_code)
    assert (booking["day"], booking["slot"], booking["state"]) == ("20261127", "11:00", "booked")

    await mine.click("#cancel")
    await mine.click("#cancel-confirm")
    await expect(mine.locator("#booking-state")).to_have_text(text("ja", "booking.state_cancelled"))
    await expect(mine.locator("#change")).to_be_hidden()
    assert (await booking_of(web_user, shown_code))["state"] == "cancelled"


async def book_by_api(web_user: MakeUser, day: str, slot: str, times: int = 1, lang: str = "ja") -> list[str]:
    """Book ``times`` places of a pickup slot as visitors do; their codes."""
    return [answer["code"] for answer in await bookings_by_api(web_user, day, slot, times, lang)]


async def bookings_by_api(web_user: MakeUser, day: str, slot: str, times: int = 1,
                          lang: str = "ja") -> list[dict[str, Any]]:
    """Book ``times`` places of a pickup slot as visitors do; the answers (code, secret, link)."""
    visitor = web_user()
    answers = []
    for _ in range(times):
        status, answer = await visitor.post("/api/offices/main/bookings",
                                            {"procedure": "pickup", "day": day, "slot": slot, "lang": lang})
        assert status == 201, answer
        answers.append(answer)
    return answers


async def test_a_full_slot_is_shown_full_and_a_slot_taken_meanwhile_is_refused_plainly(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    await book_by_api(web_user, "20261126", "10:00", times=2)   # capacity 2
    page = await open_booking(open_page)
    await page.click("#book-days td[data-day='20261126'] button")
    full = page.locator("#book-slots button[data-slot='10:00']")
    await expect(full).to_be_disabled()
    await expect(full).to_have_attribute("data-state", "full")
    await expect(full.locator(".slot-free")).to_have_text(text("ja", "booking.slot_full"))

    # Chosen while free, taken by others before confirming: refused by name, and shown full.
    await choose(page, "book", "20261126", "10:30")
    await book_by_api(web_user, "20261126", "10:30", times=2)
    await page.click("#confirm")
    await expect(page.locator("#message")).to_have_text(text("ja", "error.slot_full.message"))
    await expect(page.locator("#book-slots button[data-slot='10:30']")).to_be_disabled()
    await expect(page.locator("#done")).to_be_hidden()


async def test_a_code_typed_in_opens_its_booking_and_a_wrong_one_says_so(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    [code] = await book_by_api(web_user, "20261126", "09:00")
    page = await open_booking(open_page, "/book/main?lang=en")
    await page.fill("#code-input", "ACDE")
    await page.press("#code-input", "Enter")
    await expect(page.locator("#code-error")).to_have_text(text("en", "booking.code_malformed"))
    wrong = code[:-1] + ("A" if code[-1] != "A" else "C")   # a wrong check character: never looked up
    await page.fill("#code-input", wrong)
    await page.press("#code-input", "Enter")
    await expect(page.locator("#code-error")).to_have_text(text("en", "booking.code_not_found"))
    await page.fill("#code-input", code.replace("-", " ").lower())
    await page.press("#code-input", "Enter")
    await expect(page).to_have_url(re.compile(r"/book/main/b/[A-Za-z0-9_-]+\?lang=en$"))
    await expect(page.locator("#booking-code")).to_have_text(code)
    await expect(page.locator("#booking-summary dd[data-field=summary_time]")).to_have_text("09:00")


async def test_trying_codes_is_slowed_and_the_page_says_so(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    [code] = await book_by_api(web_user, "20261126", "09:00")
    guesser = web_user()   # the same address as the browser: the limit is per client address
    clock = live_server.app[CLOCK]
    wait = 0
    for guess in (c for c in (new_code() for _ in range(40)) if display_code(c) != code):
        clock.offset_ms += wait * 1000   # the guesser waits as told each time
        resp = await guesser.http.post("/api/bookings/lookup", json={"code": guess})
        assert resp.status == 404
        wait = int(resp.headers.get("Retry-After", 0))
        if wait * 1000 == ADDRESS_MISSES.cap_ms:   # the longest wait: from here on, one guess per 30 s
            break
    assert wait * 1000 == ADDRESS_MISSES.cap_ms
    page = await open_booking(open_page)
    await page.fill("#code-input", code)   # even the right code, from here, until the wait is over
    await page.press("#code-input", "Enter")
    await expect(page.locator("#code-error")).to_have_text(text("ja", "error.rate_limited.message"))
    await expect(page).to_have_url(re.compile(r"/book/main$"))
    clock.offset_ms += ADDRESS_MISSES.cap_ms   # 30 s later, not 10 minutes: the honest visitor behind the address gets in
    await page.press("#code-input", "Enter")
    await expect(page).to_have_url(re.compile(r"/book/main/b/[A-Za-z0-9_-]+(\?lang=ja)?$"))


async def test_the_qr_codes_link_opens_in_the_language_of_the_booking(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    [answer] = await bookings_by_api(web_user, "20261126", "09:30", lang="vi")
    page = await open_page(f"/book/main/b/{answer['secret']}", viewport=PHONE)
    await expect(page).to_have_url(re.compile(r"\?lang=vi$"))
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    await expect(page.locator("h1")).to_have_text(text("vi", "booking.your_booking"))
    await expect(page.locator("#booking-code")).to_have_text(answer["code"])

    unknown = await open_page("/book/main/b/" + "A" * 22, viewport=PHONE)
    await expect(unknown.locator("#message")).to_have_text(text("ja", "booking.link_not_found"))
    await expect(unknown.locator("#booking")).to_be_hidden()


async def test_a_booking_only_holiday_opening_is_marked_and_bookable(
        live_server: LiveServer, open_page: OpenPage) -> None:
    set_clock(live_server)
    page = await open_booking(open_page)
    holiday = page.locator("#book-days td[data-day='20261129']")
    await expect(holiday).to_have_attribute("data-holiday", "true")
    await expect(holiday).to_have_attribute("data-state", "open")
    await expect(holiday.locator(".day-holiday")).to_have_text("休")
    await holiday.locator("button").click()
    await expect(page.locator("#book-chosen-day")).to_contain_text(text("ja", "booking.booking_only"))
    await expect(page.locator("#book-slots button[data-slot='08:30']")).to_be_enabled()
    await expect(page.locator("#book-slots button")).to_have_count(8)   # 08:30–12:30 in 30 minutes


@pytest.mark.parametrize("viewport", [PHONE, (1280, 800)], ids=["phone", "pc"])
async def test_axe_finds_nothing_on_the_booking_pages(
        live_server: LiveServer, open_page: OpenPage, viewport: tuple[int, int]) -> None:
    set_clock(live_server)
    page = await open_booking(open_page, viewport=viewport)
    await choose(page, "book", "20261126", "10:00")
    await expect(page.locator("#confirm-step")).to_be_visible()
    assert await axe_violations(page) == []
    # On a phone nothing is wider than the screen.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.click("#confirm")
    await expect(page.locator("#done-code")).to_have_text(CODE)
    assert await axe_violations(page) == []
    link = await page.locator("#done-link").get_attribute("href")
    mine = await open_page(link, viewport=viewport)
    await expect(mine.locator("body[data-ready=true]")).to_have_count(1)
    await mine.click("#change")
    await expect(mine.locator("body[data-calendar=ready]")).to_have_count(1)
    assert await axe_violations(mine) == []
    offices = await open_page("/book", viewport=viewport)
    assert await axe_violations(offices) == []


async def test_the_printed_booking_keeps_the_code_and_qr_code_only(
        live_server: LiveServer, open_page: OpenPage) -> None:
    set_clock(live_server)
    page = await open_booking(open_page)
    await choose(page, "book", "20261126", "10:00")
    await page.click("#confirm")
    await expect(page.locator("#done-code")).to_have_text(CODE)
    await page.emulate_media(media="print")
    await expect(page.locator("#done-code")).to_be_visible()
    await expect(page.locator("#done-qr")).to_be_visible()
    for hidden in ("#manage", "#print", ".booking-header"):
        await expect(page.locator(hidden)).to_be_hidden()


async def test_the_congestion_page_says_when_the_next_free_slot_is(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    set_clock(live_server)
    page = await open_page("/congestion/main")
    pickup = page.locator("#rows-main tr[data-procedure=pickup] .next-booking")
    await expect(pickup).to_have_text(text("ja", "congestion.next_slot", when="11月25日(水) 08:30"))
    assert await pickup.locator("a").get_attribute("href") == "/book/main?lang=ja"
    await expect(page.locator("#rows-main tr[data-procedure=application] .next-booking")).to_have_count(0)
    # Both places of 08:30 booked: the page moves on to 09:00 by itself.
    await book_by_api(web_user, "20261125", "08:30", times=2)
    await expect(pickup).to_have_text(text("ja", "congestion.next_slot", when="11月25日(水) 09:00"))
    status, view = await web_user().get("/api/offices/main/congestion")
    assert status == 200
    [entry] = [p for p in view["procedures"] if p["id"] == "pickup"]
    assert entry["bookable"] is True and (entry["next_booking"]["day"], entry["next_booking"]["slot"]) == ("20261125", "09:00")


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_each_language_shows_the_booking_page_in_its_own_words(
        live_server: LiveServer, open_page: OpenPage, lang: str) -> None:
    set_clock(live_server)
    page = await open_booking(open_page, f"/book/main?lang={lang}")
    await expect(page.locator("h1")).to_have_text(shown(lang, "booking.title"))
    await expect(page.locator("#book-day-heading")).to_have_text(shown(lang, "booking.step_day"))
    await expect(page.locator(".calendar-legend .legend-text").first).to_have_text(shown(lang, "booking.legend_open"))
    await expect(page.locator(".languages a[aria-current=page]")).to_have_attribute("href", f"/book/main?lang={lang}")
    await choose(page, "book", "20261126", "10:00")
    await expect(page.locator("#book-slots button[data-slot='10:00'] .slot-free")).to_have_text(
        shown(lang, "booking.slot_free", n=2))
    body = await page.inner_text("body")
    assert not RAW_KEY.findall(body) and not re.findall(r"\bbooking\.[a-z_]+\b", body), f"raw keys on the {lang} page"
