"""Probabilities people can trust: calibrated on the latest window, reported, drift like with like."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recoup.scoring.metrics import evaluate
from recoup.scoring.monitoring import DriftStatus, drift_report
from recoup.scoring.scorer import compile_scorer
from recoup.scoring.spec import Family, TrainedModel
from recoup.scoring.training import train_model


def shifting_portfolio(rows: int = 6000, *, seed: int = 11) -> pd.DataFrame:
    """Monthly snapshots where paying grows rarer and accounts grow later, as on the demo."""
    rng = np.random.default_rng(seed)
    month = np.sort(rng.integers(0, 6, rows))
    days_late = rng.gamma(2.0, 20.0 + 8.0 * month)
    balance = rng.lognormal(8, 0.6, rows)
    # The event rate falls over time beyond what the features explain.
    log_odds = -0.4 - 0.35 * month - 0.025 * days_late + 0.2 * (np.log(balance) - 8)
    pays = (rng.random(rows) < 1 / (1 + np.exp(-log_odds))).astype(int)
    snapshot = (pd.Timestamp("2026-01-31") + pd.to_timedelta(30 * month, unit="D")).strftime(
        "%Y-%m-%d"
    )
    return pd.DataFrame(
        {
            "account_id": np.arange(rows),
            "days_past_due": days_late.round(),
            "balance": balance.round(2),
            "snapshot": snapshot,
            "pays": pays,
        }
    )


def _train(family: Family) -> TrainedModel:
    return train_model(
        shifting_portfolio(),
        target="pays",
        positive="1",
        event_is_favourable=True,
        id_column="account_id",
        date_column="snapshot",
        family=family,
        seed=0,
    )


@pytest.fixture(scope="module", params=["scorecard", "gbm"])
def model(request: pytest.FixtureRequest) -> TrainedModel:
    return _train(request.param)


class TestCalibration:
    def test_held_out_probabilities_match_the_latest_event_rate(self, model: TrainedModel) -> None:
        evaluation = model.evaluation
        predicted = sum(row.mean_probability * row.count for row in evaluation.deciles)
        assert predicted / evaluation.count == pytest.approx(evaluation.event_rate, rel=0.1)
        assert evaluation.ece is not None
        assert evaluation.ece <= 0.02

    def test_the_served_model_is_calibrated_not_only_the_report(self, model: TrainedModel) -> None:
        frame = shifting_portfolio()
        latest = frame[frame["snapshot"] >= frame["snapshot"].sort_values().iloc[-1800]]
        served = compile_scorer(model).score(latest).probability
        assert served.mean() == pytest.approx(latest["pays"].mean(), rel=0.15)
        assert model.summary.calibration == "platt"

    def test_points_and_probability_still_agree(self, model: TrainedModel) -> None:
        batch = compile_scorer(model).score(shifting_portfolio().head(500))
        order = np.argsort(batch.points)
        assert np.all(np.diff(batch.probability[order]) >= -1e-12)

    def test_the_training_report_says_where_it_was_calibrated(self, model: TrainedModel) -> None:
        (note,) = [text for text in model.summary.notes if text.startswith("probabilities")]
        assert "calibrated (Platt) on the" in note
        assert "held-out rows from 2026-" in note


class TestExpectedCalibrationError:
    def test_a_model_predicting_twice_the_rate_has_a_large_error(self) -> None:
        rng = np.random.default_rng(0)
        probability = rng.uniform(0.02, 0.2, 20_000)
        labels = (rng.random(20_000) < probability).astype(np.int8)
        honest = evaluate(labels, probability)
        doubled = evaluate(labels, 2 * probability)
        assert honest.ece is not None
        assert doubled.ece is not None
        assert honest.ece < 0.01
        assert doubled.ece == pytest.approx(probability.mean(), rel=0.1)


class TestFirstScoringRunDrift:
    def test_the_latest_window_scored_again_is_stable(self, model: TrainedModel) -> None:
        frame = shifting_portfolio()
        latest = frame[frame["snapshot"] >= "2026-05-01"]
        report = drift_report(model, latest)
        assert report.score.psi < 0.1
        assert report.status == DriftStatus.STABLE
