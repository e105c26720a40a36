"""Facts from the contact log and the outbox in segments and exits: failed attempts and
unanswered messages ("digital only until they ignore it")."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate_service
from recoup.compliance.gate.rules import PlannedContact
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.kit import clock
from recoup.kit.clock import utcnow
from recoup.models.cases import Case
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import Debtor
from recoup.models.institution import Institution
from recoup.models.outbox import OutboxMessage
from recoup.models.strategy import CaseStrategyState
from recoup.strategy import service
from recoup.strategy.presets import preset_text
from tests.factories import make_contact_point, make_institution
from tests.outbox.helpers import approved_template
from tests.strategy.test_service import NOW, approve_preset_templates, open_case


def _segments(session: Session, institution: Institution) -> dict[str, int]:
    check = service.check_document(
        session, institution=institution, document=preset_text("consumer_finance")
    )
    assert check.preview is not None
    return {item.code: item.assigned for item in check.preview.segments if item.assigned}


def _young_case(session: Session, institution: Institution) -> Case:
    case = open_case(session, institution, principal=500_000)
    debtor = session.get(Debtor, case.debtor_id)
    assert debtor is not None
    debtor.birth_date = clock.local_today(institution.timezone) - timedelta(days=365 * 24)
    session.flush()
    return case


def _sent_messages(
    session: Session, institution: Institution, case: Case, *, count: int, at: datetime
) -> None:
    """``count`` SMS the provider took, to the case's debtor, from ``at`` an hour apart."""
    point = make_contact_point(session, session.get(Debtor, case.debtor_id))  # type: ignore[arg-type]
    template = approved_template(session, institution)
    decided = gate_service.precheck_contacts(
        session,
        institution=institution,
        attempts=[
            PlannedContact(
                debtor_id=str(case.debtor_id),
                channel=Channel.SMS,
                at=at + timedelta(hours=number),
                party=Party.DEBTOR,
                automated=True,
            )
            for number in range(count)
        ],
        actor="test",
    )
    for number, answer in enumerate(decided):
        sent = at + timedelta(hours=number)
        session.add(
            OutboxMessage(
                institution_id=institution.id,
                debtor_id=case.debtor_id,
                contact_point_id=point.id,
                channel="sms",
                decision_id=answer.decision_id,
                template_id=template.id,
                template_version="v",
                body="提醒",
                idempotency_key=f"test-{case.id}-{sent.timestamp():.0f}",
                status="sent",
                scheduled_at=sent,
                expires_at=sent + timedelta(days=2),
                sent_at=sent,
                actor="test",
            )
        )
    session.flush()


def _attempt(
    session: Session, case: Case, *, outcome: str, at: datetime, inbound: bool = False
) -> None:
    session.add(
        ContactAttempt(
            institution_id=case.institution_id,
            debtor_id=case.debtor_id,
            channel="call",
            party="debtor",
            direction="inbound" if inbound else "outbound",
            status="made",
            outcome=outcome,
            started_at=at,
            effective=False,
            actor="test",
        )
    )
    session.flush()


def test_young_debtors_stay_digital_until_they_ignore_four_messages(session: Session) -> None:
    institution = make_institution(session)
    case = _young_case(session, institution)
    assert _segments(session, institution) == {"young_digital": 1}

    week_ago = utcnow() - timedelta(days=7)
    _sent_messages(session, institution, case, count=3, at=week_ago)
    assert _segments(session, institution) == {"young_digital": 1}
    _sent_messages(session, institution, case, count=1, at=week_ago + timedelta(days=1))
    # Four unanswered: digital has not worked, an agent's segment takes the debtor.
    assert _segments(session, institution) == {"standard": 1}

    # The debtor calls in: the messages before it are answered.
    _attempt(session, case, outcome="right_party", at=week_ago + timedelta(days=2), inbound=True)
    assert _segments(session, institution) == {"young_digital": 1}


def test_a_payment_answers_the_messages_before_it(session: Session) -> None:
    institution = make_institution(session)
    case = _young_case(session, institution)
    _sent_messages(session, institution, case, count=4, at=utcnow() - timedelta(days=7))
    assert _segments(session, institution) == {"standard": 1}
    from recoup.models.account import Account
    from recoup.models.cases import CaseAccount
    from tests.workbench.helpers import add_payment

    account_id = session.execute(
        select(CaseAccount.account_id).where(CaseAccount.case_id == case.id)
    ).scalar_one()
    add_payment(session, session.get(Account, account_id), amount=1_000, paid_at=utcnow())  # type: ignore[arg-type]
    assert _segments(session, institution) == {"young_digital": 1}


def test_six_failed_attempts_on_the_path_send_a_case_to_skip_trace(session: Session) -> None:
    institution = make_institution(session)
    approve_preset_templates(session, institution)
    strategy, _ = service.create_strategy(
        session, institution=institution, code="cf", name="CF", actor="m"
    )
    service.activate(session, institution=institution, strategy=strategy, number=1, actor="m")
    case = open_case(session, institution, principal=5_000_000)
    today = clock.local_today(institution.timezone)

    def step() -> str | None:
        service.assign_cases(session, institution=institution, as_of=today, now=utcnow())
        return session.execute(
            select(CaseStrategyState.step).where(CaseStrategyState.case_id == case.id)
        ).scalar_one()

    assert step() == "agent_call"
    # On the path since yesterday (the day of an attempt is read in UTC, the path's locally).
    state = session.execute(
        select(CaseStrategyState).where(CaseStrategyState.case_id == case.id)
    ).scalar_one()
    state.entered_on = today - timedelta(days=1)
    session.flush()
    assert step() == "agent_call"
    moment = utcnow() - timedelta(minutes=10)
    for number in range(5):
        _attempt(session, case, outcome="no_answer", at=moment + timedelta(seconds=number))
    # A conversation is no failed attempt, and neither is an attempt before the path began.
    _attempt(session, case, outcome="right_party", at=moment)
    _attempt(session, case, outcome="no_answer", at=moment - timedelta(days=30))
    assert step() == "agent_call"
    _attempt(session, case, outcome="no_answer", at=moment + timedelta(seconds=9))
    assert step() == "exit_2_skip_trace"


def test_contact_facts_are_read_only_when_a_strategy_reads_them(session: Session) -> None:
    institution = make_institution(session)
    open_case(session, institution, principal=500_000)
    today: date = clock.local_today(institution.timezone)
    columns = service.case_facts(
        session, institution_id=institution.id, today=today, fields={"balance"}
    )
    assert "failed_attempts" not in columns
    columns = service.case_facts(
        session,
        institution_id=institution.id,
        today=today,
        fields={"failed_attempts", "unanswered_messages"},
    )
    assert columns["failed_attempts"].tolist() == [0.0]
    assert columns["unanswered_messages"].tolist() == [0.0]
    assert NOW.tzinfo is not None
