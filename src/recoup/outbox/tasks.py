"""The outbox's background job: the dispatcher, every minute."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from recoup.kit import jobs
from recoup.outbox import dispatch, service


@jobs.handler("outbox.dispatch", max_attempts=3)
def dispatch_messages(session: Session, payload: dict[str, Any]) -> None:
    """Send the due messages. The dispatcher commits this job's session around each provider
    call (the sent-marker protocol); a crash leaves the job to run again, which reconciles."""
    dispatch.dispatch(session, institution_id=payload.get("institution_id"))


@jobs.handler("outbox.sandbox_receipts", max_attempts=3)
def sandbox_receipts(session: Session, payload: dict[str, Any]) -> None:
    """Record the sandbox provider's delivery receipts (institutions that send through the
    sandbox: the demo's); nothing to do for any other provider."""
    service.deliver_sandbox_receipts(session, institution_id=payload.get("institution_id"))


@jobs.handler("outbox.queue_campaign", max_attempts=5)
def queue_campaign(session: Session, payload: dict[str, Any]) -> None:
    """Queue a campaign's messages batch by batch, committing each (its progress shows on the
    outbox page); a job killed midway runs again from the batch after the last committed."""
    while not service.queue_campaign_batch(
        session,
        institution_id=int(payload["institution_id"]),
        campaign_id=int(payload["campaign_id"]),
    ):
        session.commit()


jobs.periodic(jobs.Schedule("outbox.dispatch", minute="*"))
jobs.periodic(jobs.Schedule("outbox.sandbox_receipts", minute="*"))
