"""Measured service minutes per office and procedure, for the capacity of booking slots.

A procedure that keeps ``counters`` for bookings gets ``counters × slot_minutes ÷ service minutes``
places a slot (``domain/booking.slot_capacity``). The service minutes are what the office measures
(the median of the wait estimator's learned model: finished visits from ``O services``, shrunk
towards the configured prior while there are few), re-learned at most every ``REFRESH_SECONDS``
per office; before the first measurement, the configured ``service_minutes``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from .domain.service_model import ServiceModel
from .estimates import measured_durations
from .store.redis_store import QueueStore

REFRESH_SECONDS: Final = 600.0
"""A slot's capacity follows the measured service time, not every visit: ten minutes is fresh enough."""


class MeasuredServiceMinutes:
    """``await minutes(office, procedure)``: the learned median service minutes, or None before any visit."""

    def __init__(self, store: QueueStore) -> None:
        self.store = store
        self._medians: dict[str, dict[str, float]] = {}
        self._learned_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # A clock set (tests, ``serve --clock-offset``) may jump past many visits: learn again then.
        store.clock.on_set(self._learned_at.clear)

    async def minutes(self, office_id: str, procedure: str) -> float | None:
        """The measured median service minutes of ``procedure`` at ``office_id`` (None: nothing measured)."""
        learned = self._learned_at.get(office_id)
        if learned is None or time.monotonic() - learned > REFRESH_SECONDS:
            async with self._locks.setdefault(office_id, asyncio.Lock()):
                learned = self._learned_at.get(office_id)
                if learned is None or time.monotonic() - learned > REFRESH_SECONDS:
                    await self._learn(office_id)
        return self._medians[office_id].get(procedure)

    async def _learn(self, office_id: str) -> None:
        office = self.store.office(office_id)
        records = await self.store.service_records(office_id)
        measured = measured_durations(records, self.store.clock.day())
        # The fit is numpy work of a few milliseconds: off the event loop all the same.
        model = await asyncio.to_thread(ServiceModel.learn, office.procedures.values(), measured)
        self._medians[office_id] = {p: model.stage(p).median_minutes for p in office.procedures
                                    if model.stage(p).n > 0}
        self._learned_at[office_id] = time.monotonic()
