"""Live wait estimates: recomputed when an office changes, at most a few times a second, and pushed.

The domain's :func:`estimate_waits` does the work; this module feeds it from the hub's
:class:`OfficeState` and the measured service times in the store, runs it off the event loop,
and hands the result to the hub, which tells every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from typing import Any, Final

from .config import Config, Office
from .domain.estimate import CounterState, OfficeSnapshot, WaitForecast, WaitingTicket, estimate_waits
from .domain.model import CounterStatus
from .domain.service_model import MeasuredDuration, ServiceModel, Stage
from .domain.state import OfficeState
from .live import Hub
from .store.redis_store import QueueStore

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS: Final = 0.3   # at most ~3 recomputations a second per office under load
BUSY_SHARE: Final = 0.25            # and at most about a quarter of the time spent estimating
IDLE_REFRESH_SECONDS: Final = 30.0  # time passing changes estimates too, even when nothing happens
MODEL_REFRESH_SECONDS: Final = 60.0  # re-learn service times at least this often while visits finish
OPEN_DAY_FALLBACK_HOURS: Final = 8   # closing time assumed on a day the calendar says closed (demo mode)


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def forecast_view(forecast: WaitForecast) -> dict[str, Any]:
    """The compact JSON pushed to pages: per procedure and per waiting ticket."""
    return {
        "procedures": {p.procedure: {"median_minutes": _minutes(p.median_minutes), "low_minutes": _minutes(p.low_minutes),
                                     "high_minutes": _minutes(p.high_minutes), "waiting": p.waiting,
                                     "counters_open": p.counters_open, "past_closing": p.past_closing}
                       for p in forecast.procedures},
        "tickets": {t.number: {"median_minutes": _minutes(t.median_minutes), "low_minutes": _minutes(t.low_minutes),
                               "high_minutes": _minutes(t.high_minutes), "past_closing": t.past_closing}
                    for t in forecast.tickets},
        "at": forecast.now,
    }


def measured_durations(records: list[dict[str, Any]], today: str) -> list[MeasuredDuration]:
    """The store's service records as the model's measurements (visit and walk-up times)."""
    out = []
    today_date = dt.datetime.strptime(today, "%Y%m%d").date()
    for r in records:
        try:
            days_ago = (today_date - dt.datetime.strptime(r["day"], "%Y%m%d").date()).days
            if r.get("started_at") is not None:
                out.append(MeasuredDuration(r["procedure"], Stage.SERVICE, (r["finished_at"] - r["started_at"]) / 60000,
                                            counter=r.get("counter"), days_ago=days_ago))
                if r.get("called_at") is not None:
                    out.append(MeasuredDuration(r["procedure"], Stage.WALK_UP, (r["started_at"] - r["called_at"]) / 60000,
                                                counter=r.get("counter"), days_ago=days_ago))
        except (KeyError, TypeError, ValueError):
            continue  # a malformed record teaches nothing; the rest still count
    return out


def ongoing_visits(state: OfficeState, now_ms: int) -> list[MeasuredDuration]:
    """Visits at the counters now, as "at least this long" measurements: a slow morning shows early."""
    return [MeasuredDuration(t["procedure"], Stage.SERVICE, (now_ms - t["started_at"]) / 60000,
                             counter=t.get("counter"), ongoing=True)
            for t in state.active.values() if t.get("state") == "serving" and t.get("started_at")]


def office_snapshot(office: Office, state: OfficeState, model: ServiceModel, config: Config, now_ms: int,
                    now: dt.datetime) -> OfficeSnapshot:
    """The estimator's input, read from the live state."""
    closing = office.hours.closing_time(now)
    closing_ms = int(closing.timestamp() * 1000) if closing else now_ms + OPEN_DAY_FALLBACK_HOURS * 3_600_000
    counters = []
    for counter in office.counters.values():
        live = state.counters.get(counter.id, {})
        current = live.get("ticket", "")
        number = current.split("|", 1)[1] if "|" in current else None
        ticket = state.active.get(number) if number else None
        counters.append(CounterState(
            id=counter.id, procedures=counter.procedures, status=CounterStatus(live.get("status", "closed")),
            serving=ticket["procedure"] if ticket else None,
            called_at=ticket.get("called_at") if ticket else None,
            started_at=ticket.get("started_at") if ticket else None,
        ))
    waiting = tuple(WaitingTicket(t["number"], t["procedure"], int(t.get("priority", 0)), int(t["order"]), int(t["seq"]),
                                  int(t["issued_at"]))
                    for t in state.waiting.values())
    visible = tuple(p.id for p in office.procedures.values())
    return OfficeSnapshot(now=now_ms, closing=max(closing_ms, now_ms), calling_order=config.calling.order,
                          waiting=waiting, counters=tuple(counters), service=model, procedures=visible,
                          walk_ins_per_hour=state.issued_last_hour(now_ms))


class EstimateService:
    """Keeps every office's estimates fresh: a hub listener marks an office changed; one task recomputes."""

    def __init__(self, hub: Hub, store: QueueStore) -> None:
        self.hub = hub
        self.store = store
        self.config = store.config
        self._records: dict[str, list[MeasuredDuration]] = {}
        self._priors: dict[str, ServiceModel] = {}
        self._model_done: dict[str, tuple[int, float]] = {}
        self._dirty: set[str] = set(self.config.offices)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.computations = 0

    def start(self) -> None:
        """Listen to the hub and start recomputing."""
        self.hub.listeners.append(self._changed)
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="estimates")

    async def stop(self) -> None:
        """Stop recomputing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _changed(self, office: str, state: OfficeState) -> None:
        self._dirty.add(office)
        self._wake.set()

    async def measured(self, office: Office, state: OfficeState, *, fresh: bool = False) -> list[MeasuredDuration]:
        """Measured durations: finished visits (re-read when visits finished and a minute has passed, or
        ``fresh``) and the visits at the counters now."""
        done = sum(state.done_today.values())
        last = self._model_done.get(office.id)
        if fresh or last is None or (done != last[0] and time.monotonic() - last[1] > MODEL_REFRESH_SECONDS):
            self._records[office.id] = measured_durations(await self.store.service_records(office.id),
                                                          self.store.clock.day())
            self._model_done[office.id] = (done, time.monotonic())
        return self._records[office.id] + ongoing_visits(state, self.store.clock.now_ms())

    async def model(self, office: Office, state: OfficeState, *, fresh: bool = False) -> ServiceModel:
        """The office's service model as the estimates use it."""
        return ServiceModel.learn(office.procedures.values(), await self.measured(office, state, fresh=fresh))

    @staticmethod
    def _forecast(office: Office, snapshot: OfficeSnapshot, measured: list[MeasuredDuration]) -> WaitForecast:
        """Learn and estimate (in a worker thread: numpy does the heavy part without the GIL)."""
        model = ServiceModel.learn(office.procedures.values(), measured)
        return estimate_waits(dataclasses.replace(snapshot, service=model))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), IDLE_REFRESH_SECONDS)
            except TimeoutError:
                self._dirty.update(self.config.offices)
            self._wake.clear()
            began = time.monotonic()
            dirty, self._dirty = self._dirty, set()
            for office_id in dirty:
                state = self.hub.states.get(office_id)
                if state is None:
                    continue
                try:
                    office = self.config.offices[office_id]
                    measured = await self.measured(office, state)
                    # The snapshot is read here, on the event loop, so the worker never sees the state change.
                    now_ms = self.store.clock.now_ms()
                    prior = self._priors.setdefault(office_id, ServiceModel.learn(office.procedures.values()))
                    snapshot = office_snapshot(office, state, prior, self.config, now_ms, self.store.clock.local(now_ms))
                    seq = state.seq
                    forecast = await loop.run_in_executor(None, self._forecast, office, snapshot, measured)
                    self.computations += 1
                    self.hub.publish_estimates(office_id, forecast_view(forecast), seq)
                except Exception:  # noqa: BLE001 - an estimate failing must never stop the queue
                    log.exception("estimating waits at %s failed", office_id)
            # A slow computation (a very long queue) spaces the next one out, so queue work keeps the CPU.
            spent = time.monotonic() - began
            await asyncio.sleep(max(MIN_INTERVAL_SECONDS, spent * (1 - BUSY_SHARE) / BUSY_SHARE))
