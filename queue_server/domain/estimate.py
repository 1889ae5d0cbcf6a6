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
- Inside a priority class the tiers of ``policy``: returning visitors first, then booked visitors
  (checked in on time) once their slot has started, then everybody else by their place. A booked
  ticket waiting for a slot still to start is called as a walk-in until the slot starts (under
  ``keep_for_slot`` after everybody else of its class), and with the booked precedence from
  then on.
- Booked visitors not yet checked in (:class:`ExpectedArrival`) come at their slot plus a
  normal lateness (learned mean and SD), or not at all (no-show, learned rate); checked in more
  than ``late_after_minutes`` after the slot start they are walk-ins, after the slot's end they
  are released. Walk-ins yet to come matter only under ``counter_procedure_order`` (elsewhere a
  later ticket of priority 0 is never called before one waiting now); there they arrive as a
  Poisson stream at ``walk_ins_per_hour`` until closing.
- The back office (:class:`BackOffice`) is played first: its people finish the tasks they hold
  (the rest of a lognormal given the minutes spent), then take the open tasks in the panel's
  order — preparations for visitors already waiting, then the rest by due time, then
  post-issuance work — each a learned lognormal duration. A ticket held for its card
  (``prep_pending``) becomes callable, in its own place, when its preparation ends; so does a
  ticket issued now in a procedure with a preparation stage, and a booked visitor whose card is
  still open. Post-issuance tasks created later are last in that order: they cannot delay a
  card for anybody in the snapshot, and are left out.
- The learned mean of a procedure is itself uncertain; each run draws its own mean shift (with
  the mean kept), so the 10–90 % range covers that too.

numpy draws every random figure of all runs at once, and the step loops over them are compiled
(:mod:`.estimate_loop`); a fixed ``seed`` makes the result deterministic, so refreshing
a phone does not make the estimate jitter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from .model import MAX_PRIORITY, BookedBeforeSlot, CallingOrder, CounterStatus, DomainError, Ticket
from .policy import precedence_from
from .service_model import ServiceModel, Stage

DEFAULT_RUNS: Final = 200
"""Simulated futures per estimate. The uncertain parameters (learned means, walk-in rates) are drawn
stratified across them, which makes 200 about as steady as 400 plain draws were (the 10 % and
50 % points; the 90 % point a little less): half the cost."""

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

_TIER_SCALE: Final = float(2**28)
"""Distance between two tiers (returning, booked, others) inside a priority class; 3 tiers fit in one."""

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
    """A ticket in line: its queue, priority class and place (``order``, then ``seq``).

    A ``returning`` visitor (handed over with their place kept) comes before the rest of their
    class, then a booked visitor whose precedence has begun (from ``precedence_from``, epoch ms:
    ``policy.precedence_from``), as in ``policy.effective_score``. A ticket with
    ``prep_pending`` is held until preparation task ``task`` is done: it keeps its place but is
    not called before.
    """

    number: str
    procedure: str
    priority: int
    order: int
    seq: int
    issued_at: int  # epoch ms
    returning: bool = False
    precedence_from: int | None = None  # epoch ms: the booked precedence (policy.precedence_from)
    prep_pending: bool = False
    task: str | None = None

    @classmethod
    def from_ticket(cls, ticket: Ticket) -> WaitingTicket:
        """The estimator's view of a stored waiting ticket."""
        return cls(ticket.number, ticket.procedure, ticket.priority, ticket.order, ticket.seq, ticket.issued_at,
                   ticket.returning, precedence_from(ticket), getattr(ticket, "prep", None) == "pending",
                   getattr(ticket, "task", None))


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
    """A booked visitor not yet checked in: the slot's start (epoch ms) and how booked visitors behave.

    They check in at ``at`` + a normal lateness (mean ``lateness_minutes``, SD ``spread_minutes``)
    with chance ``show_probability``; more than ``late_after_minutes`` after ``at`` they are
    walk-ins (None: never), after ``slot_end`` the booking is released (they do not come). Checked
    in on time they have the booked precedence from ``at`` (``precedence_at_check_in``: from the
    check-in, ``[calling] booked_before_slot = "at_check_in"``). ``task`` is the id of their
    card's preparation task if it is still open in the back office.
    """

    procedure: str
    at: int
    priority: int = 0
    show_probability: float = 0.92
    spread_minutes: float = 3.0
    lateness_minutes: float = 0.0
    late_after_minutes: float | None = None
    slot_end: int | None = None
    precedence_at_check_in: bool = False
    task: str | None = None


TaskKind = Literal["prepare", "post"]
"""The back office's two kinds of work (the store's ``kind``): card preparation before the counter
(交付前準備), post-issuance processing after it (交付後処理)."""


@dataclass(frozen=True, slots=True)
class BackOfficeTask:
    """An open or claimed back-office task; times epoch ms; ``id`` the store's (an integer as a string).

    ``ticket`` is the number of the waiting ticket whose card a preparation is for (None: a
    booking's, or a card to send); ``claimed_at`` is set while somebody works on it.
    ``line_score`` is :func:`waiting_card_score` of the visitor waiting for this card when they
    wait at another office whose cards this back office prepares (for a ticket of the snapshot the
    estimator works it out itself).
    """

    id: str
    kind: TaskKind
    procedure: str
    created_at: int
    due_at: int | None = None
    claimed_at: int | None = None
    ticket: str | None = None
    line_score: float | None = None


_CARD_PRIORITY_WEIGHT: Final = 10.0**13
"""Distance between two priority classes in :func:`waiting_card_score`; above any epoch-ms issue time."""


def waiting_card_score(priority: int, issued_at: int) -> float:
    """The back office's order of the cards of visitors waiting now: a priority visitor's first, then
    the longest waiting (``domain/tasks.work_score``); lower first."""
    return (MAX_PRIORITY - priority) * _CARD_PRIORITY_WEIGHT + issued_at


@dataclass(frozen=True, slots=True)
class BackOffice:
    """The back office as the estimate needs it.

    ``people`` is how many work on back-office tasks now (the people planned on duty, at least
    those active on the panel); at least one per claimed task is assumed. ``off_duty`` are the
    planned periods with fewer of them, (start, end, people) in epoch ms: person *k* (from 0)
    takes no new task in a period planning *k* people or fewer (the task in hand runs to its end).
    ``prep_procedures`` are the procedures whose same-day tickets wait for a preparation (a
    ticket issued now would too).
    """

    people: int = 1
    tasks: tuple[BackOfficeTask, ...] = ()
    prep_procedures: tuple[str, ...] = ()
    off_duty: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class OfficeSnapshot:
    """Everything the estimate depends on, at one instant (epoch ms).

    ``procedures`` lists what the summary reports on; empty means every procedure that a
    counter serves or a ticket waits for. ``walk_ins_per_hour`` is the expected rate of new
    walk-ins per procedure until closing (e.g. the last hour's); only
    ``counter_procedure_order`` needs it, as only there can a later walk-in be called first.
    ``booked_before_slot`` is the office's rule for booked visitors checked in before their slot
    (``[calling] booked_before_slot``): under ``keep_for_slot`` they are the last of their class
    until the precedence begins (``precedence_from``).
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
    back_office: BackOffice = BackOffice()
    booked_before_slot: BookedBeforeSlot = BookedBeforeSlot.WALK_IN


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
    """The play-forward of every run; one instance per estimate."""

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
        # A booked visitor on time, before the precedence begins: a walk-in (tier 2), or kept for the slot (3).
        self.kept_tier = 3 if snap.booked_before_slot is BookedBeforeSlot.KEEP_FOR_SLOT else 2

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
            shift[:, qi] = _stratified_normal(rng, runs) * st.mu_sd - st.mu_sd**2 / 2
        self.mu, self.sigma, self.shift = mu, sigma, shift
        self.walk_up = model.walk_up_minutes
        self.exponential = model.family == "exponential"

        # Keys: priority class, then the policy's tier (returning 0, booked and slot started 1,
        # others 2), then the place: rank by (order, seq) among everybody waiting now, or for
        # arrivals to come, after all of them by arrival time.
        def rel(ms: int) -> float:
            return (ms - now) / MS_PER_MINUTE

        n_wait = len(snap.waiting)
        ranked = sorted(range(n_wait), key=lambda i: (snap.waiting[i].order, snap.waiting[i].seq))
        rank = {i: r for r, i in enumerate(ranked)}
        prep_phantoms = {qindex[p] for p in snap.back_office.prep_procedures if p in qindex}

        def base(i: int) -> float:
            return klass(snap.waiting[i].priority) * _KEY_SCALE + rank[i]

        # Ready queues (A): tickets whose key stays as it is and who can be called now, then one
        # phantom "issued now" ticket per procedure. Laid out procedure by procedure in key
        # order, each queue followed by an inf sentinel. The others (S, "special"): tickets held
        # for their card, booked tickets whose slot starts later (their key drops at the slot's
        # start), phantoms that would wait for a card, and booked visitors to come; each is a
        # candidate of its own in every step.
        groups: list[list[tuple[float, int]]] = [[] for _ in range(nq)]  # (key, ticket index or -1-q)
        everyone: list[list[tuple[float, int]]] = [[] for _ in range(nq)]  # the same, by the key now
        special: list[tuple[int, int, float, float, float]] = []  # (who, queue, key before, after, switch)
        for i, t in enumerate(snap.waiting):
            qi = qindex[t.procedure]
            if t.returning:
                before = after = base(i)
                switch = _INF
            elif t.precedence_from is not None:
                before, after = base(i) + self.kept_tier * _TIER_SCALE, base(i) + _TIER_SCALE
                switch = max(rel(t.precedence_from), 0.0)
            else:
                before = after = base(i) + 2 * _TIER_SCALE
                switch = _INF
            if t.prep_pending:
                special.append((i, qi, before, after, switch))
            elif 0 < switch < _INF:
                # Booked, slot still to start: in line as a walk-in (A), and from the slot's start
                # also a candidate with the booked key (S); called as either, the other is dropped.
                groups[qi].append((before, i))
                special.append((i, qi, after, after, -switch))  # a negative switch marks the link
            else:
                groups[qi].append((after if switch <= 0 else before, i))
            everyone[qi].append((after if switch <= 0 else before, i))
        for qi in range(nq):
            key = klass(0) * _KEY_SCALE + 2 * _TIER_SCALE + n_wait + qi
            everyone[qi].append((key, -1 - qi))
            if qi in prep_phantoms:
                special.append((-1 - qi, qi, key, key, _INF))
            else:
                groups[qi].append((key, -1 - qi))
        ahead: dict[int, int] = {}
        for g in everyone:
            g.sort()
            ahead.update((who, pos) for pos, (_, who) in enumerate(g))
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
            for key, who in g:
                if who >= 0:
                    self.ticket_slot[who] = len(keys)
                else:
                    self.phantom_slot[-1 - who] = len(keys)
                keys.append(key)
                proc_of.append(qi)
                phantom.append(who < 0)
                self.ahead.append(ahead[who])
            keys.append(_INF)
            proc_of.append(qi)
            phantom.append(True)
            self.ahead.append(0)
        self.key_a = np.array(keys)
        self.proc_a = np.array(proc_of, dtype=np.intp)
        self.phantom_a = np.array(phantom)
        # Tickets and phantoms in A: the ones whose calls we need (the rest are sentinels).
        self.real_slots = sum(len(g) for g in groups)
        self.waiting_count = [len(g) - 1 for g in everyone]
        # The special ones' results follow A's columns.
        self.special = special
        self.special_link = np.full(len(special), -1, dtype=np.intp)  # the A column of a linked one
        for s, (who, _, _, _, switch) in enumerate(special):
            if switch < 0:
                self.special_link[s] = self.ticket_slot[who]
            elif who >= 0:
                self.ticket_slot[who] = len(keys) + s
            else:
                self.phantom_slot[-1 - who] = len(keys) + s
            self.ahead.append(ahead[who])

        # Arrivals to come: booked visitors (special, each its own candidate), and new walk-ins
        # (B) where they can matter, one stream per procedure, first come first served, so its
        # head is the only candidate. Their place is after everybody waiting now, among
        # themselves by each run's sampled arrival time.
        self.streams = [((qindex[p], klass(0)), r) for p, r in sorted(walk_in_rates.items(), key=lambda x: qindex[x[0]])]
        self.expected_base = float(n_wait + nq + 1)
        self.horizon = max((snap.closing - now) / MS_PER_MINUTE, 0.0)
        self.klass = klass

        # Counters.
        nc = len(snap.counters)
        self.factor = np.array([model.counter_factor(c.id) for c in snap.counters] + [1.0])
        offset = np.full((nc, nq), _INF)

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
        return factor * self._rest(m, self.sigma[qi], elapsed)

    def _rest(self, m: NDArray[np.float64], s: float, elapsed: float) -> NDArray[np.float64]:
        """The rest of a lognormal(m, s) duration (one per run) that has lasted ``elapsed`` minutes."""
        runs = self.runs
        if self.exponential:  # memoryless: the rest is a fresh one
            return np.exp(m + s * s / 2) * self.rng.standard_exponential(runs)
        if elapsed <= 0 or s <= 0:
            return np.maximum(np.exp(m + s * self.rng.standard_normal(runs)) - max(elapsed, 0.0), 0.0)
        cap = np.exp(m + s * _ELAPSED_CAP_Z)
        elapsed_eff = np.minimum(elapsed, cap)
        z = (np.log(elapsed_eff) - m) / s
        below = _norm_cdf(z)
        u = below + (1.0 - below) * self.rng.random(runs)
        total = np.exp(m + s * _norm_ppf(np.clip(u, 1e-12, 1 - 1e-12)))
        return np.maximum(total - elapsed_eff, 0.0)

    def _task_draws(self, procedure: str, stage: Stage, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """``n`` durations per run of a back-office stage, plus each run's log-mean and the log-SD.

        A stage with neither a prior nor measurements takes no time: nothing says it exists.
        """
        st = self.snap.service.stages.get((procedure, stage))
        if st is None:
            return np.zeros((self.runs, n)), np.full(self.runs, -_INF), 0.0
        m = st.mu + _stratified_normal(self.rng, self.runs) * st.mu_sd - st.mu_sd**2 / 2
        if self.exponential:
            draws = np.exp(m + st.sigma**2 / 2)[:, None] * self.rng.standard_exponential((self.runs, n))
        else:
            draws = np.exp(m[:, None] + st.sigma * self.rng.standard_normal((self.runs, n)))
        return draws, m, st.sigma

    def _walk_in_arrivals(self) -> list[NDArray[np.float64]]:
        """Each walk-in stream's arrivals per run (minutes, sorted; inf pads the runs with fewer)."""
        from .estimate_loop import walk_in_times

        runs, rng = self.runs, self.rng
        arrivals = []
        for _, per_minute in self.streams:
            # Poisson walk-ins until closing, at a rate that is itself a guess: each run scales
            # it (mean kept). Drawn as the count, then the times as the count's uniform order
            # statistics (:func:`.estimate_loop.walk_in_times`): only as many columns as the
            # busiest run needs, and only as many draws as walk-ins.
            rate = per_minute * np.exp(_stratified_normal(rng, runs) * WALK_IN_RATE_SD - WALK_IN_RATE_SD**2 / 2)
            count = rng.poisson(rate * self.horizon)
            times = np.empty((runs, int(count.max())))
            walk_in_times(count, rng.standard_exponential(int(count.sum()) + runs), self.horizon, times)
            arrivals.append(times)
        return arrivals

    def _booked_arrivals(self) -> NDArray[np.float64]:
        """When each booked visitor to come checks in, per run (minutes; inf: does not come)."""
        runs, rng, now, expected = self.runs, self.rng, self.snap.now, self.snap.expected
        mean = np.array([(e.at - now) / MS_PER_MINUTE + e.lateness_minutes for e in expected])
        sd = np.array([max(e.spread_minutes, 0.0) for e in expected])
        end = np.array([(e.slot_end - now) / MS_PER_MINUTE if e.slot_end is not None else _INF for e in expected])
        show_probability = np.array([e.show_probability for e in expected])
        # Not checked in yet: they come later than now, if at all, and the no-show is the likelier
        # the more of the lateness has passed (Bayes). Past all of it: at once, if at all.
        spread = sd > 0
        still = np.where(spread, _norm_cdf(np.divide(mean, sd, out=np.zeros_like(mean), where=spread)), mean >= 0)
        gone_by = still < 1e-6
        p = show_probability * still
        show = np.where(gone_by, show_probability, np.where(p < 1, p / np.maximum(p + 1 - show_probability, 1e-300), 1.0))
        u = np.clip((1 - still) + still * rng.random((runs, len(expected))), 1e-12, 1 - 1e-12)
        arrive = np.where(spread, np.maximum(mean + sd * _norm_ppf(u), 0.0), mean)
        arrive[:, gone_by] = 0.0
        came = (rng.random((runs, len(expected))) < show) & (arrive <= end)
        return np.where(came, arrive, _INF)

    def _play_back_office(self, walk_ins: Sequence[NDArray[np.float64]]) -> tuple[dict[str, NDArray[np.float64]], list[NDArray[np.float64] | None]]:
        """When each preparation in the back office ends, per run (minutes from now; inf: never).

        Returns the end per task id (held tickets' tasks, phantoms' ``now:{procedure}``,
        bookings' tasks) and, per walk-in stream, its walk-ins' card-ready times (None: the
        procedure needs no preparation). Each person, when free, takes the first task in the
        panel's order that exists by then (a walk-in's preparation exists from its arrival).
        """
        snap, runs = self.snap, self.runs
        back = snap.back_office
        held = [t for t in snap.waiting if t.prep_pending]
        by_id = {task.id: task for task in back.tasks}
        by_ticket = {task.ticket: task for task in back.tasks if task.ticket is not None and task.kind == "prepare"}
        held_task: dict[str, BackOfficeTask] = {}
        line: dict[str, float] = {}  # task id → the line score of the visitor here waiting for it
        for t in held:
            task = by_id.get(t.task or "") or by_ticket.get(t.number)
            task = task or BackOfficeTask(f"held:{t.number}", "prepare", t.procedure, t.issued_at, ticket=t.number)
            held_task[t.number] = task
            line[task.id] = waiting_card_score(t.priority, t.issued_at)
        claimed = [task for task in back.tasks if task.claimed_at is not None]
        open_ = {task.id: task for task in [*back.tasks, *held_task.values()] if task.claimed_at is None}

        def work_key(task: BackOfficeTask) -> tuple[int, float, str]:
            # The panel's order (domain/tasks.work_key on backoffice-core): preparations for visitors
            # waiting now, a priority visitor's first, then the longest waiting; then the rest by
            # deadline (else creation); then post work, oldest first; ties by id as text.
            if task.kind == "post":
                return 2, float(task.created_at), task.id
            score = line.get(task.id, task.line_score)
            if score is not None:
                return 0, float(score), task.id
            return 1, float(task.due_at if task.due_at is not None else task.created_at), task.id

        ranked = sorted(open_.values(), key=work_key)
        first = [task for task in ranked if work_key(task)[0] == 0]
        first += [BackOfficeTask(f"now:{self.procedures[qi]}", "prepare", self.procedures[qi], snap.now)
                  for qi in sorted({-1 - who for who, *_ in self.special if who < 0})]
        later = [task for task in ranked if work_key(task)[0] == 1]
        post = [task for task in ranked if work_key(task)[0] == 2]

        # Columns: the first tasks, the walk-ins' cards stream by stream, then the later ones and post work.
        prep_streams = [si for si, ((qi, _), _) in enumerate(self.streams) if self.procedures[qi] in back.prep_procedures]
        n0 = len(first)
        n1 = sum(walk_ins[si].shape[1] for si in prep_streams)
        named = [*zip(range(n0), first), *zip(range(n0 + n1, n0 + n1 + len(later) + len(post)), later + post)]
        n_tasks = n0 + n1 + len(later) + len(post)
        release = np.zeros((runs, n_tasks))
        by_stage: dict[tuple[str, Stage], list[int]] = {}  # the draws, per stage, in column order
        for j, task in named[:n0]:
            by_stage.setdefault((task.procedure, Stage.PREP if task.kind == "prepare" else Stage.POST), []).append(j)
        stream_cols: dict[int, tuple[int, int]] = {}
        lo = n0
        for si in prep_streams:
            n = walk_ins[si].shape[1]
            stream_cols[si] = (lo, n)
            release[:, lo : lo + n] = walk_ins[si]
            by_stage.setdefault((self.procedures[self.streams[si][0][0]], Stage.PREP), []).extend(range(lo, lo + n))
            lo += n
        for j, task in named[n0:]:
            by_stage.setdefault((task.procedure, Stage.PREP if task.kind == "prepare" else Stage.POST), []).append(j)
        dur = np.zeros((runs, n_tasks))
        for (procedure, stage), cols in by_stage.items():
            dur[:, cols] = self._task_draws(procedure, stage, len(cols))[0]

        people = max(back.people, len(claimed))
        finish: dict[str, NDArray[np.float64]] = {}
        free = np.zeros((runs, max(people, 1)))
        if people == 0:
            free[:] = _INF  # nobody on back-office work: no card gets ready
        for k, task in enumerate(claimed):
            stage = Stage.PREP if task.kind == "prepare" else Stage.POST
            _, m, s = self._task_draws(task.procedure, stage, 0)
            elapsed = max((snap.now - task.claimed_at) / MS_PER_MINUTE, 0.0)  # type: ignore[operator]
            rest = self._rest(m, s, elapsed) if np.isfinite(m).all() else np.zeros(runs)
            free[:, k] = rest
            finish[task.id] = rest.copy()
        # Each person's planned time off (a free time inside it moves to its end).
        off = [[((s - snap.now) / MS_PER_MINUTE, (e - snap.now) / MS_PER_MINUTE) for s, e, n in back.off_duty
                if n <= k and e > snap.now] for k in range(free.shape[1])]
        off_width = max(map(len, off), default=0)
        off_start = np.full((free.shape[1], off_width), _INF)
        off_end = np.full((free.shape[1], off_width), _INF)
        for k, periods in enumerate(off):
            for b, (s, e) in enumerate(sorted(periods)):
                off_start[k, b], off_end[k, b] = s, e

        for b in range(off_width):  # a free time inside a planned time off moves to its end
            free = np.where((free >= off_start[:, b]) & (free < off_end[:, b]), off_end[:, b], free)

        # The cards of visitors waiting now in order, then the walk-ins' cards (each from its
        # arrival: inf, that walk-in never came), first come first served, before the rest (due,
        # post) whenever one exists by the time a person is free: two lists merged per run,
        # walk-ins sorted by arrival and the rest in order (compiled: :func:`.estimate_loop.work_through`).
        from .estimate_loop import work_through

        ends = np.full((runs, n_tasks), _INF)
        end1 = np.full((runs, n1), _INF)
        walk = slice(n0, n0 + n1)
        if len(prep_streams) > 1:  # several streams' walk-ins, merged into arrival order
            order = np.argsort(release[:, walk], axis=1, kind="stable") + n0
            release1, dur1 = np.take_along_axis(release, order, axis=1), np.take_along_axis(dur, order, axis=1)
        else:  # one stream's walk-ins are in arrival order already
            order, release1, dur1 = None, release[:, walk], dur[:, walk]
        work_through(free, dur, n0, release1, dur1, np.arange(n0 + n1, n_tasks, dtype=np.intp),
                     off_start, off_end, ends, end1)
        if order is None:
            ends[:, walk] = end1
        else:
            np.put_along_axis(ends, order, end1, axis=1)
        for j, task in named:
            finish[task.id] = ends[:, j]
        stream_ready: list[NDArray[np.float64] | None] = [None] * len(self.streams)
        for si, (lo, n) in stream_cols.items():
            stream_ready[si] = ends[:, lo : lo + n]
        for t in held:
            finish.setdefault(f"ticket:{t.number}", finish[held_task[t.number].id])
        return finish, stream_ready

    def _layout(
        self, lead: int, walk_ins: Sequence[NDArray[np.float64]], ready: Sequence[NDArray[np.float64] | None]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
        """Per-run walk-ins to come, laid out stream by stream: keys, callable-from times, durations, stream starts.

        The arrays start with ``lead`` columns left for the caller (key and time 0, duration 0).
        Each stream's keys, callable-from times and visits: :func:`.estimate_loop.lay_out_stream`.
        """
        from .estimate_loop import lay_out_stream

        runs = self.runs
        starts = np.zeros(len(self.streams), dtype=np.intp)
        width = lead
        for si, arrive in enumerate(walk_ins):
            starts[si] = width
            width += arrive.shape[1] + 1
        # One array each, every stream followed by an inf sentinel column.
        # (Left empty and written once: these are the estimate's largest arrays.)
        arrive_b = np.empty((runs, width))
        arrive_b[:, :lead] = 0.0
        key_b = np.empty((runs, width))
        dur_b = np.empty((runs, width))
        dur_b[:, :lead] = 0.0
        no_cards = np.empty((runs, 0))
        for si, ((qi, klass), _) in enumerate(self.streams):
            arrive = walk_ins[si]
            n = arrive.shape[1]
            lo = int(starts[si])
            scale, unit = self._visit_units(qi, int(np.count_nonzero(arrive < _INF)))
            lay_out_stream(arrive, no_cards if ready[si] is None else ready[si], klass * _KEY_SCALE + 2 * _TIER_SCALE + self.expected_base,
                           _ARRIVAL_KEY_SCALE, _MAX_MINUTES, scale, unit, key_b[:, lo : lo + n], arrive_b[:, lo : lo + n],
                           dur_b[:, lo : lo + n])
            arrive_b[:, lo + n] = key_b[:, lo + n] = _INF
            dur_b[:, lo + n] = 0.0
        return key_b, arrive_b, dur_b, starts

    def _specials(self, finish: Mapping[str, NDArray[np.float64]], procedure: NDArray[np.intp]) -> tuple[NDArray[np.float64], ...]:
        """The special candidates per run: keys before and after their switch, switch and callable-from times, durations.

        Columns: the special tickets and phantoms in ``self.special`` order, then the booked
        visitors to come; ``procedure`` is each column's queue.
        """
        runs, snap = self.runs, self.snap
        n_s = len(self.special)
        before = np.empty((runs, len(procedure)))
        after = np.empty_like(before)
        switch = np.empty_like(before)
        avail = np.zeros_like(before)
        dur = np.zeros_like(before)
        if n_s:
            before[:, :n_s], after[:, :n_s], switch[:, :n_s] = (
                np.array([x[k] for x in self.special]) for k in (2, 3, 4))
        for s, (who, qi, _, _, sw) in enumerate(self.special):
            if sw < 0:  # linked to its A entry: a candidate from the slot's start on
                switch[:, s] = _INF
                avail[:, s] = -sw
            elif who < 0:
                avail[:, s] = finish[f"now:{self.procedures[qi]}"]
            elif snap.waiting[who].prep_pending:
                avail[:, s] = finish[f"ticket:{snap.waiting[who].number}"]
        if snap.expected:
            a = self._booked_arrivals()
            e_cols = slice(n_s, None)
            klass = np.array([self.klass(e.priority) for e in snap.expected])
            slot = np.array([(e.at - snap.now) / MS_PER_MINUTE for e in snap.expected])
            late_after = np.array([_INF if e.late_after_minutes is None else e.late_after_minutes for e in snap.expected])
            at_check_in = np.array([e.precedence_at_check_in for e in snap.expected])
            place = klass * _KEY_SCALE + self.expected_base + np.minimum(a, _MAX_MINUTES) * _ARRIVAL_KEY_SCALE
            on_time = a <= slot + late_after
            before[:, e_cols] = place + np.where(on_time, self.kept_tier, 2) * _TIER_SCALE
            after[:, e_cols] = place + _TIER_SCALE
            switch[:, e_cols] = np.where(on_time, np.where(at_check_in, a, slot), _INF)
            avail[:, e_cols] = a
            for k, e in enumerate(snap.expected):
                ready = finish.get(e.task) if e.task is not None else None
                if ready is not None:
                    np.maximum(a[:, k], ready, out=avail[:, n_s + k])
        # A visit for each but the phantoms (which take no time), drawn per procedure.
        visits = np.array([who >= 0 for who, *_ in self.special] + [True] * len(snap.expected), dtype=bool)
        for qi in np.unique(procedure[visits]):
            cols = np.flatnonzero(visits & (procedure == qi))
            dur[:, cols] = self._service_one(int(qi), (runs, len(cols)))
        return before, after, switch, avail, dur

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

    def _visit_units(self, qi: int, n: int) -> tuple[NDArray[np.float64], NDArray[np.floating]]:
        """``n`` fresh visits for procedure ``qi`` as a scale per run and ``n`` units (visit = scale × unit).

        The same distribution as :meth:`_service_one`, for draws that are not a rectangle: the
        walk-ins that come, taken in order, row by row.
        """
        scale = self.mu[qi] + self.shift[:, qi]
        if self.exponential:
            return np.exp(scale + self.sigma[qi] ** 2 / 2), self.rng.standard_exponential(n)
        z = self.rng.standard_normal(n, dtype=np.float32)
        z *= np.float32(self.sigma[qi])
        return np.exp(scale), np.exp(z, out=z)

    def run(self) -> NDArray[np.float64]:
        """Play all runs forward; minutes until each ready slot is called (inf: not today).

        Every random draw is laid out first: the ready queues (A, the same keys in every run) and
        the streams to come (B, per run) share one per-run layout, columns ``0..na-1`` A and the
        rest B, each queue and stream followed by an inf sentinel, so a step picks among
        ``nq + ns`` heads with one pointer each. The special candidates (S: held tickets, booked
        ones whose key drops at their slot, booked visitors to come) are a column each, with
        their keys before and after the switch and the time they become callable. The step loop
        itself (:func:`.estimate_loop.play`) is compiled.
        """
        from .estimate_loop import play  # numba's compiler only where estimates are made

        runs = self.runs
        nq = len(self.procedures)
        ns = len(self.streams)
        free = self._initial_free()
        nc = free.shape[1]
        na = len(self.key_a)
        walk_ins = self._walk_in_arrivals()
        n_special = len(self.special)
        n_sp = n_special + len(self.snap.expected)
        needs_office = bool(self.special) or any(e.task for e in self.snap.expected)
        finish, ready = self._play_back_office(walk_ins) if needs_office or self.snap.back_office.prep_procedures else ({}, [None] * ns)
        calls = np.full((runs, na), _INF)
        sp_calls = np.full((runs, n_special), _INF)
        if nc == 0:
            return np.hstack([calls, sp_calls])

        dur_a = self._service(self.proc_a, (runs, na))
        dur_a[:, self.phantom_a] = 0.0
        key_all, arrive_all, dur_all, start_b = self._layout(na, walk_ins, ready)
        key_all[:, :na] = self.key_a
        dur_all[:, :na] = dur_a
        walk_all = np.full(key_all.shape[1], self.walk_up)
        walk_all[:na][self.phantom_a] = 0.0
        stream_q = np.array([qi for (qi, _), _ in self.streams], dtype=np.intp)
        offset = np.hstack([self.offset, self.offset[:, stream_q]])

        sp_q = np.array([qi for _, qi, *_ in self.special] + [self.procedures.index(e.procedure) for e in self.snap.expected],
                        dtype=np.intp)
        if n_sp:
            sp_before, sp_after, sp_switch, sp_avail, sp_dur = self._specials(finish, sp_q)
        else:
            sp_before = sp_after = sp_switch = sp_avail = sp_dur = np.empty((runs, 0))
        sp_walk = np.full(n_sp, self.walk_up)
        sp_walk[:n_special][[who < 0 for who, *_ in self.special]] = 0.0
        sp_link = np.r_[self.special_link, np.full(n_sp - n_special, -1)].astype(np.intp)
        sp_out = np.where(sp_link >= 0, -1, np.r_[np.arange(n_special), np.full(n_sp - n_special, -1)]).astype(np.intp)
        a_link = np.full(key_all.shape[1], -1, dtype=np.intp)  # A column → its linked special column
        a_link[sp_link[sp_link >= 0]] = np.flatnonzero(sp_link >= 0)

        play(free, key_all, arrive_all, dur_all, walk_all, na, np.concatenate([self.queue_start, start_b]).astype(np.intp),
             nq, offset, self.factor[:nc], self.break_start, self.break_end,
             int(self.real_slots), sp_before, sp_after, sp_switch, sp_avail, sp_dur, sp_walk,
             sp_q, sp_out, sp_link, a_link, calls, sp_calls)
        return np.hstack([calls, sp_calls])


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


def _stratified_normal(rng: np.random.Generator, runs: int) -> NDArray[np.float64]:
    """One standard normal draw per run, stratified: one from each of ``runs`` equally likely slices,
    in random order. The runs then cover a parameter's uncertainty (a learned mean, the walk-in
    rate) evenly, so the 10–90 % range needs fewer of them for the same steadiness."""
    return _norm_ppf((rng.permutation(runs) + rng.random(runs)) / runs)


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
    "waiting_card_score",
    "waiting_from_tickets",
)
