"""Integration's background jobs: forgetting idempotency keys past their time, nightly."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from recoup.integration import service
from recoup.kit import jobs


@jobs.handler("integration.prune_idempotency_keys")
def prune_idempotency_keys(session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001
    """Delete the idempotency keys older than their institution's setting."""
    service.prune_idempotency_keys(session)


jobs.periodic(jobs.Schedule("integration.prune_idempotency_keys", minute="29", hour="3"))
