"""CRM contact-point changes and external risk scores through the inbound API."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.enums import ContactStatus
from recoup.identity import service as identity
from recoup.integration import repository
from recoup.kit.errors import ValidationFailed
from recoup.models import AuditEvent, ContactPoint
from recoup.models.integration import ExternalRiskScore
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import assert_problem, client_for


def _key(session: Session, institution_id: int, *scopes: str) -> dict[str, str]:
    text, _key = identity.create_api_key(
        session, institution_id=institution_id, name="crm", scopes=list(scopes), actor="test"
    )
    return {"Authorization": f"Bearer {text}"}


class TestContactPointChange:
    def test_a_new_number_supersedes_the_old_one_at_once(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        old = make_contact_point(session, debtor, value="13812345678")
        email = make_contact_point(session, debtor, kind="email", value="a@example.com")
        headers = _key(session, institution.id, "contacts:write")
        with client_for(session) as client:
            answer = client.post(
                f"/api/v1/debtors/{debtor.id}/contact-points",
                json={"kind": "mobile", "value": "139 1234 5678", "verified": True},
                headers=headers,
            )
            assert answer.status_code == 201, answer.text
            body = answer.json()
            assert body["superseded_ids"] == [old.id]
            assert body["status"] == "valid"
            assert "5678" in body["value"]
            assert "1234" not in body["value"]
            # The same number again is found, not duplicated.
            again = client.post(
                f"/api/v1/debtors/{debtor.id}/contact-points",
                json={"kind": "mobile", "value": "13912345678"},
                headers=headers,
            )
        assert again.status_code == 200, again.text
        assert again.json()["id"] == body["id"]
        assert again.json()["status"] == "valid"
        session.expire_all()
        assert session.get(ContactPoint, old.id).status == ContactStatus.superseded  # type: ignore[union-attr]
        assert session.get(ContactPoint, email.id).status == ContactStatus.valid  # type: ignore[union-attr]
        new = session.get(ContactPoint, body["id"])
        assert new is not None
        assert new.value == "13912345678"
        assert new.source == "crm"
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "contact_point.crm_change")
        ).first()
        assert audit is not None
        assert "139" not in str(audit.details)
        # The gate refuses the superseded number straight away.
        with pytest.raises(ValidationFailed, match="superseded"):
            gate.check_contact(
                session,
                institution_id=institution.id,
                debtor_id=debtor.id,
                contact_point_id=old.id,
                channel=Channel.CALL,
                party=Party.DEBTOR,
                at=datetime(2026, 12, 7, 3, tzinfo=UTC),
                actor="test",
            )

    def test_replacing_one_named_point_keeps_the_others(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        first = make_contact_point(session, debtor, value="13812345678")
        second = make_contact_point(session, debtor, value="13712345678")
        with client_for(session) as client:
            answer = client.post(
                f"/api/v1/debtors/{debtor.id}/contact-points",
                json={
                    "kind": "mobile",
                    "value": "13612345678",
                    "replaces_contact_point_id": second.id,
                },
                headers=_key(session, institution.id, "contacts:write"),
            )
        assert answer.status_code == 201, answer.text
        assert answer.json()["superseded_ids"] == [second.id]
        session.expire_all()
        assert session.get(ContactPoint, first.id).status == ContactStatus.valid  # type: ignore[union-attr]

    def test_a_bad_number_and_another_tenants_ids_are_refused(self, session: Session) -> None:
        institution, other = make_institution(session), make_institution(session)
        debtor = make_debtor(session, institution)
        foreign = make_debtor(session, other)
        foreign_point = make_contact_point(session, foreign)
        headers = _key(session, institution.id, "contacts:write")
        with client_for(session) as client:
            body = assert_problem(
                client.post(
                    f"/api/v1/debtors/{debtor.id}/contact-points",
                    json={"kind": "mobile", "value": "12345"},
                    headers=headers,
                ),
                422,
            )
            assert body["errors"][0]["field"] == "value"  # type: ignore[index]
            assert_problem(
                client.post(
                    f"/api/v1/debtors/{foreign.id}/contact-points",
                    json={"kind": "mobile", "value": "13912345678"},
                    headers=headers,
                ),
                404,
            )
            assert_problem(
                client.post(
                    f"/api/v1/debtors/{debtor.id}/contact-points",
                    json={
                        "kind": "mobile",
                        "value": "13912345678",
                        "replaces_contact_point_id": foreign_point.id,
                    },
                    headers=headers,
                ),
                404,
            )


class TestRiskScores:
    def test_scores_are_kept_per_source_and_time(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        headers = _key(session, institution.id, "risk_scores:write")
        early = {
            "account_external_id": account.external_id,
            "source": "bureau",
            "score": "612",
            "grade": "B2",
            "reason_codes": ["R01"],
            "scored_at": "2026-12-01T02:00:00+08:00",
        }
        later = {**early, "score": "640.5", "scored_at": "2026-12-05T02:00:00+08:00"}
        fraud = {
            "account_id": account.id,
            "source": "fraud-engine",
            "score": "0.0312",
            "scored_at": "2026-12-05T02:00:00+08:00",
        }
        with client_for(session) as client:
            first = client.post("/api/v1/risk-scores", json=[early, later, fraud], headers=headers)
            assert first.status_code == 200, first.text
            assert [item["status"] for item in first.json()["results"]] == ["created"] * 3
            again = client.post("/api/v1/risk-scores", json=early, headers=headers)
            assert again.json()["results"][0]["status"] == "unchanged"
            changed = client.post(
                "/api/v1/risk-scores", json={**early, "score": "600"}, headers=headers
            )
            assert changed.json()["results"][0]["status"] == "updated"
            bad = client.post(
                "/api/v1/risk-scores",
                json=[{**early, "score": "high"}, {**early, "account_external_id": "NOPE"}],
                headers=headers,
            )
        assert [item["errors"][0]["field"] for item in bad.json()["results"]] == [
            "score",
            "account_external_id",
        ]
        assert len(session.scalars(select(ExternalRiskScore)).all()) == 3
        latest = repository.latest_risk_scores(
            session, institution_id=institution.id, account_ids=[account.id]
        )
        assert latest == {
            account.id: {"bureau": Decimal("640.5"), "fraud-engine": Decimal("0.0312")}
        }
