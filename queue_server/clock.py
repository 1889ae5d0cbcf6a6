"""The office clock: local time in the office's time zone, and the business day it belongs to."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo


class Clock:
    """Wall-clock time in one time zone; tests may shift it with ``offset_ms``."""

    def __init__(self, timezone: str = "Asia/Tokyo", offset_ms: int = 0) -> None:
        self.zone = ZoneInfo(timezone)
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        """Epoch milliseconds."""
        return time.time_ns() // 1_000_000 + self.offset_ms

    def now(self) -> dt.datetime:
        """The local time now, time-zone aware."""
        return self.local(self.now_ms())

    def local(self, ms: int) -> dt.datetime:
        """Epoch milliseconds as local time."""
        return dt.datetime.fromtimestamp(ms / 1000, self.zone)

    def day(self, ms: int | None = None) -> str:
        """The business day (``YYYYMMDD``) of ``ms`` (default: now); numbering restarts with it."""
        return self.local(self.now_ms() if ms is None else ms).strftime("%Y%m%d")
