"""The daily cycle end to end: stages, report, idempotency (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import func, select

from recoup.cycle import runner
from recoup.db import unit_of_work
from recoup.models.account import Account, DelinquencyEvent
from recoup.models.cases import Case
from recoup.models.compliance import ContactDecision
from recoup.models.cycle import CycleAction, CycleStage
from tests.cycle.helpers import portfolio, today_of


def _count(model: type) -> int:
    with unit_of_work(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_day_runs_every_stage_and_a_rerun_creates_nothing(live_database: str) -> None:
    with unit_of_work() as session:
        institution = portfolio(session)
        day = today_of(institution)

    report = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")

    assert report.status == "completed"
    assert list(report.stages) == [
        "delinquency",
        "reconciliation",
        "scoring",
        "cases",
        "segmentation",
        "strategy",
        "next_actions",
        "gate",
        "handoff",
        "aggregates",
    ]
    assert report.stages["delinquency"].counts["aged"] == 6
    assert report.stages["aggregates"].counts["days_refreshed"] >= 1
    assert report.stages["aggregates"].counts["kpi_snapshots"] >= 1
    assert report.stages["cases"].counts["opened"] == 6
    assert report.stages["segmentation"].counts["cases"] == 6
    assert report.stages["gate"].counts["blocked"] >= 1
    assert "CN-CEASE" in "".join(report.blocked_by_rule) or report.blocked_by_rule
    assert report.tasks_created + report.messages_queued == report.stages["gate"].counts["allowed"]
    with unit_of_work(write=False) as session:
        ages = session.execute(select(Account.days_past_due)).scalars().all()
    assert set(ages) == {40}

    before = {
        model: _count(model)
        for model in (CycleAction, CycleStage, DelinquencyEvent, Case, ContactDecision)
    }
    again = runner.run_cycle(institution_code="CYC", as_of=day, actor="test")
    assert again.to_json() == report.to_json()
    assert {model: _count(model) for model in before} == before
