"""Compliance facts: recorded through the API (audited, scoped) and used by the stored gate."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.facts import service as facts_service
from recoup.compliance.gate import service as gate_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.kit.clock import utcnow
from recoup.models import Account, Debtor, Institution
from recoup.models.audit import AuditEvent
from recoup.models.compliance import ContactDecision
from tests.factories import give_to_agent, make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


def us_institution(session: Session) -> Institution:
    return make_institution(session, jurisdiction="US", timezone="America/New_York", currency="USD")


def facts_events(session: Session, object_type: str, object_id: int) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent)
            .where(
                AuditEvent.action == "compliance.facts_update",
                AuditEvent.object_type == object_type,
                AuditEvent.object_id == str(object_id),
            )
            .order_by(AuditEvent.sequence)
        ).scalars()
    )


class TestDebtorFactsApi:
    def test_only_the_fields_sent_change_and_the_change_is_audited(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        debtor.attorney_represented = True
        officer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            answer = client.patch(
                f"/api/v1/debtors/{debtor.id}/compliance-facts",
                json={"cease_contact": True, "work_contact_forbidden": True},
                headers=bearer(officer),
            )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["changed"] == ["cease_contact", "work_contact_forbidden"]
        assert body["attorney_represented"] is True
        assert body["disputed"] is False
        session.refresh(debtor)
        assert (debtor.cease_contact, debtor.work_contact_forbidden) == (True, True)
        assert debtor.attorney_represented is True
        (event,) = facts_events(session, "debtor", debtor.id)
        assert event.actor == officer.username
        assert event.institution_id == institution.id
        assert event.details == {
            "changes": {
                "cease_contact": {"old": False, "new": True},
                "work_contact_forbidden": {"old": False, "new": True},
            }
        }

    def test_sending_the_stored_value_changes_nothing_and_audits_nothing(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            answer = client.patch(
                f"/api/v1/debtors/{debtor.id}/compliance-facts",
                json={"disputed": False},
                headers=bearer(manager),
            )
        assert answer.json()["changed"] == []
        assert facts_events(session, "debtor", debtor.id) == []

    def test_a_null_flag_or_an_unknown_field_is_refused_naming_it(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            null_flag = client.patch(
                f"/api/v1/debtors/{debtor.id}/compliance-facts",
                json={"cease_contact": None},
                headers=bearer(manager),
            )
            unknown = client.patch(
                f"/api/v1/debtors/{debtor.id}/compliance-facts",
                json={"hardship": True},
                headers=bearer(manager),
            )
        assert "cease_contact" in str(assert_problem(null_flag, 422)["detail"])
        assert "hardship" in str(assert_problem(unknown, 422)["detail"])

    def test_an_agent_records_facts_only_on_assigned_debtors(self, session: Session) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        mine = make_debtor(session, institution)
        give_to_agent(session, make_account(session, mine), agent.id)
        other = make_debtor(session, institution)
        make_account(session, other)
        session.flush()
        with client_for(session) as client:
            allowed = client.patch(
                f"/api/v1/debtors/{mine.id}/compliance-facts",
                json={"disputed": True},
                headers=bearer(agent),
            )
            refused = client.patch(
                f"/api/v1/debtors/{other.id}/compliance-facts",
                json={"disputed": True},
                headers=bearer(agent),
            )
        assert allowed.status_code == 200, allowed.text
        assert_problem(refused, 404)
        session.refresh(other)
        assert other.disputed is False

    def test_another_tenants_debtor_is_404_and_an_auditor_is_403(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        stranger = make_user(session, make_institution(session), role="compliance_officer")
        auditor = make_user(session, make_institution(session), role="auditor")
        with client_for(session) as client:
            foreign = client.patch(
                f"/api/v1/debtors/{debtor.id}/compliance-facts",
                json={"cease_contact": True},
                headers=bearer(stranger),
            )
            forbidden = client.patch(
                f"/api/v1/debtors/{debtor.id}/compliance-facts",
                json={"cease_contact": True},
                headers=bearer(auditor),
            )
        assert_problem(foreign, 404)
        assert_problem(forbidden, 403)
        session.refresh(debtor)
        assert debtor.cease_contact is False


class TestAccountFactsApi:
    def test_partial_update_clearing_and_audit(self, session: Session) -> None:
        institution = us_institution(session)
        account = make_account(session, make_debtor(session, institution))
        account.time_barred_on = date(2024, 1, 1)
        lead = make_user(session, institution, role="team_lead")
        path = f"/api/v1/accounts/{account.id}/compliance-facts"
        with client_for(session) as client:
            first = client.patch(
                path, json={"initial_communication_on": "2025-01-10"}, headers=bearer(lead)
            )
            second = client.patch(path, json={"time_barred_on": None}, headers=bearer(lead))
        assert first.status_code == 200, first.text
        assert first.json() == {
            "account_id": account.id,
            "initial_communication_on": "2025-01-10",
            "validation_notice_sent_on": None,
            "time_barred_on": "2024-01-01",
            "changed": ["initial_communication_on"],
        }
        assert second.json()["time_barred_on"] is None
        session.refresh(account)
        assert account.initial_communication_on == date(2025, 1, 10)
        assert account.time_barred_on is None
        events = facts_events(session, "account", account.id)
        assert [event.details["changes"] for event in events] == [
            {"initial_communication_on": {"old": None, "new": "2025-01-10"}},
            {"time_barred_on": {"old": "2024-01-01", "new": None}},
        ]

    def test_a_notice_before_the_initial_communication_is_refused(self, session: Session) -> None:
        institution = us_institution(session)
        account = make_account(session, make_debtor(session, institution))
        account.initial_communication_on = date(2025, 2, 1)
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            answer = client.patch(
                f"/api/v1/accounts/{account.id}/compliance-facts",
                json={"validation_notice_sent_on": "2025-01-31"},
                headers=bearer(manager),
            )
        problem = assert_problem(answer, 422)
        assert problem["errors"] == [
            {
                "field": "validation_notice_sent_on",
                "message": "2025-01-31 is before the initial communication on 2025-02-01; "
                "a validation notice cannot predate it",
            }
        ]
        session.refresh(account)
        assert account.validation_notice_sent_on is None

    def test_a_future_communication_date_is_refused_but_a_future_limitation_date_is_not(
        self, session: Session
    ) -> None:
        institution = us_institution(session)
        account = make_account(session, make_debtor(session, institution))
        manager = make_user(session, institution, role="manager")
        later = (utcnow() + timedelta(days=3)).date().isoformat()
        path = f"/api/v1/accounts/{account.id}/compliance-facts"
        with client_for(session) as client:
            future = client.patch(
                path, json={"initial_communication_on": later}, headers=bearer(manager)
            )
            barred_later = client.patch(
                path, json={"time_barred_on": later}, headers=bearer(manager)
            )
            not_a_date = client.patch(
                path, json={"validation_notice_sent_on": "31/01/2025"}, headers=bearer(manager)
            )
        assert "initial_communication_on" in str(assert_problem(future, 422)["detail"])
        assert barred_later.status_code == 200, barred_later.text
        assert "validation_notice_sent_on" in str(assert_problem(not_a_date, 422)["detail"])

    def test_agent_scoping_and_other_tenant(self, session: Session) -> None:
        institution = us_institution(session)
        agent = make_user(session, institution, role="agent")
        debtor = make_debtor(session, institution)
        mine = make_account(session, debtor)
        give_to_agent(session, mine, agent.id)
        theirs = make_account(session, debtor)
        stranger = make_user(session, make_institution(session), role="manager")
        session.flush()
        body = {"initial_communication_on": "2025-01-02"}
        with client_for(session) as client:
            allowed = client.patch(
                f"/api/v1/accounts/{mine.id}/compliance-facts", json=body, headers=bearer(agent)
            )
            unassigned = client.patch(
                f"/api/v1/accounts/{theirs.id}/compliance-facts", json=body, headers=bearer(agent)
            )
            foreign = client.patch(
                f"/api/v1/accounts/{mine.id}/compliance-facts", json=body, headers=bearer(stranger)
            )
        assert allowed.status_code == 200, allowed.text
        assert_problem(unassigned, 404)
        assert_problem(foreign, 404)


def check(
    session: Session, debtor: Debtor, at: datetime, **extra: object
) -> gate_service.CheckedContact:
    values: dict[str, object] = {"channel": Channel.CALL, "party": Party.DEBTOR, "actor": "tester"}
    values.update(extra)
    return gate_service.check_contact(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        at=at,
        now=NOW,
        **values,  # type: ignore[arg-type]
    )


def ten_am(day: int) -> datetime:
    return datetime(2025, 3, day, 10, tzinfo=NEW_YORK)


class TestGateUsesStoredFacts:
    def test_work_contact_forbidden_blocks_a_contact_at_the_workplace_only(
        self, session: Session
    ) -> None:
        debtor = make_debtor(session, us_institution(session))
        facts_service.update_debtor_facts(
            session, debtor=debtor, changes={"work_contact_forbidden": True}, actor="tester"
        )
        at_work = check(session, debtor, ten_am(4), at_workplace=True)
        at_home = check(session, debtor, ten_am(4))
        assert at_work.decision.rule_ids == ("US-WORK",)
        assert at_home.decision.allowed, at_home.decision.rule_ids
        stored = session.get(ContactDecision, at_work.record.id)
        assert stored is not None
        assert stored.inputs["facts"]["work_contact_forbidden"] is True
        assert stored.inputs["at_workplace"] is True

    def test_an_overdue_validation_notice_blocks_until_it_is_recorded(
        self, session: Session
    ) -> None:
        debtor = make_debtor(session, us_institution(session))
        account = make_account(session, debtor)
        facts_service.update_account_facts(
            session,
            account=account,
            changes={"initial_communication_on": date(2025, 3, 1)},
            actor="tester",
            today=date(2025, 3, 3),
        )
        within = check(session, debtor, ten_am(5), account_id=account.id)
        overdue = check(session, debtor, ten_am(7), account_id=account.id)
        letter = check(session, debtor, ten_am(7), account_id=account.id, channel=Channel.LETTER)
        assert within.decision.allowed, within.decision.rule_ids
        assert overdue.decision.rule_ids == ("US-VAL",)
        assert "2025-03-01" in overdue.decision.reasons[0].message_en
        assert letter.decision.allowed, letter.decision.rule_ids
        facts_service.update_account_facts(
            session,
            account=account,
            changes={"validation_notice_sent_on": date(2025, 3, 2)},
            actor="tester",
            today=date(2025, 3, 3),
        )
        after_notice = check(session, debtor, ten_am(10), account_id=account.id)
        assert after_notice.decision.allowed, after_notice.decision.rule_ids

    def test_validation_facts_are_per_account_and_the_strictest_open_one_binds_the_debtor(
        self, session: Session
    ) -> None:
        debtor = make_debtor(session, us_institution(session))
        waiting = make_account(session, debtor)
        waiting.initial_communication_on = date(2025, 2, 20)
        noticed = make_account(session, debtor)
        noticed.initial_communication_on = date(2025, 2, 1)
        noticed.validation_notice_sent_on = date(2025, 2, 2)
        session.flush()
        about_noticed = check(session, debtor, ten_am(4), account_id=noticed.id)
        about_waiting = check(session, debtor, ten_am(4), account_id=waiting.id)
        debtor_wide = check(session, debtor, ten_am(4))
        assert about_noticed.decision.allowed, about_noticed.decision.rule_ids
        assert about_waiting.decision.rule_ids == ("US-VAL",)
        assert debtor_wide.decision.rule_ids == ("US-VAL",)
        # A settled debt no longer binds the debtor-wide check.
        waiting.status = "settled"
        session.flush()
        assert check(session, debtor, ten_am(4)).decision.allowed

    def test_recorded_cease_contact_blocks_the_debtor(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        assert check(session, debtor, datetime(2025, 3, 3, 10, tzinfo=UTC)).decision.allowed
        facts_service.update_debtor_facts(
            session, debtor=debtor, changes={"cease_contact": True}, actor="tester"
        )
        blocked = check(session, debtor, datetime(2025, 3, 3, 4, tzinfo=UTC))
        assert not blocked.decision.allowed
        assert blocked.decision.reasons[0].code == "cease_contact"


def test_account_model_keeps_the_new_dates(session: Session) -> None:
    account = make_account(session, make_debtor(session, make_institution(session)))
    account.time_barred_on = date(2020, 5, 1)
    session.flush()
    session.expire_all()
    stored = session.get(Account, account.id)
    assert stored is not None
    assert stored.time_barred_on == date(2020, 5, 1)
    assert stored.initial_communication_on is None
