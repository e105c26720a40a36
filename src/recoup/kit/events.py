"""Events other systems subscribe to: ``emit`` one in the transaction of the change it reports.

A service that changes something an integrator cares about adds one line where it happens::

    events.emit(session, institution_id=account.institution_id, type="payment.received",
                data={"payment_id": payment.id, "account_id": account.id})

``emit`` writes the event and one delivery per active subscription of the institution to that
type, and asks for a ``webhooks.deliver`` job per delivery — all in the caller's transaction,
so an event exists if and only if its change committed, and none is lost after a crash.
With no subscriber to the type it writes nothing. ``data`` holds ids and codes only, never
personal data (names, numbers, addresses): receivers fetch what they need through the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.kit import jobs
from recoup.kit.clock import utcnow
from recoup.models.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

EVENT_TYPES: tuple[str, ...] = (
    "payment.received",
    "payment.reversed",
    "promise.created",
    "promise.kept",
    "promise.broken",
    "plan.created",
    "plan.broken",
    "case.assigned",
    "case.escalated",
    "case.closed",
    "account.cured",
    "contact.blocked",
    "message.delivered",
    "message.failed",
    "template.approved",
    "model.promoted",
    "cycle.completed",
)
DELIVER_JOB = "webhooks.deliver"
_CACHE = "recoup.webhook_subscriptions"
Scalar = str | int | float | bool | None


class UnknownEventType(ValueError):
    """An event type Recoup does not emit (a typo in a service or a subscription)."""


def check_type(event_type: str) -> str:
    """Return ``event_type`` if Recoup emits it; raise naming the known types otherwise."""
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(
            f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}"
        )
    return event_type


def _subscribers(session: Session, institution_id: int) -> list[tuple[int, frozenset[str]]]:
    cache: dict[int, list[tuple[int, frozenset[str]]]] = session.info.setdefault(_CACHE, {})
    if institution_id not in cache:
        rows = session.execute(
            select(WebhookSubscription.id, WebhookSubscription.event_types).where(
                WebhookSubscription.institution_id == institution_id,
                WebhookSubscription.active.is_(True),
            )
        ).all()
        cache[institution_id] = [(row.id, frozenset(row.event_types or ())) for row in rows]
    return cache[institution_id]


def forget_subscribers(session: Session, institution_id: int) -> None:
    """Drop this session's view of an institution's subscriptions (after one changed)."""
    session.info.get(_CACHE, {}).pop(institution_id, None)


def emit(
    session: Session,
    *,
    institution_id: int,
    type: str,
    data: Mapping[str, Scalar | list[Scalar]],
    occurred_at: datetime | None = None,
) -> WebhookEvent | None:
    """Record an event for the institution's subscribers, in the caller's transaction."""
    check_type(type)
    subscribers = [
        subscription_id
        for subscription_id, types in _subscribers(session, institution_id)
        if type in types
    ]
    if not subscribers:
        return None
    event = WebhookEvent(
        institution_id=institution_id,
        event_id=str(uuid.uuid4()),
        type=type,
        data=dict(data),
        occurred_at=occurred_at or utcnow(),
    )
    session.add(event)
    session.flush()
    deliveries = [
        WebhookDelivery(
            institution_id=institution_id,
            event_id=event.id,
            subscription_id=subscription_id,
            status=DeliveryStatus.pending,
            attempts=0,
        )
        for subscription_id in subscribers
    ]
    session.add_all(deliveries)
    session.flush()
    for delivery in deliveries:
        jobs.enqueue(
            session,
            DELIVER_JOB,
            {"delivery_id": delivery.id},
            idempotency_key=f"delivery@{delivery.id}@0",
            institution_id=institution_id,
        )
    return event


def payload_of(event: WebhookEvent) -> dict[str, Any]:
    """Return the JSON document a receiver gets for ``event``."""
    return {
        "id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "institution_id": event.institution_id,
        "data": event.data,
    }
