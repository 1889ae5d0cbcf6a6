"""The ticket kiosk in a real Chromium against the real server: languages, issuing, printing."""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from queue_server.config import Config
from queue_server.domain.hours import OpeningHours
from queue_server.web.pages import load_catalogs
from queue_server.web.views import LANGUAGES
from ticket_kiosk.api import qr_svg
from ticket_kiosk.routes import RETURN_SECONDS

from ..kiosk.test_printer import RecordingPrinter, start, texts
from ..waiting import PATIENCE_MS, PATIENCE_S
from .conftest import LiveServer, MakeUser, OpenPage

pytestmark = pytest.mark.browser

CATALOGS = load_catalogs()
RAW_KEY = re.compile(r"\b(?:common|kiosk|status|congestion|error|display|counter)\.[a-z_]+\b")
PORTRAIT, LANDSCAPE = (1080, 1920), (1920, 1080)
DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.toml"


def text(lang: str, key: str, **params: Any) -> str:
    """The catalog text, as the page shows it."""
    value = CATALOGS[lang][key]
    for name, v in params.items():
        value = value.replace("{" + name + "}", str(v))
    return value


def shown(lang: str, key: str, **params: Any) -> str | re.Pattern[str]:
    """The catalog text as the page's text content: in やさしい日本語 each kanji has its reading (ruby) after it."""
    value = text(lang, key, **params)
    if lang != "ja-easy":
        return value
    return re.compile("^" + re.sub(r"([\u4e00-\u9fff]+)", r"\1[ぁ-ゖー]+", re.escape(value)) + "$")


async def waiting_numbers(user: MakeUser, office: str = "main") -> list[str]:
    """The numbers waiting at an office, from the staff view of the state (the public one only counts)."""
    staff = user()
    await staff.sign_in("staff")
    status, state = await staff.get(f"/api/offices/{office}/state")
    assert status == 200, state
    return [t["number"] for t in state["waiting"]]


async def open_kiosk(open_page: OpenPage, path: str = "/kiosk/main", viewport: tuple[int, int] = PORTRAIT) -> Any:
    """The kiosk with its procedure buttons and live counts in place."""
    page = await open_page(path, viewport=viewport)
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    await expect(page.locator("button.procedure .procedure-meta").first).not_to_be_empty()
    return page


# --- languages --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_each_language_shows_every_text_of_the_kiosk_and_its_ticket(open_page: OpenPage, lang: str) -> None:
    page = await open_kiosk(open_page)
    await page.click(f"button.language[data-lang='{lang}']")
    await expect(page.locator("#start-heading")).to_have_text(text(lang, "kiosk.heading"))
    await expect(page.locator("button.language[aria-pressed=true]")).to_have_attribute("data-lang", lang)
    pickup = page.locator("button.procedure[data-procedure=pickup]")
    await expect(pickup.locator(".procedure-meta")).to_have_text(shown(lang, "kiosk.waiting", n=0))
    start_text = await page.inner_text("body")
    assert not RAW_KEY.findall(start_text), f"raw catalog keys on the {lang} start screen"

    await pickup.click()
    await expect(page.locator("#ticket-number")).to_have_text("300")
    await expect(page.locator("#ticket-label")).to_have_text(text(lang, "kiosk.your_number"))
    await expect(page.locator("#ticket-ahead")).to_have_text(text(lang, "common.ahead_zero"))  # no counter open
    await expect(page.locator("#print-message")).to_have_text(text(lang, "kiosk.no_printer"))
    ticket_text = await page.inner_text("body")
    assert not RAW_KEY.findall(ticket_text), f"raw catalog keys on the {lang} ticket screen"


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_the_start_language_can_be_given_in_the_kiosk_url(open_page: OpenPage, lang: str) -> None:
    page = await open_kiosk(open_page, f"/kiosk/main?lang={lang}")
    await expect(page.locator("#start-heading")).to_have_text(text(lang, "kiosk.heading"))
    assert await page.get_attribute("html", "data-lang") == lang
    assert not RAW_KEY.findall(await page.inner_text("body"))


# --- issuing --------------------------------------------------------------------------------


async def test_a_ticket_shows_number_and_qr_and_its_status_page_follows_the_call(
        open_page: OpenPage, web_user: MakeUser, live_server: LiveServer) -> None:
    page = await open_kiosk(open_page)
    # The city-staff queue is never offered at the kiosk.
    assert await page.locator("button.procedure").evaluate_all("bs => bs.map(b => b.dataset.procedure)") == [
        "application", "pickup"]
    await page.click("button.language[data-lang=en]")
    await page.click("button.procedure[data-procedure=pickup]")
    await expect(page.locator("#ticket-number")).to_have_text("300")
    await expect(page.locator("#ticket-procedure")).to_have_text("カード交付")
    qr = page.locator("#ticket-qr")
    await expect(qr).to_have_js_property("complete", True)
    assert await qr.evaluate("img => img.naturalWidth") > 0
    status_url = await qr.get_attribute("data-status-url")
    assert status_url is not None and status_url.startswith(live_server.url("/status/"))
    svg = await web_user().http.get(await qr.get_attribute("src") or "")
    assert svg.status == 200 and svg.content_type == "image/svg+xml"
    assert await svg.read() == qr_svg(status_url), "the QR code does not hold the ticket's status URL"

    phone = await open_page(status_url, viewport=(390, 844))
    await expect(phone.locator("#number")).to_have_text("300")
    await expect(phone.locator("#state")).to_have_text(text("en", "status.state_waiting"))  # the kiosk's language

    staff = web_user()
    await staff.sign_in("staff")
    assert (await staff.counter("2", "open"))[0] == 200
    status, called = await staff.counter("2", "call-next")
    assert status == 200 and called["ticket"]["number"] == "300"
    await expect(phone.locator("#alert-body")).to_have_text(text("en", "status.called_body", counter="Counter 2"))
    await expect(phone.locator("#state")).to_have_text(text("en", "status.state_called"))
    await expect(phone).to_have_title(text("en", "status.page_title_called", number="300", counter="Counter 2"))


async def test_a_paused_procedure_says_so_and_issues_nothing(open_page: OpenPage, web_user: MakeUser) -> None:
    boss = web_user()
    await boss.sign_in("boss")
    status, body = await boss.post("/api/offices/main/procedures/application/pause")
    assert status == 200, body
    page = await open_kiosk(open_page)
    application = page.locator("button.procedure[data-procedure=application]")
    await expect(application).to_have_attribute("aria-disabled", "true")
    await expect(application.locator(".procedure-meta")).to_have_text(text("ja", "kiosk.paused"))
    await application.click(force=True)  # a touch reaches it: aria-disabled keeps it focusable and named
    # The next touch is handled after the first: once it shows its ticket, the paused one issued nothing.
    await page.click("button.procedure[data-procedure=pickup]")
    await expect(page.locator("#ticket-number")).to_have_text("300")
    assert await waiting_numbers(web_user) == ["300"]


async def test_a_pause_while_the_kiosk_is_open_reaches_its_button(open_page: OpenPage, web_user: MakeUser) -> None:
    page = await open_kiosk(open_page)
    pickup = page.locator("button.procedure[data-procedure=pickup]")
    await expect(pickup).not_to_have_attribute("aria-disabled", "true")
    boss = web_user()
    await boss.sign_in("boss")
    assert (await boss.post("/api/offices/main/procedures/pickup/pause"))[0] == 200
    await expect(pickup.locator(".procedure-meta")).to_have_text(text("ja", "kiosk.paused"))
    assert (await boss.post("/api/offices/main/procedures/pickup/resume"))[0] == 200
    await expect(pickup.locator(".procedure-meta")).to_have_text(text("ja", "kiosk.waiting", n=0))


async def test_a_double_tap_issues_one_ticket_and_the_next_visitor_gets_the_next(
        open_page: OpenPage, web_user: MakeUser) -> None:
    page = await open_kiosk(open_page)
    pickup = page.locator("button.procedure[data-procedure=pickup]")
    # A real double click at the button's centre, once the button is laid out and still (Playwright
    # waits for that; a bounding box read straight away may be None while the start screen renders).
    await pickup.dblclick()
    await expect(page.locator("#ticket-number")).to_have_text("300")
    assert await waiting_numbers(web_user) == ["300"]
    await page.click("#back")
    await pickup.evaluate("button => { button.click(); button.click(); }")  # two taps in one frame
    await expect(page.locator("#ticket-number")).to_have_text("301")
    assert await waiting_numbers(web_user) == ["300", "301"]


async def test_the_kiosk_goes_back_to_the_start_and_to_japanese_by_itself(open_page: OpenPage) -> None:
    page = await open_kiosk(open_page)
    await page.click("button.language[data-lang=ko]")
    await page.click("button.procedure[data-procedure=pickup]")
    await expect(page.locator("#screen-ticket")).to_be_visible()
    await expect(page.locator("#returning")).to_contain_text("초")
    await expect(page.locator("#screen-start")).to_be_visible(timeout=RETURN_SECONDS * 1000 + PATIENCE_MS)
    await expect(page.locator("#start-heading")).to_have_text(text("ja", "kiosk.heading"))


class TestClosedOffice:
    """An office outside its opening hours."""

    @pytest.fixture
    def server_config(self, config: Config) -> Config:
        office = config.offices["main"]
        closed = dataclasses.replace(office, hours=OpeningHours(week=(None,) * 7))
        return dataclasses.replace(config, server=dataclasses.replace(config.server, always_open=False),
                                   offices={"main": closed})

    async def test_every_button_says_closed_and_issues_nothing(self, open_page: OpenPage, web_user: MakeUser) -> None:
        page = await open_page("/kiosk/main", viewport=PORTRAIT)
        await expect(page.locator("#closed-banner")).to_be_visible()
        await expect(page.locator("#hours")).to_have_text(text("ja", "kiosk.no_hours_today"))
        for procedure in ("application", "pickup"):
            button = page.locator(f"button.procedure[data-procedure={procedure}]")
            await expect(button).to_have_attribute("aria-disabled", "true")
            await expect(button.locator(".procedure-meta")).to_have_text(text("ja", "kiosk.closed"))
            await button.click(force=True)
        await expect(page.locator("#screen-start")).to_be_visible()
        assert await waiting_numbers(web_user) == []


# --- printing ---------------------------------------------------------------------------------


@pytest.fixture
async def recorder() -> AsyncIterator[RecordingPrinter]:
    """A raw TCP "printer" on 127.0.0.1 recording what it receives."""
    recorder, server = await start()
    async with server:
        yield recorder


def with_printer(config: Config, **printer: Any) -> Config:
    """``config`` with a [printer] table."""
    return dataclasses.replace(config, printer={"kind": "network", "host": "127.0.0.1", "timeout": PATIENCE_S,
                                                **printer})


class TestPrinter:
    """A network receipt printer on a real socket."""

    @pytest.fixture
    def server_config(self, config: Config, recorder: RecordingPrinter) -> Config:
        return with_printer(config, port=recorder.port)

    async def test_the_print_endpoint_sends_the_ticket_to_the_printer(self, web_user: MakeUser,
                                                                     recorder: RecordingPrinter) -> None:
        visitor = web_user()
        await visitor.issue("pickup")
        issued = await visitor.issue("pickup", lang="en")
        status, body = await visitor.post(f"/api/tickets/{issued['token']}/print")
        assert (status, body) == (200, {"printed": True})
        lines = texts(await recorder.next_job())
        assert lines[:4] == ["テスト市役所 本庁", "受付番号", "301", "カード交付"]
        assert "お待ちの方 1 人" in lines
        assert f"<QR {issued['status_url']}>" in lines
        assert not any(issued["token"] in line for line in lines if not line.startswith("<QR"))

    async def test_a_ticket_is_printed_at_most_twice_and_only_while_waiting(self, web_user: MakeUser,
                                                                          recorder: RecordingPrinter) -> None:
        visitor = web_user()
        issued = await visitor.issue("pickup")
        path = f"/api/tickets/{issued['token']}/print"
        for _ in range(2):
            assert (await visitor.post(path))[0] == 200
            await recorder.next_job()
        status, body = await visitor.post(path)
        assert status == 409 and body["error"]["code"] == "conflict"
        other = await visitor.issue("pickup")
        status, _ = await visitor.post(f"/api/tickets/{other['token']}/cancel")
        assert status == 200
        status, body = await visitor.post(f"/api/tickets/{other['token']}/print")
        assert status == 409 and body["error"]["code"] == "conflict"
        status, body = await visitor.post("/api/tickets/no-such-token-at-all/print")
        assert status == 404 and body["error"]["code"] == "not_found"

    async def test_the_kiosk_prints_each_ticket_on_the_printer(self, open_page: OpenPage,
                                                              recorder: RecordingPrinter) -> None:
        page = await open_kiosk(open_page)
        await page.click("button.procedure[data-procedure=application]")
        await expect(page.locator("#ticket-number")).to_have_text("A001")
        assert "A001" in texts(await recorder.next_job())
        await expect(page.locator("#print-message")).to_have_text(text("ja", "kiosk.printed"))


class TestBrokenPrinter:
    """A network printer that cannot be reached."""

    @pytest.fixture
    def server_config(self, config: Config) -> Config:
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return with_printer(config, port=port)

    async def test_the_endpoint_answers_503_printer_error_with_a_message_for_staff(self, web_user: MakeUser) -> None:
        visitor = web_user()
        issued = await visitor.issue("pickup")
        status, body = await visitor.post(f"/api/tickets/{issued['token']}/print")
        assert status == 503
        assert body["error"]["code"] == "printer_error"
        assert body["error"]["message"].startswith("プリンターに接続できません")

    async def test_the_kiosk_says_so_and_falls_back_to_the_browser_print_layout(self, open_page: OpenPage,
                                                                               live_server: LiveServer) -> None:
        page = await open_page("/kiosk/main", viewport=PORTRAIT, wait=False)
        # Chromium's print dialog cannot be driven; record that the kiosk asked for it.
        await page.add_init_script("window.print = () => { document.body.dataset.browserPrinted = 'yes'; };")
        await page.goto(live_server.url("/kiosk/main"))
        await page.click("button.procedure[data-procedure=pickup]")
        await expect(page.locator("#print-message")).to_have_text(text("ja", "kiosk.print_failed"))
        await expect(page.locator("#print-detail")).to_contain_text("プリンターに接続できません")
        await expect(page.locator("body[data-browser-printed=yes]")).to_have_count(1)
        # The print layout holds the number and the QR code, for an 80 mm roll.
        await page.emulate_media(media="print")
        await expect(page.locator("#print-ticket")).to_be_visible()
        await expect(page.locator("#pt-number")).to_have_text("300")
        await expect(page.locator("#screen-ticket")).to_be_hidden()
        width = await page.locator("#print-ticket").evaluate("e => e.getBoundingClientRect().width")
        assert 250 < width < 290  # 72 mm at 96 dpi is 272 px
