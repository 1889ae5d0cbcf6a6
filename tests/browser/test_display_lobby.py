"""The lobby display at its native 1920×1080 on a busy day: every procedure's waiting line stays on
screen, a recall joins its call's row, the numbers at the counters stay shown while they are
served, a closed office says so, and a burst of calls is spoken in full, in groups, none late."""

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
LATE_LIMIT_MS = 10_000
"""No call may start being spoken later than this after it reached the display (display/README.md)."""


async def test_a_burst_of_calls_is_spoken_in_full_in_groups_and_never_late(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    staff = await staff_with(web_user, "1", "2", "3")
    visitor = web_user()
    english = (await visitor.issue("pickup", lang="en"))["ticket"]["number"]
    for procedure, lang in (("application", "ja"), ("application", "en"), ("pickup", "ja"), ("application", "ja"),
                            ("application", "ja")):
        await visitor.issue(procedure, lang=lang)
    display = await open_display(open_page)
    asked: list[str] = []
    display.on("request", lambda r: asked.append(r.url) if "/announcement?" in r.url else None)

    assert await act(staff, "2", "call-next") == english
    await display.wait_for_function("() => window.madoguchiDisplay.announcements.length === 1")
    # While the first call is being spoken, more calls at three counters: first calls, recalls, and a
    # number marked no-show (after its two recalls) before its call was ever heard.
    burst = [("1", "call-next"), ("3", "call-next"), ("2", "recall"), ("1", "recall"), ("3", "recall"),
             ("2", "recall"), ("1", "recall"), ("1", "no-show"), ("1", "call-next")]
    for counter, action in burst:
        await act(staff, counter, action)
    calls = 1 + sum(action in ("call-next", "recall") for _, action in burst)
    await display.wait_for_function(
        f"() => window.madoguchiDisplay.announcements.length === {calls}"
        " && !document.querySelector('.call-card.speaking')", timeout=90_000)
    log = await display.evaluate(ANNOUNCEMENTS)

    # Every call is spoken, none starts later than the limit after it reached the display.
    assert [entry["outcome"] for entry in log] == ["spoken"] * calls, log
    assert max(entry["late_ms"] for entry in log) <= LATE_LIMIT_MS + 50, log
    # The first started alone, with the chime; the burst was spoken together, back to back without it.
    assert (log[0]["number"], log[0]["group"], log[0]["size"], log[0]["chime"]) == (english, 1, 1, True), log
    groups = {entry["group"] for entry in log[1:]}
    assert len(groups) < calls - 1, f"the burst was spoken call by call: {log}"
    assert all(not entry["chime"] for entry in log[1:] if entry["group"] == log[1]["group"]), log
    # Every number in Japanese; a visitor language spoken or left out (no time for it), never lost unsaid.
    for entry in log:
        assert entry["langs"][0] == "ja", entry
        if entry["lang"] != "ja":
            assert (entry["lang"] in entry["langs"]) != (entry["lang"] in entry["skipped"]), entry
    # A group of several counters was asked for, and the recalls were asked for as recalls.
    grouped = [url for url in asked if "calls=" in url and "," in url.split("calls=")[1].split("&")[0]]
    assert grouped, asked
    assert any("recalls=" in url for url in asked), asked
    assert {entry["counter"] for entry in log if entry["recall"]} == {"1", "2", "3"}, log


GROUPING = """async () => {
  const src = document.querySelector("script[type=module]").src;
  const { takeGroup, groupQuery, Announcer } = await import(new URL("./announcer.js", src));
  const call = (number, counter, recall = false, at = 0) => ({ number, counter, recall, at, queuedAt: 0 });
  const queue = [call("101", "3"), call("205", "5", true), call("101", "3", true, 1), call("102", "3"),
                 call("306", "1"), call("205", "4", false, 2)];
  const all = takeGroup(queue);
  const two = takeGroup(queue, 2);
  const announcer = new Announcer({ office: "main", audio: new Audio() });
  announcer.running = true;                         // as if an announcement were playing
  announcer.announce({ number: "101", counter: "3", at: 1 });
  announcer.announce({ number: "102", counter: "3", at: 2 });
  announcer.announce({ number: "101", counter: "3", at: 3, recall: true });
  announcer.answered("101");
  return {
    all: all.group.map((c) => [c.number, c.counter, c.recall, c.taken.length]), allQuery: groupQuery(all.group),
    two: two.group.map((c) => c.number), twoRest: two.rest.map((c) => c.number), twoTaken: two.taken.length,
    waiting: announcer.queue.map((c) => c.number),
    outcomes: announcer.log.map((e) => [e.number, e.outcome]),
  };
}"""


async def test_the_calls_waiting_are_grouped_each_number_once_at_its_newest_counter(
        live_server: LiveServer, open_page: OpenPage) -> None:
    display = await open_display(open_page)

    grouped = await display.evaluate(GROUPING)

    # A recall joins its number's call (a first call: it was never spoken); a number moved to another
    # counter is said once, there; first calls and recalls go to the API apart.
    assert grouped["all"] == [["101", "3", False, 2], ["205", "4", False, 2], ["102", "3", False, 1],
                              ["306", "1", False, 1]]
    assert grouped["allQuery"] == "calls=101:3,205:4,102:3,306:1"
    # At most the group size: the rest waits for the next announcement (a recall queued before the cut
    # joins its number's call).
    assert grouped["two"] == ["101", "205"] and grouped["twoTaken"] == 3
    assert grouped["twoRest"] == ["102", "306", "205"]
    # A visitor who reached the counter is not called any more; the others still are.
    assert grouped["waiting"] == ["102"]
    assert grouped["outcomes"] == [["101", "answered"], ["101", "answered"]]
