"""The outbox's background job: the dispatcher, every minute."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from recoup.kit import jobs
from recoup.outbox import dispatch


@jobs.handler("outbox.dispatch", max_attempts=3)
def dispatch_messages(session: Session, payload: dict[str, Any]) -> None:
    """Send the due messages. The dispatcher commits this job's session around each provider
    call (the sent-marker protocol); a crash leaves the job to run again, which reconciles."""
    dispatch.dispatch(session, institution_id=payload.get("institution_id"))


jobs.periodic(jobs.Schedule("outbox.dispatch", minute="*"))
