"""Training on files as people really have them: formatted numbers, dates, free text, row numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bench._outside import outside_style, with_utilisation

from recoup.scoring.errors import TargetColumnMissing
from recoup.scoring.monitoring import drift_report
from recoup.scoring.scorer import compile_scorer, numeric_values
from recoup.scoring.spec import RARE_LABEL, TrainedModel
from recoup.scoring.training import prepare_training_data, train_model
from tests.scoring.conftest import make_credit_frame


def taiwan_like(rows: int = 2400, *, seed: int = 5) -> pd.DataFrame:
    """A small table with Taiwan's column names, so the outside-style writer applies."""
    rng = np.random.default_rng(seed)
    limit = rng.choice([20_000, 50_000, 80_000, 120_000, 200_000, 360_000], rows)
    bill = (limit * rng.uniform(0, 1.1, rows)).round(0)
    late = rng.integers(-1, 4, rows)
    paid = (bill * rng.uniform(0, 0.3, rows)).round(0)
    log_odds = -1.6 + 0.7 * late + 1.2 * bill / limit - 4 * paid / np.maximum(bill, 1)
    target = (rng.random(rows) < 1 / (1 + np.exp(-log_odds))).astype(int)
    return pd.DataFrame(
        {
            "ID": np.arange(1, rows + 1),
            "LIMIT_BAL": limit.astype(float),
            "PAY_0": late,
            "BILL_AMT1": bill,
            "BILL_AMT2": (bill * rng.uniform(0.8, 1.2, rows)).round(0),
            "PAY_AMT1": paid,
            "target": target,
        }
    )


Trained = tuple[pd.DataFrame, TrainedModel, TrainedModel]


@pytest.fixture(scope="module")
def trained() -> Trained:
    """The same rows trained clean and as an outside-style file."""
    frame = taiwan_like()
    clean = train_model(with_utilisation(frame), target="target", id_column="ID", seed=0)
    messy_frame = outside_style(frame, seed=0)
    messy = train_model(messy_frame, target="target", seed=0)
    return messy_frame, clean, messy


class TestOutsideStyleFile:
    def test_it_trains_as_well_as_the_clean_table(self, trained: Trained) -> None:
        _, clean, messy = trained
        assert messy.evaluation.auc == pytest.approx(clean.evaluation.auc, abs=0.005)
        assert messy.evaluation.auc > 0.7

    def test_formatted_numbers_are_read_as_numbers_and_reported(self, trained: Trained) -> None:
        _, _, messy = trained
        kinds = dict(zip(messy.summary.input_columns, messy.summary.input_kinds, strict=True))
        assert kinds["LIMIT_BAL"] == kinds["BILL_AMT1"] == kinds["utilisation"] == "numeric"
        notes = " | ".join(messy.summary.notes)
        assert "'LIMIT_BAL' read as numbers ('$" in notes
        assert "'utilisation' read as numbers (" in notes
        assert "%' →" in notes

    def test_dates_free_text_and_row_numbers_are_left_out_with_a_reason(
        self, trained: Trained
    ) -> None:
        _, _, messy = trained
        reasons = {dropped.name: dropped.reason for dropped in messy.summary.dropped_columns}
        assert "--date-column" in reasons["issue_d"]
        assert reasons["emp_title"].startswith("free text with")
        assert reasons["rownames"].startswith("row numbers")
        assert not {"issue_d", "emp_title", "rownames"} & set(messy.feature_names)

    def test_the_trained_model_scores_the_formatted_file(self, trained: Trained) -> None:
        messy_frame, _, messy = trained
        batch = compile_scorer(messy).score(messy_frame.head(50))
        assert np.isfinite(batch.probability).all()
        clean_rows = messy_frame.head(50).assign(
            LIMIT_BAL=numeric_values(messy_frame["LIMIT_BAL"].head(50))
        )
        np.testing.assert_allclose(
            compile_scorer(messy).score(clean_rows).probability, batch.probability
        )


class TestNumbersWrittenForPeople:
    def test_percent_currency_and_thousands_become_numbers(self) -> None:
        values = pd.Series(
            ["13.99%", "$35,000", "1,234.50", "-$1,200.5", "¥8,000", "7", None, "n/a"]
        )
        np.testing.assert_allclose(
            numeric_values(values),
            [13.99, 35000, 1234.5, -1200.5, 8000, 7, np.nan, np.nan],
        )


class TestDates:
    def test_a_date_column_in_month_year_spelling_drives_the_time_split(self) -> None:
        frame = make_credit_frame(1200)
        months = pd.date_range("2015-01-01", periods=12, freq="MS").strftime("%b-%Y")
        frame["issue_d"] = np.repeat(months, 100)
        model = train_model(frame, target="defaulted", id_column="ID", date_column="issue_d")
        assert model.summary.split == "time"
        assert "issue_d" not in model.feature_names


class TestFreeTextAndRareCategories:
    def test_rare_categories_are_pooled_and_unseen_ones_join_the_pool(self) -> None:
        rng = np.random.default_rng(3)
        rows = 3000
        grade = rng.choice(list("ABCDEF"), rows, p=[0.25, 0.25, 0.2, 0.15, 0.1, 0.05])
        rate = pd.Series(grade).map(
            {"A": 0.03, "B": 0.06, "C": 0.1, "D": 0.16, "E": 0.25, "F": 0.35}
        )
        rate = rate.to_numpy().copy()
        worst = rng.choice(rows, 24, replace=False)
        grade[worst] = "G"
        rate[worst] = 0.9
        frame = pd.DataFrame(
            {"grade": grade, "x": rng.normal(size=rows), "bad": (rng.random(rows) < rate)}
        )
        model = train_model(frame, target="bad", seed=0)
        assert any("pooled as '(rare)'" in note for note in model.summary.notes)
        assert model.scorecard is not None
        (feature,) = [item for item in model.scorecard.features if item.name == "grade"]
        assert any(RARE_LABEL in group for group in feature.groups)
        probe = pd.DataFrame({"grade": ["A", "F", "G", "Z"], "x": 0.0})
        best, worst_common, rare, unseen = compile_scorer(model).score(probe).probability
        assert rare == pytest.approx(worst_common)
        assert unseen == pytest.approx(rare)
        assert rare > 3 * best

    def test_drift_compares_categories_as_written_not_as_pooled(self) -> None:
        frame = make_credit_frame(2000)
        rng = np.random.default_rng(8)
        common = rng.choice(["north", "south", "east", "west"], len(frame))
        rare = np.asarray([f"county {index % 50}" for index in range(len(frame))])
        frame["county"] = np.where(rng.random(len(frame)) < 0.4, rare, common)
        model = train_model(frame, target="defaulted", id_column="ID", seed=0)
        assert any("'county'" in note and "pooled" in note for note in model.summary.notes)
        report = drift_report(model, frame)
        (county,) = [item for item in report.features if item.name == "county"]
        assert county.psi < 0.02

    def test_a_category_column_with_few_rows_per_value_is_left_out(self) -> None:
        frame = make_credit_frame(1200)
        frame["job"] = [f"title {index % 300}" for index in range(len(frame))]
        prepared = prepare_training_data(frame, target="defaulted")
        reasons = {dropped.name: dropped.reason for dropped in prepared.dropped}
        assert "free text with 300 distinct values (4.0 rows per value)" in reasons["job"]


class TestRowNumbers:
    def test_a_monotone_integer_column_is_skipped_without_id_column(self) -> None:
        frame = make_credit_frame(600).rename(columns={"ID": "rownames"})
        prepared = prepare_training_data(frame, target="defaulted")
        assert "rownames" not in prepared.kinds
        assert any(dropped.name == "rownames" for dropped in prepared.dropped)

    def test_a_shuffled_integer_feature_is_kept(self) -> None:
        frame = make_credit_frame(600)
        frame["score_band"] = np.random.default_rng(1).permutation(len(frame))
        prepared = prepare_training_data(frame, target="defaulted", id_column="ID")
        assert "score_band" in prepared.kinds


class TestLeakage:
    def test_names_of_after_the_outcome_facts_are_warned_about(self) -> None:
        frame = make_credit_frame(600)
        frame["total_rec_prncp"] = np.random.default_rng(2).uniform(size=len(frame))
        prepared = prepare_training_data(frame, target="defaulted", id_column="ID")
        assert any(
            "'total_rec_prncp' sounds like something known only after" in text
            for text in prepared.warnings
        )

    def test_a_feature_that_alone_separates_the_target_is_warned_about(self) -> None:
        frame = make_credit_frame(600)
        frame["status_code"] = frame["defaulted"] * 3 + np.random.default_rng(4).uniform(
            size=len(frame)
        )
        model = train_model(frame, target="defaulted", id_column="ID", seed=0)
        assert any(
            "'status_code' alone separates the target almost perfectly" in text
            for text in model.summary.warnings
        )
        assert not any("'months_late'" in text for text in model.summary.warnings)


class TestMistypedTarget:
    def test_the_closest_column_is_suggested(self) -> None:
        with pytest.raises(TargetColumnMissing, match=r"did you mean 'defaulted'\?"):
            train_model(make_credit_frame(300), target="Defualted")
