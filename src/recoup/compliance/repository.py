"""Queries of the compliance domain; every one is scoped by institution."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import String, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from recoup.kit.pagination import Page, PageRequest
from recoup.models.compliance import (
    Certification,
    CompliancePolicy,
    ComplianceViolation,
    ContactDecision,
    ContactReservation,
    ContactWindow,
    MessageTemplate,
    ReservationStatus,
    SlotClaim,
    ViolationStatus,
    WindowKind,
)
from recoup.models.debtor import ContactKind, ContactPoint, ContactStatus, Debtor
from recoup.models.identity import Role, User


def lock_debtor(session: Session, *, institution_id: int, debtor_id: int) -> None:
    """Serialise gate checks of one debtor (a row lock on PostgreSQL; SQLite has one writer)."""
    session.execute(
        select(Debtor.id)
        .where(Debtor.institution_id == institution_id, Debtor.id == debtor_id)
        .with_for_update()
    ).all()


def reservations_since(
    session: Session, *, institution_id: int, debtor_id: int, since: datetime
) -> Sequence[ContactReservation]:
    """Return the debtor's held and used contacts planned since a moment."""
    return (
        session.execute(
            select(ContactReservation)
            .where(
                ContactReservation.institution_id == institution_id,
                ContactReservation.debtor_id == debtor_id,
                ContactReservation.status != ReservationStatus.released,
                ContactReservation.planned_at >= since,
            )
            .order_by(ContactReservation.planned_at)
        )
        .scalars()
        .all()
    )


def debtors_by_reference(session: Session, *, institution_id: int, reference: str) -> list[Debtor]:
    """Return the institution's debtors whose external id, or internal id, is the reference."""
    matches = [Debtor.external_id == reference]
    if reference.isdigit() and len(reference) < 19:
        matches.append(Debtor.id == int(reference))
    return list(
        session.execute(
            select(Debtor)
            .where(Debtor.institution_id == institution_id, or_(*matches))
            .order_by(Debtor.id)
        ).scalars()
    )


def own_phones(session: Session, *, institution_id: int, debtor_id: int) -> Sequence[ContactPoint]:
    """Return the debtor's own phone numbers that may still reach them."""
    return (
        session.execute(
            select(ContactPoint)
            .where(
                ContactPoint.institution_id == institution_id,
                ContactPoint.debtor_id == debtor_id,
                ContactPoint.third_party.is_(False),
                ContactPoint.kind.in_([ContactKind.mobile, ContactKind.landline]),
                ContactPoint.status.not_in(
                    [ContactStatus.invalid, ContactStatus.wrong_party, ContactStatus.superseded]
                ),
            )
            .order_by(ContactPoint.id)
        )
        .scalars()
        .all()
    )


def contact_windows(
    session: Session, *, institution_id: int, debtor_id: int
) -> Sequence[ContactWindow]:
    """Return the debtor's agreed and inconvenient contact windows."""
    return (
        session.execute(
            select(ContactWindow).where(
                ContactWindow.institution_id == institution_id, ContactWindow.debtor_id == debtor_id
            )
        )
        .scalars()
        .all()
    )


def delete_windows(
    session: Session, *, institution_id: int, debtor_id: int, kind: WindowKind
) -> None:
    """Delete the debtor's contact windows of one kind."""
    session.execute(
        delete(ContactWindow).where(
            ContactWindow.institution_id == institution_id,
            ContactWindow.debtor_id == debtor_id,
            ContactWindow.kind == kind,
        )
    )


def claimed_slot_keys(
    session: Session, *, institution_id: int, debtor_id: int, prefix: str
) -> set[str]:
    """Return the slot keys of a cap family already claimed for the debtor."""
    return set(
        session.execute(
            select(SlotClaim.slot_key).where(
                SlotClaim.institution_id == institution_id,
                SlotClaim.debtor_id == debtor_id,
                SlotClaim.slot_key.startswith(prefix, autoescape=True),
            )
        ).scalars()
    )


def get_decision(
    session: Session, *, institution_id: int, decision_id: int
) -> ContactDecision | None:
    """Return one decision of the institution."""
    return session.execute(
        select(ContactDecision).where(
            ContactDecision.institution_id == institution_id, ContactDecision.id == decision_id
        )
    ).scalar_one_or_none()


def reservation_for_decision(
    session: Session, *, institution_id: int, decision_id: int
) -> ContactReservation | None:
    """Return the reservation an allowed decision holds."""
    return session.execute(
        select(ContactReservation).where(
            ContactReservation.institution_id == institution_id,
            ContactReservation.decision_id == decision_id,
        )
    ).scalar_one_or_none()


def delete_claims(session: Session, *, reservation_id: int) -> None:
    """Free every slot of a contact that was never made."""
    session.execute(delete(SlotClaim).where(SlotClaim.reservation_id == reservation_id))


def delete_effective_claims(session: Session, *, reservation_id: int) -> None:
    """Free the effective-call slots of a contact that turned out not to connect."""
    session.execute(
        delete(SlotClaim).where(
            SlotClaim.reservation_id == reservation_id,
            SlotClaim.slot_key.contains("/effective/", autoescape=True),
        )
    )


def decisions_page(
    session: Session,
    *,
    institution_id: int,
    page: PageRequest,
    allowed: bool | None = None,
    rule_id: str | None = None,
    debtor_id: int | None = None,
) -> Page[ContactDecision]:
    """Return one page of decisions, newest first, filtered."""
    conditions = [ContactDecision.institution_id == institution_id]
    if allowed is not None:
        conditions.append(ContactDecision.allowed == allowed)
    if debtor_id is not None:
        conditions.append(ContactDecision.debtor_id == debtor_id)
    if rule_id is not None:
        conditions.append(cast(ContactDecision.rule_ids, String).contains(f'"{rule_id}"'))
    total = session.execute(select(func.count(ContactDecision.id)).where(*conditions)).scalar_one()
    rows = session.execute(
        select(ContactDecision)
        .where(*conditions)
        .order_by(ContactDecision.id.desc())
        .offset(page.offset)
        .limit(page.size)
    ).scalars()
    return Page(items=list(rows), total=total, page=page.page, size=page.size)


def latest_approved_policy(session: Session, *, institution_id: int) -> CompliancePolicy | None:
    """Return the newest approved policy version of the institution."""
    return session.execute(
        select(CompliancePolicy)
        .where(
            CompliancePolicy.institution_id == institution_id,
            CompliancePolicy.approved_at.is_not(None),
        )
        .order_by(CompliancePolicy.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def policy_version(
    session: Session, *, institution_id: int, version: int
) -> CompliancePolicy | None:
    """Return one policy version."""
    return session.execute(
        select(CompliancePolicy).where(
            CompliancePolicy.institution_id == institution_id, CompliancePolicy.version == version
        )
    ).scalar_one_or_none()


def newest_policy_version(session: Session, *, institution_id: int) -> int:
    """Return the highest policy version number used so far (0 for none)."""
    versions = session.execute(
        select(CompliancePolicy.version).where(CompliancePolicy.institution_id == institution_id)
    ).scalars()
    return max(versions, default=0)


def get_template(
    session: Session, *, institution_id: int, template_id: int
) -> MessageTemplate | None:
    """Return one template of the institution."""
    return session.execute(
        select(MessageTemplate).where(
            MessageTemplate.institution_id == institution_id, MessageTemplate.id == template_id
        )
    ).scalar_one_or_none()


def templates(
    session: Session, *, institution_id: int, status: str | None = None
) -> Sequence[MessageTemplate]:
    """Return the institution's templates, optionally in one status."""
    statement = select(MessageTemplate).where(MessageTemplate.institution_id == institution_id)
    if status is not None:
        statement = statement.where(MessageTemplate.status == status)
    return session.execute(statement.order_by(MessageTemplate.id)).scalars().all()


def violations(
    session: Session, *, institution_id: int, status: ViolationStatus | None = None
) -> Sequence[ComplianceViolation]:
    """Return the institution's violations, newest first."""
    statement = select(ComplianceViolation).where(
        ComplianceViolation.institution_id == institution_id
    )
    if status is not None:
        statement = statement.where(ComplianceViolation.status == status)
    return session.execute(statement.order_by(ComplianceViolation.id.desc())).scalars().all()


def get_violation(
    session: Session, *, institution_id: int, violation_id: int
) -> ComplianceViolation | None:
    """Return one violation of the institution."""
    return session.execute(
        select(ComplianceViolation).where(
            ComplianceViolation.institution_id == institution_id,
            ComplianceViolation.id == violation_id,
        )
    ).scalar_one_or_none()


def certifications_valid_on(
    session: Session, *, institution_id: int, user_id: int, on: date
) -> Sequence[Certification]:
    """Return a user's certificates still valid on a date."""
    return (
        session.execute(
            select(Certification).where(
                Certification.institution_id == institution_id,
                Certification.user_id == user_id,
                Certification.issued_on <= on,
                Certification.expires_on >= on,
            )
        )
        .scalars()
        .all()
    )


def certifications_expiring(
    session: Session, *, institution_id: int, before: date, on: date
) -> Sequence[Certification]:
    """Return certificates valid on a date that expire before another."""
    return (
        session.execute(
            select(Certification)
            .where(
                Certification.institution_id == institution_id,
                Certification.expires_on >= on,
                Certification.expires_on < before,
            )
            .order_by(Certification.expires_on)
        )
        .scalars()
        .all()
    )


# Pages of the compliance UI (added with the web views).


def decisions_log_page(
    session: Session,
    *,
    institution_id: int,
    page: PageRequest,
    allowed: bool | None = None,
    rule_id: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    debtor_external_id: str | None = None,
) -> Page[tuple[ContactDecision, str]]:
    """Return one page of decisions with their debtor's external id, newest first, filtered."""
    conditions = [ContactDecision.institution_id == institution_id]
    if allowed is not None:
        conditions.append(ContactDecision.allowed == allowed)
    if rule_id is not None:
        conditions.append(
            cast(ContactDecision.rule_ids, String).contains(f'"{rule_id}"', autoescape=True)
        )
    if channel is not None:
        conditions.append(ContactDecision.channel == channel)
    if since is not None:
        conditions.append(ContactDecision.created_at >= since)
    if until is not None:
        conditions.append(ContactDecision.created_at < until)
    if debtor_external_id is not None:
        conditions.append(Debtor.external_id == debtor_external_id)
    joined = (
        select(ContactDecision, Debtor.external_id)
        .join(Debtor, Debtor.id == ContactDecision.debtor_id)
        .where(Debtor.institution_id == institution_id, *conditions)
    )
    total = session.execute(
        select(func.count()).select_from(joined.with_only_columns(ContactDecision.id).subquery())
    ).scalar_one()
    rows = session.execute(
        joined.order_by(ContactDecision.id.desc()).offset(page.offset).limit(page.size)
    ).all()
    return Page(
        items=[(decision, external_id) for decision, external_id in rows],
        total=total,
        page=page.page,
        size=page.size,
    )


def pending_policies(session: Session, *, institution_id: int) -> Sequence[CompliancePolicy]:
    """Return the proposed policy versions not yet approved, newest first."""
    return (
        session.execute(
            select(CompliancePolicy)
            .where(
                CompliancePolicy.institution_id == institution_id,
                CompliancePolicy.approved_at.is_(None),
            )
            .order_by(CompliancePolicy.version.desc())
        )
        .scalars()
        .all()
    )


def institution_agents(
    session: Session, *, institution_id: int, team_lead_id: int | None = None
) -> Sequence[User]:
    """Return the institution's active agents, optionally only one team lead's."""
    statement = select(User).where(
        User.institution_id == institution_id, User.role == Role.agent, User.active.is_(True)
    )
    if team_lead_id is not None:
        statement = statement.where(User.team_lead_id == team_lead_id)
    return session.execute(statement.order_by(User.username)).scalars().all()


def certifications_of_users(
    session: Session, *, institution_id: int, user_ids: Sequence[int]
) -> Sequence[Certification]:
    """Return every certificate of the given users, latest expiry first."""
    if not user_ids:
        return []
    return (
        session.execute(
            select(Certification)
            .where(
                Certification.institution_id == institution_id,
                Certification.user_id.in_(user_ids),
            )
            .order_by(Certification.expires_on.desc(), Certification.id.desc())
        )
        .scalars()
        .all()
    )


def debtor_external_ids(
    session: Session, *, institution_id: int, debtor_ids: Sequence[int]
) -> dict[int, str]:
    """Return the external ids of the institution's debtors among ``debtor_ids``."""
    if not debtor_ids:
        return {}
    rows = session.execute(
        select(Debtor.id, Debtor.external_id).where(
            Debtor.institution_id == institution_id, Debtor.id.in_(debtor_ids)
        )
    ).all()
    return {int(row[0]): str(row[1]) for row in rows}
