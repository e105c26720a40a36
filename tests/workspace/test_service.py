"""The workspace services: next case through the gate's preview, the case view, logging a contact."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.cases.tasks import apply_outcome
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode
from recoup.enums import ContactStatus
from recoup.identity.principal import principal_for_user
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.pagination import PageRequest
from recoup.models.compliance import ComplianceViolation, ContactDecision, SlotClaim
from recoup.models.contact import ContactAttempt
from recoup.models.jobs import Job
from recoup.models.workbench import Promise
from recoup.models.workspace import CaseNote, CaseTask
from recoup.workspace import service
from recoup.workspace.repository import CaseFilters
from recoup.workspace.rules import TimelineKind
from tests.workspace.helpers import DAYTIME, NIGHT, make_desk


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_next_case_is_the_highest_priority_case_the_gate_allows(session: Session) -> None:
    desk = make_desk(session)
    agent = principal_for_user(desk.agent)
    decisions = _count(session, ContactDecision)
    found = service.next_case(session, principal=agent, institution=desk.institution, now=DAYTIME)
    assert found.case is not None
    assert found.case.id == desk.cases[0].id
    assert found.skipped == []
    # Browsing stores no decision and claims no slot.
    assert _count(session, ContactDecision) == decisions
    assert _count(session, SlotClaim) == 0


def test_next_case_skips_cases_it_may_not_call_now_with_the_reason(session: Session) -> None:
    desk = make_desk(session)
    desk.phones[0].status = ContactStatus.invalid
    session.flush()
    agent = principal_for_user(desk.agent)
    found = service.next_case(session, principal=agent, institution=desk.institution, now=DAYTIME)
    assert found.case is not None
    assert found.case.id == desk.cases[1].id
    assert [(item.case.id, item.code) for item in found.skipped] == [(desk.cases[0].id, "no_phone")]

    night = service.next_case(session, principal=agent, institution=desk.institution, now=NIGHT)
    assert night.case is None
    blocked = [item for item in night.skipped if item.code == "blocked"]
    assert len(blocked) == 2
    badge = blocked[0].badge
    assert badge is not None
    assert not badge.allowed
    assert badge.next_allowed_at is not None
    assert badge.next_allowed_at > NIGHT
    assert badge.reasons_en
    assert badge.reasons_zh


def test_next_case_never_offers_another_agents_case(session: Session) -> None:
    desk = make_desk(session, count=1)
    desk.phones[0].status = ContactStatus.invalid
    session.flush()
    found = service.next_case(
        session, principal=principal_for_user(desk.agent), institution=desk.institution, now=DAYTIME
    )
    assert found.case is None
    assert desk.cases[1].id not in [item.case.id for item in found.skipped]


def test_due_callbacks_come_first_and_filter_the_list(session: Session) -> None:
    desk = make_desk(session)
    agent = principal_for_user(desk.agent)
    session.add(
        CaseTask(
            institution_id=desk.institution.id,
            case_id=desk.cases[2].id,
            due_at=DAYTIME - timedelta(minutes=5),
            owner_id=desk.agent.id,
            created_by="test",
        )
    )
    session.flush()
    found = service.next_case(session, principal=agent, institution=desk.institution, now=DAYTIME)
    assert found.case is not None
    assert found.case.id == desk.cases[2].id
    assert found.callback_due is not None
    listed = service.my_cases(
        session, principal=agent, filters=CaseFilters(), page=PageRequest(1, 10), now=DAYTIME
    )
    assert [case.id for case, _, _ in listed.items] == [
        c.id for c in (desk.cases[2], desk.cases[0], desk.cases[1])
    ]
    due = service.my_cases(
        session,
        principal=agent,
        filters=CaseFilters(callback_due=True),
        page=PageRequest(1, 10),
        now=DAYTIME,
    )
    assert [case.id for case, _, _ in due.items] == [desk.cases[2].id]
    assert (
        service.my_cases(
            session,
            principal=agent,
            filters=CaseFilters(bucket="M6"),
            page=PageRequest(1, 10),
            now=DAYTIME,
        ).total
        == 0
    )


def test_an_agent_never_sees_or_logs_on_another_agents_case(session: Session) -> None:
    desk = make_desk(session, count=1)
    agent = principal_for_user(desk.agent)
    theirs = desk.cases[1].id
    with pytest.raises(NotFound):
        service.case_view(
            session, principal=agent, institution=desk.institution, case_id=theirs, now=DAYTIME
        )
    with pytest.raises(NotFound):
        service.log_contact(
            session,
            principal=agent,
            institution=desk.institution,
            case_id=theirs,
            form=service.ContactForm(channel=Channel.CALL, outcome=OutcomeCode.NO_ANSWER),
            now=DAYTIME,
        )
    # A contact point of another debtor is not this case's.
    with pytest.raises(NotFound):
        service.log_contact(
            session,
            principal=agent,
            institution=desk.institution,
            case_id=desk.cases[0].id,
            form=service.ContactForm(
                channel=Channel.CALL,
                outcome=OutcomeCode.NO_ANSWER,
                contact_point_id=desk.phones[1].id,
            ),
            now=DAYTIME,
        )


def test_the_case_view_has_badges_and_one_timeline(session: Session) -> None:
    desk = make_desk(session, count=1)
    agent = principal_for_user(desk.agent)
    view = service.case_view(
        session,
        principal=agent,
        institution=desk.institution,
        case_id=desk.cases[0].id,
        now=DAYTIME,
    )
    assert [account.id for account in view.accounts] == [desk.accounts[0].id]
    badges = {badge.channel: badge for badge in view.contact_points[0].badges}
    assert badges[Channel.CALL].allowed
    assert Channel.SMS in badges
    assert [entry.kind for entry in view.timeline] == [TimelineKind.CASE]
    night = service.case_view(
        session, principal=agent, institution=desk.institution, case_id=desk.cases[0].id, now=NIGHT
    )
    call = {badge.channel: badge for badge in night.contact_points[0].badges}[Channel.CALL]
    assert not call.allowed
    assert call.next_allowed_at is not None
    assert call.zone == "Asia/Shanghai"


def test_a_call_with_a_promise_and_a_note_is_one_save(session: Session) -> None:
    desk = make_desk(session, count=1)
    agent = principal_for_user(desk.agent)
    case = desk.cases[0]
    logged = service.log_contact(
        session,
        principal=agent,
        institution=desk.institution,
        case_id=case.id,
        form=service.ContactForm(
            channel=Channel.CALL,
            outcome=OutcomeCode.PROMISE_MADE,
            contact_point_id=desk.phones[0].id,
            note="will pay on Friday",
            promise_amount=50_000,
            promise_due=date.today() + timedelta(days=3),
        ),
        now=DAYTIME,
    )
    assert logged.attempt.status == "made"
    assert logged.attempt.outcome == "promise_made"
    assert logged.attempt.agent_id == desk.agent.id
    promise = session.get(Promise, logged.promise_id)
    assert promise is not None
    assert promise.amount == 50_000
    assert case.state == "promised"
    note = session.execute(select(CaseNote)).scalar_one()
    assert note.attempt_id == logged.attempt.id
    view = service.case_view(
        session, principal=agent, institution=desk.institution, case_id=case.id, now=DAYTIME
    )
    kinds = [entry.kind for entry in view.timeline]
    assert {
        TimelineKind.CONTACT,
        TimelineKind.PROMISE,
        TimelineKind.NOTE,
        TimelineKind.CASE,
    } <= set(kinds)


def test_a_refused_promise_keeps_nothing(session: Session) -> None:
    desk = make_desk(session, count=1)
    with pytest.raises(ValidationFailed) as refused:
        service.log_contact(
            session,
            principal=principal_for_user(desk.agent),
            institution=desk.institution,
            case_id=desk.cases[0].id,
            form=service.ContactForm(
                channel=Channel.CALL,
                outcome=OutcomeCode.NO_ANSWER,
                promise_amount=1000,
                promise_due=date.today() + timedelta(days=3),
            ),
            now=DAYTIME,
        )
    assert "promise_amount" in str(refused.value)
    assert _count(session, ContactAttempt) == 0


def test_a_blocked_call_is_refused_with_the_gates_reason(session: Session) -> None:
    desk = make_desk(session, count=1)
    with pytest.raises(ValidationFailed) as refused:
        service.log_contact(
            session,
            principal=principal_for_user(desk.agent),
            institution=desk.institution,
            case_id=desk.cases[0].id,
            form=service.ContactForm(channel=Channel.CALL, outcome=OutcomeCode.NO_ANSWER),
            now=NIGHT,
        )
    assert refused.value.message_key == "workspace.log.blocked"
    # 23:30 in Shanghai: the agent is told when the debtor may be called again.
    assert "。下次可联系时间：2026-12-08 08:00（Asia/Shanghai）" in str(refused.value)
    assert _count(session, ContactAttempt) == 0


def test_a_wrong_number_invalidates_the_contact_point(session: Session) -> None:
    desk = make_desk(session, count=1)
    service.log_contact(
        session,
        principal=principal_for_user(desk.agent),
        institution=desk.institution,
        case_id=desk.cases[0].id,
        form=service.ContactForm(
            channel=Channel.CALL,
            outcome=OutcomeCode.WRONG_NUMBER,
            contact_point_id=desk.phones[0].id,
        ),
        now=DAYTIME,
    )
    assert desk.phones[0].status == ContactStatus.invalid


def test_a_dispute_moves_the_case_through_the_outcome_job(session: Session) -> None:
    desk = make_desk(session, count=1)
    service.log_contact(
        session,
        principal=principal_for_user(desk.agent),
        institution=desk.institution,
        case_id=desk.cases[0].id,
        form=service.ContactForm(
            channel=Channel.CALL, outcome=OutcomeCode.DISPUTE, contact_point_id=desk.phones[0].id
        ),
        now=DAYTIME,
    )
    (job,) = session.execute(select(Job).where(Job.name == "cases.apply_outcome")).scalars()
    apply_outcome(session, dict(job.payload))
    assert desk.cases[0].state == "disputed"


def test_a_callback_at_a_blocked_time_moves_to_the_next_allowed_time(session: Session) -> None:
    desk = make_desk(session, count=1)
    agent = principal_for_user(desk.agent)
    logged = service.log_contact(
        session,
        principal=agent,
        institution=desk.institution,
        case_id=desk.cases[0].id,
        form=service.ContactForm(
            channel=Channel.CALL,
            outcome=OutcomeCode.CALLBACK_REQUESTED,
            contact_point_id=desk.phones[0].id,
            callback_at=NIGHT,
        ),
        now=DAYTIME,
    )
    task = logged.callback
    assert task is not None
    assert logged.callback_moved
    assert task.due_at > NIGHT
    assert task.requested_at == NIGHT
    kept = service.log_contact(
        session,
        principal=agent,
        institution=desk.institution,
        case_id=desk.cases[0].id,
        form=service.ContactForm(
            channel=Channel.CALL,
            outcome=OutcomeCode.CALLBACK_REQUESTED,
            contact_point_id=desk.phones[0].id,
            callback_at=DAYTIME + timedelta(hours=2),
        ),
        now=DAYTIME + timedelta(minutes=1),
    )
    assert kept.callback is not None
    assert not kept.callback_moved
    with pytest.raises(ValidationFailed, match="callback_at"):
        service.log_contact(
            session,
            principal=agent,
            institution=desk.institution,
            case_id=desk.cases[0].id,
            form=service.ContactForm(channel=Channel.CALL, outcome=OutcomeCode.CALLBACK_REQUESTED),
            now=DAYTIME,
        )


def test_notes_are_scanned_for_violations(session: Session) -> None:
    desk = make_desk(session, count=1)
    logged = service.log_contact(
        session,
        principal=principal_for_user(desk.agent),
        institution=desk.institution,
        case_id=desk.cases[0].id,
        form=service.ContactForm(
            channel=Channel.CALL,
            outcome=OutcomeCode.REFUSED_TO_PAY,
            inbound=True,
            note="我会告诉你的单位和家人，让你坐牢",
        ),
        now=DAYTIME,
    )
    assert logged.attempt.direction == "inbound"
    violations = session.execute(select(ComplianceViolation)).scalars().all()
    assert logged.violations == len(violations) > 0
    assert violations[0].source == "contact_note"
