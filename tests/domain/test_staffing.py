"""Staffing advice: Erlang C and the simulation of the calling policy agree where they must."""

from __future__ import annotations

import math

import pytest

from queue_server.domain.staffing import HourLoad, advise_hour, erlang_c, erlang_share_within, simulate


def _erlang_c_by_definition(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def test_erlang_c_is_the_textbook_formula() -> None:
    for c, a in ((7, 5.0), (1, 0.5), (12, 10.5), (30, 22.0)):
        assert erlang_c(c, a) == pytest.approx(_erlang_c_by_definition(c, a), rel=1e-9)
    assert erlang_c(3, 3.0) == 1.0 and erlang_c(3, 0.0) == 0.0


@pytest.mark.parametrize(("arrivals", "minutes", "counters"), [(30, 10, 6), (30, 10, 7), (12, 20, 5), (50, 8, 8)])
def test_the_simulation_of_exponential_service_agrees_with_erlang_c(arrivals: float, minutes: float,
                                                                     counters: int) -> None:
    share, _mean = simulate(counters, arrivals, minutes, 1.0, 5.0, arrivals=20_000, seed=3)
    assert share == pytest.approx(erlang_share_within(counters, arrivals, minutes, 5.0), abs=0.03)


def test_a_single_procedure_week_gets_the_same_counters_from_both_methods() -> None:
    # A week of one procedure with exponential service: each hour's answer is known from M/M/c.
    week = [HourLoad(hour=h, arrivals=rate, service_minutes=12.0, service_cv=1.0, current_counters=3)
            for h, rate in zip(range(9, 17), (10, 25, 40, 35, 15, 30, 28, 12), strict=True)]
    decisive = 0
    for load in week:
        advice = advise_hour(load, target_minutes=10.0, target_share=0.9)
        c = advice.counters_erlang
        below, at = (erlang_share_within(n, load.arrivals, 12.0, 10.0) for n in (c - 1, c))
        if at - 0.9 > 0.03 and 0.9 - below > 0.03:
            # Clear of the simulation's noise (±1.5 %): the two must give the same answer.
            decisive += 1
            assert advice.counters_simulated == c == advice.recommended, advice
        else:
            assert abs(advice.counters_simulated - c) <= 1, advice
        assert advice.recommended_share_simulated >= 0.88
        # The current plan (3 counters) fails wherever the load needs more.
        if advice.recommended > 3:
            assert advice.current_share_simulated < 0.9
    assert decisive >= 5


def test_variable_service_times_need_more_counters_than_erlang_c_says() -> None:
    # Service times with CV 2 (many quick visits, a few very long): M/M/c is optimistic, the simulation is not.
    load = HourLoad(hour=10, arrivals=40, service_minutes=12.0, service_cv=2.0, current_counters=9)
    advice = advise_hour(load, target_minutes=5.0, target_share=0.9)
    assert advice.counters_simulated >= advice.counters_erlang
    assert advice.recommended == max(advice.counters_simulated, advice.counters_erlang)


def test_the_wait_estimator_sees_a_typical_moment_of_the_recommended_plan_shorter_than_of_a_thin_one() -> None:
    # 30 an hour, 10-minute visits (5 Erlangs): 6 counters keep the line short; 8 shorter still.
    thin = advise_hour(HourLoad(hour=10, arrivals=30, service_minutes=10.0, service_cv=1.0, current_counters=6),
                       target_minutes=5.0, target_share=0.9)
    assert thin.recommended > 6
    assert thin.current_estimator_minutes is not None and thin.recommended_estimator_minutes is not None
    assert thin.recommended_estimator_minutes < thin.current_estimator_minutes
    overloaded = advise_hour(HourLoad(hour=10, arrivals=30, service_minutes=10.0, service_cv=1.0, current_counters=4),
                             target_minutes=5.0, target_share=0.9)
    assert overloaded.current_share_simulated == 0.0 and overloaded.current_estimator_minutes is None
