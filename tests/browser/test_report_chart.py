"""The supervisor console's monthly report (月報) drawn as charts in the page: a few visits archived over
the weekdays of November 2026 (the real store steps on the live server's Valkey, a fake clock), then
the console's report for that month — its bars and their table alternatives checked against counts
made from the planned visits alone."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import expect
from redis.asyncio import Redis

from queue_server.config import Config
from queue_server.store.redis_store import QueueStore

from ..archive_sim import OFFICE, TOKYO, FakeClock, Visitor, plan_month, run
from .conftest import OpenPage, save_screenshot
from .test_booking_page import axe_violations
from .test_supervisor import open_console

pytestmark = pytest.mark.browser


@pytest.fixture
async def november(valkey_url: str, config: Config, key_prefix: str) -> AsyncIterator[list[Visitor]]:
    """Four visitors a weekday in November 2026, archived (the 30th closed out on 1 December)."""
    redis = Redis.from_url(valkey_url)
    clock = FakeClock()
    store = QueueStore(redis, config, clock, prefix=key_prefix)
    visitors = plan_month(2026, 11, per_day=4, seed=11)
    await run(store, clock, visitors)
    clock.t = int(dt.datetime(2026, 12, 1, 0, 0, 5, tzinfo=TOKYO).timestamp() * 1000)
    await store.start_day(OFFICE)
    yield visitors
    await redis.aclose()


async def _table(chart: object) -> dict[str, list[str]]:
    """A chart's table alternative (folded in its details, so read as text content): row heading → cells."""
    rows = chart.locator(".sv-chart-table tbody tr")  # type: ignore[attr-defined]
    return {(await row.locator("th").text_content()).strip():
            [c.strip() for c in await row.locator("td").all_text_contents()] for row in await rows.all()}


@pytest.mark.screenshots
async def test_the_monthly_report_shows_as_charts_of_the_archived_visits(
        november: list[Visitor], open_page: OpenPage, config: Config) -> None:
    console = await open_console(open_page)
    await console.select_option("#report-office", OFFICE)
    await console.fill("#report-month", "2026-11")
    await console.click("#monthly-show")
    result = console.locator("#report-result")
    days = result.locator("figure[data-chart=日別]")
    await expect(days).to_be_visible()

    # Visitors per day: one bar per weekday with visits, the table alternative equal to the plan's count.
    per_day = Counter(f"{v.day[:4]}-{v.day[4:6]}-{v.day[6:]}" for v in november)
    names = {p.id: p.name for p in config.offices[OFFICE].procedures.values()}
    await expect(days.locator(".sv-bar-row")).to_have_count(len(per_day))
    assert {day: int(cells[0]) for day, cells in (await _table(days)).items()} == dict(per_day)
    assert [await b.inner_text() for b in await days.locator(".sv-bar").all()] == [str(per_day[d]) for d in sorted(per_day)]

    # Visitors per day and procedure: a stacked bar per day, a segment per procedure with visitors.
    by_day_procedure = result.locator("figure[data-chart=日別手続別]")
    await expect(by_day_procedure.locator(".sv-legend-entry")).to_have_text(sorted(names[p] for p in {v.procedure for v in november}))
    per_day_procedure: dict[str, Counter[str]] = defaultdict(Counter)
    for v in november:
        per_day_procedure[f"{v.day[:4]}-{v.day[4:6]}-{v.day[6:]}"][names[v.procedure]] += 1
    legend = await by_day_procedure.locator(".sv-legend-entry").all_text_contents()
    got = {day: dict(zip(legend, map(int, cells), strict=True)) for day, cells in (await _table(by_day_procedure)).items()}
    assert got == {day: {name: counts[name] for name in legend} for day, counts in per_day_procedure.items()}
    await expect(by_day_procedure.locator(".sv-bar")).to_have_count(sum(len(c) for c in per_day_procedure.values()))

    # Visitors per procedure (as issued; city staff's review has a row for its service times, no visitor).
    per_procedure = Counter(names[v.procedure] for v in november)
    procedures = await _table(result.locator("figure[data-chart=手続別]"))
    assert {name: int(cells[0]) for name, cells in procedures.items() if int(cells[0])} == dict(per_procedure)

    # The share called within the target wait, per day, against the target line.
    target = config.service_levels.target_wait_minutes
    waits: dict[str, list[float]] = defaultdict(list)
    for v in november:
        if v.wait is not None:
            waits[f"{v.day[:4]}-{v.day[4:6]}-{v.day[6:]}"].append(v.wait)
    expected = {day: (f"{round(100 * sum(w <= target for w in waits[day]) / len(waits[day]))}%" if waits[day] else "—")
                for day in per_day}
    share = result.locator("figure[data-chart=share]")
    assert {day: cells[0] for day, cells in (await _table(share)).items()} == expected
    await expect(share.locator(".sv-target-line")).to_have_count(len(per_day))
    line = await share.locator(".sv-target-line").first.evaluate("node => node.style.left")
    assert line == f"{config.service_levels.target_share * 100:g}%"
    await expect(share.locator("figcaption")).to_have_text(f"日別の{target:g}分以内に呼び出した割合")

    # Visitors per hour of the day (the busy hours): the total column of 時間帯別.
    per_hour = Counter(dt.datetime.fromtimestamp(v.issue / 1000, TOKYO).hour for v in november)
    hours = await _table(result.locator("figure[data-chart=時間帯別]"))
    assert {int(label[:2]): int(cells[0]) for label, cells in hours.items() if int(cells[0])} == dict(per_hour)
    await expect(result.locator("figure[data-chart=時間帯別] figcaption")).to_have_text("時間帯別の来庁者数")

    # Hand-overs by reason category: one slice (bar) per category, summed over the procedures handed over.
    categories = config.calling.hand_over_categories
    per_category = Counter(categories[v.category] for v in november if v.category)
    reasons = await _table(result.locator("figure[data-chart=引き継ぎ]"))
    assert {name: int(cells[0]) for name, cells in reasons.items()} == dict(per_category)

    # The table alternative unfolds for the eye too; the console with the charts stays axe-clean.
    await share.locator(".sv-chart-table summary").click()
    await expect(share.locator(".sv-chart-table table")).to_be_visible()
    assert await axe_violations(console) == []
    await share.locator(".sv-chart-table summary").click()
    await save_screenshot(console.locator(".sv-reports"), "report-chart")

    # A month without visits says so, and draws nothing.
    await console.fill("#report-month", "2026-10")
    await console.click("#monthly-show")
    await expect(result.locator(".sv-report-empty")).to_have_text("この月の記録はありません。")
    await expect(result.locator("figure")).to_have_count(0)
