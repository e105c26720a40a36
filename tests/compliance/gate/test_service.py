"""The stored gate on a real database: decisions, reservations, slot claims, the log."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.compliance.certifications import service as certifications_service
from recoup.compliance.gate import service as gate_service
from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import ConsentKind, OutcomeCode, Party
from recoup.kit.errors import NotFound, PermissionDenied, ValidationFailed
from recoup.models.compliance import (
    ContactDecision,
    ContactWindow,
    SlotClaim,
    WindowKind,
)
from recoup.models.contact import ContactAttempt
from tests.compliance.gate.checks import NOW, check, local
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import make_user


class TestStoredGate:
    def test_allowed_decision_is_stored_and_reserves_its_slots(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        checked = check(session, debtor, local(2025, 3, 3, 10))
        assert checked.decision.allowed
        record = session.get(ContactDecision, checked.record.id)
        assert record is not None
        assert (record.pack_code, record.policy_name) == ("CN", "CN consumer finance")
        reservation = session.execute(
            select(ContactAttempt).where(ContactAttempt.decision_id == record.id)
        ).scalar_one()
        claims = (
            session.execute(
                select(SlotClaim.slot_key).where(SlotClaim.attempt_id == reservation.id)
            )
            .scalars()
            .all()
        )
        assert len(claims) == 1
        assert claims[0].startswith("CN-FREQ-V/effective/")

    def test_blocked_decision_is_stored_with_reasons(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        checked = check(session, debtor, local(2025, 3, 3, 21, 0))
        assert not checked.decision.allowed
        record = session.get(ContactDecision, checked.record.id)
        assert record.rule_ids == ["CN-HRS"]
        assert "21:00" in record.reasons[0]["message_en"]
        assert record.next_allowed_at is not None
        assert record.inputs["facts"]["timezones"] == ["Asia/Shanghai"]

    def test_fourth_call_of_the_day_is_blocked_across_accounts(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        card = make_account(session, debtor)
        loan = make_account(session, debtor)
        results = [
            check(
                session, debtor, local(2025, 3, 3, 9 + n), account_id=(card if n % 2 else loan).id
            )
            for n in range(4)
        ]
        assert [r.decision.allowed for r in results] == [True, True, True, False]
        assert results[3].decision.rule_ids == ("CN-FREQ-V",)

    def test_unanswered_call_frees_its_effective_slot(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        first = [check(session, debtor, local(2025, 3, 3, 9 + n)) for n in range(3)]
        gate_service.record_outcome(
            session,
            institution_id=debtor.institution_id,
            decision_id=first[0].record.id,
            outcome=OutcomeCode.NO_ANSWER,
            effective=False,
            happened_at=local(2025, 3, 3, 9, 1),
        )
        assert check(session, debtor, local(2025, 3, 3, 15)).decision.allowed

    def test_expired_reservations_keep_their_slots(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        for n in range(3):
            assert check(session, debtor, local(2025, 3, 3, 9 + n)).decision.allowed
        later = gate_service.check_contact(
            session,
            institution_id=debtor.institution_id,
            debtor_id=debtor.id,
            channel=Channel.CALL,
            party=Party.DEBTOR,
            at=local(2025, 3, 3, 18),
            actor="tester",
            now=local(2025, 3, 3, 17),
        )
        assert later.decision.rule_ids == ("CN-FREQ-V",)

    def test_debtor_flags_and_contact_point_opt_out(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        phone = make_contact_point(session, debtor)
        contact_service.record_consent(
            session,
            contact_point=phone,
            channel=Channel.SMS,
            kind=ConsentKind.OPT_OUT,
            actor="tester",
            source="reply TD",
        )
        sms = check(
            session, debtor, local(2025, 3, 3, 10), channel=Channel.SMS, contact_point_id=phone.id
        )
        assert sms.decision.rule_ids == ("CN-STOP",)
        debtor.deceased = True
        session.flush()
        call = check(session, debtor, local(2025, 3, 3, 10))
        assert call.decision.rule_ids == ("CN-STOP",)
        assert call.decision.next_allowed_at is None

    def test_agreed_window_from_the_database(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session, preset="commercial_bank"))
        session.add(
            ContactWindow(
                institution_id=debtor.institution_id,
                debtor_id=debtor.id,
                kind=WindowKind.agreed,
                start_minute=22 * 60,
                end_minute=23 * 60,
            )
        )
        session.flush()
        assert check(session, debtor, local(2025, 3, 3, 22, 30)).decision.allowed

    def test_third_party_needs_evidence_then_is_allowed(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        mother = make_contact_point(session, debtor, value="13900000000", relation="relative")
        blocked = check(
            session,
            debtor,
            local(2025, 3, 6, 10),
            party=Party.THIRD_PARTY,
            contact_point_id=mother.id,
        )
        assert blocked.decision.rule_ids == ("CN-TGT",)
        for day in range(3):
            attempt = check(session, debtor, local(2025, 3, 3 + day, 9))
            gate_service.record_outcome(
                session,
                institution_id=debtor.institution_id,
                decision_id=attempt.record.id,
                outcome=OutcomeCode.NO_ANSWER,
                effective=False,
                happened_at=local(2025, 3, 3 + day, 9),
            )
        allowed = check(
            session,
            debtor,
            local(2025, 3, 6, 10),
            party=Party.THIRD_PARTY,
            contact_point_id=mother.id,
        )
        assert allowed.decision.allowed

    def test_party_must_match_the_contact_point(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        mother = make_contact_point(session, debtor, value="13900000000", relation="relative")
        with pytest.raises(ValidationFailed, match="third_party"):
            check(session, debtor, local(2025, 3, 3, 10), contact_point_id=mother.id)

    def test_another_tenants_debtor_is_not_found(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        other = make_institution(session)
        with pytest.raises(NotFound):
            gate_service.check_contact(
                session,
                institution_id=other.id,
                debtor_id=debtor.id,
                channel=Channel.CALL,
                party=Party.DEBTOR,
                at=local(2025, 3, 3, 10),
                actor="x",
            )

    def test_agent_without_certificate_is_blocked(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        agent = make_user(session, institution, role="agent")
        blocked = check(session, debtor, local(2025, 3, 3, 10), agent_user_id=agent.id)
        assert blocked.decision.rule_ids == ("POL-CERT",)
        certifications_service.grant_certification(
            session,
            institution_id=institution.id,
            user_id=agent.id,
            course="催收合规 2025",
            issued_on=date(2025, 1, 1),
            expires_on=date(2026, 1, 1),
            actor="officer",
        )
        assert check(
            session, debtor, local(2025, 3, 3, 10), agent_user_id=agent.id
        ).decision.allowed

    def test_channels_need_a_live_allowed_decision(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        allowed = check(session, debtor, local(2025, 3, 3, 10))
        blocked = check(session, debtor, local(2025, 3, 3, 23))
        kwargs = {"institution_id": debtor.institution_id, "debtor_id": debtor.id}
        with pytest.raises(PermissionDenied, match="without a compliance decision"):
            gate_service.require_allowed_decision(
                session, decision_id=None, channel=Channel.CALL, **kwargs
            )
        with pytest.raises(PermissionDenied, match="did not allow"):
            gate_service.require_allowed_decision(
                session, decision_id=blocked.record.id, channel=Channel.CALL, now=NOW, **kwargs
            )
        with pytest.raises(PermissionDenied, match="another debtor or channel"):
            gate_service.require_allowed_decision(
                session, decision_id=allowed.record.id, channel=Channel.SMS, now=NOW, **kwargs
            )
        assert gate_service.require_allowed_decision(
            session, decision_id=allowed.record.id, channel=Channel.CALL, now=NOW, **kwargs
        )
        with pytest.raises(PermissionDenied, match="expired"):
            gate_service.require_allowed_decision(
                session,
                decision_id=allowed.record.id,
                channel=Channel.CALL,
                now=local(2025, 3, 4, 10),
                **kwargs,
            )


def test_decisions_are_counted(session: Session) -> None:
    debtor = make_debtor(session, make_institution(session))
    check(session, debtor, local(2025, 3, 3, 10))
    check(session, debtor, local(2025, 3, 3, 23))
    total = session.execute(
        select(func.count(ContactDecision.id)).where(
            ContactDecision.institution_id == debtor.institution_id
        )
    ).scalar_one()
    assert total == 2
    assert timedelta(0) == timedelta(0)
