"""The gate and the contact log together: planned on allow, reported through the outcome API."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate_service
from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import AttemptStatus, Party
from recoup.kit.errors import PermissionDenied
from recoup.models.compliance import SlotClaim
from recoup.models.contact import ContactAttempt
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def _call(session: Session, debtor, at: datetime, **extra: object) -> gate_service.CheckedContact:  # type: ignore[no-untyped-def]
    values: dict[str, object] = {"channel": Channel.CALL, "party": Party.DEBTOR, "actor": "t"}
    values.update(extra)
    return gate_service.check_contact(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        at=at,
        now=at - timedelta(minutes=5),
        **values,  # type: ignore[arg-type]
    )


def _attempt(session: Session, decision_id: int) -> ContactAttempt:
    return session.execute(
        select(ContactAttempt).where(ContactAttempt.decision_id == decision_id)
    ).scalar_one()


class TestPlannedByTheGate:
    def test_an_allowed_contact_is_a_planned_row_holding_its_slots(self, session: Session) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        debtor = make_debtor(session, institution)
        at = datetime(2025, 3, 3, 10, tzinfo=SHANGHAI)
        checked = _call(session, debtor, at, agent_user_id=None, actor=agent.username)
        attempt = _attempt(session, checked.record.id)
        assert (attempt.status, attempt.direction, attempt.effective) == (
            AttemptStatus.PLANNED,
            "outbound",
            True,
        )
        assert attempt.expires_at is not None
        claims = session.scalar(
            select(func.count()).select_from(SlotClaim).where(SlotClaim.attempt_id == attempt.id)
        )
        assert claims == 1

    def test_an_expired_attempt_keeps_its_slot_and_cannot_be_acted_on(
        self, session: Session
    ) -> None:
        debtor = make_debtor(session, make_institution(session))
        first = [
            _call(session, debtor, datetime(2025, 3, 3, hour, tzinfo=SHANGHAI))
            for hour in (9, 10, 11)
        ]
        contact_service.expire_attempts(session, now=datetime(2025, 3, 3, 20, tzinfo=SHANGHAI))
        assert _attempt(session, first[0].record.id).status == AttemptStatus.EXPIRED
        fourth = _call(session, debtor, datetime(2025, 3, 3, 15, tzinfo=SHANGHAI))
        assert fourth.decision.rule_ids == ("CN-FREQ-V",)
        with pytest.raises(PermissionDenied, match="expired"):
            gate_service.require_allowed_decision(
                session,
                institution_id=debtor.institution_id,
                decision_id=first[0].record.id,
                debtor_id=debtor.id,
                channel=Channel.CALL,
                now=datetime(2025, 3, 3, 20, tzinfo=SHANGHAI),
            )

    def test_a_conversation_code_starts_the_us_seven_day_cooldown(self, session: Session) -> None:
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        debtor = make_debtor(session, institution, national_id=None)
        account = make_account(session, debtor)
        first = _call(
            session, debtor, datetime(2026, 3, 2, 10, tzinfo=NEW_YORK), account_id=account.id
        )
        gate_service.record_outcome(
            session,
            institution_id=institution.id,
            decision_id=first.record.id,
            outcome="promise_made",
            happened_at=datetime(2026, 3, 2, 10, tzinfo=NEW_YORK),
        )
        later = _call(
            session, debtor, datetime(2026, 3, 5, 10, tzinfo=NEW_YORK), account_id=account.id
        )
        assert later.decision.rule_ids == ("US-7IN7",)


class TestOutcomeApi:
    def test_older_names_still_record_and_read_back_as_codes(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        debtor = make_debtor(session, institution)
        checked = _call(session, debtor, datetime(2025, 3, 3, 10, tzinfo=SHANGHAI))
        session.flush()
        with client_for(session) as client:
            answer = client.post(
                f"/api/v1/compliance/decisions/{checked.record.id}/outcome",
                json={
                    "outcome": "conversation",
                    "effective": True,
                    "happened_at": "2025-03-03T10:01:00+08:00",
                },
                headers=bearer(manager),
            )
            assert answer.status_code == 200, answer.text
            log = client.get(f"/api/v1/debtors/{debtor.id}/contacts", headers=bearer(manager))
            (row,) = log.json()["items"]
            assert (row["status"], row["outcome"], row["meaning"]["right_party"]) == (
                "made",
                "right_party",
                True,
            )
            assert row["decision_id"] == checked.record.id

    def test_a_code_that_counts_cannot_be_uncounted(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        debtor = make_debtor(session, institution)
        checked = _call(session, debtor, datetime(2025, 3, 3, 10, tzinfo=SHANGHAI))
        session.flush()
        with client_for(session) as client:
            refused = client.post(
                f"/api/v1/compliance/decisions/{checked.record.id}/outcome",
                json={
                    "outcome": "right_party",
                    "effective": False,
                    "happened_at": "2025-03-03T10:01:00+08:00",
                },
                headers=bearer(manager),
            )
            assert "effective call" in str(assert_problem(refused, 422)["detail"])
            unknown = client.post(
                f"/api/v1/compliance/decisions/{checked.record.id}/outcome",
                json={"outcome": "answered", "happened_at": "2025-03-03T10:01:00+08:00"},
                headers=bearer(manager),
            )
            assert_problem(unknown, 422)

    def test_the_gate_is_not_asked_about_the_self_service_page(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        debtor = make_debtor(session, institution)
        session.flush()
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": debtor.id, "channel": "web", "at": "2025-03-03T10:00:00+08:00"},
                headers=bearer(manager),
            )
            assert "not a channel contacts are made on" in answer.text
            assert_problem(answer, 422)
