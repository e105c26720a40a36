"""Uplift experiments in the simulator, and agents taking the highest uplift first."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from recoup.compliance.gate.rules import compile_gate
from recoup.compliance.rulepack import load_pack
from recoup.scoring.rules import DEFAULT_CONTACT_COSTS
from recoup.scoring.uplift import FEATURES, fit
from recoup.simulation import rules, uplift
from recoup.simulation.engine import Portfolio
from recoup.simulation.params import default_params
from recoup.simulation.service import Setup
from recoup.strategy.rules import compile_strategy

SETUP = Setup(
    portfolio=Portfolio.from_columns(rules.synthetic_portfolio(300, 5)),
    gate=compile_gate(load_pack("CN")),
    start=date(2026, 12, 1),
    timezone="Asia/Shanghai",
    costs=DEFAULT_CONTACT_COSTS,
)


def test_the_experiment_keeps_a_random_control_arm_and_the_model_scores_each_case() -> None:
    portfolio = uplift.resampled(SETUP.portfolio, 1500, seed=3)
    data = uplift.run_experiment(SETUP, portfolio, "call", days=10, seed=3, params=default_params())
    share = data.treated.mean()
    assert 0.4 < share < 0.6
    assert data.features.shape == (1500, len(FEATURES))
    model = fit({"call": data})
    predicted = model.predict(data.features, "call")
    assert predicted.shape == (1500,)
    assert np.all(np.abs(predicted) <= 1)
    assert np.all(model.predict(data.features, "visit") == 0)
    # The arm is the strategy engine's: contacted cases were contacted, the control arm was not.
    assert data.paid[data.treated].mean() > data.paid[~data.treated].mean()


def test_agents_can_take_the_highest_uplift_first() -> None:
    from recoup.simulation import service

    calls = service.NamedStrategy(
        "calls",
        "calls",
        compile_strategy(uplift.experiment_document("call", control_percent=1)),
    )
    seen: list[str] = []

    def scorer(columns: Mapping[str, Any], channel: str) -> npt.NDArray[np.float64]:
        seen.append(channel)
        return np.asarray(columns["age"] < 30, dtype=float)

    result = service.run(SETUP, calls, days=5, seed=2, uplift_scorer=scorer)
    assert seen
    assert set(seen) == {"call"}
    assert result.violations == 0
    assert result.contacts["call"] > 0


def test_a_channel_the_model_has_not_learnt_keeps_the_propensity() -> None:
    from recoup.simulation import service

    calls = service.NamedStrategy(
        "calls",
        "calls",
        compile_strategy(uplift.experiment_document("call", control_percent=1)),
    )

    def unknown(columns: Mapping[str, Any], channel: str) -> npt.NDArray[np.float64]:
        return np.full(len(columns["balance"]), np.nan)

    by_propensity = service.run(SETUP, calls, days=5, seed=2)
    fallen_back = service.run(SETUP, calls, days=5, seed=2, uplift_scorer=unknown)
    assert fallen_back.summary() | {"seconds": 0} == by_propensity.summary() | {"seconds": 0}
