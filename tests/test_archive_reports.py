"""The visit archive and the monthly report: a simulated month through the real store steps, the
workbook read back and checked against figures computed from the plan alone."""

from __future__ import annotations

import datetime as dt
import io
import json
import statistics
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import openpyxl
import pytest
from redis.asyncio import Redis

from queue_server.config import Config
from queue_server.reports import load, render
from queue_server.store.archive import Archive
from queue_server.store.redis_store import QueueStore

from .archive_sim import FREE_TEXT, MINUTE, OFFICE, TOKYO, FakeClock, Visitor, plan_month, run
from .conftest import Api
from .waiting import wait_until

NOVEMBER = (2026, 11)


@pytest.fixture
async def redis(valkey_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey_url)
    yield client
    await client.aclose()


@pytest.fixture
async def month(redis: Redis, config: Config, key_prefix: str) -> tuple[list[Visitor], QueueStore, FakeClock]:
    """November 2026 played through the store; the clock then moves to 1 December (closing out the 30th)."""
    clock = FakeClock()
    store = QueueStore(redis, config, clock, prefix=key_prefix)
    visitors = plan_month(*NOVEMBER)
    await run(store, clock, visitors)
    clock.t = int(dt.datetime(2026, 12, 1, 0, 0, 5, tzinfo=TOKYO).timestamp() * 1000)
    await store.start_day(OFFICE)
    return visitors, store, clock


def _rows(sheet: Any) -> list[list[Any]]:
    """A sheet's data rows (headings in row 4, figures from row 5; the chart's anchor rows are empty)."""
    return [list(r) for r in sheet.iter_rows(min_row=5, values_only=True) if r[0] is not None]


def _headers(sheet: Any) -> list[str]:
    return [c.value for c in sheet[4]]


def _close(actual: Any, expected: float | None) -> bool:
    if expected is None:
        return actual is None
    return actual is not None and abs(float(actual) - expected) < 1e-6


def _p90(values: list[float]) -> float:
    """The 90th percentile, linear between order statistics (Excel's PERCENTILE.INC)."""
    return statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]


async def test_a_month_of_visits_is_archived_once_each_and_the_workbook_agrees_with_the_visits(
        month: tuple[list[Visitor], QueueStore, FakeClock], redis: Redis, config: Config, key_prefix: str) -> None:
    visitors, _store, _clock = month
    archive = Archive(redis, key_prefix)
    records = [r async for r in archive.records([OFFICE], ["202611"])]
    # Every visit once, in its own day's month, with its final state — the one left open at closing too.
    assert sorted((r["day"], r["number"]) for r in records) == sorted((v.day, v.number) for v in visitors)
    fates = {"done": "done", "handover": "done", "no_show": "no_show", "cancel": "cancelled", "expire": "expired"}
    by_key = {(r["day"], r["number"]): r for r in records}
    for v in visitors:
        assert by_key[(v.day, v.number)]["state"] == fates[v.fate], v
    last = max(visitors, key=lambda v: v.issue)
    assert by_key[(last.day, last.number)]["state"] == "expired" and last.day == "20261130"
    assert await archive.months(OFFICE) == ["202611"]

    report = await load.monthly_report(archive, config, "2026-11", OFFICE)
    book = openpyxl.load_workbook(io.BytesIO(render.to_xlsx(report)), data_only=True)
    names = {p.id: p.name for p in config.offices[OFFICE].procedures.values()}
    target = config.service_levels.target_wait_minutes

    # 手続別: visitors, outcomes, waits, the share within the target, service times — per procedure issued.
    sheet = book["手続別"]
    headers = _headers(sheet)
    rows = {row[1]: dict(zip(headers, row, strict=False)) for row in _rows(sheet)}
    for procedure in ("application", "pickup"):
        mine = [v for v in visitors if v.procedure == procedure]
        waits = [v.wait for v in mine if v.wait is not None]
        row = rows[names[procedure]]
        assert row["来庁者数"] == len(mine)
        assert row["不在"] == sum(v.fate == "no_show" for v in mine)
        assert row["取消"] == sum(v.fate == "cancel" for v in mine)
        assert row["時間切れ"] == sum(v.fate == "expire" for v in mine)
        assert _close(row["平均待ち時間（分）"], statistics.fmean(waits))
        assert _close(row["待ち時間 中央値（分）"], statistics.median(waits))
        assert _close(row["待ち時間 90%値（分）"], _p90(waits))
        assert _close(row["最長待ち時間（分）"], max(waits))
        share = sum(w <= target for w in waits) / len(waits)
        assert _close(row[f"{target:g}分以内の割合"], share)
        assert row["目標"] == ("達成" if share >= config.service_levels.target_share else "未達成")
        service = [(v.end - v.start) / MINUTE for v in mine if v.start is not None]
        assert row["窓口対応件数"] == len(service)
        assert _close(row["平均対応時間（分）"], statistics.fmean(service))
    review = [(v.city_finish - v.city_start) / MINUTE for v in visitors if v.fate == "handover"]
    assert _close(rows[names["review"]]["平均対応時間（分）"], statistics.fmean(review))

    # 日別 and 時間帯別: visitors per day, per hour of issue and weekday.
    per_day = Counter(v.day for v in visitors)
    day_rows = _rows(book["日別"])
    assert {r[0].replace("-", ""): r[2] for r in day_rows} == dict(per_day)
    per_day_procedure = Counter((v.day, names[v.procedure]) for v in visitors)
    sheet = book["日別手続別"]
    headers = _headers(sheet)
    assert {(r[0].replace("-", ""), name): n for r in _rows(sheet) for name, n in zip(headers[2:-1], r[2:-1], strict=True)
            if n} == dict(per_day_procedure)
    assert {r[0].replace("-", ""): r[-1] for r in _rows(sheet)} == dict(per_day)
    per_hour: Counter[tuple[int, int]] = Counter()
    for v in visitors:
        local = dt.datetime.fromtimestamp(v.issue / 1000, TOKYO)
        per_hour[(local.hour, local.weekday())] += 1
    for row in _rows(book["時間帯別"]):
        hour = int(row[0][:2])
        assert row[1:8] == [per_hour[(hour, wd)] for wd in range(7)]
        assert row[8] == sum(per_hour[(hour, wd)] for wd in range(7))

    # 引き継ぎ: hand-overs by the configured category's name.
    categories = config.calling.hand_over_categories
    expected = Counter(categories[v.category] for v in visitors if v.category)
    got: Counter[str] = Counter()
    for row in _rows(book["引き継ぎ"]):
        got[row[1]] += row[4]
    assert got == expected

    # 見込み精度: the estimate shown at issue against the real wait.
    errors = [v.wait - v.estimate for v in visitors if v.wait is not None and v.estimate is not None]
    est_rows = _rows(book["見込み精度"])
    assert sum(r[2] for r in est_rows) == len(errors)
    summary = dict(zip(_headers(book["概要"]), _rows(book["概要"])[0], strict=False))
    assert _close(summary["見込み平均絶対誤差（分）"], statistics.fmean(abs(e) for e in errors))
    assert summary["来庁者数"] == len(visitors)
    assert summary["引き継ぎ件数"] == sum(v.fate == "handover" for v in visitors)

    # Native charts: one chart part per table that has one (openpyxl does not read charts back).
    with zipfile.ZipFile(io.BytesIO(render.to_xlsx(report))) as package:
        charts = [n for n in package.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == sum(1 for t in report.tables if t.chart is not None and t.rows) >= 5


async def test_the_archive_keeps_the_hand_over_category_and_never_the_reason_typed(
        month: tuple[list[Visitor], QueueStore, FakeClock], redis: Redis, key_prefix: str) -> None:
    visitors, _store, _clock = month
    handed = [v for v in visitors if v.fate == "handover"]
    assert handed
    raw = [fields[b"r"].decode() async for fields in _entries(redis, f"{key_prefix}o:{{{OFFICE}}}:arch:202611")]
    assert not [r for r in raw if FREE_TEXT in r or "山田" in r or "090-" in r]
    records = {(json.loads(r)["day"], json.loads(r)["number"]): json.loads(r) for r in raw}
    for v in handed:
        (hand_over,) = records[(v.day, v.number)]["handovers"]
        assert hand_over["category"] == v.category and hand_over["from"] == v.procedure and hand_over["to"] == "review"
        assert hand_over["called_at"] == v.call and hand_over["started_at"] == v.start


async def _entries(redis: Redis, key: str) -> AsyncIterator[dict[bytes, bytes]]:
    for _id, fields in await redis.xrange(key):
        yield fields


async def test_the_day_report_covers_one_day_and_the_csv_has_the_same_figures(
        month: tuple[list[Visitor], QueueStore, FakeClock], redis: Redis, config: Config, key_prefix: str) -> None:
    visitors, _store, _clock = month
    day = visitors[0].day
    report = await load.daily_report(Archive(redis, key_prefix), config, f"{day[:4]}-{day[4:6]}-{day[6:]}", OFFICE)
    summary = report.table("概要").rows[0]
    assert summary[1] == sum(v.day == day for v in visitors)
    text = render.to_csv(report).decode("utf-8-sig")
    assert "【概要】" in text and "【手続別】" in text
    assert f"{config.offices[OFFICE].short_name or config.offices[OFFICE].name},{summary[1]}," in text


async def test_months_older_than_the_kept_fiscal_years_are_deleted_at_the_day_change(
        month: tuple[list[Visitor], QueueStore, FakeClock], redis: Redis, key_prefix: str) -> None:
    _visitors, store, clock = month
    archive = Archive(redis, key_prefix)
    # keep_years = 3: in fiscal 2029 (from April 2029) the kept years are 2027, 2028, 2029 — November 2026 goes.
    clock.t = int(dt.datetime(2029, 3, 31, 12, 0, tzinfo=TOKYO).timestamp() * 1000)
    await store.start_day(OFFICE)
    assert await archive.months(OFFICE) == ["202611"]  # fiscal 2028 still keeps fiscal 2026
    clock.t = int(dt.datetime(2029, 4, 1, 0, 0, 1, tzinfo=TOKYO).timestamp() * 1000)
    await store.start_day(OFFICE)
    assert await archive.months(OFFICE) == []
    assert not await redis.exists(f"{key_prefix}o:{{{OFFICE}}}:arch:202611")


# -- the endpoints ----------------------------------------------------------------------------

async def test_report_endpoints_are_for_supervisors_and_name_a_bad_field(client: Any, user: Any) -> None:
    visitor, staff, boss = user(), user(), user()
    await staff.sign_in("staff")
    await boss.sign_in("boss")
    assert (await visitor.get("/api/reports/monthly?month=2026-11"))[0] == 401
    assert (await staff.get("/api/reports/monthly?month=2026-11"))[0] == 403
    for query, field in (("month=2026-13", "month"), ("month=11-2026", "month"), ("", "month"),
                         ("month=2026-11&office=nowhere", "office"), ("month=2026-11&format=pdf", "format"),
                         ("month=2026-11&colour=red", "colour")):
        status, body = await boss.get(f"/api/reports/monthly?{query}")
        assert (status, body["error"]["field"]) == (400, field), body
    status, body = await boss.get("/api/reports/daily?day=2026-02-30")
    assert (status, body["error"]["field"]) == (400, "day")
    status, body = await boss.get("/api/reports/monthly?month=2026-11")
    assert status == 200 and body["scope"] == "市全体" and [t["key"] for t in body["tables"]][:3] == ["概要", "手続別", "日別"]
    resp = await boss.http.get("/api/reports/monthly?month=2026-11&office=main&format=xlsx")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in resp.headers["Content-Disposition"]
    assert openpyxl.load_workbook(io.BytesIO(await resp.read())).sheetnames[0] == "概要"
    resp = await boss.http.get("/api/reports/daily?day=2026-11-05&format=csv")
    assert resp.status == 200 and (await resp.read()).startswith("\ufeff".encode())


async def test_the_archive_keeps_the_estimate_shown_at_issue_and_an_unknown_category_is_refused(
        client: Any, staff: Api, visitor: Api, redis: Redis, key_prefix: str) -> None:
    from queue_server.web.keys import HUB

    async def estimated() -> Any:
        outlook = client.app[HUB].state("main").estimates.get("procedures", {}).get("application") or {}
        return outlook.get("median_minutes") is not None

    await wait_until(estimated, "an estimate for application with its counters open")
    issued = await visitor.issue("application")
    shown = issued["estimate"]["median_minutes"]
    assert shown is not None
    for action in ("call-next", "start"):
        assert (await staff.counter("3", action))[0] == 200
    status, body = await staff.counter("3", "hand-over", {"to": "pickup", "category": "gossip"})
    assert (status, body["error"]["field"]) == (400, "category")
    assert (await staff.counter("3", "finish"))[0] == 200
    archive = Archive(redis, key_prefix)
    (record,) = [r async for r in archive.records([OFFICE], [issued["ticket"]["day"][:6]])]
    assert record["number"] == issued["ticket"]["number"] and record["estimate"] == shown


async def test_random_report_queries_never_get_a_500(client: Any, user: Any) -> None:
    import random

    boss = user()
    await boss.sign_in("boss")
    rng = random.Random(9)
    values = ["", "2026-11", "2026-11-05", "9999-99", "2026-1", "main", "nowhere", "xlsx", "csv", "json", "%00",
              "🙂", "2026-11-05T00:00", "-1", "x" * 300]
    for _ in range(60):
        path = rng.choice(["/api/reports/daily", "/api/reports/monthly", "/api/staffing"])
        query = "&".join(f"{rng.choice(['day', 'days', 'month', 'office', 'format', 'zzz'])}={rng.choice(values)}"
                         for _ in range(rng.randrange(4)))
        resp = await boss.http.get(f"{path}?{query}")
        assert resp.status < 500, (path, query, await resp.text())


async def test_lib_archive_keeps_other_areas_records_without_secrets_free_text_or_staff(
        redis: Redis, key_prefix: str) -> None:
    """The tasks and bookings areas call ``lib.archive(s, kind, record)`` with their own tables: a harness
    op (added to the real library only here) passes such tables, as those areas' steps do."""
    from queue_server.store import scripts

    harness = ("op('archive_for_test', function(s) lib.archive(s, s.req.kind, s.req.record) "
               "return cjson.encode({ok = true}) end)\n")
    body = scripts.modules().replace(scripts.MAIN_MODULE_HEADER, harness + scripts.MAIN_MODULE_HEADER)
    now = int(dt.datetime(2026, 11, 5, 10, 0, tzinfo=TOKYO).timestamp() * 1000)
    base = {"today": "20261105", "now": now}
    task = {"id": "7", "kind": "prepare", "procedure": "pickup", "state": "done", "claimed_at": now - 900_000,
            "done_at": now, "claimed_by": "tanaka", "done_by": "tanaka", "ticket": "20261105|301"}
    booking = {"id": "3", "code": "ACDE-FHJK", "secret": "s3cr3t", "reference": "No.12-345", "procedure": "pickup",
               "day": "20261204", "slot": "10:00", "state": "cancelled", "actor": "callcenter1", "note": "佐藤様"}
    routing = f"{key_prefix}o:{{{OFFICE}}}:evseq"
    await redis.function_load(scripts.source(body), replace=True)
    try:
        await redis.fcall("mg_start_day", 1, routing, json.dumps({**base, "office_procedures": [], "office_counters": []}))
        for kind, record in (("task", task), ("booking", booking)):
            answer = await redis.fcall("mg_archive_for_test", 1, routing, json.dumps({**base, "kind": kind, "record": record}))
            assert json.loads(answer)["ok"]
    finally:
        await redis.function_load(scripts.source(), replace=True)  # the real library again
    archive = Archive(redis, key_prefix)
    (kept_task,) = [r async for r in archive.records([OFFICE], ["202611"])]
    assert kept_task["kind"] == "task" and kept_task["task_kind"] == "prepare" and kept_task["day"] == "20261105"
    assert "claimed_by" not in kept_task and "done_by" not in kept_task and kept_task["done_at"] == now
    (kept_booking,) = [r async for r in archive.records([OFFICE], ["202612"])]  # filed under the slot's month
    assert {k: kept_booking.get(k) for k in ("kind", "state", "slot")} == {"kind": "booking", "state": "cancelled",
                                                                            "slot": "10:00"}
    assert not {"code", "secret", "reference", "actor", "note"} & set(kept_booking)
