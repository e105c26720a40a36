"""Institution policies on a real database: proposal, approval, the policy in force."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from recoup.compliance.policy import service as policy_service
from recoup.kit.errors import PermissionDenied, ValidationFailed
from tests.compliance.gate.checks import check, local
from tests.factories import make_debtor, make_institution


class TestPolicies:
    def test_looser_policy_is_refused_naming_the_rule(self, session: Session) -> None:
        institution = make_institution(session)
        document = {"hours": [{"channels": ["call"], "start": "08:00", "end": "22:30"}]}
        with pytest.raises(ValidationFailed, match="CN-HRS") as raised:
            policy_service.propose_policy(
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
        row = policy_service.propose_policy(
            session, institution_id=institution.id, document=document, actor="alice"
        )
        assert check(session, debtor, local(2025, 3, 3, 20, 30)).decision.allowed
        with pytest.raises(PermissionDenied):
            policy_service.approve_policy(
                session, institution_id=institution.id, version=row.version, actor="alice"
            )
        policy_service.approve_policy(
            session, institution_id=institution.id, version=row.version, actor="bob"
        )
        decision = check(session, debtor, local(2025, 3, 3, 20, 30)).decision
        assert decision.rule_ids == ("CN-HRS",)
        assert decision.policy_name == "Evenings off"

    def test_unknown_policy_field(self, session: Session) -> None:
        institution = make_institution(session)
        with pytest.raises(ValidationFailed, match="unknown policy fields"):
            policy_service.propose_policy(
                session, institution_id=institution.id, document={"quiet": 1}, actor="a"
            )
