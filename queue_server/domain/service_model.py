"""How long things take: counter service, walk-up, card preparation and post-processing.

Each procedure starts from the configured prior (``Procedure.service_minutes``, ``prep_minutes``,
``post_minutes``) and learns from measured durations, today's counting most:

- durations are lognormal; gross mistakes are dropped first, judged on log-minutes against a
  robust location (weighted median) and scale (MAD): a ticket left open over lunch or a counter
  that forgot to press finish does not move the estimate. Mean and CV are then taken from the
  minutes that remain and matched to a lognormal;
- the prior counts as ``prior_weight`` measured visits (Bayesian shrinkage), so it fades as data
  grows; the CV has its own pseudo-count;
- a counter that is consistently quicker or slower gets a speed factor, shrunk towards 1 until
  it has enough visits to show it.

Pure: the input is a list of :class:`MeasuredDuration`; no clock, no I/O.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .model import DomainError, NotFound, Procedure

Family = Literal["lognormal", "exponential"]

PRIOR_CV: Final = 0.8
"""Prior coefficient of variation of a counter visit; measured offices show 0.5–1.5."""

PRIOR_WEIGHT: Final = 5.0
"""The prior mean counts like this many measured visits."""

PRIOR_CV_WEIGHT: Final = 10.0
"""The prior CV counts like this many measured visits; spread needs more data than location."""

COUNTER_WEIGHT: Final = 10.0
"""A counter's speed factor is shrunk to 1 as if it had this many visits at average speed."""

COUNTER_MIN_VISITS: Final = 3
"""Fewer measured visits than this and a counter shows no factor of its own."""

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
    counter_weight: float = COUNTER_WEIGHT
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
        by_stage: dict[tuple[str, Stage], list[tuple[float, float, str | None]]] = {}
        ongoing: dict[tuple[str, Stage], list[tuple[float, float]]] = {}
        walk_ups: list[tuple[float, float]] = []
        for m in measured:
            if m.procedure not in known or not math.isfinite(m.minutes):
                continue  # a procedure removed from the configuration since; nothing to learn
            w = 0.5 ** (max(m.days_ago, 0) / settings.half_life_days)
            if m.ongoing:
                if m.stage is not Stage.WALK_UP and m.minutes >= MIN_MINUTES:
                    ongoing.setdefault((m.procedure, m.stage), []).append((math.log(m.minutes), w))
            elif m.stage is Stage.WALK_UP:
                walk_ups.append((min(max(m.minutes, 0.0), WALK_UP_CAP_MINUTES), w))
            elif m.minutes >= MIN_MINUTES:
                by_stage.setdefault((m.procedure, m.stage), []).append((math.log(m.minutes), w, m.counter))

        stages: dict[tuple[str, Stage], StageTime] = {}
        residuals: dict[str, list[tuple[float, float]]] = {}
        for p in procedures:
            if p.service_minutes <= 0:
                raise DomainError(
                    f"procedure {p.id}: service_minutes must be a positive number of minutes, "
                    f"not {p.service_minutes}"
                )
            priors = {Stage.SERVICE: p.service_minutes, Stage.PREP: p.prep_minutes, Stage.POST: p.post_minutes}
            for stage, prior in priors.items():
                data = by_stage.get((p.id, stage), [])
                fitted = _fit(p.id, stage, prior, data, ongoing.get((p.id, stage), []), settings)
                if fitted is None:
                    continue
                stages[(p.id, stage)] = fitted
                if stage is Stage.SERVICE:
                    for x, w, counter in _kept(data, math.sqrt(math.log1p(settings.prior_cv**2))):
                        if counter is not None:
                            r = x - fitted.mu
                            residuals.setdefault(counter, []).append((r, w))

        counters: dict[str, CounterSpeed] = {}
        for counter, rs in residuals.items():
            if len(rs) < COUNTER_MIN_VISITS:
                continue
            total = sum(w for _, w in rs)
            log_factor = sum(r * w for r, w in rs) / (total + settings.counter_weight)
            counters[counter] = CounterSpeed(counter, len(rs), math.exp(log_factor))

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


def _fit(
    procedure: str,
    stage: Stage,
    prior_minutes: float,
    data: Sequence[tuple[float, float, str | None]],
    ongoing: Sequence[tuple[float, float]],
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
    if ongoing and (data or has_prior):
        # Judged against the finished visits, or the prior's median while there are none.
        centre, scale = _robust_centre(data, sigma_prior) if data else (math.log(prior_minutes), sigma_prior)
        ongoing = [(x, w) for x, w in ongoing if x <= centre + OUTLIER_SDS * scale]
    n = len(data) + len(ongoing)
    done_w = sum(w for _, w, _ in kept)
    weight = done_w + sum(w for _, w in ongoing)
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
            for x, w in ongoing:
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
