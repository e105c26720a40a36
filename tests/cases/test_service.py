"""Cases open and close from the accounts, route to queues, and keep their history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from recoup.cases import service
from recoup.cases.rules import CaseEvent, CaseState
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.models.cases import Case, CaseAccount, Queue
from recoup.models.cases import CaseEvent as CaseEventRow
from recoup.models.scoring import AccountScore, ModelVersion
from tests.factories import make_account, make_debtor, make_institution, make_model_version
from tests.identity.helpers import make_user

NOW = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)


def history(session: Session, case: Case) -> list[tuple[str, str | None, str | None]]:
    rows = session.execute(
        select(CaseEventRow.event, CaseEventRow.from_state, CaseEventRow.to_state)
        .where(CaseEventRow.case_id == case.id)
        .order_by(CaseEventRow.id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_debtor_with_delinquent_accounts_gets_one_case_and_keeps_it(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    first = make_account(session, debtor, days_past_due=40)
    make_account(session, debtor, days_past_due=0, status="current")
    quiet = make_debtor(session, institution)
    make_account(session, quiet, days_past_due=0, status="current")

    result = service.sync_cases(session, institution_id=institution.id, now=NOW)
    assert (result.opened, result.accounts_added, result.live) == (1, 1, 1)
    (case,) = session.execute(select(Case).where(Case.institution_id == institution.id)).scalars()
    assert (case.debtor_id, case.state, case.live_debtor_id) == (debtor.id, "open", debtor.id)
    assert history(session, case) == [("opened", None, "open")]

    second = make_account(session, debtor, days_past_due=10)
    again = service.sync_cases(session, institution_id=institution.id, now=NOW)
    assert (again.opened, again.accounts_added) == (0, 1)
    accounts = session.execute(
        select(CaseAccount.account_id).where(CaseAccount.case_id == case.id)
    ).scalars()
    assert sorted(accounts) == sorted([first.id, second.id])


def test_a_case_closes_as_cured_or_paid_and_a_new_delinquency_opens_a_new_case(
    session: Session,
) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor, days_past_due=40)
    service.sync_cases(session, institution_id=institution.id, now=NOW)

    account.status = "current"
    account.days_past_due = 0
    session.flush()
    result = service.sync_cases(session, institution_id=institution.id, now=NOW)
    assert result.closed == 1
    (case,) = session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalars()
    assert (case.state, case.reason, case.live_debtor_id) == ("closed", "cured", None)
    assert case.closed_at == NOW

    account.status = "delinquent"
    account.days_past_due = 5
    session.flush()
    assert service.sync_cases(session, institution_id=institution.id, now=NOW).opened == 1
    cases = session.execute(
        select(Case.state).where(Case.debtor_id == debtor.id).order_by(Case.id)
    ).scalars()
    assert list(cases) == ["closed", "open"]


def test_paid_off_accounts_close_the_case_as_paid(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor, days_past_due=40)
    service.sync_cases(session, institution_id=institution.id, now=NOW)
    account.status = "settled"
    account.principal = account.interest = account.fees = account.penalty = 0
    session.flush()
    service.sync_cases(session, institution_id=institution.id, now=NOW)
    case = session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalar_one()
    assert (case.state, case.reason) == ("closed", "paid")


def test_cases_route_to_the_first_matching_queue(session: Session) -> None:
    institution = make_institution(session)
    early = Queue(institution_id=institution.id, code="EARLY", name="M1", rank=10, buckets=["M1"])
    rest = Queue(institution_id=institution.id, code="REST", name="All", rank=100)
    session.add_all([early, rest])
    session.flush()
    debtor = make_debtor(session, institution)
    make_account(session, debtor, days_past_due=12)
    late = make_debtor(session, institution)
    make_account(session, late, days_past_due=95)
    service.sync_cases(session, institution_id=institution.id, now=NOW)
    rows = session.execute(
        select(Case.debtor_id, Case.queue_id).where(Case.institution_id == institution.id)
    )
    queues = {debtor_id: queue_id for debtor_id, queue_id in rows}  # noqa: C416 (rows are Row)
    assert queues == {debtor.id: early.id, late.id: rest.id}


def test_state_changes_by_hand_are_checked_noted_and_kept(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    make_account(session, debtor, days_past_due=40)
    service.sync_cases(session, institution_id=institution.id, now=NOW)
    case = session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalar_one()

    with pytest.raises(ValidationFailed, match="cannot take 'resume'"):
        service.change_state(
            session,
            institution_id=institution.id,
            case_id=case.id,
            event=CaseEvent.RESUME,
            actor="lead",
            note="x",
        )
    assert service.apply_event(
        session,
        institution_id=institution.id,
        case_id=case.id,
        event=CaseEvent.HARDSHIP,
        actor="agent",
    )
    service.change_state(
        session,
        institution_id=institution.id,
        case_id=case.id,
        event=CaseEvent.RESUME,
        actor="lead",
        note="job found",
    )
    assert case.state == CaseState.OPEN
    assert history(session, case)[-2:] == [
        ("hardship", "open", "paused"),
        ("resume", "paused", "open"),
    ]
    other = make_institution(session)
    with pytest.raises(NotFound):
        service.change_state(
            session,
            institution_id=other.id,
            case_id=case.id,
            event=CaseEvent.HARDSHIP,
            actor="x",
            note="y",
        )


def test_reassignment_keeps_history_and_skips_unchanged(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    debtor = make_debtor(session, institution)
    make_account(session, debtor, days_past_due=40)
    service.sync_cases(session, institution_id=institution.id, now=NOW)
    case = session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalar_one()
    owners = {case.id: agent.id}
    assert (
        service.reassign(session, institution_id=institution.id, owners=owners, actor="lead") == 1
    )
    session.expire_all()
    assert session.get(Case, case.id).owner_id == agent.id  # type: ignore[union-attr]
    assert (
        service.reassign(session, institution_id=institution.id, owners=owners, actor="lead") == 0
    )
    assert history(session, case)[-1] == ("assigned", None, None)


def test_profiles_absences_and_queues_are_checked(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    lead = make_user(session, institution, role="team_lead")
    with pytest.raises(ValidationFailed, match="daily_capacity"):
        service.set_agent_profile(
            session,
            institution_id=institution.id,
            user_id=agent.id,
            daily_capacity=5000,
            skills=[],
            regions=[],
            actor="lead",
        )
    with pytest.raises(ValidationFailed, match="not an agent"):
        service.set_agent_profile(
            session,
            institution_id=institution.id,
            user_id=lead.id,
            daily_capacity=5,
            skills=[],
            regions=[],
            actor="lead",
        )
    profile = service.set_agent_profile(
        session,
        institution_id=institution.id,
        user_id=agent.id,
        daily_capacity=50,
        skills=["legal", "lang:en", "legal"],
        regions=["北京市"],
        actor="lead",
    )
    assert (profile.daily_capacity, profile.skills) == (50, ["lang:en", "legal"])
    with pytest.raises(ValidationFailed, match="ends_on"):
        service.add_absence(
            session,
            institution_id=institution.id,
            user_id=agent.id,
            starts_on=NOW.date(),
            ends_on=NOW.date().replace(day=1) if NOW.day > 1 else NOW.date() - timedelta(days=1),
            reason="leave",
            actor="lead",
        )
    with pytest.raises(ValidationFailed, match="buckets"):
        service.save_queue(
            session,
            institution_id=institution.id,
            code="late",
            name="Late",
            rank=1,
            buckets=["M9"],
            skills=[],
            member_ids=[],
            actor="lead",
        )
    queue = service.save_queue(
        session,
        institution_id=institution.id,
        code="late",
        name="Late",
        rank=1,
        buckets=["M6+", "M4"],
        skills=["legal"],
        member_ids=[agent.id],
        actor="lead",
    )
    assert (queue.code, queue.buckets) == ("LATE", ["M4", "M6+"])
    again = service.save_queue(
        session,
        institution_id=institution.id,
        code="LATE",
        name="Late, legal",
        rank=2,
        buckets=[],
        skills=[],
        member_ids=[],
        actor="lead",
    )
    assert again.id == queue.id
    assert again.name == "Late, legal"


def test_events_for_many_accounts_move_their_debtors_cases_in_one_read(session: Session) -> None:
    institution = make_institution(session)
    promised_debtor, other_debtor = (
        make_debtor(session, institution),
        make_debtor(session, institution),
    )
    kept = make_account(session, promised_debtor, days_past_due=40)
    make_account(session, promised_debtor, days_past_due=40)
    broken = make_account(session, other_debtor, days_past_due=70)
    caseless = make_account(
        session, make_debtor(session, institution), days_past_due=0, status="current"
    )
    service.sync_cases(session, institution_id=institution.id, now=NOW)
    for account in (kept, broken):
        service.apply_to_accounts(
            session, institution_id=institution.id, events=[(account.id, CaseEvent.PROMISE_MADE)],
            actor="test", now=NOW,
        )  # fmt: skip
    # The kept promise's account cured and left the case: the debtor's case still moves.
    kept.days_past_due, kept.status = 0, "current"
    service.sync_cases(session, institution_id=institution.id, now=NOW)

    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", listen)
    try:
        moved = service.apply_to_accounts(
            session,
            institution_id=institution.id,
            events=[
                (kept.id, CaseEvent.PROMISE_KEPT),
                (broken.id, CaseEvent.PROMISE_BROKEN),
                (caseless.id, CaseEvent.PROMISE_KEPT),
            ],
            actor="reconcile",
            now=NOW,
        )
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert moved == 2
    # One read of the cases (follow-up jobs the moves ask for read the jobs table on their own).
    case_reads = [
        sql
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT") and "FROM accounts" in sql
    ]
    assert len(case_reads) == 1, case_reads
    states = {
        row[0]: row[1]
        for row in session.execute(
            select(Case.debtor_id, Case.state).where(Case.institution_id == institution.id)
        )
    }
    assert states[promised_debtor.id] == CaseState.OPEN
    assert states[other_debtor.id] != CaseState.PROMISED


def _model(session: Session, institution_id: int) -> ModelVersion:
    version = make_model_version(
        session,
        institution_id,
        version=f"sync-test-{institution_id}",
        trained_at=datetime(2027, 2, 1, tzinfo=UTC),
    )
    return version


def _score(
    session: Session, model: ModelVersion, account_id: int, *, expected: int, priority: float | None
) -> None:
    session.add(
        AccountScore(
            institution_id=model.institution_id,
            account_id=account_id,
            model_version_id=model.id,
            model_version=model.version,
            as_of=NOW.date(),
            scored_at=NOW,
            probability=0.5,
            points=600.0,
            grade="C",
            expected_recovery=expected,
            currency="CNY",
            reasons=[],
            priority=priority,
        )
    )


def test_one_sync_over_a_mixed_portfolio_opens_joins_closes_scores_and_routes(
    session: Session,
) -> None:
    institution = make_institution(session)
    early = Queue(institution_id=institution.id, code="EARLY", name="M1", rank=10, buckets=["M1"])
    rest = Queue(institution_id=institution.id, code="REST", name="All", rank=100)
    session.add_all([early, rest])
    session.flush()
    keeps, cures, pays = (make_debtor(session, institution) for _ in range(3))
    kept = make_account(session, keeps, days_past_due=12)
    later = make_account(session, keeps, days_past_due=0, status="current")
    cured = make_account(session, cures, days_past_due=40)
    paid = make_account(session, pays, days_past_due=70)
    service.sync_cases(session, institution_id=institution.id, now=NOW)
    held = session.execute(select(Case).where(Case.debtor_id == keeps.id)).scalar_one()
    assert (held.queue_id, held.expected_recovery, held.priority) == (early.id, 0, 0)

    # The next day: one debtor's second account falls behind (M4), one cures, one pays off,
    # a new debtor falls behind; scores arrive for the live accounts.
    later.status, later.days_past_due, later.bucket = "delinquent", 100, "M4"
    cured.status, cured.days_past_due = "current", 0
    paid.status = "settled"
    paid.principal = paid.interest = paid.fees = paid.penalty = 0
    fresh = make_debtor(session, institution)
    new = make_account(session, fresh, days_past_due=5)
    model = _model(session, institution.id)
    _score(session, model, kept.id, expected=1_200, priority=3.4)
    _score(session, model, later.id, expected=800, priority=7.6)
    _score(session, model, new.id, expected=500, priority=None)
    session.flush()

    result = service.sync_cases(session, institution_id=institution.id, now=NOW)
    assert result.counts() == {
        "opened": 1,
        "accounts_added": 2,
        "closed": 2,
        "routed": 2,
        "live": 2,
    }
    rows = session.execute(
        select(
            Case.debtor_id,
            Case.state,
            Case.reason,
            Case.live_debtor_id,
            Case.queue_id,
            Case.expected_recovery,
            Case.priority,
        )
        .where(Case.institution_id == institution.id)
        .order_by(Case.id)
    )
    assert [tuple(row) for row in rows] == [
        (keeps.id, "open", None, keeps.id, rest.id, 2_000, 8),
        (cures.id, "closed", "cured", None, rest.id, 0, 0),
        (pays.id, "closed", "paid", None, rest.id, 0, 0),
        (fresh.id, "open", None, fresh.id, early.id, 500, 0),
    ]
    # An object of a refreshed case held in the session reads the written values.
    assert (held.queue_id, held.expected_recovery, held.priority) == (rest.id, 2_000, 8)
    members = session.execute(
        select(CaseAccount.account_id).join(Case).where(Case.debtor_id == keeps.id)
    ).scalars()
    assert sorted(members) == sorted([kept.id, later.id])
    events = session.execute(
        select(Case.debtor_id, CaseEventRow.event, CaseEventRow.from_state, CaseEventRow.to_state)
        .join(Case, Case.id == CaseEventRow.case_id)
        .where(Case.institution_id == institution.id)
        .order_by(CaseEventRow.id)
    )
    assert [tuple(row) for row in events] == [
        (keeps.id, "opened", None, "open"),
        (cures.id, "opened", None, "open"),
        (pays.id, "opened", None, "open"),
        (fresh.id, "opened", None, "open"),
        (cures.id, "delinquency_cleared", "open", "closed"),
        (pays.id, "paid_off", "open", "closed"),
    ]
    # A second pass the same day changes nothing.
    again = service.sync_cases(session, institution_id=institution.id, now=NOW)
    assert again.counts() == {"opened": 0, "accounts_added": 0, "closed": 0, "routed": 0, "live": 2}
