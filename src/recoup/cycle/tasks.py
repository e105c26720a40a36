"""The daily cycle's jobs: run one institution's day, and start the days that are due."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from recoup.cycle import service
from recoup.kit import jobs
from recoup.kit.clock import utcnow

RUN = "cycle.run"
START_DUE = "cycle.start_due"
JOB_ACTOR = "system"


@jobs.handler(RUN, max_attempts=3)
def run(session: Session, payload: dict[str, Any]) -> None:
    """Run (or resume) one institution's cycle for a day, in the job's transaction."""
    from recoup.cycle import runner

    runner.run_cycle_in(
        session,
        institution_code=str(payload["institution"]),
        as_of=date.fromisoformat(str(payload["as_of"])),
        actor=JOB_ACTOR,
    )


@jobs.handler(START_DUE)
def start_due(session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001
    """Ask for the cycle of every institution whose local cycle time has come today."""
    for institution, day in service.due_runs(session, now=utcnow()):
        jobs.enqueue(
            session,
            RUN,
            {"institution": institution.code, "as_of": day.isoformat()},
            idempotency_key=f"{RUN}@{institution.id}@{day.isoformat()}",
            institution_id=institution.id,
        )


jobs.periodic(jobs.Schedule(START_DUE, minute="*/10"))
