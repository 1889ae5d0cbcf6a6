"""The supervisor's day figures and the console's view, from an office state fed with events."""

from __future__ import annotations

from typing import Any

from queue_server.domain.model import CallingOrder
from queue_server.domain.state import OfficeState
from queue_server.domain.supervision import supervisor_view

MINUTE = 60_000
DAY = "20261201"


def office() -> OfficeState:
    return OfficeState.from_snapshot("main", {"seq": 0, "day": DAY, "waiting": [], "active": [], "recent": [],
                                              "paused": [], "notice": "",
                                              "counters": [{"id": "2", "status": "open", "staff": "tanaka"}]},
                                     CallingOrder.PRIORITY_THEN_WAITED)


class Events:
    """Events in sequence for one office state."""

    def __init__(self, state: OfficeState) -> None:
        self.state = state

    def __call__(self, kind: str, at: int, **fields: Any) -> None:
        self.state.apply({"type": kind, "seq": self.state.seq + 1, "at": at, "day": DAY, "office": "main", **fields})


def ticket(number: str, state: str, issued: int, **fields: Any) -> dict[str, Any]:
    return {"number": number, "procedure": "pickup", "state": state, "issued_at": issued, "day": DAY,
            "seq": int(number), "order": int(number), "priority": 0, **fields}


def test_share_called_within_target_and_estimate_error_count_each_visitors_first_call_only() -> None:
    state = office()
    event = Events(state)
    state.estimates = {"procedures": {"pickup": {"median_minutes": 10.0, "low_minutes": 5.0, "high_minutes": 20.0}}}
    event("ticket.issued", 0, ticket=ticket("300", "waiting", 0))
    state.estimates = {}   # no estimate when the second was issued: it is not compared
    event("ticket.issued", MINUTE, ticket=ticket("301", "waiting", MINUTE))
    counter = {"id": "2", "status": "open", "ticket": f"{DAY}|300", "since": 8 * MINUTE, "staff": "tanaka"}
    event("ticket.called", 8 * MINUTE, ticket=ticket("300", "called", 0, called_at=8 * MINUTE), counter=counter)
    event("ticket.recalled", 9 * MINUTE, ticket=ticket("300", "called", 0, called_at=9 * MINUTE), counter=counter)
    event("ticket.called", 41 * MINUTE, ticket=ticket("301", "called", MINUTE, called_at=41 * MINUTE),
          counter={**counter, "ticket": f"{DAY}|301"})

    view = supervisor_view(state, 30, 0.9)
    level = view["today"]["service_level"]
    assert (level["called"], level["within_target"], level["share"], level["met"]) == (2, 1, 0.5, False)
    assert level["max_wait_minutes"] == 40
    accuracy = view["today"]["estimates"]
    # 300 waited 8 minutes against 10 shown (5–20): 2 minutes shorter, inside the range.
    assert accuracy == {"compared": 1, "mean_abs_error": 2.0, "bias": -2.0, "within_range": 1.0}
    assert view["counters"][0]["ticket"]["number"] == "301" and view["counters"][0]["staff"] == "tanaka"


def test_outage_events_set_the_paused_procedures_and_the_notice_and_ending_restores_them() -> None:
    state = office()
    event = Events(state)
    event("ticket.issued", 0, ticket=ticket("300", "waiting", 0))
    state.estimates = {"tickets": {"300": {"median_minutes": 12.0}}}
    outage = {"active": True, "procedures": ["pickup"], "notice_id": "system", "notice": {"ja": "障害中"}, "since": 5}
    event("outage.started", 5, outage=outage, paused=["pickup", "application"])
    assert state.paused == {"pickup", "application"}
    view = state.ticket_view(DAY, "300")
    assert view["wait_unknown"] is True and view["estimate"] is None and view["outage_notice"] == {"ja": "障害中"}
    assert state.lobby_snapshot()["outage"] == outage
    event("outage.ended", 9, since=5, paused=["application"])
    assert state.paused == {"application"} and state.outage is None
    view = state.ticket_view(DAY, "300")
    assert view["wait_unknown"] is False and view["estimate"] == {"median_minutes": 12.0}


def test_a_close_out_of_today_removes_the_expired_tickets_from_the_live_state() -> None:
    state = office()
    event = Events(state)
    event("ticket.issued", 0, ticket=ticket("300", "waiting", 0))
    event("day.closed", MINUTE, closed=DAY, expired=["300"])
    assert not state.waiting
    assert supervisor_view(state, 30, 0.9)["today"]["expired"] == 1
