"""Staffing advice (要員配置): how many counters each hour needs to meet the service level.

For each hour of a coming day the expected arrivals (from the archive: mean walk-ins of that weekday
and hour on comparable days, plus bookings already made) and the measured service time give a load.
Two methods say how many counters keep ``target_share`` of visitors called within
``target_minutes``:

- **Erlang C** (M/M/c): exact for Poisson arrivals and exponential service times, the textbook
  answer and the contract's usual yardstick;
- **simulation of the calling policy**: visitors arrive as a Poisson stream, service times are
  drawn from the measured distribution (lognormal with the measured mean and coefficient of
  variation), and each free counter calls by ``policy.choose_next``, the rule the counters use.

Where service times are far from exponential (coefficient of variation ≠ 1) the two differ; the
advice shows both and recommends the larger. The wait estimator (:func:`.estimate.estimate_waits`)
then says what wait it would show a visitor at a typical moment of the hour, with the current and
with the recommended counters (:func:`estimator_outlook`). Each hour is treated as a steady state of its own
(the usual "stationary independent period" approximation); an overloaded hour (load ≥ counters)
meets nothing. Pure Python and numpy: no I/O.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from statistics import NormalDist
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from .estimate import CounterState, OfficeSnapshot, WaitingTicket, estimate_waits
from .model import CallingOrder, NumberFormat, Procedure, Ticket, TicketState
from .policy import choose_next
from .service_model import MeasuredDuration, ServiceModel, Stage

MAX_COUNTERS: Final = 40
SIMULATED_ARRIVALS: Final = 30_000
"""Visitors per simulated steady state. Waits near saturation are strongly correlated from one
visitor to the next, so it takes this many for the share within target to be good to about ±2 %
(4,000 left it 6 % off Erlang C at 7 counters and 93 % load)."""
WARM_UP: Final = 500
"""Simulated visitors not counted: the queue starts empty, the steady state does not."""
BACK_OFFICE_UTILISATION: Final = 0.85
"""Share of an hour a back-office person spends on cards (the rest: interruptions, checking)."""


@dataclass(frozen=True, slots=True)
class HourLoad:
    """One hour's expected work: arrivals per hour, service minutes (mean, CV), back-office minutes."""

    hour: int
    arrivals: float
    service_minutes: float
    service_cv: float
    back_office_minutes: float = 0.0
    booked: float = 0.0
    current_counters: int = 0


@dataclass(frozen=True, slots=True)
class HourAdvice:
    """The advice for one hour: counters by each method, and the service level with the current plan."""

    hour: int
    arrivals: float
    service_minutes: float
    current_counters: int
    current_share_erlang: float
    current_share_simulated: float
    current_mean_wait_simulated: float | None
    counters_erlang: int
    counters_simulated: int
    recommended: int
    recommended_share_simulated: float
    recommended_mean_wait_simulated: float | None
    back_office_people: int
    current_estimator_minutes: float | None = None
    recommended_estimator_minutes: float | None = None
    recommended_estimator_high_minutes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


# -- Erlang C ---------------------------------------------------------------------------------


def erlang_c(counters: int, load: float) -> float:
    """The chance an arrival waits at all (all ``counters`` busy) with offered ``load`` in Erlangs."""
    if load <= 0:
        return 0.0
    if load >= counters:
        return 1.0
    # Erlang B by its stable recursion, then C from B.
    b = 1.0
    for k in range(1, counters + 1):
        b = load * b / (k + load * b)
    return counters * b / (counters - load * (1 - b))


def erlang_share_within(counters: int, arrivals_per_hour: float, service_minutes: float, target_minutes: float) -> float:
    """Share of visitors called within ``target_minutes`` in M/M/c (steady state)."""
    if arrivals_per_hour <= 0:
        return 1.0
    if counters <= 0:
        return 0.0
    lam = arrivals_per_hour / 60
    load = lam * service_minutes
    if load >= counters:
        return 0.0
    rate = counters / service_minutes - lam
    return 1.0 - erlang_c(counters, load) * math.exp(-rate * target_minutes)


# -- the simulation ---------------------------------------------------------------------------


def lognormal_sampler(mean: float, cv: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` service times with the given mean and coefficient of variation (cv 1 → exponential, as M/M/c)."""
    if abs(cv - 1.0) < 1e-9:
        return rng.exponential(mean, n)
    sigma2 = math.log(1 + cv * cv)
    return rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2), n)


def simulate(counters: int, arrivals_per_hour: float, service_minutes: float, service_cv: float,
             target_minutes: float, *, procedure: str = "visit", arrivals: int = SIMULATED_ARRIVALS,
             seed: int = 0) -> tuple[float, float | None]:
    """(share within target, mean wait) of visitors when ``counters`` counters call by the policy.

    The line is kept as one first-come-first-served lane per priority class: within a class the
    policy calls by place in line, so ``policy.choose_next`` only ever needs the lanes' heads, and a
    long queue near saturation costs no more per call than a short one."""
    if arrivals_per_hour <= 0:
        return 1.0, None
    if counters <= 0 or arrivals_per_hour / 60 * service_minutes >= counters:
        return 0.0, None
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(60 / arrivals_per_hour, arrivals)).tolist()
    durations = lognormal_sampler(service_minutes, service_cv, rng, arrivals).tolist()
    free = [(0.0, c) for c in range(counters)]   # (when the counter next calls, counter)
    lanes: dict[int, deque[Ticket]] = defaultdict(deque)
    waiting = 0
    waits: list[float] = []
    served = (procedure,)
    next_arrival = 0
    while next_arrival < arrivals or waiting:
        now, counter = heapq.heappop(free)
        # Everybody who has arrived by the time this counter is free is in line (or the next one, if nobody is).
        while next_arrival < arrivals and (times[next_arrival] <= now or not waiting):
            lanes[0].append(Ticket(number=str(next_arrival), procedure=procedure, state=TicketState.WAITING,
                                   seq=next_arrival, order=next_arrival, issued_at=int(times[next_arrival] * 60_000)))
            waiting += 1
            next_arrival += 1
        heads = [lane[0] for lane in lanes.values() if lane]
        ticket = choose_next({procedure: heads}, served, CallingOrder.PRIORITY_THEN_WAITED)
        assert ticket is not None  # somebody is waiting here
        lanes[ticket.priority].popleft()
        waiting -= 1
        i = ticket.seq
        call = max(now, times[i])
        if i >= WARM_UP:
            waits.append(call - times[i])
        heapq.heappush(free, (call + durations[i], counter))
    w = np.asarray(waits)
    return float((w <= target_minutes).mean()), float(w.mean())


ESTIMATOR_RUNS: Final = 200
ESTIMATOR_SAMPLE: Final = 200
"""Service times handed to the estimator's model: quantiles of the measured distribution."""


def estimator_outlook(counters: int, waiting: int, service_minutes: float, service_cv: float,
                      seed: int = 0) -> tuple[float | None, float | None]:
    """(median, 90 % point) of the wait ``estimate_waits`` gives a visitor arriving behind ``waiting``
    visitors with ``counters`` counters all busy — the wait estimator's view of a typical moment.

    The estimator plays the calling policy forward with its own service model (learned here from
    the measured distribution's quantiles) and visits already under way at every counter."""
    if counters <= 0:
        return None, None
    procedure = Procedure("visit", "visit", NumberFormat(), service_minutes)
    sigma = math.sqrt(math.log(1 + service_cv * service_cv))
    mu = math.log(service_minutes) - sigma * sigma / 2
    normal = NormalDist()
    measured = [MeasuredDuration("visit", Stage.SERVICE,
                                 math.exp(mu + sigma * normal.inv_cdf((i + 0.5) / ESTIMATOR_SAMPLE)), str(i % counters))
                for i in range(ESTIMATOR_SAMPLE)]
    model = ServiceModel.learn([procedure], measured)
    now = 1_800_000_000_000
    # Visits under way: started evenly over the last mean visit (the counters are busy at a typical moment).
    at_counters = tuple(CounterState(str(i), ("visit",), serving="visit", called_at=now - int(elapsed),
                                     started_at=now - int(elapsed))
                        for i, elapsed in enumerate(service_minutes * 60_000 * (k + 0.5) / counters
                                                    for k in range(counters)))
    line = tuple(WaitingTicket(f"W{i}", "visit", 0, i + 1, i + 1, now - (waiting - i) * 60_000) for i in range(waiting))
    snapshot = OfficeSnapshot(now=now, closing=now + 12 * 3_600_000, calling_order=CallingOrder.PRIORITY_THEN_WAITED,
                              waiting=line, counters=at_counters, service=model, procedures=("visit",))
    outlook = estimate_waits(snapshot, runs=ESTIMATOR_RUNS, seed=seed).procedure("visit")
    return outlook.median_minutes, outlook.high_minutes


def fewest_counters(share: Any, target_share: float) -> int:
    """The fewest counters ``c`` (1…MAX_COUNTERS) for which ``share(c)`` reaches ``target_share``."""
    for c in range(1, MAX_COUNTERS + 1):
        if share(c) >= target_share:
            return c
    return MAX_COUNTERS


def advise_hour(load: HourLoad, target_minutes: float, target_share: float, seed: int = 0) -> HourAdvice:
    """Counters for one hour by Erlang C and by the simulation; the larger is recommended."""
    simulated: dict[int, tuple[float, float | None]] = {}

    def sim(c: int) -> tuple[float, float | None]:
        # Each count simulated once (same seed: common random numbers, so more counters never look worse).
        if c not in simulated:
            simulated[c] = simulate(c, load.arrivals, load.service_minutes, load.service_cv, target_minutes, seed=seed)
        return simulated[c]

    def erl(c: int) -> float:
        return erlang_share_within(c, load.arrivals, load.service_minutes, target_minutes)

    by_erlang = fewest_counters(erl, target_share) if load.arrivals > 0 else 0
    by_simulation = fewest_counters(lambda c: sim(c)[0], target_share) if load.arrivals > 0 else 0
    recommended = max(by_erlang, by_simulation)
    current = sim(load.current_counters)
    best = sim(recommended) if recommended else (1.0, None)
    people = math.ceil(load.back_office_minutes / 60 / BACK_OFFICE_UTILISATION - 1e-9) if load.back_office_minutes else 0

    def typical(c: int, mean_wait: float | None) -> tuple[float | None, float | None]:
        # The line a visitor finds at a typical moment (Little: arrivals per minute × mean wait); none overloaded.
        if mean_wait is None or c <= 0:
            return None, None
        return estimator_outlook(c, round(load.arrivals / 60 * mean_wait), load.service_minutes, load.service_cv, seed)

    now_typical = typical(load.current_counters, current[1])
    best_typical = typical(recommended, best[1])
    return HourAdvice(hour=load.hour, arrivals=load.arrivals, service_minutes=load.service_minutes,
                      current_counters=load.current_counters, current_share_erlang=erl(load.current_counters),
                      current_share_simulated=current[0], current_mean_wait_simulated=current[1],
                      counters_erlang=by_erlang, counters_simulated=by_simulation, recommended=recommended,
                      recommended_share_simulated=best[0], recommended_mean_wait_simulated=best[1],
                      back_office_people=people, current_estimator_minutes=now_typical[0],
                      recommended_estimator_minutes=best_typical[0], recommended_estimator_high_minutes=best_typical[1])


# -- loads from the archive -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayKind:
    """Which past days are comparable to a coming one: the same weekday, or holiday openings; March apart."""

    weekday: int
    holiday_opening: bool
    march: bool

    @classmethod
    def of(cls, date: dt.date, holiday_opening: bool) -> DayKind:
        return cls(weekday=date.weekday(), holiday_opening=holiday_opening, march=date.month == 3)

    def matches(self, other: DayKind) -> bool:
        if self.holiday_opening or other.holiday_opening:
            return self.holiday_opening == other.holiday_opening and self.march == other.march
        return self.weekday == other.weekday and self.march == other.march


def hourly_loads(visits: Iterable[Mapping[str, Any]], tasks: Iterable[Mapping[str, Any]], *, day: dt.date,
                 kind_of: Any, hour_of: Any, hours: Sequence[int], booked: Mapping[int, float],
                 current: Mapping[int, int], city_only: frozenset[str] = frozenset()) -> list[HourLoad]:
    """Each opening hour's load for ``day`` from past visit and task records.

    ``kind_of(day_str)`` gives a past day's :class:`DayKind`; ``hour_of(day_str, ms)`` its local hour.
    Walk-in arrivals per hour are averaged over the comparable past days that had visitors; booked
    visitors (``booked``: hour → count) come on top. City-staff-only procedures are left out (their
    counters are the city's, not the contractor's to staff)."""
    want = kind_of(day.strftime("%Y%m%d"))
    arrivals: dict[int, int] = defaultdict(int)
    service: list[float] = []
    days: set[str] = set()
    for v in visits:
        if v.get("procedure") in city_only or not want.matches(kind_of(v["day"])):
            continue
        days.add(v["day"])
        if v.get("channel", "walk_in") == "walk_in":
            arrivals[hour_of(v["day"], v["issued_at"])] += 1
        if v.get("state") == "done" and v.get("started_at") and v.get("finished_at") and not v.get("handovers"):
            service.append((v["finished_at"] - v["started_at"]) / 60_000)
    task_minutes: dict[int, float] = defaultdict(float)
    task_days: set[str] = set()
    for t in tasks:
        claimed, done = number_or_none(t.get("claimed_at")), number_or_none(t.get("done_at"))
        if claimed and done and t.get("state", "done") == "done" and want.matches(kind_of(t["day"])):
            task_days.add(t["day"])
            task_minutes[hour_of(t["day"], int(claimed))] += (done - claimed) / 60_000
    n_days = max(len(days), 1)
    mean = float(np.mean(service)) if service else 10.0
    cv = float(np.std(service) / mean) if len(service) > 1 else 1.0
    return [HourLoad(hour=h, arrivals=arrivals.get(h, 0) / n_days + booked.get(h, 0.0), service_minutes=mean,
                     service_cv=max(cv, 0.05), back_office_minutes=task_minutes.get(h, 0.0) / max(len(task_days), 1),
                     booked=booked.get(h, 0.0), current_counters=current.get(h, 0))
            for h in hours]


def number_or_none(value: Any) -> float | None:
    """A number from a record field (other areas' records may carry numbers as strings)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
