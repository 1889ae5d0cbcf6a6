"""The supervisor console in a real browser: a live call shows at its counter, pausing a procedure
greys it on the kiosk, outage mode's notice reaches the kiosk, the lobby display and a visitor's
status page (and leaves them when it ends), and the day's close-out lists a visitor still waiting."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from ..conftest import PASSWORD
from .conftest import MakeUser, OpenPage, save_screenshot
from .test_kiosk import open_kiosk, text

pytestmark = pytest.mark.browser

CONSOLE = (1440, 1000)
NOTICE_JA = "システム障害のため、一部の手続きを休止しています。"   # tests/office.toml [[outage_notices]] "system"
NOTICE_EN = "Some procedures are paused because of a system failure."


async def open_console(open_page: OpenPage, username: str = "boss") -> Any:
    """The console signed in through its form, following every office."""
    page = await open_page("/supervisor", viewport=CONSOLE)
    await page.fill("#sign-in-form [name=username]", username)
    await page.fill("#sign-in-form [name=password]", PASSWORD)
    await page.click("#sign-in-form button[type=submit]")
    if username == "boss":
        await expect(page.locator("body")).to_have_attribute("data-live", "ready")
    return page


async def test_the_console_shows_a_live_call_at_its_counter(open_page: OpenPage, web_user: MakeUser) -> None:
    console = await open_console(open_page)
    office = console.locator(".sv-office[data-office=main]")
    counter = office.locator("tr[data-counter='2']")
    await expect(counter.locator(".sv-ticket")).to_be_empty()
    visitor, staff = web_user(), web_user()
    await visitor.issue("pickup")
    await expect(office.locator("tr[data-procedure=pickup] td").first).to_have_text(text("ja", "counter.people", n=1))
    await staff.sign_in("staff")
    assert (await staff.counter("2", "open"))[0] == 200
    status, _ = await staff.counter("2", "call-next")
    assert status == 200
    await expect(counter.locator(".sv-ticket .number")).to_have_text("300")
    await expect(counter.locator(".sv-staff")).to_have_text("staff")
    await expect(counter).to_have_attribute("data-status", "open")
    await expect(office.locator(".sv-service-level")).to_have_text(
        text("ja", "supervisor.service_level", minutes=30, share="100%", within=1, called=1))
    # The test office takes bookings (none made: a real zero) and has no back-office stages (no figure).
    await expect(office.locator(".sv-bookings")).to_have_text(text("ja", "supervisor.bookings_to_come", n=0))
    await expect(office.locator(".sv-back-office")).to_have_count(0)
    await save_screenshot(console, "supervisor-console")


async def test_pausing_a_procedure_on_the_console_greys_it_on_the_kiosk(open_page: OpenPage) -> None:
    kiosk = await open_kiosk(open_page)
    pickup = kiosk.locator("button.procedure[data-procedure=pickup]")
    await expect(pickup).not_to_have_attribute("aria-disabled", "true")
    console = await open_console(open_page)
    row = console.locator(".sv-office[data-office=main] tr[data-procedure=pickup]")
    await row.locator("button.sv-pause").click()
    await expect(row).to_have_attribute("data-paused", "true")
    await expect(pickup).to_have_attribute("aria-disabled", "true")
    await expect(pickup.locator(".procedure-meta")).to_have_text(text("ja", "kiosk.paused"))
    await row.locator("button.sv-resume").click()
    await expect(pickup).not_to_have_attribute("aria-disabled", "true")


async def test_outage_mode_puts_its_notice_everywhere_and_ending_it_removes_it(
        open_page: OpenPage, web_user: MakeUser) -> None:
    visitor = web_user()
    mine = await visitor.issue("pickup", lang="en")
    phone = await open_page(mine["status_url"], viewport=(390, 844), locale="en-US")
    await expect(phone.locator("body[data-ready=true]")).to_have_count(1)
    kiosk = await open_kiosk(open_page)
    display = await open_page("/display/main", viewport=(1920, 1080))
    await expect(display.locator("body")).to_have_attribute("data-live", "ready")
    congestion = await open_page("/congestion/main?lang=en", viewport=(390, 844))
    await expect(congestion.locator("body[data-ready=true]")).to_have_count(1)
    console = await open_console(open_page)

    form = console.locator("#outage-form")
    await form.locator("input[name=procedure][value=application]").uncheck()
    await expect(form.locator("input[name=procedure][value=pickup]")).to_be_checked()
    await form.locator("#outage-notice").select_option("system")
    await console.click("#outage-start")
    await expect(console.locator(".sv-outage-item[data-office=main]")).to_be_visible()

    await expect(kiosk.locator("#outage-banner")).to_have_text(NOTICE_JA)
    await expect(kiosk.locator("button.procedure[data-procedure=pickup]")).to_have_attribute("aria-disabled", "true")
    await expect(kiosk.locator("button.procedure[data-procedure=application]")).not_to_have_attribute("aria-disabled", "true")
    await expect(display.locator("#outage-text")).to_have_text(NOTICE_JA)
    await expect(phone.locator("#outage")).to_have_text(NOTICE_EN)   # the visitor's language
    await expect(phone.locator("#estimate")).to_have_text(text("en", "common.wait_unknown"))
    await expect(congestion.locator("#outage-main")).to_have_text(NOTICE_EN)
    await expect(congestion.locator("tr[data-procedure=pickup] .wait-unknown")).to_have_text(text("en", "common.wait_unknown"))
    await save_screenshot(display, "display-outage")

    await console.locator(".sv-outage-item[data-office=main] button.sv-outage-end").click()
    await expect(kiosk.locator("#outage-banner")).to_be_hidden()
    await expect(display.locator("#outage")).to_be_hidden()
    await expect(phone.locator("#outage")).to_be_hidden()
    await expect(congestion.locator("#outage-main")).to_be_hidden()
    await expect(kiosk.locator("button.procedure[data-procedure=pickup]")).not_to_have_attribute("aria-disabled", "true")
    await expect(phone.locator("#estimate")).not_to_have_text(text("en", "common.wait_unknown"))


async def test_the_day_close_out_lists_a_visitor_still_waiting_and_asks_before_closing(
        open_page: OpenPage, web_user: MakeUser) -> None:
    visitor = web_user()
    mine = await visitor.issue("application")
    console = await open_console(open_page)
    closeout = console.locator(".sv-office[data-office=main] .sv-closeout")
    await expect(closeout.locator(".sv-still-waiting .number")).to_have_text([mine["ticket"]["number"]])
    await expect(closeout.locator(".sv-still-summary")).to_contain_text(text("ja", "supervisor.still_waiting", n=1))
    await closeout.locator("button.sv-close-day").click()
    # Refused while a visitor waits: the console asks whether to expire the ticket and close anyway.
    await expect(console.locator("#close-question")).to_have_text(text("ja", "supervisor.close_confirm", n=1))
    await console.click("#close-confirm")
    # The archive's day report (日報) of the closed day, and its downloads.
    await expect(closeout.locator(".sv-report table").first).to_be_visible()
    day = await console.evaluate("new Intl.DateTimeFormat('en-CA', {timeZone: 'Asia/Tokyo'}).format(new Date())")
    await expect(closeout.locator(".sv-download-xlsx")).to_have_attribute(
        "href", f"/api/reports/daily?day={day}&office=main&format=xlsx")
    await expect(closeout.locator(".sv-still-waiting .number")).to_have_count(0)
    await expect(closeout.locator(".sv-still-summary")).to_have_text(text("ja", "supervisor.none_waiting"))


async def test_counter_staff_cannot_use_the_console(open_page: OpenPage) -> None:
    page = await open_console(open_page, username="staff")
    await expect(page.locator("#message")).to_have_text(text("ja", "supervisor.not_supervisor"))
    await expect(page.locator("#console")).to_be_hidden()


async def test_the_console_signs_in_and_out_with_the_staff_pages_form(open_page: OpenPage) -> None:
    """The shared sign-in (staff.js, staff.html): the console's own heading, a wrong password said
    in Japanese, and signing out back to the form with the name field ready to type in."""
    page = await open_page("/supervisor", viewport=CONSOLE)
    await expect(page.locator("#sign-in h1")).to_have_text(text("ja", "supervisor.sign_in_heading"))
    await expect(page.locator("#sign-in-form [name=username]")).to_be_focused()
    await page.fill("#sign-in-form [name=username]", "boss")
    await page.fill("#sign-in-form [name=password]", "not the password")
    await page.click("#sign-in-form button[type=submit]")
    await expect(page.locator("#message")).to_have_text(text("ja", "counter.sign_in_failed"))
    await page.fill("#sign-in-form [name=password]", PASSWORD)
    await page.click("#sign-in-form button[type=submit]")
    await expect(page.locator("body")).to_have_attribute("data-live", "ready")
    await expect(page.locator("#message")).to_be_hidden()
    await page.click("#sign-out")
    await expect(page.locator("#console")).to_be_hidden()
    await expect(page.locator("#sign-in-form [name=username]")).to_be_focused()
    await page.reload()
    await expect(page.locator("#sign-in")).to_be_visible()


async def test_the_notice_edited_on_the_console_shows_in_the_display_s_language(open_page: OpenPage) -> None:
    japanese = await open_page("/display/main", viewport=(1920, 1080))
    english = await open_page("/display/main?lang=en", viewport=(1920, 1080))
    for display in (japanese, english):
        await expect(display.locator("body")).to_have_attribute("data-live", "ready")
    console = await open_console(open_page)
    editor = console.locator(".sv-office[data-office=main] .sv-notice")
    await editor.locator("summary").click()
    await editor.locator("textarea[name=ja]").fill("本日は午後から混み合います")
    await editor.locator("input[name=en]").fill("It will be busy this afternoon")
    await editor.locator("button[type=submit]").click()
    await expect(japanese.locator("#notice-text")).to_have_text("本日は午後から混み合います")
    await expect(english.locator("#notice-text")).to_have_text("It will be busy this afternoon")



async def test_what_the_supervisor_types_is_kept_when_the_editor_s_toggle_comes_after_it(open_page: OpenPage) -> None:
    # The browser fires <details>' "toggle" a task after the click; a loaded machine (or keys typed at
    # once) can put the first keys before it. It once refilled the form from the office's empty notice
    # then, and the console saved "" (and said 更新しました): the display's notice stayed empty.
    console = await open_console(open_page)
    editor = console.locator(".sv-office[data-office=main] .sv-notice")
    kept = await editor.evaluate("""async (details) => {
        const toggled = new Promise((done) => details.addEventListener("toggle", done, { once: true }));
        details.open = true;                                      // the toggle event is only queued
        const ja = details.querySelector("textarea[name=ja]");
        ja.value = "窓口 3 番は午後から休止します";
        ja.dispatchEvent(new InputEvent("input", { bubbles: true }));
        await toggled;
        return ja.value;
    }""")
    assert kept == "窓口 3 番は午後から休止します"


async def test_a_notice_the_server_refuses_is_shown_as_not_saved_and_kept_in_the_form(open_page: OpenPage) -> None:
    display = await open_page("/display/main", viewport=(1920, 1080))
    await expect(display.locator("body")).to_have_attribute("data-live", "ready")
    console = await open_console(open_page)
    editor = console.locator(".sv-office[data-office=main] .sv-notice")
    await editor.locator("summary").click()
    await editor.locator("textarea[name=ja]").fill("本日は午後から混み合います")
    await console.context.clear_cookies()          # the session has ended (signed out elsewhere, expired)
    await editor.locator("button[type=submit]").click()
    failed = text("ja", "supervisor.notice_save_failed", reason=text("ja", "error.unauthorized.message"))
    await expect(editor.locator(".sv-notice-failed")).to_have_text(failed)
    await expect(editor.locator(".sv-notice-failed")).to_be_visible()
    await expect(console.locator("#message")).to_have_text(failed)
    await expect(editor.locator("textarea[name=ja]")).to_have_value("本日は午後から混み合います")
    await expect(display.locator("#notice")).to_be_hidden()

async def test_the_reports_panel_links_the_archive_s_daily_and_monthly_downloads(open_page: OpenPage,
                                                                                 web_user: MakeUser) -> None:
    console = await open_console(open_page)
    await console.select_option("#report-office", "main")
    await console.fill("#report-month", "2026-11")
    await console.dispatch_event("#report-month", "change")
    await expect(console.locator("#monthly-xlsx")).to_have_attribute(
        "href", "/api/reports/monthly?month=2026-11&office=main&format=xlsx")
    href = await console.locator("#daily-csv").get_attribute("href")
    boss = web_user()
    await boss.sign_in("boss")
    resp = await boss.http.get(href)
    assert resp.status == 200 and resp.content_type == "text/csv"


async def test_staffing_advice_shows_as_a_table_and_a_chart(open_page: OpenPage) -> None:
    console = await open_console(open_page)
    await console.select_option("#staffing-office", "main")
    await console.fill("#staffing-day", "2027-01-05")   # a Tuesday: open 08:30–17:15
    await console.dispatch_event("#staffing-day", "change")
    await expect(console.locator("#staffing-xlsx")).to_have_attribute(
        "href", "/api/staffing?office=main&day=2027-01-05&days=1&format=xlsx")
    await console.click("#staffing-form button[type=submit]")
    result = console.locator("#staffing-result")
    await expect(result.locator("table tbody tr").first).to_be_visible()
    rows = await result.locator("table tbody tr").count()
    # One bar pair per row of the table: recommended against current counters for each hour.
    await expect(result.locator(".sv-bar-row")).to_have_count(rows)
    await expect(result.locator(".sv-bar-recommended")).to_have_count(rows)


async def test_a_counter_s_procedures_changed_on_the_console_reach_its_panel(open_page: OpenPage,
                                                                              web_user: MakeUser) -> None:
    from .test_display_counter import open_panel

    visitor = web_user()
    application = (await visitor.issue("application"))["ticket"]["number"]
    pickup = (await visitor.issue("pickup"))["ticket"]["number"]
    panel = await open_panel(open_page, counter="3")           # counter 3 serves application only
    await expect(panel.locator("#waiting tr")).to_have_count(1)
    await expect(panel.locator(f"#waiting tr[data-number='{application}']")).to_have_count(1)
    console = await open_console(open_page)
    row = console.locator(".sv-office[data-office=main] tr[data-counter='3']")
    await row.locator("button.sv-change").click()
    dialog = console.locator("#procedures-dialog")
    await dialog.locator("input[value=application]").uncheck()
    await dialog.locator("input[value=pickup]").check()
    await dialog.locator("button[type=submit]").click()
    await expect(row.locator(".sv-serves")).to_have_text(
        text("ja", "supervisor.procedures_today", procedures="カード交付"))
    # The panel now lists the pickup ticket instead (call-next follows the same list: tests/test_supervisor.py).
    await expect(panel.locator(f"#waiting tr[data-number='{pickup}']")).to_have_count(1)
    await expect(panel.locator("#waiting tr")).to_have_count(1)
