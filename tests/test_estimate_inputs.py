"""From the live state to the estimator's input: counters' lunch breaks lengthen the waits that span them."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from queue_server.clock import Clock
import pytest

from queue_server.config import ConfigError, parse_config
from queue_server.domain.model import CallingOrder
from queue_server.domain.state import OfficeState
from queue_server.domain.service_model import ServiceModel, Stage
from queue_server.estimates import EstimateInputs, forecast_in_worker

TOKYO = dt.timezone(dt.timedelta(hours=9))


def office(breaks: list[str]):  # noqa: ANN201 - test helper
    return parse_config({"offices": [{
        "id": "o", "name": "o", "hours": {"week": {"tue": "08:30-17:15"}},
        "procedures": [{"id": "pickup", "name": "カード交付", "number": {"prefix": "P"}, "service_minutes": 10}],
        "counters": [{"id": "1", "procedures": ["pickup"], "breaks": breaks},
                     {"id": "2", "procedures": ["pickup"]}],
    }]}, Path("o.toml"))


def live(at: dt.time, counters: dict[str, str], *, waiting: int) -> tuple[Clock, OfficeState]:
    """A clock at ``at`` on Tuesday 2026-11-24 and the office's live state: counters' status, pickups waiting."""
    moment = dt.datetime.combine(dt.date(2026, 11, 24), at, TOKYO)
    clock = Clock("Asia/Tokyo", offset_ms=int(moment.timestamp() * 1000) - time.time_ns() // 1_000_000)
    state = OfficeState(office="o", seq=0, day="20261124", calling_order=CallingOrder.PRIORITY_THEN_WAITED,
                        counters={c: {"id": c, "status": status} for c, status in counters.items()})
    for i in range(1, waiting + 1):
        state.waiting[f"P{i:03d}"] = {"number": f"P{i:03d}", "procedure": "pickup", "state": "waiting",
                                      "seq": i, "order": i, "priority": 0, "issued_at": clock.now_ms()}
    return clock, state


def test_a_lunch_break_of_one_counter_lengthens_the_estimate() -> None:
    clock, state = live(dt.time(11, 50), {"1": "open", "2": "open"}, waiting=12)  # ten minutes before lunch
    results = {}
    for name, breaks in (("no break", []), ("lunch", ["12:00-13:00"])):
        config = office(breaks)
        inputs = EstimateInputs.read(config.offices["o"], state, [], config, clock)
        results[name] = forecast_in_worker(inputs)["tickets"]["P012"]["median_minutes"]
    noon = int(dt.datetime(2026, 11, 24, 12, 0, tzinfo=TOKYO).timestamp() * 1000)
    assert inputs.breaks(config.offices["o"].counters["1"]) == ((noon, noon + 3_600_000),)
    # 12 waiting, two 10-minute counters: the last is called after ~55 min; counter 1 away 12:00–13:00
    # leaves one counter for most of that time.
    assert results["no break"] < 70
    assert results["lunch"] > results["no break"] + 15


def test_a_counter_paused_during_its_lunch_break_is_expected_back_when_the_break_ends() -> None:
    # Counter 1's staff went to lunch and pressed pause; counter 2 is closed.
    clock, state = live(dt.time(12, 10), {"1": "paused", "2": "closed"}, waiting=3)
    config = office(["12:00-13:00"])
    forecast = forecast_in_worker(EstimateInputs.read(config.offices["o"], state, [], config, clock))
    # Counter 1 calls again at 13:00, in 50 minutes; the third waits two 10-minute visits more.
    first, third = forecast["tickets"]["P001"], forecast["tickets"]["P003"]
    assert 49 <= first["median_minutes"] <= 52 and not first["past_closing"]
    assert 65 <= third["median_minutes"] <= 80 and not third["past_closing"]


def booking_office(**estimates: float):  # noqa: ANN201 - test helper
    """One pickup counter; pickups take bookings in 30-minute slots; ``[estimates]`` priors."""
    return parse_config({
        "estimates": estimates,
        "offices": [{
            "id": "o", "name": "o", "hours": {"week": {"tue": "08:30-17:15"}},
            "bookings": {"slot_minutes": 30, "late_minutes": 10},
            "procedures": [{"id": "pickup", "name": "カード交付", "number": {"prefix": "P"}, "service_minutes": 10,
                            "prep_minutes": 15, "post_minutes": 10, "booking": {"capacity": 4}}],
            "counters": [{"id": "1", "procedures": ["pickup"]}],
        }]}, Path("o.toml"))


def at(hh: int, mm: int) -> int:
    """Epoch ms of ``hh:mm`` on Tuesday 2026-11-24 in Tokyo."""
    return int(dt.datetime(2026, 11, 24, hh, mm, tzinfo=TOKYO).timestamp() * 1000)


def booking(i: int, state: str, slot: tuple[int, int], *, days_back: int = 0, checked_in: int | None = None,
            task: str | None = None) -> dict[str, object]:
    """A booking ``days_back`` days before Tuesday 2026-11-24, as the estimate service reads it from the store."""
    start = at(*slot) - days_back * 86_400_000
    day = (dt.date(2026, 11, 24) - dt.timedelta(days=days_back)).strftime("%Y%m%d")
    return {"id": str(i), "procedure": "pickup", "day": day, "state": state, "slot_start": start,
            "slot_end": start + 30 * 60_000, "changed_at": checked_in if checked_in is not None else start - 86_400_000,
            **({"task": task} if task else {})}


def test_bookings_not_yet_checked_in_are_expected_with_the_learned_show_rate_and_lateness() -> None:
    config = booking_office(booking_no_show_prior=0.1, booking_lateness_minutes_prior=4)
    clock, state = live(dt.time(11, 50), {"1": "open"}, waiting=1)
    state.counters["1"]["ticket"] = "20261124|P900"
    state.active["20261124|P900"] = {"number": "P900", "procedure": "pickup", "state": "serving",
                                     "called_at": at(11, 49), "started_at": at(11, 50)}
    # Today: four booked for 12:00, one checked in already (not expected), one cancelled.
    today = [booking(i, "booked", (12, 0)) for i in range(4)]
    today += [booking(4, "checked_in", (11, 30), checked_in=at(11, 33)), booking(5, "cancelled", (12, 0))]
    # Last week: 20 visitors checked in 2 minutes late, 20 never came.
    week = [booking(10 + i, "checked_in", (10, 0), days_back=7, checked_in=at(10, 2) - 7 * 86_400_000)
            for i in range(20)]
    week += [booking(40 + i, "no_show", (10, 0), days_back=7) for i in range(20)]
    inputs = EstimateInputs.read(config.offices["o"], state, [], config, clock, bookings=today, booking_history=week)
    behaviour = inputs.behaviour()
    # Last week's weigh 0.5 each (half-life 7 days), today's check-in 1: 10 no-shows in 21, with
    # the prior worth 20 bookings at 10 %. Lateness: 2 min (10 × 0.5) and 3 min (1), shrunk to 0.
    assert behaviour.n == 41
    assert behaviour.show_probability == pytest.approx(1 - (20 * 0.1 + 10) / (20 + 21))
    assert behaviour.lateness_mean == pytest.approx((10 * 2 + 3) / (20 + 11))
    expected = inputs.expected(behaviour)
    assert [e.at for e in expected] == [at(12, 0)] * 4
    assert all(e.late_after_minutes == 10 and e.slot_end == at(12, 30) and e.spread_minutes == behaviour.lateness_sd
               for e in expected)
    # The walk-in waiting now is called at 12:00 when the counter frees up; a ticket issued now
    # waits behind the booked visitors who came by then (their slot has started): about 3 of 4.
    with_bookings = forecast_in_worker(inputs)["procedures"]["pickup"]["median_minutes"]
    without = forecast_in_worker(EstimateInputs.read(config.offices["o"], state, [], config, clock))
    assert 10 < without["procedures"]["pickup"]["median_minutes"] < 25
    assert with_bookings >= without["procedures"]["pickup"]["median_minutes"] + 20


def test_held_tickets_and_the_back_office_tasks_reach_the_estimate() -> None:
    config = booking_office()
    clock, state = live(dt.time(11, 0), {"1": "open"}, waiting=2)
    # P001 waits for its card: its task is open, nobody is on back-office work, so the
    # configured one person (default) will do it: ready in ~15 min. P002 is called at once.
    state.waiting["P001"].update(prep="pending", task="8")
    state.tasks = {"8": {"id": "8", "kind": "prepare", "procedure": "pickup", "state": "open", "created_at": at(10, 59),
                         "ticket": "P001"}}
    measured = [{"kind": "prepare", "procedure": "pickup", "claimed_at": at(10, 0) - k * 60_000,
                 "done_at": at(10, 30) - k * 60_000, "by": "bo"} for k in range(40)]  # 30 minutes each
    inputs = EstimateInputs.read(config.offices["o"], state, [], config, clock, task_records=measured)
    snap = inputs.snapshot(ServiceModel.learn(config.offices["o"].procedures.values(), inputs.measured()))
    assert snap.back_office.people == 1
    assert [(t.id, t.ticket) for t in snap.back_office.tasks] == [("8", "P001")]
    assert [t.prep_pending for t in snap.waiting] == [True, False]
    assert snap.service.stage("pickup", Stage.PREP).mean_minutes == pytest.approx(30, rel=0.15)
    tickets = forecast_in_worker(inputs)["tickets"]
    # Learned: preparations take about 30 min here (the prior said 15).
    assert tickets["P002"]["median_minutes"] == pytest.approx(0.0, abs=0.1)
    assert 20 < tickets["P001"]["median_minutes"] < 40
    # Somebody claimed it 25 minutes ago: about 5 minutes left, and one person on the work.
    state.tasks["8"].update(state="claimed", claimed_by="bo", claimed_at=at(10, 35))
    inputs = EstimateInputs.read(config.offices["o"], state, [], config, clock, task_records=measured)
    assert forecast_in_worker(inputs)["tickets"]["P001"]["median_minutes"] < 15


def test_the_booking_priors_are_checked() -> None:
    with pytest.raises(ConfigError) as raised:
        booking_office(booking_no_show_prior=1.5, booking_lateness_minutes_prior=0)
    text = str(raised.value)
    assert "estimates.booking_no_show_prior" in text and "estimates.booking_lateness_minutes_prior" in text
