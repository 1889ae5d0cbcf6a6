"""Visitor-facing text on the demo office in a real Chromium: procedure names in every language,
natural Korean particles, readings (ruby) for やさしい日本語 and Japanese lines broken by phrase."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from playwright.async_api import expect

from queue_server.cli import demo_config_path
from queue_server.config import TRANSLATED_LANGUAGES, Config, load_config

from ..test_korean import CASES
from .conftest import MakeUser, OpenPage
from .test_kiosk import PORTRAIT, open_kiosk

pytestmark = pytest.mark.browser

PHONE = (390, 844)
OFFICE = "honcho"


@pytest.fixture
def server_config() -> Config:
    """The demo configuration, open whatever the hour (as ``./dev run``)."""
    demo = load_config(demo_config_path())
    return dataclasses.replace(demo, server=dataclasses.replace(demo.server, always_open=True))


async def open_status(open_page: OpenPage, token: str) -> Any:
    page = await open_page(f"/status/{token}", viewport=PHONE)
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    return page


# --- procedure names in the visitor's language (item 13) ----------------------------------------


@pytest.mark.parametrize("lang", TRANSLATED_LANGUAGES)
async def test_the_kiosk_status_and_congestion_pages_name_procedures_in_the_visitors_language(
        open_page: OpenPage, web_user: MakeUser, server_config: Config, lang: str) -> None:
    pickup = server_config.offices[OFFICE].procedures["pickup"]
    kiosk = await open_kiosk(open_page, f"/kiosk/{OFFICE}?lang={lang}", viewport=PORTRAIT)
    button = kiosk.locator("button.procedure[data-procedure=pickup]")
    await expect(button.locator(".procedure-name")).to_have_text(pickup.names[lang])
    await expect(button.locator(".procedure-description")).to_have_text(pickup.descriptions[lang])

    ticket = await web_user().issue("pickup", office=OFFICE, lang=lang)
    status = await open_status(open_page, ticket["token"])
    await expect(status.locator("#procedure")).to_have_text(pickup.names[lang])

    congestion = await open_page(f"/congestion/{OFFICE}?lang={lang}")
    await expect(congestion.locator("tr[data-procedure=pickup] .procedure-name")).to_have_text(pickup.names[lang])


# --- Korean particles (item 20) ------------------------------------------------------------------


async def test_the_korean_phone_says_which_counter_with_the_right_particle(open_page: OpenPage,
                                                                           web_user: MakeUser) -> None:
    ticket = await web_user().issue("pickup", office=OFFICE, lang="ko")
    page = await open_status(open_page, ticket["token"])
    staff = web_user()
    await staff.sign_in("staff")
    assert (await staff.counter("3", "open", office=OFFICE))[0] == 200
    assert (await staff.counter("3", "call-next", office=OFFICE))[0] == 200
    await expect(page.locator("#alert-body")).to_have_text("3번 창구로 와 주십시오")


async def test_the_pages_choose_korean_particles_as_the_server_does(open_page: OpenPage) -> None:
    page = await open_page(f"/congestion/{OFFICE}")
    texts = [text for text, _ in CASES]
    shown = await page.evaluate(
        "async (texts) => { const m = await import('/static/common/page.js');"
        " return texts.map((t) => m.resolveKoreanParticles(t)); }", texts)
    assert shown == [expected for _, expected in CASES]
