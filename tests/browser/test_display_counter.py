"""The lobby display and the counter panel in a real Chromium, on the real server and Valkey.

A ticket reaches the counter panel; calling it there puts it on the display, which fetches and
plays its announcement; a double press calls one ticket; a lost answer is resent with the same
Idempotency-Key; both pages come back by themselves, showing the truth, after a server restart.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from queue_server.config import Config
from queue_server.web.app import init_app

from ..conftest import PASSWORD, Api
from ..waiting import PATIENCE_MS
from .conftest import SHUTDOWN_SECONDS, LiveServer, MakeUser, OpenPage, save_screenshot, start_server

pytestmark = pytest.mark.browser

DISPLAY = (1920, 1080)
PANEL = (1366, 900)
RECOVERY_MS = 10_000 + PATIENCE_MS
"""How long a page may take to come back after the server does: live.js backs off up to 10 s."""

CLIP = re.compile(r"/api/audio/[0-9a-f]{32}\.wav$")


async def press(page: Any, key: str) -> None:
    """Press a panel shortcut as a person would: once its button is live (not while a press is in flight)."""
    await expect(page.locator(f"button[data-key='{key}']")).to_be_enabled()
    await page.keyboard.press(key)


async def open_display(open_page: OpenPage) -> Any:
    """The lobby display at its native size, once its first snapshot is on screen."""
    page = await open_page("/display/main", viewport=DISPLAY)
    await expect(page.locator("body")).to_have_attribute("data-live", "ready")
    return page


async def open_panel(open_page: OpenPage, counter: str = "2", username: str = "staff") -> Any:
    """The counter panel signed in through its form, following ``counter``, with the counter open."""
    page = await open_page(f"/counter/main?counter={counter}", viewport=PANEL)
    await page.fill("#sign-in-form [name=username]", username)
    await page.fill("#sign-in-form [name=password]", PASSWORD)
    await page.click("#sign-in-form button[type=submit]")
    await expect(page.locator("body")).to_have_attribute("data-live", "ready")
    if await page.locator("#counter-status").text_content() != "受付中":
        await press(page, "o")  # the shortcut shown on the open/close button
        await expect(page.locator("#counter-status")).to_have_text("受付中")
    return page


@pytest.mark.screenshots
async def test_a_ticket_called_at_the_panel_is_shown_and_announced_on_the_display(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    display = await open_display(open_page)
    panel = await open_panel(open_page)
    visitor = web_user()

    first = (await visitor.issue("pickup"))["ticket"]["number"]
    second = (await visitor.issue("pickup", lang="en"))["ticket"]["number"]
    await visitor.issue("application")
    await expect(panel.locator(f"#waiting tr[data-number='{first}']")).to_be_visible()
    await expect(panel.locator("#waiting tr")).to_have_count(2)  # counter 2 serves pickup only

    announced = f"/api/offices/main/announcement?calls={first}:2"
    async with display.expect_request(lambda r: announced in r.url) as announcement, \
            display.expect_request(lambda r: r.url.endswith("/api/audio/chime.wav")) as chime, \
            display.expect_request(lambda r: bool(CLIP.search(r.url))) as voice:
        await panel.click("[data-action='call-next']")
        card = display.locator(f".call-card[data-number='{first}'][data-counter='2']")
        await expect(card).to_be_visible()
        await expect(card).to_have_class(re.compile(r"\bnewest\b"))
    answer = await (await announcement.value).response()
    assert answer is not None and answer.ok
    clips = (await answer.json())["audio"]
    assert [clip["kind"] for clip in clips] == ["chime", "speech"]
    assert (await voice.value).url.endswith(clips[1]["url"])
    assert (await chime.value).url.endswith(clips[0]["url"])

    await expect(panel.locator("#current-number")).to_have_text(first)
    await expect(panel.locator("#current-state")).to_have_text("呼出中")
    await expect(panel.locator("#waiting tr")).to_have_count(1)

    # Start serving: the elapsed time ticks without any event arriving.
    await press(panel, "s")
    await expect(panel.locator("#current-state")).to_have_text("対応中")
    # Any time but 0:00: a stalled machine may first look when more than 9 s have passed.
    await expect(panel.locator("#current-elapsed")).to_have_text(re.compile(r"対応 (?!0:00)\d+:\d\d"))

    # Screenshots for the README, with a notice line and calls at several counters.
    boss = web_user()
    await boss.sign_in("boss")
    status, _ = await boss.put("/api/offices/main/notice",
                               {"text": "交付通知書（はがき）と本人確認書類をお手元にご用意ください。12時〜13時は窓口が少なくなります。"})
    assert status == 200
    for counter in ("1", "3"):
        assert (await boss.counter(counter, "open"))[0] == 200
        assert (await boss.counter(counter, "call-next"))[0] == 200
    await expect(display.locator(".call-card:not(.serving)")).to_have_count(2)  # 1 and 3 called; 2 is serving
    await expect(display.locator("#notice")).to_be_visible()
    await expect(panel.locator("#counters tr[data-counter='1']")).to_contain_text(f"{second} 呼出中")
    later = [(await visitor.issue(p))["ticket"]["number"] for p in ("pickup", "pickup", "application", "pickup")]
    await expect(panel.locator("#waiting tr")).to_have_count(3)
    await expect(display.locator("#waiting tr[data-procedure='pickup'] .waiting-count")).to_have_text("3 人")
    await expect(panel.locator("#waiting tr").first).to_have_attribute("data-number", later[0])
    await save_screenshot(display, "display")
    await save_screenshot(panel, "counter-panel")


async def test_a_double_click_on_call_next_calls_exactly_one_ticket(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    panel = await open_panel(open_page)
    visitor = web_user()
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(3)]
    await expect(panel.locator("#waiting tr")).to_have_count(3)

    presses: list[str] = []
    panel.on("request", lambda r: presses.append(r.url) if r.url.endswith("/call-next") else None)
    await panel.dblclick("[data-action='call-next']")
    await panel.keyboard.press("n")  # and the shortcut, while the first press may still be in flight
    await expect(panel.locator("#current-number")).to_have_text(numbers[0])

    staff = web_user()
    await staff.sign_in("staff")
    status, state = await staff.get("/api/offices/main/state")  # the staff view lists the waiting
    assert status == 200
    assert [t["number"] for t in state["active"]] == [numbers[0]]
    assert [t["number"] for t in state["waiting"]] == numbers[1:]
    assert len(presses) == 1, presses
    await expect(panel.locator("#message")).not_to_have_attribute("data-kind", "error")


async def test_a_press_whose_answer_is_lost_is_resent_with_the_same_key_and_applied_once(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    panel = await open_panel(open_page)
    visitor = web_user()
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(2)]
    await expect(panel.locator("#waiting tr")).to_have_count(2)

    keys: list[str] = []

    async def lose_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            await route.fetch()      # the server gets the press and applies it…
            await route.abort()      # …but its answer never reaches the browser
        else:
            await route.continue_()

    await panel.route("**/counters/2/call-next", lose_first_answer)
    await panel.click("[data-action='call-next']")
    await expect(panel.locator("#current-number")).to_have_text(numbers[0])
    await expect(panel.locator("#message")).to_contain_text(f"{numbers[0]} 番を呼び出しました")

    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) >= 16
    staff = web_user()
    await staff.sign_in("staff")
    status, state = await staff.get("/api/offices/main/state")  # the staff view lists the waiting
    assert [t["number"] for t in state["active"]] == [numbers[0]]
    assert [t["number"] for t in state["waiting"]] == numbers[1:]


async def test_an_error_from_the_api_is_shown_in_japanese(live_server: LiveServer, open_page: OpenPage) -> None:
    panel = await open_panel(open_page)
    await panel.fill("#call-number", "999")
    await panel.press("#call-number", "Enter")
    await expect(panel.locator("#message")).to_have_text("見つかりません。")
    await expect(panel.locator("#message")).to_have_attribute("data-kind", "error")


async def test_a_hand_over_with_a_reason_reaches_the_city_staffs_review_queue(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    panel = await open_panel(open_page)
    number = (await web_user().issue("pickup"))["ticket"]["number"]
    await expect(panel.locator(f"#waiting tr[data-number='{number}']")).to_be_visible()
    await press(panel, "n")
    await expect(panel.locator("#current-number")).to_have_text(number)
    await expect(panel.locator("#review")).to_be_hidden()  # contractor staff have no review queue

    await press(panel, "h")
    dialog = panel.locator("#hand-over-dialog")
    await expect(dialog).to_be_visible()
    await expect(panel.locator("#hand-over-to")).to_have_value("review")  # city staff, by default
    await panel.fill("#hand-over-reason", "暗証番号の再設定が必要")
    await dialog.locator("button[type=submit]").click()
    await expect(panel.locator("#current-none")).to_be_visible()
    await expect(panel.locator("#message")).to_contain_text(f"{number} 番を「市職員対応」に引き継ぎました")

    # City staff sign in, choose their counter from the ones they may staff, and see the case.
    city = await open_page("/counter/main", viewport=PANEL)
    await city.fill("#sign-in-form [name=username]", "city")
    await city.fill("#sign-in-form [name=password]", PASSWORD)
    await city.click("#sign-in-form button[type=submit]")
    choices = city.locator("#counter-choices button")
    await expect(choices).to_have_count(1)
    await choices.first.click()
    row = city.locator(f"#review-list tr[data-number='{number}']")
    await expect(row).to_contain_text("カード交付")
    await expect(row).to_contain_text("暗証番号の再設定が必要")
    await expect(city.locator(f"#waiting tr[data-number='{number}']")).to_contain_text("暗証番号の再設定が必要")
    await press(city, "o")
    await expect(city.locator("#counter-status")).to_have_text("受付中")
    await press(city, "n")
    await expect(city.locator("#current-number")).to_have_text(number)
    await expect(city.locator("#current-handover")).to_contain_text("暗証番号の再設定が必要")
    await expect(city.locator("#review-list tr")).to_have_count(0)


async def test_display_and_panel_recover_by_themselves_after_a_server_restart(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser, config: Config, valkey_url: str,
        key_prefix: str, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> None:
    display = await open_display(open_page)
    panel = await open_panel(open_page)
    visitor = web_user()
    before = (await visitor.issue("pickup"))["ticket"]["number"]
    await expect(panel.locator(f"#waiting tr[data-number='{before}']")).to_be_visible()
    for page in (display, panel):
        await page.evaluate("window.sameDocument = true")

    port = live_server.server.port
    await live_server.server.close()
    await expect(display.locator("#offline-sign")).to_be_visible()
    await expect(panel.locator("#offline-sign")).to_be_visible()

    # While this server is down, the office goes on through another one on the same Valkey.
    other = await start_server(aiohttp_server, config, valkey_url, key_prefix)
    async with ClientSession(base_url=other.url("/"), cookie_jar=CookieJar(unsafe=True)) as session:
        api = Api(session)
        await api.sign_in("staff")
        during = (await api.issue("pickup"))["ticket"]["number"]
        status, body = await api.counter("2", "call-next")
        assert status == 200 and body["ticket"]["number"] == before
    await other.server.close()

    # The restarted server: a new process would build exactly this app, on the same port. The call
    # made during the outage is shown, and announced too: it is newer than any the display had seen.
    missed = f"/api/offices/main/announcement?calls={before}:2"
    async with display.expect_request(lambda r: missed in r.url, timeout=RECOVERY_MS):
        await aiohttp_server(init_app(config, redis_url=valkey_url, key_prefix=key_prefix), port=port,
                             shutdown_timeout=SHUTDOWN_SECONDS)
        card = display.locator(f".call-card[data-number='{before}'][data-counter='2']")
        await expect(card).to_be_visible(timeout=RECOVERY_MS)
    await expect(display.locator("#offline-sign")).to_be_hidden()
    await expect(panel.locator("#current-number")).to_have_text(before, timeout=RECOVERY_MS)
    await expect(panel.locator(f"#waiting tr[data-number='{during}']")).to_be_visible()
    await expect(panel.locator("#offline-sign")).to_be_hidden()
    for page in (display, panel):
        assert await page.evaluate("window.sameDocument") is True, "the page was reloaded"

    # And the pages act on the new server: the panel's session lives in Valkey, not in the process.
    async with display.expect_request(lambda r: f"calls={during}:2" in r.url):
        await press(panel, "s")
        await expect(panel.locator("#current-state")).to_have_text("対応中")
        await press(panel, "f")
        await expect(panel.locator("#current-none")).to_be_visible()
        await expect(panel.locator("[data-action='call-next']")).to_be_enabled()
        await press(panel, "n")
        await expect(display.locator(f".call-card[data-number='{during}']")).to_be_visible()

