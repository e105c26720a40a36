"""Demo agents hold compliance certificates, and accounts go only to certified agents."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.certifications import service as certifications_service
from recoup.demo.service import DEMO_CERTIFICATE_EXPIRING_IN_DAYS, seed_demo
from recoup.models import Institution, User
from recoup.models.cases import Case

AS_OF = date(2026, 11, 28)


def test_demo_agents_are_certified_one_expires_soon_and_only_they_hold_accounts(
    session: Session,
) -> None:
    seed_demo(session, accounts=120, seed=3, as_of=AS_OF)
    institution = session.execute(
        select(Institution).where(Institution.code == "DEMO-CF")
    ).scalar_one()
    agents = (
        session.execute(
            select(User).where(User.institution_id == institution.id, User.role == "agent")
        )
        .scalars()
        .all()
    )
    assert len(agents) == 3
    for agent in agents:
        assert certifications_service.is_certified(
            session, institution_id=institution.id, user_id=agent.id, on=AS_OF
        )
    expiring = certifications_service.expiring_certifications(
        session, institution_id=institution.id, on=AS_OF, within_days=30
    )
    assert [c.expires_on for c in expiring] == [
        AS_OF + timedelta(days=DEMO_CERTIFICATE_EXPIRING_IN_DAYS)
    ]
    holders = set(
        session.execute(
            select(Case.owner_id)
            .where(Case.institution_id == institution.id, Case.owner_id.is_not(None))
            .distinct()
        ).scalars()
    )
    assert holders
    assert holders <= {agent.id for agent in agents}
