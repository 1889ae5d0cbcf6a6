"""The counter panel as staff use it from the keyboard: after a call by number the shortcuts act
again, a refused action says why in Japanese, and a handed-over ticket can be called from
引き継ぎ待ち."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from .conftest import MakeUser, OpenPage
from .test_display_counter import open_panel, press
from .test_kiosk import text

pytestmark = pytest.mark.browser


async def test_after_calling_by_number_the_shortcuts_act_on_the_ticket(
        open_page: OpenPage, web_user: MakeUser) -> None:
    panel = await open_panel(open_page)
    visitor = web_user()
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(2)]
    await expect(panel.locator("#waiting tr")).to_have_count(2)
    await panel.keyboard.press("c")
    await expect(panel.locator("#call-number")).to_be_focused()
    await panel.keyboard.type(numbers[1])
    await panel.keyboard.press("Enter")
    await expect(panel.locator("#current-number")).to_have_text(numbers[1])
    await expect(panel.locator("#call-number")).not_to_be_focused()
    await press(panel, "s")
    await expect(panel.locator("#current-state")).to_have_text("対応中")
    await expect(panel.locator("#call-number")).to_have_value("")  # nothing typed into it
    await press(panel, "f")
    await expect(panel.locator("#current-none")).to_be_visible()


async def test_a_refused_action_says_why_in_japanese(open_page: OpenPage, web_user: MakeUser) -> None:
    panel = await open_panel(open_page)
    visitor = web_user()
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(2)]
    await expect(panel.locator("#waiting tr")).to_have_count(2)
    await press(panel, "n")
    await expect(panel.locator("#current-number")).to_have_text(numbers[0])
    message = panel.locator("#message")
    await expect(message).to_have_attribute("aria-live", "assertive")

    # No-show before max_recalls (2) recalls: refused, and the panel says so.
    await expect(panel.locator("button[data-key='x']")).to_be_disabled()
    await panel.keyboard.press("x")
    await expect(message).to_have_text(text("ja", "error.not_recalled_enough.message"))
    await expect(message).to_have_attribute("data-kind", "error")

    # Calling another number while this counter still has one.
    await panel.fill("#call-number", numbers[1])
    await panel.press("#call-number", "Enter")
    await expect(message).to_have_text(text("ja", "error.counter_busy.message"))
    await expect(panel.locator("#current-number")).to_have_text(numbers[0])


async def hand_over_a_pickup(web_user: MakeUser) -> str:
    """A visitor's pickup ticket, called at counter 2 and handed over to the city staff's review queue."""
    staff = web_user()
    await staff.sign_in("staff")
    number: str = (await web_user().issue("pickup"))["ticket"]["number"]
    assert (await staff.counter("2", "open"))[0] == 200
    assert (await staff.counter("2", "call-next"))[0] == 200
    status, body = await staff.counter("2", "hand-over", {"to": "review", "reason": "暗証番号の確認"})
    assert status == 200, body
    return number


async def test_a_handed_over_ticket_is_called_from_the_review_list(
        open_page: OpenPage, web_user: MakeUser) -> None:
    number = await hand_over_a_pickup(web_user)

    city = await open_panel(open_page, counter="9", username="city")
    row = city.locator(f"#review-list tr[data-number='{number}']")
    call = row.get_by_role("button", name=text("ja", "counter.call_number_aria", number=number))
    await expect(call).to_be_enabled()
    await call.click()
    await expect(city.locator("#current-number")).to_have_text(number)
    await expect(city.locator("#message")).to_have_text(text("ja", "counter.done_called", number=number))
    await expect(city.locator("#review-list tr")).to_have_count(0)


async def test_the_review_list_puts_a_handed_over_visitor_first_as_call_next_will(
        open_page: OpenPage, web_user: MakeUser) -> None:
    city_api = web_user()
    await city_api.sign_in("city")
    older = (await city_api.issue("review"))["ticket"]["number"]  # straight into the queue, earlier
    number = await hand_over_a_pickup(web_user)

    city = await open_panel(open_page, counter="9", username="city")
    rows = city.locator("#review-list tr")
    await expect(rows).to_have_count(2)
    # Listed in the order call-next takes them (domain/policy.py): the visitor who already waited once first.
    await expect(rows.nth(0)).to_have_attribute("data-number", number)
    await expect(rows.nth(1)).to_have_attribute("data-number", older)
    status, called = await city_api.counter("9", "call-next")
    assert status == 200 and called["ticket"]["number"] == number, called


async def test_a_hand_over_from_the_panel_records_its_reason_category_for_the_monthly_report(
        open_page: OpenPage, web_user: MakeUser, valkey_url: str, key_prefix: str) -> None:
    from redis.asyncio import Redis

    from queue_server.store.archive import Archive

    panel = await open_panel(open_page)
    number = (await web_user().issue("pickup"))["ticket"]["number"]
    await expect(panel.locator("#waiting tr")).to_have_count(1)
    await press(panel, "n")
    await expect(panel.locator("#current-number")).to_have_text(number)
    await press(panel, "h")
    dialog = panel.locator("#hand-over-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#hand-over-category option")).to_have_count(5)  # none + the four configured
    await dialog.locator("#hand-over-category").select_option(label="暗証番号")
    await dialog.locator("#hand-over-reason").fill("田中様 電話あり")
    await dialog.locator("button[type=submit]").click()
    await expect(panel.locator("#current-none")).to_be_visible()

    # Served at the city-staff counter: the finished visit's archive record names the category only.
    city = web_user()
    await city.sign_in("city")
    for action in ("open", "call-next", "start", "finish"):
        assert (await city.counter("9", action))[0] == 200
    redis = Redis.from_url(valkey_url)
    try:
        archive = Archive(redis, key_prefix)
        (month,) = await archive.months("main")
        (record,) = [r async for r in archive.records(["main"], [month])]
    finally:
        await redis.aclose()
    assert record["handovers"][0]["category"] == "pin" and "田中" not in str(record)
