"""Run the daily cycle stage by stage, each stage in its own unit of work (the commit boundary).

Like imports, the cycle commits as it goes rather than once: a stage's changes and its
ledger row commit together, so a run killed at any point (even ``kill -9``) leaves whole
stages behind, and running the same day again starts at the first stage missing from the
ledger. The gate commits after each batch of decisions. A completed day is not run again:
asking for it returns its stored report.

``RECOUP_CYCLE_KILL=stage[:point]`` makes the process kill itself with SIGKILL at that
point (``before_commit``, ``after_commit`` or ``batch<N>``), for the resumption tests.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import date

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from recoup.cycle import service
from recoup.cycle.rules import FaultPlan, RunReport, Stage
from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.clock import utcnow

FAULT_VARIABLE = "RECOUP_CYCLE_KILL"


def _die_if(plan: FaultPlan, stage: Stage, point: str) -> None:
    if plan.hits(stage.value, point):
        os.kill(os.getpid(), signal.SIGKILL)


Units = Callable[[], AbstractContextManager[Session]]


def today_of(institution_code: str, engine: Engine | None = None) -> date:
    """Return the institution's today (the day a cycle runs for when none is named)."""
    with unit_of_work(engine, write=False) as session:
        institution = institutions.require_by_code(session, institution_code)
        return clock.local_today(institution.timezone)


def run_cycle(
    *,
    institution_code: str,
    as_of: date,
    actor: str,
    engine: Engine | None = None,
    gate_batch: int = service.GATE_BATCH,
) -> RunReport:
    """Run (or resume, or just report) one institution's cycle for a day, committing per stage."""
    return _run(
        institution_code, as_of, actor, lambda: unit_of_work(engine), gate_batch, commits=True
    )


def run_cycle_in(session: Session, *, institution_code: str, as_of: date, actor: str) -> RunReport:
    """Run the day's cycle inside the caller's transaction (a job's: it commits once at the end).

    A job's unit of work already holds SQLite's write lock, so the stages cannot commit in
    units of their own; the ledger still makes a retried job skip nothing and repeat nothing.
    """
    return _run(
        institution_code,
        as_of,
        actor,
        lambda: nullcontext(session),
        service.GATE_BATCH,
        commits=False,
    )


def _run(
    institution_code: str,
    as_of: date,
    actor: str,
    units: Units,
    gate_batch: int,
    *,
    commits: bool,
) -> RunReport:
    plan = FaultPlan(os.environ.get(FAULT_VARIABLE))
    with units() as session:
        institution = institutions.require_by_code(session, institution_code)
        institution_id = institution.id
        service.check_as_of(institution, as_of)
        run, _resumed = service.open_run(
            session, institution=institution, as_of=as_of, actor=actor, now=utcnow()
        )
        if run.status == "completed":
            return service.report_of(session, institution=institution, run=run)
    skipped: list[str] = []
    try:
        for stage in Stage:
            batches = 0.0
            if stage is Stage.GATE:
                batches = _run_gate(institution_id, as_of, actor, units, plan, gate_batch)
            if _run_stage(institution_id, as_of, actor, units, plan, stage, batches):
                skipped.append(stage.value)
    except Exception as error:
        if not commits:
            raise  # the caller's transaction rolls back; nothing to record
        with units() as session:
            service.fail_run(
                session, institution_id=institution_id, as_of=as_of, error=str(error) or repr(error)
            )
        raise
    with units() as session:
        institution = institutions.require_by_id(session, institution_id)
        run = service.lock_run(session, institution_id=institution_id, as_of=as_of)
        service.finish_run(session, run=run)
        return service.report_of(session, institution=institution, run=run, skipped=skipped)


def _context(session: Session, institution_id: int, as_of: date, actor: str) -> service.Context:
    institution = institutions.require_by_id(session, institution_id)
    run = service.lock_run(session, institution_id=institution_id, as_of=as_of)
    return service.Context(institution=institution, run=run, actor=actor, now=utcnow())


def _run_stage(
    institution_id: int,
    as_of: date,
    actor: str,
    units: Units,
    plan: FaultPlan,
    stage: Stage,
    batches: float = 0.0,
) -> bool:
    """Run one stage unless the ledger holds it; True when it was done before (a resume)."""
    with units() as session:
        context = _context(session, institution_id, as_of, actor)
        if service.stage_done(session, run=context.run, stage=stage):
            return True
        started = time.perf_counter()
        counts = service.STAGE_FUNCTIONS[stage](session, context)
        service.record_stage(
            session,
            run=context.run,
            stage=stage,
            counts=counts,
            seconds=time.perf_counter() - started,
            batches=batches,
        )
        _die_if(plan, stage, "before_commit")
    _die_if(plan, stage, "after_commit")
    return False


def _run_gate(
    institution_id: int,
    as_of: date,
    actor: str,
    units: Units,
    plan: FaultPlan,
    limit: int,
) -> float:
    """Decide the planned actions batch by batch; return the seconds the batches took."""
    batch = 0
    seconds = 0.0
    while True:
        with units() as session:
            context = _context(session, institution_id, as_of, actor)
            if service.stage_done(session, run=context.run, stage=Stage.GATE):
                return seconds
            started = time.perf_counter()
            decided = service.gate_batch(session, context, limit=limit)
            spent = time.perf_counter() - started
            context.run.seconds = round(context.run.seconds + spent, 4)
        seconds += spent
        if not decided:
            return seconds
        batch += 1
        _die_if(plan, Stage.GATE, f"batch{batch}")
