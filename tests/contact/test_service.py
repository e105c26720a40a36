"""The contact log on a real database: inbound contacts, expiry, consents, the read surface."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.contact import service
from recoup.contact.channels import Channel
from recoup.contact.rules import AttemptStatus, ConsentKind, OutcomeCode, Party
from recoup.identity.scoping import institution_scope
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.pagination import PageRequest
from recoup.models.audit import AuditEvent
from recoup.models.compliance import ContactDecision
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import Debtor
from tests.factories import (
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

NOON = datetime(2025, 3, 3, 4, tzinfo=UTC)


def _decision(session: Session, debtor: Debtor) -> ContactDecision:
    """A stored allowed decision, as the gate writes one."""
    decision = ContactDecision(
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        channel="call",
        party="debtor",
        planned_at=NOON,
        allowed=True,
        rule_ids=[],
        reasons=[],
        timezones=[],
        inputs={},
        pack_code="CN",
        pack_version="1",
        policy_name="p",
        policy_version="1",
        actor="tester",
    )
    session.add(decision)
    session.flush()
    return decision


def _planned(session: Session, debtor: Debtor, *, expires_at: datetime) -> ContactAttempt:
    return service.plan_attempt(
        session,
        institution_id=debtor.institution_id,
        decision_id=_decision(session, debtor).id,
        debtor_id=debtor.id,
        channel=Channel.CALL,
        party=Party.DEBTOR,
        planned_at=NOON,
        expires_at=expires_at,
        actor="dialer",
    )


class TestReports:
    def test_a_made_call_keeps_its_times_and_what_the_code_means(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        attempt = _planned(session, debtor, expires_at=NOON + timedelta(hours=2))
        assert attempt.decision_id is not None
        reported = service.report_attempt(
            session,
            institution_id=debtor.institution_id,
            decision_id=attempt.decision_id,
            outcome="promise_made",
            happened_at=NOON + timedelta(minutes=1),
            ended_at=NOON + timedelta(minutes=4),
            duration_seconds=180,
            actor="agent7",
        )
        assert (reported.status, reported.outcome, reported.effective) == (
            AttemptStatus.MADE,
            "promise_made",
            True,
        )
        assert reported.duration_seconds == 180
        assert reported.actor == "agent7"

    def test_a_late_report_still_lands_on_an_expired_attempt(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        attempt = _planned(session, debtor, expires_at=NOON + timedelta(hours=2))
        assert service.expire_attempts(session, now=NOON + timedelta(hours=3)) >= 1
        session.refresh(attempt)
        assert attempt.status == AttemptStatus.EXPIRED
        assert attempt.decision_id is not None
        service.report_attempt(
            session,
            institution_id=debtor.institution_id,
            decision_id=attempt.decision_id,
            outcome="no_answer",
            happened_at=NOON,
        )
        assert (attempt.status, attempt.effective) == (AttemptStatus.MADE, False)

    def test_only_a_planned_or_expired_attempt_takes_a_report(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        attempt = _planned(session, debtor, expires_at=NOON + timedelta(hours=2))
        assert attempt.decision_id is not None
        service.report_attempt(
            session,
            institution_id=debtor.institution_id,
            decision_id=attempt.decision_id,
            outcome="not_made",
            happened_at=NOON,
        )
        assert attempt.status == AttemptStatus.CANCELLED
        with pytest.raises(Exception, match="already cancelled"):
            service.report_attempt(
                session,
                institution_id=debtor.institution_id,
                decision_id=attempt.decision_id,
                outcome="busy",
                happened_at=NOON,
            )

    def test_an_outcome_the_channel_cannot_have_is_refused(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        attempt = _planned(session, debtor, expires_at=NOON + timedelta(hours=2))
        assert attempt.decision_id is not None
        with pytest.raises(ValidationFailed, match="does not describe a call"):
            service.report_attempt(
                session,
                institution_id=debtor.institution_id,
                decision_id=attempt.decision_id,
                outcome="message_bounced",
                happened_at=NOON,
            )


class TestInbound:
    def test_an_inbound_call_is_logged_made_without_a_decision(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        phone = make_contact_point(session, debtor)
        account = make_account(session, debtor)
        attempt, contact_point, account_external_id, _ = service.log_inbound(
            session,
            institution_id=institution.id,
            debtor_id=debtor.id,
            channel=Channel.CALL,
            started_at=NOON,
            actor="agent7",
            outcome=OutcomeCode.PROMISE_MADE,
            contact_point_id=phone.id,
            account_id=account.id,
        )
        assert (attempt.direction, attempt.status, attempt.decision_id) == (
            "inbound",
            AttemptStatus.MADE,
            None,
        )
        assert contact_point is phone
        assert account_external_id == account.external_id
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.institution_id == institution.id)
        ).all()
        assert "contact.inbound" in actions

    def test_another_debtor_s_contact_point_is_not_found(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        other = make_contact_point(session, make_debtor(session, institution))
        with pytest.raises(NotFound):
            service.log_inbound(
                session,
                institution_id=institution.id,
                debtor_id=debtor.id,
                channel=Channel.SMS,
                started_at=NOON,
                actor="gateway",
                contact_point_id=other.id,
            )

    def test_the_self_service_page_logs_a_visit(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        attempt, *_ = service.log_inbound(
            session,
            institution_id=institution.id,
            debtor_id=debtor.id,
            channel=Channel.WEB,
            started_at=NOON,
            actor="portal",
            outcome=OutcomeCode.PROMISE_MADE,
        )
        page = service.contact_log(
            session,
            principal=institution_scope(institution.id),
            debtor_id=debtor.id,
            page=PageRequest(1, 10),
        )
        assert [row[0].id for row in page.items] == [attempt.id]


class TestConsents:
    def test_record_and_withdraw(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        phone = make_contact_point(session, debtor)
        service.record_consent(
            session,
            contact_point=phone,
            channel=Channel.SMS,
            kind=ConsentKind.OPT_OUT,
            actor="agent7",
            source="reply STOP",
            recorded_at=NOON,
        )
        service.record_consent(
            session,
            contact_point=phone,
            channel=Channel.AI_CALL,
            kind=ConsentKind.CONSENT,
            actor="agent7",
            source="loan_agreement",
        )
        standing = service.standing(session, contact_point=phone)
        assert standing.opted_out == {Channel.SMS}
        assert standing.consented == {Channel.AI_CALL}
        service.withdraw_consent(
            session, contact_point=phone, channel=Channel.SMS, kind=ConsentKind.OPT_OUT, actor="x"
        )
        assert service.standing(session, contact_point=phone).opted_out == frozenset()
        with pytest.raises(ValidationFailed, match="needs no consent"):
            service.record_consent(
                session,
                contact_point=phone,
                channel=Channel.LETTER,
                kind=ConsentKind.CONSENT,
                actor="x",
            )


class TestContactLogApi:
    def test_paged_masked_and_scoped_to_the_agent_s_cases(self, session: Session) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        debtor = make_debtor(session, institution)
        phone = make_contact_point(session, debtor, value="13812345678")
        mine = make_account(session, debtor)
        give_to_agent(session, mine, agent.id)
        theirs = make_account(session, debtor)
        for account in (mine, theirs, None):
            service.log_inbound(
                session,
                institution_id=institution.id,
                debtor_id=debtor.id,
                channel=Channel.CALL,
                started_at=NOON,
                actor="system",
                outcome=OutcomeCode.RIGHT_PARTY,
                contact_point_id=phone.id,
                account_id=account.id if account else None,
            )
        session.flush()
        manager = make_user(session, institution, role="manager")
        outsider = make_user(session, make_institution(session), role="manager")
        with client_for(session) as client:
            everything = client.get(
                f"/api/v1/debtors/{debtor.id}/contacts?size=2", headers=bearer(manager)
            )
            assert everything.status_code == 200, everything.text
            body = everything.json()
            assert (body["total"], body["pages"], len(body["items"])) == (3, 2, 2)
            item = body["items"][0]
            assert item["contact_point"] == "138****5678"
            assert item["meaning"]["right_party"] is True
            assert item["direction"] == "inbound"
            # An agent sees the contacts of their own account and those about the debtor.
            own = client.get(f"/api/v1/debtors/{debtor.id}/contacts", headers=bearer(agent))
            assert {row["account_id"] for row in own.json()["items"]} == {mine.id, None}
            assert_problem(
                client.get(f"/api/v1/debtors/{debtor.id}/contacts", headers=bearer(outsider)),
                404,
            )

    def test_an_inbound_contact_is_logged_through_the_api(self, session: Session) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        debtor = make_debtor(session, institution)
        account = make_account(session, debtor)
        give_to_agent(session, account, agent.id)
        session.flush()
        with client_for(session) as client:
            created = client.post(
                f"/api/v1/debtors/{debtor.id}/contacts",
                json={
                    "channel": "call",
                    "started_at": "2025-03-03T12:00:00+08:00",
                    "outcome": "callback_requested",
                    "account_id": account.id,
                },
                headers=bearer(agent),
            )
            assert created.status_code == 201, created.text
            assert created.json()["agent"] == agent.username
            assert created.json()["account_external_id"] == account.external_id
            refused = client.post(
                f"/api/v1/debtors/{debtor.id}/contacts",
                json={
                    "channel": "letter",
                    "started_at": "2025-03-03T12:00:00+08:00",
                    "outcome": "busy",
                },
                headers=bearer(agent),
            )
            assert_problem(refused, 422)
