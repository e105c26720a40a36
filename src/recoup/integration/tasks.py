"""Integration's background jobs: forgetting idempotency keys past their time, nightly; the
scheduled file drops, every minute."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from recoup.institutions import repository as institutions
from recoup.institutions.settings import settings_of
from recoup.integration import drops, service
from recoup.kit import jobs

logger = logging.getLogger("recoup.drops")


@jobs.handler("integration.prune_idempotency_keys")
def prune_idempotency_keys(session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001
    """Delete the idempotency keys older than their institution's setting."""
    service.prune_idempotency_keys(session)


jobs.periodic(jobs.Schedule("integration.prune_idempotency_keys", minute="29", hour="3"))


@jobs.handler("integration.scan_drops", max_attempts=1)
def scan_drops(session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001
    """Import the files waiting in the drop folder of each institution that has one on.

    One institution's broken folder (gone, no permission) does not stop the others' scans;
    the job then fails naming it, so the dead job shows on the jobs page.
    """
    failed: list[str] = []
    for institution in institutions.list_all(session):
        if not settings_of(institution).integration.drop_enabled:
            continue
        try:
            drops.scan(session, institution=institution)
        except Exception:
            # The import records its own failure (ingest.runner); nothing here to undo.
            logger.exception("the file drop of %s failed", institution.code)
            failed.append(institution.code)
    if failed:
        raise RuntimeError(f"the file drop scan failed for {', '.join(failed)}; see the log")


jobs.periodic(jobs.Schedule("integration.scan_drops", minute="*"))
