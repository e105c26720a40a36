"""Queries of the facts the gate reads about a debtor, scoped by institution."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from recoup.enums import ContactKind, ContactStatus
from recoup.identity.principal import Principal
from recoup.identity.scoping import scoped
from recoup.models.account import Account
from recoup.models.compliance import (
    ContactWindow,
    WindowKind,
)
from recoup.models.debtor import ContactPoint, Debtor


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


_REACHING = (ContactStatus.invalid, ContactStatus.wrong_party, ContactStatus.superseded)


def own_phones_for(
    session: Session, *, institution_id: int, debtor_ids: Collection[int]
) -> dict[int, list[ContactPoint]]:
    """Return ``own_phones`` of many debtors at once, by debtor id."""
    found: dict[int, list[ContactPoint]] = {}
    if not debtor_ids:
        return found
    rows = session.execute(
        select(ContactPoint)
        .where(
            ContactPoint.institution_id == institution_id,
            ContactPoint.debtor_id.in_(list(debtor_ids)),
            ContactPoint.third_party.is_(False),
            ContactPoint.kind.in_([ContactKind.mobile, ContactKind.landline]),
            ContactPoint.status.not_in(list(_REACHING)),
        )
        .order_by(ContactPoint.id)
    ).scalars()
    for point in rows:
        found.setdefault(point.debtor_id, []).append(point)
    return found


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


def accounts_with_facts(session: Session, *, principal: Principal, debtor_id: int) -> list[Account]:
    """Return the debtor's accounts the caller may see, whose per-debt facts a form shows."""
    statement = scoped(select(Account), Account, principal).where(Account.debtor_id == debtor_id)
    return list(session.scalars(statement.order_by(Account.id)))


def debtor_fact_rows(
    session: Session, *, institution_id: int, debtor_ids: Sequence[int]
) -> Sequence[Any]:
    """Return the gate's facts columns of many debtors (plain rows, in id order)."""
    return session.execute(
        select(
            Debtor.id,
            Debtor.timezone,
            Debtor.timezone_source,
            Debtor.province,
            Debtor.city,
            Debtor.cease_contact,
            Debtor.deceased,
            Debtor.bankrupt,
            Debtor.disputed,
            Debtor.attorney_represented,
            Debtor.work_contact_forbidden,
            Debtor.inconvenient_places,
        )
        .where(Debtor.institution_id == institution_id, Debtor.id.in_(debtor_ids))
        .order_by(Debtor.id)
    ).all()


def phone_zone_rows(
    session: Session, *, institution_id: int, debtor_ids: Sequence[int]
) -> Sequence[Any]:
    """Return (debtor, zone, zone source) of many debtors' own phones that carry a zone."""
    return session.execute(
        select(ContactPoint.debtor_id, ContactPoint.timezone, ContactPoint.timezone_source)
        .where(
            ContactPoint.institution_id == institution_id,
            ContactPoint.debtor_id.in_(debtor_ids),
            ContactPoint.third_party.is_(False),
            ContactPoint.kind.in_([ContactKind.mobile, ContactKind.landline]),
            ContactPoint.status.not_in(
                [ContactStatus.invalid, ContactStatus.wrong_party, ContactStatus.superseded]
            ),
            ContactPoint.timezone.is_not(None),
        )
        .order_by(ContactPoint.debtor_id, ContactPoint.id)
    ).all()


def windows_of_debtors(
    session: Session, *, institution_id: int, debtor_ids: Sequence[int]
) -> Sequence[ContactWindow]:
    """Return the agreed and inconvenient windows of many debtors."""
    return (
        session.execute(
            select(ContactWindow).where(
                ContactWindow.institution_id == institution_id,
                ContactWindow.debtor_id.in_(debtor_ids),
            )
        )
        .scalars()
        .all()
    )


def validation_rows(
    session: Session, *, institution_id: int, account_ids: Sequence[int]
) -> Sequence[Any]:
    """Return (account, initial communication, validation notice sent) of many accounts."""
    return session.execute(
        select(
            Account.id, Account.initial_communication_on, Account.validation_notice_sent_on
        ).where(Account.institution_id == institution_id, Account.id.in_(account_ids))
    ).all()
