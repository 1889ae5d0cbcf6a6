"""The calling policy and lifecycle rules, as plain Python (no event loop, no Redis)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from queue_server.domain.hours import DayHours, OpeningHours
from queue_server.domain.model import BookedBeforeSlot, CallingOrder, Conflict, NumberFormat, Ticket, TicketState
from queue_server.domain.policy import check_transition, choose_next, effective_score, people_ahead
from queue_server.domain.state import GapError, OfficeState, public_ticket


def ticket(number: str, procedure: str, seq: int, priority: int = 0, order: int | None = None,
           returning: bool = False) -> Ticket:
    return Ticket(number=number, procedure=procedure, state=TicketState.WAITING, seq=seq,
                  order=seq if order is None else order, issued_at=seq, priority=priority, returning=returning)


QUEUES = {
    "application": [ticket("A001", "application", 1), ticket("A002", "application", 4)],
    "pickup": [ticket("301", "pickup", 2), ticket("302", "pickup", 3, priority=2)],
}


def test_priority_then_waited_takes_the_priority_class_first() -> None:
    assert choose_next(QUEUES, ("application", "pickup"), CallingOrder.PRIORITY_THEN_WAITED).number == "302"
    assert choose_next(QUEUES, ("application",), CallingOrder.PRIORITY_THEN_WAITED).number == "A001"


def test_waited_ignores_priority() -> None:
    assert choose_next(QUEUES, ("application", "pickup"), CallingOrder.WAITED).number == "A001"


def test_counter_procedure_order_empties_the_first_procedure_first() -> None:
    assert choose_next(QUEUES, ("pickup", "application"), CallingOrder.COUNTER_PROCEDURE_ORDER).number == "302"
    assert choose_next(QUEUES, ("application", "pickup"), CallingOrder.COUNTER_PROCEDURE_ORDER).number == "A001"
    assert choose_next(QUEUES, ("ecert",), CallingOrder.COUNTER_PROCEDURE_ORDER) is None


def test_a_handed_over_ticket_keeps_its_place_by_original_order() -> None:
    queues = {"review": [ticket("R001", "review", 5), ticket("301", "review", 9, order=2)]}
    assert choose_next(queues, ("review",), CallingOrder.PRIORITY_THEN_WAITED).number == "301"


def test_a_visitor_handed_over_with_their_place_is_called_before_older_tickets_not_yet_served() -> None:
    # Counter 6 serves the city-staff queue and PIN resets: 305 was handed over to city staff after
    # waiting once; P001 came earlier but has not been at a counter yet.
    queues = {"pin_reset": [ticket("P001", "pin_reset", 1)],
              "review": [ticket("305", "review", 9, order=4, returning=True)]}
    for order in (CallingOrder.PRIORITY_THEN_WAITED, CallingOrder.WAITED):
        assert choose_next(queues, ("pin_reset", "review"), order).number == "305"
    # The office's own procedure order still comes first, and so does a higher priority class.
    assert choose_next(queues, ("pin_reset", "review"), CallingOrder.COUNTER_PROCEDURE_ORDER).number == "P001"
    queues["pin_reset"].append(ticket("P002", "pin_reset", 2, priority=1))
    assert choose_next(queues, ("pin_reset", "review"), CallingOrder.PRIORITY_THEN_WAITED).number == "P002"
    # Among returning visitors, the original place decides; in its queue nobody new is ahead of one.
    queues["review"] += [ticket("306", "review", 10, order=3, returning=True), ticket("R001", "review", 2)]
    assert choose_next(queues, ("review",), CallingOrder.PRIORITY_THEN_WAITED).number == "306"
    assert people_ahead(queues["review"][0], queues["review"], CallingOrder.PRIORITY_THEN_WAITED) == 1


def booked(number: str, seq: int, slot_start: int, **fields: object) -> Ticket:
    """A booked visitor's pickup ticket, checked in (issued) at ``seq``."""
    return dataclasses.replace(ticket(number, "pickup", seq), booking=number, slot_start=slot_start, booked=True,
                               **fields)


def test_a_booked_ticket_waits_like_a_walk_in_until_its_slot_starts_then_goes_first() -> None:
    walk_ins = [ticket("300", "pickup", 1), ticket("301", "pickup", 2)]
    queues = {"pickup": [*walk_ins, booked("700", 3, slot_start=100)]}
    order = CallingOrder.PRIORITY_THEN_WAITED
    assert choose_next(queues, ("pickup",), order, now=99).number == "300"
    assert people_ahead(queues["pickup"][2], queues["pickup"], order, now=99) == 2
    assert choose_next(queues, ("pickup",), order, now=100).number == "700"
    assert people_ahead(queues["pickup"][2], queues["pickup"], order, now=100) == 0
    assert people_ahead(walk_ins[0], queues["pickup"], order, now=100) == 1
    # Without a clock no slot has started; with "at_check_in" the precedence begins at the check-in.
    assert choose_next(queues, ("pickup",), order).number == "300"
    assert choose_next(queues, ("pickup",), order, now=99, booked_before_slot=BookedBeforeSlot.AT_CHECK_IN).number == "700"
    # With "waited" too: no classes, but the booked tier still comes before the walk-ins.
    assert choose_next(queues, ("pickup",), CallingOrder.WAITED, now=100).number == "700"


def test_keep_for_slot_calls_an_early_booked_visitor_only_when_no_walk_in_of_their_class_waits() -> None:
    keep = BookedBeforeSlot.KEEP_FOR_SLOT
    early = booked("700", 1, slot_start=100)  # checked in first, slot at 100
    walk_ins = [ticket("300", "pickup", 2), ticket("301", "pickup", 3)]
    queues = {"pickup": [early, *walk_ins]}
    order = CallingOrder.PRIORITY_THEN_WAITED
    # Before the slot: behind every walk-in of the class, though checked in before them.
    assert choose_next(queues, ("pickup",), order, now=99, booked_before_slot=keep).number == "300"
    assert people_ahead(early, queues["pickup"], order, now=99, booked_before_slot=keep) == 2
    assert people_ahead(walk_ins[0], queues["pickup"], order, now=99, booked_before_slot=keep) == 0
    # (As a walk-in, the default, they would have been first.)
    assert choose_next(queues, ("pickup",), order, now=99).number == "700"
    # Nobody else waiting: called early rather than leave the counter idle.
    assert choose_next({"pickup": [early]}, ("pickup",), order, now=99, booked_before_slot=keep).number == "700"
    # A higher class still goes first; a lower one waits behind the kept visitor.
    queues["pickup"] = [early, ticket("302", "pickup", 4, priority=1)]
    assert choose_next(queues, ("pickup",), order, now=99, booked_before_slot=keep).number == "302"
    lower = dataclasses.replace(booked("701", 5, slot_start=100), priority=1)
    queues["pickup"] = [lower, ticket("303", "pickup", 6)]
    assert choose_next(queues, ("pickup",), order, now=99, booked_before_slot=keep).number == "701"
    # From the slot's start: before the walk-ins, as under every rule.
    queues["pickup"] = [early, *walk_ins]
    assert choose_next(queues, ("pickup",), order, now=100, booked_before_slot=keep).number == "700"
    # Under "waited" there are no classes: behind everybody until the slot.
    assert choose_next(queues, ("pickup",), CallingOrder.WAITED, now=99, booked_before_slot=keep).number == "300"


def test_the_booked_precedence_stays_inside_its_class_after_returning_visitors() -> None:
    queues = {"pickup": [booked("700", 3, slot_start=0), ticket("302", "pickup", 4, priority=1)],
              "review": [ticket("305", "review", 9, order=1, returning=True)]}
    order = CallingOrder.PRIORITY_THEN_WAITED
    assert choose_next(queues, ("pickup", "review"), order, now=10).number == "302"   # a higher class first
    queues["pickup"].pop()
    assert choose_next(queues, ("pickup", "review"), order, now=10).number == "305"   # returning first
    queues["review"].clear()
    assert choose_next(queues, ("pickup", "review"), order, now=10).number == "700"


def test_late_and_handed_over_booked_tickets_have_no_precedence() -> None:
    late = dataclasses.replace(ticket("302", "pickup", 3), booking="9", slot_start=0, late=True)
    handed = booked("701", 4, slot_start=0, handed_over_from="application")
    queues = {"pickup": [ticket("300", "pickup", 1), late, handed]}
    assert choose_next(queues, ("pickup",), CallingOrder.PRIORITY_THEN_WAITED, now=10).number == "300"
    assert effective_score(handed, 10, CallingOrder.PRIORITY_THEN_WAITED) == effective_score(
        dataclasses.replace(handed, booked=False), 10, CallingOrder.PRIORITY_THEN_WAITED)


def test_people_ahead_counts_only_the_same_queue_called_earlier() -> None:
    waiting = [t for q in QUEUES.values() for t in q]
    assert people_ahead(QUEUES["pickup"][0], waiting, CallingOrder.PRIORITY_THEN_WAITED) == 1
    assert people_ahead(QUEUES["pickup"][1], waiting, CallingOrder.PRIORITY_THEN_WAITED) == 0
    assert people_ahead(QUEUES["application"][1], waiting, CallingOrder.WAITED) == 1


def test_finishing_a_ticket_never_called_is_refused_with_the_reason() -> None:
    with pytest.raises(Conflict, match="cannot finish ticket A001: it is waiting, and only a serving ticket can be"):
        check_transition("finish", QUEUES["application"][0])
    check_transition("call", QUEUES["application"][0])


def test_number_formats_never_run_past_their_range() -> None:
    fmt = NumberFormat(first=300, last=302)
    assert [fmt.render(n) for n in (1, 2, 3)] == ["300", "301", "302"]
    with pytest.raises(Conflict, match="used up"):
        fmt.render(4)
    assert NumberFormat(prefix="A", width=3).render(12) == "A012"


def test_opening_hours_know_holidays_year_end_and_holiday_openings() -> None:
    nine_to_four = DayHours(dt.time(9), dt.time(16))
    hours = OpeningHours(week=(nine_to_four,) * 5 + (None, None), closed_dates=("12-29", "01-03"),
                         special={dt.date(2026, 11, 29): DayHours(dt.time(8, 30), dt.time(12, 30))})
    assert hours.is_open(dt.datetime(2026, 11, 24, 10, 0))
    assert not hours.is_open(dt.datetime(2026, 11, 24, 16, 0))
    assert not hours.is_open(dt.datetime(2026, 11, 23, 10, 0))  # 勤労感謝の日
    assert not hours.is_open(dt.datetime(2026, 12, 29, 10, 0))
    assert hours.is_open(dt.datetime(2026, 11, 29, 8, 45))  # a Sunday holiday opening
    assert not hours.is_open(dt.datetime(2026, 11, 28, 10, 0))


def _event(seq: int, **ticket: object) -> dict[str, object]:
    return {"seq": seq, "type": "ticket.issued", "office": "o", "at": seq,
            "ticket": {"state": "waiting", "seq": seq, "order": seq, "priority": 0, **ticket}}


def test_office_state_follows_events_and_detects_a_gap() -> None:
    state = OfficeState(office="o", seq=0, day="20261124", calling_order=CallingOrder.PRIORITY_THEN_WAITED)
    assert state.apply(_event(1, number="301", procedure="pickup"))
    assert state.apply(_event(2, number="302", procedure="pickup"))
    assert not state.apply(_event(2, number="302", procedure="pickup"))  # a duplicate is ignored
    assert state.ahead("302") == 1 and state.waiting_counts() == {"pickup": 2}
    assert state.ahead("301") == 0 and state.ahead("999") is None
    state.apply({"seq": 3, "type": "ticket.called", "office": "o", "at": 3,
                 "ticket": {"number": "301", "procedure": "pickup", "state": "called", "seq": 1, "order": 1},
                 "counter": {"id": "4", "status": "open", "ticket": "20261124|301"}})
    assert state.ahead("302") == 0
    assert state.recent[0]["number"] == "301" and state.recent[0]["counter"] == "4"
    with pytest.raises(GapError):
        state.apply(_event(5, number="303", procedure="pickup"))


def test_office_state_moves_a_booked_ticket_up_when_its_slot_starts_without_an_event() -> None:
    clock = {"now": 50}
    state = OfficeState(office="o", seq=0, day="20261124", calling_order=CallingOrder.PRIORITY_THEN_WAITED,
                        now=lambda: clock["now"])
    state.apply(_event(1, number="300", procedure="pickup", issued_at=1))
    state.apply(_event(2, number="700", procedure="pickup", issued_at=2, booked=1, slot_start=100, booking="1"))
    assert (state.ahead("300"), state.ahead("700")) == (0, 1)
    assert [t["number"] for t in state.snapshot()["waiting"]] == ["300", "700"]
    clock["now"] = 100  # the slot starts: no event, the places are worked out again
    assert (state.ahead("300"), state.ahead("700")) == (1, 0)
    assert [t["number"] for t in state.snapshot()["waiting"]] == ["700", "300"]
    assert public_ticket(state.waiting["20261124|700"]) == {
        "number": "700", "procedure": "pickup", "state": "waiting", "issued_at": 2, "booked": 1}


def test_office_state_knows_tickets_by_day_and_number() -> None:
    # Yesterday's 100 still at counter 3 (as data from before the day's close-out could have it)…
    yesterday = {"number": "100", "day": "20261201", "procedure": "pickup", "state": "called", "counter": "3",
                 "seq": 9, "order": 9}
    state = OfficeState.from_snapshot("o", {
        "seq": 0, "day": "20261202", "waiting": [], "active": [yesterday], "recent": [], "paused": [], "notice": "",
        "counters": [{"id": "3", "status": "open", "ticket": "20261201|100"}]}, CallingOrder.PRIORITY_THEN_WAITED)
    # …and today's first ticket, also 100: neither replaces the other.
    state.apply({**_event(1, number="100", day="20261202", procedure="pickup"), "day": "20261202"})
    assert state.ticket_view("20261201", "100", yesterday)["state"] == "called"
    today = state.ticket_view("20261202", "100")
    assert (today["state"], today["ahead"]) == ("waiting", 0)
    assert state.ahead("100", "20261201") is None


def test_the_first_event_of_a_new_day_moves_the_office_state_to_it() -> None:
    state = OfficeState(office="o", seq=0, day="20261201", calling_order=CallingOrder.PRIORITY_THEN_WAITED)
    state.apply({"seq": 1, "type": "ticket.called", "office": "o", "at": 1, "day": "20261201",
                 "ticket": {"number": "100", "day": "20261201", "procedure": "pickup", "state": "called",
                            "seq": 1, "order": 1},
                 "counter": {"id": "3", "status": "open", "ticket": "20261201|100"}})
    state.apply({"seq": 2, "type": "day.closed", "office": "o", "at": 2, "day": "20261202", "closed": "20261201",
                 "expired": ["100"], "counters": [{"id": "3", "status": "open"}]})
    assert state.day == "20261202" and state.active == {} and state.recent == []
    assert state.counters["3"].get("ticket") is None
    state.apply({**_event(3, number="100", day="20261202", procedure="pickup"), "day": "20261202"})
    assert list(state.waiting) == ["20261202|100"]
    # Yesterday's ticket is not today's: its phone shows what the store says, no calls of today.
    view = state.ticket_view("20261201", "100", {"number": "100", "state": "expired", "procedure": "pickup"})
    assert (view["state"], view["ahead"], view["now_calling"]) == ("expired", None, [])
