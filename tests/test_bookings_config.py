"""Booking configuration: the demo's bookable pickups, and problems and odd values named by key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from queue_server.cli import demo_config_path
from queue_server.config import ConfigError, load_config
from queue_server.domain.booking import slot_capacity

from .servers import madoguchi

OFFICE = """
[[offices]]
id = "main"
name = "本庁"

[offices.hours]
week = {{ mon = "09:00-16:00", tue = "09:00-16:00" }}
special = [{{ date = 2026-12-13, hours = "08:30-12:30", booking_only = true }},
           {{ date = 2026-12-20, hours = "closed", booking_only = true }}]

[offices.bookings]
{bookings}

[[offices.procedures]]
id = "pickup"
name = "カード交付"
names = {{ en = "Pickup", zh = "领取", ko = "수령", pt = "Retirada", vi = "Nhận" }}
number = {{ range = [300, 599] }}
service_minutes = 45
booking = {{ {booking} }}

[[offices.counters]]
id = "1"
procedures = ["pickup"]
"""


def write(tmp_path: Path, bookings: str, booking: str) -> Path:
    path = tmp_path / "office.toml"
    path.write_text(OFFICE.format(bookings=bookings, booking=booking), encoding="utf-8")
    return path


def test_the_demo_books_pickups_at_the_main_office_and_holiday_openings_are_booking_only() -> None:
    config = load_config(demo_config_path())
    honcho = config.offices["honcho"]
    pickup = honcho.bookings.procedures["pickup"]
    assert (honcho.bookings.slot_minutes, honcho.bookings.open_days_ahead) == (30, 28)
    assert (pickup.counters, pickup.close_days_before, pickup.close_at) == (1, 1, dt.time(17))
    assert slot_capacity(pickup, 30, honcho.procedures["pickup"].service_minutes) == 3
    assert not honcho.bookings.takes_walk_ins("pickup", dt.date(2026, 12, 13))
    assert honcho.bookings.takes_walk_ins("application", dt.date(2026, 12, 13))
    assert config.offices["mizuno"].bookings.procedures == {}  # the branch takes no bookings


def test_wrong_booking_values_are_named_with_their_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'slot_minutes = 2\nlate_minutes = "ten"\nwalk_ins = false',
                 'capacity = 2, counters = 1, close_at = "5pm", booking_only_dates = ["soon"]')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = "\n".join(caught.value.problems)
    for expected in (
        f"{path}: offices[0].bookings.slot_minutes: must be 5–240",
        f"{path}: offices[0].bookings.late_minutes: must be int, got str 'ten'",
        f"{path}: offices[0].bookings.walk_ins: unknown key",
        f"{path}: offices[0].procedures[0].booking: give capacity (places per slot) or counters",
        f'{path}: offices[0].procedures[0].booking.close_at: must be "HH:MM"',
        f"{path}: offices[0].procedures[0].booking.booking_only_dates[0]: must be a date like 2026-11-29",
    ):
        assert expected in problems, problems
    path = write(tmp_path, "", "close_days_before = 1")
    with pytest.raises(ConfigError, match="needs capacity"):
        load_config(path)


def test_odd_booking_values_are_warnings_that_check_config_shows(tmp_path: Path) -> None:
    path = write(tmp_path, "slot_minutes = 30\nlate_minutes = 30\nopen_days_ahead = 2", "counters = 1, close_days_before = 3")
    config = load_config(path)
    warnings = "\n".join(config.warnings)
    assert "offices[0].procedures[0].booking: 1 counter(s) serve fewer than one visitor" in warnings
    assert "offices[0].bookings.late_minutes: 30 min late is not before the 30-minute slot ends" in warnings
    assert "offices[0].hours.special[1].booking_only: the office is closed that day" in warnings
    assert "booking.close_days_before: bookings close 3 open days before a slot but open only 2 days" in warnings
    result = madoguchi("check-config", str(path))
    assert result.returncode == 0 and "late_minutes" in result.stdout, result.stdout + result.stderr


def test_the_booking_line_is_checked_and_check_config_names_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone = "0561-88-26S0"\nphone_hours = ""', "capacity = 2")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = "\n".join(caught.value.problems)
    assert 'offices[0].bookings.phone: must be a phone number of 6–15 digits' in problems
    assert "offices[0].bookings.phone_hours: must be 1–40 characters" in problems
    result = madoguchi("check-config", str(path))
    assert result.returncode == 1 and "offices[0].bookings.phone:" in result.stdout
    hours_alone = write(tmp_path, 'phone_hours = "平日 9:00〜17:00"', "capacity = 2")
    with pytest.raises(ConfigError, match=r"offices\[0\].bookings.phone_hours: says when the booking line answers"):
        load_config(hours_alone)
    line = load_config(write(tmp_path, 'phone = "+81 561-88-2650"\nphone_hours = "平日 9:00〜17:00"\n'
                                       'phone_hours_texts = { en = "weekdays 9:00–17:00" }', "capacity = 2"))
    assert line.offices["main"].bookings.phone_view() == {
        "number": "+81 561-88-2650", "tel": "tel:+81561882650",
        "hours": {"ja": "平日 9:00〜17:00", "en": "weekdays 9:00–17:00"}}
    assert any("phone_hours_texts: no text for zh, ko, pt, vi" in w for w in line.warnings)


def test_the_demo_has_its_own_booking_line() -> None:
    bookings = load_config(demo_config_path()).offices["honcho"].bookings
    view = bookings.phone_view()
    assert view is not None and view["number"] == "0561-01-2345" and view["tel"] == "tel:0561012345"
    assert view["hours"] is not None and set(view["hours"]) == {"ja", "ja-easy", "en", "zh", "ko", "pt", "vi"}
