"""Run the daily cycle stage by stage, each stage in its own unit of work (the commit boundary).

Like imports, the cycle commits as it goes rather than once: a stage's changes and its
ledger row commit together, so a run killed at any point (even ``kill -9``) leaves whole
stages behind, and running the same day again starts at the first stage missing from the
ledger. The gate commits after each batch of decisions. A completed day is not run again:
asking for it returns its stored report.

When jobs run on a broker, the stages of ``rules.SHARDED_STAGES`` fan out: each of their
shards is a ``cycle.stage_shard`` job with its own ledger row (``delinquency#2/4``), and the
stage's own row is written, from the shards' counts, once every shard's row is there.

``RECOUP_CYCLE_KILL=stage[:point]`` makes the process kill itself with SIGKILL at that
point (``before_commit``, ``after_commit`` or ``batch<N>``), for the resumption tests.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, closing, nullcontext
from datetime import date

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from recoup.config import get_settings
from recoup.cycle import repository, service
from recoup.cycle.rules import SHARDED_STAGES, FaultPlan, RunReport, Stage
from recoup.db import checkpointing, get_engine, unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit import clock, collector, jobs
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict

FAULT_VARIABLE = "RECOUP_CYCLE_KILL"
# How long ``recoup cycle run`` waits for a sharded stage's jobs, and how often it looks.
SHARD_TIMEOUT = 6 * 3600.0
SHARD_POLL_FIRST = 0.05
SHARD_POLL_MAX = 1.0


def _die_if(plan: FaultPlan, stage: Stage, point: str) -> None:
    if plan.hits(stage.value, point):
        os.kill(os.getpid(), signal.SIGKILL)


Units = Callable[[], AbstractContextManager[Session]]


def today_of(institution_code: str, engine: Engine | None = None) -> date:
    """Return the institution's today (the day a cycle runs for when none is named)."""
    with unit_of_work(engine, write=False) as session:
        institution = institutions.require_by_code(session, institution_code)
        return clock.local_today(institution.timezone)


def default_shards(engine: Engine | None = None) -> int:
    """Return how many shards the heavy stages split into by default: ``RECOUP_CYCLE_SHARDS``
    when jobs run on a broker and the database is shared (not SQLite), else none (0)."""
    settings = get_settings()
    bound = engine or get_engine()
    if not jobs.uses_broker() or bound.dialect.name == "sqlite" or settings.cycle_shards < 2:
        return 0
    return settings.cycle_shards


class ShardsFailed(Conflict):
    """A shard's job died (its last try failed) or the workers took too long: the run stops."""


def run_cycle(
    *,
    institution_code: str,
    as_of: date,
    actor: str,
    engine: Engine | None = None,
    gate_batch: int = service.GATE_BATCH,
    shards: int | None = None,
    shard_timeout: float = SHARD_TIMEOUT,
) -> RunReport:
    """Run (or resume, or just report) one institution's cycle for a day, committing per stage.

    With ``shards`` > 1 (default: ``default_shards()``), the sharded stages fan out as jobs
    (``cycle.stage_shard``) and this process waits for the workers to finish them, reading
    the ledger; without, every stage runs here.
    """
    count = default_shards(engine) if shards is None else shards
    report = _run(
        institution_code,
        as_of,
        actor,
        lambda: unit_of_work(engine),
        gate_batch,
        commits=True,
        shards=count,
        wait=shard_timeout,
        workers=service.stage_workers(),
    )
    return _finished(report)


def _finished(report: RunReport | None) -> RunReport:
    if report is None:  # a run that waits for its shards (or has none) always finishes
        raise ShardsFailed("the run stopped before its shards were done")
    return report


def advance_cycle(
    *, institution_code: str, as_of: date, actor: str, shards: int, first: bool = True
) -> RunReport | None:
    """Run the day's cycle as far as it goes without waiting; None while shards are running.

    For the ``cycle.run`` job on a broker: each call commits per stage, asks for the shards
    of the next sharded stage and returns; a later call (``first=False``: the job asking
    again) carries on the same attempt.
    """
    return _run(
        institution_code,
        as_of,
        actor,
        lambda: unit_of_work(),
        service.GATE_BATCH,
        commits=True,
        shards=shards,
        wait=None,
        reopen=first,
    )


def run_cycle_in(session: Session, *, institution_code: str, as_of: date, actor: str) -> RunReport:
    """Run the day's cycle inside the caller's transaction (a job's: it commits once at the end).

    A job's unit of work already holds SQLite's write lock, so the stages cannot commit in
    units of their own; the ledger still makes a retried job skip nothing and repeat nothing.
    """
    report = _run(
        institution_code,
        as_of,
        actor,
        lambda: nullcontext(session),
        service.GATE_BATCH,
        commits=False,
    )
    return _finished(report)


def _run(
    institution_code: str,
    as_of: date,
    actor: str,
    units: Units,
    gate_batch: int,
    *,
    commits: bool,
    shards: int = 0,
    wait: float | None = 0.0,
    reopen: bool = True,
    workers: int = 0,
) -> RunReport | None:
    """Run the stages not in the ledger; None when shards still run and ``wait`` is None.

    ``reopen``: (re)start the run (a resume counts an attempt and retries shards whose job
    died); False carries on a run this process's caller started (the job that polls).
    ``workers``: worker processes a stage may compute in (scoring), for a run that commits
    per stage from a process's main thread (``recoup cycle run``); a job's thread in a
    ``recoup worker`` process does not fork (another thread may hold a lock the copy needs).
    """
    plan = FaultPlan(os.environ.get(FAULT_VARIABLE))
    with units() as session:
        institution = institutions.require_by_code(session, institution_code)
        institution_id = institution.id
        service.check_as_of(institution, as_of)
        run = (
            service.open_run(
                session, institution=institution, as_of=as_of, actor=actor, now=utcnow()
            )[0]
            if reopen
            else service.lock_run(session, institution_id=institution_id, as_of=as_of)
        )
        if run.status == "completed":
            return service.report_of(session, institution=institution, run=run)
        if reopen:
            repository.refresh_statistics(session)
        engine = session.get_bind().engine
    skipped: list[str] = []
    # A run that commits per stage writes hundreds of megabytes a day: SQLite's log is copied
    # back beside the stages instead of in their commits (``db.checkpointing``).
    checkpoints = checkpointing(engine) if commits else nullcontext()
    try:
        with checkpoints:
            for stage in Stage:
                batches = 0.0
                if shards > 1 and stage in SHARDED_STAGES:
                    spent = _fan_out(
                        institution_id, as_of, actor, units, stage, shards, wait, retry=reopen
                    )
                    if spent is None:
                        return None
                    if _merge_stage(institution_id, as_of, actor, units, stage, shards, spent):
                        skipped.append(stage.value)
                    continue
                if stage is Stage.GATE:
                    batches = _run_gate(
                        institution_id,
                        as_of,
                        actor,
                        units,
                        plan,
                        gate_batch,
                        workers if commits else 0,
                    )
                # Worker processes see only what is committed: not inside a caller's transaction.
                stage_workers = workers if commits else 0
                if _run_stage(
                    institution_id, as_of, actor, units, plan, stage, batches, stage_workers
                ):
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


def _context(
    session: Session, institution_id: int, as_of: date, actor: str, *, workers: int = 0
) -> service.Context:
    institution = institutions.require_by_id(session, institution_id)
    run = service.lock_run(session, institution_id=institution_id, as_of=as_of)
    return service.Context(
        institution=institution, run=run, actor=actor, now=utcnow(), workers=workers
    )


def _run_stage(
    institution_id: int,
    as_of: date,
    actor: str,
    units: Units,
    plan: FaultPlan,
    stage: Stage,
    batches: float = 0.0,
    workers: int = 0,
) -> bool:
    """Run one stage unless the ledger holds it; True when it was done before (a resume)."""
    with units() as session:
        context = _context(session, institution_id, as_of, actor, workers=workers)
        if service.stage_done(session, run=context.run, stage=stage):
            return True
        started = time.perf_counter()
        with collector.paused():
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


def _fan_out(
    institution_id: int,
    as_of: date,
    actor: str,
    units: Units,
    stage: Stage,
    shards: int,
    wait: float | None,
    *,
    retry: bool,
) -> float | None:
    """Ask for the stage's shards and wait up to ``wait`` seconds for them (None: do not wait).

    Returns the shards' seconds once all are in the ledger (0 when the stage is done), or
    None when they are still running and the caller does not wait.
    """
    with units() as session:
        context = _context(session, institution_id, as_of, actor)
        if service.stage_done(session, run=context.run, stage=stage):
            return 0.0
        service.enqueue_shards(session, context, stage, shards, retry_dead=retry)
        run = context.run
    deadline = time.monotonic() + (wait or 0.0)
    pause = SHARD_POLL_FIRST
    while True:
        with units() as session:
            progress = service.shard_progress(session, run=run, stage=stage, count=shards)
        if progress.finished:
            return progress.seconds
        if progress.dead:
            raise ShardsFailed(
                f"{len(progress.dead)} shard(s) of stage {stage.value} failed for good: "
                f"{'; '.join(progress.dead)}. Fix the cause and run the day again "
                "(it resumes and retries them)"
            )
        if wait is None:
            return None
        if time.monotonic() >= deadline:
            raise ShardsFailed(
                f"stage {stage.value}: {progress.done} of {shards} shards done after "
                f"{wait:.0f} s; are `recoup worker` processes running on RECOUP_JOBS_URL? "
                "Run the day again to keep waiting"
            )
        time.sleep(pause)
        pause = min(pause * 2, SHARD_POLL_MAX)


def _merge_stage(
    institution_id: int,
    as_of: date,
    actor: str,
    units: Units,
    stage: Stage,
    shards: int,
    spent: float,
) -> bool:
    """Write a sharded stage's ledger row once its shards are done; True when it was before."""
    with units() as session:
        context = _context(session, institution_id, as_of, actor)
        if service.stage_done(session, run=context.run, stage=stage):
            return True
        started = time.perf_counter()
        counts = service.merge_shards(session, context, stage, shards)
        context.run.seconds = round(context.run.seconds + spent, 4)
        service.record_stage(
            session,
            run=context.run,
            stage=stage,
            counts=counts,
            seconds=time.perf_counter() - started,
            batches=spent,
        )
    return False


def _run_gate(
    institution_id: int,
    as_of: date,
    actor: str,
    units: Units,
    plan: FaultPlan,
    limit: int,
    workers: int = 0,
) -> float:
    """Decide the planned actions batch by batch; return the seconds the batches took.

    With ``workers``, the batches are read and decided in worker processes while this one
    writes them, each batch in its own unit of work as it comes (``_run_gate_in_workers``);
    whatever they leave (none, normally) is decided here.
    """
    seconds, batch = (
        _run_gate_in_workers(institution_id, as_of, actor, units, plan, limit, workers)
        if workers
        else (0.0, 0)
    )
    while True:
        with units() as session:
            context = _context(session, institution_id, as_of, actor)
            if service.stage_done(session, run=context.run, stage=Stage.GATE):
                return seconds
            started = time.perf_counter()
            with collector.paused():
                decided = service.gate_batch(session, context, limit=limit)
            spent = time.perf_counter() - started
            context.run.seconds = round(context.run.seconds + spent, 4)
        seconds += spent
        if not decided:
            return seconds
        batch += 1
        _die_if(plan, Stage.GATE, f"batch{batch}")


def _run_gate_in_workers(
    institution_id: int,
    as_of: date,
    actor: str,
    units: Units,
    plan: FaultPlan,
    limit: int,
    workers: int,
) -> tuple[float, int]:
    """Write the batches worker processes decide, each committing as it comes; return the
    seconds spent (waiting included) and how many batches were written.

    Stops early, leaving the rest to the caller's loop, when the stage is done or a batch's
    actions were decided meanwhile by another run of the day.
    """
    started = time.perf_counter()
    with units() as session:
        context = _context(session, institution_id, as_of, actor)
        if service.stage_done(session, run=context.run, stage=Stage.GATE):
            return 0.0, 0
        parts = service.gate_parts(session, context, limit=limit, workers=workers)
        run_id = context.run.id
    if parts is None:
        return 0.0, 0
    seconds = 0.0
    batch = 0
    with closing(
        service.decided_batches(
            parts, institution_id=institution_id, run_id=run_id, actor=actor, workers=workers
        )
    ) as decided_batches:
        for answers in decided_batches:
            with units() as session:
                context = _context(session, institution_id, as_of, actor)
                if service.stage_done(session, run=context.run, stage=Stage.GATE):
                    return seconds, batch
                with collector.paused():
                    decided = service.store_decided(session, context, answers)
                # The batch's time: since the last one was written (waiting for it included).
                spent = time.perf_counter() - started
                context.run.seconds = round(context.run.seconds + spent, 4)
            seconds += spent
            started = time.perf_counter()
            if decided is None:
                return seconds, batch
            batch += 1
            _die_if(plan, Stage.GATE, f"batch{batch}")
    return seconds, batch
