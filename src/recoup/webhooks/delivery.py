"""Sending one delivery: sign, POST, record the answer, schedule the next try or bury it.

This is a transaction boundary, like the outbox's dispatcher: it commits the job's session
before the receiver is called, so no database lock is held while a slow receiver answers
(on SQLite the write lock would stop every writer). A worker killed after the POST and
before the answer is recorded leaves the job to run again, and the receiver gets the event
again with the same ``Recoup-Event-Id``: delivery is at least once, and receivers
de-duplicate on that id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session

from recoup.institutions import repository as institutions
from recoup.institutions.settings import settings_of
from recoup.kit import events, jobs
from recoup.kit.clock import utcnow
from recoup.models.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from recoup.webhooks import network, rules

USER_AGENT = "Recoup-Webhooks/1"
EVENT_ID_HEADER = "Recoup-Event-Id"
EVENT_TYPE_HEADER = "Recoup-Event-Type"
TIMESTAMP_HEADER = "Recoup-Timestamp"
SIGNATURE_HEADER = "Recoup-Signature"
ATTEMPT_HEADER = "Recoup-Delivery-Attempt"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver did: its status code, or why there was none."""

    status_code: int | None
    error: str | None = None
    # No later try can succeed (the target policy refuses the receiver's address): the
    # delivery becomes a dead letter at once instead of being retried.
    final: bool = False


Post = Callable[[str, bytes, Mapping[str, str], float], Answer]


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    """POST a delivery to an allowed address; a network failure, a refused address or a
    timeout is an answer without a status (``recoup.webhooks.network``). A refused address is
    final: it stays refused until the operator changes the target settings."""
    try:
        with network.client(network.policy_of(), timeout) as client:
            response = client.post(url, content=body, headers=dict(headers))
    except httpx.HTTPError as error:
        if isinstance(error.__cause__, network.TargetRefused):
            problem = str(error.__cause__).removeprefix("refused: ")
            return Answer(None, rules.refused_target_error(problem), final=True)
        return Answer(None, f"{type(error).__name__}: {error}"[:1000])
    return Answer(
        response.status_code, None if rules.delivered(response.status_code) else response.text[:500]
    )


def body_of(event: WebhookEvent) -> bytes:
    """Return the exact bytes a delivery of ``event`` sends (and signs)."""
    document = events.payload_of(event)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def headers_for(
    event: WebhookEvent, secret: str, body: bytes, *, attempt: int, timestamp: str
) -> dict[str, str]:
    """Return a delivery's headers, its signature over the timestamp and the body included."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: event.event_id,
        EVENT_TYPE_HEADER: event.type,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: rules.signature(secret, timestamp, body),
        ATTEMPT_HEADER: str(attempt),
    }


def deliver(session: Session, *, delivery_id: int, post: Post = http_post) -> str:
    """Try one delivery; return its status afterwards ("skipped" when nothing was due)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status in {DeliveryStatus.delivered, DeliveryStatus.dead}:
        return "skipped"
    subscription = session.get(WebhookSubscription, delivery.subscription_id)
    event = session.get(WebhookEvent, delivery.event_id)
    if subscription is None or event is None:
        return "skipped"
    settings = settings_of(institutions.require_by_id(session, delivery.institution_id)).integration
    attempt = delivery.attempts + 1
    if not subscription.active:
        _record(
            session,
            delivery,
            attempt - 1,
            Answer(None, "the subscription is turned off; replay after turning it on"),
            max_attempts=0,
        )
        return str(delivery.status)
    body = body_of(event)
    headers = headers_for(
        event, subscription.secret, body, attempt=attempt, timestamp=str(int(time.time()))
    )
    url = subscription.url
    # Nothing is held while the receiver answers (see the module's docstring).
    session.commit()
    answer = post(url, body, headers, settings.webhook_timeout_seconds)
    delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True) or delivery
    _record(session, delivery, attempt, answer, max_attempts=settings.webhook_max_attempts)
    return str(delivery.status)


def _record(
    session: Session,
    delivery: WebhookDelivery,
    attempt: int,
    answer: Answer,
    *,
    max_attempts: int,
) -> None:
    now = utcnow()
    delivery.attempts = attempt
    delivery.last_attempt_at = now
    delivery.last_status_code = answer.status_code
    if answer.status_code is not None and rules.delivered(answer.status_code):
        delivery.status = DeliveryStatus.delivered
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        delivery.last_error = None
    elif answer.final or attempt >= max_attempts:
        delivery.status = DeliveryStatus.dead
        delivery.next_attempt_at = None
        delivery.last_error = answer.error or f"HTTP {answer.status_code}"
    else:
        delivery.status = DeliveryStatus.retrying
        delivery.next_attempt_at = now + rules.retry_wait(attempt)
        delivery.last_error = answer.error or f"HTTP {answer.status_code}"
        jobs.enqueue(
            session,
            events.DELIVER_JOB,
            {"delivery_id": delivery.id},
            institution_id=delivery.institution_id,
            at=delivery.next_attempt_at,
        )
    session.flush()
