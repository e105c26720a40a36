"""Queries of the contact log and of consents; every one is scoped by institution."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, insert, select, update
from sqlalchemy.orm import Session

from recoup.contact.rules import (
    RIGHT_PARTY_CODES,
    AttemptStatus,
    ChannelStanding,
    Direction,
    channel_standing,
)
from recoup.enums import SCRIPT_KIND
from recoup.identity.principal import Principal
from recoup.identity.scoping import scoped
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account
from recoup.models.compliance import MessageTemplate
from recoup.models.contact import ContactAttempt, ContactPointConsent
from recoup.models.debtor import ContactPoint
from recoup.models.identity import User


def add_attempt(session: Session, attempt: ContactAttempt) -> ContactAttempt:
    """Store a new attempt and give it its id."""
    session.add(attempt)
    session.flush()
    return attempt


def add_attempts(session: Session, rows: Sequence[dict[str, object]]) -> int:
    """Store many new attempts in one statement; return how many."""
    if rows:
        session.execute(insert(ContactAttempt), list(rows))
    return len(rows)


def attempts_since(
    session: Session, *, institution_id: int, debtor_id: int, since: datetime
) -> Sequence[ContactAttempt]:
    """Return the debtor's outbound attempts planned since a moment that still count."""
    return (
        session.execute(
            select(ContactAttempt)
            .where(
                ContactAttempt.institution_id == institution_id,
                ContactAttempt.debtor_id == debtor_id,
                ContactAttempt.direction == Direction.OUTBOUND,
                ContactAttempt.status != AttemptStatus.CANCELLED,
                ContactAttempt.planned_at >= since,
            )
            .order_by(ContactAttempt.planned_at)
        )
        .scalars()
        .all()
    )


def attempts_since_for(
    session: Session, *, institution_id: int, debtor_ids: Collection[int], since: datetime
) -> dict[int, list[ContactAttempt]]:
    """Return ``attempts_since`` for many debtors at once, by debtor id."""
    found: dict[int, list[ContactAttempt]] = {debtor_id: [] for debtor_id in debtor_ids}
    if not found:
        return found
    rows = session.execute(
        select(ContactAttempt)
        .where(
            ContactAttempt.institution_id == institution_id,
            ContactAttempt.debtor_id.in_(list(found)),
            ContactAttempt.direction == Direction.OUTBOUND,
            ContactAttempt.status != AttemptStatus.CANCELLED,
            ContactAttempt.planned_at >= since,
        )
        .order_by(ContactAttempt.planned_at)
    ).scalars()
    for attempt in rows:
        found[attempt.debtor_id].append(attempt)
    return found


def attempts_for_decisions(
    session: Session, *, institution_id: int, decision_ids: Collection[int]
) -> dict[int, ContactAttempt]:
    """Return the attempts many gate decisions allowed, by decision id."""
    if not decision_ids:
        return {}
    rows = session.execute(
        select(ContactAttempt).where(
            ContactAttempt.institution_id == institution_id,
            ContactAttempt.decision_id.in_(list(decision_ids)),
        )
    ).scalars()
    return {attempt.decision_id: attempt for attempt in rows if attempt.decision_id is not None}


def update_attempts(session: Session, changes: Sequence[dict[str, object]]) -> None:
    """Apply many attempts' changes at once (each a dict with the attempt's ``id``)."""
    if changes:
        session.execute(update(ContactAttempt), list(changes))


def attempt_for_decision(
    session: Session, *, institution_id: int, decision_id: int
) -> ContactAttempt | None:
    """Return the attempt a gate decision allowed."""
    return session.execute(
        select(ContactAttempt).where(
            ContactAttempt.institution_id == institution_id,
            ContactAttempt.decision_id == decision_id,
        )
    ).scalar_one_or_none()


def expire_attempts(session: Session, *, now: datetime) -> int:
    """Mark every planned attempt past its expiry as expired; return how many."""
    result = session.execute(
        update(ContactAttempt)
        .where(
            ContactAttempt.status == AttemptStatus.PLANNED,
            ContactAttempt.expires_at <= now,
        )
        .values(status=AttemptStatus.EXPIRED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def debtor_attempts_page(
    session: Session, *, principal: Principal, debtor_id: int, page: PageRequest
) -> Page[tuple[ContactAttempt, ContactPoint | None, str | None, str | None]]:
    """Return one page of a debtor's contact log, newest first, as ``principal`` may see it.

    Each attempt comes with its contact point, its account's external id and the username
    of its agent.
    """
    statement = scoped(
        select(ContactAttempt).where(ContactAttempt.debtor_id == debtor_id),
        ContactAttempt,
        principal,
    )
    total = session.execute(
        select(func.count()).select_from(statement.with_only_columns(ContactAttempt.id).subquery())
    ).scalar_one()
    moment = func.coalesce(ContactAttempt.started_at, ContactAttempt.planned_at)
    rows = session.execute(
        statement.add_columns(ContactPoint, Account.external_id, User.username)
        .outerjoin(ContactPoint, ContactPoint.id == ContactAttempt.contact_point_id)
        .outerjoin(Account, Account.id == ContactAttempt.account_id)
        .outerjoin(User, User.id == ContactAttempt.agent_id)
        .order_by(moment.desc(), ContactAttempt.id.desc())
        .offset(page.offset)
        .limit(page.size)
    ).all()
    return Page(
        items=[(row[0], row[1], row[2], row[3]) for row in rows],
        total=total,
        page=page.page,
        size=page.size,
    )


def made_contacts(
    session: Session,
    *,
    institution_id: int,
    until: datetime,
    account_ids: Sequence[int] | Select[int] | None = None,
) -> list[tuple[Any, ...]]:
    """Return ``(debtor_id, happened_at, outbound, right_party)`` of contacts made before ``until``.

    With ``account_ids``, only the contacts of those accounts' debtors, on any account.
    """
    happened_at = func.coalesce(ContactAttempt.started_at, ContactAttempt.planned_at)
    statement = select(
        ContactAttempt.debtor_id,
        happened_at,
        ContactAttempt.direction == Direction.OUTBOUND,
        case((ContactAttempt.outcome.in_(sorted(RIGHT_PARTY_CODES)), True), else_=False),
    ).where(
        ContactAttempt.institution_id == institution_id,
        ContactAttempt.status == AttemptStatus.MADE,
        happened_at < until,
    )
    if account_ids is not None:
        statement = statement.where(
            ContactAttempt.debtor_id.in_(
                select(Account.debtor_id).where(Account.id.in_(account_ids))
            )
        )
    return [tuple(row) for row in session.execute(statement)]


def standing(session: Session, *, institution_id: int, contact_point_id: int) -> ChannelStanding:
    """Return the channels a contact point opted out of and consented to."""
    rows = session.execute(
        select(ContactPointConsent.channel, ContactPointConsent.kind).where(
            ContactPointConsent.institution_id == institution_id,
            ContactPointConsent.contact_point_id == contact_point_id,
        )
    ).all()
    return channel_standing((str(channel), str(kind)) for channel, kind in rows)


def consents_of(
    session: Session, *, institution_id: int, contact_point_id: int
) -> Sequence[ContactPointConsent]:
    """Return a contact point's consent and opt-out rows."""
    return (
        session.execute(
            select(ContactPointConsent)
            .where(
                ContactPointConsent.institution_id == institution_id,
                ContactPointConsent.contact_point_id == contact_point_id,
            )
            .order_by(ContactPointConsent.kind, ContactPointConsent.channel)
        )
        .scalars()
        .all()
    )


def consent(
    session: Session, *, contact_point_id: int, channel: str, kind: str
) -> ContactPointConsent | None:
    """Return one consent or opt-out row of a contact point."""
    return session.execute(
        select(ContactPointConsent).where(
            ContactPointConsent.contact_point_id == contact_point_id,
            ContactPointConsent.channel == channel,
            ContactPointConsent.kind == kind,
        )
    ).scalar_one_or_none()


def attempt_rows_since(session: Session, *, institution_id: int, since: datetime) -> Sequence[Any]:
    """Return every outbound attempt of the institution planned since a moment that still counts.

    Plain rows (debtor, planned, started, channel, party, outcome, effective, account,
    contact point), for deciding many debtors' contacts at once.
    """
    return session.execute(
        select(
            ContactAttempt.debtor_id,
            ContactAttempt.planned_at,
            ContactAttempt.started_at,
            ContactAttempt.channel,
            ContactAttempt.party,
            ContactAttempt.outcome,
            ContactAttempt.effective,
            ContactAttempt.account_id,
            ContactAttempt.contact_point_id,
        )
        .where(
            ContactAttempt.institution_id == institution_id,
            ContactAttempt.direction == Direction.OUTBOUND,
            ContactAttempt.status != AttemptStatus.CANCELLED,
            ContactAttempt.planned_at >= since,
        )
        .order_by(ContactAttempt.debtor_id, ContactAttempt.planned_at)
    ).all()


def standings(
    session: Session, *, institution_id: int, contact_point_ids: Collection[int]
) -> dict[int, ChannelStanding]:
    """Return ``standing`` for many contact points at once, by contact point id."""
    rows: dict[int, list[tuple[str, str]]] = {point_id: [] for point_id in contact_point_ids}
    if not rows:
        return {}
    for point_id, channel, kind in session.execute(
        select(
            ContactPointConsent.contact_point_id,
            ContactPointConsent.channel,
            ContactPointConsent.kind,
        ).where(
            ContactPointConsent.institution_id == institution_id,
            ContactPointConsent.contact_point_id.in_(list(rows)),
        )
    ):
        rows[point_id].append((str(channel), str(kind)))
    return {point_id: channel_standing(found) for point_id, found in rows.items()}


def script_status(session: Session, *, institution_id: int, script_id: int) -> str | None:
    """Return the review status of the institution's call script ``script_id`` (None: none)."""
    status = session.execute(
        select(MessageTemplate.status).where(
            MessageTemplate.institution_id == institution_id,
            MessageTemplate.id == script_id,
            MessageTemplate.kind == SCRIPT_KIND,
        )
    ).scalar_one_or_none()
    return None if status is None else str(status)


def last_made_outcome(session: Session, *, institution_id: int, debtor_id: int) -> str | None:
    """Return the outcome code of the debtor's latest contact made with an outcome, if any."""
    return session.execute(
        select(ContactAttempt.outcome)
        .where(
            ContactAttempt.institution_id == institution_id,
            ContactAttempt.debtor_id == debtor_id,
            ContactAttempt.status == AttemptStatus.MADE,
            ContactAttempt.outcome.is_not(None),
        )
        .order_by(ContactAttempt.started_at.desc(), ContactAttempt.id.desc())
        .limit(1)
    ).scalar_one_or_none()
