"""Live wait estimates: recomputed when an office changes, at most a few times a second, and pushed.

The domain's :func:`estimate_waits` does the work; this module feeds it from the hub's
:class:`OfficeState` and the measured service times in the store, runs it off the event loop,
and hands the result to the hub, which tells every subscriber.

Its inputs besides the tickets and counters: today's bookings not yet checked in (``O bkday:{day}``,
``O bk:{id}``) as expected arrivals, with the no-show rate and lateness learned from the bookings of
the last four weeks (check-in time against slot start); the back office — open and claimed tasks
of every office whose cards the same back office prepares, the people on back-office work (the
plan, ``[offices.back_office] people`` and ``people_by_hour``, at least those active on tasks
lately: :func:`back_office_view`) — and the measured
back-office tasks (``O tasktimes``) for the preparation and post-issuance times.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .aio import stop_tasks
from .child_process import exit_with_server
from .clock import Clock
from .config import Config, Office
from .domain.estimate import (DEFAULT_RUNS, BackOffice, BackOfficeTask, CounterState, ExpectedArrival,
                              OfficeSnapshot, WaitForecast, WaitingTicket, estimate_waits, waiting_card_score)
from .domain.model import BookedBeforeSlot, CallingOrder, Counter, CounterStatus
from .domain.policy import booked_precedence_from
from .domain.service_model import BookingBehaviour, BookingOutcome, MeasuredDuration, ServiceModel, Stage
from .domain.state import OfficeState
from .live import Hub
from .store.redis_store import QueueStore

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS: Final = 0.3   # at most ~3 recomputations a second per office under load
BUSY_SHARE: Final = 0.25            # and at most about a quarter of the time spent estimating
IDLE_REFRESH_SECONDS: Final = 30.0  # time passing changes estimates too, even when nothing happens
MODEL_REFRESH_SECONDS: Final = 60.0  # re-learn service times at least this often while visits finish
OPEN_DAY_FALLBACK_HOURS: Final = 8   # hours of work assumed ahead when open outside the calendar (demo mode)
RUNS_FULL_UP_TO: Final = 600        # waiting tickets up to which every estimate simulates DEFAULT_RUNS futures
MIN_RUNS: Final = 100
WORKER_NICENESS: Final = 10
BOOKING_HISTORY_DAYS: Final = 28     # past days whose bookings teach the no-show rate and lateness
TASK_TIMES_READ: Final = 2000        # measured back-office tasks read for the model, newest first
ACTIVE_MINUTES: Final = 15            # a back-office task finished this recently: its person is on duty now
BACK_OFFICE_PLAN_HOURS: Final = 24    # hours of the back office's plan the estimate follows
BOOKING_FIELDS: Final = ("id", "procedure", "day", "state", "slot_start", "slot_end", "changed_at", "task")


def _init_worker(niceness: int, data_dir: str) -> None:
    """The estimates worker's start: a lower CPU priority, a lifetime bound to the server's, and a
    place for numba's cache of the compiled estimator loop (beside the module where the install is
    writable, as in the README's checkout; else in the data folder, never a shared temporary one)."""
    if niceness:
        os.nice(niceness)
    exit_with_server()
    if "NUMBA_CACHE_DIR" not in os.environ and not os.access(Path(__file__).parent / "domain", os.W_OK):
        os.environ["NUMBA_CACHE_DIR"] = str(Path(data_dir) / "numba-cache")


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


def task_durations(records: list[dict[str, Any]], today: str, day_of: Callable[[int], str]) -> list[MeasuredDuration]:
    """Measured back-office tasks (claimed → done) as the model's preparation and post-issuance times."""
    stages = {"prepare": Stage.PREP, "post": Stage.POST}
    today_date = dt.datetime.strptime(today, "%Y%m%d").date()
    out = []
    for r in records:
        try:
            stage = stages[r["kind"]]
            done = int(r["done_at"])
            days_ago = (today_date - dt.datetime.strptime(day_of(done), "%Y%m%d").date()).days
            out.append(MeasuredDuration(r["procedure"], stage, (done - int(r["claimed_at"])) / 60000, days_ago=days_ago))
        except (KeyError, TypeError, ValueError):
            continue  # a task recorded without its times teaches nothing
    return out


def booking_outcomes(bookings: list[dict[str, Any]], today: str) -> list[BookingOutcome]:
    """Settled bookings as outcomes: checked in (lateness: the check-in, its last change, against slot start) or no-show."""
    today_date = dt.datetime.strptime(today, "%Y%m%d").date()
    out = []
    for b in bookings:
        try:
            days_ago = (today_date - dt.datetime.strptime(str(b["day"]), "%Y%m%d").date()).days
            if b.get("state") == "checked_in":
                out.append(BookingOutcome((int(b["changed_at"]) - int(b["slot_start"])) / 60000, days_ago))
            elif b.get("state") == "no_show":
                out.append(BookingOutcome(None, days_ago))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def people_on_back_office(work: Office, active: int, now: dt.datetime) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """The people the estimate plans the back office with, and the planned hours with fewer (``BackOffice``).

    The plan (``[offices.back_office] people``, per hour ``people_by_hour``) for the next
    BACK_OFFICE_PLAN_HOURS hours; in the current hour at least the ``active`` people (claiming a
    task now, or finished one lately): somebody on the panel is on duty whatever the plan says.
    """
    hour = now.replace(minute=0, second=0, microsecond=0)
    plan = []
    for k in range(BACK_OFFICE_PLAN_HOURS):
        start = hour + dt.timedelta(hours=k)
        planned = getattr(work, "back_office_people_by_hour", {}).get(start.hour, getattr(work, "back_office_people", 1))
        plan.append((int(start.timestamp() * 1000), int((start + dt.timedelta(hours=1)).timestamp() * 1000),
                     max(planned, active) if k == 0 else planned))
    people = max(n for _, _, n in plan)
    return people, tuple(p for p in plan if p[2] < people)


def back_office_view(office: Office, state: OfficeState, others: Sequence[tuple[Office, OfficeState]],
                     config: Config, now: dt.datetime | None = None,
                     task_records: Sequence[Mapping[str, Any]] = ()) -> BackOffice:
    """The back office that prepares ``office``'s cards, as the estimate needs it.

    Tasks of the other offices it works for (``others``) come with their ids prefixed by their
    office and, when a visitor waits there for the card, that visitor's priority and issue time
    (their ``line_score``): the panel puts those first too. Its people: the plan
    (:func:`people_on_back_office`), at least those active now — claiming a task, or having
    finished one (``task_records``, the store's ``O tasktimes``) in the last ACTIVE_MINUTES.
    There is no sign-in of the panel apart from the staff session, so recent work is the sign
    that somebody is on back-office duty; a person between two tasks still counts.
    """
    tasks: list[BackOfficeTask] = []
    active: set[str] = set()
    for where, live in [(office, state), *others]:
        for task in getattr(live, "tasks", {}).values():
            if task.get("state") not in ("open", "claimed") or task.get("kind") not in ("prepare", "post"):
                continue
            if task.get("state") == "claimed":
                active.add(task.get("claimed_by") or f"{where.id}:{task['id']}")
            held = live.waiting.get(task.get("ticket") or "")
            held = held if held is not None and held.get("prep") == "pending" else None
            due = task.get("due_at")
            common = {"kind": task["kind"], "procedure": task["procedure"], "created_at": int(task["created_at"]),
                      "due_at": int(due) if due is not None else None,
                      "claimed_at": int(task["claimed_at"]) if task.get("state") == "claimed" and task.get("claimed_at")
                      else None}
            if where is office:
                tasks.append(BackOfficeTask(str(task["id"]), ticket=held["number"] if held else None, **common))
            else:
                score = (waiting_card_score(int(held.get("priority") or 0), int(held["issued_at"]))
                         if held is not None else None)
                tasks.append(BackOfficeTask(f"{where.id}:{task['id']}", line_score=score, **common))
    work = config.offices.get(getattr(office, "work_office", office.id), office)
    now = now or dt.datetime.now(dt.UTC)
    since = now.timestamp() * 1000 - ACTIVE_MINUTES * 60_000
    active |= {str(r["by"]) for r in task_records if r.get("by") and float(r.get("done_at") or 0) >= since}
    people, off_duty = people_on_back_office(work, len(active), now)
    prepared = tuple(p.id for p in office.procedures.values() if "prepare" in getattr(p, "stages", ()))
    return BackOffice(people, tuple(tasks), prepared, off_duty)


def ongoing_visits(active: Mapping[str, Mapping[str, Any]], now_ms: int) -> list[MeasuredDuration]:
    """Visits at the counters now, as "at least this long" measurements: a slow morning shows early."""
    return [MeasuredDuration(t["procedure"], Stage.SERVICE, (now_ms - t["started_at"]) / 60000,
                             counter=t.get("counter"), ongoing=True)
            for t in active.values() if t.get("state") == "serving" and t.get("started_at")]


@dataclass(frozen=True, slots=True)
class EstimateInputs:
    """What one estimate needs, copied from the live state on the event loop.

    Plain dicts and lists: they cross to the worker process far faster than thousands of objects.
    """

    office: Office
    calling_order: CallingOrder
    now_ms: int
    closing_ms: int
    today: str
    waiting: list[dict[str, Any]]
    counters: dict[str, dict[str, Any]]
    active: dict[str, dict[str, Any]]
    walk_ins_per_hour: dict[str, float]
    records: list[dict[str, Any]]
    clock_zone: dt.tzinfo
    booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN
    bookings: list[dict[str, Any]] = field(default_factory=list)
    """Today's bookings (every state): the ones not yet checked in are expected arrivals."""
    booking_history: list[dict[str, Any]] = field(default_factory=list)
    """Bookings of the last days (settled ones teach the no-show rate and lateness)."""
    task_records: list[dict[str, Any]] = field(default_factory=list)
    back_office: BackOffice = BackOffice()
    no_show_prior: float = 0.1
    lateness_prior_minutes: float = 5.0

    @classmethod
    def read(cls, office: Office, state: OfficeState, records: list[dict[str, Any]], config: Config,
             clock: Clock, *, bookings: list[dict[str, Any]] | None = None,
             booking_history: list[dict[str, Any]] | None = None, task_records: list[dict[str, Any]] | None = None,
             others: Sequence[tuple[Office, OfficeState]] = ()) -> EstimateInputs:
        """Copy what the estimate needs from the live state (on the event loop, so nothing changes meanwhile).

        ``others`` are the offices (and their live states) whose cards the same back office prepares.
        """
        now_ms = clock.now_ms()
        closing = office.hours.closing_time(clock.local(now_ms))
        closing_ms = int(closing.timestamp() * 1000) if closing else now_ms
        if config.server.always_open and closing_ms <= now_ms:
            # Open outside the calendar (the demo): assume a working day still ahead, not "closed already".
            closing_ms = now_ms + OPEN_DAY_FALLBACK_HOURS * 3_600_000
        return cls(office=office, calling_order=config.calling.order, now_ms=now_ms, closing_ms=max(closing_ms, now_ms),
                   today=clock.day(now_ms), waiting=list(state.waiting.values()), counters=dict(state.counters),
                   active=dict(state.active), walk_ins_per_hour=state.issued_last_hour(now_ms), records=records,
                   clock_zone=clock.zone, booked_before_slot=config.calling.booked_before_slot,
                   bookings=list(bookings or ()), booking_history=list(booking_history or ()),
                   task_records=list(task_records or ()),
                   back_office=back_office_view(office, state, others, config, clock.local(now_ms), task_records or ()),
                   no_show_prior=config.estimates.booking_no_show_prior,
                   lateness_prior_minutes=config.estimates.booking_lateness_minutes_prior)

    def measured(self) -> list[MeasuredDuration]:
        """Finished visits, the visits at the counters now, and finished back-office tasks."""
        return (measured_durations(self.records, self.today) + ongoing_visits(self.active, self.now_ms)
                + task_durations(self.task_records, self.today, self._day_of))

    def _day_of(self, ms: int) -> str:
        """The office day (``YYYYMMDD``) of an epoch-ms time."""
        return dt.datetime.fromtimestamp(ms / 1000, self.clock_zone).strftime("%Y%m%d")

    def behaviour(self) -> BookingBehaviour:
        """Booked visitors' show chance and lateness, learned from the settled bookings of the last days."""
        settled = {str(b.get("id")): b for b in self.booking_history}
        settled.update((str(b.get("id")), b) for b in self.bookings)  # today's newest state
        return BookingBehaviour.learn(booking_outcomes(list(settled.values()), self.today),
                                      no_show_prior=self.no_show_prior, lateness_sd_prior=self.lateness_prior_minutes)

    def expected(self, behaviour: BookingBehaviour) -> tuple[ExpectedArrival, ...]:
        """Today's bookings not yet checked in, still to come (not released), as expected arrivals."""
        open_tasks = {t.id for t in self.back_office.tasks if t.kind == "prepare"}
        rules = getattr(self.office, "bookings", None)
        late = float(rules.late_minutes) if rules is not None else None
        at_check_in = self.booked_before_slot is BookedBeforeSlot.AT_CHECK_IN
        out = []
        for b in self.bookings:
            try:
                if b.get("state") != "booked" or b.get("procedure") not in self.office.procedures:
                    continue
                slot_end = int(b["slot_end"]) if b.get("slot_end") is not None else None
                if slot_end is not None and slot_end <= self.now_ms:
                    continue  # released at the slot's end (the hub's minute step may not have run yet)
                task = str(b["task"]) if b.get("task") not in (None, "") else None
                out.append(ExpectedArrival(
                    str(b["procedure"]), int(b["slot_start"]), 0, behaviour.show_probability, behaviour.lateness_sd,
                    behaviour.lateness_mean, late_after_minutes=late, slot_end=slot_end,
                    precedence_at_check_in=at_check_in, task=task if task in open_tasks else None))
            except (KeyError, TypeError, ValueError):
                continue
        return tuple(out)

    def breaks(self, counter: Counter) -> tuple[tuple[int, int], ...]:
        """A counter's planned breaks today, in epoch ms."""
        zone = self.clock_zone
        today = dt.datetime.strptime(self.today, "%Y%m%d").date()
        return tuple((int(dt.datetime.combine(today, start, zone).timestamp() * 1000),
                      int(dt.datetime.combine(today, end, zone).timestamp() * 1000)) for start, end in counter.breaks)

    def snapshot(self, model: ServiceModel, behaviour: BookingBehaviour | None = None) -> OfficeSnapshot:
        """The estimator's input (``behaviour``: booked visitors', learned by :meth:`behaviour` when not given)."""
        counters = []
        for counter in self.office.counters.values():
            live = self.counters.get(counter.id, {})
            current = live.get("ticket", "")  # DAY|NUMBER, as the live state keys its tickets
            ticket = self.active.get(current) if current else None
            # What the supervisor set the counter to serve today (call-next uses it), else its configured ones.
            today_only = live.get("procedures") if live.get("procedures_day") == self.today else None
            counters.append(CounterState(
                id=counter.id, procedures=tuple(today_only or counter.procedures),
                status=CounterStatus(live.get("status", "closed")),
                serving=ticket["procedure"] if ticket else None,
                called_at=ticket.get("called_at") if ticket else None,
                started_at=ticket.get("started_at") if ticket else None,
                breaks=self.breaks(counter),
            ))
        waiting = tuple(WaitingTicket(t["number"], t["procedure"], int(t.get("priority", 0)), int(t["order"]),
                                      int(t["seq"]), int(t["issued_at"]), bool(t.get("returning")),
                                      booked_precedence_from(bool(t.get("booked")), bool(t.get("handed_over_from")),
                                                             t.get("slot_start"), int(t["issued_at"]),
                                                             self.booked_before_slot),
                                      t.get("prep") == "pending", str(t["task"]) if t.get("task") else None)
                        for t in self.waiting)
        return OfficeSnapshot(now=self.now_ms, closing=self.closing_ms, calling_order=self.calling_order,
                              waiting=waiting, counters=tuple(counters), service=model,
                              expected=self.expected(behaviour or self.behaviour()),
                              procedures=tuple(self.office.procedures), walk_ins_per_hour=self.walk_ins_per_hour,
                              back_office=self.back_office, booked_before_slot=self.booked_before_slot)


def runs_for(waiting: int) -> int:
    """Fewer simulated futures for very long queues, so one estimate's cost stays bounded."""
    return max(MIN_RUNS, min(DEFAULT_RUNS, DEFAULT_RUNS * RUNS_FULL_UP_TO // max(waiting, 1)))


def forecast_in_worker(inputs: EstimateInputs) -> dict[str, Any]:
    """Learn the service model and booked visitors' behaviour, estimate, and return the compact view (in the worker)."""
    model = ServiceModel.learn(inputs.office.procedures.values(), inputs.measured())
    return forecast_view(estimate_waits(inputs.snapshot(model, inputs.behaviour()), runs=runs_for(len(inputs.waiting))))


class EstimateService:
    """Keeps every office's estimates fresh: a hub listener marks an office changed; one task recomputes."""

    def __init__(self, hub: Hub, store: QueueStore, *, busy_share: float = BUSY_SHARE) -> None:
        self.hub = hub
        self.busy_share = busy_share
        self.data_dir = store.config.server.data_dir
        """The share of its time at most spent estimating (``serve --workers N``: each takes 1/N of it)."""
        self.store = store
        self.config = store.config
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._task_records: dict[str, list[dict[str, Any]]] = {}
        self._model_done: dict[str, tuple[int, float]] = {}
        self._dirty: set[str] = set(self.config.offices)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool: ProcessPoolExecutor | None = None
        self.timed: list[Callable[[str, float], None]] = []
        """Told ``(office, seconds)`` after each office's recomputation (the metrics' run-time histogram)."""

    def start(self) -> None:
        """Listen to the hub and start recomputing."""
        # A worker process, not a thread: the simulation then never holds this process's GIL,
        # so issuing tickets and the call fan-out keep their latency while estimates run.
        if sys.platform == "win32":
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(0, str(self.data_dir)))
        else:
            # Lower priority too: on a small machine, issuing and calls come before a fresher estimate.
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"),
                                             initializer=_init_worker, initargs=(WORKER_NICENESS, str(self.data_dir)))
        self.hub.listeners.append(self._changed)
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="estimates")

    async def stop(self) -> None:
        """Stop recomputing and the worker process."""
        await stop_tasks([self._task])
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _changed(self, office: str, state: OfficeState) -> None:
        self._dirty.add(office)
        self._wake.set()

    async def inputs(self, office: Office, state: OfficeState, *, fresh: bool = False) -> EstimateInputs:
        """The estimate's inputs; service records, past bookings and measured back-office tasks are re-read
        when visits finished and a minute has passed; today's bookings every time (one pipeline)."""
        done = sum(state.done_today.values())
        last = self._model_done.get(office.id)
        clock = self.store.clock
        today = clock.day(clock.now_ms())
        if fresh or last is None or (done != last[0] and time.monotonic() - last[1] > MODEL_REFRESH_SECONDS):
            self._records[office.id] = await self.store.service_records(office.id)
            days = [clock.day(clock.now_ms() - k * 86_400_000) for k in range(1, BOOKING_HISTORY_DAYS + 1)]
            self._history[office.id] = await self.bookings(office.id, days)
            self._task_records[office.id] = await self.task_records(office.id)
            self._model_done[office.id] = (done, time.monotonic())
        work = getattr(office, "work_office", office.id)
        others = [(o, self.hub.states[o.id]) for o in self.config.offices.values()
                  if o.id != office.id and getattr(o, "work_office", o.id) == work and o.id in self.hub.states]
        return EstimateInputs.read(office, state, self._records[office.id], self.config, clock,
                                   bookings=await self.bookings(office.id, [today]),
                                   booking_history=self._history[office.id],
                                   task_records=self._task_records[office.id], others=others)

    async def bookings(self, office_id: str, days: Sequence[str]) -> list[dict[str, Any]]:
        """The bookings of ``days`` (``O bkday:{day}``), each with the fields the estimate reads."""
        key = self.store.office_key(office_id)
        redis = self.store.redis
        async with redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.zrange(f"{key}bkday:{day}", 0, -1)
            ids = [i.decode() for found in await pipe.execute() for i in found]
        if not ids:
            return []
        async with redis.pipeline(transaction=False) as pipe:
            for booking_id in ids:
                pipe.hmget(f"{key}bk:{booking_id}", list(BOOKING_FIELDS))
            rows = await pipe.execute()
        out = []
        for row in rows:
            b = {name: value.decode() for name, value in zip(BOOKING_FIELDS, row, strict=True) if value is not None}
            if "id" not in b:
                continue  # expired since the day's list was read
            for name in ("slot_start", "slot_end", "changed_at"):
                if name in b:
                    b[name] = int(float(b[name]))
            out.append(b)
        return out

    async def task_records(self, office_id: str) -> list[dict[str, Any]]:
        """Measured back-office tasks of an office, newest first (``O tasktimes``)."""
        raw = await self.store.redis.lrange(f"{self.store.office_key(office_id)}tasktimes", 0, TASK_TIMES_READ - 1)
        out = []
        for r in raw:
            try:
                out.append(json.loads(r))
            except ValueError:
                continue
        return out

    async def model(self, office: Office, state: OfficeState, *, fresh: bool = False) -> ServiceModel:
        """The office's service model as the estimates use it."""
        inputs = await self.inputs(office, state, fresh=fresh)
        return ServiceModel.learn(office.procedures.values(), inputs.measured())

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
                office_began = time.monotonic()
                try:
                    office = self.config.offices[office_id]
                    inputs = await self.inputs(office, state)
                    view = await loop.run_in_executor(self._pool, forecast_in_worker, inputs)
                    self.hub.publish_estimates(office_id, view)
                    for timed in self.timed:
                        timed(office_id, time.monotonic() - office_began)
                except Exception:  # noqa: BLE001 - an estimate failing must never stop the queue
                    log.exception("estimating waits at %s failed", office_id)
            # A slow computation (a very long queue) spaces the next one out, so queue work keeps the CPU.
            spent = time.monotonic() - began
            await asyncio.sleep(max(MIN_INTERVAL_SECONDS, spent * (1 - self.busy_share) / self.busy_share))
