"""Staffing advice (要員配置) for a coming day, from the archive and the bookings already made.

Reads the past year's visit and task records of the office, counts the day's bookings per hour
(``O bkday:{day}``, owned by the bookings area: booking id → slot start), and asks
:mod:`queue_server.domain.staffing` hour by hour. The answer is a :class:`~.figures.Report` with
one table (sheet 要員配置), so it is served and rendered like the other reports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any, Final
from zoneinfo import ZoneInfo

import jpholiday

from ..config import Config, Office
from ..domain import staffing
from ..store.archive import Archive, month_range
from .figures import MINUTES, SHARE, Chart, Report, Table
from .load import PeriodError, offices_of, parse_day

HISTORY_MONTHS: Final = 13
"""Months of archive read: last year's same month (March, holiday openings) and the recent ones."""


def _month_before(ym: str, months: int) -> str:
    year, month = int(ym[:4]), int(ym[4:]) - months
    while month <= 0:
        year, month = year - 1, month + 12
    return f"{year:04d}{month:02d}"


def _holiday_opening(date: dt.date) -> bool:
    """A weekend or national holiday on which the office opens (休日開庁): its own arrival pattern."""
    return date.weekday() >= 5 or jpholiday.is_holiday(date)


def _current_counters(office: Office, hour: int) -> int:
    """Contractor counters configured and not on a planned break in the middle of ``hour``."""
    middle = dt.time(hour, 30)
    return sum(1 for c in office.counters.values()
               if c.staff.value != "city" and not any(start <= middle < end for start, end in c.breaks))


async def booked_per_hour(archive: Archive, office: str, day: str, zone: ZoneInfo) -> dict[int, float]:
    """The day's bookings per hour of their slot (nothing before bookings exist)."""
    key = f"{archive.prefix}o:{{{office}}}:bkday:{day}"
    slots = await archive.redis.zrange(key, 0, -1, withscores=True)
    return dict(Counter(dt.datetime.fromtimestamp(score / 1000, zone).hour for _id, score in slots))


MAX_DAYS: Final = 7


async def staffing_report(archive: Archive, config: Config, day: str, office: str, days: int = 1,
                          target_minutes: float | None = None, target_share: float | None = None) -> Report:
    """The advice for ``days`` days from ``day`` (``2026-12-03``; a week at most) at ``office``:
    counters per opening hour by both methods, the current plan's service level, back office."""
    ymd = parse_day(day)
    offices_of(config, office)  # a known office, or PeriodError naming the field
    if not 1 <= days <= MAX_DAYS:
        raise PeriodError("days", f"days must be 1–{MAX_DAYS}, got {days}")
    place = config.offices[office]
    first = dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    levels = config.service_levels
    target_minutes = target_minutes or levels.target_wait_minutes
    target_share = target_share or levels.target_share
    zone = ZoneInfo(config.server.timezone)
    city_only = frozenset(p.id for p in place.procedures.values() if p.city_staff_only)
    visits: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    months = month_range(_month_before(ymd[:6], HISTORY_MONTHS), ymd[:6])
    async for chunk in archive.chunks([office], months):
        for record in chunk:
            if record.get("day", "") >= ymd:
                continue  # only what happened before the first day advised
            if record.get("kind") == "visit":
                visits.append(record)
            elif record.get("kind") == "task":
                tasks.append(record)

    kinds: dict[str, staffing.DayKind] = {}

    def kind_of(d: str) -> staffing.DayKind:
        if d not in kinds:
            past = dt.date(int(d[:4]), int(d[4:6]), int(d[6:]))
            kinds[d] = staffing.DayKind.of(past, _holiday_opening(past))
        return kinds[d]

    midnights: dict[str, int] = {}

    def hour_of(d: str, ms: int) -> int:
        if d not in midnights:
            past = dt.date(int(d[:4]), int(d[4:6]), int(d[6:]))
            midnights[d] = int(dt.datetime.combine(past, dt.time(0), zone).timestamp() * 1000)
        return (ms - midnights[d]) // 3_600_000

    table = Table("要員配置", f"要員配置の目安（目標: {target_minutes:g}分以内に{target_share:.0%}を呼出）",
                  ["日付", "時間帯", "来庁見込み（人/時）", "うち予約", "平均対応時間（分）", "現在の配置（窓口数）",
                   "現在の配置での目標内割合（アーランC）", "現在の配置での目標内割合（シミュレーション）",
                   "現在の配置での平均待ち（分）", "必要窓口数（アーランC）", "必要窓口数（シミュレーション）",
                   "推奨窓口数", "推奨配置での目標内割合（シミュレーション）", "推奨配置での平均待ち（分）",
                   "事務処理の必要人数", "待ち時間見込み 現在の配置（推定器・中央値、分）",
                   "待ち時間見込み 推奨配置（推定器・中央値、分）", "待ち時間見込み 推奨配置（推定器・90%、分）"])
    table.formats = {2: MINUTES, 3: MINUTES, 4: MINUTES, 6: SHARE, 7: SHARE, 8: MINUTES, 12: SHARE, 13: MINUTES,
                     15: MINUTES, 16: MINUTES, 17: MINUTES}
    notes = []
    for offset in range(days):
        date = first + dt.timedelta(days=offset)
        hours = place.hours.for_date(date)
        if hours is None:
            notes.append(f"{date.isoformat()} 閉庁日")
            continue
        if _holiday_opening(date):
            notes.append(f"{date.isoformat()} 休日開庁")
        open_hours = list(range(hours.opens.hour, hours.closes.hour + (hours.closes.minute > 0)))
        booked = await booked_per_hour(archive, office, date.strftime("%Y%m%d"), zone)
        loads = staffing.hourly_loads(visits, tasks, day=date, kind_of=kind_of, hour_of=hour_of, hours=open_hours,
                                      booked=booked, current={h: _current_counters(place, h) for h in open_hours},
                                      city_only=city_only)
        # Simulating is CPU work (about a second per counter count tried): off the event loop.
        advice = await asyncio.to_thread(lambda loads=loads: [staffing.advise_hour(load, target_minutes, target_share)
                                                              for load in loads])
        for a, load in zip(advice, loads, strict=True):
            table.rows.append([date.isoformat(), f"{a.hour:02d}:00–", a.arrivals, load.booked, a.service_minutes,
                               a.current_counters, a.current_share_erlang, a.current_share_simulated,
                               a.current_mean_wait_simulated, a.counters_erlang, a.counters_simulated, a.recommended,
                               a.recommended_share_simulated, a.recommended_mean_wait_simulated, a.back_office_people,
                               a.current_estimator_minutes, a.recommended_estimator_minutes,
                               a.recommended_estimator_high_minutes])
    table.chart = Chart("column", 1, (5, 11), "現在の配置と推奨窓口数")
    last = first + dt.timedelta(days=days - 1)
    period = first.isoformat() if days == 1 else f"{first.isoformat()}〜{last.isoformat()}"
    return Report(title=f"要員配置 {period}" + (f"（{'、'.join(notes)}）" if notes else ""),
                  period=period, scope=place.name, tables=[table])
