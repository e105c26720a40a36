"""Webhook subscriptions and dead letters: create, change, replay (audited, never committing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.config import get_settings
from recoup.kit import events, jobs
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict, ValidationFailed
from recoup.kit.pagination import PageRequest
from recoup.models.webhooks import DeliveryStatus, WebhookDelivery, WebhookSubscription
from recoup.webhooks import network, repository, rules


@dataclass(frozen=True, slots=True)
class CreatedSubscription:
    """A new subscription and its signing secret, which is shown this once."""

    subscription: WebhookSubscription
    secret: str


def _checked_url(url: str) -> str:
    url = url.strip()
    settings = get_settings()
    policy = network.policy_of(settings)
    problem = rules.url_problem(url, allow_http=settings.is_development, policy=policy)
    if problem is None:
        problem = network.registration_problem(url, policy)
    if problem:
        raise ValidationFailed(f"url: {problem}", errors=[{"field": "url", "message": problem}])
    return url


def _checked_types(event_types: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(item.strip() for item in event_types if item.strip()))
    unknown = [item for item in chosen if item not in events.EVENT_TYPES]
    if not chosen or unknown:
        message = (
            f"unknown event types {', '.join(unknown)}" if unknown else "choose at least one"
        ) + f"; known: {', '.join(events.EVENT_TYPES)}"
        raise ValidationFailed(
            f"event_types: {message}", errors=[{"field": "event_types", "message": message}]
        )
    return chosen


def create_subscription(
    session: Session,
    *,
    institution_id: int,
    url: str,
    event_types: Sequence[str],
    actor: str,
    description: str | None = None,
) -> CreatedSubscription:
    """Subscribe an address to event types; return it with its new secret (audited)."""
    secret = rules.new_secret()
    subscription = WebhookSubscription(
        institution_id=institution_id,
        url=_checked_url(url),
        event_types=_checked_types(event_types),
        secret=secret,
        description=(description or "").strip() or None,
        active=True,
        created_by=actor,
    )
    session.add(subscription)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="webhooks.subscribe",
        object_type="webhook_subscription",
        object_id=subscription.id,
        institution_id=institution_id,
        details={"url": subscription.url, "event_types": subscription.event_types},
    )
    events.forget_subscribers(session, institution_id)
    return CreatedSubscription(subscription, secret)


def update_subscription(
    session: Session,
    *,
    subscription: WebhookSubscription,
    actor: str,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    active: bool | None = None,
    description: str | None = None,
) -> WebhookSubscription:
    """Change a subscription's address, types, description or active flag (audited)."""
    before = {
        "url": subscription.url,
        "event_types": subscription.event_types,
        "active": subscription.active,
    }
    if url is not None:
        subscription.url = _checked_url(url)
    if event_types is not None:
        subscription.event_types = _checked_types(event_types)
    if active is not None:
        subscription.active = active
    if description is not None:
        subscription.description = description.strip() or None
    after = {
        "url": subscription.url,
        "event_types": subscription.event_types,
        "active": subscription.active,
    }
    changed = {key: [before[key], after[key]] for key in after if before[key] != after[key]}
    if changed:
        audit.record(
            session,
            actor=actor,
            action="webhooks.update",
            object_type="webhook_subscription",
            object_id=subscription.id,
            institution_id=subscription.institution_id,
            details={"changed": changed},
        )
    session.flush()
    events.forget_subscribers(session, subscription.institution_id)
    return subscription


def rotate_secret(
    session: Session, *, subscription: WebhookSubscription, actor: str
) -> CreatedSubscription:
    """Give a subscription a new signing secret, shown this once (audited)."""
    secret = rules.new_secret()
    subscription.secret = secret
    audit.record(
        session,
        actor=actor,
        action="webhooks.rotate_secret",
        object_type="webhook_subscription",
        object_id=subscription.id,
        institution_id=subscription.institution_id,
    )
    session.flush()
    return CreatedSubscription(subscription, secret)


def replay(session: Session, *, delivery: WebhookDelivery, actor: str) -> WebhookDelivery:
    """Send a dead letter again with a fresh set of tries (audited)."""
    if delivery.status != DeliveryStatus.dead:
        raise Conflict(
            f"delivery {delivery.id} is {delivery.status}; only dead letters are replayed"
        )
    delivery.status = DeliveryStatus.pending
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    jobs.enqueue(
        session,
        events.DELIVER_JOB,
        {"delivery_id": delivery.id},
        institution_id=delivery.institution_id,
    )
    audit.record(
        session,
        actor=actor,
        action="webhooks.replay",
        object_type="webhook_delivery",
        object_id=delivery.id,
        institution_id=delivery.institution_id,
    )
    session.flush()
    return delivery


def replay_dead(session: Session, *, institution_id: int, actor: str) -> int:
    """Replay the institution's dead letters, up to 200 at a time; return how many."""
    page = repository.deliveries(
        session,
        institution_id=institution_id,
        page=PageRequest(1, 200),
        status=DeliveryStatus.dead,
    )
    for row in page.items:
        replay(session, delivery=row.delivery, actor=actor)
    return len(page.items)
