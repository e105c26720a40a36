"""Experiment statistics on data whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from recoup.strategy.experiments import (
    ArmOutcome,
    Significance,
    arm_results,
    bootstrap_mean,
    sample_size_per_arm,
    two_proportion_test,
    wilson,
)


class TestIntervals:
    def test_wilson_matches_the_textbook_value(self) -> None:
        # 81 of 263: 0.308, Wilson 95% [0.255, 0.366] (Newcombe 1998, example).
        interval = wilson(81, 263)
        assert interval.value == pytest.approx(0.308, abs=0.001)
        assert (interval.low, interval.high) == pytest.approx((0.2553, 0.3662), abs=0.001)

    def test_wilson_stays_inside_zero_and_one(self) -> None:
        assert wilson(0, 10).low == 0.0
        assert wilson(10, 10).high == 1.0
        assert (wilson(0, 0).low, wilson(0, 0).high) == (0.0, 1.0)

    def test_two_proportions(self) -> None:
        # 50/100 vs 65/100: z = 2.14, p = 0.032.
        difference, p_value = two_proportion_test(50, 100, 65, 100)
        assert difference.value == pytest.approx(0.15)
        assert p_value == pytest.approx(0.0324, abs=0.001)
        assert difference.low > 0

    def test_sample_size_for_a_ten_point_difference(self) -> None:
        # 50% vs 60% at 95% / 80% power: about 388 per arm (Fleiss without correction).
        assert sample_size_per_arm(0.5, 0.6) == pytest.approx(388, abs=3)
        assert sample_size_per_arm(0.4, 0.4) is None

    def test_bootstrap_interval_covers_the_mean_and_repeats(self) -> None:
        values = np.random.default_rng(3).exponential(100, 2000)
        interval = bootstrap_mean(values)
        assert interval.low < values.mean() < interval.high
        assert interval.high - interval.low == pytest.approx(
            2 * 1.96 * values.std() / 2000**0.5, rel=0.2
        )
        assert bootstrap_mean(values) == interval


class TestArms:
    def test_a_clear_winner_is_significant(self) -> None:
        results = arm_results(
            [
                ArmOutcome(
                    arm="champion",
                    accounts=2000,
                    recovered=600,
                    cured=300,
                    collected=10**7,
                    contacts=5000,
                    cost=10**5,
                ),
                ArmOutcome(
                    arm="email_first", accounts=2000, recovered=760, cured=380, collected=2 * 10**7
                ),
            ]
        )
        champion, challenger = results
        assert champion.significance is Significance.BASELINE
        assert champion.cost_per_collected == pytest.approx(0.01)
        assert challenger.significance is Significance.SIGNIFICANT
        assert challenger.difference.value == pytest.approx(0.08)

    def test_too_few_accounts_is_not_yet_significant_with_the_sample_still_needed(self) -> None:
        results = arm_results(
            [
                ArmOutcome(arm="champion", accounts=100, recovered=30, cured=10, collected=1000),
                ArmOutcome(arm="control", accounts=100, recovered=25, cured=9, collected=900),
            ]
        )
        control = results[1]
        assert control.significance is Significance.NOT_YET
        needed = sample_size_per_arm(0.30, 0.25)
        assert control.still_needed == needed - 100
        assert control.p_value > 0.05

    def test_an_empty_arm_has_no_data(self) -> None:
        results = arm_results(
            [
                ArmOutcome(arm="champion", accounts=10, recovered=3, cured=1, collected=100),
                ArmOutcome(arm="control", accounts=0, recovered=0, cured=0, collected=0),
            ]
        )
        assert results[1].significance is Significance.NO_DATA
        assert results[1].cost_per_collected is None
