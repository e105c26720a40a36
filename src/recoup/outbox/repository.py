"""Queries of the outbox; every one is scoped by institution (the dispatcher's by the rows)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from recoup.enums import ContactStatus
from recoup.kit.clock import aware
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account, Payment
from recoup.models.compliance import MessageTemplate, TemplateStatus
from recoup.models.debtor import ContactPoint
from recoup.models.outbox import OutboxCampaign, OutboxMessage, OutboxReceipt
from recoup.models.scoring import AccountScore
from recoup.outbox.rules import OutboxStatus


def by_key(session: Session, *, institution_id: int, key: str) -> OutboxMessage | None:
    """Return the institution's message of an idempotency key."""
    return session.execute(
        select(OutboxMessage).where(
            OutboxMessage.institution_id == institution_id, OutboxMessage.idempotency_key == key
        )
    ).scalar_one_or_none()


def existing_keys(session: Session, *, institution_id: int, keys: Collection[str]) -> set[str]:
    """Return which of the idempotency keys the institution's messages already hold."""
    found: set[str] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), 10_000):
        chunk = ordered[start : start + 10_000]
        found.update(
            session.execute(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.institution_id == institution_id,
                    OutboxMessage.idempotency_key.in_(chunk),
                )
            ).scalars()
        )
    return found


def add_messages(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert many messages in one statement; return their ids in the rows' order."""
    if not rows:
        return []
    result = session.execute(
        insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True),
        list(rows),
    )
    return [int(message_id) for message_id in result.scalars()]


def get_message(session: Session, *, institution_id: int, message_id: int) -> OutboxMessage | None:
    """Return one of the institution's messages."""
    return session.execute(
        select(OutboxMessage).where(
            OutboxMessage.institution_id == institution_id, OutboxMessage.id == message_id
        )
    ).scalar_one_or_none()


def claim_due(
    session: Session, *, now: datetime, limit: int, institution_id: int | None = None
) -> list[OutboxMessage]:
    """Lock up to ``limit`` queued messages that are due, oldest first (others skip them)."""
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.QUEUED, OutboxMessage.scheduled_at <= now)
        .order_by(OutboxMessage.scheduled_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if institution_id is not None:
        statement = statement.where(OutboxMessage.institution_id == institution_id)
    return list(session.execute(statement).scalars())


def stale_sending(
    session: Session, *, before: datetime, limit: int, institution_id: int | None = None
) -> list[OutboxMessage]:
    """Lock messages left *sending* since before ``before`` (their dispatcher died)."""
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.sending_since <= before)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if institution_id is not None:
        statement = statement.where(OutboxMessage.institution_id == institution_id)
    return list(session.execute(statement).scalars())


def sandbox_awaiting_receipts(
    session: Session, *, sent_before: datetime, limit: int, institution_id: int | None = None
) -> list[OutboxMessage]:
    """Return messages the sandbox provider accepted before ``sent_before`` and has not yet
    answered with a final receipt (still *sent*), oldest first."""
    statement = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.provider == "sandbox",
            OutboxMessage.sent_at <= sent_before,
        )
        .order_by(OutboxMessage.sent_at, OutboxMessage.id)
        .limit(limit)
    )
    if institution_id is not None:
        statement = statement.where(OutboxMessage.institution_id == institution_id)
    return list(session.execute(statement).scalars())


def status_counts_by_campaign(
    session: Session, *, institution_id: int, campaign_ids: Collection[int]
) -> dict[int, dict[str, int]]:
    """Return, per campaign, how many of its messages are in each status."""
    found: dict[int, dict[str, int]] = {}
    if not campaign_ids:
        return found
    rows = session.execute(
        select(OutboxMessage.campaign_id, OutboxMessage.status, func.count())
        .where(
            OutboxMessage.institution_id == institution_id,
            OutboxMessage.campaign_id.in_(list(campaign_ids)),
        )
        .group_by(OutboxMessage.campaign_id, OutboxMessage.status)
    ).all()
    for campaign_id, status, count in rows:
        if campaign_id is not None:
            found.setdefault(campaign_id, {})[str(status)] = int(count)
    return found


def messages_by_id(session: Session, ids: Collection[int]) -> dict[int, OutboxMessage]:
    """Return messages by id (the dispatcher's own rows, locked by their send token)."""
    if not ids:
        return {}
    rows = session.execute(select(OutboxMessage).where(OutboxMessage.id.in_(list(ids))))
    return {message.id: message for message in rows.scalars()}


def update_messages(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Apply many messages' changes at once (each a dict with the message's ``id``)."""
    if changes:
        session.execute(update(OutboxMessage), list(changes))


def paid_since(
    session: Session, *, institution_id: int, pairs: Collection[tuple[int, int | None, datetime]]
) -> set[tuple[int, int | None]]:
    """Return the (debtor, account) pairs with a payment since the given moment.

    A pair without an account looks at every account of the debtor.
    """
    if not pairs:
        return set()
    earliest = min(moment for _, _, moment in pairs)
    debtor_ids = {debtor_id for debtor_id, _, _ in pairs}
    rows = session.execute(
        select(Account.debtor_id, Payment.account_id, func.max(Payment.created_at))
        .join(Account, Account.id == Payment.account_id)
        .where(
            Payment.institution_id == institution_id,
            Account.debtor_id.in_(list(debtor_ids)),
            Payment.created_at >= earliest,
            Payment.reversed_at.is_(None),
        )
        .group_by(Account.debtor_id, Payment.account_id)
    ).all()
    latest_by_account = {(debtor_id, account_id): latest for debtor_id, account_id, latest in rows}
    found: set[tuple[int, int | None]] = set()
    for debtor_id, account_id, moment in pairs:
        for (payer, paid_account), latest in latest_by_account.items():
            if payer != debtor_id or (account_id is not None and paid_account != account_id):
                continue
            if aware(latest) >= moment:
                found.add((debtor_id, account_id))
    return found


def add_receipt(session: Session, receipt: OutboxReceipt) -> bool:
    """Store a receipt unless the same status was already received; tell whether it is new."""
    exists = session.execute(
        select(OutboxReceipt.id).where(
            OutboxReceipt.message_id == receipt.message_id,
            OutboxReceipt.provider_status == receipt.provider_status,
        )
    ).first()
    if exists is not None:
        return False
    session.add(receipt)
    session.flush()
    return True


def by_provider_id(
    session: Session, *, institution_id: int, provider_message_id: str
) -> OutboxMessage | None:
    """Return the message a provider knows by ``provider_message_id``."""
    return session.execute(
        select(OutboxMessage).where(
            OutboxMessage.institution_id == institution_id,
            OutboxMessage.provider_message_id == provider_message_id,
        )
    ).scalar_one_or_none()


def messages_page(
    session: Session,
    *,
    institution_id: int,
    page: PageRequest,
    status: str | None = None,
    campaign_id: int | None = None,
) -> Page[OutboxMessage]:
    """Return one page of the institution's messages, newest first."""
    statement = select(OutboxMessage).where(OutboxMessage.institution_id == institution_id)
    if status:
        statement = statement.where(OutboxMessage.status == status)
    if campaign_id is not None:
        statement = statement.where(OutboxMessage.campaign_id == campaign_id)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.execute(
        statement.order_by(OutboxMessage.id.desc()).limit(page.size).offset(page.offset)
    ).scalars()
    return Page(items=list(rows), total=total, page=page.page, size=page.size)


def status_counts(
    session: Session, *, institution_id: int, campaign_id: int | None = None
) -> dict[str, int]:
    """Return how many of the institution's (or one campaign's) messages are in each status."""
    statement = (
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.institution_id == institution_id)
        .group_by(OutboxMessage.status)
    )
    if campaign_id is not None:
        statement = statement.where(OutboxMessage.campaign_id == campaign_id)
    rows = session.execute(statement).all()
    return {str(status): count for status, count in rows}


def receipts_of(
    session: Session, *, institution_id: int, message_ids: Collection[int]
) -> dict[int, list[OutboxReceipt]]:
    """Return the receipts of messages, oldest first, by message id."""
    found: dict[int, list[OutboxReceipt]] = {}
    if not message_ids:
        return found
    rows = session.execute(
        select(OutboxReceipt)
        .where(
            OutboxReceipt.institution_id == institution_id,
            OutboxReceipt.message_id.in_(list(message_ids)),
        )
        .order_by(OutboxReceipt.received_at, OutboxReceipt.id)
    ).scalars()
    for receipt in rows:
        found.setdefault(receipt.message_id, []).append(receipt)
    return found


def _segment_statement(
    institution_id: int,
    buckets: Collection[str],
    segments: Collection[str],
    grades: Collection[str],
) -> Any:
    statement = select(Account).where(
        Account.institution_id == institution_id,
        Account.status.not_in(["settled", "closed", "current"]),
    )
    if buckets:
        statement = statement.where(Account.bucket.in_(list(buckets)))
    if segments or grades:
        latest = (
            select(AccountScore.account_id, func.max(AccountScore.id).label("score_id"))
            .where(AccountScore.institution_id == institution_id)
            .group_by(AccountScore.account_id)
            .subquery()
        )
        statement = statement.join(latest, latest.c.account_id == Account.id).join(
            AccountScore, AccountScore.id == latest.c.score_id
        )
        if segments:
            statement = statement.where(AccountScore.segment.in_(list(segments)))
        if grades:
            statement = statement.where(AccountScore.grade.in_(list(grades)))
    return statement


def segment_accounts(
    session: Session,
    *,
    institution_id: int,
    buckets: Collection[str],
    segments: Collection[str],
    grades: Collection[str],
    limit: int,
    after: int = 0,
) -> list[Account]:
    """Return the open accounts of a segment: buckets, and the latest score's segment and grade
    (by id, those after account ``after``)."""
    statement = _segment_statement(institution_id, buckets, segments, grades)
    if after:
        statement = statement.where(Account.id > after)
    return list(session.execute(statement.order_by(Account.id).limit(limit)).scalars())


def count_segment_accounts(
    session: Session,
    *,
    institution_id: int,
    buckets: Collection[str],
    segments: Collection[str],
    grades: Collection[str],
) -> int:
    """Count the open accounts of a segment."""
    statement = _segment_statement(institution_id, buckets, segments, grades).subquery()
    return int(session.execute(select(func.count()).select_from(statement)).scalar_one())


def get_campaign(
    session: Session, *, institution_id: int, campaign_id: int, lock: bool = False
) -> OutboxCampaign | None:
    """Return one of the institution's campaigns (locked for its queueing job with ``lock``)."""
    statement = select(OutboxCampaign).where(
        OutboxCampaign.institution_id == institution_id, OutboxCampaign.id == campaign_id
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.execute(statement).scalar_one_or_none()


def add_campaign(session: Session, campaign: OutboxCampaign) -> OutboxCampaign:
    """Store a campaign and give it its id."""
    session.add(campaign)
    session.flush()
    return campaign


def campaigns(session: Session, *, institution_id: int, limit: int = 20) -> list[OutboxCampaign]:
    """Return the institution's latest campaigns."""
    return list(
        session.execute(
            select(OutboxCampaign)
            .where(OutboxCampaign.institution_id == institution_id)
            .order_by(OutboxCampaign.id.desc())
            .limit(limit)
        ).scalars()
    )


def own_points(
    session: Session, *, institution_id: int, debtor_ids: Collection[int], kinds: Collection[str]
) -> dict[int, ContactPoint]:
    """Return each debtor's own usable point of the kinds (valid before unverified, then oldest)."""
    if not debtor_ids:
        return {}
    rows = session.execute(
        select(ContactPoint)
        .where(
            ContactPoint.institution_id == institution_id,
            ContactPoint.debtor_id.in_(list(debtor_ids)),
            ContactPoint.kind.in_(list(kinds)),
            ContactPoint.third_party.is_(False),
            ContactPoint.status.in_([ContactStatus.valid, ContactStatus.unverified]),
        )
        .order_by(ContactPoint.id)
    ).scalars()
    found: dict[int, ContactPoint] = {}
    for point in rows:
        current = found.get(point.debtor_id)
        if current is None or (
            current.status != ContactStatus.valid and point.status == ContactStatus.valid
        ):
            found[point.debtor_id] = point
    return found


def approved_templates(
    session: Session, *, institution_id: int, channels: Sequence[str], today: date
) -> list[MessageTemplate]:
    """Return the institution's approved templates of some channels not due for re-review."""
    return list(
        session.execute(
            select(MessageTemplate)
            .where(
                MessageTemplate.institution_id == institution_id,
                MessageTemplate.status == TemplateStatus.approved,
                MessageTemplate.channel.in_(list(channels)),
                or_(MessageTemplate.re_review_on.is_(None), MessageTemplate.re_review_on >= today),
            )
            .order_by(MessageTemplate.name, MessageTemplate.id)
        ).scalars()
    )
