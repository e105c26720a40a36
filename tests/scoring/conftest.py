"""Fixtures for scoring tests: synthetic credit data, trained models and the Taiwan data set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bench._data import DatasetUnavailable, load_taiwan, running_in_ci

from recoup.scoring.spec import TrainedModel
from recoup.scoring.training import train_model


def make_credit_frame(rows: int = 3000, *, seed: int = 7) -> pd.DataFrame:
    """Build a small credit table whose default risk depends on a few columns."""
    rng = np.random.default_rng(seed)
    months_late = rng.integers(0, 7, rows).astype(float)
    utilisation = rng.uniform(0, 1.2, rows)
    income = rng.lognormal(10, 0.5, rows)
    income[rng.random(rows) < 0.1] = np.nan
    region = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2, 0.1])
    region_effect = pd.Series(region).map({"north": -0.5, "south": 0.0, "east": 0.4, "west": 0.9})
    noise = rng.normal(size=rows)
    log_odds = (
        -3.4
        + 0.55 * months_late
        + 1.2 * utilisation
        - 0.4 * np.nan_to_num(np.log(income) - 10, nan=0.5)
        + region_effect.to_numpy()
    )
    defaulted = rng.random(rows) < 1 / (1 + np.exp(-log_odds))
    return pd.DataFrame(
        {
            "ID": np.arange(1, rows + 1),
            "months_late": months_late,
            "utilisation": utilisation,
            "income": income,
            "region": region,
            "noise": noise,
            "defaulted": defaulted.astype(int),
        }
    )


@pytest.fixture(scope="session")
def credit_frame() -> pd.DataFrame:
    return make_credit_frame()


@pytest.fixture(scope="session")
def scorecard_model(credit_frame: pd.DataFrame) -> TrainedModel:
    return train_model(credit_frame, target="defaulted", family="scorecard", seed=1)


@pytest.fixture(scope="session")
def gbm_model(credit_frame: pd.DataFrame) -> TrainedModel:
    return train_model(credit_frame, target="defaulted", family="gbm", seed=1)


@pytest.fixture(scope="session")
def taiwan() -> pd.DataFrame:
    """The UCI Taiwan data; skipped only off CI when it can be neither found nor fetched."""
    try:
        return load_taiwan()
    except DatasetUnavailable as error:
        if running_in_ci():
            pytest.fail(f"the Taiwan data set is required under CI: {error}")
        pytest.skip(f"the Taiwan data set is unavailable: {error}")
