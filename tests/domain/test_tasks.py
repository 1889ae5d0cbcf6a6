"""The back office's rules in plain Python: work order, backlog figures, refusals naming the state."""

from __future__ import annotations

import datetime as dt

from queue_server.domain.hours import DayHours, OpeningHours
from queue_server.domain.tasks import (
    PREPARE_AHEAD_MS,
    WorkGroup,
    backlog,
    measured_minutes,
    preparation_fields,
    sending_day,
    task_transition_error,
    work_group,
    work_key,
    work_score,
)


def task(task_id: int, kind: str = "prepare", created_at: int = 0, **fields: object) -> dict[str, object]:
    return {"id": str(task_id), "kind": kind, "procedure": "pickup", "created_at": created_at, **fields}


def test_waiting_visitors_come_first_then_deadlines_then_post_issuance() -> None:
    post = task(1, "post", created_at=10)
    due_late = task(2, due_at=5_000)
    due_soon = task(3, due_at=1_000)
    waiting = task(4, created_at=50)
    waiting_priority = task(5, created_at=60)
    visitors = {"4": {"priority": 0, "issued_at": 50}, "5": {"priority": 5, "issued_at": 60}}
    ordered = sorted([post, due_late, due_soon, waiting, waiting_priority],
                     key=lambda t: work_key(t, visitors.get(str(t["id"]))))
    assert [t["id"] for t in ordered] == ["5", "4", "3", "2", "1"]
    assert work_group(work_score(post, None)) == WorkGroup.POST
    # A preparation whose visitor is not in the lobby (a booking) is ordered by its deadline.
    assert work_group(work_score(due_soon, None)) == WorkGroup.DUE
    assert work_group(work_score(waiting, visitors["4"])) == WorkGroup.VISITOR_WAITING
    # Real times (ms since 1970, in this century) keep the parts apart and the scores exact in a double.
    now = 1_800_000_000_000
    latest = work_score(task(9, "post", created_at=now), None)
    assert latest < 2**53 and work_score(task(8, due_at=now), None) < work_score(task(7, "post"), None)
    assert work_score(task(6), {"priority": 0, "issued_at": now}) < work_score(task(5, due_at=0), None)


def test_the_backlog_uses_the_measured_median_once_there_are_enough_else_the_prior() -> None:
    priors = {("post", "pickup"): 10.0}
    open_tasks = [task(i, "post") for i in range(6)]
    assert backlog(open_tasks, {}, priors, people=2).to_dict() == {"tasks": 6, "minutes": 60.0, "hours_with_people": 0.5}
    records = [{"kind": "post", "procedure": "pickup", "claimed_at": 0, "done_at": m * 60_000} for m in (4, 5, 6, 7)]
    measured = measured_minutes(records)
    assert backlog(open_tasks, measured, priors, people=1).minutes == 60.0  # 4 measured: not enough yet
    measured = measured_minutes([*records, {"kind": "post", "procedure": "pickup", "claimed_at": 0, "done_at": 300_000}])
    figures = backlog(open_tasks, measured, priors, people=1)
    assert figures.minutes == 30.0 and figures.hours_with_people == 0.5  # median 5 minutes
    assert backlog(open_tasks, measured, priors, people=0).hours_with_people is None


def test_refusals_name_the_state_and_why() -> None:
    assert "it is open — nobody has claimed it; claim it first" in task_transition_error("finish", "7", "open").message
    assert "it is done — it is already done" in task_transition_error("claim", "7", "done").message
    assert "it is claimed — someone else is already on it" in task_transition_error("claim", "7", "claimed").message
    assert task_transition_error("claim", "7", "done").code == "invalid_transition"


def test_a_booked_card_is_due_before_its_slot_and_a_branch_card_is_marked_for_sending() -> None:
    own = preparation_fields(procedure="pickup", office="honcho", work_office="honcho", slot_start=10_000_000)
    assert own == {"kind": "prepare", "procedure": "pickup", "due_at": 10_000_000 - PREPARE_AHEAD_MS,
                   "work_office": "honcho"}
    branch = preparation_fields(procedure="pickup", office="mizuno", work_office="honcho", slot_start=10_000_000,
                                sending=("20261201", 5_000_000))
    assert branch["send_to"] == "mizuno" and branch["leave_day"] == "20261201" and branch["due_at"] == 5_000_000


def test_a_branch_card_leaves_on_the_preparing_office_s_last_open_day_before_the_slot() -> None:
    tokyo = dt.timezone(dt.timedelta(hours=9))
    weekdays = DayHours(dt.time(9), dt.time(16))
    hours = OpeningHours(week=(weekdays,) * 5 + (None, None))
    # A Monday slot (2026-12-07): the card leaves on Friday the 4th, ready by its closing at 16:00.
    day, ready_by = sending_day(hours, dt.date(2026, 12, 7), tokyo)
    assert day == "20261204"
    assert ready_by == int(dt.datetime(2026, 12, 4, 16, 0, tzinfo=tokyo).timestamp() * 1000)
    assert sending_day(OpeningHours(week=(None,) * 7), dt.date(2026, 12, 7), tokyo) is None
