"""Allocation over the database: queues, skills, absences and certificates; history and dry runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup.allocation import service
from recoup.cases import service as cases
from recoup.cli import app
from recoup.db import unit_of_work
from recoup.models.account import Account
from recoup.models.audit import AuditEvent
from recoup.models.cases import AgentAbsence, AgentProfile, Case, CaseEvent, Queue, QueueMember
from recoup.models.identity import User
from recoup.models.institution import Institution
from tests.factories import certify, make_account, make_debtor, make_institution
from tests.identity.helpers import make_user

DAY = date(2027, 3, 1)
NOW = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)


def agent(
    session: Session,
    institution: Institution,
    *,
    capacity: int,
    skills: tuple[str, ...] = (),
    certified: bool = True,
) -> User:
    user = make_user(session, institution, role="agent")
    session.add(
        AgentProfile(
            institution_id=institution.id,
            user_id=user.id,
            daily_capacity=capacity,
            skills=list(skills),
        )
    )
    if certified:
        certify(session, user)
    session.flush()
    return user


def case_with(session: Session, institution: Institution, *, days: int, principal: int) -> Account:
    debtor = make_debtor(session, institution)
    return make_account(session, debtor, days_past_due=days, principal=principal)


def owners(session: Session, institution: Institution) -> dict[int, int | None]:
    rows = session.execute(
        select(Case.debtor_id, Case.owner_id).where(Case.institution_id == institution.id)
    )
    return {debtor_id: owner for debtor_id, owner in rows}  # noqa: C416 (rows are Row)


def test_allocation_respects_queues_skills_absence_and_certificates(session: Session) -> None:
    institution = make_institution(session)
    legal = Queue(
        institution_id=institution.id,
        code="LEGAL",
        name="Legal",
        rank=1,
        buckets=["M4", "M5", "M6", "M6+"],
        skills=["legal"],
    )
    general = Queue(institution_id=institution.id, code="GEN", name="General", rank=100)
    session.add_all([legal, general])
    session.flush()
    lawyer = agent(session, institution, capacity=5, skills=("legal",))
    caller = agent(session, institution, capacity=1)
    away = agent(session, institution, capacity=9)
    uncertified = agent(session, institution, capacity=9, certified=False)
    session.add(QueueMember(institution_id=institution.id, queue_id=general.id, user_id=caller.id))
    session.add(
        AgentAbsence(institution_id=institution.id, user_id=away.id, starts_on=DAY, ends_on=DAY)
    )
    late = case_with(session, institution, days=130, principal=9_000_00)
    early_big = case_with(session, institution, days=20, principal=5_000_00)
    early_small = case_with(session, institution, days=20, principal=1_000_00)
    cases.sync_cases(session, institution_id=institution.id, now=NOW)
    for case in session.execute(
        select(Case).where(Case.institution_id == institution.id)
    ).scalars():
        case.expected_recovery = {
            late.debtor_id: 900,
            early_big.debtor_id: 500,
            early_small.debtor_id: 100,
        }[case.debtor_id]
    session.flush()

    dry = service.allocate(session, institution=institution, as_of=DAY, actor="lead", dry_run=True)
    assert (dry.assigned, dry.over_capacity, dry.changed) == (3, 0, 3)
    assert set(owners(session, institution).values()) == {None}

    report = service.allocate(session, institution=institution, as_of=DAY, actor="lead")
    assert report.objective >= report.greedy_objective >= 0
    assert report.objective >= report.round_robin_objective
    assigned = owners(session, institution)
    # The legal case needs the lawyer; the caller (one a day) takes the bigger early case.
    assert assigned[late.debtor_id] == lawyer.id
    assert assigned[early_big.debtor_id] in {caller.id, lawyer.id}
    assert away.id not in assigned.values()
    assert uncertified.id not in assigned.values()
    loads = {user: list(assigned.values()).count(user) for user in (lawyer.id, caller.id)}
    assert loads[caller.id] <= 1
    events = session.execute(
        select(CaseEvent.event, CaseEvent.to_owner_id).where(
            CaseEvent.institution_id == institution.id, CaseEvent.event == "assigned"
        )
    ).all()
    assert len(events) == 3
    assert session.execute(
        select(AuditEvent).where(AuditEvent.action == "cases.allocate")
    ).scalar_one()

    again = service.allocate(session, institution=institution, as_of=DAY, actor="lead")
    assert again.changed == 0


def test_nothing_to_allocate_is_a_quiet_empty_answer(session: Session) -> None:
    institution = make_institution(session)
    report = service.allocate(session, institution=institution, as_of=DAY, actor="lead")
    assert (report.cases, report.assigned, report.objective) == (0, 0, 0)


def test_the_allocate_command_prints_its_figures(cli_db: str) -> None:
    with unit_of_work() as session:
        institution = make_institution(session, code="ALLOC")
        agent(session, institution, capacity=2)
        for principal in (3_000_00, 2_000_00, 1_000_00):
            case_with(session, institution, days=40, principal=principal)
        cases.sync_cases(session, institution_id=institution.id, now=NOW)
    runner = CliRunner()
    result = runner.invoke(
        app, ["allocate", "--institution", "ALLOC", "--as-of", "2027-03-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert {
        "assigned",
        "unassigned",
        "objective",
        "greedy_objective",
        "round_robin_objective",
        "over_capacity",
        "seconds",
    } <= set(figures)
    assert (figures["assigned"], figures["unassigned"], figures["over_capacity"]) == (2, 1, 0)
    text = runner.invoke(app, ["allocate", "--institution", "ALLOC", "--dry-run"])
    assert text.exit_code == 0, text.output
    assert "(dry run)" in text.stdout
    assert "No case has a score yet" in text.stdout
    assert "Expected recovery" not in text.stdout
    bad = runner.invoke(app, ["allocate", "--institution", "ALLOC", "--as-of", "March"])
    assert bad.exit_code == 1
    assert "--as-of must be a date" in bad.output


def test_cases_left_for_another_day_keep_their_owner(session: Session) -> None:
    institution = make_institution(session)
    busy = agent(session, institution, capacity=1)
    big = case_with(session, institution, days=40, principal=9_000_00)
    small = case_with(session, institution, days=40, principal=1_000_00)
    cases.sync_cases(session, institution_id=institution.id, now=NOW)
    rows = session.execute(select(Case).where(Case.institution_id == institution.id)).scalars()
    by_debtor = {case.debtor_id: case for case in rows}
    by_debtor[big.debtor_id].expected_recovery = 900
    by_debtor[small.debtor_id].expected_recovery = 100
    by_debtor[small.debtor_id].owner_id = busy.id
    session.flush()

    report = service.allocate(session, institution=institution, as_of=DAY, actor="lead")
    assert (report.assigned, report.unassigned) == (1, 1)
    session.expire_all()
    today = session.get_one(Case, by_debtor[big.debtor_id].id)
    waiting = session.get_one(Case, by_debtor[small.debtor_id].id)
    assert (today.owner_id, today.allocated_on) == (busy.id, DAY)
    assert (waiting.owner_id, waiting.allocated_on) == (busy.id, None)


def test_a_queue_capacity_counts_its_members_and_the_generalists(session: Session) -> None:
    institution = make_institution(session)
    legal = Queue(
        institution_id=institution.id, code="LEGAL", name="Legal", rank=1, skills=["legal"]
    )
    general = Queue(institution_id=institution.id, code="GEN", name="General", rank=2)
    early = Queue(institution_id=institution.id, code="EARLY", name="Early", rank=3)
    session.add_all([legal, general, early])
    session.flush()
    lawyer = agent(session, institution, capacity=5, skills=("legal",))
    member = agent(session, institution, capacity=7)
    agent(session, institution, capacity=11)
    away = agent(session, institution, capacity=13)
    agent(session, institution, capacity=17, certified=False)
    for queue, user in ((legal, lawyer), (general, lawyer), (general, member)):
        session.add(QueueMember(institution_id=institution.id, queue_id=queue.id, user_id=user.id))
    session.add(
        AgentAbsence(institution_id=institution.id, user_id=away.id, starts_on=DAY, ends_on=DAY)
    )
    session.flush()

    capacity = service.queue_capacities(session, institution_id=institution.id, as_of=DAY)

    # LEGAL needs the skill: only the lawyer; GEN: its two members and the generalist; EARLY
    # has no member, so the generalist alone (the one away and the uncertified one take nothing).
    assert capacity == {legal.id: 5, general.id: 5 + 7 + 11, early.id: 11}
