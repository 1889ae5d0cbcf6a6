"""The visitor's status page and the public congestion page in a real Chromium against the real server."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from queue_server.config import Config
from queue_server.web.app import init_app

from .conftest import (SHUTDOWN_SECONDS, LiveServer, MakeUser, OpenPage, demo_office_without_back_office,
                       save_screenshot)
from .test_display_counter import RECOVERY_MS
from .test_kiosk import PORTRAIT, LANDSCAPE, open_kiosk, text

pytestmark = pytest.mark.browser

PHONE = (390, 844)


async def open_status(open_page: OpenPage, token: str, query: str = "") -> Any:
    """A visitor's phone showing the status page of ``token``."""
    page = await open_page(f"/status/{token}{query}", viewport=PHONE)
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    return page


async def open_counters(web_user: MakeUser, *counters: str, office: str = "honcho") -> Any:
    """Signed-in contractor staff with ``counters`` open."""
    staff = web_user()
    await staff.sign_in("staff")
    for counter in counters:
        status, body = await staff.counter(counter, "open", office=office)
        assert status == 200, body
    return staff


# --- the status page -------------------------------------------------------------------------


async def test_the_estimate_is_shown_once_the_server_has_one(open_page: OpenPage, web_user: MakeUser) -> None:
    visitor = web_user()
    tickets = [await visitor.issue("pickup") for _ in range(3)]
    page = await open_status(open_page, tickets[2]["token"])
    await expect(page.locator("#ahead")).to_have_text(text("ja", "common.ahead", n=2))
    # No counter open: the estimate line says so, and there is no closing-time warning.
    await expect(page.locator("#estimate")).to_have_text(text("ja", "common.no_counter_open"))
    await expect(page.locator("#past-closing")).to_be_hidden()
    await open_counters(web_user, "2", office="main")
    pattern = re.escape(text("ja", "common.estimate", median="@", low="@", high="@")).replace("@", r"\d+")
    await expect(page.locator("#estimate")).to_have_text(re.compile(pattern))


async def test_the_phone_alerts_when_the_turn_is_near_and_shows_no_other_visitor(
        open_page: OpenPage, web_user: MakeUser) -> None:
    visitor = web_user()
    tickets = [await visitor.issue("pickup") for _ in range(5)]  # 300 … 304
    page = await open_status(open_page, tickets[4]["token"])
    await expect(page.locator("#number")).to_have_text("304")
    await expect(page.locator("#ahead")).to_have_text(text("ja", "common.ahead", n=4))
    await expect(page.locator("#alert")).to_be_hidden()  # 4 ahead: more than near_turn_ahead (3)
    shown = await page.inner_text("body")
    assert not any(number in shown for number in ("300", "301", "302", "303")), "other visitors' numbers shown"

    staff = web_user()
    await staff.sign_in("staff")
    assert (await staff.counter("2", "open"))[0] == 200
    assert (await staff.counter("2", "call-next"))[1]["ticket"]["number"] == "300"
    await expect(page.locator("#ahead")).to_have_text(text("ja", "common.ahead", n=3))
    await expect(page.locator("#alert")).to_be_visible()
    await expect(page.locator("#alert-title")).to_have_text(text("ja", "status.near_title"))
    await expect(page).to_have_title(text("ja", "status.page_title_near", number="304"))
    await expect(page.locator("#calling-list")).to_have_text(text("ja", "status.calling_at", number="300",
                                                                    counter="2番窓口"))


async def test_the_phone_follows_call_service_and_end_in_the_kiosk_language(
        open_page: OpenPage, web_user: MakeUser) -> None:
    issued = await web_user().issue("application", lang="pt")
    page = await open_status(open_page, issued["token"])
    await expect(page.locator("#state")).to_have_text(text("pt", "status.state_waiting"))
    assert await page.get_attribute("html", "lang") == "pt-BR"
    staff = web_user()
    await staff.sign_in("staff")
    assert (await staff.counter("3", "open"))[0] == 200
    assert (await staff.counter("3", "call-next"))[0] == 200
    await expect(page.locator("#alert-body")).to_have_text(text("pt", "status.called_body", counter="Guichê 3"))
    await expect(page).to_have_title(text("pt", "status.page_title_called", number="A001", counter="Guichê 3"))
    assert (await staff.counter("3", "start"))[0] == 200
    await expect(page.locator("#state")).to_have_text(text("pt", "status.state_serving"))
    await expect(page.locator("#alert")).to_be_hidden()
    assert (await staff.counter("3", "finish"))[0] == 200
    await expect(page.locator("#state")).to_have_text(text("pt", "status.state_done"))
    await expect(page.locator("#enable-alerts")).to_be_hidden()


async def test_the_link_may_ask_for_another_language(open_page: OpenPage, web_user: MakeUser) -> None:
    issued = await web_user().issue("pickup")
    page = await open_status(open_page, issued["token"], "?lang=vi")
    await expect(page.locator("#state")).to_have_text(text("vi", "status.state_waiting"))


async def test_an_unknown_ticket_says_so(open_page: OpenPage, web_user: MakeUser) -> None:
    page = await open_page("/status/no-such-ticket-token", viewport=PHONE)
    await expect(page.locator("#not-found")).to_be_visible()
    await expect(page.locator("#not-found")).to_have_text(text("ja", "status.not_found"))
    resp = await web_user().http.get("/status/bad!token")
    assert resp.status == 404


FIRST_CONNECTION_FAILS = """async () => {
  const { LiveConnection } = await import("/static/common/live.js");
  // Nothing listens on port 1: the very first connection fails, before it ever opened.
  return await new Promise((resolve) => {
    new LiveConnection({ url: "ws://127.0.0.1:1/api/ws", onOffline: () => resolve("offline") });
    setTimeout(() => resolve("never said offline in 60 s"), 60_000);  // the sign's grace is 1.5 s
  });
}"""


async def test_a_page_whose_first_connection_fails_says_it_is_offline(open_page: OpenPage, web_user: MakeUser) -> None:
    # The page came (data-ready) but its socket never opened: the server went away between the two,
    # as when a phone opens its link while the server restarts. It must say so, not look live.
    issued = await web_user().issue("pickup")
    page = await open_status(open_page, issued["token"])
    assert await page.evaluate(FIRST_CONNECTION_FAILS) == "offline"


async def test_the_phone_reconnects_after_a_server_restart_and_catches_up(
        open_page: OpenPage, web_user: MakeUser, live_server: LiveServer, config: Config, valkey_url: str,
        key_prefix: str, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> None:
    issued = await web_user().issue("pickup")
    page = await open_status(open_page, issued["token"])
    staff = web_user()
    port = live_server.server.port
    await live_server.server.close()
    await expect(page.locator("#offline-sign")).to_be_visible()

    # The same store behind a new server process on the same address; the call happens while
    # the phone is still disconnected, so only a fresh view after reconnecting can show it.
    restarted = await aiohttp_server(init_app(config, redis_url=valkey_url, key_prefix=key_prefix), port=port,
                                     shutdown_timeout=SHUTDOWN_SECONDS)
    await staff.sign_in("staff")
    assert (await staff.counter("2", "open"))[0] == 200
    assert (await staff.counter("2", "call-next"))[0] == 200
    await expect(page.locator("#alert-body")).to_have_text(text("ja", "status.called_body", counter="2番窓口"),
                                                           timeout=RECOVERY_MS)
    await expect(page.locator("#offline-sign")).to_be_hidden()
    await restarted.close()


# --- the congestion page ---------------------------------------------------------------------


async def test_congestion_shows_waiting_per_procedure_live(open_page: OpenPage, web_user: MakeUser) -> None:
    page = await open_page("/congestion")
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    rows = page.locator("#rows-main tr")
    await expect(rows).to_have_count(2)  # the city-staff queue is not public
    pickup = page.locator("#rows-main tr[data-procedure=pickup]")
    await expect(pickup.locator(".waiting")).to_have_text(text("ja", "congestion.waiting_count", n=0))

    visitor = web_user()
    for _ in range(2):
        await visitor.issue("pickup")
    await expect(pickup.locator(".waiting")).to_have_text(text("ja", "congestion.waiting_count", n=2))

    boss = web_user()
    await boss.sign_in("boss")
    assert (await boss.post("/api/offices/main/procedures/application/pause"))[0] == 200
    application = page.locator("#rows-main tr[data-procedure=application]")
    await expect(application.locator(".estimate")).to_have_text(text("ja", "congestion.paused"))


async def test_congestion_of_one_office_in_english(open_page: OpenPage, web_user: MakeUser) -> None:
    page = await open_page("/congestion/main?lang=en")
    await expect(page.locator("h1")).to_have_text(text("en", "congestion.title"))
    await expect(page.locator("#rows-main tr[data-procedure=pickup] .waiting")).to_have_text(
        text("en", "congestion.waiting_count", n=0))
    await expect(page.locator("#rows-main tr[data-procedure=pickup] .estimate")).to_have_text(
        text("en", "congestion.no_estimate"))
    assert (await web_user().http.get("/congestion/nowhere")).status == 404


# --- screenshots for the README (the demo office) ---------------------------------------------


@pytest.mark.screenshots
class TestScreenshots:
    """The pages as a visitor sees them, on the demo configuration (``./dev screenshots``: for the README)."""

    @pytest.fixture
    def server_config(self) -> Config:
        return demo_office_without_back_office()

    async def test_kiosk_portrait_and_landscape(self, open_page: OpenPage, web_user: MakeUser) -> None:
        await open_counters(web_user, "1", "2", "3", "4", "5")
        visitor = web_user()
        for procedure in ("pickup", "pickup", "pickup", "application", "ecert"):
            await visitor.issue(procedure, office="honcho")
        for waiting, (name, viewport) in enumerate((("portrait", PORTRAIT), ("landscape", LANDSCAPE)), start=3):
            page = await open_kiosk(open_page, "/kiosk/honcho", viewport=viewport)
            pickup = page.locator("button.procedure[data-procedure=pickup] .procedure-meta")
            await expect(pickup).to_contain_text(text("ja", "kiosk.waiting", n=waiting))
            await expect(pickup).to_contain_text("目安")
            await save_screenshot(page, f"kiosk-{name}")
            await page.click("button.procedure[data-procedure=pickup]")
            await expect(page.locator("#ticket-qr")).to_have_js_property("complete", True)
            await expect(page.locator("#ticket-estimate")).to_be_visible()
            await save_screenshot(page, f"kiosk-{name}-ticket")

    async def test_status_page_near_and_called(self, open_page: OpenPage, web_user: MakeUser) -> None:
        staff = await open_counters(web_user, "3", "4")
        visitor = web_user()
        tickets = [await visitor.issue("pickup", office="honcho", lang="ja") for _ in range(5)]
        page = await open_status(open_page, tickets[4]["token"])
        await expect(page.locator("#estimate")).to_be_visible()
        await save_screenshot(page, "status-waiting")
        for counter in ("3", "4"):
            assert (await staff.counter(counter, "call-next", office="honcho"))[0] == 200
        await expect(page.locator("#alert")).to_be_visible()
        await save_screenshot(page, "status-near")
        for counter in ("3", "4"):
            assert (await staff.counter(counter, "start", office="honcho"))[0] == 200
            assert (await staff.counter(counter, "finish", office="honcho"))[0] == 200
        for counter in ("3", "4"):
            assert (await staff.counter(counter, "call-next", office="honcho"))[0] == 200
        assert (await staff.counter("3", "start", office="honcho"))[0] == 200
        assert (await staff.counter("3", "finish", office="honcho"))[0] == 200
        assert (await staff.counter("3", "call-next", office="honcho"))[0] == 200
        await expect(page.locator("#alert-body")).to_have_text(text("ja", "status.called_body", counter="3番窓口"))
        await save_screenshot(page, "status-called")

    async def test_congestion_page(self, open_page: OpenPage, web_user: MakeUser) -> None:
        await open_counters(web_user, "1", "2", "3", "4", "5")
        visitor = web_user()
        for procedure in ("pickup",) * 6 + ("application",) * 3 + ("ecert",):
            await visitor.issue(procedure, office="honcho")
        page = await open_page("/congestion", viewport=(1280, 900))
        await expect(page.locator("#rows-honcho tr[data-procedure=pickup] .waiting")).to_have_text("6 人")
        await save_screenshot(page, "congestion")
        phone = await open_page("/congestion/honcho", viewport=PHONE)
        await expect(phone.locator("#rows-honcho tr[data-procedure=pickup] .waiting")).to_have_text("6 人")
        await save_screenshot(phone, "congestion-phone")
