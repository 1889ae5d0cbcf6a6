"""A month of office days played through the real store steps with a fake clock, for the archive tests.

Every visitor's fate is planned first (issue, call, start, finish — or no-show, cancel, hand-over to
city staff, or left open until the day's close-out), counters taking visitors as they come free; the
plan is then run in time order against Redis through :class:`QueueStore`, each step at its planned
time. The plan is also what the tests compute the expected figures from, independently of the
archive and the report code.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any, Final

from queue_server.clock import Clock
from queue_server.store.redis_store import QueueStore

TOKYO: Final = dt.timezone(dt.timedelta(hours=9))
MINUTE: Final = 60_000
FREE_TEXT: Final = "山田太郎様 090-1234-5678 より電話あり"
"""A hand-over reason as staff might type it: it must never reach the archive."""
OFFICE: Final = "main"
WALK_IN_COUNTERS: Final = ("1", "2", "3")
CITY_COUNTER: Final = "9"


class FakeClock(Clock):
    """The office clock, read from ``t`` (epoch ms), which the simulation sets before each step."""

    def __init__(self, t: int = 0) -> None:
        super().__init__("Asia/Tokyo")
        self.t = t

    def now_ms(self) -> int:
        return self.t


@dataclass(slots=True)
class Visitor:
    """One planned visit and, once run, its number."""

    day: str
    procedure: str
    issue: int
    fate: str                      # done | no_show | cancel | handover | expire
    priority: int = 0
    estimate: float | None = None
    counter: str = ""
    call: int | None = None
    start: int | None = None
    end: int | None = None         # finish, no-show, cancel or hand-over time
    category: str | None = None
    city_call: int | None = None
    city_start: int | None = None
    city_finish: int | None = None
    number: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def wait(self) -> float | None:
        return None if self.call is None else (self.call - self.issue) / MINUTE


def weekdays(year: int, month: int) -> list[dt.date]:
    """The weekdays (Mon–Fri) of a month."""
    day, days = dt.date(year, month, 1), []
    while day.month == month:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def plan_month(year: int, month: int, per_day: int = 18, seed: int = 7) -> list[Visitor]:
    """Visitors of every weekday of the month; the last day's last visitor is left open at closing."""
    rng = random.Random(seed)
    visitors: list[Visitor] = []
    days = weekdays(year, month)
    for date in days:
        opening = int(dt.datetime.combine(date, dt.time(9, 0), TOKYO).timestamp() * 1000)
        free = {c: opening for c in (*WALK_IN_COUNTERS, CITY_COUNTER)}
        arrivals = sorted(opening + rng.randrange(0, 6 * 60) * MINUTE + rng.randrange(0, 60_000) for _ in range(per_day))
        for i, issue in enumerate(arrivals):
            fate = rng.choices(("done", "no_show", "cancel", "handover", "expire"), (70, 8, 8, 12, 2))[0]
            v = Visitor(day=date.strftime("%Y%m%d"), procedure=rng.choice(("application", "pickup")), issue=issue,
                        fate=fate, priority=rng.choice((0, 0, 0, 1)),
                        estimate=rng.choice((None, 5, 10, 20, 35)))
            if date == days[-1] and i == len(arrivals) - 1:
                v.fate = "expire"
            visitors.append(v)
            if v.fate == "expire":
                continue
            if v.fate == "cancel":
                v.end = issue + rng.randrange(2, 40) * MINUTE
                continue
            v.counter = min(WALK_IN_COUNTERS, key=lambda c: free[c])
            v.call = max(issue + rng.randrange(1, 50) * MINUTE, free[v.counter] + 1000)
            if v.fate == "no_show":
                v.end = v.call + 6 * MINUTE
                free[v.counter] = v.end
                continue
            v.start = v.call + rng.randrange(30_000, 120_000)
            v.end = v.start + rng.randrange(4, 25) * MINUTE + rng.randrange(0, 60_000)
            free[v.counter] = v.end
            if v.fate == "handover":
                v.category = rng.choice(("review", "pin", "documents"))
                v.city_call = max(v.end + rng.randrange(1, 20) * MINUTE, free[CITY_COUNTER] + 1000)
                v.city_start = v.city_call + 45_000
                v.city_finish = v.city_start + rng.randrange(3, 15) * MINUTE
                free[CITY_COUNTER] = v.city_finish
    return visitors


async def run(store: QueueStore, clock: FakeClock, visitors: list[Visitor]) -> None:
    """Run the planned steps in time order (ending steps before calls at the same instant)."""
    actions: list[tuple[int, int, int, Any]] = []

    def at(t: int, rank: int, step: Any) -> None:
        actions.append((t, rank, len(actions), step))

    for v in visitors:
        at(v.issue, 2, lambda v=v: issue(store, v))
        if v.fate == "cancel":
            at(v.end, 0, lambda v=v: store.cancel(OFFICE, v.number))
        elif v.fate == "no_show":
            at(v.call, 1, lambda v=v: store.call_number(OFFICE, v.counter, v.number))
            at(v.call + 2 * MINUTE, 0, lambda v=v: store.counter_op("recall", OFFICE, v.counter))
            at(v.call + 4 * MINUTE, 0, lambda v=v: store.counter_op("recall", OFFICE, v.counter))
            at(v.end, 0, lambda v=v: store.counter_op("no_show", OFFICE, v.counter))
        elif v.fate in ("done", "handover"):
            at(v.call, 1, lambda v=v: store.call_number(OFFICE, v.counter, v.number))
            at(v.start, 0, lambda v=v: store.counter_op("start", OFFICE, v.counter))
            if v.fate == "done":
                at(v.end, 0, lambda v=v: store.counter_op("finish", OFFICE, v.counter))
            else:
                at(v.end, 0, lambda v=v: store.hand_over(OFFICE, v.counter, "review", FREE_TEXT, category=v.category))
                at(v.city_call, 1, lambda v=v: store.call_number(OFFICE, CITY_COUNTER, v.number))
                at(v.city_start, 0, lambda v=v: store.counter_op("start", OFFICE, CITY_COUNTER))
                at(v.city_finish, 0, lambda v=v: store.counter_op("finish", OFFICE, CITY_COUNTER))
    actions.sort(key=lambda a: a[:3])
    clock.t = actions[0][0] - MINUTE
    for counter in (*WALK_IN_COUNTERS, CITY_COUNTER):
        await store.set_counter_status(OFFICE, counter, "open")
    for t, _rank, _n, step in actions:
        clock.t = t
        await step()


async def issue(store: QueueStore, v: Visitor) -> None:
    result = await store.issue(OFFICE, v.procedure, priority=v.priority, estimate_minutes=v.estimate)
    v.number = result["ticket"]["number"]

