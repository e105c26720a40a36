"""Offline strategy evaluation: an institution's portfolio, a strategy, the simulator.

The portfolio is read once, the way the daily cycle reads it (``strategy.repository.
account_facts`` → ``strategy.service.facts_columns`` → one row per case), and turned into
arrays; from then on nothing touches the database. ``default`` is the institution's active
strategy (its preset until one is activated), ``baseline`` the classic escalation by days past
due (``baseline.yaml``), any other name a strategy of the institution by code (its active
version, else its latest).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from recoup.compliance.facts import service as facts_service
from recoup.compliance.gate import service as gate_service
from recoup.compliance.gate.rules import Gate
from recoup.institutions.settings import settings_of
from recoup.kit import clock
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.models.institution import Institution
from recoup.scoring import repository as scoring_repository
from recoup.scoring import rules as scoring_rules
from recoup.simulation import repository
from recoup.simulation.engine import NEVER, Portfolio, Result, RunSettings, run_simulation
from recoup.simulation.params import Params, default_params
from recoup.strategy import repository as strategy_repository
from recoup.strategy import service as strategy_service
from recoup.strategy.presets import preset_text
from recoup.strategy.rules import CompiledStrategy, compile_strategy

MAX_DAYS = 365
# Facts columns and a channel → each case's estimated uplift (``uplift.UpliftModel.score``).
UpliftScorer = Callable[[Mapping[str, Any], str], npt.NDArray[np.float64]]
MAX_SEEDS = 50


def baseline_text() -> str:
    """The classic escalation by days past due, as a strategy document."""
    return (
        resources.files("recoup.simulation").joinpath("baseline.yaml").read_text(encoding="utf-8")
    )


@dataclass(frozen=True, slots=True)
class Allocation:
    """How agents pick their cases in a run: ``expected`` (propensity × balance) or ``uplift``
    (estimated uplift × balance, by ``scorer``), and why (``scoring.rules.priority_basis``:
    ``propensity``, ``uplift``, or ``no_uplift_model`` when uplift is asked for but no uplift
    model is registered)."""

    priority: str = "expected"
    basis: str = scoring_rules.BASIS_PROPENSITY
    scorer: UpliftScorer | None = None
    model_version: str | None = None

    def describe(self) -> str:
        if self.basis == scoring_rules.BASIS_UPLIFT:
            return f"agents on uplift × balance ({self.model_version})"
        if self.basis == scoring_rules.BASIS_NO_UPLIFT_MODEL:
            return "agents on propensity × balance: uplift is set but no uplift model is registered"
        return "agents on propensity × balance"


PROPENSITY = Allocation()


def settings_allocation(session: Session, *, institution: Institution) -> Allocation:
    """The allocation the institution's settings ask for, as the real scoring decides it
    (``scoring.service.priority_worth``): uplift × balance by its newest registered uplift
    model when ``allocation.priority`` is ``uplift``; else, or without a model, propensity."""
    from recoup.scoring.service import UPLIFT_FAMILY, load_uplift_model

    asked = settings_of(institution).allocation.priority
    found = (
        scoring_repository.latest_uplift_version(
            session, institution_id=institution.id, family=UPLIFT_FAMILY
        )
        if asked == scoring_rules.BASIS_UPLIFT
        else None
    )
    basis = scoring_rules.priority_basis(
        asked=asked, has_model=found is not None, channel_learnt=True
    )
    if found is None:
        return Allocation(basis=basis)
    return Allocation(
        priority="uplift",
        basis=basis,
        scorer=load_uplift_model(found).score,
        model_version=found.version,
    )


@dataclass(frozen=True, slots=True)
class NamedStrategy:
    name: str
    label: str
    compiled: CompiledStrategy
    # How agents pick cases for it: the institution's settings for its own strategies, always
    # propensity × balance for the classic baseline.
    allocation: Allocation = PROPENSITY


def strategy_named(session: Session, *, institution: Institution, name: str) -> NamedStrategy:
    """The strategy a name means for the institution (``default``, ``baseline`` or a code).

    The institution's own strategies (``default`` and codes) allocate agents as its settings
    say (``settings_allocation``); the baseline, the classic escalation, on propensity."""
    if name == "baseline":
        return NamedStrategy(
            name, "baseline (escalation by days past due)", compile_strategy(baseline_text())
        )
    allocation = settings_allocation(session, institution=institution)
    if name == "default":
        active = strategy_service.active_strategy(session, institution_id=institution.id)
        if active is not None:
            return NamedStrategy(name, f"default: {active.label}", active.compiled, allocation)
        preset = strategy_service.default_preset(institution)
        return NamedStrategy(
            name,
            f"default: preset {preset}",
            compile_strategy(preset_text(preset)),
            allocation,
        )
    strategy = strategy_repository.strategy_by_code(
        session, institution_id=institution.id, code=name
    )
    if strategy is None:
        raise NotFound(
            f"no strategy '{name}' at {institution.code}; use default, baseline or a strategy code"
        )
    version = strategy_repository.active_version(session, institution_id=institution.id)
    if version is None or version.strategy_id != strategy.id:
        version = strategy_repository.latest_version(session, strategy_id=strategy.id)
    if version is None:
        raise NotFound(f"strategy '{name}' has no version yet")
    return NamedStrategy(
        name, f"{name} v{version.version}", compile_strategy(version.document), allocation
    )


def load_portfolio(session: Session, *, institution: Institution, as_of: date) -> Portfolio:
    """The institution's live cases as arrays (one row per case, as the cycle segments them),
    with what the product holds of their past: payments, broken and open promises, active
    plans and calls that reached nobody (``engine.History``), as the strategy would see them."""
    raw = strategy_repository.account_facts(session, institution_id=institution.id)
    columns, _ = strategy_service.case_columns(strategy_service.facts_columns(raw, today=as_of))
    if len(columns["case_id"]) == 0:
        raise ValidationFailed(
            f"{institution.code} has no live cases to simulate; import accounts and run the cycle "
            "(or recoup seed-demo) first"
        )
    columns["debtor_id"] = columns["case_id"]
    columns["timezones"] = case_zones(
        session,
        institution=institution,
        case_ids=np.asarray(columns["case_id"], dtype=np.int64),
    )
    past = repository.account_history(session, institution_id=institution.id, as_of=as_of)
    failed = strategy_repository.contact_facts(
        session, institution_id=institution.id, names=["failed_attempts"]
    )["failed_attempts"]
    columns.update(
        history_columns(
            raw["account_id"],
            raw["case_id"],
            np.array(
                [np.nan if days is None else float(days) for days in raw["days_past_due"]],
                dtype=np.float64,
            ),
            columns["case_id"],
            past,
            failed,
            as_of=as_of,
        )
    )
    return Portfolio.from_columns(columns)


def case_zones(
    session: Session, *, institution: Institution, case_ids: npt.NDArray[np.int64]
) -> list[tuple[str, ...]]:
    """Each case's debtor's time zones as the gate reads them in the daily cycle
    (``compliance.facts.service.debtors_facts``: the stored zone, the address's, the phones');
    the institution's zone for a case whose debtor has none."""
    debtor_of = repository.case_debtors(session, institution_id=institution.id)
    facts = facts_service.debtors_facts(
        session, institution_id=institution.id, debtor_ids=sorted(set(debtor_of.values()))
    )
    own = (str(institution.timezone),)
    zones = []
    for case_id in case_ids.tolist():
        known = facts.get(str(debtor_of.get(case_id)))
        zones.append(tuple(known.timezones) if known is not None and known.timezones else own)
    return zones


def history_columns(
    account_ids: Sequence[int],
    account_cases: Sequence[int],
    account_days: npt.NDArray[np.float64],
    case_ids: npt.NDArray[np.int64],
    past: Mapping[str, Any],
    failed: Mapping[int, int],
    *,
    as_of: date,
) -> dict[str, npt.NDArray[Any]]:
    """The ``engine.History`` columns of each case (``case_ids``' order) from its accounts'
    records (``account_days``: each account's days past due): a payment on any account since
    it fell past due, broken promises added up, the earliest open promise
    (amounts added up) and the earliest next plan instalment (amounts added up, the most
    instalments left), as day indexes from ``as_of``."""
    cases = np.asarray(case_ids, dtype=np.int64)
    owners = np.searchsorted(cases, np.asarray(account_cases, dtype=np.int64))
    known = (owners < len(cases)) & (cases[np.minimum(owners, len(cases) - 1)] == account_cases)
    owners, accounts = owners[known], np.asarray(account_ids, dtype=np.int64)[known]
    size = len(cases)
    start = as_of.toordinal()

    def per_account(table: Mapping[int, Any], pick: Callable[[Any], float], empty: float) -> Any:
        return np.fromiter(
            (pick(table[a]) if a in table else empty for a in accounts.tolist()),
            dtype=np.float64,
            count=len(accounts),
        )

    # Paid while delinquent (as the score reads it): a payment on or after the day the
    # account fell past due.
    last_paid = per_account(past["paid"], lambda day: day.toordinal() - start, -float(NEVER))
    paid = np.zeros(size, dtype=bool)
    paid[owners[last_paid >= -np.nan_to_num(account_days, nan=0.0)[known]]] = True
    broken = np.bincount(owners, weights=per_account(past["broken"], float, 0.0), minlength=size)
    never = float(NEVER)
    promise_due = np.full(size, never)
    np.minimum.at(
        promise_due,
        owners,
        per_account(past["promise"], lambda p: max(p[0].toordinal() - start, 0), never),
    )
    promise_amount = np.bincount(
        owners, weights=per_account(past["promise"], lambda p: p[1], 0.0), minlength=size
    )
    plan_next = np.full(size, never)
    np.minimum.at(
        plan_next, owners, per_account(past["plan"], lambda p: p[0].toordinal() - start, never)
    )
    plan_amount = np.bincount(
        owners, weights=per_account(past["plan"], lambda p: p[1], 0.0), minlength=size
    )
    plan_left = np.zeros(size)
    np.maximum.at(plan_left, owners, per_account(past["plan"], lambda p: p[2], 0.0))
    return {
        "paid_before": paid,
        "broken_promises": broken,
        "failed_attempts": np.fromiter(
            (failed.get(case, 0) for case in cases.tolist()), dtype=np.float64, count=size
        ),
        "promise_due": promise_due.astype(np.int64),
        "promise_amount": np.ceil(promise_amount),
        "plan_next": plan_next.astype(np.int64),
        "plan_amount": np.ceil(plan_amount),
        "plan_left": plan_left.astype(np.int64),
    }


@dataclass(frozen=True, slots=True)
class Setup:
    """What every run of one evaluation shares."""

    portfolio: Portfolio
    gate: Gate
    start: date
    timezone: str
    costs: Mapping[str, int]


def prepare(session: Session, *, institution: Institution) -> Setup:
    """Read the portfolio, the gate and the costs once."""
    start = clock.local_today(institution.timezone)
    return Setup(
        portfolio=load_portfolio(session, institution=institution, as_of=start),
        gate=gate_service.gate_for(session, institution=institution),
        start=start,
        timezone=str(institution.timezone),
        costs=strategy_service.costs_minor(institution),
    )


def check_run(days: int, seeds: int = 1) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(f"--days must be between 1 and {MAX_DAYS} (got {days})")
    if not 1 <= seeds <= MAX_SEEDS:
        raise ValidationFailed(f"--seeds must be between 1 and {MAX_SEEDS} (got {seeds})")


def run(
    setup: Setup,
    strategy: NamedStrategy,
    *,
    days: int,
    seed: int,
    params: Params | None = None,
    on_day: Callable[[int], None] | None = None,
    uplift_scorer: UpliftScorer | None = None,
    priority: str | None = None,
    suppress_below: Mapping[str, float] | None = None,
    suppress_mode: str = "skip",
) -> Result:
    """One strategy, one seed. Agents pick cases as the strategy's ``allocation`` says, unless
    told otherwise: with an uplift scorer, they take the highest uplift × balance (unless
    ``priority`` says ``expected``); ``priority`` ``expected`` alone puts them on propensity ×
    balance. ``suppress_below`` skips a channel's contacts whose estimated uplift is at or
    below the threshold."""
    check_run(days)
    if uplift_scorer is None and priority is None:
        uplift_scorer = strategy.allocation.scorer
        priority = strategy.allocation.priority
    settings = RunSettings(
        days=days,
        seed=seed,
        start=setup.start,
        timezone=setup.timezone,
        costs=setup.costs,
        params=params or default_params(),
        priority=priority or ("uplift" if uplift_scorer is not None else "expected"),
        uplift_scorer=uplift_scorer,
        suppress_below=dict(suppress_below or {}),
        suppress_mode=suppress_mode,
    )
    return run_simulation(
        portfolio=setup.portfolio,
        compiled=strategy.compiled,
        gate=setup.gate,
        settings=settings,
        name=strategy.name,
        on_day=on_day,
    )


# -- comparison ------------------------------------------------------------------------------

# Two-sided 95 % Student t quantiles by degrees of freedom (1–30; normal beyond).
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


@dataclass(frozen=True, slots=True)
class Spread:
    """Mean, standard deviation and a 95 % interval of the mean over seeds."""

    mean: float
    sd: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        array = np.asarray(values, dtype=np.float64)
        mean = float(array.mean()) if len(array) else 0.0
        if len(array) < 2:
            return cls(mean, 0.0, mean, mean)
        sd = float(array.std(ddof=1))
        t = _T95[len(array) - 2] if len(array) - 1 <= len(_T95) else 1.96
        half = t * sd / math.sqrt(len(array))
        return cls(mean, sd, mean - half, mean + half)

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "sd": self.sd, "low": self.low, "high": self.high}


METRICS = ("recovered_amount", "recovery_rate", "contacts", "cost", "complaints", "violations")


@dataclass(frozen=True, slots=True)
class StrategyOutcome:
    name: str
    label: str
    runs: tuple[Result, ...]
    allocation: Allocation = PROPENSITY

    def spread(self, metric: str) -> Spread:
        return Spread.of([float(run.summary()[metric]) for run in self.runs])

    @property
    def curve(self) -> list[float]:
        """Mean recovered amount by day over the seeds."""
        return np.mean([run.daily_recovered for run in self.runs], axis=0).tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Comparison:
    days: int
    seeds: tuple[int, ...]
    cases: int
    initial_balance: float
    outcomes: tuple[StrategyOutcome, ...]

    def uplift_over(self, reference: str) -> dict[str, Spread]:
        """Each strategy's recovery relative to the reference's, seed by seed (1.08 = +8 %)."""
        by_name = {outcome.name: outcome for outcome in self.outcomes}
        base = by_name[reference]
        return {
            outcome.name: Spread.of(
                [
                    run.recovered / other.recovered if other.recovered else 0.0
                    for run, other in zip(outcome.runs, base.runs, strict=True)
                ]
            )
            for outcome in self.outcomes
        }

    def as_dict(self) -> dict[str, Any]:
        reference = self.outcomes[-1].name
        uplift = self.uplift_over(reference)
        return {
            "days": self.days,
            "seeds": list(self.seeds),
            "cases": self.cases,
            "initial_balance": round(self.initial_balance),
            "reference": reference,
            "strategies": [
                {
                    "name": outcome.name,
                    "label": outcome.label,
                    "priority": outcome.allocation.priority,
                    "priority_basis": outcome.allocation.basis,
                    "allocation": outcome.allocation.describe(),
                    **{metric: outcome.spread(metric).as_dict() for metric in METRICS},
                    "relative_recovery": uplift[outcome.name].as_dict(),
                    "recovered_by_day": [round(value) for value in outcome.curve],
                    "runs": [
                        {
                            key: value
                            for key, value in run.summary().items()
                            if key != "recovered_by_day"
                        }
                        for run in outcome.runs
                    ],
                }
                for outcome in self.outcomes
            ],
        }


def compare(
    setup: Setup,
    strategies: Sequence[NamedStrategy],
    *,
    days: int,
    seeds: Sequence[int],
    params: Params | None = None,
    on_run: Callable[[], None] | None = None,
) -> Comparison:
    """Several strategies on the same portfolio and the same seeds (the same simulated debtors)."""
    check_run(days, len(seeds))
    outcomes = []
    for strategy in strategies:
        runs = []
        for seed in seeds:
            runs.append(run(setup, strategy, days=days, seed=seed, params=params))
            if on_run is not None:
                on_run()
        outcomes.append(
            StrategyOutcome(strategy.name, strategy.label, tuple(runs), strategy.allocation)
        )
    return Comparison(
        days=days,
        seeds=tuple(seeds),
        cases=setup.portfolio.size,
        initial_balance=float(setup.portfolio.balance.sum()),
        outcomes=tuple(outcomes),
    )


def parse_names(text: str) -> list[str]:
    """Strategy names from ``a,b,c`` (two or more, no repeats)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValidationFailed(
            f"--strategies needs two or more different names separated by commas (got '{text}')"
        )
    return names
