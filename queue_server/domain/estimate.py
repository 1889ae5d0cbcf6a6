"""Wait estimation: when will each waiting ticket be called?

:func:`estimate_waits` plays the office's real calling policy (:mod:`.policy`) forward from an
:class:`OfficeSnapshot`, many times with random service times from the
:class:`~.service_model.ServiceModel`, and reports for every waiting ticket the median and the
10–90 % range of the minutes until its call, plus the same for a ticket issued now in each
procedure (lobby display, congestion page).

How the simulation reads the snapshot:

- An open counter serving a visitor becomes free after the *rest* of that visit: a lognormal
  duration conditioned on the minutes already spent (a visit already past its 95th percentile is
  treated as one just reaching it: most likely somebody forgot to press finish).
- A paused or closed counter calls nobody, unless ``resumes_at`` says when it will; a planned
  break (lunch) stops calling for its duration, and ``until`` for the rest of the day. A visit
  started just before a break runs to its end. A counter paused inside one of its planned
  breaks is taking that break: without a ``resumes_at`` of its own it resumes at the break's end.
- Counters keep calling after the office's closing time (everybody received is served); the
  closing time only sets the ``past_closing`` flag.
- Each queue is served in ``queue_score`` order, so the state of one run is a pointer per
  procedure queue plus each counter's free time. Each step the earliest-free counter takes
  the head with the best key among its procedures, as ``policy.choose_next`` would; of two
  counters free at the same instant, the one listed first in the snapshot calls first.
- Booked visitors not yet arrived (:class:`ExpectedArrival`) join at their slot ± the spread,
  or not at all (no-show). Walk-ins yet to come matter only under ``counter_procedure_order``
  (elsewhere a later ticket of priority 0 is never called before one waiting now); there they
  arrive as a Poisson stream at ``walk_ins_per_hour`` until closing.
- The learned mean of a procedure is itself uncertain; each run draws its own mean shift (with
  the mean kept), so the 10–90 % range covers that too.

Runs are vectorised with numpy; a fixed ``seed`` makes the result deterministic, so refreshing
a phone does not make the estimate jitter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from .model import MAX_PRIORITY, CallingOrder, CounterStatus, DomainError, Ticket
from .policy import effective_tier, precedence_from
from .service_model import ServiceModel, Stage

DEFAULT_RUNS: Final = 400
"""Simulated futures per estimate; the 10 % and 90 % points are stable to about a minute."""

LOW_QUANTILE: Final = 0.10
HIGH_QUANTILE: Final = 0.90

WALK_IN_RATE_SD: Final = 0.3
"""Relative uncertainty of the walk-in rate the snapshot gives (an hour's count is a rough guide)."""

ELAPSED_CAP_QUANTILE: Final = 0.95
"""A visit running longer than this quantile is treated as having just reached it."""

MS_PER_MINUTE: Final = 60_000

_KEY_SCALE: Final = float(2**32)
"""Distance between two priority classes in the simulation's float sort key."""

_PREFERENCE_SCALE: Final = _KEY_SCALE * 16
"""Distance between two preference ranks of a counter (``counter_procedure_order``)."""

_INF: Final = math.inf

_CHECK_EVERY: Final = 16
"""Simulation steps between checks whether every run has called everybody."""

_COMPACT_SHARE: Final = 8
"""The finished runs are dropped from the simulation's state once they are this share (1/8) of it."""

_ARRIVAL_KEY_SCALE: Final = 256.0
"""Key units per minute of a booked visitor's arrival: their order follows arrival time."""

_MAX_MINUTES: Final = 14 * 24 * 60.0
"""Arrival keys stop growing after two weeks; keeps the key below the next priority class."""


@dataclass(frozen=True, slots=True)
class WaitingTicket:
    """A ticket in line: its queue, priority class and place (``order``, then ``seq``); a ``returning``
    visitor (handed over with their place kept) comes before the rest of their class, then a booked
    visitor whose precedence has begun by the snapshot's ``now`` (``precedence_from``), as in
    ``policy.effective_score``."""

    number: str
    procedure: str
    priority: int
    order: int
    seq: int
    issued_at: int  # epoch ms
    returning: bool = False
    precedence_from: int | None = None  # epoch ms: the booked precedence (policy.precedence_from)

    @classmethod
    def from_ticket(cls, ticket: Ticket) -> WaitingTicket:
        """The estimator's view of a stored waiting ticket."""
        return cls(ticket.number, ticket.procedure, ticket.priority, ticket.order, ticket.seq, ticket.issued_at,
                   ticket.returning, precedence_from(ticket))


@dataclass(frozen=True, slots=True)
class CounterState:
    """A counter as the estimator needs it; times are epoch ms.

    ``procedures`` is in the counter's preference order. ``serving`` is the procedure of the
    visitor at the counter, called at ``called_at`` and (once they arrived) started at
    ``started_at``. ``breaks`` are planned (start, end) periods in which the counter calls
    nobody, e.g. lunch; ``until`` ends its day early; ``resumes_at`` is when a paused or closed
    counter will call again (None: not today, unless :meth:`resumes` finds it on a break).
    """

    id: str
    procedures: tuple[str, ...]
    status: CounterStatus = CounterStatus.OPEN
    serving: str | None = None
    called_at: int | None = None
    started_at: int | None = None
    breaks: tuple[tuple[int, int], ...] = ()
    until: int | None = None
    resumes_at: int | None = None

    def resumes(self, now: int) -> int | None:
        """When this paused or closed counter calls again (epoch ms); None: not today.

        Staff pause the counter when they go to lunch: a pause inside a planned break ends with
        the break, not with the day.
        """
        if self.resumes_at is not None or self.status is not CounterStatus.PAUSED:
            return self.resumes_at
        return next((end for start, end in self.breaks if start <= now < end), None)


@dataclass(frozen=True, slots=True)
class ExpectedArrival:
    """A booked visitor not yet arrived: slot time (epoch ms), lateness ± ``spread_minutes``, show chance."""

    procedure: str
    at: int
    priority: int = 0
    show_probability: float = 0.92
    spread_minutes: float = 5.0


@dataclass(frozen=True, slots=True)
class OfficeSnapshot:
    """Everything the estimate depends on, at one instant (epoch ms).

    ``procedures`` lists what the summary reports on; empty means every procedure that a
    counter serves or a ticket waits for. ``walk_ins_per_hour`` is the expected rate of new
    walk-ins per procedure until closing (e.g. the last hour's); only
    ``counter_procedure_order`` needs it, as only there can a later walk-in be called first.
    """

    now: int
    closing: int
    calling_order: CallingOrder
    waiting: tuple[WaitingTicket, ...]
    counters: tuple[CounterState, ...]
    service: ServiceModel
    expected: tuple[ExpectedArrival, ...] = ()
    procedures: tuple[str, ...] = ()
    walk_ins_per_hour: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """Minutes from the snapshot until a ticket is called: median, 10–90 % range, mean.

    The minutes are None when, in at least that share of the simulated futures, no counter
    that serves the procedure calls it today (all paused or closed).
    """

    number: str
    procedure: str
    people_ahead: int
    median_minutes: float | None
    low_minutes: float | None
    high_minutes: float | None
    mean_minutes: float | None
    past_closing_chance: float
    past_closing: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ProcedureOutlook:
    """Per procedure: how many wait, open counters serving it, and the wait for a ticket issued now."""

    procedure: str
    waiting: int
    counters_open: int
    median_minutes: float | None
    low_minutes: float | None
    high_minutes: float | None
    mean_minutes: float | None
    past_closing_chance: float
    past_closing: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WaitForecast:
    """The estimator's answer: one :class:`WaitEstimate` per waiting ticket, one outlook per procedure."""

    now: int
    closing: int
    runs: int
    seed: int
    tickets: tuple[WaitEstimate, ...]
    procedures: tuple[ProcedureOutlook, ...]

    def ticket(self, number: str) -> WaitEstimate:
        """The estimate for ticket ``number``; ``KeyError`` if it was not waiting."""
        for t in self.tickets:
            if t.number == number:
                return t
        raise KeyError(number)

    def procedure(self, procedure: str) -> ProcedureOutlook:
        """The outlook for ``procedure``; ``KeyError`` if not reported."""
        for p in self.procedures:
            if p.procedure == procedure:
                return p
        raise KeyError(procedure)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "now": self.now,
            "closing": self.closing,
            "runs": self.runs,
            "seed": self.seed,
            "tickets": [t.to_dict() for t in self.tickets],
            "procedures": [p.to_dict() for p in self.procedures],
        }


def estimate_waits(snapshot: OfficeSnapshot, *, runs: int = DEFAULT_RUNS, seed: int = 0) -> WaitForecast:
    """Estimate when each waiting ticket, and a ticket issued now per procedure, will be called."""
    if runs < 10:
        raise DomainError(f"runs must be at least 10, not {runs}")
    sim = _Simulation(snapshot, runs, np.random.default_rng(seed))
    calls = sim.run()  # (runs, slots): minutes from now until the call, inf if never
    stats = _summarise(calls, (snapshot.closing - snapshot.now) / MS_PER_MINUTE)

    tickets = []
    for i, t in enumerate(snapshot.waiting):
        slot = sim.ticket_slot[i]
        tickets.append(WaitEstimate(t.number, t.procedure, sim.ahead[slot], *stats(slot)))
    outlooks = []
    for qi, p in enumerate(sim.procedures[: sim.reported]):
        slot = sim.phantom_slot[qi]
        outlooks.append(
            ProcedureOutlook(p, sim.waiting_count[qi], sim.counters_open[qi], *stats(slot))
        )
    return WaitForecast(snapshot.now, snapshot.closing, runs, seed, tuple(tickets), tuple(outlooks))


_Stats = tuple[float | None, float | None, float | None, float | None, float, bool]


def _summarise(calls: NDArray[np.float64], closing: float) -> Callable[[int], _Stats]:
    """A function giving (median, low, high, mean, past-closing chance, flag) for one slot."""
    runs = calls.shape[0]
    ks = [min(runs - 1, int(q * runs)) for q in (LOW_QUANTILE, 0.5, HIGH_QUANTILE)]
    part = np.partition(calls, ks, axis=0)
    low, median, high = part[ks[0]], part[ks[1]], part[ks[2]]
    with np.errstate(invalid="ignore"):
        mean = calls.mean(axis=0)
    late = (calls > closing).mean(axis=0)

    def fin(x: float) -> float | None:
        return float(x) if math.isfinite(x) else None

    def stats(slot: int) -> _Stats:
        m = fin(median[slot])
        return m, fin(low[slot]), fin(high[slot]), fin(mean[slot]), float(late[slot]), m is None or m > closing

    return stats


class _Simulation:
    """The vectorised play-forward; one instance per estimate."""

    def __init__(self, snap: OfficeSnapshot, runs: int, rng: np.random.Generator) -> None:
        """Lay out the queues, counters and sampled durations for ``runs`` futures."""
        self.runs = runs
        self.rng = rng
        self.snap = snap
        model = snap.service
        now = snap.now
        # The summary's procedures first, then any other that a counter or ticket mentions.
        mentioned = [p for c in snap.counters for p in c.procedures] if not snap.procedures else []
        mentioned += [t.procedure for t in snap.waiting] + [e.procedure for e in snap.expected]
        mentioned += [c.serving for c in snap.counters if c.serving is not None]
        procedures = list(dict.fromkeys([*snap.procedures, *mentioned]))
        self.procedures = procedures
        self.reported = len(snap.procedures) if snap.procedures else len(procedures)
        qindex = {p: i for i, p in enumerate(procedures)}
        nq = len(procedures)
        waited = snap.calling_order is CallingOrder.WAITED

        def klass(priority: int) -> int:
            return 0 if waited else MAX_PRIORITY - priority

        # Per procedure: the learned visit (log-mean, log-SD) and each run's shift of the mean.
        # Procedures that no ticket needs (only a phantom) keep zeros: phantoms take no time.
        walk_in_rates: dict[str, float] = {}
        if snap.calling_order is CallingOrder.COUNTER_PROCEDURE_ORDER:
            walk_in_rates = {p: r / 60 for p, r in snap.walk_ins_per_hour.items() if r > 0 and p in qindex}
        needed = {t.procedure for t in snap.waiting} | {e.procedure for e in snap.expected} | walk_in_rates.keys()
        needed |= {c.serving for c in snap.counters if c.serving is not None}
        mu = np.zeros(nq)
        sigma = np.zeros(nq)
        shift = np.zeros((runs, nq))
        for p in sorted(needed):
            st = model.stage(p, Stage.SERVICE)
            qi = qindex[p]
            mu[qi], sigma[qi] = st.mu, st.sigma
            # Centred so exp(shift) has mean 1: the range widens, the mean stays.
            shift[:, qi] = rng.normal(-st.mu_sd**2 / 2, st.mu_sd, runs)
        self.mu, self.sigma, self.shift = mu, sigma, shift
        self.walk_up = model.walk_up_minutes
        self.exponential = model.family == "exponential"

        # Ready queues (A): waiting tickets, then one phantom "issued now" ticket per procedure.
        # Laid out procedure by procedure in key order, each queue followed by an inf sentinel.
        # A booked ticket's tier is taken as at the snapshot (its slot starting later is not played yet).
        ranked = sorted(range(len(snap.waiting)),
                        key=lambda i: (effective_tier(snap.waiting[i].returning, snap.waiting[i].precedence_from, snap.now),
                                       snap.waiting[i].order, snap.waiting[i].seq))
        rank = {i: r for r, i in enumerate(ranked)}
        n_wait = len(snap.waiting)
        groups: list[list[tuple[float, int]]] = [[] for _ in range(nq)]  # (key, ticket index or -1-q)
        for i, t in enumerate(snap.waiting):
            groups[qindex[t.procedure]].append((klass(t.priority) * _KEY_SCALE + rank[i], i))
        for qi in range(nq):
            groups[qi].append((klass(0) * _KEY_SCALE + n_wait + qi, -1 - qi))
        keys: list[float] = []
        proc_of: list[int] = []
        phantom: list[bool] = []
        self.ticket_slot = [0] * n_wait
        self.phantom_slot = [0] * nq
        self.ahead: list[int] = []
        self.queue_start = np.zeros(nq, dtype=np.intp)
        for qi, g in enumerate(groups):
            g.sort()
            self.queue_start[qi] = len(keys)
            for pos, (key, who) in enumerate(g):
                if who >= 0:
                    self.ticket_slot[who] = len(keys)
                else:
                    self.phantom_slot[-1 - who] = len(keys)
                keys.append(key)
                proc_of.append(qi)
                phantom.append(who < 0)
                self.ahead.append(pos)
            keys.append(_INF)
            proc_of.append(qi)
            phantom.append(True)
            self.ahead.append(0)
        self.key_a = np.array(keys)
        self.proc_a = np.array(proc_of, dtype=np.intp)
        self.phantom_a = np.array(phantom)
        self.real_slots = len(snap.waiting) + nq  # tickets and phantoms: the ones whose calls we need
        self.waiting_count = [len(g) - 1 for g in groups]

        # Arrivals to come (B): booked visitors, and new walk-ins where they can matter. One
        # stream per procedure and priority class, each first come first served, so its head is
        # the only candidate. Their ``order`` is given on arrival: after everybody waiting now,
        # among themselves by each run's sampled arrival time.
        booked: dict[tuple[int, int], list[ExpectedArrival]] = {}
        for e in snap.expected:
            booked.setdefault((qindex[e.procedure], klass(e.priority)), []).append(e)
        rates = {(qindex[p], klass(0)): r for p, r in walk_in_rates.items()}
        self.streams = [(key, booked.get(key, []), rates.get(key, 0.0)) for key in sorted(booked.keys() | rates.keys())]
        self.expected_base = float(n_wait + nq + 1)
        self.horizon = max((snap.closing - now) / MS_PER_MINUTE, 0.0)

        # Counters.
        nc = len(snap.counters)
        self.factor = np.array([model.counter_factor(c.id) for c in snap.counters] + [1.0])
        offset = np.full((nc, nq), _INF)

        def rel(ms: int) -> float:
            return (ms - now) / MS_PER_MINUTE

        breaks: list[list[tuple[float, float]]] = []
        self.counters_open = [0] * nq
        for ci, c in enumerate(snap.counters):
            for pref, p in enumerate(c.procedures):
                qi = qindex.get(p)
                if qi is None:
                    continue
                preference = pref * _PREFERENCE_SCALE if snap.calling_order is CallingOrder.COUNTER_PROCEDURE_ORDER else 0.0
                offset[ci, qi] = min(offset[ci, qi], preference)
                on_break = any(s <= now < e for s, e in c.breaks) or (c.until is not None and c.until <= now)
                if c.status is CounterStatus.OPEN and not on_break:
                    self.counters_open[qi] += 1
            b = sorted((rel(s), rel(e)) for s, e in c.breaks if e > now)
            if c.until is not None:
                b.append((rel(c.until), _INF))
            breaks.append(b)
        self.offset = offset
        self.served_zero = np.where(np.isfinite(offset), 0.0, _INF)
        width = max((len(b) for b in breaks), default=0)
        self.break_start = np.full((nc, width), _INF)
        self.break_end = np.full((nc, width), _INF)
        for ci, b in enumerate(breaks):
            for k, (s, e) in enumerate(b):
                self.break_start[ci, k], self.break_end[ci, k] = s, e

    def _service(self, qs: NDArray[np.intp], size: tuple[int, int]) -> NDArray[np.float64]:
        """Fresh visit durations (minutes at an average counter) for procedures ``qs`` in each run."""
        scale = self.mu[qs] + self.shift[:, qs]
        if self.exponential:
            mean = np.exp(scale + self.sigma[qs] ** 2 / 2)
            return mean * self.rng.standard_exponential(size)
        return np.exp(scale + self.sigma[qs] * self.rng.standard_normal(size))

    def _adjust(self, counters: NDArray[np.intp], t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Move free times that fall in a counter's break to the break's end (inf after ``until``)."""
        for k in range(self.break_start.shape[1]):
            s = self.break_start[counters, k]
            e = self.break_end[counters, k]
            t = np.where((t >= s) & (t < e), e, t)
        return t

    def _initial_free(self) -> NDArray[np.float64]:
        """Each counter's first free time in each run (minutes from now)."""
        snap, runs = self.snap, self.runs
        free = np.zeros((runs, len(snap.counters)))
        for ci, c in enumerate(snap.counters):
            t = np.zeros(runs)
            if c.serving is not None:
                t = self._rest_of_visit(ci, c)
            if c.status is not CounterStatus.OPEN:
                resumes_at = c.resumes(snap.now)
                resume = (resumes_at - snap.now) / MS_PER_MINUTE if resumes_at is not None else _INF
                t = np.maximum(t, resume)
            free[:, ci] = self._adjust(np.full(runs, ci), t)
        return free

    def _rest_of_visit(self, ci: int, c: CounterState) -> NDArray[np.float64]:
        """Minutes until the visitor now at counter ``ci`` leaves, given the time already spent."""
        snap, runs = self.snap, self.runs
        qi = self.procedures.index(c.serving)  # type: ignore[arg-type]
        factor = self.factor[ci]
        if c.started_at is None:
            # Still walking up (or not yet recorded): the rest of the walk-up, then a whole visit.
            called = c.called_at if c.called_at is not None else snap.now
            walk = max(self.walk_up - (snap.now - called) / MS_PER_MINUTE, 0.0)
            return walk + factor * self._service(np.array([qi]), (runs, 1))[:, 0]
        elapsed = max((snap.now - c.started_at) / MS_PER_MINUTE, 0.0) / factor
        m = self.mu[qi] + self.shift[:, qi]
        s = self.sigma[qi]
        if self.exponential:  # memoryless: the rest is a fresh visit
            return factor * np.exp(m + s * s / 2) * self.rng.standard_exponential(runs)
        if elapsed <= 0:
            return factor * np.exp(m + s * self.rng.standard_normal(runs))
        cap = np.exp(m + s * _ELAPSED_CAP_Z)
        elapsed_eff = np.minimum(elapsed, cap)
        z = (np.log(elapsed_eff) - m) / s
        below = _norm_cdf(z)
        u = below + (1.0 - below) * self.rng.random(runs)
        total = np.exp(m + s * _norm_ppf(np.clip(u, 1e-12, 1 - 1e-12)))
        return factor * np.maximum(total - elapsed_eff, 0.0)

    def _expected_queues(
        self, lead: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
        """Per-run arrivals to come, laid out stream by stream: keys, arrival times, durations, stream starts.

        The arrays start with ``lead`` columns left for the caller (key and arrival 0, duration 0).
        """
        runs, rng = self.runs, self.rng
        arrivals: list[NDArray[np.float64]] = []
        starts = np.zeros(len(self.streams), dtype=np.intp)
        width = lead
        for si, ((_qi, _klass), group, per_minute) in enumerate(self.streams):
            starts[si] = width
            parts = []
            if group:
                earliest, latest, show = np.array([_arrival_window(e, self.snap.now) for e in group]).T
                arrive = earliest + (latest - earliest) * rng.random((runs, len(group)))
                parts.append(np.where(rng.random((runs, len(group))) < show, arrive, _INF))
            if per_minute > 0:
                # Poisson walk-ins until closing, at a rate that is itself a guess: each run
                # scales it (mean kept). Drawn as the count, then the times as the count's
                # uniform order statistics (normalised sums of exponentials): only as many
                # columns as the busiest run needs.
                rate = per_minute * np.exp(rng.normal(-(WALK_IN_RATE_SD**2) / 2, WALK_IN_RATE_SD, runs))
                count = rng.poisson(rate * self.horizon)
                used = int(count.max())
                sums = np.cumsum(rng.standard_exponential((runs, used + 1)), axis=1)
                times = sums[:, :used]
                times *= (self.horizon / sums[np.arange(runs), count])[:, None]
                times[np.arange(used) >= count[:, None]] = _INF
                parts.append(times)
            if len(parts) > 1:
                arrive = np.hstack(parts)
                arrive.sort(axis=1)
            else:
                arrive = parts[0]  # one booked group sorted below; walk-ins come sorted
                if group:
                    arrive.sort(axis=1)
            arrivals.append(arrive)
            width += arrive.shape[1] + 1
        # One array each, every stream followed by an inf sentinel column.
        # (Left empty and written once: these are the estimate's largest arrays.)
        arrive_b = np.empty((runs, width))
        arrive_b[:, :lead] = 0.0
        key_b = np.empty((runs, width))
        dur_b = np.empty((runs, width))
        dur_b[:, :lead] = 0.0
        for si, ((qi, klass), _, _) in enumerate(self.streams):
            arrive = arrivals[si]
            n = arrive.shape[1]
            lo = int(starts[si])
            arrive_b[:, lo : lo + n] = arrive
            # Later arrival, later order; ties (several at once) keep the stream's order.
            key = key_b[:, lo : lo + n]
            np.minimum(arrive, _MAX_MINUTES, out=key)
            key *= _ARRIVAL_KEY_SCALE
            key += klass * _KEY_SCALE + self.expected_base
            key[~np.isfinite(arrive)] = _INF
            dur_b[:, lo : lo + n] = self._service_one(qi, (runs, n))
            arrive_b[:, lo + n] = key_b[:, lo + n] = _INF
            dur_b[:, lo + n] = 0.0
        return key_b, arrive_b, dur_b, starts

    def _service_one(self, qi: int, size: tuple[int, int]) -> NDArray[np.float64]:
        """Fresh visit durations for procedure ``qi``, ``size[1]`` per run (as :meth:`_service`)."""
        scale = self.mu[qi] + self.shift[:, qi : qi + 1]
        if self.exponential:
            return np.exp(scale + self.sigma[qi] ** 2 / 2) * self.rng.standard_exponential(size)
        # Single precision: a visit to a millionth of its length, at half the cost.
        z = self.rng.standard_normal(size, dtype=np.float32)
        z *= np.float32(self.sigma[qi])
        z += scale.astype(np.float32)
        return np.exp(z, out=z)

    def run(self) -> NDArray[np.float64]:
        """Play all runs forward; minutes until each ready slot is called (inf: not today).

        The loop is the hot path. The ready queues (A, the same keys in every run) and the
        streams to come (B, per run) share one per-run layout: columns ``0..na-1`` are A, the
        rest B, so a step picks among ``nq + ns`` heads with one pointer each and one set of
        lookups. Every array is indexed flat (row base + column), which numpy does several
        times faster than 2-D fancy indexing.
        """
        runs = self.runs
        nq = len(self.procedures)
        ns = len(self.streams)
        ar = np.arange(runs)
        free = self._initial_free()
        nc = free.shape[1]
        key_a = self.key_a
        na = len(key_a)
        if nc == 0:
            return np.full((runs, na), _INF)

        # Candidates: columns 0..nq-1 of the heads are the ready queues', then one per stream.
        dur_a = self._service(self.proc_a, (runs, na))
        dur_a[:, self.phantom_a] = 0.0
        key_all, arrive_all, dur_all, start_b = self._expected_queues(na)
        width = key_all.shape[1]
        key_all[:, :na] = key_a
        dur_all[:, :na] = dur_a
        walk_all = np.full(width, self.walk_up)
        walk_all[:na][self.phantom_a] = 0.0
        calls = np.empty((runs, width))  # only the A part is read: the rest need not be set
        calls[:, :na] = _INF
        ptr = np.broadcast_to(np.concatenate([self.queue_start, start_b]), (runs, nq + ns)).copy()
        heads = key_all[ar[:, None], ptr]
        head_at = arrive_all[ar[:, None], ptr]
        stream_q = np.array([qi for (qi, _), _, _ in self.streams], dtype=np.intp)
        offset = np.hstack([self.offset, self.offset[:, stream_q]])
        stream_served = self.served_zero[:, stream_q]
        factor = self.factor
        n_breaks = self.break_start.shape[1]
        break_start, break_end = self.break_start.ravel(), self.break_end.ravel()

        cols = nq + ns
        free_f, calls_f, ptr_f, heads_f, head_at_f = free.ravel(), calls.ravel(), ptr.ravel(), heads.ravel(), head_at.ravel()
        key_f, arrive_f, dur_f = key_all.ravel(), arrive_all.ravel(), dur_all.ravel()
        row_c, row_w, row_h = ar * nc, ar * width, ar * cols

        # Every ready slot but the sentinels is a ticket or phantom whose call we need; a
        # queue's pointer counts its calls, so a run is done once its A pointers sum to this.
        # Done runs (and runs no counter will ever call in) are dropped from the state arrays
        # now and then; their calls are final, and the rest carry their own row (``live``)
        # into the full-size arrays (calls, durations, arrivals).
        per_run = int(self.queue_start.sum()) + self.real_slots
        live = ar
        # Free times only grow, so once every run's earliest is past the last arrival (or the
        # last planned break) the arrival mask (the break shift) can change nothing any more.
        arriving = arrive_all[np.isfinite(arrive_all)]
        last_arrival = float(arriving.max()) if ns and arriving.size else -_INF
        ends = self.break_end[np.isfinite(self.break_start)]
        last_break = float(ends.max()) if ends.size else -_INF
        pending_arrivals, pending_breaks = last_arrival >= 0, n_breaks > 0
        for step in range((width + 2) * (nc + 2)):
            # Checked every few steps only: a step after every run has ended changes nothing.
            if step % _CHECK_EVERY == 0:
                earliest = free.min(axis=1)
                done = (ptr[:, :nq].sum(axis=1) >= per_run) | (earliest == _INF)
                n_done = int(np.count_nonzero(done))
                if n_done == len(live):
                    break
                t_min = float(earliest.min())
                pending_arrivals = pending_arrivals and t_min <= last_arrival
                pending_breaks = pending_breaks and t_min < last_break
                if n_done * _COMPACT_SHARE >= len(live):
                    keep = ~done
                    live = live[keep]
                    free, ptr, heads, head_at = free[keep], ptr[keep], heads[keep], head_at[keep]
                    free_f, ptr_f, heads_f, head_at_f = free.ravel(), ptr.ravel(), heads.ravel(), head_at.ravel()
                    ar = np.arange(len(live))
                    row_c, row_w, row_h = ar * nc, live * width, ar * cols
            c = free.argmin(axis=1)
            at_c = row_c + c
            t = free_f[at_c]
            k = offset.take(c, axis=0)
            k += heads
            if pending_arrivals:
                np.copyto(k[:, nq:], _INF, where=head_at[:, nq:] > t[:, None])  # not arrived yet
            j = k.argmin(axis=1)
            at_j = row_h + j
            take = k.ravel()[at_j] < _INF
            col = ptr_f[at_j]
            at_i = row_w + col
            calls_f[at_i] = t
            nxt = dur_f[at_i]
            nxt *= factor.take(c)
            nxt += walk_all.take(col)
            nxt += t
            if take.all():  # the usual case: every run calls somebody
                ptr_f[at_j] = col + 1
                at_i += 1
            else:
                # Runs where nobody is there to call: the head keeps its inf entry, and the
                # counter waits for the next arrival it serves.
                idle = np.flatnonzero(~take)
                calls_f[at_i[idle]] = _INF
                if ns:
                    nxt[idle] = (head_at[idle, nq:] + stream_served[c[idle]]).min(axis=1)
                else:
                    nxt[idle] = _INF
                ptr_f[at_j] = col + take
                at_i += take
            heads_f[at_j] = key_f[at_i]
            head_at_f[at_j] = arrive_f[at_i]
            for b in range(n_breaks if pending_breaks else 0):  # a free time inside a break moves to its end
                at_b = c * n_breaks + b
                s, e = break_start.take(at_b), break_end.take(at_b)
                nxt = np.where((nxt >= s) & (nxt < e), e, nxt)
            free_f[at_c] = nxt
        return calls[:, :na]


def _arrival_window(e: ExpectedArrival, now: int) -> tuple[float, float, float]:
    """Minutes from now of a booked visitor's earliest and latest arrival, and the chance they come.

    Not yet here although the window has opened: they come later in it, and the no-show is
    likelier (Bayes). A window already closed means they come at once, if at all.
    """
    at = (e.at - now) / MS_PER_MINUTE
    lo, hi = at - e.spread_minutes, at + e.spread_minutes
    if hi <= 0:
        return 0.0, 0.0, e.show_probability
    if lo >= 0:
        return lo, hi, e.show_probability
    still = hi / (hi - lo)  # share of arrivals that fall after now
    p = e.show_probability * still
    return 0.0, hi, p / (p + 1 - e.show_probability)


# Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
_A: Final = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B: Final = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
_C: Final = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D: Final = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW: Final = 0.02425
_ELAPSED_CAP_Z: Final = NormalDist().inv_cdf(ELAPSED_CAP_QUANTILE)


def _norm_ppf(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Standard normal quantile, vectorised (numpy has none and scipy is not a dependency)."""
    out = np.empty_like(p)
    lo = p < _P_LOW
    hi = p > 1 - _P_LOW
    mid = ~(lo | hi)
    q = p[mid] - 0.5
    r = q * q
    a, b = _A, _B
    out[mid] = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (
        ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1
    )
    cc, d = _C, _D
    for mask, sign, tail in ((lo, 1.0, p), (hi, -1.0, 1 - p)):
        qt = np.sqrt(-2 * np.log(tail[mask]))
        out[mask] = sign * (((((cc[0] * qt + cc[1]) * qt + cc[2]) * qt + cc[3]) * qt + cc[4]) * qt + cc[5]) / (
            (((d[0] * qt + d[1]) * qt + d[2]) * qt + d[3]) * qt + 1
        )
    return out


_erf: Final = np.frompyfunc(math.erf, 1, 1)


def _norm_cdf(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Standard normal CDF, vectorised."""
    return 0.5 * (1.0 + _erf(z / math.sqrt(2)).astype(np.float64))


def waiting_from_tickets(tickets: Iterable[Ticket]) -> tuple[WaitingTicket, ...]:
    """The estimator's view of the stored waiting tickets."""
    return tuple(WaitingTicket.from_ticket(t) for t in tickets)


__all__: Sequence[str] = (
    "CounterState",
    "ExpectedArrival",
    "OfficeSnapshot",
    "ProcedureOutlook",
    "WaitEstimate",
    "WaitForecast",
    "WaitingTicket",
    "estimate_waits",
    "waiting_from_tickets",
)
