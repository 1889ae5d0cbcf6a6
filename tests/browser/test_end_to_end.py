"""One visit through all the pages: kiosk → counter panel → lobby display and the visitor's phone."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from .conftest import LiveServer, OpenPage
from .test_display_counter import CLIP, open_display, open_panel
from .test_kiosk import open_kiosk, text

pytestmark = pytest.mark.browser


async def test_a_kiosk_ticket_is_called_from_the_panel_shown_announced_and_followed_on_the_phone(
        live_server: LiveServer, open_page: OpenPage) -> None:
    display = await open_display(open_page)
    panel = await open_panel(open_page, counter="2")

    kiosk = await open_kiosk(open_page)
    await kiosk.click("button.procedure[data-procedure=pickup]")
    number_box = kiosk.locator("#ticket-number")
    await expect(number_box).to_have_text("300")
    status_url = await kiosk.locator("#ticket-qr").get_attribute("data-status-url")
    assert status_url is not None
    phone = await open_page(status_url, viewport=(390, 844))
    await expect(phone.locator("#state")).to_have_text(text("ja", "status.state_waiting"))

    # The ticket taken at the kiosk is on the counter panel's waiting list.
    await expect(panel.locator("#waiting tr[data-number='300']")).to_be_visible()

    announced = "/api/offices/main/announcement?calls=300:2"
    async with display.expect_request(lambda r: announced in r.url), \
            display.expect_request(lambda r: bool(CLIP.search(r.url))):
        await panel.click("[data-action='call-next']")
        await expect(display.locator(".call-card[data-number='300'][data-counter='2']").first).to_be_visible()

    await expect(phone.locator("#state")).to_have_text(text("ja", "status.state_called"))
    await expect(phone.locator("#alert-body")).to_contain_text("2")
