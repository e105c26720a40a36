"""Drift monitoring: PSI, its thresholds, and a run compared with training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recoup.scoring.monitoring import (
    DriftStatus,
    StabilityThresholds,
    drift_report,
    population_stability_index,
    stability,
)
from recoup.scoring.spec import TrainedModel
from recoup.scoring.training import reference_distribution
from tests.scoring.conftest import make_credit_frame


class TestPopulationStabilityIndex:
    def test_known_value(self) -> None:
        expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
        assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
        assert expected == pytest.approx(0.2747, abs=1e-4)

    def test_textbook_ten_bins(self) -> None:
        reference = [0.1] * 10
        current = [0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.15, 0.15]
        expected = 2 * (-0.05 * math.log(0.5)) + 2 * (0.05 * math.log(1.5))
        assert population_stability_index(reference, current) == pytest.approx(expected)

    def test_identical_distributions_have_zero_psi(self) -> None:
        assert population_stability_index([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0

    def test_empty_bins_are_floored_not_infinite(self) -> None:
        assert math.isfinite(population_stability_index([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))

    @pytest.mark.parametrize(
        ("psi", "status"),
        [
            (0.05, DriftStatus.STABLE),
            (0.1, DriftStatus.STABLE),
            (0.15, DriftStatus.WARN),
            (0.3, DriftStatus.ALERT),
        ],
    )
    def test_thresholds(self, psi: float, status: DriftStatus) -> None:
        assert StabilityThresholds().status(psi) is status


class TestStability:
    def test_numeric_bins_come_from_the_reference(self) -> None:
        rng = np.random.default_rng(0)
        reference = reference_distribution("x", rng.normal(size=10_000), kind="numeric")
        assert len(reference.edges) == 9
        assert reference.shares[-1] == 0.0
        same = stability(reference, rng.normal(size=10_000))
        shifted = stability(reference, rng.normal(loc=1.0, size=10_000))
        assert same.status is DriftStatus.STABLE
        assert same.psi < 0.01
        assert shifted.status is DriftStatus.ALERT
        assert shifted.bins[-2].current_share > shifted.bins[-2].reference_share

    def test_categorical_new_values_land_in_other(self) -> None:
        reference = reference_distribution(
            "region", ["north"] * 50 + ["south"] * 50, kind="categorical"
        )
        result = stability(reference, ["north"] * 40 + ["mars"] * 40 + [None] * 20)
        shares = {shift.label: shift.current_share for shift in result.bins}
        assert shares == {"north": 0.4, "south": 0.0, "Other": 0.4, "Missing": 0.2}
        assert result.status is DriftStatus.ALERT


class TestDriftReport:
    def test_training_like_data_is_stable(self, scorecard_model: TrainedModel) -> None:
        report = drift_report(scorecard_model, make_credit_frame(3000, seed=21))
        assert report.status is DriftStatus.STABLE
        assert {stability.name for stability in report.features} == set(
            scorecard_model.feature_names
        )

    def test_a_later_and_riskier_population_raises_an_alert(
        self, scorecard_model: TrainedModel
    ) -> None:
        riskier = make_credit_frame(3000, seed=21)
        riskier["months_late"] = np.minimum(riskier["months_late"] + 3, 6)
        report = drift_report(scorecard_model, riskier)
        by_name = {stability.name: stability for stability in report.features}
        assert by_name["months_late"].status is DriftStatus.ALERT
        assert by_name["noise"].status is DriftStatus.STABLE
        assert report.score.status is not DriftStatus.STABLE
        shift = next(item for item in report.characteristics if item.feature == "months_late")
        assert shift.points_shift < -10

    def test_gbm_models_report_inputs_and_score(self, gbm_model: TrainedModel) -> None:
        report = drift_report(gbm_model, make_credit_frame(2000, seed=5))
        assert report.characteristics == ()
        assert report.score.psi < 0.1
