"""Making reports and the export from the store's archive: periods, offices, records → figures or rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any, Final
from zoneinfo import ZoneInfo

from ..config import Config
from ..store.archive import Archive, month_range
from .figures import CITY, Collected, Report, ReportContext, build_report, visit_of

_MONTH: Final = re.compile(r"^(\d{4})-(\d{2})$")

EXPORT_COLUMNS: Final = (
    "office", "day", "number", "procedure", "first_procedure", "state", "expired_from", "channel", "booking",
    "priority", "issued_at", "first_called_at", "called_at", "started_at", "finished_at", "counter", "recalls", "wait_minutes",
    "service_minutes", "estimate_minutes", "handovers",
)
"""The export's columns, in order (documented in ARCHITECTURE.md, "The visit archive and the reports")."""


class PeriodError(ValueError):
    """A month, day or office the report cannot be made for; ``field`` names the argument."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_month(value: str, field: str = "month") -> str:
    """``2026-11`` → ``202611``, or PeriodError."""
    match = _MONTH.match(value or "")
    if not match or not 1 <= int(match[2]) <= 12:
        raise PeriodError(field, f"{field} must be a month like 2026-11, got {value!r}")
    return match[1] + match[2]


def parse_day(value: str, field: str = "day") -> str:
    """``2026-11-05`` → ``20261105``, or PeriodError."""
    try:
        return dt.date.fromisoformat(value or "").strftime("%Y%m%d")
    except ValueError:
        raise PeriodError(field, f"{field} must be a date like 2026-11-05, got {value!r}") from None


def offices_of(config: Config, office: str | None) -> list[str]:
    """The offices a report covers: the one named, or every configured office (the city)."""
    if office is None or office == "":
        return list(config.offices)
    if office not in config.offices:
        raise PeriodError("office", f"no office {office!r}; offices: {', '.join(config.offices)}")
    return [office]


def _scope(config: Config, office: str | None) -> str:
    """What the report covers: the office named, or the city (every office)."""
    return config.offices[office].name if office else CITY


async def _collect(archive: Archive, offices: list[str], months: list[str], day: str | None = None) -> Collected:
    """The period's records folded chunk by chunk (``day``: that business day's only)."""
    collected = Collected(day)
    async for chunk in archive.chunks(offices, months):
        collected.add(chunk)
    return collected


async def monthly_report(archive: Archive, config: Config, month: str, office: str | None = None) -> Report:
    """The monthly report (月報) of ``month`` (``2026-11``) for one office or the city."""
    ym = parse_month(month)
    offices = offices_of(config, office)
    return build_report(await _collect(archive, offices, [ym]), ReportContext.from_config(config), title=f"月報 {ym[:4]}年{int(ym[4:])}月",
                        period=f"{ym[:4]}-{ym[4:]}", scope=_scope(config, office), offices=offices)


async def daily_report(archive: Archive, config: Config, day: str, office: str | None = None) -> Report:
    """The day's report (日報) of ``day`` (``2026-11-05``) for one office or the city."""
    ymd = parse_day(day)
    offices = offices_of(config, office)
    return build_report(await _collect(archive, offices, [ymd[:6]], ymd), ReportContext.from_config(config),
                        title=f"日報 {ymd[:4]}年{int(ymd[4:6])}月{int(ymd[6:])}日",
                        period=f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}", scope=_scope(config, office), offices=offices)


async def year_report(archive: Archive, config: Config, first: str, last: str, office: str | None = None) -> Report:
    """A report over the months ``first``–``last`` (``2026-04``, ``2027-03``): a fiscal year's figures."""
    months = month_range(parse_month(first, "from"), parse_month(last, "to"))
    offices = offices_of(config, office)
    return build_report(await _collect(archive, offices, months), ReportContext.from_config(config), title=f"報告 {first}〜{last}",
                        period=f"{first}〜{last}", scope=_scope(config, office), offices=offices)


async def export_visits(archive: Archive, config: Config, first: str, last: str, office: str | None = None) -> bytes:
    """Every archived visit of the months ``first``–``last`` as CSV (EXPORT_COLUMNS), UTF-8 with BOM."""
    months = month_range(parse_month(first, "from"), parse_month(last, "to"))
    if not months:
        raise PeriodError("to", f"--to {last} is before --from {first}")
    zone = ZoneInfo(config.server.timezone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    async for record in archive.records(offices_of(config, office), months, kinds=frozenset({"visit"})):
        writer.writerow(export_row(record, zone))
    return out.getvalue().encode("utf-8-sig")


def export_row(record: dict[str, Any], zone: ZoneInfo) -> list[Any]:
    """One visit record as the export's row."""
    visit = visit_of(record)

    def local(key: str) -> str:
        ms = record.get(key)
        return "" if ms is None else dt.datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="seconds")

    service = sum(m for _p, _c, m in visit.segments) if visit.segments else None
    handovers = ";".join(f"{h['from']}>{h['to']}:{h.get('category') or ''}" for h in record.get("handovers") or [])
    return [record["office"], record["day"], record["number"], record["procedure"], visit.procedure, record["state"],
            record.get("expired_from", ""), record.get("channel", ""), record.get("booking", ""),
            record.get("priority", 0), local("issued_at"), local("first_called_at"), local("called_at"), local("started_at"), local("finished_at"),
            record.get("counter", ""), record.get("recalls", 0),
            "" if visit.wait is None else round(visit.wait, 2), "" if service is None else round(service, 2),
            "" if record.get("estimate") is None else record["estimate"], handovers]

