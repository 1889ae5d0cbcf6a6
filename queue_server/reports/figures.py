"""The report's figures, computed from archive records only (plain Python and numpy, no I/O).

A report is a list of :class:`Table` — the workbook's sheets, the CSV's sections, the JSON's tables —
each with Japanese headings. Definitions (also in ARCHITECTURE.md "The visit archive and the reports"):

- a *visit* is one archived ticket; it counts under the procedure it was issued for (before any
  hand-over) and the hour and weekday it was issued;
- its *wait* is from issue to its first call (over visits that were called);
- *service time* is from start to finish at one counter: each hand-over closes a segment for the
  procedure it leaves, and a finished visit closes the last one;
- the *estimate error* is the real wait minus the median wait shown at issue.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np

from ..domain.staffing import number_or_none

WEEKDAYS_JA: Final = ("月", "火", "水", "木", "金", "土", "日")
STATES: Final = ("done", "no_show", "cancelled", "expired")
TASK_KINDS_JA: Final = {"prepare": "交付前準備", "post": "交付後処理"}
CITY: Final = "市全体"
UNCATEGORISED: Final = "（区分なし）"
MINUTE_MS: Final = 60_000

Row = list[Any]


@dataclass(frozen=True, slots=True)
class Chart:
    """A native chart of a table: kind (column, bar, line, pie), the category column and value columns."""

    kind: str
    categories: int
    values: tuple[int, ...]
    title: str


@dataclass(slots=True)
class Table:
    """One sheet of the report: key (sheet name), title, headings, rows; formats per column (minutes, share)."""

    key: str
    title: str
    headers: list[str]
    rows: list[Row] = field(default_factory=list)
    formats: dict[int, str] = field(default_factory=dict)
    chart: Chart | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "headers": self.headers, "rows": self.rows}


@dataclass(slots=True)
class Report:
    """A whole report: what it covers and its tables."""

    title: str
    period: str
    scope: str
    tables: list[Table]

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "period": self.period, "scope": self.scope,
                "tables": [t.to_json() for t in self.tables]}


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What the figures need from the configuration: names, the service level, the time zone."""

    office_names: Mapping[str, str]
    procedure_names: Mapping[str, Mapping[str, str]]   # office → procedure id → name
    counter_names: Mapping[str, Mapping[str, str]]     # office → counter id → name
    categories: Mapping[str, str]                      # hand-over category id → name
    target_wait_minutes: float = 30.0
    target_share: float = 0.9
    tolerance_minutes: float = 10.0
    timezone: str = "Asia/Tokyo"

    @classmethod
    def from_config(cls, config: Any) -> ReportContext:
        """The context of a :class:`queue_server.config.Config`."""
        offices = config.offices.values()
        levels = config.service_levels
        return cls(office_names={o.id: o.short_name or o.name for o in offices},
                   procedure_names={o.id: {p.id: p.name for p in o.procedures.values()} for o in offices},
                   counter_names={o.id: {c.id: c.name for c in o.counters.values()} for o in offices},
                   categories=dict(config.calling.hand_over_categories),
                   target_wait_minutes=levels.target_wait_minutes, target_share=levels.target_share,
                   tolerance_minutes=levels.estimate_tolerance_minutes, timezone=config.server.timezone)

    def office(self, office: str) -> str:
        return self.office_names.get(office, office)

    def procedure(self, office: str, procedure: str) -> str:
        return self.procedure_names.get(office, {}).get(procedure, procedure)

    def counter(self, office: str, counter: str) -> str:
        return self.counter_names.get(office, {}).get(counter, f"{counter}番窓口")

    def category(self, category: str | None) -> str:
        return UNCATEGORISED if not category else self.categories.get(category, category)


# -- one visit --------------------------------------------------------------------------------


@dataclass(slots=True)
class Visit:
    """What the figures use of one visit record."""

    office: str
    day: str
    procedure: str                 # as issued (before hand-overs)
    state: str
    channel: str
    issued_at: int
    wait: float | None             # minutes, issue → first call
    estimate: float | None
    segments: tuple[tuple[str, str, float], ...]   # (procedure, counter, minutes at the counter)
    handovers: tuple[tuple[str, str, str | None], ...]  # (from, to, category)


def visit_of(record: Mapping[str, Any]) -> Visit:
    """The :class:`Visit` of one archived visit record."""
    handovers = record.get("handovers") or []
    first_call = record.get("first_called_at")
    segments: list[tuple[str, str, float]] = []
    for h in handovers:
        if h.get("started_at") is not None:
            segments.append((h["from"], str(h.get("counter", "")), (h["at"] - h["started_at"]) / MINUTE_MS))
    if record["state"] == "done" and record.get("started_at") is not None and record.get("finished_at") is not None:
        segments.append((record["procedure"], str(record.get("counter", "")),
                         (record["finished_at"] - record["started_at"]) / MINUTE_MS))
    issued = int(record["issued_at"])
    return Visit(office=record["office"], day=record["day"],
                 procedure=handovers[0]["from"] if handovers else record["procedure"],
                 state=record["state"], channel=record.get("channel", "walk_in"), issued_at=issued,
                 wait=None if first_call is None else (first_call - issued) / MINUTE_MS,
                 estimate=record.get("estimate"), segments=tuple(segments),
                 handovers=tuple((h["from"], h["to"], h.get("category")) for h in handovers))


# -- statistics -------------------------------------------------------------------------------


def wait_figures(waits: Sequence[float], target: float) -> list[Any]:
    """[count, mean, median, 90th percentile, maximum, share within ``target``] (None where no data).

    Percentiles interpolate linearly between the sorted values (numpy's default, Excel's PERCENTILE.INC)."""
    if not waits:
        return [0, None, None, None, None, None]
    a = np.asarray(waits, dtype=float)
    return [int(a.size), float(a.mean()), float(np.median(a)), float(np.percentile(a, 90)), float(a.max()),
            float((a <= target).mean())]


def time_figures(minutes: Sequence[float]) -> list[Any]:
    """[count, mean, median, 90th percentile] of durations in minutes."""
    if not minutes:
        return [0, None, None, None]
    a = np.asarray(minutes, dtype=float)
    return [int(a.size), float(a.mean()), float(np.median(a)), float(np.percentile(a, 90))]


def verdict(share: float | None, target: float) -> str:
    """達成 (met) / 未達成 (not met) / — (no visitor called)."""
    if share is None:
        return "—"
    return "達成" if share >= target else "未達成"


# -- the report -------------------------------------------------------------------------------

MINUTES: Final = "minutes"
SHARE: Final = "share"


class _Days:
    """Weekday and local midnight of a business day, cached (a month has at most 31 days, a year 366)."""

    def __init__(self, timezone: str = "Asia/Tokyo") -> None:
        self.zone = ZoneInfo(timezone)
        self._weekday: dict[str, int] = {}
        self._midnight: dict[str, int] = {}

    def weekday(self, day: str) -> int:
        if day not in self._weekday:
            self._weekday[day] = dt.date(int(day[:4]), int(day[4:6]), int(day[6:])).weekday()
        return self._weekday[day]

    def hour(self, day: str, ms: int) -> int:
        """The local hour of ``ms`` on business day ``day`` (counted from its midnight: no datetime per visit)."""
        if day not in self._midnight:
            date = dt.date(int(day[:4]), int(day[4:6]), int(day[6:]))
            self._midnight[day] = int(dt.datetime.combine(date, dt.time(0), self.zone).timestamp() * 1000)
        return (ms - self._midnight[day]) // 3_600_000


class Collected:
    """The records of a report, folded in as they are read: visits as compact :class:`Visit` objects
    (the year's raw records are never all held), task and booking records as they are."""

    def __init__(self, day: str | None = None) -> None:
        self.day = day  # only this business day's records (a day's report), else all
        self.visits: list[Visit] = []
        self.tasks: list[Mapping[str, Any]] = []
        self.bookings: list[Mapping[str, Any]] = []

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            if self.day is not None and record.get("day") != self.day:
                continue
            kind = record.get("kind")
            if kind == "visit":
                self.visits.append(visit_of(record))
            elif kind == "task":
                self.tasks.append(record)
            elif kind == "booking":
                self.bookings.append(record)


def build_report(records: Iterable[Mapping[str, Any]] | Collected, ctx: ReportContext, *, title: str, period: str,
                 scope: str, offices: Sequence[str]) -> Report:
    """The report of ``records`` (visit, task and booking records of ``offices`` in the period)."""
    if isinstance(records, Collected):
        collected = records
    else:
        collected = Collected()
        collected.add(records)
    visits = collected.visits
    tables = [
        _summary(visits, ctx, offices),
        _by_procedure(visits, ctx),
        _by_day(visits, ctx),
        _by_hour(visits, ctx),
        _by_counter(visits, ctx),
        _handovers(visits, ctx),
        _bookings(visits, collected.bookings, ctx, offices),
        _back_office(collected.tasks, ctx),
        _estimates(visits, ctx),
    ]
    return Report(title=title, period=period, scope=scope, tables=tables)


WAIT_HEADERS: Final = ["待ち人数（呼出済）", "平均待ち時間（分）", "待ち時間 中央値（分）", "待ち時間 90%値（分）",
                       "最長待ち時間（分）"]


def _wait_columns(table_start: int) -> dict[int, str]:
    """Formats of the wait columns starting at ``table_start`` (count, 4 × minutes, share)."""
    return {table_start + 1: MINUTES, table_start + 2: MINUTES, table_start + 3: MINUTES, table_start + 4: MINUTES,
            table_start + 5: SHARE}


def _summary(visits: list[Visit], ctx: ReportContext, offices: Sequence[str]) -> Table:
    within = f"{ctx.target_wait_minutes:g}分以内の割合"
    goal = f"目標（{ctx.target_wait_minutes:g}分以内 {ctx.target_share:.0%}）"
    table = Table("概要", "概要（事業所別・市全体）",
                  ["事業所", "来庁者数", "対応完了", "不在", "取消", "時間切れ（未完了）", "引き継ぎ件数", *WAIT_HEADERS,
                   within, goal, "見込み平均絶対誤差（分）"])
    table.formats = {**_wait_columns(7), 14: MINUTES}
    groups: list[tuple[str, list[Visit]]] = [(ctx.office(o), [v for v in visits if v.office == o]) for o in offices]
    if len(offices) > 1:
        groups.append((CITY, visits))
    for name, group in groups:
        states = Counter(v.state for v in group)
        waits = wait_figures([v.wait for v in group if v.wait is not None], ctx.target_wait_minutes)
        errors = [abs(v.wait - v.estimate) for v in group if v.wait is not None and v.estimate is not None]
        table.rows.append([name, len(group), states["done"], states["no_show"], states["cancelled"], states["expired"],
                           sum(len(v.handovers) for v in group), *waits, verdict(waits[5], ctx.target_share),
                           float(np.mean(errors)) if errors else None])
    table.chart = Chart("column", 0, (1,), "来庁者数")
    return table


def _by_procedure(visits: list[Visit], ctx: ReportContext) -> Table:
    table = Table("手続別", "手続別の来庁者・待ち時間・窓口対応時間",
                  ["事業所", "手続", "来庁者数", "対応完了", "不在", "取消", "時間切れ", *WAIT_HEADERS,
                   f"{ctx.target_wait_minutes:g}分以内の割合", "目標", "窓口対応件数", "平均対応時間（分）",
                   "対応時間 中央値（分）", "対応時間 90%値（分）"])
    table.formats = {**_wait_columns(7), 15: MINUTES, 16: MINUTES, 17: MINUTES}
    groups: dict[tuple[str, str], list[Visit]] = defaultdict(list)
    service: dict[tuple[str, str], list[float]] = defaultdict(list)
    for v in visits:
        groups[(v.office, v.procedure)].append(v)
        for procedure, _counter, minutes in v.segments:
            service[(v.office, procedure)].append(minutes)
    for key in sorted(set(groups) | set(service)):
        group = groups.get(key, [])
        office, procedure = key
        states = Counter(v.state for v in group)
        waits = wait_figures([v.wait for v in group if v.wait is not None], ctx.target_wait_minutes)
        table.rows.append([ctx.office(office), ctx.procedure(office, procedure), len(group), states["done"],
                           states["no_show"], states["cancelled"], states["expired"], *waits,
                           verdict(waits[5], ctx.target_share), *time_figures(service.get(key, []))])
    table.chart = Chart("bar", 1, (2,), "手続別の来庁者数")
    return table


def _by_day(visits: list[Visit], ctx: ReportContext) -> Table:
    days = _Days()
    table = Table("日別", "日別の来庁者数と待ち時間",
                  ["日付", "曜日", "来庁者数", "対応完了", *WAIT_HEADERS, f"{ctx.target_wait_minutes:g}分以内の割合"])
    table.formats = _wait_columns(4)
    groups: dict[str, list[Visit]] = defaultdict(list)
    for v in visits:
        groups[v.day].append(v)
    for day in sorted(groups):
        group = groups[day]
        waits = wait_figures([v.wait for v in group if v.wait is not None], ctx.target_wait_minutes)
        table.rows.append([f"{day[:4]}-{day[4:6]}-{day[6:]}", WEEKDAYS_JA[days.weekday(day)], len(group),
                           sum(v.state == "done" for v in group), *waits])
    table.chart = Chart("column", 0, (2,), "日別の来庁者数")
    return table


def _by_hour(visits: list[Visit], ctx: ReportContext) -> Table:
    days = _Days(ctx.timezone)
    counts: dict[int, list[int]] = defaultdict(lambda: [0] * 7)
    for v in visits:
        counts[days.hour(v.day, v.issued_at)][days.weekday(v.day)] += 1
    table = Table("時間帯別", "時間帯別・曜日別の来庁者数（発券時刻）",
                  ["時間帯", *(f"{d}曜日" for d in WEEKDAYS_JA), "合計"])
    for hour in range(min(counts, default=8), max(counts, default=17) + 1):
        row = counts.get(hour, [0] * 7)
        table.rows.append([f"{hour:02d}:00–", *row, sum(row)])
    table.chart = Chart("column", 0, (8,), "時間帯別の来庁者数")
    return table


def _by_counter(visits: list[Visit], ctx: ReportContext) -> Table:
    table = Table("窓口別", "窓口別の対応件数と対応時間",
                  ["事業所", "窓口", "対応件数", "平均対応時間（分）", "対応時間 中央値（分）", "対応時間 90%値（分）"])
    table.formats = {3: MINUTES, 4: MINUTES, 5: MINUTES}
    service: dict[tuple[str, str], list[float]] = defaultdict(list)
    for v in visits:
        for _procedure, counter, minutes in v.segments:
            service[(v.office, counter)].append(minutes)
    for (office, counter) in sorted(service, key=lambda k: (k[0], k[1].zfill(4))):
        table.rows.append([ctx.office(office), ctx.counter(office, counter), *time_figures(service[(office, counter)])])
    table.chart = Chart("column", 1, (2,), "窓口別の対応件数")
    return table


def _handovers(visits: list[Visit], ctx: ReportContext) -> Table:
    table = Table("引き継ぎ", "市職員等への引き継ぎ（理由区分別）", ["事業所", "理由区分", "引き継ぎ元", "引き継ぎ先", "件数"])
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for v in visits:
        for origin, to, category in v.handovers:
            counts[(v.office, category or "", origin, to)] += 1
    for (office, category, origin, to), n in sorted(counts.items()):
        table.rows.append([ctx.office(office), ctx.category(category), ctx.procedure(office, origin),
                           ctx.procedure(office, to), n])
    if table.rows:
        table.chart = Chart("pie", 1, (4,), "引き継ぎの理由区分")
    return table


def _bookings(visits: list[Visit], bookings: list[Mapping[str, Any]], ctx: ReportContext,
              offices: Sequence[str]) -> Table:
    """Bookings by their slot's day: made (every final booking record), checked in (on time, late),
    no-show, cancelled. A late check-in is a visit whose ticket came as ``late`` (a walk-in)."""
    table = Table("予約", "予約（予約日の集計・予約来庁者）",
                  ["事業所", "予約数", "来庁（時間内）", "来庁（遅刻）", "不在", "取消", "予約来庁者の受付", "うち遅刻受付"])
    for office in offices:
        mine = [b for b in bookings if b.get("office") == office]
        states = Counter(b.get("state") for b in mine)
        channels = Counter(v.channel for v in visits if v.office == office)
        late = min(channels["late"], states["checked_in"]) if mine else 0
        table.rows.append([ctx.office(office), len(mine), states["checked_in"] - late, late, states["no_show"],
                           states["cancelled"], channels["booked"] + channels["late"], channels["late"]])
    return table


def _back_office(tasks: list[Mapping[str, Any]], ctx: ReportContext) -> Table:
    table = Table("事務処理", "交付前準備・交付後処理（1件あたりの処理時間）",
                  ["事業所", "作業", "手続", "件数", "平均処理時間（分）", "処理時間 中央値（分）", "処理時間 90%値（分）"])
    table.formats = {4: MINUTES, 5: MINUTES, 6: MINUTES}
    times: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    counts: Counter[tuple[str, str, str]] = Counter()
    for t in tasks:
        if t.get("state", "done") != "done":
            continue  # a cancelled card was not prepared
        key = (str(t.get("office")), str(t.get("task_kind", "")), str(t.get("procedure", "")))
        counts[key] += 1
        claimed, done = number_or_none(t.get("claimed_at")), number_or_none(t.get("done_at"))
        if claimed is not None and done is not None:
            times[key].append((done - claimed) / MINUTE_MS)
    for key in sorted(counts):
        office, kind, procedure = key
        figures = time_figures(times.get(key, []))
        table.rows.append([ctx.office(office), TASK_KINDS_JA.get(kind, kind), ctx.procedure(office, procedure),
                           counts[key], *figures[1:]])
    return table


def _estimates(visits: list[Visit], ctx: ReportContext) -> Table:
    tolerance = ctx.tolerance_minutes
    table = Table("見込み精度", "発券時に示した待ち時間の見込みと実際の待ち時間",
                  ["事業所", "手続", "件数", "平均絶対誤差（分）", "平均の偏り（実際−見込み、分）",
                   f"誤差±{tolerance:g}分以内の割合"])
    table.formats = {3: MINUTES, 4: MINUTES, 5: SHARE}
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    for v in visits:
        if v.wait is not None and v.estimate is not None:
            errors[(v.office, v.procedure)].append(v.wait - v.estimate)
    for (office, procedure), errs in sorted(errors.items()):
        a = np.asarray(errs)
        table.rows.append([ctx.office(office), ctx.procedure(office, procedure), int(a.size), float(np.abs(a).mean()),
                           float(a.mean()), float((np.abs(a) <= tolerance).mean())])
    return table
