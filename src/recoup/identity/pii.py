"""Revealing a debtor's unmasked PII: with the permission, for a case one sees, always audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped, scoped
from recoup.kit.errors import PermissionDenied, ValidationFailed
from recoup.models.debtor import ContactPoint, Debtor

MIN_REASON_LENGTH = 5
# Revealed PII must not stay in a browser, proxy or shared-terminal cache after the page closes.
NO_STORE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True, slots=True)
class Revealed:
    """A debtor and the contact points whose values were revealed."""

    debtor: Debtor
    contact_points: list[ContactPoint]


def reveal_debtor(
    session: Session, *, principal: Principal, debtor_id: int, reason: str
) -> Revealed:
    """Return a debtor's PII in the clear and record who saw it and why."""
    if not principal.can("pii:reveal"):
        raise PermissionDenied("your role may not reveal personal data")
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON_LENGTH:
        raise ValidationFailed("say why you need to see the personal data (at least 5 characters)")
    debtor = get_scoped(session, Debtor, debtor_id, principal)
    contact_points = list(
        session.scalars(
            scoped(select(ContactPoint), ContactPoint, principal)
            .where(ContactPoint.debtor_id == debtor.id)
            .order_by(ContactPoint.id)
        )
    )
    audit.record(
        session,
        actor=principal.actor,
        action="pii.reveal",
        object_type="debtor",
        object_id=debtor.id,
        institution_id=debtor.institution_id,
        details={
            "reason": reason,
            "fields": ["name", "national_id", "employer", "contact_points"],
            "contact_point_ids": [contact.id for contact in contact_points],
        },
    )
    return Revealed(debtor=debtor, contact_points=contact_points)
