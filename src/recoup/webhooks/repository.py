"""Webhook queries, each scoped to one institution."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.kit.errors import NotFound
from recoup.kit.pagination import Page, PageRequest
from recoup.models.webhooks import WebhookDelivery, WebhookEvent, WebhookSubscription


def subscriptions(session: Session, *, institution_id: int) -> list[WebhookSubscription]:
    """Return the institution's subscriptions, the newest first."""
    return list(
        session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.institution_id == institution_id)
            .order_by(WebhookSubscription.id.desc())
        )
    )


def require_subscription(
    session: Session, *, institution_id: int, subscription_id: int
) -> WebhookSubscription:
    """Return the institution's subscription ``subscription_id`` or raise 404."""
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None or subscription.institution_id != institution_id:
        raise NotFound(f"no webhook subscription {subscription_id} in your institution")
    return subscription


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery with its event and its subscription's address, for lists."""

    delivery: WebhookDelivery
    event: WebhookEvent
    url: str


def deliveries(
    session: Session,
    *,
    institution_id: int,
    page: PageRequest,
    status: str | None = None,
    subscription_id: int | None = None,
) -> Page[DeliveryRow]:
    """Return one page of the institution's deliveries, the newest first."""
    query = (
        select(WebhookDelivery, WebhookEvent, WebhookSubscription.url)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookDelivery.institution_id == institution_id)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if subscription_id is not None:
        query = query.where(WebhookDelivery.subscription_id == subscription_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(WebhookDelivery.id.desc()).limit(page.size).offset(page.offset)
    ).all()
    items = [DeliveryRow(delivery, event, url) for delivery, event, url in rows]
    return Page(items, total, page.page, page.size)


def require_delivery(
    session: Session, *, institution_id: int, delivery_id: int, lock: bool = False
) -> WebhookDelivery:
    """Return the institution's delivery ``delivery_id`` or raise 404."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=lock)
    if delivery is None or delivery.institution_id != institution_id:
        raise NotFound(f"no webhook delivery {delivery_id} in your institution")
    return delivery


def status_counts(session: Session, *, institution_id: int) -> dict[str, int]:
    """Return how many of the institution's deliveries are in each status."""
    rows = session.execute(
        select(WebhookDelivery.status, func.count())
        .where(WebhookDelivery.institution_id == institution_id)
        .group_by(WebhookDelivery.status)
    ).all()
    return {status: int(count) for status, count in rows}
