"""Uplift: the extra chance of payment a contact on each channel buys, learnt from experiments.

A T-learner (two models): per channel, one LightGBM classifier learns P(pay | contacted) on the
treated cases of a randomised experiment and one P(pay | not contacted) on its control arm; the
uplift of a case is the difference. The experiment is run by the simulator through the strategy
engine's own experiment arms (``strategy.rules.assign_arms``: a stable hash of the case and the
experiment), so the control arm is random and permanent, as a real champion/challenger test's
would be; the same code trains on real experiment data when the features and outcomes come
from the contact log instead.

Quality on held-out cases is the Qini curve: cases ranked by predicted uplift, and for the top
*k* the treated payers minus the control payers scaled to the treated count. The *Qini
coefficient* is the area between that curve and the random ranking's straight line, divided by
the total incremental payers (0: no better than random); *AUUC* is the mean of the uplift curve
(incremental payers in the top *k*, per case of the whole set), against ``auuc_random``, half
the overall uplift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from recoup.simulation import rules
from recoup.simulation.engine import Portfolio, RunSettings, Simulation
from recoup.simulation.params import Params, default_params
from recoup.simulation.service import Setup
from recoup.strategy.rules import assign_arms, compile_strategy

FEATURES = ("days_past_due", "log_balance", "business", "age", "propensity")
UPLIFT_CHANNELS = ("call", "sms", "ai_call")
CONTROL = "control"


def experiment_document(channel: str, *, control_percent: float = 50.0) -> str:
    """A strategy that contacts everyone on ``channel`` twice, but for a random control arm."""
    return f"""
name: uplift experiment ({channel})
segments:
  - code: everyone
    name: Everyone
    steps:
      - {{code: first, day: 0, channel: {channel}}}
      - {{code: second, day: 7, channel: {channel}}}
    experiment:
      code: uplift_{channel}
      control:
        code: {CONTROL}
        percent: {control_percent}
        steps:
          - {{code: later, day: 3650, channel: sms}}
"""


def features_of(columns: Mapping[str, Any]) -> npt.NDArray[np.float64]:
    """The model's inputs from the facts a strategy sees (never a latent trait)."""
    business = np.asarray(columns["customer_type"] == "business", dtype=np.float64)
    return np.column_stack(
        [
            np.asarray(columns["days_past_due"], dtype=np.float64),
            np.log1p(np.maximum(np.asarray(columns["balance"], dtype=np.float64), 0.0)),
            business,
            np.asarray(columns["age"], dtype=np.float64),
            np.asarray(columns["propensity"], dtype=np.float64),
        ]
    )


@dataclass(frozen=True, slots=True)
class ExperimentData:
    features: npt.NDArray[np.float64]
    treated: npt.NDArray[np.bool_]
    paid: npt.NDArray[np.bool_]


def resampled(portfolio: Portfolio, size: int, seed: int) -> Portfolio:
    """A portfolio of ``size`` cases drawn from another (new ids, so arms are drawn afresh)."""
    rng = np.random.default_rng([seed, 99])
    rows = rng.integers(0, portfolio.size, size=size)
    ids = np.arange(1, size + 1, dtype=np.int64) + seed * 10_000_000
    return Portfolio(
        case_id=ids,
        account_id=ids,
        debtor_id=ids,
        days_past_due=portfolio.days_past_due[rows],
        balance=portfolio.balance[rows],
        customer_type=portfolio.customer_type[rows],
        age=portfolio.age[rows],
        product=portfolio.product[rows],
        region=portfolio.region[rows],
    )


def run_experiment(
    setup: Setup, portfolio: Portfolio, channel: str, *, days: int, seed: int, params: Params
) -> ExperimentData:
    """Contact the treated arm on ``channel``; who paid anything within ``days``."""
    compiled = compile_strategy(experiment_document(channel))
    settings = RunSettings(
        days=days,
        seed=seed,
        start=setup.start,
        timezone=setup.timezone,
        costs=setup.costs,
        # Agents call whoever the experiment asks: the test is not capacity-bound.
        params={**params, "calls_per_thousand": 1000.0, "cost_per_case_day": 1e9},
    )
    simulation = Simulation(
        portfolio=portfolio, compiled=compiled, gate=setup.gate, settings=settings, name="uplift"
    )
    simulation.score()
    start_facts = simulation.state.facts(0)
    features = features_of(start_facts)
    simulation.run()
    experiment = compiled.segments[0].experiment
    assert experiment is not None
    arms = assign_arms(portfolio.account_id, experiment)
    paid = simulation.state.balance < portfolio.balance - 0.5
    return ExperimentData(features=features, treated=np.asarray(arms != CONTROL), paid=paid)


class UpliftModel:
    """Per channel, the two models of a T-learner."""

    def __init__(self, models: Mapping[str, tuple[Any, Any]]) -> None:
        self.models = dict(models)

    def predict(self, features: npt.NDArray[np.float64], channel: str) -> npt.NDArray[np.float64]:
        pair = self.models.get(channel)
        if pair is None:
            return np.zeros(len(features))
        treated, control = pair
        return np.asarray(
            treated.predict_proba(features)[:, 1] - control.predict_proba(features)[:, 1],
            dtype=np.float64,
        )

    def score(self, columns: Mapping[str, Any], channel: str) -> npt.NDArray[np.float64]:
        """Uplift of each case from the facts columns (the engine's ``uplift_scorer``)."""
        return self.predict(features_of(columns), channel)


def _classifier(seed: int) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=100,
        learning_rate=0.05,
        num_leaves=7,
        min_child_samples=200,
        subsample=0.8,
        subsample_freq=1,
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )


def fit(data: Mapping[str, ExperimentData], *, seed: int = 0) -> UpliftModel:
    """Train a T-learner per channel."""
    models = {}
    for channel, each in data.items():
        treated = _classifier(seed).fit(each.features[each.treated], each.paid[each.treated])
        control = _classifier(seed).fit(each.features[~each.treated], each.paid[~each.treated])
        models[channel] = (treated, control)
    return UpliftModel(models)


def qini(
    predicted: npt.NDArray[np.float64], treated: npt.NDArray[np.bool_], paid: npt.NDArray[np.bool_]
) -> dict[str, float]:
    """Qini coefficient and AUUC of a ranking by predicted uplift (see the module's text)."""
    order = np.argsort(-predicted, kind="stable")
    t = treated[order].astype(np.float64)
    y = paid[order].astype(np.float64)
    n_t = np.cumsum(t)
    n_c = np.cumsum(1 - t)
    r_t = np.cumsum(y * t)
    r_c = np.cumsum(y * (1 - t))
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = np.where(n_c > 0, r_t - r_c * n_t / np.maximum(n_c, 1), r_t)
        rate = np.where(
            (n_t > 0) & (n_c > 0), r_t / np.maximum(n_t, 1) - r_c / np.maximum(n_c, 1), 0.0
        )
    size = len(order)
    k = np.arange(1, size + 1)
    total = float(curve[-1])
    random_line = total * k / size
    area = float(np.mean(curve - random_line))
    uplift_curve = rate * k / size
    overall = float(rate[-1])
    return {
        "qini": area / abs(total) if total else 0.0,
        "auuc": float(np.mean(uplift_curve)),
        "auuc_random": overall / 2,
        "incremental": total,
    }


def train(
    setup: Setup, *, days: int = 30, seed: int = 7, size: int = 20_000, params: Params | None = None
) -> tuple[UpliftModel, dict[str, ExperimentData]]:
    """Run the experiments on a resampled portfolio and fit the models (and keep the data)."""
    params = params or default_params()
    portfolio = resampled(setup.portfolio, size, seed)
    data = {
        channel: run_experiment(setup, portfolio, channel, days=days, seed=seed, params=params)
        for channel in UPLIFT_CHANNELS
    }
    return fit(data, seed=seed), data


def evaluate(
    setup: Setup, *, days: int = 30, seed: int = 7, size: int = 20_000
) -> dict[str, dict[str, float]]:
    """Train on one simulated experiment, measure on another (other debtors, other seed)."""
    model, _ = train(setup, days=days, seed=seed, size=size)
    params = default_params()
    held_out = resampled(setup.portfolio, size // 2, seed + 1)
    figures: dict[str, dict[str, float]] = {}
    for channel in UPLIFT_CHANNELS:
        data = run_experiment(setup, held_out, channel, days=days, seed=seed + 1, params=params)
        scores = qini(model.predict(data.features, channel), data.treated, data.paid)
        figures[channel] = {
            **scores,
            "treated": float(data.treated.sum()),
            "control": float((~data.treated).sum()),
        }
    return figures


__all__ = ["UPLIFT_CHANNELS", "UpliftModel", "evaluate", "fit", "qini", "rules", "train"]
