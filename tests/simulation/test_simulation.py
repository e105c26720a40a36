"""The behaviour model, the day loop and the offline evaluation."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from typer.testing import CliRunner

from recoup.allocation.rules import AgentSlot, CaseWork, greedy
from recoup.cases import service as cases
from recoup.compliance.gate.rules import compile_gate
from recoup.compliance.rulepack import load_pack
from recoup.db import unit_of_work
from recoup.kit.clock import utcnow
from recoup.scoring.rules import DEFAULT_CONTACT_COSTS
from recoup.simulation import engine, rules
from recoup.simulation.engine import Portfolio, Recorder, Result, RunSettings, run_simulation
from recoup.simulation.params import (
    BEHAVIOURAL,
    PARAMETERS,
    default_params,
    perturbed,
    with_overrides,
)
from recoup.simulation.service import Spread, baseline_text, history_columns, parse_names
from recoup.strategy.presets import preset_text
from recoup.strategy.rules import compile_strategy
from tests.cycle.helpers import portfolio

GATE = compile_gate(load_pack("CN"))
PORTFOLIO = Portfolio.from_columns(rules.synthetic_portfolio(400, 3))
ONLY_SMS = """
name: one reminder
segments:
  - code: everyone
    name: Everyone
    steps:
      - {code: reminder, day: 0, channel: sms}
"""
CALLS = """
name: calls
segments:
  - code: everyone
    name: Everyone
    steps:
      - {code: reminder, day: 0, channel: sms}
      - {code: call_1, day: 1, channel: call}
      - {code: call_2, day: 6, channel: call}
      - {code: call_3, day: 12, channel: call}
      - {code: call_4, day: 20, channel: call}
"""
DAILY_SMS = "\n".join(
    [
        "name: every day",
        "segments:",
        "  - code: everyone",
        "    name: Everyone",
        "    steps:",
        *[f"      - {{code: sms_{day}, day: {day}, channel: sms}}" for day in range(30)],
    ]
)


def simulate(
    document: str,
    *,
    seed: int = 1,
    days: int = 30,
    recorder: Recorder | None = None,
    portfolio: Portfolio = PORTFOLIO,
    **overrides: float,
) -> Result:
    params = with_overrides(overrides)
    settings = RunSettings(
        days=days,
        seed=seed,
        start=date(2026, 12, 1),
        timezone="Asia/Shanghai",
        costs=DEFAULT_CONTACT_COSTS,
        params=params,
        recorder=recorder,
    )
    return run_simulation(
        portfolio=portfolio,
        compiled=compile_strategy(document),
        gate=GATE,
        settings=settings,
        name="test",
    )


class TestParameters:
    def test_every_parameter_has_a_meaning_and_a_source(self) -> None:
        for parameter in PARAMETERS:
            assert len(parameter.meaning) > 10, parameter.name
            assert len(parameter.source) > 4, parameter.name
        assert len({p.name for p in PARAMETERS}) == len(PARAMETERS)

    def test_perturbation_scales_only_behaviour_and_keeps_probabilities(self) -> None:
        params = default_params()
        moved = perturbed(params, np.random.default_rng(5))
        assert moved["calls_per_thousand"] == params["calls_per_thousand"]
        for name in BEHAVIOURAL:
            if params[name]:
                assert 0.69 <= moved[name] / params[name] <= 1.31 or moved[name] == 1.0
        assert all(0 <= moved[p.name] <= 1 for p in PARAMETERS if p.probability)

    def test_an_unknown_override_is_named(self) -> None:
        with pytest.raises(KeyError, match="no_such"):
            with_overrides({"no_such": 1.0})


class TestBehaviour:
    def test_over_contact_raises_complaints(self) -> None:
        params = default_params()
        dnd = np.zeros(3, dtype=bool)
        chance = rules.complaint_chance(params, contacts_7d=np.array([1.0, 5.0, 9.0]), dnd=dnd)
        assert chance[0] < chance[1] < chance[2]
        calm = simulate(ONLY_SMS, complaint_base=0.01)
        pushed = simulate(DAILY_SMS, complaint_base=0.01)
        assert pushed.complaints > calm.complaints

    def test_talking_to_persuadables_raises_payment(self) -> None:
        params = default_params()
        ability = np.array([0.9, 0.9])
        unwilling, willing = rules.logit(np.array([0.1, 0.9]))
        chances = rules.promise_chance(
            params,
            strength=np.ones(2),
            ability=ability,
            willingness_logit=np.array([unwilling, willing]),
        )
        assert chances[0] > chances[1]
        quiet = [simulate(ONLY_SMS, seed=seed).recovered for seed in (1, 2)]
        called = [simulate(CALLS, seed=seed).recovered for seed in (1, 2)]
        assert sum(called) > sum(quiet)

    def test_the_score_never_reads_latent_traits(self) -> None:
        columns = rules.synthetic_portfolio(50, 1)
        score = rules.observed_propensity(
            days_past_due=columns["days_past_due"],
            balance=columns["balance"],
            business=columns["customer_type"] == "business",
            age=columns["age"],
            paid_before=np.zeros(50, dtype=bool),
            broken_promises=np.zeros(50),
            failed_attempts=np.zeros(50),
        )
        assert ((score > 0) & (score < 1)).all()


class TestEngine:
    def test_a_seed_gives_the_same_run_and_another_seed_another(self) -> None:
        first = simulate(preset_text("consumer_finance"), seed=7).summary()
        again = simulate(preset_text("consumer_finance"), seed=7).summary()
        other = simulate(preset_text("consumer_finance"), seed=8).summary()
        first.pop("seconds"), again.pop("seconds"), other.pop("seconds")
        assert first == again
        assert first["recovered_amount"] != other["recovered_amount"]

    @pytest.mark.parametrize("name", ["default", "baseline"])
    def test_no_contact_is_made_that_the_gate_forbids(self, name: str) -> None:
        document = preset_text("consumer_finance") if name == "default" else baseline_text()
        result = simulate(document, days=40)
        assert result.violations == 0
        assert result.total_contacts > 0
        assert result.recovered > 0
        assert result.daily_recovered == sorted(result.daily_recovered)

    def test_agents_never_exceed_their_capacity(self) -> None:
        result = simulate(CALLS, days=20, calls_per_thousand=10)
        # 400 cases × 10 per 1,000 = 4 calls a day.
        assert result.contacts["call"] <= 4 * 20
        assert result.over_capacity > 0


class TestDebtorsZones:
    """A debtor in another zone is contacted in their own day, as the daily cycle plans it."""

    def run(self, zones: list[str]) -> tuple[Result, dict[str, npt.NDArray[Any]]]:
        columns = rules.synthetic_portfolio(400, 3)
        columns["timezones"] = zones
        recorder = Recorder()
        result = simulate(
            CALLS, days=20, recorder=recorder, portfolio=Portfolio.from_columns(columns)
        )
        return result, recorder.table("contacts")

    def test_a_debtor_west_of_the_lender_is_contacted_in_their_own_morning(self) -> None:
        # Xinjiang time is two hours behind Beijing time: 09:30 in Shanghai is 07:30 there,
        # inside the CN pack's quiet hours (08:00-22:00 allowed).
        zones = ["Asia/Urumqi" if row % 2 else "Asia/Shanghai" for row in range(400)]
        result, contacts = self.run(zones)
        assert result.violations == 0
        west = contacts["row"] % 2 == 1
        worked = contacts["channel"] == rules.CALL
        assert (west & worked).sum() > 20
        # The hours are the lender's clock: two hours on, Urumqi's 09:30 is Shanghai's 11:30.
        assert contacts["hour"][west & worked].min() >= 11.5
        assert contacts["hour"][west & ~worked].min() >= 12.0
        # Debtors in the lender's zone keep the agents' order from 09:30.
        assert contacts["hour"][~west & worked].min() == 9.5
        assert "CN-HOURS" not in "".join(result.blocked_by_rule)

    def test_the_lenders_zone_for_everyone_changes_nothing(self) -> None:
        plain = simulate(CALLS, days=20).summary()
        zoned, _ = self.run(["Asia/Shanghai"] * 400)
        assert zoned.summary() | {"seconds": 0} == plain | {"seconds": 0}


class TestAllocation:
    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_alike_agents_take_what_greedy_gives_them(self, seed: int) -> None:
        generator = np.random.default_rng(seed)
        # Whole and fractional values with many ties, more tasks than room and less.
        values = np.round(generator.exponential(50.0, size=300), 1) * (generator.random(300) > 0.2)
        for capacities in ([40, 40, 25], [200, 200], [7]):
            agents = [AgentSlot(id=n, capacity=c) for n, c in enumerate(capacities)]
            allocation = greedy(
                [CaseWork(id=n, value=int(value)) for n, value in enumerate(values.tolist())],
                agents,
            )
            taken = engine.alike_agents_take(values, agents)
            assert sorted(taken.tolist()) == sorted(allocation.assignments)


class TestRecorder:
    @pytest.mark.parametrize("preset", ["consumer_finance", "commercial_bank"])
    def test_recording_changes_no_figure(self, preset: str) -> None:
        plain = simulate(preset_text(preset), days=40).summary()
        recorded = simulate(preset_text(preset), days=40, recorder=Recorder()).summary()
        plain.pop("seconds"), recorded.pop("seconds")
        assert recorded == plain

    def test_the_history_adds_up_to_the_run(self) -> None:
        recorder = Recorder()
        result = simulate(preset_text("consumer_finance"), days=40, recorder=recorder)
        contacts = recorder.table("contacts")
        assert len(contacts["row"]) == result.total_contacts
        channels = np.array(rules.CHANNELS)[contacts["channel"]]
        assert dict(zip(*np.unique(channels, return_counts=True), strict=True)) == {
            name: count for name, count in result.contacts.items() if count
        }
        spoken = np.isin(contacts["channel"], [rules.CALL, rules.AI_CALL, rules.VISIT])
        right_party = contacts["outcome"] == engine.OUTCOME_RIGHT_PARTY
        assert int((spoken & right_party).sum()) == result.right_party
        assert int(contacts["complaint"].sum()) == result.complaints
        assert int(contacts["dispute"].sum()) == result.disputes
        assert int(contacts["plan"].sum()) == result.plans
        payments = recorder.table("payments")
        assert payments["amount"].sum() == pytest.approx(result.recovered)
        # Paid in full: what each cured case was paid is its whole opening balance.
        events = recorder.table("events")
        cured = events["row"][events["event"] == engine.EVENT_CURED]
        assert len(cured) == result.cured
        paid = np.bincount(payments["row"], weights=payments["amount"], minlength=PORTFOLIO.size)
        assert paid[cured] == pytest.approx(PORTFOLIO.balance[cured])
        promises = recorder.table("promises")
        assert len(promises["row"]) == result.promises
        outcomes = recorder.table("promise_results")
        assert int(outcomes["kept"].sum()) == result.promises_kept
        assert int((~outcomes["kept"]).sum()) == result.promises_broken
        assert (promises["due"] > promises["day"]).all()

    def test_cases_fall_delinquent_on_their_day(self) -> None:
        columns = rules.synthetic_portfolio(400, 3)
        entering = np.where(np.arange(400) % 3 == 0, 0, (np.arange(400) * 7) % 19 + 1)
        columns["enters_on"] = entering
        columns["days_past_due"] = np.where(entering > 0, 1.0, columns["days_past_due"])
        later = Portfolio.from_columns(columns)
        recorder = Recorder()
        simulate(preset_text("consumer_finance"), days=25, recorder=recorder, portfolio=later)
        events = recorder.table("events")
        entered = events["event"] == engine.EVENT_ENTERED
        assert sorted(events["row"][entered].tolist()) == np.flatnonzero(entering > 0).tolist()
        assert (events["day"][entered] == entering[events["row"][entered]]).all()
        for kind in ("contacts", "payments"):
            table = recorder.table(kind)
            assert len(table["row"]) > 0
            assert (table["day"] >= entering[table["row"]]).all()
        assert (recorder.table("contacts")["day"] < 19).any()


class TestHistory:
    """A run starts from what the product holds of each case, not from a blank case."""

    def test_open_promises_and_plans_hold_cases_and_fall_due_in_the_run(self) -> None:
        columns = rules.synthetic_portfolio(400, 3)
        never = engine.NEVER
        columns.update(
            paid_before=np.arange(400) % 2 == 0,
            broken_promises=np.where(np.arange(400) == 2, 2.0, 0.0),
            failed_attempts=np.zeros(400),
            promise_due=np.where(np.arange(400) == 0, 3, never),
            promise_amount=np.where(np.arange(400) == 0, 100.0, 0.0),
            plan_next=np.where(np.arange(400) == 1, 5, never),
            plan_amount=np.where(np.arange(400) == 1, 50.0, 0.0),
            plan_left=np.where(np.arange(400) == 1, 2, 0),
        )
        carried = Portfolio.from_columns(columns)
        assert carried.history is not None
        recorder = Recorder()
        simulate(CALLS, days=10, recorder=recorder, portfolio=carried, plan_keep=1.0)
        results = recorder.table("promise_results")
        assert results["day"][results["row"] == 0].tolist() == [3]
        plans = recorder.table("plan_results")
        assert plans["day"][plans["row"] == 1].tolist() == [5]
        payments = recorder.table("payments")
        assert payments["amount"][(payments["row"] == 1) & (payments["day"] == 5)].sum() == 50.0
        contacts = recorder.table("contacts")
        assert (contacts["day"][contacts["row"] == 0] > 3).all()
        assert (contacts["day"][contacts["row"] == 1] > 5).all()
        fresh = Recorder()
        simulate(CALLS, days=10, recorder=fresh)
        assert (fresh.table("contacts")["row"] == 0).any()
        assert not (fresh.table("promise_results")["row"] == 0).any()

    def test_accounts_records_add_up_to_their_case(self) -> None:
        start = date(2026, 12, 1)
        columns = history_columns(
            [10, 11, 12, 13],
            [7, 7, 9, 5],
            np.array([30.0, 5.0, 60.0, 10.0]),
            np.array([5, 7, 9]),
            {
                # Account 10 paid 20 days ago (30 past due: since it fell due), 12 before.
                "paid": {10: date(2026, 11, 11), 12: date(2026, 9, 1)},
                "broken": {10: 1, 11: 2},
                "promise": {11: (date(2026, 12, 4), 300), 10: (date(2026, 11, 30), 200)},
                "plan": {12: (date(2026, 12, 10), 99.5, 3)},
            },
            {9: 4},
            as_of=start,
        )
        assert columns["paid_before"].tolist() == [False, True, False]
        assert columns["broken_promises"].tolist() == [0.0, 3.0, 0.0]
        assert columns["failed_attempts"].tolist() == [0.0, 0.0, 4.0]
        # An overdue promise not yet judged falls due on the first day; amounts add up.
        assert columns["promise_due"].tolist() == [engine.NEVER, 0, engine.NEVER]
        assert columns["promise_amount"].tolist() == [0.0, 500.0, 0.0]
        assert columns["plan_next"].tolist() == [engine.NEVER, engine.NEVER, 9]
        assert columns["plan_amount"].tolist() == [0.0, 0.0, 100.0]
        assert columns["plan_left"].tolist() == [0, 0, 3]


class TestComparison:
    def test_a_spread_has_an_interval_around_its_mean(self) -> None:
        spread = Spread.of([1.0, 2.0, 3.0])
        assert spread.mean == 2.0
        assert spread.low < 2.0 < spread.high

    def test_strategy_names_need_two_different(self) -> None:
        assert parse_names("default, baseline") == ["default", "baseline"]
        with pytest.raises(Exception, match="two or more"):
            parse_names("default")


def test_the_cli_prints_one_json_object(live_database: str) -> None:
    from recoup.cli import app

    with unit_of_work() as session:
        institution = portfolio(session, code="SIM", debtors=8)
        cases.sync_cases(session, institution_id=institution.id, now=utcnow())
    runner = CliRunner()
    answer = runner.invoke(
        app,
        [
            "simulate",
            "--days",
            "10",
            "--strategy",
            "baseline",
            "--institution",
            "SIM",
            "--seed",
            "2",
            "--json",
        ],
    )
    assert answer.exit_code == 0, answer.output
    data = json.loads(answer.stdout)
    for key in (
        "recovered_amount",
        "recovery_rate",
        "contacts",
        "cost",
        "blocked_by_rule",
        "violations",
        "complaints",
    ):
        assert key in data
    assert data["cases"] == 8
    assert data["violations"] == 0
    compared = runner.invoke(
        app,
        [
            "simulate",
            "compare",
            "--strategies",
            "default,baseline",
            "--seeds",
            "2",
            "--days",
            "5",
            "--institution",
            "SIM",
            "--json",
        ],
    )
    assert compared.exit_code == 0, compared.output
    report = json.loads(compared.stdout)
    assert [item["name"] for item in report["strategies"]] == ["default", "baseline"]
    missing = runner.invoke(app, ["simulate", "--strategy", "nope", "--institution", "SIM"])
    assert missing.exit_code == 1
    assert "no strategy 'nope'" in missing.output


def test_the_presets_segments_have_their_reasons() -> None:
    from recoup.simulation.params import STRATEGY_NOTES

    assert set(STRATEGY_NOTES) == {"consumer_finance", "commercial_bank"}
    changes = {"formal_letter_day_1", "second_visit", "unscored", "priority", "complaints"}
    for preset, notes in STRATEGY_NOTES.items():
        codes = {segment.code for segment in compile_strategy(preset_text(preset)).segments}
        for code in notes:
            assert code in codes or code in changes, (preset, code)
    assert {"high_value", "self_cure_window", "young_one_call", "persuadable"} <= set(
        STRATEGY_NOTES["consumer_finance"]
    )
    assert {"business", "high_value", "persuadable", "low_propensity"} <= set(
        STRATEGY_NOTES["commercial_bank"]
    )
