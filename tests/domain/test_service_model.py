"""The service-time model: starts from the configured priors, learns from measured durations."""

from __future__ import annotations

import json
import math
import random

import pytest

from queue_server.domain.model import DomainError, NotFound, NumberFormat, Procedure
from queue_server.domain.service_model import (
    BookingBehaviour,
    BookingOutcome,
    LearningSettings,
    MeasuredDuration,
    ServiceModel,
    Stage,
)

PICKUP = Procedure("pickup", "カード交付", NumberFormat(prefix="B"), service_minutes=10.0, prep_minutes=15.0, post_minutes=10.0)
APPLY = Procedure("apply", "交付申請受付", NumberFormat(prefix="A"), service_minutes=20.0)


def visits(procedure: str, mean: float, cv: float, n: int, *, seed: int = 1, **kw: object) -> list[MeasuredDuration]:
    """``n`` lognormal visit durations with the given mean and CV."""
    rng = random.Random(seed)
    sigma = math.sqrt(math.log1p(cv * cv))
    mu = math.log(mean) - sigma * sigma / 2
    return [MeasuredDuration(procedure, Stage.SERVICE, rng.lognormvariate(mu, sigma), **kw) for _ in range(n)]  # type: ignore[arg-type]


def test_without_measurements_the_model_is_the_configured_prior() -> None:
    model = ServiceModel.learn([PICKUP, APPLY])
    assert model.stage("pickup").mean_minutes == pytest.approx(10.0)
    assert model.stage("apply").mean_minutes == pytest.approx(20.0)
    assert model.stage("pickup", Stage.PREP).mean_minutes == pytest.approx(15.0)
    assert model.stage("pickup", Stage.POST).mean_minutes == pytest.approx(10.0)
    assert model.stage("pickup").prior_share == 1.0
    assert model.stage("pickup").cv == pytest.approx(LearningSettings().prior_cv)


def test_a_stage_without_prior_or_measurements_is_unknown() -> None:
    model = ServiceModel.learn([APPLY])
    with pytest.raises(NotFound):
        model.stage("apply", Stage.PREP)
    with pytest.raises(NotFound):
        model.stage("nonexistent")


def test_learning_moves_the_prior_toward_measured_times_and_the_prior_fades() -> None:
    few = ServiceModel.learn([PICKUP], [MeasuredDuration("pickup", Stage.SERVICE, 20.0)] * 5).stage("pickup")
    many = ServiceModel.learn([PICKUP], [MeasuredDuration("pickup", Stage.SERVICE, 20.0)] * 95).stage("pickup")
    # Prior weight 5 against 5 visits: halfway; against 95 visits: 95 % of the way.
    assert few.mean_minutes == pytest.approx(15.0, rel=1e-6)
    assert many.mean_minutes == pytest.approx(19.5, rel=1e-6)
    assert few.prior_share == pytest.approx(0.5)
    assert many.prior_share == pytest.approx(0.05)
    assert many.mu_sd < few.mu_sd


def test_an_outlier_does_not_move_the_estimate() -> None:
    normal = visits("pickup", 12.0, 0.5, 20)
    left_open = [*normal, MeasuredDuration("pickup", Stage.SERVICE, 240.0)]  # open over lunch
    clean = ServiceModel.learn([PICKUP], normal).stage("pickup")
    dirty = ServiceModel.learn([PICKUP], left_open).stage("pickup")
    assert dirty.n == 21
    assert dirty.mean_minutes == pytest.approx(clean.mean_minutes, rel=0.01)
    assert dirty.cv == pytest.approx(clean.cv, rel=0.01)


def test_the_mean_is_right_for_heavy_tails_and_for_exponential_visits() -> None:
    heavy = ServiceModel.learn([APPLY], visits("apply", 25.0, 1.5, 3000, seed=3)).stage("apply")
    assert heavy.mean_minutes == pytest.approx(25.0, rel=0.08)
    assert heavy.cv == pytest.approx(1.5, rel=0.2)
    rng = random.Random(4)
    exp = [MeasuredDuration("pickup", Stage.SERVICE, rng.expovariate(1 / 10)) for _ in range(3000)]
    fitted = ServiceModel.learn([PICKUP], exp).stage("pickup")
    assert fitted.mean_minutes == pytest.approx(10.0, rel=0.05)
    assert fitted.cv == pytest.approx(1.0, rel=0.1)


def test_the_cv_is_learned() -> None:
    calm = ServiceModel.learn([PICKUP], visits("pickup", 10.0, 0.5, 300)).stage("pickup")
    wild = ServiceModel.learn([PICKUP], visits("pickup", 10.0, 1.5, 300)).stage("pickup")
    assert calm.cv < 0.6
    assert wild.cv > 1.1


def test_todays_measurements_outweigh_old_ones() -> None:
    old = [MeasuredDuration("pickup", Stage.SERVICE, 10.0, days_ago=30)] * 50
    today = [MeasuredDuration("pickup", Stage.SERVICE, 20.0)] * 10
    same_day = [MeasuredDuration("pickup", Stage.SERVICE, 10.0)] * 50
    # A month-old visit weighs 0.5 ** (30 / 7) ≈ 5 % of today's.
    assert ServiceModel.learn([PICKUP], old + today).stage("pickup").mean_minutes > 15.0
    assert ServiceModel.learn([PICKUP], same_day + today).stage("pickup").mean_minutes < 12.0


def test_a_slow_counter_gets_a_factor_shrunk_toward_one() -> None:
    fast = visits("pickup", 10.0, 0.3, 60, seed=5, counter="1")
    slow = visits("pickup", 15.0, 0.3, 60, seed=6, counter="2")
    newcomer = visits("pickup", 15.0, 0.3, 2, seed=7, counter="3")
    model = ServiceModel.learn([PICKUP], fast + slow + newcomer)
    ratio = model.counter_factor("2") / model.counter_factor("1")
    assert 1.3 < ratio < 1.5
    assert model.counter_factor("3") == 1.0  # too few visits to tell
    few = ServiceModel.learn([PICKUP], fast + slow[:5])
    assert 1.0 < few.counter_factor("2") < model.counter_factor("2")


def test_stages_learn_separately() -> None:
    prep = [MeasuredDuration("pickup", Stage.PREP, 30.0)] * 45
    model = ServiceModel.learn([PICKUP], prep)
    assert model.stage("pickup", Stage.PREP).mean_minutes == pytest.approx(28.5)
    assert model.stage("pickup").mean_minutes == pytest.approx(10.0)


def test_walk_up_is_learned_and_long_gaps_are_capped() -> None:
    gaps = [MeasuredDuration("pickup", Stage.WALK_UP, 1.0)] * 45 + [MeasuredDuration("pickup", Stage.WALK_UP, 300.0)]
    model = ServiceModel.learn([PICKUP], gaps)
    assert model.walk_up_n == 46
    assert 0.9 < model.walk_up_minutes < 1.1


def test_explain_is_a_plain_dict_the_supervisor_page_can_show() -> None:
    model = ServiceModel.learn([PICKUP, APPLY], visits("pickup", 12.0, 0.5, 30, counter="3"))
    shown = json.loads(json.dumps(model.explain()))
    service = shown["procedures"]["pickup"]["service"]
    assert service["prior_minutes"] == 10.0
    assert service["n_measured"] == 30
    assert 10.0 < service["mean_minutes"] < 14.0
    assert {"measured_median_minutes", "median_minutes", "cv", "prior_share"} <= service.keys()
    assert shown["procedures"]["apply"]["service"]["n_measured"] == 0
    assert shown["counters"]["3"]["n_measured"] == 30


def test_a_procedure_without_a_positive_service_time_is_refused() -> None:
    broken = Procedure("x", "x", NumberFormat(), service_minutes=0.0)
    with pytest.raises(DomainError, match="service_minutes"):
        ServiceModel.learn([broken])


def test_visits_still_ongoing_lift_the_mean_early_in_the_day() -> None:
    finished = [MeasuredDuration("apply", Stage.SERVICE, 8.0)] * 5  # only the short ones have ended
    ongoing = [MeasuredDuration("apply", Stage.SERVICE, 25.0, ongoing=True)] * 5
    without = ServiceModel.learn([APPLY], finished).stage("apply")
    with_ongoing = ServiceModel.learn([APPLY], finished + ongoing).stage("apply")
    assert without.mean_minutes < 15.0
    assert with_ongoing.mean_minutes > 20.0  # each ongoing visit counts as longer than its 25 min so far
    assert with_ongoing.n == 10


def test_an_ongoing_visit_far_beyond_belief_is_a_forgotten_finish() -> None:
    finished = visits("pickup", 10.0, 0.5, 30)
    forgotten = MeasuredDuration("pickup", Stage.SERVICE, 400.0, ongoing=True)
    clean = ServiceModel.learn([PICKUP], finished).stage("pickup")
    assert ServiceModel.learn([PICKUP], [*finished, forgotten]).stage("pickup").mean_minutes == pytest.approx(clean.mean_minutes)


def day_at_counters(speeds: dict[str, float], procedures: dict[str, float], n: int, *, cv: float | None,
                    seed: int) -> list[MeasuredDuration]:
    """``n`` finished visits per counter (and one still going on), its procedures taken in turn.

    ``speeds`` maps counter → how much slower than average its visits are; ``procedures`` maps
    procedure → its true mean visit at an average counter. ``cv`` None: exponential visits.
    """
    rng = random.Random(seed)

    def draw(mean: float) -> float:
        if cv is None:
            return rng.expovariate(1 / mean)
        sigma = math.sqrt(math.log1p(cv * cv))
        return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)

    out = []
    served = list(procedures)
    for counter, speed in speeds.items():
        for i in range(n + 1):
            p = served[(i + int(counter)) % len(served)]
            minutes = draw(procedures[p] * speed)
            if i == n:  # the visit at the counter now: some of it has passed
                out.append(MeasuredDuration(p, Stage.SERVICE, minutes * rng.random(), counter=counter, ongoing=True))
            else:
                out.append(MeasuredDuration(p, Stage.SERVICE, minutes, counter=counter))
    return out


CVS = pytest.mark.parametrize("cv", [None, 0.5, 1.0, 1.5], ids=["exponential", "cv0.5", "cv1.0", "cv1.5"])


@CVS
def test_identical_counters_get_speed_factors_near_one(cv: float | None) -> None:
    # Four counters as fast as each other, 60 visits each, over five days' draws. By chance alone
    # one counter's raw ratio to the average is off by about cv/√60 (0.06–0.19): the factors
    # average to 1 (no bias, whatever the visits' shape), and stay closer to 1 than that chance.
    chance = (cv or 1.0) / math.sqrt(60)
    factors = []
    for seed in range(1, 6):
        data = day_at_counters({c: 1.0 for c in "1234"}, {"pickup": 10.0, "apply": 20.0}, 60, cv=cv, seed=seed)
        model = ServiceModel.learn([PICKUP, APPLY], data)
        factors += [model.counter_factor(c) for c in "1234"]
    assert sum(factors) / len(factors) == pytest.approx(1.0, abs=0.02)
    assert math.sqrt(sum((f - 1) ** 2 for f in factors) / len(factors)) < chance
    assert all(abs(f - 1) < 2.5 * chance for f in factors), factors


@CVS
def test_a_counter_half_as_slow_again_is_still_found(cv: float | None) -> None:
    # 200 visits per counter (a week or two): the slow counter's factor stands out from the rest,
    # shrunk somewhat towards them, as an estimate from noisy visits should be.
    ratios = []
    for seed in range(1, 6):
        data = day_at_counters({"1": 1.0, "2": 1.0, "3": 1.5, "4": 1.0}, {"pickup": 10.0, "apply": 20.0}, 200,
                               cv=cv, seed=seed)
        model = ServiceModel.learn([PICKUP, APPLY], data)
        ratios.append(model.counter_factor("3") / (sum(model.counter_factor(c) for c in "124") / 3))
    assert min(ratios) > 1.05, ratios
    assert sum(ratios) / len(ratios) > 1.25, ratios


def test_a_slow_counter_is_not_counted_twice_in_the_procedures_it_alone_serves() -> None:
    # Counter 2 (1.5× slower) serves only applications; counters 1 and 3 are average. The
    # visit the estimator plays at each counter (procedure mean × counter factor) is the true one.
    rng = random.Random(3)
    true = {("1", "apply"): 20.0, ("1", "pickup"): 10.0, ("2", "apply"): 30.0, ("3", "pickup"): 10.0}
    sigma = math.sqrt(math.log1p(0.5**2))
    data = [MeasuredDuration(p, Stage.SERVICE, rng.lognormvariate(math.log(m) - sigma**2 / 2, sigma), counter=c)
            for (c, p), m in true.items() for _ in range(150)]
    model = ServiceModel.learn([PICKUP, APPLY], data)
    for (c, p), m in true.items():
        assert model.stage(p).mean_minutes * model.counter_factor(c) == pytest.approx(m, rel=0.1), (c, p)


def test_booking_behaviour_starts_from_the_priors_and_learns_from_past_bookings() -> None:
    prior = BookingBehaviour.learn(no_show_prior=0.1, lateness_sd_prior=5.0)
    assert (prior.show_probability, prior.lateness_mean, prior.lateness_sd, prior.n) == (pytest.approx(0.9), 0.0, 5.0, 0)
    # 200 past bookings today: 59 never came (about 30 %), the rest checked in 1, 3 or 5 minutes late.
    late = [BookingOutcome(float(1 + 2 * (i % 3))) for i in range(141)]
    learned = BookingBehaviour.learn(late + [BookingOutcome(None)] * 59, no_show_prior=0.1, lateness_sd_prior=5.0)
    # The prior counts as 20 bookings: no-shows (20·0.1 + 59) / 220; lateness mean 3 shrunk by
    # 141/161, variance (20·25 + 141·8/3) / 161.
    assert learned.show_probability == pytest.approx(1 - 61 / 220)
    assert learned.lateness_mean == pytest.approx(3.0 * 141 / 161)
    assert learned.lateness_sd == pytest.approx(math.sqrt((20 * 25 + 141 * 8 / 3) / 161))
    assert learned.n == 200
    # A check-in typed hours after the slot (a clock or data mistake) does not move the lateness.
    odd = BookingBehaviour.learn(late + [BookingOutcome(None)] * 59 + [BookingOutcome(95.0), BookingOutcome(500.0)])
    assert odd.lateness_mean == pytest.approx(learned.lateness_mean, abs=0.05)
    # Old days count less: a month-old bad week hardly matters against today.
    old = [BookingOutcome(None, days_ago=30)] * 100
    assert BookingBehaviour.learn(late + old).show_probability > 0.85


def test_booking_behaviour_refuses_impossible_priors() -> None:
    with pytest.raises(DomainError):
        BookingBehaviour.learn(no_show_prior=1.0)
    with pytest.raises(DomainError):
        BookingBehaviour.learn(lateness_sd_prior=0.0)
