"""Reserved contacts keep counting until an outcome says otherwise; a dry run reserves nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup.cli import app as cli
from recoup.compliance.facts import service as facts_service
from recoup.compliance.gate import service as gate_service
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from recoup.db import unit_of_work
from recoup.kit.errors import NotFound, PermissionDenied, ValidationFailed
from recoup.models.compliance import SlotClaim
from recoup.models.contact import ContactAttempt
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import bearer, client_for, make_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
runner = CliRunner()


def _us_debtor(session: Session):  # type: ignore[no-untyped-def]
    institution = make_institution(
        session, jurisdiction="US", timezone="America/New_York", currency="USD"
    )
    debtor = make_debtor(session, institution, national_id=None)
    return debtor, make_account(session, debtor)


def _call(session: Session, debtor, at: datetime, **extra: object) -> gate_service.CheckedContact:  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "channel": Channel.CALL,
        "party": Party.DEBTOR,
        "actor": "tester",
        # The check is asked for well after each call's planned time: nobody reported them.
        "now": at + timedelta(days=3),
    }
    values.update(extra)
    return gate_service.check_contact(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        at=at,
        **values,  # type: ignore[arg-type]
    )


class TestUnreportedCallsKeepCounting:
    def test_eighth_call_in_seven_days_is_blocked_when_no_outcome_was_reported(
        self, session: Session
    ) -> None:
        debtor, account = _us_debtor(session)
        answers = [
            _call(
                session,
                debtor,
                datetime(2026, 3, 2 + day, 10, tzinfo=NEW_YORK),
                account_id=account.id,
            )
            for day in range(7)
        ]
        assert all(answer.decision.allowed for answer in answers)
        eighth = _call(
            session, debtor, datetime(2026, 3, 8, 15, tzinfo=NEW_YORK), account_id=account.id
        )
        assert not eighth.decision.allowed
        assert eighth.decision.rule_ids == ("US-7IN7",)

    def test_fourth_unreported_call_of_a_day_is_blocked_hours_later(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        for hour in (9, 10, 11):
            assert _call(
                session, debtor, datetime(2025, 3, 3, hour, tzinfo=SHANGHAI)
            ).decision.allowed
        later = _call(
            session,
            debtor,
            datetime(2025, 3, 3, 18, tzinfo=SHANGHAI),
            now=datetime(2025, 3, 3, 17, tzinfo=SHANGHAI),
        )
        assert later.decision.rule_ids == ("CN-FREQ-V",)

    def test_a_contact_recorded_as_not_made_stops_counting(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        first = [
            _call(session, debtor, datetime(2025, 3, 3, hour, tzinfo=SHANGHAI))
            for hour in (9, 10, 11)
        ]
        gate_service.record_outcome(
            session,
            institution_id=debtor.institution_id,
            decision_id=first[0].record.id,
            outcome="not_made",
            effective=False,
            happened_at=datetime(2025, 3, 3, 9, tzinfo=SHANGHAI),
        )
        assert _call(session, debtor, datetime(2025, 3, 3, 15, tzinfo=SHANGHAI)).decision.allowed

    def test_a_not_made_call_frees_the_seven_day_cap_but_a_no_answer_does_not(
        self, session: Session
    ) -> None:
        debtor, account = _us_debtor(session)
        answers = [
            _call(
                session,
                debtor,
                datetime(2026, 3, 2 + day, 10, tzinfo=NEW_YORK),
                account_id=account.id,
            )
            for day in range(7)
        ]
        gate_service.record_outcome(
            session,
            institution_id=debtor.institution_id,
            decision_id=answers[0].record.id,
            outcome=OutcomeCode.NO_ANSWER,
            effective=False,
            happened_at=datetime(2026, 3, 2, 10, tzinfo=NEW_YORK),
        )
        eighth_at = datetime(2026, 3, 8, 15, tzinfo=NEW_YORK)
        blocked = _call(session, debtor, eighth_at, account_id=account.id)
        assert blocked.decision.rule_ids == ("US-7IN7",)
        gate_service.record_outcome(
            session,
            institution_id=debtor.institution_id,
            decision_id=answers[1].record.id,
            outcome="not_made",
            effective=False,
            happened_at=datetime(2026, 3, 3, 10, tzinfo=NEW_YORK),
        )
        assert _call(session, debtor, eighth_at, account_id=account.id).decision.allowed


class TestDryRun:
    def test_a_dry_run_answers_but_holds_no_slot(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        moment = datetime(2025, 3, 3, 10, tzinfo=SHANGHAI)
        asked = [_call(session, debtor, moment, reserve=False) for _ in range(5)]
        assert all(answer.decision.allowed for answer in asked)
        assert asked[0].record.inputs["reserve"] is False
        held = session.execute(
            select(func.count(ContactAttempt.id)).where(ContactAttempt.debtor_id == debtor.id)
        ).scalar_one()
        claims = session.execute(
            select(func.count(SlotClaim.id)).where(SlotClaim.debtor_id == debtor.id)
        ).scalar_one()
        assert (held, claims) == (0, 0)
        # Five dry runs later the debtor still has all three calls of the day.
        real = [_call(session, debtor, moment + timedelta(hours=n)) for n in range(3)]
        assert all(answer.decision.allowed for answer in real)

    def test_a_dry_run_still_sees_the_reserved_slots(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        for hour in (9, 10, 11):
            _call(session, debtor, datetime(2025, 3, 3, hour, tzinfo=SHANGHAI))
        asked = _call(session, debtor, datetime(2025, 3, 3, 15, tzinfo=SHANGHAI), reserve=False)
        assert asked.decision.rule_ids == ("CN-FREQ-V",)

    def test_a_channel_cannot_act_on_a_dry_run(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        moment = datetime(2025, 3, 3, 10, tzinfo=SHANGHAI)
        asked = _call(session, debtor, moment, reserve=False, now=moment - timedelta(hours=1))
        with pytest.raises(PermissionDenied, match="dry run"):
            gate_service.require_allowed_decision(
                session,
                institution_id=debtor.institution_id,
                decision_id=asked.record.id,
                debtor_id=debtor.id,
                channel=Channel.CALL,
                now=moment - timedelta(hours=1),
            )

    def test_api_reserve_false(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        manager = make_user(session, institution, role="manager")
        body = {"debtor_id": debtor.id, "channel": "call", "at": "2025-03-03T10:00:00+08:00"}
        with client_for(session) as client:
            dry = [
                client.post(
                    "/api/v1/compliance/check",
                    json={**body, "reserve": False},
                    headers=bearer(manager),
                ).json()
                for _ in range(4)
            ]
            real = client.post("/api/v1/compliance/check", json=body, headers=bearer(manager))
        assert [(answer["allowed"], answer["reserved"]) for answer in dry] == [(True, False)] * 4
        assert real.json()["allowed"] is True
        assert real.json()["reserved"] is True
        held = session.execute(
            select(func.count(ContactAttempt.id)).where(ContactAttempt.debtor_id == debtor.id)
        ).scalar_one()
        assert held == 1


class TestDebtorReference:
    def test_external_or_internal_id(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution, external_id="D0001")
        assert (
            facts_service.find_debtor(session, institution_id=institution.id, reference="D0001")
            is debtor
        )
        assert (
            facts_service.find_debtor(
                session, institution_id=institution.id, reference=str(debtor.id)
            )
            is debtor
        )
        with pytest.raises(NotFound, match="D0002"):
            facts_service.find_debtor(session, institution_id=institution.id, reference="D0002")

    def test_another_institutions_external_id_is_not_found(self, session: Session) -> None:
        make_debtor(session, make_institution(session), external_id="X-42")
        with pytest.raises(NotFound):
            facts_service.find_debtor(
                session, institution_id=make_institution(session).id, reference="X-42"
            )

    def test_an_ambiguous_reference_is_refused(self, session: Session) -> None:
        institution = make_institution(session)
        first = make_debtor(session, institution)
        make_debtor(session, institution, external_id=str(first.id))
        with pytest.raises(ValidationFailed, match="external id"):
            facts_service.find_debtor(
                session, institution_id=institution.id, reference=str(first.id)
            )


def test_cli_check_takes_an_external_id_and_a_dry_run_reserves_nothing(cli_db: str) -> None:
    with unit_of_work() as session:
        institution = make_institution(session, code="CLI-DRY")
        debtor = make_debtor(session, institution, external_id="D0001")
        debtor_id = debtor.id
    arguments = ["compliance", "check", "--institution", "CLI-DRY", "--debtor", "D0001",
                 "--channel", "call", "--at", "2025-03-03T10:00:00+08:00", "--json"]  # fmt: skip
    for _ in range(4):
        dry = runner.invoke(cli, [*arguments, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        answer = json.loads(dry.stdout)
        assert (answer["allowed"], answer["reserved"]) == (True, False)
    real = runner.invoke(cli, arguments)
    assert real.exit_code == 0, real.output
    assert json.loads(real.stdout)["reserved"] is True
    with unit_of_work() as session:
        held = session.execute(
            select(func.count(ContactAttempt.id)).where(ContactAttempt.debtor_id == debtor_id)
        ).scalar_one()
    assert held == 1
    listed = runner.invoke(
        cli, ["compliance", "decisions", "--institution", "CLI-DRY", "--debtor", "D0001", "--json"]
    )
    assert json.loads(listed.stdout)["total"] == 5
