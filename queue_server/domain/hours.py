"""Opening hours: weekday hours, national holidays, year-end closing and holiday openings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import jpholiday


@dataclass(frozen=True, slots=True)
class DayHours:
    """When an office takes visitors on one day (local time)."""

    opens: dt.time
    closes: dt.time

    def to_dict(self) -> dict[str, str]:
        """JSON form: ``{"opens": "09:00", "closes": "16:00"}``."""
        return {"opens": self.opens.strftime("%H:%M"), "closes": self.closes.strftime("%H:%M")}


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """An office's calendar. ``special`` dates (holiday openings, extra closures) win over the rest.

    ``week`` holds Monday…Sunday; ``closed_dates`` are ``MM-DD`` every year (12/29–1/3) or a
    full ``YYYY-MM-DD``; national holidays close the office unless ``national_holidays_closed``
    is false.
    """

    week: tuple[DayHours | None, ...]
    national_holidays_closed: bool = True
    closed_dates: tuple[str, ...] = ()
    special: Mapping[dt.date, DayHours | None] = field(default_factory=dict)

    def for_date(self, day: dt.date) -> DayHours | None:
        """The hours of ``day``, or None when the office is closed."""
        if day in self.special:
            return self.special[day]
        if day.strftime("%m-%d") in self.closed_dates or day.isoformat() in self.closed_dates:
            return None
        if self.national_holidays_closed and jpholiday.is_holiday(day):
            return None
        return self.week[day.weekday()]

    def is_open(self, now: dt.datetime) -> bool:
        """Whether visitors can be received at local time ``now``."""
        hours = self.for_date(now.date())
        return hours is not None and hours.opens <= now.time() < hours.closes

    def closing_time(self, now: dt.datetime) -> dt.datetime | None:
        """Today's closing time as a local datetime, or None when closed all day."""
        hours = self.for_date(now.date())
        return None if hours is None else dt.datetime.combine(now.date(), hours.closes, tzinfo=now.tzinfo)
