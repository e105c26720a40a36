"""The serving path: equivalence with optbinning, probabilities, grades and reason codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recoup.scoring.errors import FeatureColumnsMissing
from recoup.scoring.reasons import reason_text
from recoup.scoring.scorer import CompiledScorecard, GbmScorer, compile_scorer, top_reasons
from recoup.scoring.spec import GradeScale, TrainedModel
from recoup.scoring.training import (
    fit_reference_scorecard,
    fit_scorecard,
    prepare_training_data,
    split_rows,
    train_model,
)
from tests.scoring.conftest import make_credit_frame


@pytest.fixture(scope="module")
def scoring_rows() -> pd.DataFrame:
    """Fresh rows, with missing values, an unseen region and an infinite value."""
    rows = make_credit_frame(2000, seed=99).drop(columns=["defaulted", "ID"])
    rows.loc[0:49, "months_late"] = np.nan
    rows.loc[50:59, "region"] = "atlantis"
    rows.loc[60:69, "region"] = None
    rows.loc[70, "utilisation"] = np.inf
    return rows


class TestEquivalenceWithOptbinning:
    def test_points_match_optbinning_scorecard_score(self, scoring_rows: pd.DataFrame) -> None:
        frame = make_credit_frame()
        prepared = prepare_training_data(frame, target="defaulted")
        split = split_rows(prepared, seed=1)
        features = prepared.features.iloc[split.train].reset_index(drop=True)
        labels = prepared.labels[split.train]
        spec = fit_scorecard(features, labels, kinds=prepared.kinds)
        reference = fit_reference_scorecard(features, labels, spec=spec)

        ours = CompiledScorecard(spec).score(scoring_rows)
        theirs = reference.score(scoring_rows)
        np.testing.assert_allclose(ours.points, theirs, rtol=0, atol=1e-9)

    def test_probability_from_points_matches_the_logistic_regression(self) -> None:
        frame = make_credit_frame()
        prepared = prepare_training_data(frame, target="defaulted")
        features = prepared.features
        spec = fit_scorecard(features, prepared.labels, kinds=prepared.kinds)
        reference = fit_reference_scorecard(features, prepared.labels, spec=spec)
        complete = features.dropna()
        ours = CompiledScorecard(spec).score(complete, reasons=False).probability
        np.testing.assert_allclose(ours, reference.predict_proba(complete)[:, 1], atol=1e-9)


def test_a_feature_with_no_value_in_the_training_rows_is_left_out() -> None:
    frame = make_credit_frame()
    prepared = prepare_training_data(frame, target="defaulted")
    features = prepared.features.copy()
    empty = next(name for name, kind in prepared.kinds.items() if kind == "numeric")
    features[empty] = np.nan
    spec = fit_scorecard(features, prepared.labels, kinds=prepared.kinds)
    names = [feature.name for feature in spec.features]
    assert empty not in names
    assert names


class TestScorecardServing:
    def test_missing_columns_are_named(self, scorecard_model: TrainedModel) -> None:
        rows = make_credit_frame(10).drop(columns=["region", "income"])
        with pytest.raises(FeatureColumnsMissing, match=r"lacks 2 column.*income, region"):
            compile_scorer(scorecard_model).score(rows)

    def test_plain_mappings_of_arrays_score_like_data_frames(
        self, scorecard_model: TrainedModel, scoring_rows: pd.DataFrame
    ) -> None:
        scorer = compile_scorer(scorecard_model)
        as_mapping = {name: scoring_rows[name].to_numpy() for name in scoring_rows.columns}
        np.testing.assert_array_equal(
            scorer.score(as_mapping).points, scorer.score(scoring_rows).points
        )

    def test_higher_points_mean_lower_default_probability(
        self, scorecard_model: TrainedModel, scoring_rows: pd.DataFrame
    ) -> None:
        batch = compile_scorer(scorecard_model).score(scoring_rows)
        order = np.argsort(batch.points)
        assert np.all(np.diff(batch.probability[order]) <= 1e-12)

    def test_grades_follow_the_given_cutoffs(
        self, scorecard_model: TrainedModel, scoring_rows: pd.DataFrame
    ) -> None:
        scale = GradeScale(cutoffs=(0.1, 0.2, 0.3, 0.5))
        batch = compile_scorer(scorecard_model).score(scoring_rows, grades=scale)
        expected = np.select(
            [
                batch.probability < 0.1,
                batch.probability < 0.2,
                batch.probability < 0.3,
                batch.probability < 0.5,
            ],
            ["A", "B", "C", "D"],
            "E",
        )
        assert batch.grades.tolist() == expected.tolist()
        assert set(batch.grades) == {"A", "B", "C", "D", "E"}

    def test_grade_cutoffs_must_ascend(self) -> None:
        with pytest.raises(ValueError, match=r"must ascend"):
            GradeScale(cutoffs=(0.3, 0.2, 0.4, 0.5))


class TestReasonCodes:
    def test_reasons_are_the_features_furthest_below_their_best_points(
        self, scorecard_model: TrainedModel, scoring_rows: pd.DataFrame
    ) -> None:
        assert scorecard_model.scorecard is not None
        scorer = CompiledScorecard(scorecard_model.scorecard)
        batch = scorer.score(scoring_rows)
        bins = scorer.bin_indices(scoring_rows)
        deficits = np.column_stack(
            [
                feature.points.max() - feature.points[bins[feature.name]]
                for feature in scorer.features
            ]
        )
        for row in range(0, len(scoring_rows), 37):
            expected = [
                scorer.feature_names[column]
                for column in np.argsort(-deficits[row], kind="stable")[:3]
                if deficits[row, column] > 1e-9
            ]
            assert batch.reason_features(row) == expected

    def test_a_debtor_at_every_best_bin_has_no_reasons(self, scorecard_model: TrainedModel) -> None:
        best = pd.DataFrame(
            {
                "months_late": [0.0],
                "utilisation": [0.0],
                "income": [1e6],
                "region": ["north"],
                "noise": [5.0],
            }
        )
        batch = compile_scorer(scorecard_model).score(best)
        assert batch.reason_features(0) == []

    def test_a_late_high_utilisation_debtor_hears_about_lateness_first(
        self, scorecard_model: TrainedModel
    ) -> None:
        risky = pd.DataFrame(
            {
                "months_late": [6.0],
                "utilisation": [1.15],
                "income": [5e4],
                "region": ["north"],
                "noise": [0.0],
            }
        )
        batch = compile_scorer(scorecard_model).score(risky)
        assert batch.reason_features(0)[:2] == ["months_late", "utilisation"]

    def test_reasons_are_worded_in_both_languages(self, scorecard_model: TrainedModel) -> None:
        rows = pd.DataFrame(
            {
                "months_late": [6.0],
                "utilisation": [1.15],
                "income": [5e4],
                "region": ["west"],
                "noise": [0.0],
            }
        )
        batch = compile_scorer(scorecard_model).score(rows)
        assert batch.reasons(0, locale="en")[0] == "months_late is unfavourable"
        assert batch.reasons(0, locale="zh")[0] == "months_late 不利"
        assert reason_text("PAY_0", locale="en") == "Repayment was late the latest month"
        assert reason_text("days_past_due", locale="zh") == "逾期天数较长"

    def test_top_reasons_pads_and_orders(self) -> None:
        harm = np.array([[0.5, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.3]], dtype=np.float32)
        assert top_reasons(harm).tolist() == [[1, 3, 0], [3, -1, -1]]


class TestGbmServing:
    def test_scores_are_the_calibrated_booster(
        self, gbm_model: TrainedModel, scoring_rows: pd.DataFrame
    ) -> None:
        scorer = compile_scorer(gbm_model)
        assert isinstance(scorer, GbmScorer)
        batch = scorer.score(scoring_rows)
        raw = scorer.booster.predict(scorer.matrix(scoring_rows), raw_score=True)
        spec = scorer.spec
        assert spec.calibration_slope > 0
        calibrated = spec.calibration_slope * raw + spec.calibration_intercept
        np.testing.assert_allclose(batch.probability, 1 / (1 + np.exp(-calibrated)), atol=1e-12)

    def test_points_and_probability_tell_the_same_story(
        self, gbm_model: TrainedModel, scoring_rows: pd.DataFrame
    ) -> None:
        batch = compile_scorer(gbm_model).score(scoring_rows)
        order = np.argsort(batch.points)
        assert np.all(np.diff(batch.probability[order]) <= 1e-12)

    def test_reasons_are_the_largest_contributions_toward_default(
        self, gbm_model: TrainedModel, scoring_rows: pd.DataFrame
    ) -> None:
        scorer = compile_scorer(gbm_model)
        assert isinstance(scorer, GbmScorer)
        batch = scorer.score(scoring_rows)
        contributions = scorer.booster.predict(scorer.matrix(scoring_rows), pred_contrib=True)[
            :, :-1
        ]
        for row in range(0, len(scoring_rows), 101):
            order = np.argsort(-contributions[row], kind="stable")[:3]
            expected = [scorer.feature_names[c] for c in order if contributions[row, c] > 0]
            assert batch.reason_features(row) == expected


class TestFavourableEvents:
    def test_when_the_event_is_good_more_points_mean_more_likely_event(self) -> None:
        frame = make_credit_frame(1500)
        frame["repaid"] = 1 - frame.pop("defaulted")
        model = train_model(frame, target="repaid", event_is_favourable=True, seed=2)
        batch = compile_scorer(model).score(frame)
        order = np.argsort(batch.points)
        assert np.all(np.diff(batch.probability[order]) >= -1e-12)
        assert model.evaluation.auc > 0.75
        late = pd.DataFrame(
            {
                "months_late": [6.0],
                "utilisation": [1.15],
                "income": [5e4],
                "region": ["north"],
                "noise": [0.0],
            }
        )
        late_batch = compile_scorer(model).score(late)
        assert late_batch.reason_features(0)[0] == "months_late"
        assert late_batch.grades[0] == "E"
