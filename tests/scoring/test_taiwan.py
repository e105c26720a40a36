"""Regression floors on the real UCI Taiwan credit-card data (one seed, looser than the bench)."""

from __future__ import annotations

import pandas as pd
import pytest

from recoup.scoring.training import train_model

pytestmark = pytest.mark.slow


class TestTaiwanFloors:
    def test_scorecard_ranks_defaults(self, taiwan: pd.DataFrame) -> None:
        model = train_model(taiwan, target="target", family="scorecard", seed=0)
        assert model.summary.id_column == "ID"
        assert model.summary.n_test == 9000
        assert model.evaluation.auc >= 0.75
        assert model.evaluation.ks >= 0.39
        assert model.scorecard is not None
        assert "PAY_0" in model.feature_names

    def test_gbm_ranks_defaults(self, taiwan: pd.DataFrame) -> None:
        model = train_model(taiwan, target="target", family="gbm", seed=0)
        assert model.evaluation.auc >= 0.77
