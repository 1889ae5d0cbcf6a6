"""The supervisor's store steps: outage mode, a counter's procedures for the rest of the day, closing the day.

Each is one Lua step of ``lua/supervisor.lua`` on one office's keys (``O outage``, ``O c:{counter}``
``procedures``/``procedures_day``, ``O dayreport:{day}``); see ARCHITECTURE.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..domain.model import Conflict, DomainError, NotFound, Role
from .redis_store import QueueStore, Result, _lists

DAY_REPORT_KEEP_SECONDS: Final = 400 * 86400
"""A day's close-out report is kept a little over a year (the archive keeps the visits themselves)."""


AREA_ERRORS: Final = {
    "outage_active": "office {office} is already in outage mode; end it first",
    "no_outage": "office {office} is not in outage mode",
    "visitors_waiting": "visitors of {office} are still waiting or at a counter; serve them first, or close the "
                        "day with confirm: true (their tickets then expire)",
}
"""This module's error answers of the Lua step (the store words only its own codes)."""


class SupervisorSteps:
    """The supervisor's operations on a :class:`QueueStore` (its ``_run``, ``office``, ``redis``)."""

    def __init__(self, store: QueueStore) -> None:
        self.store = store

    async def outage_start(self, office_id: str, procedures: Sequence[str], notice_id: str, notice: Mapping[str, str],
                           *, actor: str | None = None, idem: str | None = None) -> Result:
        """Pause ``procedures`` of the office and put up the prepared notice, in one step."""
        office = self.store.office(office_id)
        unknown = [p for p in procedures if p not in office.procedures]
        if unknown:
            raise NotFound(f"no procedure {unknown[0]!r} at {office_id}; procedures: {', '.join(office.procedures)}")
        return await self._step("outage_start", office_id, procedures=list(procedures), notice_id=notice_id,
                                notice=dict(notice), actor=actor, idem=idem)

    async def outage_end(self, office_id: str, *, actor: str | None = None, idem: str | None = None) -> Result:
        """End outage mode: the notice goes, the procedures the outage paused take tickets again."""
        self.store.office(office_id)
        return await self._step("outage_end", office_id, actor=actor, idem=idem)

    async def counter_procedures(self, office_id: str, counter_id: str, procedures: Sequence[str] | None, *,
                                 actor: str | None = None, idem: str | None = None) -> Result:
        """The procedures a counter serves for the rest of the business day (None: its configured ones again)."""
        office = self.store.office(office_id)
        counter = office.counters.get(counter_id)
        if counter is None:
            raise NotFound(f"no counter {counter_id!r} at {office_id}; counters: {', '.join(office.counters)}")
        for p in procedures or ():
            if p not in office.procedures:
                raise NotFound(f"no procedure {p!r} at {office_id}; procedures: {', '.join(office.procedures)}")
            if office.procedures[p].city_staff_only and counter.staff is not Role.CITY:
                raise Conflict(f"procedure {p!r} is for city staff only; counter {counter_id} is a "
                               f"{counter.staff.value} counter", code="procedure_not_allowed")
        return await self._step("counter_procedures", office_id, counter=counter_id,
                                procedures=list(procedures) if procedures else None, actor=actor, idem=idem)

    async def close_day(self, office_id: str, *, confirm: bool, actor: str | None = None,
                        idem: str | None = None) -> Result:
        """Close today: refused (``visitors_waiting``) while visitors wait or are at a counter, unless confirmed."""
        self.store.office(office_id)
        return await self._step("day_close", office_id, confirm=confirm, actor=actor, idem=idem,
                                **self.store.office_lists(office_id))

    async def save_day_report(self, office_id: str, day: str, report: Mapping[str, Any]) -> None:
        """Keep the close-out's report (``O dayreport:{day}``), to be read again from the console."""
        await self.store.redis.set(f"{self.store.office_key(office_id)}dayreport:{day}",
                                   json.dumps(report, ensure_ascii=False), ex=DAY_REPORT_KEEP_SECONDS)

    async def day_report(self, office_id: str, day: str) -> dict[str, Any] | None:
        """The report saved when ``day`` was closed, or None."""
        raw = await self.store.redis.get(f"{self.store.office_key(office_id)}dayreport:{day}")
        return json.loads(raw) if raw else None

    async def _step(self, op: str, office_id: str, **params: Any) -> Result:
        try:
            result = await self.store._run(op, office_id, **params)
        except DomainError as e:
            # QueueStore words only its own codes; ours come back as "store error <code>".
            code = e.message.removeprefix("store error ")
            if code in AREA_ERRORS:
                raise Conflict(AREA_ERRORS[code].format(office=office_id), code=code) from None
            raise
        if "event" in result and "paused" in result["event"]:
            result["event"]["paused"] = _lists(result["event"]["paused"])
        return result


async def bookings_to_come(store: QueueStore, office_id: str, day: str, now_ms: int) -> dict[str, Any]:
    """Today's bookings not yet checked in, cancelled or released (``O bkday:{day}``, ``O bk:{id}``):
    how many per procedure, how many of them past their slot's start, and the next slot to come."""
    key = store.office_key(office_id)
    ids = await store.redis.zrange(f"{key}bkday:{day}", 0, -1)
    async with store.redis.pipeline(transaction=False) as pipe:
        for booking_id in ids:
            pipe.hmget(f"{key}bk:{booking_id.decode()}", "state", "procedure", "slot_start", "slot")
        answers = await pipe.execute() if ids else []
    per: dict[str, int] = {}
    late, next_slot = 0, None
    for state, procedure, slot_start, slot in answers:
        if state != b"booked" or procedure is None:
            continue
        per[procedure.decode()] = per.get(procedure.decode(), 0) + 1
        start = int(slot_start or 0)
        if start < now_ms:
            late += 1
        elif next_slot is None or start < next_slot[0]:
            next_slot = (start, slot.decode() if slot else "")
    return {"to_come": sum(per.values()), "procedures": per, "past_slot_start": late,
            "next_slot": next_slot[1] if next_slot else None}


async def back_office_backlog(store: QueueStore, office_id: str, now_ms: int) -> dict[str, Any]:
    """Back-office tasks not done or cancelled (``O tasks``, ``O task:{id}``): open and claimed per kind,
    and how many are past their due time."""
    key = store.office_key(office_id)
    ids = await store.redis.zrange(f"{key}tasks", 0, -1)
    async with store.redis.pipeline(transaction=False) as pipe:
        for task_id in ids:
            pipe.hmget(f"{key}task:{task_id.decode()}", "kind", "state", "due_at")
        answers = await pipe.execute() if ids else []
    kinds: dict[str, dict[str, int]] = {}
    overdue = 0
    for kind, state, due_at in answers:
        if kind is None or state not in (b"open", b"claimed"):
            continue
        counts = kinds.setdefault(kind.decode(), {"open": 0, "claimed": 0})
        counts[state.decode()] += 1
        if due_at and int(due_at) < now_ms:
            overdue += 1
    return {"kinds": kinds, "total": sum(sum(c.values()) for c in kinds.values()), "overdue": overdue}
