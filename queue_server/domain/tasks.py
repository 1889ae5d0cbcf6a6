"""Back-office tasks: card preparation before a visit, post-issuance work after it.

A procedure may declare back-office ``stages`` (configuration): ``prepare`` — the card is found among
the stored ones, checked and set up before it can be handed over (交付前準備, about 15 minutes a card
in Kurume's figures) — and ``post`` — the issue is entered in the card management system and the
receipts sorted (交付後処理, about 10 minutes). Each stage is a task with its own queue and measured
duration:

- a same-day ticket of a procedure with ``prepare`` creates its preparation task as it is issued, and
  the ticket is *held*: it keeps its place in line but is not callable (``policy.choose_next`` passes
  over it) until the task is done;
- a booked visit's preparation task is created with the booking, due ``PREPARE_AHEAD_MS`` before its
  slot; a branch's card is prepared by the office that keeps the cards and marked for sending;
- finishing a visit of a procedure with ``post`` at the counter creates its post-issuance task.

Task life: ``open → claimed → done``, ``claimed → open`` (given back), ``open|claimed → cancelled``
(the visitor left, or the day closed out a held ticket). The Lua step (``store/lua/tasks.lua``) carries
the same rules out atomically; :func:`work_key` is the order of the work list and of claim-next there.

Plain Python: no aiohttp, Redis or file I/O.
"""

from __future__ import annotations

import datetime as dt
import enum
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .hours import OpeningHours
from .model import MAX_PRIORITY, Conflict

STAGES: Final = ("prepare", "post")
"""The back-office stages a procedure may declare (``stages = [...]`` in its configuration)."""
PREPARE_AHEAD_MS: Final = 30 * 60_000
"""A booked card is due prepared this long before its slot starts: time to bring it to the counter."""
SEND_LOOKBACK_DAYS: Final = 14
"""How far before a branch's slot to look for the preparing office's last open day (long holidays)."""
MEASURED_ENOUGH: Final = 5
"""Measured tasks of a kind and procedure needed before their median replaces the configured prior."""


class TaskKind(enum.StrEnum):
    """Which back-office stage a task is."""

    PREPARE = "prepare"
    POST = "post"


class TaskState(enum.StrEnum):
    """Where a task is: open (nobody on it), claimed (someone is on it), done, cancelled."""

    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"


class WorkGroup(enum.IntEnum):
    """The three parts of the work list, in the order they should be done."""

    VISITOR_WAITING = 0
    """Preparation for a visitor already in the lobby: every minute of it is their wait."""
    DUE = 1
    """Preparation due at a time (a booked slot, a card to send): soonest deadline first."""
    POST = 2
    """Post-issuance work: the visitor has gone; it must be done, but nobody waits for it."""


# Which states each task operation may start from; lua/tasks.lua checks the same table.
TASK_ALLOWED_FROM: Final[Mapping[str, frozenset[TaskState]]] = {
    "claim": frozenset({TaskState.OPEN}),
    "finish": frozenset({TaskState.CLAIMED}),
    "return": frozenset({TaskState.CLAIMED}),
    "cancel": frozenset({TaskState.OPEN, TaskState.CLAIMED}),
}
_VERBS: Final = {"claim": "claim", "finish": "finish", "return": "give back", "cancel": "cancel"}
_WHY: Final = {
    ("finish", TaskState.OPEN): "nobody has claimed it; claim it first",
    ("return", TaskState.OPEN): "nobody has claimed it",
    ("claim", TaskState.CLAIMED): "someone else is already on it",
    ("claim", TaskState.DONE): "it is already done",
    ("finish", TaskState.DONE): "it is already done",
    ("return", TaskState.DONE): "it is already done",
}


def task_transition_error(operation: str, task_id: str, state: TaskState | str) -> Conflict:
    """The 409 explaining why ``operation`` is impossible for a task in ``state`` (the state named)."""
    state = TaskState(state)
    allowed = " or ".join(sorted(s.value for s in TASK_ALLOWED_FROM[operation]))
    why = _WHY.get((operation, state), f"only a {allowed} task can be")
    return Conflict(f"cannot {_VERBS[operation]} task {task_id}: it is {state.value} — {why}",
                    code="invalid_transition")


GROUP_WEIGHT: Final = 10**14
"""Score distance between the parts of the work list: above any time in ms (and the priority steps)."""
PRIORITY_WEIGHT: Final = 10**13
"""Score distance between two priority classes of waiting visitors: above any time in ms."""


def work_score(task: Mapping[str, Any], visitor: Mapping[str, Any] | None) -> int:
    """The place of an open or claimed task in the work list as one number (lower first); the store keeps
    open tasks sorted by it (``O taskq``), so claim-next takes the first whatever the backlog.

    ``visitor`` is the task's ticket when its visitor waits in the lobby for this card now (a held
    ticket), else None. Preparation for waiting visitors comes first: a priority visitor's card first,
    then the longest waiting (by issue time, which also orders the visitors of different offices one
    back office prepares for); then preparation by deadline (``due_at``; without one, by creation);
    then post-issuance work, oldest first. Scores stay below 2**53 (exact in Redis and Lua).
    """
    if task.get("kind") == TaskKind.POST:
        return WorkGroup.POST * GROUP_WEIGHT + int(task["created_at"])
    if visitor is not None:
        return (MAX_PRIORITY - int(visitor.get("priority") or 0)) * PRIORITY_WEIGHT + int(visitor["issued_at"])
    return WorkGroup.DUE * GROUP_WEIGHT + int(task.get("due_at") or task["created_at"])


def work_key(task: Mapping[str, Any], visitor: Mapping[str, Any] | None) -> tuple[int, str]:
    """The sort key of a task in the work list: :func:`work_score`, ties by id as the store's sorted set
    orders its members (as text)."""
    return work_score(task, visitor), str(task["id"])


def work_group(score: int) -> WorkGroup:
    """Which part of the work list a :func:`work_score` is in."""
    return WorkGroup(min(score // GROUP_WEIGHT, WorkGroup.POST))


def preparation_fields(*, procedure: str, office: str, work_office: str, slot_start: int,
                       sending: tuple[str, int] | None = None) -> dict[str, Any]:
    """The fields of a booked visit's preparation task (``lib.create_task`` in Lua): due
    ``PREPARE_AHEAD_MS`` before the slot. A card for another office than the one preparing it is marked
    for sending (``send_to``) with the day it must leave (``sending``: that day and the time it must be
    ready by, see :func:`sending_day`), and is due by then."""
    fields: dict[str, Any] = {"kind": TaskKind.PREPARE.value, "procedure": procedure,
                              "due_at": slot_start - PREPARE_AHEAD_MS, "work_office": work_office}
    if work_office != office:
        fields["send_to"] = office
        if sending is not None:
            fields["leave_day"], ready_by = sending
            fields["due_at"] = min(fields["due_at"], ready_by)
    return fields


def sending_day(hours: OpeningHours, slot_day: dt.date, zone: dt.tzinfo) -> tuple[str, int] | None:
    """The day a card for a branch slot on ``slot_day`` must leave the preparing office (its last open day
    before the slot: cards go out with the day's delivery) as ``YYYYMMDD``, and its closing time (ms),
    by which the card must be ready; None when that office is not open within two weeks before."""
    for back in range(1, SEND_LOOKBACK_DAYS + 1):
        day = slot_day - dt.timedelta(days=back)
        if (open_hours := hours.for_date(day)) is not None:
            closes = dt.datetime.combine(day, open_hours.closes, tzinfo=zone)
            return day.strftime("%Y%m%d"), int(closes.timestamp() * 1000)
    return None


@dataclass(frozen=True, slots=True)
class Backlog:
    """Open back-office work of one kind and how long it takes at the measured rate."""

    tasks: int
    minutes: float
    """Work minutes: the sum of each task's expected duration (measured median, else the prior)."""
    hours_with_people: float | None
    """Elapsed hours with the planned back-office people on it (None with nobody planned)."""

    def to_dict(self) -> dict[str, Any]:
        """As the API shows it."""
        return {"tasks": self.tasks, "minutes": round(self.minutes, 1),
                "hours_with_people": None if self.hours_with_people is None else round(self.hours_with_people, 2)}


def task_minutes(kind: str, procedure: str, measured: Mapping[tuple[str, str], Sequence[float]],
                 priors: Mapping[tuple[str, str], float]) -> float:
    """Expected minutes of one task: the median of its measured ones once there are enough, else the prior."""
    times = measured.get((kind, procedure), ())
    if len(times) >= MEASURED_ENOUGH:
        return float(statistics.median(times))
    return float(priors.get((kind, procedure), 0.0))


def backlog(tasks: Iterable[Mapping[str, Any]], measured: Mapping[tuple[str, str], Sequence[float]],
            priors: Mapping[tuple[str, str], float], people: int) -> Backlog:
    """The backlog of ``tasks`` (all of one part of the work): count, work minutes, elapsed hours."""
    count, minutes = 0, 0.0
    for task in tasks:
        count += 1
        minutes += task_minutes(str(task["kind"]), str(task["procedure"]), measured, priors)
    return Backlog(tasks=count, minutes=minutes, hours_with_people=minutes / 60 / people if people else None)


def measured_minutes(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """Measured task durations (claimed → done) in minutes per (kind, procedure), from ``O tasktimes``."""
    out: dict[tuple[str, str], list[float]] = {}
    for r in records:
        claimed, done = r.get("claimed_at"), r.get("done_at")
        if claimed is None or done is None or done < claimed:
            continue
        out.setdefault((str(r["kind"]), str(r["procedure"])), []).append((done - claimed) / 60_000)
    return out
