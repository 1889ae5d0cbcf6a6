"""The office clock: local time in the office's time zone, and the business day it belongs to."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo


class Clock:
    """Wall-clock time in one time zone; tests (and ``serve --clock-offset``) may shift it with ``offset_ms``.

    Whoever sleeps until a time of this clock (the hub, until midnight) registers :meth:`on_set` to
    be woken when the clock is set, so a shifted clock is followed at once.
    """

    def __init__(self, timezone: str = "Asia/Tokyo", offset_ms: int = 0) -> None:
        self.zone = ZoneInfo(timezone)
        self._offset_ms = offset_ms
        self._on_set: list[Callable[[], None]] = []

    @property
    def offset_ms(self) -> int:
        """How far this clock runs ahead of the system clock, in milliseconds."""
        return self._offset_ms

    @offset_ms.setter
    def offset_ms(self, value: int) -> None:
        self._offset_ms = value
        for callback in list(self._on_set):
            callback()

    def on_set(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the setter's thread) whenever the clock is set."""
        self._on_set.append(callback)

    def now_ms(self) -> int:
        """Epoch milliseconds."""
        return time.time_ns() // 1_000_000 + self._offset_ms

    def now(self) -> dt.datetime:
        """The local time now, time-zone aware."""
        return self.local(self.now_ms())

    def local(self, ms: int) -> dt.datetime:
        """Epoch milliseconds as local time."""
        return dt.datetime.fromtimestamp(ms / 1000, self.zone)

    def day(self, ms: int | None = None) -> str:
        """The business day (``YYYYMMDD``) of ``ms`` (default: now); numbering restarts with it."""
        return self.local(self.now_ms() if ms is None else ms).strftime("%Y%m%d")

    def next_day_ms(self, ms: int | None = None) -> int:
        """Epoch milliseconds of the next local midnight after ``ms`` (default: now): the next business day."""
        today = self.local(self.now_ms() if ms is None else ms).date()
        midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), self.zone)
        return int(midnight.timestamp() * 1000)
