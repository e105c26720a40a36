"""Uplift experiments in the simulator: a random control arm per channel, run by the engine.

The experiment is a strategy that contacts everyone on one channel twice (day 0 and day 7) but
for a random, permanent control arm drawn by the strategy engine's own experiment arms
(``strategy.rules.assign_arms``: a stable hash of the case and the experiment), as a real
champion/challenger test's would be. Its features are read at day 0 (the facts a strategy sees)
and its outcome is whether the case paid anything within ``days``. The learners and the Qini /
AUUC measures are ``scoring.uplift``'s, the same code that trains on real experiment data.

Why the model ranks only a little better than chance (measured in docs/simulation.md): in the
simulator who a call moves depends mostly on hidden traits (ability and willingness to pay,
whether the phone works); what a strategy sees (days past due, balance, age, customer type)
explains a small part of it, and the outcome (paid or not) is a coin toss on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recoup.scoring.uplift import (
    CHANNELS,
    ExperimentData,
    UpliftModel,
    features_of,
    fingerprint,
    fit,
    random_spread,
    uplift_metrics,
)
from recoup.simulation.engine import Portfolio, RunSettings, Simulation
from recoup.simulation.params import Params, default_params
from recoup.simulation.service import Setup
from recoup.strategy.rules import assign_arms, compile_strategy

UPLIFT_CHANNELS = CHANNELS
CONTROL = "control"
TRAIN_CASES = 60_000
HELD_OUT_CASES = 40_000


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
        timezones=None if portfolio.timezones is None else portfolio.timezones[rows],
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
    features = features_of(simulation.state.facts(0))
    simulation.run()
    experiment = compiled.segments[0].experiment
    assert experiment is not None
    arms = assign_arms(portfolio.account_id, experiment)
    paid = simulation.state.balance < portfolio.balance - 0.5
    return ExperimentData(features=features, treated=np.asarray(arms != CONTROL), paid=paid)


def experiments(
    setup: Setup,
    *,
    size: int,
    days: int,
    seed: int,
    params: Params | None = None,
    channels: Sequence[str] = UPLIFT_CHANNELS,
) -> dict[str, ExperimentData]:
    """One simulated experiment per channel on ``size`` cases resampled from the portfolio."""
    params = params or default_params()
    portfolio = resampled(setup.portfolio, size, seed)
    return {
        channel: run_experiment(setup, portfolio, channel, days=days, seed=seed, params=params)
        for channel in channels
    }


def train(
    setup: Setup,
    *,
    days: int = 30,
    seed: int = 7,
    size: int = TRAIN_CASES,
    learner: str = "x",
    params: Params | None = None,
) -> tuple[UpliftModel, dict[str, ExperimentData]]:
    """Run the experiments on a resampled portfolio and fit the models (and keep the data)."""
    data = experiments(setup, size=size, days=days, seed=seed, params=params)
    return fit(data, learner=learner, seed=seed), data


def evaluate(
    setup: Setup,
    *,
    days: int = 30,
    seed: int = 7,
    size: int = TRAIN_CASES,
    held_out: int = HELD_OUT_CASES,
    learners: tuple[str, ...] = ("t", "x"),
) -> dict[str, dict[str, Any]]:
    """Train on one simulated experiment, measure on another (other debtors, other seed).

    Per channel and learner: Qini and AUUC (``scoring.uplift.uplift_metrics``), the random
    ranking's Qini spread (what noise alone gives on a sample this size), and, as a ceiling the
    data allow, a learner trained on the held-out experiment itself (in-sample).
    """
    data = experiments(setup, size=size, days=days, seed=seed)
    test = experiments(setup, size=held_out, days=days, seed=seed + 1)
    figures: dict[str, dict[str, Any]] = {}
    for channel in UPLIFT_CHANNELS:
        each = test[channel]
        mean, sd = random_spread(each.treated, each.paid, draws=30, seed=seed)
        row: dict[str, Any] = {"random_qini_mean": mean, "random_qini_sd": sd}
        for learner in learners:
            model = fit({channel: data[channel]}, learner=learner, seed=seed)
            row[learner] = uplift_metrics(
                model.predict(each.features, channel), each.treated, each.paid
            ).as_dict()
        figures[channel] = row
    return figures


@dataclass(frozen=True, slots=True)
class TrainedUplift:
    """A model trained on simulated experiments and how it ranks held-out simulated cases."""

    model: UpliftModel
    metrics: dict[str, Any]
    data_fingerprint: str
    source: str


def train_and_measure(
    setup: Setup,
    *,
    institution: str,
    days: int = 30,
    size: int = TRAIN_CASES,
    seed: int = 7,
    learner: str = "x",
    channels: Sequence[str] = UPLIFT_CHANNELS,
) -> TrainedUplift:
    """Train on simulated experiments of ``size`` cases and measure on half as many others
    (on ``channels``: a channel left out is not learnt, and its priority stays on propensity)."""
    data = experiments(setup, size=size, days=days, seed=seed, channels=channels)
    model = fit(data, learner=learner, seed=seed)
    held_out = experiments(
        setup, size=max(size // 2, 1), days=days, seed=seed + 1, channels=channels
    )
    by_channel = {
        channel: uplift_metrics(
            model.predict(each.features, channel), each.treated, each.paid
        ).as_dict()
        for channel, each in held_out.items()
    }
    metrics = {
        "learner": learner,
        "days": days,
        "n_train": size,
        "n_test": max(size // 2, 1),
        "seed": seed,
        "channels": by_channel,
    }
    source = f"simulated experiments on {institution} ({size:,} cases, {days} days, seed {seed})"
    return TrainedUplift(
        model=model, metrics=metrics, data_fingerprint=fingerprint(data), source=source
    )


__all__ = [
    "UPLIFT_CHANNELS",
    "evaluate",
    "experiments",
    "resampled",
    "run_experiment",
    "train",
    "train_and_measure",
]
