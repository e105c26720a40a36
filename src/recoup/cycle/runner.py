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
from datetime import date

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from recoup.cycle import service
from recoup.cycle.rules import FaultPlan, RunReport, Stage
from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit.clock import utcnow

FAULT_VARIABLE = "RECOUP_CYCLE_KILL"


def _die_if(plan: FaultPlan, stage: Stage, point: str) -> None:
    if plan.hits(stage.value, point):
        os.kill(os.getpid(), signal.SIGKILL)


def run_cycle(
    *,
    institution_code: str,
    as_of: date,
    actor: str,
    engine: Engine | None = None,
    gate_batch: int = service.GATE_BATCH,
) -> RunReport:
    """Run (or resume, or just report) one institution's cycle for a day."""
    plan = FaultPlan(os.environ.get(FAULT_VARIABLE))
    with unit_of_work(engine) as session:
        institution = institutions.require_by_code(session, institution_code)
        institution_id = institution.id
        service.check_as_of(institution, as_of)
        run, _resumed = service.open_run(
            session, institution=institution, as_of=as_of, actor=actor, now=utcnow()
        )
        if run.status == "completed":
            return service.report_of(session, institution=institution, run=run)
    try:
        for stage in Stage:
            batches = 0.0
            if stage is Stage.GATE:
                batches = _run_gate(institution_id, as_of, actor, engine, plan, gate_batch)
            _run_stage(institution_id, as_of, actor, engine, plan, stage, batches)
    except BaseException as error:
        with unit_of_work(engine) as session:
            service.fail_run(
                session, institution_id=institution_id, as_of=as_of, error=str(error) or repr(error)
            )
        raise
    with unit_of_work(engine) as session:
        institution = institutions.require_by_id(session, institution_id)
        run = service.lock_run(session, institution_id=institution_id, as_of=as_of)
        service.finish_run(session, run=run)
        return service.report_of(session, institution=institution, run=run)


def _context(session: Session, institution_id: int, as_of: date, actor: str) -> service.Context:
    institution = institutions.require_by_id(session, institution_id)
    run = service.lock_run(session, institution_id=institution_id, as_of=as_of)
    return service.Context(institution=institution, run=run, actor=actor, now=utcnow())


def _run_stage(
    institution_id: int,
    as_of: date,
    actor: str,
    engine: Engine | None,
    plan: FaultPlan,
    stage: Stage,
    batches: float = 0.0,
) -> None:
    with unit_of_work(engine) as session:
        context = _context(session, institution_id, as_of, actor)
        if service.stage_done(session, run=context.run, stage=stage):
            return
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


def _run_gate(
    institution_id: int,
    as_of: date,
    actor: str,
    engine: Engine | None,
    plan: FaultPlan,
    limit: int,
) -> float:
    """Decide the planned actions batch by batch; return the seconds the batches took."""
    batch = 0
    seconds = 0.0
    while True:
        with unit_of_work(engine) as session:
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
