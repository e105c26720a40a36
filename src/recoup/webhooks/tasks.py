"""Webhooks' background job: one try of one delivery (``webhooks.deliver``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from recoup.kit import events, jobs
from recoup.webhooks import delivery


@jobs.handler(events.DELIVER_JOB, max_attempts=3)
def deliver(session: Session, payload: dict[str, Any]) -> None:
    """Try the delivery once; its own retries (backoff with jitter) are further jobs.

    The handler commits its session before the receiver is called (``webhooks.delivery``).
    """
    delivery.deliver(session, delivery_id=int(payload["delivery_id"]))
