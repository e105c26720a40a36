"""The daily cycle's jobs: run one institution's day, and start the days that are due."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from recoup.cycle import service
from recoup.cycle.rules import STAGE_SHARD, Shard, Stage
from recoup.kit import jobs
from recoup.kit.clock import utcnow

RUN = "cycle.run"
START_DUE = "cycle.start_due"
JOB_ACTOR = "system"
# How soon a run waiting for its shards looks again.
ADVANCE_AGAIN = timedelta(seconds=2)


@jobs.handler(RUN, max_attempts=3)
def run(session: Session, payload: dict[str, Any]) -> None:
    """Run (or resume) one institution's cycle for a day.

    Embedded, in the job's transaction. On a broker (with a shared database), stage by stage
    in units of its own, fanning the sharded stages out to the workers; while their shards
    run, the job asks to be run again shortly rather than hold a worker thread waiting.
    """
    from recoup.cycle import runner

    institution = str(payload["institution"])
    as_of = date.fromisoformat(str(payload["as_of"]))
    shards = runner.default_shards()
    if shards < 2:
        runner.run_cycle_in(session, institution_code=institution, as_of=as_of, actor=JOB_ACTOR)
        return
    report = runner.advance_cycle(
        institution_code=institution,
        as_of=as_of,
        actor=JOB_ACTOR,
        shards=shards,
        first=not payload.get("carry_on"),
    )
    if report is None:
        jobs.enqueue(
            session,
            RUN,
            {"institution": institution, "as_of": as_of.isoformat(), "carry_on": True},
            idempotency_key=f"{RUN}@{institution}@{as_of.isoformat()}@{uuid.uuid4().hex}",
            institution_id=payload.get("institution_id"),
            delay=ADVANCE_AGAIN,
        )


@jobs.handler(STAGE_SHARD, max_attempts=5)
def stage_shard(session: Session, payload: dict[str, Any]) -> None:
    """Do one shard of a sharded cycle stage (asked for by the run; see ``cycle.runner``)."""
    service.run_shard(
        session,
        institution_id=int(payload["institution_id"]),
        run_id=int(payload["run_id"]),
        shard=Shard(Stage(str(payload["stage"])), int(payload["index"]), int(payload["count"])),
        actor=str(payload.get("actor") or JOB_ACTOR),
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
