"""The lobby display at its native 1920×1080 on a busy day: every procedure's waiting line stays on
screen, a recall joins its call's row, the numbers at the counters stay shown while they are
served, a closed office says so, and a burst of calls is announced shorter rather than late."""

from __future__ import annotations

import dataclasses
import re
import datetime as dt
import time
from typing import Any

import pytest
from playwright.async_api import expect

from queue_server.config import Config
from queue_server.web.keys import CLOCK

from .conftest import LiveServer, MakeUser, OpenPage, demo_office_without_back_office
from .test_display_counter import DISPLAY
from .test_kiosk import text

pytestmark = pytest.mark.browser

TOKYO = dt.timezone(dt.timedelta(hours=9))

FULLY_SHOWN = """(elements) => elements.every((element) => {
  // On screen, and not clipped or covered: the element is what is seen at its top and bottom edges.
  const box = element.getBoundingClientRect();
  if (box.height === 0 || box.bottom > innerHeight || box.top < 0) return false;
  const x = box.left + Math.min(20, box.width / 2);
  return [box.top + 2, box.bottom - 2].every((y) => element.contains(document.elementFromPoint(x, y)));
})"""


async def open_display(open_page: OpenPage, path: str = "/display/main") -> Any:
    """The lobby display at its native size, once its first snapshot is on screen."""
    page = await open_page(path, viewport=DISPLAY)
    await expect(page.locator("body")).to_have_attribute("data-live", "ready")
    return page


async def staff_with(web_user: MakeUser, *counters: str, office: str = "main") -> Any:
    """Signed-in supervisor with ``counters`` open."""
    staff = web_user()
    await staff.sign_in("boss")
    for counter in counters:
        assert (await staff.counter(counter, "open", office=office))[0] == 200
    return staff


async def act(staff: Any, counter: str, *actions: str, office: str = "main") -> str:
    """Counter actions in order; the number of the ticket the last one concerned."""
    number = ""
    for action in actions:
        status, body = await staff.counter(counter, action, office=office)
        assert status == 200, (action, body)
        number = body["ticket"]["number"] if body.get("ticket") else number
    return number


class TestDemoOffice:
    """The demo's main office: six procedures, a notice, calls and recalls filling the recent list."""

    @pytest.fixture
    def server_config(self) -> Config:
        return demo_office_without_back_office()

    async def test_every_procedure_stays_on_screen_and_a_recall_joins_its_calls_row(
            self, open_page: OpenPage, web_user: MakeUser) -> None:
        staff = await staff_with(web_user, "1", "2", "3", "4", "5", office="honcho")
        visitor = web_user()
        for procedure in ("pickup", "application", "ecert", "pin", "other") * 3:
            await visitor.issue(procedure, office="honcho")
        assert (await staff.put("/api/offices/honcho/notice", {"text": "本日は大変混み合っています。"}))[0] == 200
        display = await open_display(open_page, "/display/honcho")

        for counter in ("1", "2", "3", "5"):
            await act(staff, counter, "call-next", "start", "finish", "call-next", office="honcho")
        recalled = await act(staff, "4", "call-next", "recall", "recall", office="honcho")
        await act(staff, "3", "recall", office="honcho")

        rows = display.locator("#recent .recent-item")
        await expect(rows.first).to_have_attribute("data-counter", "3")  # the newest: the recall at 3
        await expect(display.locator("#waiting tr")).to_have_count(6)
        await expect(display.locator("#notice")).to_be_visible()
        keys = [f"{r['number']}|{r['counter']}" for r in await rows.evaluate_all(
            "(rows) => rows.map((row) => ({number: row.dataset.number, counter: row.dataset.counter}))")]
        assert len(keys) == len(set(keys)), f"a number has two rows: {keys}"
        assert len(keys) >= 4, keys
        row = display.locator(f"#recent .recent-item[data-number='{recalled}'][data-counter='4']")
        await expect(row.locator(".recent-recall")).to_have_text(text("ja", "display.recalled_times", n=2))
        assert await display.locator("#waiting tr").evaluate_all(FULLY_SHOWN), "a waiting line is off screen"
        assert await rows.evaluate_all(FULLY_SHOWN), "a recent call is cut off"


async def test_a_number_being_served_stays_on_screen(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    staff = await staff_with(web_user, "2")
    number = (await web_user().issue("pickup"))["ticket"]["number"]
    display = await open_display(open_page)
    await act(staff, "2", "call-next")
    card = display.locator(f".call-card[data-number='{number}'][data-counter='2']")
    await expect(card).to_be_visible()
    await act(staff, "2", "start")
    await expect(card).to_have_class(re.compile(r"\bserving\b"))
    await expect(card.locator(".call-serving")).to_have_text(text("ja", "display.serving"))
    await expect(display.locator("#calls-empty")).to_be_hidden()
    await act(staff, "2", "finish")
    await expect(card).to_have_count(0)
    await expect(display.locator("#calls-empty")).to_have_text(text("ja", "display.no_calls"))


class TestClosedOffice:
    """The test office keeping its calendar (weekdays 08:30–17:15)."""

    @pytest.fixture
    def server_config(self, config: Config) -> Config:
        return dataclasses.replace(config, server=dataclasses.replace(config.server, always_open=False))

    def set_clock(self, live_server: LiveServer, moment: dt.datetime) -> None:
        live_server.app[CLOCK].offset_ms = int(moment.timestamp() * 1000) - time.time_ns() // 1_000_000

    async def test_after_hours_the_display_says_reception_has_ended(
            self, live_server: LiveServer, open_page: OpenPage) -> None:
        self.set_clock(live_server, dt.datetime(2026, 11, 24, 18, 0, tzinfo=TOKYO))
        display = await open_display(open_page)
        await expect(display.locator("#calls-empty-main")).to_have_text(text("ja", "display.ended"))
        await expect(display.locator("#reception")).to_have_text(text("ja", "display.ended"))

    async def test_before_hours_the_display_gives_todays_hours(
            self, live_server: LiveServer, open_page: OpenPage) -> None:
        self.set_clock(live_server, dt.datetime(2026, 11, 24, 7, 45, tzinfo=TOKYO))
        display = await open_display(open_page)
        await expect(display.locator("#calls-empty-main")).to_have_text(text("ja", "display.not_yet_open"))
        await expect(display.locator("#calls-empty-detail")).to_have_text(
            text("ja", "display.hours_today", hours="08:30〜17:15"))


ANNOUNCEMENTS = "() => window.madoguchiDisplay.announcements"


async def test_a_burst_of_calls_is_announced_shorter_and_never_late(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    staff = await staff_with(web_user, "1", "2", "3")
    visitor = web_user()
    english = (await visitor.issue("pickup", lang="en"))["ticket"]["number"]
    for procedure in ("application", "application", "pickup", "application", "pickup"):
        await visitor.issue(procedure)
    display = await open_display(open_page)

    assert await act(staff, "2", "call-next") == english
    await display.wait_for_function("() => window.madoguchiDisplay.announcements.length === 1")
    # While the first call is being spoken, ten more calls at three counters.
    burst = [("1", "call-next"), ("3", "call-next"), ("2", "recall"), ("1", "recall"), ("3", "recall"),
             ("2", "recall"), ("1", "start"), ("1", "finish"), ("1", "call-next"), ("3", "start"),
             ("3", "finish"), ("3", "call-next"), ("1", "recall"), ("3", "recall")]
    for counter, action in burst:
        await act(staff, counter, action)
    calls = 1 + sum(action in ("call-next", "recall") for _, action in burst)
    await display.wait_for_function(f"() => window.madoguchiDisplay.announcements.length === {calls}",
                                    timeout=60_000)
    log = await display.evaluate(ANNOUNCEMENTS)

    # The first call started alone: chime and Japanese; its English was left out once calls waited.
    assert log[0] | {"late_ms": 0} == {"number": english, "counter": "2", "recall": False, "outcome": "spoken",
                                       "late_ms": 0, "backlog": False, "chime": True, "langs": ["ja"],
                                       "skipped": ["en"]}
    spoken = [entry for entry in log if entry["outcome"] == "spoken"]
    # No call is spoken more than 10 s after it happened; behind a backlog, Japanese only, no chime.
    assert all(entry["late_ms"] <= 10_050 for entry in spoken), log
    assert all(entry["langs"] == ["ja"] and not entry["chime"] for entry in spoken[1:]), log
    # Calls to one counter collapse into its newest: each names a later call at the same counter.
    merged = [(index, entry) for index, entry in enumerate(log) if entry["outcome"] == "merged"]
    assert len(merged) >= calls - 1 - 3, log  # at most one announcement left per counter
    for index, entry in merged:
        assert any(later["number"] == entry["into"] and later["counter"] == entry["counter"]
                   and later["outcome"] != "merged" for later in log[index + 1:]), (entry, log)
    # Numbers never announced go first: the recall at counter 2 (its number was spoken) waits.
    assert [entry["counter"] for entry in log if entry["outcome"] != "merged"][-1] == "2", log
