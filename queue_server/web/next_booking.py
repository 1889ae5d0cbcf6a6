"""The next free booking slot of each procedure that takes bookings, for the congestion view
(「次に予約できる枠: 12月3日 10:00」).

The congestion view is computed from the office state without awaiting Redis, for thousands of
phones; the places taken per slot are in Redis. So the next free slots are kept here per office,
read off the request path: when a booking changes (a ``booking.*`` event of the office), at most
every :data:`MIN_INTERVAL_SECONDS`, and every :data:`REFRESH_SECONDS` anyway as time passes (a slot
begins, a booking deadline passes). One read is one pipeline round trip for the office's window.
When an office's next free slots change, the hub's views look again (the congestion views send
their new view; the others send nothing, their content being the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..aio import stop_tasks
from ..domain.state import OfficeState
from .keys import BOOKINGS, CLOCK, CONFIG, HUB

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS: Final = 1.0
"""Bookings made in a burst are read once per second at most."""
REFRESH_SECONDS: Final = 60.0
"""Read again this often with no booking: a slot may have begun or a deadline passed."""
WINDOW_DAYS: Final = 62
"""The most days looked ahead (the availability read's limit; the office's own window is shorter)."""

NextFree = dict[str, dict[str, Any] | None]
"""procedure → ``{"day": "20261203", "slot": "10:00", "start": ms}``, or None when nothing is free."""


class NextBookingSlots:
    """Per office, each bookable procedure's next free slot; a hub subscriber for booking events."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.by_office: dict[str, NextFree] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._offices = [o.id for o in app[CONFIG].offices.values() if o.bookings.procedures]

    def get(self, office: str) -> NextFree:
        """The office's next free slots as last read (empty before the first read or without bookings)."""
        return self.by_office.get(office, {})

    async def start(self) -> None:
        """Read every office once, then follow its booking events (and the clock being set)."""
        for office in self._offices:
            await self._refresh(office)
            self.app[HUB].subscribe(office, self)
        self.app[CLOCK].on_set(self._mark_all)
        self._task = asyncio.create_task(self._run(), name="next-booking-slots")

    async def stop(self) -> None:
        """Stop following."""
        for office in self._offices:
            self.app[HUB].unsubscribe(office, self)
        await stop_tasks([self._task])

    # -- hub subscriber --------------------------------------------------------------------------

    def on_snapshot(self, state: OfficeState) -> None:
        """A rebuilt state (after an outage) may hide missed bookings: read again."""
        self._mark(state.office)

    def on_event(self, event: dict[str, Any], state: OfficeState) -> None:
        """A booking made, moved, cancelled, checked in or released changes the places free."""
        if str(event.get("type", "")).startswith("booking."):
            self._mark(state.office)

    def _mark_all(self) -> None:
        for office in self._offices:
            self._mark(office)

    def _mark(self, office: str) -> None:
        self._dirty.add(office)
        self._wake.set()

    # -- reading ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), REFRESH_SECONDS)
            self._wake.clear()
            offices, self._dirty = (self._dirty or set(self._offices)), set()
            for office in offices:
                try:
                    await self._refresh(office)
                except (RedisConnectionError, RedisTimeoutError) as e:
                    log.warning("next free booking slots of %s not read: %s", office, e)
                    self._dirty.add(office)   # again on the next round
                except Exception:
                    # The congestion page keeps the last figures; the loop must outlive one bad read.
                    log.exception("next free booking slots of %s not read", office)
            await asyncio.sleep(MIN_INTERVAL_SECONDS)

    async def _refresh(self, office_id: str) -> None:
        office = self.app[CONFIG].offices[office_id]
        today = self.app[CLOCK].now().date()
        days = min(office.bookings.open_days_ahead + 1, WINDOW_DAYS)
        procedures = list(office.bookings.procedures)
        found = await self.app[BOOKINGS].availability([(office_id, p) for p in procedures], today, days)
        result: NextFree = {}
        for procedure in procedures:
            free = [{"day": d["day"], "slot": s["slot"], "start": s["start"]}
                    for d in found.get((office_id, procedure), []) for s in d["slots"] if s["remaining"] > 0]
            result[procedure] = min(free, key=lambda s: s["start"]) if free else None
        if result != self.by_office.get(office_id):
            self.by_office[office_id] = result
            self.app[HUB].refresh_views(office_id)


NEXT_BOOKING: Final = web.AppKey("next_booking_slots", NextBookingSlots)


def setup(app: web.Application) -> None:
    """Keep the next free booking slots while the app runs (after the store and hub are open)."""

    async def follow(app: web.Application) -> AsyncIterator[None]:
        app[NEXT_BOOKING] = NextBookingSlots(app)
        await app[NEXT_BOOKING].start()
        try:
            yield
        finally:
            await app[NEXT_BOOKING].stop()

    app.cleanup_ctx.append(follow)
