"""Uplift: Qini and AUUC on hand-computed cases, and learners that find a planted effect."""

from __future__ import annotations

import numpy as np
import pytest

from recoup.scoring import uplift
from recoup.scoring.uplift import ExperimentData, UpliftDataInvalid, UpliftModel

# Four cases, best first: a treated payer, a control non-payer, a treated non-payer, a control
# payer. Qini curve at each cut: 1, 1, 1, 0 (area 3 of 4 × 4); uplift curve: 1, 2, 1.5, 0
# (area 4.5 of 16).
TREATED = np.array([True, False, True, False])
PAID = np.array([True, False, False, True])


class TestQiniAndAuucByHand:
    def test_the_best_ranking_scores_its_area_and_matches_the_perfect_one(self) -> None:
        metrics = uplift.uplift_metrics(np.array([0.4, 0.3, 0.2, 0.1]), TREATED, PAID)
        assert metrics.qini.model == pytest.approx(3 / 16)
        assert metrics.qini.perfect == pytest.approx(3 / 16)
        assert metrics.qini.random == 0.0  # as many treated as control payers: no overall effect
        assert metrics.qini.coefficient == pytest.approx(1.0)
        assert metrics.auuc.model == pytest.approx(4.5 / 16)
        assert metrics.auuc.perfect == pytest.approx(4.5 / 16)
        assert metrics.auuc.coefficient == pytest.approx(1.0)
        assert metrics.average_uplift == 0.0

    def test_the_reverse_ranking_is_below_random(self) -> None:
        # Qini at each cut: 0, −1, −0.5, 0 → area −1.5 / 16, half the perfect area below zero.
        metrics = uplift.uplift_metrics(np.array([0.1, 0.2, 0.3, 0.4]), TREATED, PAID)
        assert metrics.qini.model == pytest.approx(-1.5 / 16)
        assert metrics.qini.coefficient == pytest.approx(-0.5)
        assert metrics.auuc.coefficient < 0

    def test_tied_scores_are_one_cut(self) -> None:
        # A model that scores everyone alike is the random line, whatever the order of the rows.
        metrics = uplift.uplift_metrics(np.zeros(4), TREATED, PAID)
        assert metrics.qini.model == pytest.approx(metrics.qini.random)
        assert metrics.qini.coefficient == pytest.approx(0.0)

    def test_random_is_half_the_overall_effect(self) -> None:
        treated = np.array([True, True, False, False])
        paid = np.array([True, True, False, True])
        # 2 of 2 treated paid, 1 of 2 control: 1 incremental payer over 4 cases.
        metrics = uplift.uplift_metrics(np.array([4.0, 3.0, 2.0, 1.0]), treated, paid)
        assert metrics.qini.random == pytest.approx(1 / 4 / 2)
        assert metrics.average_uplift == pytest.approx(0.5)

    def test_one_arm_only_is_refused_with_the_reason(self) -> None:
        with pytest.raises(UpliftDataInvalid, match="both arms"):
            uplift.uplift_metrics(np.zeros(3), np.ones(3, dtype=bool), np.ones(3, dtype=bool))

    def test_random_rankings_centre_on_zero(self) -> None:
        rng = np.random.default_rng(3)
        treated = rng.random(4000) < 0.5
        paid = rng.random(4000) < 0.2 + 0.1 * treated
        mean, sd = uplift.random_spread(treated, paid, draws=20)
        assert abs(mean) < 3 * sd / np.sqrt(20) + 0.01
        assert 0 < sd < 0.1


def planted(size: int, seed: int, *, swap: bool = False) -> ExperimentData:
    """Contact lifts P(pay) from 0.1 to 0.4 for cases with the first feature above 60 only."""
    rng = np.random.default_rng(seed)
    features = np.column_stack(
        [
            rng.uniform(0, 120, size),
            rng.normal(13, 1, size),
            (rng.random(size) < 0.1).astype(float),
            rng.uniform(20, 70, size),
            rng.uniform(0, 1, size),
        ]
    )
    treated = rng.random(size) < 0.5
    moved = features[:, 0] > 60
    paid = rng.random(size) < 0.1 + 0.3 * (treated & moved)
    return ExperimentData(features=features, treated=~treated if swap else treated, paid=paid)


class TestLearners:
    @pytest.mark.parametrize("learner", ["t", "x"])
    def test_the_learner_recovers_a_planted_effect(self, learner: str) -> None:
        model = uplift.fit({"call": planted(6000, 1)}, learner=learner)
        test = planted(4000, 2)
        predicted = model.predict(test.features, "call")
        moved = test.features[:, 0] > 60
        assert predicted[moved].mean() - predicted[~moved].mean() > 0.2
        assert predicted[moved].mean() == pytest.approx(0.3, abs=0.07)
        assert abs(predicted[~moved].mean()) < 0.05
        assert uplift.uplift_metrics(predicted, test.treated, test.paid).qini.coefficient > 0.2

    @pytest.mark.parametrize("learner", ["t", "x"])
    def test_swapping_treated_and_control_reverses_the_ranking(self, learner: str) -> None:
        model = uplift.fit({"call": planted(6000, 1, swap=True)}, learner=learner)
        test = planted(4000, 2)
        predicted = model.predict(test.features, "call")
        moved = test.features[:, 0] > 60
        assert predicted[moved].mean() < -0.2
        assert uplift.uplift_metrics(predicted, test.treated, test.paid).qini.coefficient < 0

    def test_the_artifact_round_trips_and_unknown_channels_fall_back(self) -> None:
        model = uplift.fit({"call": planted(3000, 1)})
        again = UpliftModel.from_bytes(model.to_bytes())
        test = planted(500, 2)
        assert np.allclose(
            again.predict(test.features, "call"), model.predict(test.features, "call")
        )
        columns = {
            "days_past_due": test.features[:, 0],
            "balance": np.expm1(test.features[:, 1]),
            "customer_type": np.where(test.features[:, 2] > 0, "business", "individual"),
            "age": test.features[:, 3],
            "propensity": test.features[:, 4],
        }
        assert np.all(np.isnan(again.score(columns, "visit")))
        assert not np.any(np.isnan(again.score(columns, "call")))

    def test_too_little_experiment_data_is_refused_by_channel_and_arm(self) -> None:
        small = planted(300, 1)
        with pytest.raises(UpliftDataInvalid, match=r"sms: the (contacted|control) arm has"):
            uplift.fit({"sms": small})

    def test_an_unknown_learner_is_refused(self) -> None:
        with pytest.raises(UpliftDataInvalid, match="learner must be one of t, x"):
            uplift.fit_channel(planted(3000, 1), learner="s")

    def test_a_foreign_artifact_is_refused(self) -> None:
        with pytest.raises(UpliftDataInvalid, match="not a recoup-uplift artifact"):
            UpliftModel.from_bytes(b'{"format": "other"}')
