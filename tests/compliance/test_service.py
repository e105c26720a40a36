"""The stored gate, reservations, policies, templates, violations and certificates on a real DB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.compliance import service
from recoup.compliance.enums import Channel, Outcome, Party
from recoup.kit.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recoup.models.compliance import (
    ContactDecision,
    ContactReservation,
    ContactWindow,
    SlotClaim,
    TemplateStatus,
    WindowKind,
)
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import make_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def check(session: Session, debtor, at: datetime, **extra: object) -> service.CheckedContact:
    values: dict[str, object] = {"channel": Channel.CALL, "party": Party.DEBTOR, "actor": "tester"}
    values.update(extra)
    return service.check_contact(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        at=at,
        now=NOW,
        **values,  # type: ignore[arg-type]
    )


class TestStoredGate:
    def test_allowed_decision_is_stored_and_reserves_its_slots(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        checked = check(session, debtor, local(2025, 3, 3, 10))
        assert checked.decision.allowed
        record = session.get(ContactDecision, checked.record.id)
        assert record is not None
        assert (record.pack_code, record.policy_name) == ("CN", "CN consumer finance")
        reservation = session.execute(
            select(ContactReservation).where(ContactReservation.decision_id == record.id)
        ).scalar_one()
        claims = (
            session.execute(
                select(SlotClaim.slot_key).where(SlotClaim.reservation_id == reservation.id)
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
        service.record_outcome(
            session,
            institution_id=debtor.institution_id,
            decision_id=first[0].record.id,
            outcome=Outcome.NO_ANSWER,
            effective=False,
            happened_at=local(2025, 3, 3, 9, 1),
        )
        assert check(session, debtor, local(2025, 3, 3, 15)).decision.allowed

    def test_expired_reservations_keep_their_slots(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        for n in range(3):
            assert check(session, debtor, local(2025, 3, 3, 9 + n)).decision.allowed
        later = service.check_contact(
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
        phone.opt_out_sms = True
        session.flush()
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
            service.record_outcome(
                session,
                institution_id=debtor.institution_id,
                decision_id=attempt.record.id,
                outcome=Outcome.NO_ANSWER,
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
            service.check_contact(
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
        service.grant_certification(
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
            service.require_allowed_decision(
                session, decision_id=None, channel=Channel.CALL, **kwargs
            )
        with pytest.raises(PermissionDenied, match="did not allow"):
            service.require_allowed_decision(
                session, decision_id=blocked.record.id, channel=Channel.CALL, now=NOW, **kwargs
            )
        with pytest.raises(PermissionDenied, match="another debtor or channel"):
            service.require_allowed_decision(
                session, decision_id=allowed.record.id, channel=Channel.SMS, now=NOW, **kwargs
            )
        assert service.require_allowed_decision(
            session, decision_id=allowed.record.id, channel=Channel.CALL, now=NOW, **kwargs
        )
        with pytest.raises(PermissionDenied, match="expired"):
            service.require_allowed_decision(
                session,
                decision_id=allowed.record.id,
                channel=Channel.CALL,
                now=local(2025, 3, 4, 10),
                **kwargs,
            )


class TestPolicies:
    def test_looser_policy_is_refused_naming_the_rule(self, session: Session) -> None:
        institution = make_institution(session)
        document = {"hours": [{"channels": ["call"], "start": "08:00", "end": "22:30"}]}
        with pytest.raises(ValidationFailed, match="CN-HRS") as raised:
            service.propose_policy(
                session, institution_id=institution.id, document=document, actor="officer"
            )
        assert raised.value.extra["violations"][0]["rule_id"] == "CN-HRS"

    def test_approved_policy_is_in_force_and_four_eyes(self, session: Session) -> None:
        institution = make_institution(session, preset="commercial_bank")
        debtor = make_debtor(session, institution)
        document = {
            "name": "Evenings off",
            "hours": [{"channels": ["call"], "start": "09:00", "end": "20:00"}],
        }
        row = service.propose_policy(
            session, institution_id=institution.id, document=document, actor="alice"
        )
        assert check(session, debtor, local(2025, 3, 3, 20, 30)).decision.allowed
        with pytest.raises(PermissionDenied):
            service.approve_policy(
                session, institution_id=institution.id, version=row.version, actor="alice"
            )
        service.approve_policy(
            session, institution_id=institution.id, version=row.version, actor="bob"
        )
        decision = check(session, debtor, local(2025, 3, 3, 20, 30)).decision
        assert decision.rule_ids == ("CN-HRS",)
        assert decision.policy_name == "Evenings off"

    def test_unknown_policy_field(self, session: Session) -> None:
        institution = make_institution(session)
        with pytest.raises(ValidationFailed, match="unknown policy fields"):
            service.propose_policy(
                session, institution_id=institution.id, document={"quiet": 1}, actor="a"
            )


GOOD_SMS = "{{ debtor_name }}您好，您的账单已到期，请于{{ due_date }}前还款。"


class TestTemplates:
    def _template(self, session: Session, institution, author, body: str = GOOD_SMS):
        return service.create_template(
            session,
            institution_id=institution.id,
            name="reminder",
            channel="sms",
            locale="zh-CN",
            audience="debtor",
            body=body,
            author=author.username,
            author_id=author.id,
        )

    def test_four_eyes_workflow(self, session: Session) -> None:
        institution = make_institution(session)
        author = make_user(session, institution, role="compliance_officer")
        reviewer = make_user(session, institution, role="compliance_officer")
        template = self._template(session, institution, author)
        with pytest.raises(PermissionDenied, match="not approved"):
            service.render_approved_template(
                session, institution_id=institution.id, template_id=template.id, values={}
            )
        service.submit_template(
            session, institution_id=institution.id, template_id=template.id,
            actor=author.username, actor_id=author.id,
        )  # fmt: skip
        with pytest.raises(Conflict, match="author cannot review"):
            service.decide_template(
                session, institution_id=institution.id, template_id=template.id, approve=True,
                actor=author.username, actor_id=author.id,
            )  # fmt: skip
        approved = service.decide_template(
            session, institution_id=institution.id, template_id=template.id, approve=True,
            actor=reviewer.username, actor_id=reviewer.id, today=date(2025, 3, 3),
        )  # fmt: skip
        assert approved.status == TemplateStatus.approved
        assert approved.re_review_on == date(2026, 3, 3)
        text = service.render_approved_template(
            session,
            institution_id=institution.id,
            template_id=template.id,
            values={"debtor_name": "张先生", "due_date": "3月10日"},
            today=date(2025, 3, 3),
        )
        assert text.startswith("张先生您好")
        with pytest.raises(PermissionDenied, match="re-review"):
            service.render_approved_template(
                session, institution_id=institution.id, template_id=template.id,
                values={"debtor_name": "x", "due_date": "y"}, today=date(2026, 3, 4),
            )  # fmt: skip

    def test_template_with_findings_cannot_be_approved(self, session: Session) -> None:
        institution = make_institution(session)
        author = make_user(session, institution, role="manager")
        reviewer = make_user(session, institution, role="compliance_officer")
        template = self._template(session, institution, author, body="再不还钱就让你坐牢")
        submitted = service.submit_template(
            session, institution_id=institution.id, template_id=template.id,
            actor=author.username, actor_id=author.id,
        )  # fmt: skip
        assert submitted.findings[0]["rule_id"] == "CN-LANG"
        with pytest.raises(Conflict, match="findings"):
            service.decide_template(
                session, institution_id=institution.id, template_id=template.id, approve=True,
                actor=reviewer.username, actor_id=reviewer.id,
            )  # fmt: skip
        rejected = service.decide_template(
            session, institution_id=institution.id, template_id=template.id, approve=False,
            actor=reviewer.username, actor_id=reviewer.id, note="威胁用语",
        )  # fmt: skip
        assert rejected.status == TemplateStatus.rejected

    def test_sandbox_refuses_unsafe_templates(self, session: Session) -> None:
        institution = make_institution(session)
        author = make_user(session, institution, role="manager")
        reviewer = make_user(session, institution, role="compliance_officer")
        body = "{{ debtor_name.__class__.__mro__ }}"
        template = self._template(session, institution, author, body=body)
        service.submit_template(
            session, institution_id=institution.id, template_id=template.id,
            actor=author.username, actor_id=author.id,
        )  # fmt: skip
        service.decide_template(
            session, institution_id=institution.id, template_id=template.id, approve=True,
            actor=reviewer.username, actor_id=reviewer.id, today=date(2025, 3, 3),
        )  # fmt: skip
        with pytest.raises(ValidationFailed, match="unsafe"):
            service.render_approved_template(
                session, institution_id=institution.id, template_id=template.id,
                values={"debtor_name": "x"}, today=date(2025, 3, 3),
            )  # fmt: skip


class TestViolationsAndCertificates:
    def test_note_scan_queues_violations(self, session: Session) -> None:
        institution = make_institution(session)
        rows = service.scan_for_violations(
            session,
            institution_id=institution.id,
            text="客户说没钱，我告诉他不还钱就后果自负",
            locale="zh-CN",
            source="call_note",
            source_id="n1",
            debtor_id=None,
            actor="agent7",
        )
        assert [(r.category, r.rule_id) for r in rows] == [("threat", "CN-LANG")]
        resolved = service.resolve_violation(
            session, institution_id=institution.id, violation_id=rows[0].id, confirmed=True,
            actor="officer",
        )  # fmt: skip
        assert resolved.status == "confirmed"
        with pytest.raises(Conflict):
            service.resolve_violation(
                session, institution_id=institution.id, violation_id=rows[0].id, confirmed=False,
                actor="officer",
            )  # fmt: skip

    def test_expiring_certificates(self, session: Session) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        service.grant_certification(
            session, institution_id=institution.id, user_id=agent.id, course="c",
            issued_on=date(2025, 1, 1), expires_on=date(2025, 3, 20), actor="officer",
        )  # fmt: skip
        soon = service.expiring_certifications(
            session, institution_id=institution.id, on=date(2025, 3, 3)
        )
        assert [c.user_id for c in soon] == [agent.id]
        assert service.is_certified(
            session, institution_id=institution.id, user_id=agent.id, on=date(2025, 3, 3)
        )
        assert not service.is_certified(
            session, institution_id=institution.id, user_id=agent.id, on=date(2025, 3, 21)
        )
        with pytest.raises(ValidationFailed):
            service.grant_certification(
                session, institution_id=institution.id, user_id=agent.id, course="c",
                issued_on=date(2025, 1, 1), expires_on=date(2024, 1, 1), actor="officer",
            )  # fmt: skip


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
