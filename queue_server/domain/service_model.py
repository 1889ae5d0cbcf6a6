"""How long things take: counter service, walk-up, card preparation and post-processing.

Each procedure starts from the configured prior (``Procedure.service_minutes``, ``prep_minutes``,
``post_minutes``) and learns from measured durations, today's counting most:

- durations are lognormal; gross mistakes are dropped first, judged on log-minutes against a
  robust location (weighted median) and scale (MAD): a ticket left open over lunch or a counter
  that forgot to press finish does not move the estimate. Mean and CV are then taken from the
  minutes that remain and matched to a lognormal;
- the prior counts as ``prior_weight`` measured visits (Bayesian shrinkage), so it fades as data
  grows; the CV has its own pseudo-count;
- a counter that is consistently quicker or slower gets a speed factor. Visit minutes are taken
  as counter speed × procedure time × noise and fitted on the log scale, robustly (clipped
  residuals; a visit still going on counts with its expected length), so the noise's shape
  cancels out. The speeds are shrunk towards 1 by empirical Bayes: a Gaussian model of the
  whole counter × procedure design tells how well the visits pin each speed down (a counter
  linked to the others by a few shared visits is only as well known as those few), weighed
  against the spread between counters learned by EM. They are normalised so the
  visit-weighted mean factor is 1. Identical counters thus stay near 1
  however skewed the visits, and the procedure means are refitted on speed-adjusted minutes,
  so a slow counter's visits are not counted twice in the procedures that it alone serves.

Booked visitors' behaviour (:class:`BookingBehaviour`) is learned the same way from past bookings:
the share that never came, shrunk towards a configured prior, and the lateness of the check-in
after the slot's start (mean and SD), shrunk towards on time with a configured spread.

Pure: the input is a list of :class:`MeasuredDuration` (or :class:`BookingOutcome`); no clock, no I/O.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from .model import DomainError, NotFound, Procedure

Family = Literal["lognormal", "exponential"]

_Point = tuple[float, float, str | None]
"""One measured duration as the fit sees it: log-minutes, weight (by age), counter."""

PRIOR_CV: Final = 0.8
"""Prior coefficient of variation of a counter visit; measured offices show 0.5–1.5."""

PRIOR_WEIGHT: Final = 5.0
"""The prior mean counts like this many measured visits."""

PRIOR_CV_WEIGHT: Final = 10.0
"""The prior CV counts like this many measured visits; spread needs more data than location."""

COUNTER_SPREAD: Final = 0.15
"""Prior SD of counters' speed factors: staff at one office differ by about ±15 %."""

COUNTER_SPREAD_WEIGHT: Final = 4.0
"""The prior spread counts like this many counters when blended with the spread the data show."""

COUNTER_MIN_VISITS: Final = 3
"""Fewer measured visits than this and a counter shows no factor of its own."""

_SPREAD_EM_ROUNDS: Final = 8
"""EM rounds for the spread between counters; the shrinkage moves little after a few."""

SPEED_CLIP_SDS: Final = 2.5
"""A visit's log-residual counts towards its counter's speed up to this many of its procedure's SDs."""

_SPEED_ITERATIONS: Final = 50
"""Most rounds of the speed + procedure fit (alternating means); it settles in a few dozen at most."""

_SPEED_TOLERANCE: Final = 1e-6
"""The fit has settled when no log-speed moved more than this in a round."""

HALF_LIFE_DAYS: Final = 7.0
"""A measurement from this many days ago weighs half as much as today's."""

OUTLIER_SDS: Final = 3.5
"""Log-durations further than this many robust SDs from the median are dropped as mistakes."""

MAD_TO_SD: Final = 1.4826
"""Scales the median absolute deviation to a normal SD."""

WALK_UP_PRIOR_MINUTES: Final = 0.5
"""Prior time from a call to the start of service (walking up, a recall now and then)."""

WALK_UP_CAP_MINUTES: Final = 5.0
"""Longer call→start gaps are no-shows or a forgotten start button; they count as this."""

_EM_ROUNDS: Final = 4
"""Rounds of imputing ongoing visits from the fit and refitting; it settles within a few."""

MIN_MINUTES: Final = 0.05
"""Durations below 3 seconds are mis-clicks, not visits, and are ignored."""

NO_SHOW_PRIOR: Final = 0.1
"""Prior share of booked visitors who never come (the brief's offices: 5–10 %)."""

LATENESS_SD_PRIOR_MINUTES: Final = 5.0
"""Prior SD of a booked visitor's check-in around the slot's start (about ±5 min)."""

BOOKING_PRIOR_WEIGHT: Final = 20.0
"""The no-show and lateness priors count like this many past bookings."""

LATENESS_CAP_MINUTES: Final = 240.0
"""A check-in further than this from the slot's start is a clock or data mistake, not a lateness."""


class Stage(enum.StrEnum):
    """Which part of the work a duration measures."""

    SERVICE = "service"  # at the counter: start → finish
    WALK_UP = "walk_up"  # the counter is waiting for the visitor: call → start
    PREP = "prep"  # back office, before the call: card preparation (交付前準備)
    POST = "post"  # back office, after the visit: post-issuance processing (交付後処理)


@dataclass(frozen=True, slots=True)
class MeasuredDuration:
    """One measured duration: a finished visit (start→finish), a call→start gap, or back-office work.

    ``ongoing`` marks a visit still at the counter: ``minutes`` so far is a lower bound. Leaving
    those out would bias the mean low early in the day, when only the short visits have ended.
    """

    procedure: str
    stage: Stage
    minutes: float
    counter: str | None = None
    days_ago: int = 0
    ongoing: bool = False


@dataclass(frozen=True, slots=True)
class LearningSettings:
    """The knobs of the fit; the defaults suit a city-hall counter."""

    prior_cv: float = PRIOR_CV
    prior_weight: float = PRIOR_WEIGHT
    prior_cv_weight: float = PRIOR_CV_WEIGHT
    counter_spread: float = COUNTER_SPREAD
    half_life_days: float = HALF_LIFE_DAYS
    walk_up_prior_minutes: float = WALK_UP_PRIOR_MINUTES
    family: Family = "lognormal"


@dataclass(frozen=True, slots=True)
class StageTime:
    """The learned lognormal duration of one stage of one procedure.

    ``mu`` and ``sigma`` are the mean and SD of log-minutes; ``mu_sd`` is how uncertain ``mu``
    still is (the estimator widens its range by it). ``weight`` is the measurements' total
    weight after the day-age discount; ``n`` their count (visits still ongoing included).
    """

    procedure: str
    stage: Stage
    prior_minutes: float
    prior_cv: float
    n: int
    weight: float
    measured_median_minutes: float | None
    mu: float
    sigma: float
    mu_sd: float
    prior_share: float

    @property
    def mean_minutes(self) -> float:
        """The expected duration."""
        return math.exp(self.mu + self.sigma**2 / 2)

    @property
    def median_minutes(self) -> float:
        """The typical duration: half are shorter."""
        return math.exp(self.mu)

    @property
    def cv(self) -> float:
        """Coefficient of variation (SD ÷ mean)."""
        return math.sqrt(math.expm1(self.sigma**2))

    def explain(self) -> dict[str, Any]:
        """What the supervisor page shows for this stage."""
        return {
            "prior_minutes": _r(self.prior_minutes),
            "prior_cv": _r(self.prior_cv),
            "n_measured": self.n,
            "measured_median_minutes": _r(self.measured_median_minutes),
            "mean_minutes": _r(self.mean_minutes),
            "median_minutes": _r(self.median_minutes),
            "cv": _r(self.cv),
            "prior_share": _r(self.prior_share),
        }


@dataclass(frozen=True, slots=True)
class CounterSpeed:
    """How much longer than average a counter's visits take (1.2 = 20 % longer), after shrinkage."""

    counter: str
    n: int
    factor: float


@dataclass(frozen=True, slots=True)
class ServiceModel:
    """Learned durations for an office: per procedure and stage, the walk-up, and counter speeds."""

    stages: Mapping[tuple[str, Stage], StageTime]
    counters: Mapping[str, CounterSpeed] = field(default_factory=dict)
    walk_up_minutes: float = WALK_UP_PRIOR_MINUTES
    walk_up_n: int = 0
    family: Family = "lognormal"
    settings: LearningSettings = LearningSettings()

    @classmethod
    def learn(
        cls,
        procedures: Iterable[Procedure],
        measured: Iterable[MeasuredDuration] = (),
        settings: LearningSettings = LearningSettings(),
    ) -> ServiceModel:
        """Fit every procedure's stages from the priors in ``procedures`` and the ``measured`` durations."""
        procedures = list(procedures)
        known = {p.id for p in procedures}
        by_stage: dict[tuple[str, Stage], list[_Point]] = {}
        ongoing: dict[tuple[str, Stage], list[_Point]] = {}
        walk_ups: list[tuple[float, float]] = []
        for m in measured:
            if m.procedure not in known or not math.isfinite(m.minutes):
                continue  # a procedure removed from the configuration since; nothing to learn
            w = 0.5 ** (max(m.days_ago, 0) / settings.half_life_days)
            if m.ongoing:
                if m.stage is not Stage.WALK_UP and m.minutes >= MIN_MINUTES:
                    ongoing.setdefault((m.procedure, m.stage), []).append((math.log(m.minutes), w, m.counter))
            elif m.stage is Stage.WALK_UP:
                walk_ups.append((min(max(m.minutes, 0.0), WALK_UP_CAP_MINUTES), w))
            elif m.minutes >= MIN_MINUTES:
                by_stage.setdefault((m.procedure, m.stage), []).append((math.log(m.minutes), w, m.counter))

        stages: dict[tuple[str, Stage], StageTime] = {}
        for p in procedures:
            if p.service_minutes <= 0:
                raise DomainError(
                    f"procedure {p.id}: service_minutes must be a positive number of minutes, "
                    f"not {p.service_minutes}"
                )
            priors = {Stage.SERVICE: p.service_minutes, Stage.PREP: p.prep_minutes, Stage.POST: p.post_minutes}
            for stage, prior in priors.items():
                key = (p.id, stage)
                fitted = _fit(p.id, stage, prior, by_stage.get(key, []), ongoing.get(key, []), settings)
                if fitted is not None:
                    stages[key] = fitted

        counters = _counter_speeds(procedures, by_stage, ongoing, stages, settings)
        if counters:
            # The procedure means at an average counter: each visit's minutes ÷ its counter's factor.
            factor = {c.counter: math.log(c.factor) for c in counters.values()}
            for p in procedures:
                key = (p.id, Stage.SERVICE)
                adjusted = [(x - factor.get(c or "", 0.0), w, c) for x, w, c in by_stage.get(key, [])]
                running = [(x - factor.get(c or "", 0.0), w, c) for x, w, c in ongoing.get(key, [])]
                refitted = _fit(p.id, Stage.SERVICE, p.service_minutes, adjusted, running, settings)
                if refitted is not None:  # always, as service_minutes > 0
                    stages[key] = refitted

        walk_w = sum(w for _, w in walk_ups)
        walk_up = (
            settings.prior_weight * settings.walk_up_prior_minutes + sum(x * w for x, w in walk_ups)
        ) / (settings.prior_weight + walk_w)
        return cls(stages, counters, walk_up, len(walk_ups), settings.family, settings)

    def stage(self, procedure: str, stage: Stage = Stage.SERVICE) -> StageTime:
        """The learned duration of ``stage`` for ``procedure``; ``NotFound`` if it was never configured."""
        try:
            return self.stages[(procedure, stage)]
        except KeyError:
            raise NotFound(f"no {stage.value} time is known for procedure {procedure}") from None

    def counter_factor(self, counter: str) -> float:
        """How much longer than average visits at ``counter`` take; 1.0 without enough data."""
        speed = self.counters.get(counter)
        return speed.factor if speed is not None else 1.0

    def explain(self) -> dict[str, Any]:
        """A plain dict for the supervisor page: priors, measurements, learned values, counter factors."""
        procedures: dict[str, dict[str, Any]] = {}
        for (procedure, stage), st in self.stages.items():
            procedures.setdefault(procedure, {})[stage.value] = st.explain()
        return {
            "family": self.family,
            "prior_weight": self.settings.prior_weight,
            "half_life_days": self.settings.half_life_days,
            "walk_up": {
                "prior_minutes": _r(self.settings.walk_up_prior_minutes),
                "n_measured": self.walk_up_n,
                "minutes": _r(self.walk_up_minutes),
            },
            "procedures": procedures,
            "counters": {
                c.counter: {"n_measured": c.n, "speed_factor": _r(c.factor)} for c in self.counters.values()
            },
        }


@dataclass(frozen=True, slots=True)
class BookingOutcome:
    """One past booking: minutes from the slot's start to the check-in (negative: early), None if they never came."""

    lateness_minutes: float | None
    days_ago: int = 0


@dataclass(frozen=True, slots=True)
class BookingBehaviour:
    """How booked visitors come: the chance they show, and their check-in's lateness (normal, minutes)."""

    show_probability: float
    lateness_mean: float
    lateness_sd: float
    n: int
    no_show_prior: float = NO_SHOW_PRIOR
    lateness_sd_prior: float = LATENESS_SD_PRIOR_MINUTES

    @classmethod
    def learn(
        cls,
        outcomes: Iterable[BookingOutcome] = (),
        *,
        no_show_prior: float = NO_SHOW_PRIOR,
        lateness_sd_prior: float = LATENESS_SD_PRIOR_MINUTES,
        settings: LearningSettings = LearningSettings(),
    ) -> BookingBehaviour:
        """Shrink the measured no-show share and lateness towards the priors (worth ``BOOKING_PRIOR_WEIGHT`` bookings).

        Newer days weigh more (``half_life_days``). Lateness outliers (beyond ``OUTLIER_SDS``
        robust SDs, or ``LATENESS_CAP_MINUTES``) are dropped: a booking checked in at the
        counter hours later says nothing about the lobby.
        """
        if not 0 <= no_show_prior < 1:
            raise DomainError(f"booking_no_show_prior must be at least 0 and below 1, not {no_show_prior}")
        if lateness_sd_prior <= 0:
            raise DomainError(f"booking_lateness_minutes_prior must be a positive number of minutes, not {lateness_sd_prior}")
        k = BOOKING_PRIOR_WEIGHT
        came: list[tuple[float, float, str | None]] = []
        missed = total = 0.0
        n = 0
        for o in outcomes:
            w = 0.5 ** (max(o.days_ago, 0) / settings.half_life_days)
            if o.lateness_minutes is None:
                missed += w
            elif math.isfinite(o.lateness_minutes) and abs(o.lateness_minutes) <= LATENESS_CAP_MINUTES:
                came.append((o.lateness_minutes, w, None))
            else:
                continue
            total += w
            n += 1
        no_show = (k * no_show_prior + missed) / (k + total)
        mean, var = 0.0, lateness_sd_prior**2
        if came:
            centre, scale = _robust_centre(came, lateness_sd_prior)
            kept = [(x, w) for x, w, _ in came if abs(x - centre) <= OUTLIER_SDS * scale]
            weight = sum(w for _, w in kept)
            m = sum(x * w for x, w in kept) / weight
            v = sum((x - m) ** 2 * w for x, w in kept) / weight
            mean = weight * m / (k + weight)
            var = (k * lateness_sd_prior**2 + weight * v) / (k + weight)
        return cls(1.0 - no_show, mean, math.sqrt(var), n, no_show_prior, lateness_sd_prior)

    def explain(self) -> dict[str, Any]:
        """What the supervisor page shows about booked visitors."""
        return {"n_measured": self.n, "show_probability": _r(self.show_probability),
                "no_show_prior": _r(self.no_show_prior), "lateness_mean_minutes": _r(self.lateness_mean),
                "lateness_sd_minutes": _r(self.lateness_sd), "lateness_sd_prior_minutes": _r(self.lateness_sd_prior)}


def _fit(
    procedure: str,
    stage: Stage,
    prior_minutes: float,
    data: Sequence[_Point],
    ongoing: Sequence[_Point],
    settings: LearningSettings,
) -> StageTime | None:
    """Shrink the robust fit of ``data`` (log-minutes, weight) towards the prior; None if neither exists.

    Gross outliers are dropped on the log scale; the mean and CV are then taken on the minutes
    themselves and matched to a lognormal. Matching moments rather than log-moments keeps the
    mean right when real visits are not quite lognormal (an exponential's log has a long left
    tail that would inflate a log-fit mean by 25 %), and the mean is what a queue's wait adds up.

    A visit still ongoing after ``e`` minutes counts with its expected moments given T > e
    under the current fit (a few EM rounds); one already far beyond the outlier bound is a
    forgotten finish and does not count.
    """
    has_prior = prior_minutes > 0
    if not has_prior and not data:
        return None
    k0 = settings.prior_weight if has_prior else 0.0
    nu0 = settings.prior_cv_weight
    cv0_sq = settings.prior_cv**2

    sigma_prior = math.sqrt(math.log1p(cv0_sq))
    kept = _kept(data, sigma_prior)
    ongoing = _plausible(ongoing, data, prior_minutes, sigma_prior)
    n = len(data) + len(ongoing)
    done_w = sum(w for _, w, _ in kept)
    weight = done_w + sum(w for _, w, _ in ongoing)
    measured_median = math.exp(_weighted_median([x for x, _, _ in data], [w for _, w, _ in data])) if data else None
    s1 = sum(math.exp(x) * w for x, w, _ in kept)
    s2 = sum(math.exp(2 * x) * w for x, w, _ in kept)
    mean, cv_sq = (prior_minutes, cv0_sq) if has_prior else (s1 / done_w, cv0_sq) if done_w else (1.0, cv0_sq)
    for _ in range(_EM_ROUNDS if ongoing else 1):
        if weight <= 0:
            break
        t1, t2 = s1, s2
        if ongoing:
            sigma_sq = math.log1p(cv_sq)
            sigma, mu = math.sqrt(sigma_sq), math.log(mean) - math.log1p(cv_sq) / 2
            for x, w, _ in ongoing:
                m1, m2 = _tail_moments(x, mu, sigma)
                t1, t2 = t1 + w * m1, t2 + w * m2
        m = t1 / weight
        var = max(t2 / weight - m * m, 0.0)
        mean = (k0 * prior_minutes + weight * m) / (k0 + weight)
        cv_sq = (nu0 * cv0_sq + weight * var / m**2) / (nu0 + weight)
    sigma_sq = math.log1p(cv_sq)
    return StageTime(
        procedure=procedure,
        stage=stage,
        prior_minutes=prior_minutes,
        prior_cv=settings.prior_cv,
        n=n,
        weight=weight,
        measured_median_minutes=measured_median,
        mu=math.log(mean) - sigma_sq / 2,
        sigma=math.sqrt(sigma_sq),
        # The mean's relative standard error, on the log scale.
        mu_sd=math.sqrt(math.log1p(cv_sq / (k0 + weight))),
        prior_share=k0 / (k0 + weight),
    )


def _plausible(ongoing: Sequence[_Point], data: Sequence[_Point], prior_minutes: float,
               sigma_prior: float) -> list[_Point]:
    """The ongoing visits not yet beyond the outlier bound; one far beyond it is a forgotten finish.

    Judged against the finished visits, or the prior's median while there are none.
    """
    if not ongoing or not (data or prior_minutes > 0):
        return list(ongoing)
    centre, scale = _robust_centre(data, sigma_prior) if data else (math.log(prior_minutes), sigma_prior)
    return [o for o in ongoing if o[0] <= centre + OUTLIER_SDS * scale]


def _counter_speeds(
    procedures: Sequence[Procedure],
    by_stage: Mapping[tuple[str, Stage], Sequence[_Point]],
    ongoing: Mapping[tuple[str, Stage], Sequence[_Point]],
    stages: Mapping[tuple[str, Stage], StageTime],
    settings: LearningSettings,
) -> dict[str, CounterSpeed]:
    """Each counter's speed factor from the service visits that name their counter.

    Log-minutes at counter c in procedure p are taken as ``a_c + b_p + noise``: a speed × a
    procedure's typical time, with any noise distribution. Both are fitted together by
    alternating weighted means (a counter serving only long procedures is not thereby slow),
    each residual clipped at ``SPEED_CLIP_SDS`` of its procedure's residual spread, so a finish
    pressed an hour late moves its counter little. The noise's shape cancels out: with the
    ``a_c`` centred there is no bias whatever the visits' distribution (a log-residual against
    the lognormal fit, uncentred, says 0.8 for every counter on exponential visits). A visit
    still going on counts with its expected log-length given the minutes so far.

    The clipped visits then go to :func:`_shrunk_speeds`, which shrinks each ``a_c`` towards 0
    by how well the data pin it down. The factors ``exp(a_c)`` are scaled so their visit-weighted
    mean is 1: the procedure means stay the office's average. A counter with fewer than
    ``COUNTER_MIN_VISITS`` visits keeps no factor (1).
    """
    sigma_prior = math.sqrt(math.log1p(settings.prior_cv**2))
    # Visits naming a counter: procedure, counter, log-minutes (so far, if ongoing), weight.
    rows: list[tuple[str, str, float, float, bool]] = []
    sigma: dict[str, float] = {}
    for p in procedures:
        st = stages.get((p.id, Stage.SERVICE))
        if st is None:
            continue
        sigma[p.id] = st.sigma
        data = by_stage.get((p.id, Stage.SERVICE), [])
        rows += [(p.id, c, x, w, False) for x, w, c in _kept(data, sigma_prior) if c is not None]
        running = _plausible(ongoing.get((p.id, Stage.SERVICE), []), data, p.service_minutes, sigma_prior)
        rows += [(p.id, c, x, w, True) for x, w, c in running if c is not None]
    counters = list(dict.fromkeys(c for _, c, _, _, _ in rows))
    visits = {c: 0 for c in counters}
    for _, c, _, _, _ in rows:
        visits[c] += 1
    shown = [c for c in counters if visits[c] >= COUNTER_MIN_VISITS]
    if len(counters) < 2:  # one counter is the average by definition
        return {c: CounterSpeed(c, visits[c], 1.0) for c in shown}

    names = list(sigma)
    pi = np.array([names.index(p) for p, _, _, _, _ in rows])
    ci = np.array([counters.index(c) for _, c, _, _, _ in rows])
    x = np.array([r[2] for r in rows])
    w = np.array([r[3] for r in rows])
    now = np.flatnonzero([r[4] for r in rows])
    np_, nc = len(names), len(counters)
    p_weight = np.bincount(pi, w, np_)
    weight = np.bincount(ci, w, nc)
    sigma_p = np.array([sigma[p] for p in names])
    typical = np.bincount(pi, w * x, np_) / np.maximum(p_weight, 1e-12)
    speed = np.zeros(nc)
    spread = sigma_p.copy()
    k = settings.prior_cv_weight
    y = x.copy()

    def clipped() -> NDArray[np.float64]:
        bound = SPEED_CLIP_SDS * spread[pi]
        return np.clip(y - typical[pi] - speed[ci], -bound, bound)

    for _ in range(_SPEED_ITERATIONS):
        for i in now:
            y[i] = _log_visit(x[i], typical[pi[i]] + speed[ci[i]], spread[pi[i]])
        typical += np.bincount(pi, w * clipped(), np_) / np.maximum(p_weight, 1e-12)
        step = np.bincount(ci, w * clipped(), nc) / weight
        speed += step
        centre = np.average(speed, weights=weight)
        speed -= centre
        typical += centre
        # Each procedure's residual spread (clipped), for the clipping and the shrinkage.
        spread = np.sqrt((k * sigma_p**2 + np.bincount(pi, w * clipped() ** 2, np_)) / (k + p_weight))
        if np.abs(step).max() < _SPEED_TOLERANCE:
            break

    if not shown:
        return {}
    # The clipped visits, summed per counter and procedure: what the shrinkage sees.
    cell = ci * np_ + pi
    cell_w = np.bincount(cell, w, nc * np_).reshape(nc, np_)
    cell_wy = np.bincount(cell, w * (typical[pi] + speed[ci] + clipped()), nc * np_).reshape(nc, np_)
    log_speed = _shrunk_speeds(cell_w, cell_wy, spread, settings.counter_spread, weight)
    factor = {c: math.exp(log_speed[counters.index(c)]) for c in shown}
    # Scaled so the visit-weighted mean factor is 1 (a counter without one counts as 1).
    shown_w = {c: float(weight[counters.index(c)]) for c in shown}
    scale = sum(shown_w.values()) / sum(factor[c] * shown_w[c] for c in shown)
    return {c: CounterSpeed(c, visits[c], factor[c] * scale) for c in shown}


def _shrunk_speeds(
    cell_w: NDArray[np.float64],
    cell_wy: NDArray[np.float64],
    spread: NDArray[np.float64],
    prior_spread: float,
    weight: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Posterior means of the counters' log-speeds ``a_c`` in ``y = a_c + b_p + noise``, ``a_c ~ N(0, τ²)``.

    ``cell_w`` and ``cell_wy`` hold per counter (rows) and procedure (columns) the visits' weight
    and weighted sum of log-minutes; the noise SD is the procedure's ``spread``. A Gaussian
    linear model, solved exactly: a counter whose only link to the others is a few shared
    visits gets the uncertainty of those few, not of all its own. ``τ²`` is learned by EM (mean
    of a² plus its posterior variance over the counters), blended with ``prior_spread`` worth
    ``COUNTER_SPREAD_WEIGHT`` counters. The result is centred on the visit-weighted mean.
    """
    nc, np_ = cell_w.shape
    lam = cell_w / spread**2
    precision = np.zeros((nc + np_, nc + np_))
    precision[:nc, :nc] = np.diag(lam.sum(axis=1))
    precision[nc:, nc:] = np.diag(lam.sum(axis=0))
    precision[:nc, nc:] = lam
    precision[nc:, :nc] = lam.T
    rhs = np.concatenate([(cell_wy / spread**2).sum(axis=1), (cell_wy / spread**2).sum(axis=0)])
    # The prior also fixes where the log-speeds' zero is; the b_p (flat prior) follow.
    tau_sq = prior_spread**2
    a = np.zeros(nc)
    for _ in range(_SPREAD_EM_ROUNDS):
        cov = np.linalg.pinv(precision + np.diag(np.r_[np.full(nc, 1.0 / tau_sq), np.zeros(np_)]))
        a = (cov @ rhs)[:nc]
        a -= np.average(a, weights=weight)
        learned = float(np.mean(a**2 + np.diag(cov)[:nc]))
        tau_sq = (COUNTER_SPREAD_WEIGHT * prior_spread**2 + nc * learned) / (COUNTER_SPREAD_WEIGHT + nc)
    return a


def _log_visit(log_elapsed: float, mu: float, sigma: float) -> float:
    """E[log T] of a lognormal(mu, sigma) visit known to last longer than exp(log_elapsed)."""
    z = (log_elapsed - mu) / sigma
    survive = max(_phi(-z), 1e-12)
    density = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return max(mu + sigma * density / survive, log_elapsed)


def _tail_moments(log_elapsed: float, mu: float, sigma: float) -> tuple[float, float]:
    """E[T] and E[T²] of a lognormal(mu, sigma) visit known to last longer than exp(log_elapsed)."""
    z = (log_elapsed - mu) / sigma
    survive = max(_phi(-z), 1e-12)
    m1 = math.exp(mu + sigma**2 / 2) * _phi(sigma - z) / survive
    m2 = math.exp(2 * mu + 2 * sigma**2) * _phi(2 * sigma - z) / survive
    return max(m1, math.exp(log_elapsed)), max(m2, math.exp(2 * log_elapsed))


def _phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _robust_centre(data: Sequence[tuple[float, float, str | None]], sigma_prior: float) -> tuple[float, float]:
    """Weighted median and robust SD (MAD) of log-durations; the SD blended with the prior's.

    With few visits the MAD is unreliable, so the scale is blended with the prior's the way
    the mean is.
    """
    xs = [x for x, _, _ in data]
    ws = [w for _, w, _ in data]
    median = _weighted_median(xs, ws)
    mad = _weighted_median([abs(x - median) for x in xs], ws) * MAD_TO_SD
    weight = sum(ws)
    return median, math.sqrt((PRIOR_CV_WEIGHT * sigma_prior**2 + weight * mad**2) / (PRIOR_CV_WEIGHT + weight))


def _kept(
    data: Sequence[tuple[float, float, str | None]], sigma_prior: float
) -> list[tuple[float, float, str | None]]:
    """The measurements within ``OUTLIER_SDS`` robust SDs of the median, on the log scale.

    A lognormal visit lies that far out about once in 4,000 visits; a ticket left open over
    lunch lies there at once.
    """
    if not data:
        return []
    median, scale = _robust_centre(data, sigma_prior)
    return [d for d in data if abs(d[0] - median) <= OUTLIER_SDS * scale]


def _weighted_median(xs: Sequence[float], ws: Sequence[float]) -> float:
    """The value with half the weight on each side (the lower one on an exact tie)."""
    pairs = sorted(zip(xs, ws))
    half = sum(ws) / 2
    acc = 0.0
    for x, w in pairs:
        acc += w
        if acc >= half:
            return x
    return pairs[-1][0]


def _r(x: float | None) -> float | None:
    """Round for display."""
    return None if x is None else round(x, 2)
