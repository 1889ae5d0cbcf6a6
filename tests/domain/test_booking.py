"""Booking rules: codes, slots of a day, capacity and deadlines (pure Python, no store)."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from queue_server.domain import booking as rules
from queue_server.domain.hours import DayHours, OpeningHours
from queue_server.domain.model import DomainError

TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAY = DayHours(dt.time(9), dt.time(16))
HOLIDAY_OPENING = dt.date(2026, 11, 29)  # a Sunday
HOURS = OpeningHours(week=(WEEKDAY,) * 5 + (None, None), closed_dates=("12-29", "12-30", "12-31"),
                     special={HOLIDAY_OPENING: DayHours(dt.time(8, 30), dt.time(12, 30))})
PICKUP = rules.ProcedureBooking(counters=1, close_days_before=1, close_at=dt.time(17))
OFFICE = rules.OfficeBookings(procedures={"pickup": PICKUP}, booking_only_dates=frozenset({HOLIDAY_OPENING}))


def ms(day: dt.date, hour: int, minute: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), TOKYO).timestamp() * 1000)


# -- codes -------------------------------------------------------------------------------------------

def test_a_new_code_has_eight_unambiguous_characters_and_passes_its_own_check() -> None:
    for _ in range(200):
        code = rules.new_code()
        assert len(code) == 8 and set(code) <= set(rules.ALPHABET)
        assert rules.normalise_code(code) == code
    assert not set("0O1I2Z5S8B") & set(rules.ALPHABET)


def test_what_people_type_is_normalised() -> None:
    code = rules.new_code()
    shown = rules.display_code(code)
    assert shown == f"{code[:4]}-{code[4:]}"
    for typed in (shown, shown.lower(), f"{code[:4]} {code[4:]}".lower(), f" {code} ", f"{code[:4]}ー{code[4:]}"):
        assert rules.normalise_code(typed) == code


def test_every_single_wrong_character_is_caught_by_the_check_character() -> None:
    code = "ACDEFHJ" + rules.check_character("ACDEFHJ")
    for i, other in itertools.product(range(8), rules.ALPHABET):
        if other != code[i]:
            with pytest.raises(rules.MalformedCode):
                rules.normalise_code(code[:i] + other + code[i + 1:])


@pytest.mark.parametrize("apart", [1, 2])
def test_every_swap_of_neighbours_or_of_characters_one_apart_is_caught(apart: int) -> None:
    for _ in range(300):
        code = rules.new_code()
        for i in range(8 - apart):
            if code[i] != code[i + apart]:
                swapped = code[:i] + code[i + apart] + code[i + 1:i + apart] + code[i] + code[i + apart + 1:]
                with pytest.raises(rules.MalformedCode):
                    rules.normalise_code(swapped)


@pytest.mark.parametrize(("typed", "says"), [
    ("ACDE-FHJ", "8 characters"), ("ACDE-FHJ70", "8 characters"), ("ACDE-FHJ0", "cannot be in one"),
    ("SBZ2-1OIL", "cannot be in one")])
def test_a_malformed_code_says_what_is_wrong(typed: str, says: str) -> None:
    with pytest.raises(rules.MalformedCode, match=says) as caught:
        rules.normalise_code(typed)
    assert caught.value.code == "invalid_code"


# -- slots, capacity, walk-ins -----------------------------------------------------------------------

def test_a_weekday_has_slots_from_opening_each_ending_by_closing() -> None:
    slots = rules.day_slots(HOURS, dt.date(2026, 12, 7), 30, TOKYO)
    assert [s.slot for s in slots][:3] == ["09:00", "09:30", "10:00"] and slots[-1].slot == "15:30"
    assert len(slots) == 14 and slots[0].end_ms - slots[0].start_ms == 30 * 60_000
    assert len(rules.day_slots(HOURS, dt.date(2026, 12, 7), 45, TOKYO)) == 9  # 15:45 would end after 16:00


def test_closed_days_have_no_slots_and_holiday_openings_have_theirs() -> None:
    assert rules.day_slots(HOURS, dt.date(2026, 12, 6), 30, TOKYO) == []  # Sunday
    assert rules.day_slots(HOURS, dt.date(2026, 11, 23), 30, TOKYO) == []  # 勤労感謝の日
    assert rules.day_slots(HOURS, dt.date(2026, 12, 29), 30, TOKYO) == []  # year-end
    assert [s.slot for s in rules.day_slots(HOURS, HOLIDAY_OPENING, 30, TOKYO)] == [
        "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00"]


def test_capacity_is_given_or_follows_from_the_counters_kept_for_bookings() -> None:
    assert rules.slot_capacity(rules.ProcedureBooking(capacity=4), 30, 10) == 4
    assert rules.slot_capacity(PICKUP, 30, 10) == 3
    assert rules.slot_capacity(rules.ProcedureBooking(counters=2), 30, 7) == 8   # ⌊60 / 7⌋
    assert rules.slot_capacity(rules.ProcedureBooking(counters=1), 30, 45) == 1  # at least one


def test_booking_only_days_and_procedures_take_no_walk_ins() -> None:
    assert not OFFICE.takes_walk_ins("pickup", HOLIDAY_OPENING)
    assert OFFICE.takes_walk_ins("application", HOLIDAY_OPENING)  # takes no bookings: walk-ins as usual
    assert OFFICE.takes_walk_ins("pickup", dt.date(2026, 12, 7))
    always = rules.OfficeBookings(procedures={"pickup": rules.ProcedureBooking(capacity=1, booking_only=True)})
    assert not always.takes_walk_ins("pickup", dt.date(2026, 12, 7))


# -- deadlines ------------------------------------------------------------------------------------------

def check(day: dt.date, slot: str, now: int, procedure: str = "pickup") -> rules.Slot:
    return rules.check_bookable(HOURS, OFFICE, procedure, day, slot, now, TOKYO)


def refused(day: dt.date, slot: str, now: int, procedure: str = "pickup") -> str:
    with pytest.raises(DomainError) as caught:
        check(day, slot, now, procedure)
    return caught.value.code


def test_a_pickup_closes_the_previous_open_day_at_17() -> None:
    tuesday, monday, friday = dt.date(2026, 12, 8), dt.date(2026, 12, 7), dt.date(2026, 12, 4)
    assert check(tuesday, "09:00", ms(monday, 16, 59)).slot == "09:00"
    assert refused(tuesday, "09:00", ms(monday, 17)) == "booking_closed"
    # Monday's previous open day is Friday (the weekend is closed).
    assert check(monday, "15:30", ms(friday, 16)).day == "20261207"
    assert refused(monday, "15:30", ms(dt.date(2026, 12, 5), 9)) == "booking_closed"
    # The holiday opening on Sunday closes on Friday too.
    assert refused(HOLIDAY_OPENING, "08:30", ms(dt.date(2026, 11, 27), 17, 30)) == "booking_closed"


def test_every_refusal_names_its_rule() -> None:
    monday = dt.date(2026, 12, 7)
    now = ms(monday, 10)
    assert refused(dt.date(2026, 12, 13), "09:00", now) == "day_closed"  # a Sunday
    assert refused(dt.date(2026, 12, 8), "08:00", now) == "slot_outside_hours"
    assert refused(dt.date(2026, 12, 8), "09:10", now) == "slot_outside_hours"
    assert refused(monday, "09:30", now) == "slot_past"
    assert refused(dt.date(2027, 1, 5), "09:00", now) == "booking_not_open"  # more than 28 days ahead
    assert refused(dt.date(2026, 12, 8), "09:00", now, "application") == "not_bookable"
    with pytest.raises(DomainError, match="HH:MM"):
        check(dt.date(2026, 12, 8), "9時", now)
    with pytest.raises(DomainError, match="YYYYMMDD"):
        rules.parse_day("2026-13-01")


def test_same_day_bookings_close_when_the_slot_begins() -> None:
    office = rules.OfficeBookings(procedures={"ecert": rules.ProcedureBooking(capacity=2)})
    monday = dt.date(2026, 12, 7)
    found = list(rules.bookable_slots(HOURS, office, "ecert", monday, 1, ms(monday, 10, 5), TOKYO))
    assert found[0].slot == "10:30" and len(found) == 11


def test_the_slot_finder_lists_only_what_can_be_booked_now() -> None:
    monday = dt.date(2026, 12, 7)
    found = list(rules.bookable_slots(HOURS, OFFICE, "pickup", monday, 29, ms(monday, 10), TOKYO))
    days = sorted({s.day for s in found})
    assert days[0] == "20261208" and days[-1] <= "20270104"  # today closed on Friday; 28 days ahead at most
    assert "20261212" not in days and "20261229" not in days  # Saturday, year-end


def test_the_reference_is_a_number_not_free_text() -> None:
    assert rules.check_reference(" ab-1234 ") == "AB-1234"
    for text in ("山田太郎", "090 1234 5678 call", "x" * 40, ""):
        with pytest.raises(DomainError, match="notice postcard"):
            rules.check_reference(text)
