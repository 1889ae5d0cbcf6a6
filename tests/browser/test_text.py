"""Visitor-facing text on the demo office in a real Chromium: procedure names in every language,
natural Korean particles, readings (ruby) for やさしい日本語 and Japanese lines broken by phrase."""

from __future__ import annotations

import dataclasses
from typing import Any

import budoux
import pytest
from playwright.async_api import expect

from queue_server.config import TRANSLATED_LANGUAGES, Config
from queue_server.web.pages import load_catalogs

from ..test_korean import CASES
from .conftest import MakeUser, OpenPage, demo_office_without_back_office
from .test_kiosk import PORTRAIT, open_kiosk

pytestmark = pytest.mark.browser

PHONE = (390, 844)
OFFICE = "honcho"
CATALOGS = load_catalogs()


@pytest.fixture
def server_config() -> Config:
    """The demo configuration, open whatever the hour (as ``./dev run``), pickups callable at once."""
    return demo_office_without_back_office()


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


# --- Japanese lines break between phrases (item 15) ---------------------------------------------

# At a width, the index in the element's text (readings left out) of each character that starts a
# new line. Set and measured in one step: the kiosk re-renders its buttons on every live update.
LINE_STARTS_JS = """(element, width) => {
  if (!element.isConnected) return null;   // replaced by a re-render since the locator found it
  element.style.display = "block";
  element.style.width = `${width}px`;
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  const starts = [];
  let offset = 0, lastTop = null;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("rt")) continue;
    for (let i = 0; i < node.length; i++, offset++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rects = [...range.getClientRects()].filter((r) => r.width > 0);
      if (!rects.length) continue;   // a collapsed space at the end of a line
      const top = rects[0].top;
      if (lastTop !== null && top > lastTop + 4) starts.push(offset);
      lastTop = top;
    }
  }
  return starts;
}"""


def phrase_starts(text: str) -> set[int]:
    """Where a line may start for a reader: a BudouX phrase, after a space or a punctuation mark
    (、。・ and closing brackets), before an opening bracket."""
    starts, offset = set(), 0
    for phrase in budoux.load_default_japanese_parser().parse(text):
        starts.add(offset)
        offset += len(phrase)
    return (starts | {i + 1 for i, c in enumerate(text) if c.isspace() or c in "、。・，）」』】！？"}
            | {i for i, c in enumerate(text) if c in "（「『【"})


async def assert_breaks_between_phrases(page: Any, selector: str, text: str, widths: range) -> None:
    """At each width, every line of ``selector`` (showing ``text``) starts at a phrase."""
    element = page.locator(selector)
    await expect(element).to_have_text(text)
    allowed = phrase_starts(text)
    broken = {}
    for width in widths:
        starts = None
        for _ in range(20):  # the kiosk re-renders its buttons on live updates: measure a current one
            if (starts := await element.evaluate(LINE_STARTS_JS, width)) is not None:
                break
        assert starts, f"{selector} fits one line at {width}px: choose narrower widths"
        if inside := [f"{text[:s]}／{text[s:]}" for s in starts if s not in allowed]:
            broken[width] = inside
    assert not broken, f"lines broken inside a phrase: {broken}"


async def test_the_phones_status_texts_break_between_phrases(open_page: OpenPage, web_user: MakeUser) -> None:
    ticket = await web_user().issue("pickup", office=OFFICE)
    page = await open_status(open_page, ticket["token"])
    await expect(page.locator("#alerts-control")).to_be_visible()
    await assert_breaks_between_phrases(page, ".keep-open", CATALOGS["ja"]["status.keep_open"], range(150, 330, 9))


async def test_the_kiosk_buttons_and_the_congestion_intro_break_between_phrases(open_page: OpenPage,
                                                                              server_config: Config) -> None:
    kiosk = await open_kiosk(open_page, f"/kiosk/{OFFICE}", viewport=PORTRAIT)
    description = server_config.offices[OFFICE].procedures["ecert"].description
    await assert_breaks_between_phrases(kiosk, "button[data-procedure=ecert] .procedure-description", description,
                                        range(200, 440, 12))
    congestion = await open_page(f"/congestion/{OFFICE}", viewport=PHONE)
    await assert_breaks_between_phrases(congestion, ".intro", CATALOGS["ja"]["congestion.intro"], range(150, 330, 9))


# --- readings (ruby) in やさしい日本語 (item 14) ----------------------------------------------------

RUBIES_JS = """(element) => [...element.querySelectorAll("ruby")].map((ruby) => [
  [...ruby.childNodes].filter((n) => n.nodeName !== "RT").map((n) => n.textContent).join(""),
  ruby.querySelector("rt").textContent])"""


async def rubies(locator: Any) -> list[tuple[str, str]]:
    """The (kanji, reading) pairs shown in an element, in order."""
    return [tuple(pair) for pair in await locator.evaluate(RUBIES_JS)]


async def test_easy_japanese_pages_show_readings_over_kanji(open_page: OpenPage, web_user: MakeUser) -> None:
    kiosk = await open_kiosk(open_page, f"/kiosk/{OFFICE}?lang=ja-easy", viewport=PORTRAIT)
    pickup = kiosk.locator("button.procedure[data-procedure=pickup]")
    assert await rubies(pickup.locator(".procedure-name")) == [("交付", "こうふ")]
    assert ("届", "とど") in await rubies(pickup.locator(".procedure-description"))
    assert ("人", "にん") in await rubies(pickup.locator(".procedure-meta"))  # 「{n} 人 まって います」 from the script
    # The demo's [readings] corrects Open JTalk's その他 (た) to そのほか, as its description says.
    assert ("他", "ほか") in await rubies(kiosk.locator("button.procedure[data-procedure=other] .procedure-name"))

    ticket = await web_user().issue("pickup", office=OFFICE, lang="ja-easy")
    status = await open_status(open_page, ticket["token"])
    assert await rubies(status.locator("#procedure")) == [("交付", "こうふ")]
    staff = web_user()
    await staff.sign_in("staff")
    assert (await staff.counter("3", "open", office=OFFICE))[0] == 200
    assert (await staff.counter("3", "call-next", office=OFFICE))[0] == 200
    await expect(status.locator("#alert-body ruby")).not_to_have_count(0)
    # 「{counter}へ きて ください」 with the counter's name and its readings.
    assert await rubies(status.locator("#alert-body")) == [("番", "ばん"), ("窓口", "まどぐち")]

    congestion = await open_page(f"/congestion/{OFFICE}?lang=ja-easy", viewport=PHONE)
    await expect(congestion.locator("tr[data-procedure=pickup] .procedure-name ruby")).to_have_count(1)
    assert ("人", "ひと") in await rubies(congestion.locator("thead"))    # 「まって いる 人」


async def test_japanese_pages_show_no_readings(open_page: OpenPage) -> None:
    kiosk = await open_kiosk(open_page, f"/kiosk/{OFFICE}", viewport=PORTRAIT)
    await expect(kiosk.locator("button.procedure[data-procedure=pickup] .procedure-name")).to_have_text("カード交付")
    await expect(kiosk.locator("ruby")).to_have_count(0)
    await kiosk.click("button.language[data-lang=ja-easy]")   # switching language on the kiosk adds them
    await expect(kiosk.locator("button.procedure[data-procedure=pickup] .procedure-name ruby")).to_have_count(1)


class TestEscaping:
    """A configured name is text, whatever characters it has, with or without readings."""

    NAME = 'カード交付<img src=x onerror="window.pwned=1">'

    @pytest.fixture
    def server_config(self, server_config: Config) -> Config:
        office = server_config.offices[OFFICE]
        pickup = dataclasses.replace(office.procedures["pickup"], name=self.NAME, names={})
        procedures = {**office.procedures, "pickup": pickup}
        return dataclasses.replace(server_config, offices={
            **server_config.offices, OFFICE: dataclasses.replace(office, procedures=procedures)})

    @pytest.mark.parametrize("lang", ["ja", "ja-easy", "en"])
    async def test_a_name_with_markup_is_shown_as_text(self, open_page: OpenPage, lang: str) -> None:
        kiosk = await open_kiosk(open_page, f"/kiosk/{OFFICE}?lang={lang}", viewport=PORTRAIT)
        name = kiosk.locator("button.procedure[data-procedure=pickup] .procedure-name")
        shown = await name.evaluate("(el) => { const c = el.cloneNode(true);"
                                    " c.querySelectorAll('rt').forEach((rt) => rt.remove()); return c.textContent; }")
        assert shown == self.NAME
        await expect(name.locator("img")).to_have_count(0)
        assert await kiosk.evaluate("() => window.pwned") is None


async def test_the_lobby_display_marks_its_japanese_by_phrase(open_page: OpenPage) -> None:
    page = await open_page(f"/display/{OFFICE}", viewport=(1920, 1080))
    review = page.locator("tr[data-procedure=review] .waiting-name")
    await expect(review).to_have_text("市職員対応（審査・暗証番号）")
    assert await review.evaluate("(el) => el.querySelector('.phrases').innerHTML") \
        == "市職員対応<wbr>（審査・暗証番号）"
    style = await review.locator(".phrases").evaluate("(el) => getComputedStyle(el).wordBreak")
    assert style == "keep-all"
    await expect(page.locator("#calls-empty .phrases wbr")).not_to_have_count(0)   # 「お呼び出しまで、／しばらく…」
