"""Agent compliance certificates: grant, check, list expiring, roster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.compliance.certifications import repository
from recoup.compliance.certifications.rules import certificate_standing
from recoup.identity.principal import Principal
from recoup.identity.scoping import acting, get_scoped
from recoup.kit.errors import ValidationFailed
from recoup.kit.text import require_text
from recoup.models.compliance import (
    Certification,
)
from recoup.models.identity import Role, User


def is_certified(session: Session, *, institution_id: int, user_id: int, on: date) -> bool:
    """Tell whether a user holds a compliance certificate valid on a date (POL-CERT)."""
    return bool(
        repository.certifications_valid_on(
            session, institution_id=institution_id, user_id=user_id, on=on
        )
    )


def grant_certification(
    session: Session,
    *,
    institution_id: int,
    user_id: int,
    course: str,
    issued_on: date,
    expires_on: date,
    actor: str,
    principal: Principal | None = None,
) -> Certification:
    """Record a compliance training certificate for an active agent of the institution."""
    course = require_text("course", course)
    user = get_scoped(session, User, user_id, acting(principal, institution_id))
    if user.role != Role.agent or not user.active:
        raise ValidationFailed(
            f"user_id {user_id}: {user.username} is not an active agent; "
            "certificates are for agents of this institution",
            errors=[{"field": "user_id", "message": "not an active agent of this institution"}],
        )
    if expires_on <= issued_on:
        raise ValidationFailed(
            "a certificate must expire after it is issued",
            message_key="compliance.error.certificate_dates",
        )
    certification = Certification(
        institution_id=institution_id,
        user_id=user_id,
        course=course,
        issued_on=issued_on,
        expires_on=expires_on,
        issued_by=actor,
    )
    session.add(certification)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="compliance.certification_granted",
        object_type="certification",
        object_id=certification.id,
        institution_id=institution_id,
        details={"user_id": user_id, "expires_on": expires_on.isoformat()},
    )
    return certification


def expiring_certifications(
    session: Session, *, institution_id: int, on: date, within_days: int = 30
) -> list[Certification]:
    """Return certificates that expire within the coming days, for team leads to act on."""
    return list(
        repository.certifications_expiring(
            session,
            institution_id=institution_id,
            before=on + timedelta(days=within_days),
            on=on,
        )
    )


@dataclass(frozen=True, slots=True)
class AgentCertification:
    """An agent, their latest certificate (if any) and how it stands today."""

    user: User
    certification: Certification | None
    standing: str


def certification_roster(
    session: Session, *, institution_id: int, today: date, team_lead_id: int | None = None
) -> list[AgentCertification]:
    """Return every active agent (or one team lead's) with their latest certificate."""
    agents = repository.institution_agents(
        session, institution_id=institution_id, team_lead_id=team_lead_id
    )
    latest: dict[int, Certification] = {}
    for certification in repository.certifications_of_users(
        session, institution_id=institution_id, user_ids=[agent.id for agent in agents]
    ):
        latest.setdefault(certification.user_id, certification)
    return [
        AgentCertification(
            user=agent,
            certification=latest.get(agent.id),
            standing=certificate_standing(
                latest[agent.id].expires_on if agent.id in latest else None, today=today
            ),
        )
        for agent in agents
    ]


def certified_agents(session: Session, *, institution_id: int, on: date) -> list[User]:
    """Return the institution's active agents holding a certificate valid on a date (POL-CERT)."""
    return [
        agent
        for agent in repository.institution_agents(session, institution_id=institution_id)
        if is_certified(session, institution_id=institution_id, user_id=agent.id, on=on)
    ]
