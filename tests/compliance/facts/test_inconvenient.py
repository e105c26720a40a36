"""Consumer-stated inconvenient times and places (US-INCONV): read, recorded, and applied."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup.cli import app as cli
from recoup.compliance.facts import service as facts_service
from recoup.compliance.facts.rules import (
    InconvenientPlace,
    StatedPreferenceError,
    StatedWindow,
    parse_stated_window,
    split_places,
)
from recoup.compliance.gate import service as gate_service
from recoup.compliance.gate.rules import DebtorFacts
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.db import unit_of_work
from recoup.models import Institution
from recoup.models.audit import AuditEvent
from tests.compliance.gate.gate_helpers import NEW_YORK, US, at, planned
from tests.compliance.gate.gate_helpers import decide as decide_with
from tests.factories import make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

runner = CliRunner()


def us_institution(session: Session, code: str | None = None) -> Institution:
    return make_institution(
        session, code=code, jurisdiction="US", timezone="America/New_York", currency="USD"
    )


class TestReading:
    @pytest.mark.parametrize(
        ("text", "window"),
        [
            ("22:00-08:00", StatedWindow(1320, 480)),
            ("9:00-17:00 mon-fri", StatedWindow(540, 1020, (0, 1, 2, 3, 4))),
            ("09:00 – 17:00 Mon - Fri", StatedWindow(540, 1020, (0, 1, 2, 3, 4))),
            ("12:00-13:00@sat,sun", StatedWindow(720, 780, (5, 6))),
            ("18:00-24:00", StatedWindow(1080, 1440)),
            ("20:00-22:00 fri-mon", StatedWindow(1200, 1320, (0, 4, 5, 6))),
            ("12:00-14:00 周一至周五", StatedWindow(720, 840, (0, 1, 2, 3, 4))),
            ("08:00-09:00 mon-sun", StatedWindow(480, 540)),
        ],
    )
    def test_windows(self, text: str, window: StatedWindow) -> None:
        assert parse_stated_window(text) == window

    @pytest.mark.parametrize(
        "text", ["evenings", "25:00-26:00", "10:00-10:00", "10:00", "10:70-11:00", "9-17 someday"]
    )
    def test_unreadable_windows_are_refused(self, text: str) -> None:
        with pytest.raises(StatedPreferenceError):
            parse_stated_window(text)

    def test_places(self) -> None:
        assert split_places("workplace;家") == frozenset(
            {InconvenientPlace.WORKPLACE, InconvenientPlace.HOME}
        )
        with pytest.raises(StatedPreferenceError, match="workplace or home"):
            split_places("gym")

    def test_label_round_trips(self) -> None:
        window = parse_stated_window("09:00-17:00 mon-fri")
        assert window.label == "09:00-17:00 mon,tue,wed,thu,fri"
        assert parse_stated_window(window.label) == window


class TestGatePlaces:
    def test_a_stated_workplace_blocks_a_contact_at_work(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1", inconvenient_places=frozenset({InconvenientPlace.WORKPLACE})
        )
        at_work = decide_with(
            planned(at(NEW_YORK, 2025, 3, 4, 10), at_workplace=True), pack=US, facts=facts
        )
        assert at_work.rule_ids == ("US-INCONV",)
        assert "workplace" in at_work.reasons[0].message_en
        assert "工作单位" in at_work.reasons[0].message_zh
        assert at_work.next_allowed_at is None
        assert decide_with(planned(at(NEW_YORK, 2025, 3, 4, 10)), pack=US, facts=facts).allowed

    def test_a_stated_home_blocks_a_visit_but_not_a_call(self) -> None:
        facts = DebtorFacts(debtor_id="d1", inconvenient_places=frozenset({InconvenientPlace.HOME}))
        visit = decide_with(
            planned(at(NEW_YORK, 2025, 3, 4, 10), Channel.VISIT), pack=US, facts=facts
        )
        assert visit.rule_ids == ("US-INCONV",)
        assert decide_with(planned(at(NEW_YORK, 2025, 3, 4, 10)), pack=US, facts=facts).allowed


def _call(
    session: Session, debtor, moment: datetime, **extra: object
) -> gate_service.CheckedContact:  # type: ignore[no-untyped-def]
    return gate_service.check_contact(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        channel=Channel.CALL,
        party=Party.DEBTOR,
        at=moment,
        actor="tester",
        now=moment,
        **extra,  # type: ignore[arg-type]
    )


class TestApi:
    def test_recorded_times_and_places_are_applied_and_audited(self, session: Session) -> None:
        institution = us_institution(session)
        debtor = make_debtor(session, institution, national_id=None)
        officer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            answer = client.patch(
                f"/api/v1/debtors/{debtor.id}/inconvenient",
                json={"times": ["12:00-13:00", "18:00-20:00 mon-fri"], "places": ["workplace"]},
                headers=bearer(officer),
            )
            shown = client.get(f"/api/v1/debtors/{debtor.id}/inconvenient", headers=bearer(officer))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "debtor_id": debtor.id,
            "times": ["12:00-13:00", "18:00-20:00 mon,tue,wed,thu,fri"],
            "places": ["workplace"],
            "changed": ["places", "times"],
        }
        assert shown.json()["times"] == answer.json()["times"]
        lunch = _call(
            session, debtor, datetime(2026, 3, 4, 12, 30, tzinfo=ZoneInfo("America/New_York"))
        )
        assert lunch.decision.rule_ids == ("US-INCONV",)
        assert lunch.decision.next_allowed_at == datetime(
            2026, 3, 4, 13, tzinfo=ZoneInfo("America/New_York")
        )
        at_work = _call(
            session,
            debtor,
            datetime(2026, 3, 4, 10, tzinfo=ZoneInfo("America/New_York")),
            at_workplace=True,
        )
        assert at_work.decision.rule_ids == ("US-INCONV",)
        assert at_work.record.inputs["facts"]["inconvenient_places"] == ["workplace"]
        (event,) = session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "compliance.facts_update",
                AuditEvent.object_id == str(debtor.id),
            )
        ).scalars()
        assert event.details["changes"]["inconvenient_places"] == {"old": [], "new": ["workplace"]}

    def test_a_list_not_sent_is_kept_and_an_empty_one_clears(self, session: Session) -> None:
        institution = us_institution(session)
        debtor = make_debtor(session, institution, national_id=None)
        officer = make_user(session, institution, role="compliance_officer")
        path = f"/api/v1/debtors/{debtor.id}/inconvenient"
        with client_for(session) as client:
            client.patch(
                path, json={"times": ["22:00-08:00"], "places": ["home"]}, headers=bearer(officer)
            )
            kept = client.patch(path, json={"places": []}, headers=bearer(officer)).json()
        assert kept["times"] == ["22:00-08:00"]
        assert kept["places"] == []
        assert kept["changed"] == ["places"]

    def test_an_unreadable_time_is_refused_naming_the_field(self, session: Session) -> None:
        institution = us_institution(session)
        debtor = make_debtor(session, institution, national_id=None)
        officer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            answer = client.patch(
                f"/api/v1/debtors/{debtor.id}/inconvenient",
                json={"times": ["after dinner"]},
                headers=bearer(officer),
            )
        assert_problem(answer, 422)
        assert "inconvenient_times" in answer.text

    def test_another_tenants_debtor_is_404_and_an_auditor_is_403(self, session: Session) -> None:
        institution = us_institution(session)
        other = make_debtor(session, us_institution(session), national_id=None)
        mine = make_debtor(session, institution, national_id=None)
        officer = make_user(session, institution, role="compliance_officer")
        auditor = make_user(session, institution, role="auditor")
        with client_for(session) as client:
            foreign = client.patch(
                f"/api/v1/debtors/{other.id}/inconvenient",
                json={"places": ["home"]},
                headers=bearer(officer),
            )
            refused = client.patch(
                f"/api/v1/debtors/{mine.id}/inconvenient",
                json={"places": ["home"]},
                headers=bearer(auditor),
            )
        assert_problem(foreign, 404)
        assert_problem(refused, 403)


def test_cli_records_and_shows_inconvenience_by_external_id(cli_db: str) -> None:
    with unit_of_work() as session:
        institution = us_institution(session, code="CLI-INC")
        make_debtor(session, institution, external_id="D0001", national_id=None)
    base = ["compliance", "inconvenient", "--institution", "CLI-INC", "--debtor", "D0001", "--json"]
    recorded = runner.invoke(
        cli, [*base, "--time", "22:00-08:00", "--time", "12:00-13:00 sat", "--place", "workplace"]
    )
    assert recorded.exit_code == 0, recorded.output
    assert json.loads(recorded.stdout)["times"] == ["22:00-08:00", "12:00-13:00 sat"]
    shown = json.loads(runner.invoke(cli, base).stdout)
    assert shown["places"] == ["workplace"]
    cleared = json.loads(runner.invoke(cli, [*base, "--clear-places"]).stdout)
    assert (cleared["times"], cleared["places"]) == (["22:00-08:00", "12:00-13:00 sat"], [])
    bad = runner.invoke(cli, [*base, "--time", "lunchtime"])
    assert bad.exit_code == 1
    assert "inconvenient_times" in bad.output
    blocked = runner.invoke(
        cli,
        ["compliance", "check", "--institution", "CLI-INC", "--debtor", "D0001",
         "--channel", "call", "--at", "2026-03-04T23:00:00-05:00", "--json"],
    )  # fmt: skip
    assert blocked.exit_code == 3
    assert [reason["rule_id"] for reason in json.loads(blocked.stdout)["reasons"]] == [
        "US-HRS",
        "US-INCONV",
    ]


def test_a_cn_debtors_stated_workplace_blocks_a_contact_there(session: Session) -> None:
    debtor = make_debtor(session, make_institution(session))
    facts_service.record_inconvenient(
        session, debtor=debtor, actor="tester", places=frozenset({InconvenientPlace.WORKPLACE})
    )
    shanghai = ZoneInfo("Asia/Shanghai")
    at_work = _call(session, debtor, datetime(2025, 3, 3, 10, tzinfo=shanghai), at_workplace=True)
    assert at_work.decision.rule_ids == ("CN-HRS",)
    assert "工作单位" in at_work.decision.reasons[0].message_zh
    assert _call(session, debtor, datetime(2025, 3, 3, 11, tzinfo=shanghai)).decision.allowed
