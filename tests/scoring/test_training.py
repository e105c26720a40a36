"""Training on tabular data: target handling, errors, splits and both model families."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from recoup.scoring.errors import (
    NoUsableFeatures,
    PositiveLabelUnknown,
    ScoringError,
    TargetColumnMissing,
    TargetNotBinary,
    TooFewRows,
)
from recoup.scoring.spec import TrainedModel
from recoup.scoring.training import (
    _monotone_direction,
    prepare_training_data,
    split_rows,
    train_model,
)
from tests.scoring.conftest import make_credit_frame


class TestTargetErrors:
    def test_missing_target_column_names_the_column_and_the_columns_present(self) -> None:
        frame = make_credit_frame(300)
        with pytest.raises(
            TargetColumnMissing, match=r"'bad_flag' is not in the data.*months_late"
        ):
            train_model(frame, target="bad_flag")

    def test_more_than_two_target_values_is_refused_with_the_count(self) -> None:
        frame = make_credit_frame(300)
        frame["grade"] = np.resize(["a", "b", "c"], len(frame))
        with pytest.raises(TargetNotBinary, match=r"exactly two distinct values.*holds 3"):
            train_model(frame, target="grade")

    def test_a_single_target_value_is_refused(self) -> None:
        frame = make_credit_frame(300).assign(defaulted=1)
        with pytest.raises(TargetNotBinary, match=r"holds 1"):
            train_model(frame, target="defaulted")

    def test_too_few_rows_names_both_numbers(self) -> None:
        frame = make_credit_frame(150)
        with pytest.raises(TooFewRows, match=r"at least 200 rows.*has 150"):
            train_model(frame, target="defaulted")

    def test_too_few_of_one_class_names_the_class_counts(self) -> None:
        frame = make_credit_frame(400)
        frame["defaulted"] = 0
        frame.loc[:4, "defaulted"] = 1
        with pytest.raises(
            TooFewRows, match=r"at least 20 rows of each class.*5 with target '1' and 395"
        ):
            train_model(frame, target="defaulted")

    def test_unknown_positive_label_lists_the_values(self) -> None:
        frame = make_credit_frame(300)
        with pytest.raises(PositiveLabelUnknown, match=r"'yes' is not a value.*'0'"):
            train_model(frame, target="defaulted", positive="yes")

    def test_errors_share_the_scoring_base_and_a_422_status(self) -> None:
        with pytest.raises(ScoringError) as raised:
            train_model(make_credit_frame(300), target="nope")
        assert raised.value.status_code == 422

    def test_no_usable_feature_is_refused(self) -> None:
        frame = pd.DataFrame({"ID": range(300), "constant": 1.0, "defaulted": [0, 1] * 150})
        with pytest.raises(NoUsableFeatures, match=r"constant \(a single value"):
            train_model(frame, target="defaulted")


class TestMonotoneDirection:
    def test_a_value_constant_where_present_has_no_trend_and_no_warning(self) -> None:
        # A feature may hold one value in the training rows (the rest missing or held out).
        values = np.where(np.arange(600) % 3 == 0, 1.0, np.nan)
        labels = (np.arange(600) % 4 == 0).astype(np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _monotone_direction(values, labels, base_rate=0.25) == 0


class TestLabels:
    @pytest.mark.parametrize(
        ("values", "expected_positive"),
        [
            ([0, 1], "1"),
            ([False, True], "true"),
            (["no", "yes"], "yes"),
            (["N", "Y"], "Y"),
            ([0.0, 1.0], "1"),
        ],
    )
    def test_boolean_like_targets_take_the_true_side_as_the_event(
        self, values: list[object], expected_positive: str
    ) -> None:
        frame = make_credit_frame(400)
        frame["outcome"] = [values[int(flag)] for flag in frame["defaulted"]]
        prepared = prepare_training_data(frame.drop(columns="defaulted"), target="outcome")
        assert prepared.positive_label == expected_positive
        assert prepared.labels.tolist() == frame["defaulted"].tolist()

    def test_two_text_labels_default_to_the_minority_class(self) -> None:
        frame = make_credit_frame(400)
        frame["status"] = np.where(frame["defaulted"] == 1, "written_off", "cured")
        prepared = prepare_training_data(frame.drop(columns="defaulted"), target="status")
        assert prepared.positive_label == "written_off"
        assert prepared.labels.tolist() == frame["defaulted"].tolist()

    def test_positive_names_the_event_explicitly(self) -> None:
        frame = make_credit_frame(400)
        frame["status"] = np.where(frame["defaulted"] == 1, "written_off", "cured")
        prepared = prepare_training_data(
            frame.drop(columns="defaulted"), target="status", positive="CURED"
        )
        assert prepared.positive_label == "cured"
        assert prepared.labels.tolist() == (1 - frame["defaulted"]).tolist()

    def test_rows_without_a_target_are_left_out_and_counted(self) -> None:
        frame = make_credit_frame(400).astype({"defaulted": "float64"})
        frame.loc[:9, "defaulted"] = np.nan
        prepared = prepare_training_data(frame, target="defaulted")
        assert prepared.rows_without_target == 10
        assert len(prepared.labels) == len(prepared.features) == 390


class TestColumns:
    def test_id_column_named_id_is_ignored_without_being_told(
        self, credit_frame: pd.DataFrame
    ) -> None:
        prepared = prepare_training_data(credit_frame, target="defaulted")
        assert prepared.id_column == "ID"
        assert "ID" not in prepared.kinds

    def test_explicit_id_column_is_ignored(self, credit_frame: pd.DataFrame) -> None:
        frame = credit_frame.rename(columns={"ID": "account_number"})
        prepared = prepare_training_data(frame, target="defaulted", id_column="account_number")
        assert "account_number" not in prepared.kinds

    def test_text_columns_become_categories_and_numeric_text_stays_numeric(self) -> None:
        frame = make_credit_frame(400)
        frame["utilisation"] = frame["utilisation"].map(lambda value: f"{value:.3f}")
        prepared = prepare_training_data(frame, target="defaulted")
        assert prepared.kinds["region"] == "categorical"
        assert prepared.kinds["utilisation"] == "numeric"

    def test_constant_and_empty_columns_are_dropped_with_a_reason(self) -> None:
        frame = make_credit_frame(400).assign(branch="HQ", unused=np.nan)
        prepared = prepare_training_data(frame, target="defaulted")
        reasons = {dropped.name: dropped.reason for dropped in prepared.dropped}
        assert reasons == {
            "branch": "a single value throughout",
            "unused": "every value is missing",
        }


class TestSplit:
    def test_stratified_split_holds_out_thirty_percent_with_the_same_event_rate(
        self, credit_frame: pd.DataFrame
    ) -> None:
        prepared = prepare_training_data(credit_frame, target="defaulted")
        split = split_rows(prepared, seed=3)
        assert split.method == "stratified"
        assert len(split.test) == 900
        assert set(split.train).isdisjoint(split.test)
        rates = prepared.labels[split.train].mean(), prepared.labels[split.test].mean()
        assert rates[0] == pytest.approx(rates[1], abs=0.005)

    def test_dates_hold_out_the_latest_period(self, credit_frame: pd.DataFrame) -> None:
        frame = credit_frame.assign(
            snapshot=pd.date_range("2024-01-01", periods=len(credit_frame), freq="h").astype(str)
        )
        prepared = prepare_training_data(frame, target="defaulted", date_column="snapshot")
        split = split_rows(prepared, seed=0)
        assert split.method == "time"
        assert prepared.dates is not None
        assert prepared.dates.iloc[split.train].max() < prepared.dates.iloc[split.test].min()
        assert "snapshot" not in prepared.kinds

    def test_same_seed_gives_the_same_split(self, credit_frame: pd.DataFrame) -> None:
        prepared = prepare_training_data(credit_frame, target="defaulted")
        assert (
            split_rows(prepared, seed=5).test.tolist() == split_rows(prepared, seed=5).test.tolist()
        )


class TestScorecardFamily:
    def test_every_weight_points_the_way_its_bins_say(self, scorecard_model: TrainedModel) -> None:
        assert scorecard_model.scorecard is not None
        assert all(feature.coefficient <= 0 for feature in scorecard_model.scorecard.features)

    def test_monotone_feature_loses_points_as_risk_rises(
        self, scorecard_model: TrainedModel
    ) -> None:
        assert scorecard_model.scorecard is not None
        months_late = next(f for f in scorecard_model.scorecard.features if f.name == "months_late")
        regular_points = [scorecard_bin.points for scorecard_bin in months_late.bins[:-1]]
        assert regular_points == sorted(regular_points, reverse=True)

    def test_table_lists_feature_bin_woe_and_points(self, scorecard_model: TrainedModel) -> None:
        assert scorecard_model.scorecard is not None
        table = scorecard_model.scorecard.table()
        region_bins = {row.bin for row in table if row.feature == "region"}
        assert {"north", "west", "Missing"} <= region_bins
        assert all(np.isfinite([row.woe, row.points]).all() for row in table)

    def test_held_out_metrics_are_consistent(self, scorecard_model: TrainedModel) -> None:
        evaluation = scorecard_model.evaluation
        assert evaluation.auc > 0.75
        assert evaluation.gini == pytest.approx(2 * evaluation.auc - 1)
        assert 0 < evaluation.ks < 1
        assert 0 < evaluation.brier < 0.25
        assert sum(row.count for row in evaluation.deciles) == scorecard_model.summary.n_test
        assert evaluation.deciles[-1].cumulative_event_share == pytest.approx(1.0)
        assert evaluation.deciles[0].lift > 1.5

    def test_summary_records_the_training_context(self, scorecard_model: TrainedModel) -> None:
        summary = scorecard_model.summary
        assert (summary.n_train, summary.n_test) == (2100, 900)
        assert summary.family == "scorecard"
        assert summary.positive_label == "1"
        assert len(summary.data_fingerprint) == 64


class TestGbmFamily:
    def test_same_seed_trains_the_same_booster(
        self, credit_frame: pd.DataFrame, gbm_model: TrainedModel
    ) -> None:
        again = train_model(credit_frame, target="defaulted", family="gbm", seed=1)
        assert gbm_model.gbm is not None
        assert again.gbm is not None
        assert again.gbm.booster == gbm_model.gbm.booster

    def test_steady_risk_driver_gets_a_monotone_constraint(self, gbm_model: TrainedModel) -> None:
        assert gbm_model.gbm is not None
        constraints = {feature.name: feature.monotone for feature in gbm_model.gbm.features}
        assert constraints["months_late"] == 1
        assert constraints["noise"] == 0

    def test_categorical_text_is_learned(self, gbm_model: TrainedModel) -> None:
        assert gbm_model.gbm is not None
        region = next(feature for feature in gbm_model.gbm.features if feature.name == "region")
        assert region.categories == ("east", "north", "south", "west")
        assert gbm_model.evaluation.auc > 0.75

    def test_unknown_family_is_refused(self, credit_frame: pd.DataFrame) -> None:
        with pytest.raises(ScoringError, match=r"unknown model family 'forest'"):
            train_model(credit_frame, target="defaulted", family="forest")  # type: ignore[arg-type]
