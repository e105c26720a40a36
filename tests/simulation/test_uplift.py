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
from recoup.simulation import rules, service, uplift
from recoup.simulation.engine import Portfolio, Result
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
# Calls to everyone but a 1 % control arm: what the agents' priority and suppression act on.
CALLS = service.NamedStrategy(
    "calls", "calls", compile_strategy(uplift.experiment_document("call", control_percent=1))
)


def run_calls(**options: Any) -> Result:
    """Five days of ``CALLS`` on ``SETUP`` (seed 2), with the run's other options."""
    return service.run(SETUP, CALLS, days=5, seed=2, **options)


def young(columns: Mapping[str, Any], channel: str) -> npt.NDArray[np.float64]:
    """An uplift estimate of 1 for the debtors under 30, 0 for the others."""
    return np.asarray(columns["age"] < 30, dtype=float)


def unknown(columns: Mapping[str, Any], channel: str) -> npt.NDArray[np.float64]:
    """No estimate for anyone (a channel the model has not learnt)."""
    return np.full(len(columns["balance"]), np.nan)


def nobody(columns: Mapping[str, Any], channel: str) -> npt.NDArray[np.float64]:
    """An uplift estimate of 0 for everyone."""
    return np.zeros(len(columns["balance"]))


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
    seen: list[str] = []

    def scorer(columns: Mapping[str, Any], channel: str) -> npt.NDArray[np.float64]:
        seen.append(channel)
        return young(columns, channel)

    result = run_calls(uplift_scorer=scorer)
    assert seen
    assert set(seen) == {"call"}
    assert result.violations == 0
    assert result.contacts["call"] > 0


def test_a_channel_the_model_has_not_learnt_keeps_the_propensity() -> None:
    by_propensity = run_calls()
    fallen_back = run_calls(uplift_scorer=unknown)
    assert fallen_back.priority == "uplift"
    same = {"seconds": 0, "priority": None}
    assert fallen_back.summary() | same == by_propensity.summary() | same


def test_calls_of_low_estimated_uplift_can_be_skipped_or_replaced_by_an_sms() -> None:
    everyone = run_calls()
    some = run_calls(
        uplift_scorer=young,
        priority="expected",
        suppress_below={"call": 0.5},
    )
    # The agents' capacity is full either way: the skipped calls' slots go to other cases.
    assert some.contacts["call"] == everyone.contacts["call"] > 0
    assert some.suppressed > 0
    assert everyone.suppressed == 0
    none = run_calls(
        uplift_scorer=nobody,
        priority="expected",
        suppress_below={"call": 0.0},
    )
    assert none.contacts["call"] == 0
    assert none.total_contacts == 0
    reminded = run_calls(
        uplift_scorer=nobody,
        priority="expected",
        suppress_below={"call": 0.0},
        suppress_mode="sms",
    )
    assert reminded.contacts["call"] == 0
    assert reminded.contacts["sms"] > 0
    assert reminded.violations == 0


def test_a_channel_the_model_has_not_learnt_is_never_suppressed() -> None:
    plain = run_calls()
    kept = run_calls(
        uplift_scorer=unknown,
        priority="expected",
        suppress_below={"call": 1.0},
    )
    assert kept.summary() | {"seconds": 0} == plain.summary() | {"seconds": 0}


def test_the_cli_trains_and_registers_an_uplift_model(live_database: str) -> None:
    import json

    from sqlalchemy import select
    from typer.testing import CliRunner

    from recoup.cases import service as cases
    from recoup.cli import app
    from recoup.db import unit_of_work
    from recoup.kit.clock import utcnow
    from recoup.models.scoring import ModelVersion
    from tests.cycle.helpers import portfolio

    with unit_of_work() as session:
        institution = portfolio(session, code="UPL", debtors=8)
        cases.sync_cases(session, institution_id=institution.id, now=utcnow())
    runner = CliRunner()
    answer = runner.invoke(
        app,
        [
            *("simulate", "uplift-train", "--institution", "UPL"),
            *("--cases", "4000", "--days", "10", "--json"),
        ],
    )
    assert answer.exit_code == 0, answer.output
    data = json.loads(answer.stdout)
    assert data["family"] == "uplift"
    assert set(data["channels"]) == {"call", "sms", "ai_call"}
    for figures in data["channels"].values():
        assert {"coefficient", "model", "random", "perfect"} <= set(figures["qini"])
        assert figures["treated"] + figures["control"] == 2000
    with unit_of_work() as session:
        stored = session.execute(
            select(ModelVersion).where(ModelVersion.version == data["model_version"])
        ).scalar_one()
        assert stored.family == "uplift"
        assert stored.state == "candidate"
    refused = runner.invoke(
        app, ["simulate", "uplift-train", "--institution", "UPL", "--source", "experiments"]
    )
    assert refused.exit_code != 0
    assert "UPL has no experiment with a control arm" in refused.output
