"""From the live state to the estimator's input: counters' lunch breaks lengthen the waits that span them."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from queue_server.clock import Clock
from queue_server.config import parse_config
from queue_server.domain.model import CallingOrder
from queue_server.domain.state import OfficeState
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
