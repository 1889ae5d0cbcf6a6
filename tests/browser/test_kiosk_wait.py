"""The kiosk and the status page say only true things about the wait, each once, and the kiosk's
landscape layout fits a 1920×1080 screen."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from queue_server.config import Config, load_config

from ..test_api_lifecycle import receive
from .conftest import MakeUser, OpenPage
from .test_kiosk import LANDSCAPE, PORTRAIT, open_kiosk, text

pytestmark = pytest.mark.browser

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.toml"
PHONE = (390, 844)

LOWEST_EDGE = """() => Math.max(...[...document.querySelectorAll(".kiosk-frame *")]
  .filter((element) => element.getClientRects().length > 0)
  .map((element) => element.getBoundingClientRect().bottom))"""


async def estimate_known(user: Any, token: str) -> dict[str, Any]:
    """Wait until the server has the ticket's estimate (computed just after issue), following the
    ticket's view as its page does."""
    ws = await user.http.ws_connect("/api/ws")
    await ws.send_json({"id": 1, "type": "subscribe", "view": "ticket", "token": token})
    try:
        while True:
            view = (await receive(ws, "view"))["data"]
            if view["estimate"] is not None:
                return view["estimate"]
    finally:
        await ws.close()


async def test_with_nobody_ahead_and_no_counter_open_the_kiosk_does_not_promise_a_call(
        open_page: OpenPage, web_user: MakeUser) -> None:
    page = await open_kiosk(open_page)
    await page.click("button.procedure[data-procedure=pickup]")
    await expect(page.locator("#ticket-number")).to_have_text("300")
    status_url = await page.locator("#ticket-qr").get_attribute("data-status-url")
    estimate = await estimate_known(web_user(), status_url.rsplit("/", 1)[1])
    assert estimate["median_minutes"] is None, estimate  # no counter serves pickup now
    await expect(page.locator("#ticket-ahead")).to_have_text(text("ja", "common.ahead_zero"))
    await expect(page.locator("#ticket-estimate")).to_have_text(text("ja", "common.no_counter_open"))


async def test_with_nobody_ahead_and_a_counter_free_the_status_page_says_it_once(
        open_page: OpenPage, web_user: MakeUser) -> None:
    staff = web_user()
    await staff.sign_in("staff")
    assert (await staff.counter("2", "open"))[0] == 200
    visitor = web_user()
    issued = await visitor.issue("pickup")
    estimate = await estimate_known(visitor, issued["token"])
    assert estimate["median_minutes"] is not None and estimate["median_minutes"] < 1, estimate
    page = await open_page(f"/status/{issued['token']}", viewport=PHONE)
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    await expect(page.locator("#ahead")).to_have_text(text("ja", "common.ahead_none"))
    await expect(page.locator("#estimate")).to_be_hidden()


class TestLandscape:
    """The demo office: five procedures with descriptions, seven languages."""

    @pytest.fixture
    def server_config(self) -> Config:
        demo = load_config(DEMO)
        return dataclasses.replace(demo, server=dataclasses.replace(demo.server, always_open=True))

    @pytest.mark.parametrize(("viewport", "lang"),
                             [(LANDSCAPE, "ja"), (LANDSCAPE, "vi"), (LANDSCAPE, "pt"), (PORTRAIT, "ja"), (PORTRAIT, "pt")],
                             ids=["landscape", "landscape-vi", "landscape-pt", "portrait", "portrait-pt"])
    async def test_the_kiosk_fits_its_screen_without_scrolling(
            self, open_page: OpenPage, web_user: MakeUser, viewport: tuple[int, int], lang: str) -> None:
        staff = web_user()
        await staff.sign_in("staff")
        for counter in ("1", "2", "3", "4", "5"):
            assert (await staff.counter(counter, "open", office="honcho"))[0] == 200
        visitor = web_user()
        for _ in range(6):
            await visitor.issue("pickup", office="honcho")
        page = await open_kiosk(open_page, f"/kiosk/honcho?lang={lang}", viewport=viewport)
        # Every button with its estimate, as on a working day.
        await expect(page.locator("button.procedure[data-procedure=pickup] .procedure-meta")).to_contain_text(
            text(lang, "kiosk.estimate_short", minutes="@").split("@")[0].strip())
        assert await page.evaluate(LOWEST_EDGE) <= viewport[1], "the start screen runs off the screen"
        assert await page.locator("button.procedure").evaluate_all(
            "(buttons) => buttons.every((b) => b.scrollHeight <= b.clientHeight)"), "a button's text overflows it"
        await page.click("button.procedure[data-procedure=pickup]")
        await expect(page.locator("#ticket-qr")).to_have_js_property("complete", True)
        assert await page.evaluate(LOWEST_EDGE) <= viewport[1], "the ticket screen runs off the screen"
