"""`recoup simulate --strategy default` allocates agents as the institution's settings say."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup.cases import service as cases
from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit.clock import utcnow
from recoup.models import Institution
from recoup.scoring import service as scoring
from recoup.scoring import uplift
from recoup.simulation import service
from tests.cycle.helpers import today_of
from tests.factories import make_account, make_debtor, make_institution
from tests.scoring.test_uplift import planted

runner = CliRunner()


def bank(session: Session, *, code: str, debtors: int = 40) -> Institution:
    """A commercial-bank institution (its preset sets ``allocation.priority: uplift``) with
    enough cases for its simulated agents to make a call a day."""
    institution = make_institution(session, code=code, preset="commercial_bank")
    today = today_of(institution)
    for number in range(debtors):
        debtor = make_debtor(session, institution, external_id=f"{code}-D{number}")
        make_account(
            session,
            debtor,
            external_id=f"{code}-A{number}",
            principal=300_000 * (number + 1),
            days_past_due=30 + 2 * number,
            due_date=today - timedelta(days=30 + 2 * number),
        )
    session.flush()
    cases.sync_cases(session, institution_id=institution.id, now=utcnow())
    return institution


def register_uplift(code: str) -> str:
    with unit_of_work() as session:
        found = institutions.require_by_code(session, code)
        registered = scoring.register_uplift_model(
            session,
            institution=found,
            model=uplift.fit({"call": planted(3000, 1)}),
            metrics={},
            data_fingerprint="planted",
            source="planted effect (test)",
            actor="test",
        )
        return registered.version


def simulate(code: str, *options: str) -> dict[str, object]:
    from recoup.cli import app

    answer = runner.invoke(
        app,
        [
            *("simulate", "--days", "5", "--strategy", "default"),
            *("--institution", code, "--seed", "3", "--json", *options),
        ],
    )
    assert answer.exit_code == 0, answer.output
    data: dict[str, object] = json.loads(answer.stdout)
    return data


def test_the_bank_falls_back_to_propensity_without_an_uplift_model_and_says_so(
    live_database: str,
) -> None:
    with unit_of_work() as session:
        bank(session, code="SIMBANK")
    data = simulate("SIMBANK")
    assert data["priority"] == "expected"
    assert data["priority_basis"] == "no_uplift_model"
    assert data["uplift_model"] is None
    from recoup.cli import app

    told = runner.invoke(
        app, ["simulate", "--days", "3", "--strategy", "default", "--institution", "SIMBANK"]
    )
    assert told.exit_code == 0, told.output
    assert "no uplift model is registered" in " ".join(told.output.split())


def test_the_bank_simulates_with_uplift_priority_once_a_model_is_registered(
    live_database: str,
) -> None:
    with unit_of_work() as session:
        bank(session, code="SIMUP")
    version = register_uplift(code="SIMUP")
    data = simulate("SIMUP")
    assert data["priority"] == "uplift"
    assert data["priority_basis"] == "uplift"
    assert data["uplift_model"] == version
    assert data["contacts"] > 0  # type: ignore[operator]
    # Asked for, propensity still; the baseline (the classic escalation) always on propensity.
    assert simulate("SIMUP", "--priority", "expected")["priority"] == "expected"
    with unit_of_work() as session:
        found = institutions.require_by_code(session, "SIMUP")
        default = service.strategy_named(session, institution=found, name="default")
        baseline = service.strategy_named(session, institution=found, name="baseline")
        setup = service.prepare(session, institution=found)
    assert default.allocation.priority == "uplift"
    assert default.allocation.scorer is not None
    assert baseline.allocation.basis == "propensity"
    comparison = service.compare(setup, [default, baseline], days=3, seeds=[1]).as_dict()
    assert [item["priority_basis"] for item in comparison["strategies"]] == [
        "uplift",
        "propensity",
    ]
    assert [run["priority"] for run in comparison["strategies"][0]["runs"]] == ["uplift"]


def test_a_consumer_finance_institution_stays_on_propensity(live_database: str) -> None:
    from tests.cycle.helpers import portfolio

    with unit_of_work() as session:
        institution = portfolio(session, code="SIMCF", debtors=4)
        cases.sync_cases(session, institution_id=institution.id, now=utcnow())
    register_uplift(code="SIMCF")
    data = simulate("SIMCF")
    assert data["priority"] == "expected"
    assert data["priority_basis"] == "propensity"


def test_the_portfolio_carries_each_debtors_zones(live_database: str) -> None:
    from sqlalchemy import select

    from recoup.models import Debtor
    from tests.cycle.helpers import portfolio

    with unit_of_work() as session:
        institution = portfolio(session, code="SIMTZ", debtors=3)
        first = session.execute(select(Debtor).where(Debtor.external_id == "SIMTZ-D0")).scalar_one()
        first.timezone, first.timezone_source = "Asia/Urumqi", "column"
        session.flush()
        cases.sync_cases(session, institution_id=institution.id, now=utcnow())
        found = institutions.require_by_code(session, "SIMTZ")
        setup = service.prepare(session, institution=found)
    zones = sorted(setup.portfolio.timezones.tolist())  # type: ignore[union-attr]
    assert zones == [("Asia/Shanghai",), ("Asia/Shanghai",), ("Asia/Urumqi",)]
