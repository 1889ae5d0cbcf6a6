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
        "id": "o", "name": "o",
        "procedures": [{"id": "pickup", "name": "カード交付", "number": {"prefix": "P"}, "service_minutes": 10}],
        "counters": [{"id": "1", "procedures": ["pickup"], "breaks": breaks},
                     {"id": "2", "procedures": ["pickup"]}],
    }]}, Path("o.toml"))


def test_a_lunch_break_of_one_counter_lengthens_the_estimate() -> None:
    at = dt.datetime(2026, 11, 24, 11, 50, tzinfo=TOKYO)  # a Tuesday, ten minutes before lunch
    clock = Clock("Asia/Tokyo", offset_ms=int(at.timestamp() * 1000) - time.time_ns() // 1_000_000)
    state = OfficeState(office="o", seq=0, day="20261124", calling_order=CallingOrder.PRIORITY_THEN_WAITED,
                        counters={"1": {"id": "1", "status": "open"}, "2": {"id": "2", "status": "open"}})
    for i in range(1, 13):
        state.waiting[f"P{i:03d}"] = {"number": f"P{i:03d}", "procedure": "pickup", "state": "waiting",
                                      "seq": i, "order": i, "priority": 0, "issued_at": clock.now_ms()}

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
