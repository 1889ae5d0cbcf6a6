"""A kiosk set up once by its one-time link is never stopped by mistyped booking codes (issue 15, item 7):
real Chromium opens the setup link, confirms, and checks visitors in at the kiosk page, whose misses
count against the kiosk, not against the address it shares with the phones in the lobby.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from queue_server.config import Config
from queue_server.domain.booking import display_code
from queue_server.store.ratelimit import ADDRESS_MISSES, Subject
from queue_server.web.keys import BOOKING_GUESSES, KIOSKS

from ..test_checkin import checkin_config, tuesday
from ..test_kiosk_guesses import unknown_codes
from .conftest import LiveServer, MakeUser, OpenPage
from .test_checkin import book_tuesday_nine, set_clock
from .test_kiosk import PORTRAIT, text

pytestmark = pytest.mark.browser


@pytest.fixture
def server_config(tmp_path: Path) -> Config:
    return checkin_config(tmp_path)


async def test_a_kiosk_set_up_by_its_link_checks_in_after_more_misses_than_an_address_gets_free(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    _, created = await book_tuesday_nine(live_server, web_user)
    set_clock(live_server, tuesday(8, 40))
    code = await live_server.app[KIOSKS].add("main", "lobby-1", actor="test")
    kiosk = await open_page(f"/kiosk/setup/{code}", viewport=PORTRAIT)
    await expect(kiosk.locator("#setup-message")).to_contain_text("lobby-1")
    await kiosk.click("#setup-confirm")
    await expect(kiosk.locator("body[data-ready=true]")).to_have_count(1)
    assert kiosk.url == live_server.url("/kiosk/main")
    cookies = await kiosk.context.cookies()
    assert [c["httpOnly"] for c in cookies if c["name"] == "madoguchi_kiosk"] == [True]

    await kiosk.click("#checkin-start")
    for guess in unknown_codes(ADDRESS_MISSES.free + 2, created["code"]):
        await kiosk.fill("#checkin-code", display_code(guess))
        await kiosk.click("#checkin-submit")
        await expect(kiosk.locator("#checkin-message")).to_have_text(text("ja", "checkin.unknown"))
    await kiosk.fill("#checkin-code", created["code"])
    await kiosk.click("#checkin-submit")
    await expect(kiosk.locator("#ticket-number")).to_have_text("700")
    # The misses were the kiosk's (and forgotten at the check-in); the lobby's address has none.
    pacer = live_server.app[BOOKING_GUESSES]
    assert int(await pacer.redis.hget(pacer.key(Subject("kiosk", "main/lobby-1")), "n")) == 0
    assert not await pacer.redis.exists(pacer.key(Subject("address", "127.0.0.1")))
