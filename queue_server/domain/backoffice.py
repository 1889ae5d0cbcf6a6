"""The back office's work list and backlog, computed from the live state of the offices it works for.

An office's back office does its own tasks and those of the branches that keep their cards there
(``cards_kept_at``). The list is in the order the work should be done (``tasks.work_key``), each
task with what it belongs to (ticket number, booking id); the backlog says how much work is open in
each part and how long it takes at the measured rate with the planned people.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .state import OfficeState
from .tasks import Backlog, TaskKind, backlog, measured_minutes, work_group, work_key


def waiting_visitor(state: OfficeState, task: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The task's ticket if its visitor waits in the lobby for this card now (a held ticket), else None."""
    ref = task.get("ticket")
    ticket = state.waiting.get(ref) if isinstance(ref, str) else None
    if task.get("kind") != TaskKind.PREPARE or ticket is None or ticket.get("prep") != "pending":
        return None
    return ticket


def work_view(states: Sequence[OfficeState], *, office: str, people: int,
              priors: Mapping[tuple[str, str], float], day_of: Callable[[int], str],
              now: int | None = None) -> dict[str, Any]:
    """The work list of ``office``'s back office over ``states`` (its own and its branches'), in order,
    with who is on back-office work now and the backlog figures.

    ``priors`` are the configured minutes per (kind, procedure); ``day_of`` gives the office day of a
    time (for preparation due per day). With ``now``, each task also has its age or time to deadline.
    """
    ranked: list[tuple[tuple[int, str], int, dict[str, Any]]] = []
    for i, state in enumerate(states):
        for task in state.tasks.values():
            visitor = waiting_visitor(state, task)
            key = work_key(task, visitor)
            item = {**task, "office": state.office, "group": work_group(key[0]).name.lower()}
            if visitor is not None:
                item["visitor_waiting"] = True
            if now is not None:
                item["age_minutes"] = round((now - int(task["created_at"])) / 60_000, 1)
                if task.get("due_at") is not None:
                    item["due_in_minutes"] = round((int(task["due_at"]) - now) / 60_000, 1)
            ranked.append((key, i, item))
    ranked.sort(key=lambda r: (r[0], r[1]))
    tasks = [item for _, _, item in ranked]
    measured = measured_minutes(r for state in states for r in state.task_times)

    def figures(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        result: Backlog = backlog(items, measured, priors, people)
        return result.to_dict()

    due = [t for t in tasks if t["group"] == "due"]
    by_day: dict[str, list[dict[str, Any]]] = {}
    for t in due:
        by_day.setdefault(day_of(int(t.get("due_at") or t["created_at"])), []).append(t)
    claimers = {t.get("claimed_by") for t in tasks if t["state"] == "claimed" and t.get("claimed_by")}
    return {
        "office": office,
        "offices": [s.office for s in states],
        "tasks": tasks,
        "people_on_work": len(claimers),
        "people_planned": people,
        "backlog": {
            "prepare_waiting": figures([t for t in tasks if t["group"] == "visitor_waiting"]),
            "prepare_due": figures(due),
            "prepare_due_by_day": {day: figures(items) for day, items in sorted(by_day.items())},
            "to_send": figures([t for t in due if t.get("send_to")]),
            "post": figures([t for t in tasks if t["group"] == "post"]),
            "all": figures(tasks),
        },
    }


def first_open(states: Sequence[OfficeState]) -> list[str]:
    """The offices of ``states`` with an open task, the one whose first open task comes first in the
    work list first (the order claim-next tries them in)."""
    best: dict[str, tuple[int, str]] = {}
    for state in states:
        for task in state.tasks.values():
            if task["state"] == "open":
                key = work_key(task, waiting_visitor(state, task))
                if state.office not in best or key < best[state.office]:
                    best[state.office] = key
    return sorted(best, key=best.__getitem__)
