"""Staffing advice on the demo office: arrivals from the archive by weekday and hour, bookings on top,
the current plan's counters (lunch breaks), both methods, over HTTP (supervisor) and as a workbook."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import openpyxl
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from queue_server.cli import demo_config_path
from queue_server.config import load_config

from .conftest import api_users

TOKYO = dt.timezone(dt.timedelta(hours=9))
MINUTE = 60_000
# Walk-ins per hour on Thursdays (the day advised is Thursday 2026-12-03), twice as many on Mondays.
THURSDAY = {9: 20, 10: 30, 11: 24, 12: 10, 13: 22, 14: 26, 15: 12}


def _records(rng: random.Random) -> list[str]:
    """Four weeks of Mondays and Thursdays before 3 December: pickups of 10 ± 5 minutes."""
    out = []
    for week in range(4):
        for date, factor in ((dt.date(2026, 11, 5) + dt.timedelta(weeks=week), 1),
                             (dt.date(2026, 11, 2) + dt.timedelta(weeks=week), 2)):
            for hour, n in THURSDAY.items():
                for i in range(n * factor):
                    issued = int(dt.datetime.combine(date, dt.time(hour, rng.randrange(60)), TOKYO).timestamp() * 1000)
                    started = issued + rng.randrange(1, 20) * MINUTE
                    out.append(json.dumps({
                        "kind": "visit", "office": "honcho", "day": date.strftime("%Y%m%d"), "number": f"{hour}{i}",
                        "procedure": "pickup", "state": "done", "channel": "walk_in", "priority": 0,
                        "issued_at": issued, "first_called_at": started - 30_000, "called_at": started - 30_000,
                        "started_at": started, "finished_at": started + int(rng.uniform(5, 15) * MINUTE),
                        "counter": "3", "recalls": 0}))
    return out


async def test_the_demo_office_gets_counters_per_hour_from_its_archive_and_bookings(
        aiohttp_client: Callable[..., Awaitable[TestClient]], valkey_url: str, key_prefix: str, tmp_path: Path) -> None:
    from queue_server.domain.model import Role
    from queue_server.web.app import init_app
    from queue_server.web.keys import ACCOUNTS

    config = load_config(demo_config_path())
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=tmp_path))
    redis = Redis.from_url(valkey_url)
    office_key = f"{key_prefix}o:{{honcho}}:"
    for record in _records(random.Random(5)):
        await redis.xadd(office_key + "arch:202611", {"r": record})
    await redis.zadd(office_key + "archmonths", {"202611": 202611})
    ten = int(dt.datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO).timestamp() * 1000)
    await redis.zadd(office_key + "bkday:20261203", {"1": ten, "2": ten + 20 * MINUTE, "3": ten + 40 * MINUTE})
    await redis.aclose()

    client = await aiohttp_client(init_app(config, redis_url=valkey_url, key_prefix=key_prefix))
    await client.app[ACCOUNTS].add_user("boss", "test-password-1", Role.SUPERVISOR)
    async with api_users(str(client.make_url("/"))) as make:
        boss = make()
        await boss.sign_in("boss")
        status, body = await boss.get("/api/staffing?day=2026-12-03")
        assert (status, body["error"]["field"]) == (400, "office")
        status, body = await boss.get("/api/staffing?office=honcho&day=2026-12-03")
        assert status == 200, body
        (table,) = body["tables"]
        rows = [dict(zip(table["headers"], row, strict=True)) for row in table["rows"]]
        assert [r["時間帯"] for r in rows] == [f"{h:02d}:00–" for h in range(9, 16)]  # 09:00–16:00
        for r, (hour, walk_ins) in zip(rows, THURSDAY.items(), strict=True):
            booked = 3 if hour == 10 else 0
            assert r["来庁見込み（人/時）"] == walk_ins + booked and r["うち予約"] == booked  # Thursdays only
            assert r["推奨窓口数"] == max(r["必要窓口数（アーランC）"], r["必要窓口数（シミュレーション）"])
            assert r["推奨配置での目標内割合（シミュレーション）"] >= 0.85
            # The wait estimator, at a typical moment of the hour with the recommended counters, agrees.
            assert r["待ち時間見込み 推奨配置（推定器・中央値、分）"] <= 30
            # Five contractor counters; two of them at lunch from 12:00 to 13:00.
            assert r["現在の配置（窓口数）"] == (3 if hour == 12 else 5)
        busiest = max(rows, key=lambda r: r["来庁見込み（人/時）"])
        quietest = min(rows, key=lambda r: r["来庁見込み（人/時）"])
        assert busiest["推奨窓口数"] > quietest["推奨窓口数"] >= 1

        resp = await boss.http.get("/api/staffing?office=honcho&day=2026-12-03&format=xlsx")
        assert resp.status == 200
        sheet = openpyxl.load_workbook(io.BytesIO(await resp.read()))["要員配置"]
        assert sheet.cell(5, 12).value == rows[0]["推奨窓口数"]

        # A week from Thursday 3 December: Saturday and Sunday closed, Monday from Mondays' (twice the) arrivals.
        status, body = await boss.get("/api/staffing?office=honcho&day=2026-12-03&days=5")
        assert status == 200, body
        (table,) = body["tables"]
        days = sorted({row[0] for row in table["rows"]})
        assert days == ["2026-12-03", "2026-12-04", "2026-12-07"]
        assert "2026-12-05 閉庁日" in body["title"] and "2026-12-06 閉庁日" in body["title"]
        monday = {row[1]: row[2] for row in table["rows"] if row[0] == "2026-12-07"}
        assert monday["10:00–"] == 2 * THURSDAY[10]
        status, body = await boss.get("/api/staffing?office=honcho&day=2026-12-03&days=8")
        assert (status, body["error"]["field"]) == (400, "days")
