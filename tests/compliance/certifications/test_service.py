"""Agent certificates on a real database: granted, checked, expiring."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from recoup.compliance.certifications import service as certifications_service
from recoup.kit.errors import ValidationFailed
from tests.factories import make_institution
from tests.identity.helpers import make_user


class TestCertificates:
    def test_expiring_certificates(self, session: Session) -> None:
        institution = make_institution(session)
        agent = make_user(session, institution, role="agent")
        certifications_service.grant_certification(
            session, institution_id=institution.id, user_id=agent.id, course="c",
            issued_on=date(2025, 1, 1), expires_on=date(2025, 3, 20), actor="officer",
        )  # fmt: skip
        soon = certifications_service.expiring_certifications(
            session, institution_id=institution.id, on=date(2025, 3, 3)
        )
        assert [c.user_id for c in soon] == [agent.id]
        assert certifications_service.is_certified(
            session, institution_id=institution.id, user_id=agent.id, on=date(2025, 3, 3)
        )
        assert not certifications_service.is_certified(
            session, institution_id=institution.id, user_id=agent.id, on=date(2025, 3, 21)
        )
        with pytest.raises(ValidationFailed):
            certifications_service.grant_certification(
                session, institution_id=institution.id, user_id=agent.id, course="c",
                issued_on=date(2025, 1, 1), expires_on=date(2024, 1, 1), actor="officer",
            )  # fmt: skip
