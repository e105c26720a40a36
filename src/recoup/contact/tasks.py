"""Contact's background jobs: marking planned contacts nobody reported as expired."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from recoup.contact import service
from recoup.kit import jobs


@jobs.handler("contact.expire_attempts")
def expire_attempts(session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001
    """Mark planned contacts past their expiry as expired (they keep their cap slots)."""
    service.expire_attempts(session)


# Every quarter hour: a planned contact lives two hours, so the log is never far behind.
jobs.periodic(jobs.Schedule("contact.expire_attempts", minute="*/15"))
