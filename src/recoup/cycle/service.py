"""The daily cycle's stages: each one set-based, idempotent and finished in one transaction.

A stage is a function ``(session, context) -> counts``; ``recoup.cycle.runner`` runs them in
order, each in its own unit of work together with its ledger row (``cycle_stages``), so a
run killed anywhere resumes at the first stage with no ledger row and repeats nothing. The
gate stage is the one that commits in batches: its actions move from ``planned`` to
``allowed`` / ``blocked`` batch by batch, and a resumed run decides only what is left.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.allocation import service as allocation_service
from recoup.analytics.daily import service as analytics_service
from recoup.cases import service as cases_service
from recoup.cases.rules import CaseState
from recoup.compliance.facts import service as facts_service
from recoup.compliance.gate import service as gate_service
from recoup.compliance.gate.rules import batch_planned_contact
from recoup.config import get_settings
from recoup.contact.channels import CHANNELS, Channel
from recoup.cycle import repository, rules
from recoup.cycle.rules import (
    STAGE_SHARD,
    ActionKind,
    ActionStatus,
    RunReport,
    RunStatus,
    Shard,
    Stage,
    StageReport,
)
from recoup.db import worker_url
from recoup.enums import ContactKind
from recoup.institutions import repository as institutions_repository
from recoup.institutions.settings import settings_of
from recoup.kit import clock, collector, events, jobs, processes
from recoup.kit.clock import utcnow
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.models.cycle import CycleAction, CycleRun, CycleStage
from recoup.models.institution import Institution
from recoup.models.jobs import JobStatus
from recoup.outbox import rules as outbox_rules
from recoup.outbox import service as outbox_service
from recoup.plans import service as plans_service
from recoup.portfolio import service as portfolio_service
from recoup.scoring import rules as scoring_rules
from recoup.scoring import service as scoring_service
from recoup.strategy import service as strategy_service
from recoup.workbench import service as workbench_service
from recoup.workspace import service as workspace_service

# Actions decided by the gate per transaction: a kill loses at most one batch of work.
GATE_BATCH = 50_000


def stage_workers() -> int:
    """Return how many worker processes a stage may compute in beside this one:
    ``RECOUP_CYCLE_WORKERS``, by default one per core this process may run on (the writes
    stay here), none on one core."""
    configured = get_settings().cycle_workers
    if configured >= 0:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(cores, 4) if cores > 1 else 0


# Case states the cycle leaves alone today: a promise or a plan running, a dispute, a pause.
HELD_STATES = frozenset(
    {CaseState.PROMISED, CaseState.ON_PLAN, CaseState.DISPUTED, CaseState.PAUSED}
)


@dataclass(frozen=True, slots=True)
class Context:
    """What every stage of one run knows."""

    institution: Institution
    run: CycleRun
    actor: str
    now: datetime
    # Worker processes a stage may read and compute in (scoring): only when every earlier
    # stage has committed, so that another connection sees what this run did so far.
    workers: int = 0

    @property
    def as_of(self) -> date:
        return self.run.as_of


def check_as_of(institution: Institution, as_of: date, *, now: datetime | None = None) -> None:
    """Refuse a day the cycle cannot run for: one after the institution's today."""
    today = clock.local_today(institution.timezone, now=(now or utcnow()) + clock.CLOCK_SKEW)
    if as_of > today:
        raise ValidationFailed(
            f"--as-of {as_of.isoformat()} is after {institution.code}'s today "
            f"({today.isoformat()}): the cycle runs for days that have begun"
        )


def open_run(
    session: Session, *, institution: Institution, as_of: date, actor: str, now: datetime
) -> tuple[CycleRun, bool]:
    """Return the day's run, creating it; True when it was started before (a resume)."""
    run = repository.run_of(session, institution_id=institution.id, as_of=as_of, lock=True)
    if run is not None:
        if run.status != RunStatus.COMPLETED:
            run.attempts += 1
            run.status = RunStatus.RUNNING
            run.error = None
        return run, True
    run = CycleRun(
        institution_id=institution.id,
        as_of=as_of,
        status=RunStatus.RUNNING,
        started_at=now,
        actor=actor,
    )
    session.add(run)
    session.flush()
    return run, False


def lock_run(session: Session, *, institution_id: int, as_of: date) -> CycleRun:
    """Return the day's run, locked until the stage's transaction ends."""
    run = repository.run_of(session, institution_id=institution_id, as_of=as_of, lock=True)
    if run is None:
        raise NotFound(f"no cycle run for {as_of.isoformat()}")
    return run


def stage_done(session: Session, *, run: CycleRun, stage: Stage) -> bool:
    """Tell whether the run's ledger already holds the stage."""
    return stage.value in repository.stages_of(session, run_id=run.id)


def record_stage(
    session: Session,
    *,
    run: CycleRun,
    stage: Stage,
    counts: Mapping[str, Any],
    seconds: float,
    batches: float = 0.0,
) -> None:
    """Write the stage's ledger row (in the transaction of the stage's own changes).

    ``batches`` is the time of the stage's earlier batches, already counted in the run's.
    """
    session.add(
        CycleStage(
            institution_id=run.institution_id,
            run_id=run.id,
            stage=stage.value,
            counts=dict(counts),
            seconds=round(seconds + batches, 4),
            finished_at=utcnow(),
        )
    )
    run.seconds = round(run.seconds + seconds, 4)
    session.flush()


# ---- the stages ---------------------------------------------------------------------------


def update_delinquency(session: Session, context: Context) -> dict[str, Any]:
    """Age the overdue accounts to the day: days past due, buckets, history events."""
    result = portfolio_service.age_accounts(
        session, institution=context.institution, as_of=context.as_of, now=context.now
    )
    return {"aged": result.aged, "events": result.events}


def reconcile(session: Session, context: Context) -> dict[str, Any]:
    """Judge promises and payment plans against the payments up to the day."""
    counts: dict[str, Any] = {}
    try:
        promises = workbench_service.reconcile_promises(
            session,
            institution=context.institution,
            as_of=context.as_of,
            actor=context.actor,
            now=context.now,
        )
        counts.update({f"promises_{key}": value for key, value in promises.counts().items()})
    except ValidationFailed:
        # A day before the first promise: there is nothing to judge yet.
        counts["promises_examined"] = 0
    plans = plans_service.reconcile_plans(
        session, institution=context.institution, as_of=context.as_of, actor=context.actor
    )
    counts.update({f"plans_{key}": value for key, value in plans.counts().items()})
    return counts


def score(session: Session, context: Context) -> dict[str, Any]:
    """Score every delinquent account with the institution's champion model."""
    try:
        summary = scoring_service.score_delinquent_accounts(
            session, institution=context.institution, as_of=context.as_of, workers=context.workers
        )
    except NotFound:
        # No champion yet: segments fall back to bucket and balance (counted as unscored).
        return {"scored": 0, "no_champion": 1}
    return {
        "scored": summary.accounts_scored,
        "model_version": summary.model_version,
        "drift": str(summary.drift),
    }


def sync_cases(session: Session, context: Context) -> dict[str, Any]:
    """Open cases for newly delinquent debtors, close cleared ones, route them to queues."""
    result = cases_service.sync_cases(
        session, institution_id=context.institution.id, actor=context.actor, now=context.now
    )
    return result.counts()


def segment(session: Session, context: Context) -> dict[str, Any]:
    """Put each live case in a segment: the active strategy's, else its scored segment.

    With a strategy in force, every live case's segment, arm and step are computed in bulk and
    written to ``case_strategy_states`` (``strategy.service.assign_cases``). Without one, the
    segment is that of the case's account with the highest priority. Writes one action row
    per live case (status ``segmented``), the day's only insert.
    """
    import pandas as pd  # columnar work; kept off the CLI's start-up

    assignment = strategy_service.assign_cases(
        session, institution=context.institution, as_of=context.as_of, now=context.now
    )
    members = pd.DataFrame(
        repository.case_members(session, institution_id=context.institution.id),
        columns=["case_id", "debtor_id", "queue_id", "state", "account_id", "bucket", "balance"],
    )
    if not len(members):
        return {"cases": 0, **(dict(assignment.counts) if assignment else {})}
    scores = pd.DataFrame(
        repository.scores_on(session, institution_id=context.institution.id, as_of=context.as_of),
        columns=["account_id", "grade", "scored_segment", "priority"],
    ).drop_duplicates("account_id", keep="last")  # each account's newest score of the day
    members = members.merge(scores, on="account_id", how="left", indicator="scored")
    scored = (members.pop("scored") == "both").to_numpy()
    priority = np.where(scored, members["priority"].astype(np.float64).fillna(0.0).to_numpy(), -1.0)
    case_ids = members["case_id"].to_numpy(dtype=np.int64)
    # The lead account of each case: highest priority, then the lowest id (rows are in
    # case, account order, so a stable sort by -priority within case keeps the lowest id).
    order = np.lexsort((-priority, case_ids))
    sorted_cases = case_ids[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_cases[1:] != sorted_cases[:-1]
    leads = members.iloc[order[first]].reset_index(drop=True)
    lead_scored = scored[order[first]]
    unscored = 0
    if assignment is not None:
        names = (
            leads["case_id"]
            .map(assignment.segment_by_case)
            .where(lambda found: found.notna() & (found != ""), strategy_service.NO_SEGMENT_REASON)
            .astype(str)
            .tolist()
        )
    else:
        segment_names = leads["scored_segment"].to_numpy(dtype=object)
        has_segment = lead_scored & pd.notna(segment_names) & (segment_names != "")
        chosen = segment_names.copy()
        chosen[~has_segment] = None
        names = chosen.tolist()
        missing = np.flatnonzero(~has_segment)
        unscored = len(missing)
        policy = scoring_service.segment_policy(context.institution)
        placed: dict[tuple[str, str, str], str] = {}
        grades = leads["grade"].to_numpy(dtype=object)
        buckets = leads["bucket"].to_numpy(dtype=object)
        balances = leads["balance"].to_numpy(dtype=np.int64)
        for row in missing.tolist():
            grade = str(grades[row]) if lead_scored[row] else "E"
            balance = int(balances[row])
            key = (grade, str(buckets[row]), scoring_rules.band_of(balance, policy))
            if key not in placed:
                placed[key] = scoring_rules.segment_of(
                    grade=grade, bucket=str(buckets[row]), balance_minor=balance, policy=policy
                ).name
            names[row] = placed[key]
    queues = leads["queue_id"].astype(np.float64).fillna(-1).to_numpy(dtype=np.int64)
    written = repository.add_actions(
        session,
        {
            "case_id": leads["case_id"].tolist(),
            "debtor_id": leads["debtor_id"].tolist(),
            "account_id": leads["account_id"].tolist(),
            "queue_id": [None if queue < 0 else queue for queue in queues.tolist()],
            "case_state": leads["state"].astype(str).tolist(),
            "segment": names,
        },
        size=len(leads),
        constants={
            "institution_id": context.institution.id,
            "run_id": context.run.id,
            "strategy": assignment.strategy.label if assignment else None,
            "status": ActionStatus.SEGMENTED.value,
            "rule_ids": [],
        },
    )
    if assignment is not None:
        return {"cases": written, **assignment.counts}
    counts = Counter(names)
    return {"cases": written, "unscored": unscored, "segments": dict(sorted(counts.items()))}


def step(session: Session, context: Context) -> dict[str, Any]:
    """Choose each case's step for the day, unless held.

    A case with a promise or plan running, a dispute or a pause gets no contact today. With a
    strategy in force, the others take the step their strategy state is on (its channel); a
    case an event holds (contact stopped, or paused until a later day) gets none. Without
    one, a case takes its segment's working channel.
    """
    run_id = context.run.id
    counts: dict[str, Any] = {}
    held = 0
    for state in sorted(HELD_STATES):
        held += repository.move_actions(
            session,
            run_id=run_id,
            where={"status": ActionStatus.SEGMENTED.value, "case_state": str(state)},
            values={"status": ActionStatus.NONE.value, "step": f"held:{state}"},
        )
    counts["held"] = held
    active = strategy_service.active_strategy(session, institution_id=context.institution.id)
    if active is not None:
        counts.update(_strategy_steps(session, context, active))
        return counts
    policy = scoring_service.segment_policy(context.institution)
    steps: dict[str, dict[str, Any]] = {}
    for name in repository.segments_of_run(
        session, run_id=run_id, status=ActionStatus.SEGMENTED.value
    ):
        parts = name.split("-")
        channel = (
            scoring_rules.channel_for(parts[0], parts[1], parts[2], policy)
            if len(parts) == 3
            else policy.channels["default"]
        )
        steps[name] = {
            "status": ActionStatus.STEPPED.value,
            "step": f"segment:{name}",
            "channel": channel,
        }
    # Every segment's actions in one statement: one pass over the day's actions.
    counts["stepped"] = repository.move_actions_by(
        session,
        run_id=run_id,
        status=ActionStatus.SEGMENTED.value,
        column="segment",
        values=steps,
    )
    return counts


def _strategy_steps(
    session: Session, context: Context, active: strategy_service.ActiveStrategy
) -> dict[str, Any]:
    """Move the segmented actions to their strategy state's step: one update per step.

    The action takes the step's channel and template, and its queue when the institution has
    a queue of that code.
    """
    run_id = context.run.id
    institution_id = context.institution.id
    segmented = ActionStatus.SEGMENTED.value
    held_by_event = 0
    for held_step in repository.held_steps(
        session, institution_id=institution_id, as_of=context.as_of
    ):
        held_by_event += repository.hold_actions(
            session,
            run_id=run_id,
            institution_id=institution_id,
            as_of=context.as_of,
            step=held_step,
            status=segmented,
            values={"status": ActionStatus.NONE.value, "step": f"held:{held_step or 'event'}"},
        )
    stepped = 0
    by_step: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    # A step naming a queue the institution has sends its task there (else the case's queue).
    queues = repository.queue_ids(session, institution_id=institution_id)
    for path_step in active.compiled.steps:
        key = (path_step.segment, path_step.code)
        if key in seen:
            continue
        seen.add(key)
        moved = repository.step_actions(
            session,
            run_id=run_id,
            institution_id=institution_id,
            version_id=active.version.id,
            segment=path_step.segment,
            step=path_step.code,
            status=segmented,
            values={
                "status": ActionStatus.STEPPED.value,
                "step": path_step.code,
                "channel": path_step.channel,
                "template": path_step.template,
                "strategy": active.label,
                **({"queue_id": queues[path_step.queue]} if path_step.queue in queues else {}),
            },
        )
        if moved:
            by_step[f"{path_step.segment}:{path_step.code}"] += moved
            stepped += moved
    no_segment = repository.move_actions(
        session,
        run_id=run_id,
        where={"status": segmented, "segment": strategy_service.NO_SEGMENT_REASON},
        values={"status": ActionStatus.NONE.value, "step": strategy_service.NO_SEGMENT_REASON},
    )
    # Before its path's first day (or a step the state no longer names): no contact today.
    no_step = repository.move_actions(
        session,
        run_id=run_id,
        where={"status": segmented},
        values={"status": ActionStatus.NONE.value, "step": "no step"},
    )
    return {
        "strategy": active.label,
        "held_by_event": held_by_event,
        "stepped": stepped,
        "no_segment": no_segment,
        "no_step": no_step,
        "steps": dict(sorted(by_step.items())),
    }


def plan_actions(session: Session, context: Context) -> dict[str, Any]:
    """Turn each step into the day's next action: a task or a message, at a planned time.

    Every channel's actions move in one statement (one pass over the day's actions).
    """
    run_id = context.run.id
    stepped = ActionStatus.STEPPED.value
    counts: Counter[str] = Counter()
    moves: dict[str | None, dict[str, Any]] = {}
    for value, count in repository.count_values(
        session, run_id=run_id, status=stepped, column="channel"
    ).items():
        channel = rules.planned_channel(value)
        if channel is None:
            counts["no_channel"] += count
            moves[value] = {"status": ActionStatus.NONE.value}
            continue
        kind = rules.kind_of(channel)
        at = datetime.combine(
            rules.planned_day(context.as_of),
            rules.PLANNED_TIME[kind],
            tzinfo=clock.zone(context.institution.timezone),
        )
        counts[kind.value] += count
        moves[value] = {"status": ActionStatus.PLANNED.value, "kind": kind.value, "planned_at": at}
    repository.move_actions_by(
        session, run_id=run_id, status=stepped, column="channel", values=moves
    )
    return dict(sorted(counts.items()))


def gate_batch(
    session: Session, context: Context, *, limit: int = GATE_BATCH, shard: Shard | None = None
) -> int:
    """Ask the gate about the next batch of planned actions; return how many it decided.

    With a ``shard`` (of the gate stage), only the actions of the shard's debtors.
    """
    batch = repository.planned_actions(
        session,
        run_id=context.run.id,
        limit=limit,
        debtors=None if shard is None else (shard.index, shard.count),
    )
    if not batch:
        return 0
    return store_answers(
        session,
        decide_actions(session, institution=context.institution, actor=context.actor, batch=batch),
    )


@dataclass(frozen=True, slots=True)
class GateAnswers:
    """A batch of planned actions the gate decided, not stored yet: the decisions' rows and
    the actions' answers, as columns. Ids are taken as the batch is written, so a batch can be
    decided in one process (a worker) and written in another."""

    # The batch's first and last action id.
    first: int
    last: int
    # ``compliance_decisions`` columns but the id and timestamps (``Prechecked.columns``).
    decisions: dict[str, list[Any] | bulk.Coded]
    # The actions' ids, and their ``status``, ``rule_ids``, ``next_allowed_at`` and
    # ``planned_at`` (moved into the debtor's morning).
    ids: list[int]
    actions: dict[str, list[Any] | bulk.Coded]

    @property
    def size(self) -> int:
        return len(self.ids)


def decide_actions(
    session: Session, *, institution: Institution, actor: str, batch: Sequence[Any]
) -> GateAnswers:
    """Decide a batch of planned actions (``repository.planned_actions`` rows), reading only."""
    # The few distinct channels and planned times of a batch, each looked up once.
    channels = {value: Channel(value) for value in {row[3] for row in batch}}
    message_channels = {value: outbox_rules.message_channel_of(value) for value in channels}
    instants = {at: clock.aware(at) for at in {row[4] for row in batch}}
    mornings = {
        channel: rules.PLANNED_TIME[rules.kind_of(channel)] for channel in channels.values()
    }
    # A message goes to the point the hand-off will pick: that point's opt-outs, consents and
    # zone count now, so a message its point refuses is blocked here, not queued to fail.
    points = outbox_service.message_points(
        session,
        institution_id=institution.id,
        wanted=[
            (debtor_id, channel)
            for _action_id, debtor_id, _account_id, channel_value, _at in batch
            if (channel := message_channels[channel_value]) is not None
        ],
    )
    region = gate_service.gate_for(session, institution=institution).pack.jurisdiction
    zones: dict[int, str | None] = {}
    contact_points: dict[int, int] = {}
    attempts = []
    for _action_id, debtor_id, account_id, channel_value, planned_at in batch:
        channel = channels[channel_value]
        point = points.get((debtor_id, channel)) if points else None
        if point is not None:
            contact_points[debtor_id] = point.id
            if point.id not in zones:
                zones[point.id] = facts_service.contact_point_zone(point, region)
        attempts.append(
            batch_planned_contact(
                debtor_id=str(debtor_id),
                channel=channel,
                at=instants[planned_at],
                account_id=str(account_id) if account_id else None,
                contact_point_timezone=zones[point.id] if point is not None else None,
                automated=CHANNELS[channel].automated,
                to_mobile=point is None or point.kind == ContactKind.mobile,
            )
        )
    checked = gate_service.decide_prechecks(
        session,
        institution=institution,
        attempts=attempts,
        actor=actor,
        contact_points=contact_points,
        # Planned for the morning: the debtor's morning, in every zone they may be in.
        local_times=[mornings[attempt.channel] for attempt in attempts],
    )
    allowed = ActionStatus.ALLOWED.value
    blocked = ActionStatus.BLOCKED.value
    return GateAnswers(
        first=int(batch[0][0]),
        last=int(batch[-1][0]),
        decisions=checked.columns,
        ids=[row[0] for row in batch],
        actions={
            "status": [allowed if each.allowed else blocked for each in checked.decisions],
            # The decisions' own columns (``bulk.Coded``: each distinct value bound once).
            "rule_ids": checked.columns["rule_ids"],
            "next_allowed_at": checked.columns["next_allowed_at"],
            "planned_at": checked.columns["planned_at"],
        },
    )


def store_answers(session: Session, answers: GateAnswers) -> int:
    """Store a decided batch: its decisions (bulk) and each action's answer and decision id."""
    ids = gate_service.store_prechecked(session, answers.decisions, now=utcnow())
    repository.record_decisions(session, {"id": answers.ids, **answers.actions, "decision_id": ids})
    return answers.size


# Fewer planned actions than this are decided in the process even when workers are offered:
# starting them would cost more than they save.
GATE_PARALLEL_MIN_ACTIONS = 20_000


@dataclass(frozen=True, slots=True)
class GateParts:
    """The gate's remaining batches for worker processes: where they read, and each batch as
    its (first, last) action id: the batches ``gate_batch`` would take one after another."""

    url: str
    bounds: list[tuple[int, int]]


def gate_parts(
    session: Session, context: Context, *, limit: int = GATE_BATCH, workers: int
) -> GateParts | None:
    """Return the remaining batches to decide in ``workers`` worker processes, or None when
    this process decides them (no workers, too few actions, a single batch, a database a
    worker cannot open).

    Batches are cut exactly as ``gate_batch`` takes them (``limit`` planned actions in id
    order), so a debtor's actions share a batch, and so count against each other, as they do
    in one process.
    """
    if workers < 1:
        return None
    ids = repository.planned_action_ids(session, run_id=context.run.id)
    if len(ids) < max(GATE_PARALLEL_MIN_ACTIONS, limit + 1):
        return None
    url = worker_url(session)
    if url is None:
        return None
    bounds = [
        (ids[start], ids[min(start + limit, len(ids)) - 1]) for start in range(0, len(ids), limit)
    ]
    return GateParts(url=url, bounds=bounds)


def decided_batches(
    parts: GateParts, *, institution_id: int, run_id: int, actor: str, workers: int
) -> Generator[GateAnswers, None, None]:
    """Yield the batches decided in worker processes, in order, a few batches ahead.

    Each worker reads (its own connection) and decides whole batches; the caller writes each
    batch as it comes (SQLite has one writer; it lets the workers read meanwhile, WAL). Nothing
    a batch reads is written by the gate, so a batch decided while earlier ones are written is
    decided as it would be after them. Close the generator to stop the workers.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    # fork: the workers start with the libraries already imported.
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_gate_worker,
        initargs=(parts.url,),
    )
    try:
        pending: deque[Future[GateAnswers]] = deque()
        queued = iter(parts.bounds)
        # At most two batches per worker ahead of the writes: memory stays bounded.
        for first, last in queued:
            pending.append(
                pool.submit(_decide_in_worker, institution_id, run_id, actor, first, last)
            )
            if len(pending) >= 2 * workers:
                break
        while pending:
            answers = pending.popleft().result()
            for first, last in queued:
                pending.append(
                    pool.submit(_decide_in_worker, institution_id, run_id, actor, first, last)
                )
                break
            yield answers
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def store_decided(session: Session, context: Context, answers: GateAnswers) -> int | None:
    """Store a batch a worker decided; None (nothing written) when its actions are no longer
    all waiting for the gate (another run of the day decided some meanwhile)."""
    waiting = repository.count_planned(
        session, run_id=context.run.id, first=answers.first, last=answers.last
    )
    if waiting != answers.size:
        return None
    return store_answers(session, answers)


# A gate worker's state, set once as the process starts (``_start_gate_worker``).
_GATE_WORKER: dict[str, Any] = {}


def _start_gate_worker(url: str) -> None:
    from recoup.db import make_engine, session_factory

    processes.exit_with_parent("recoup-gate-parent-watch")
    # A fresh engine: connections inherited from the parent are never used here.
    _GATE_WORKER.update(sessions=session_factory(make_engine(url, pool_size=1), write=False))


def _decide_in_worker(
    institution_id: int, run_id: int, actor: str, first: int, last: int
) -> GateAnswers:
    with _GATE_WORKER["sessions"]() as session, collector.paused():
        institution = institutions_repository.require_by_id(session, institution_id)
        batch = repository.planned_actions(
            session, run_id=run_id, limit=None, between=(first, last)
        )
        return decide_actions(session, institution=institution, actor=actor, batch=batch)


def gate_counts(session: Session, context: Context) -> dict[str, Any]:
    """Count the gate's answers over the whole day (after its last batch)."""
    by_status = repository.count_by(session, run_id=context.run.id, column="status")
    blocked = rules.blocked_counts(repository.blocked_rule_ids(session, run_id=context.run.id))
    context.run.blocked_by_rule = blocked
    return {
        "allowed": by_status.get(ActionStatus.ALLOWED.value, 0),
        "blocked": by_status.get(ActionStatus.BLOCKED.value, 0),
        "blocked_by_rule": blocked,
    }


def hand_off(session: Session, context: Context) -> dict[str, Any]:
    """Hand allowed actions over: messages to the outbox, tasks to their cases and agents.

    Messages are queued in bulk with their gate decision, the step's approved template and
    a key of (run, action), and one dispatch job is enqueued; a message that cannot be queued
    (no approved template, no contact point …) is counted under its reason. Tasks go to the
    queue their step names, onto their case as an open task at the planned time, and the
    institution's cases are allocated so the tasks reach agents' worklists. The stage commits
    with its ledger row, and a re-run finds every key taken: nothing is handed over twice.
    """
    run = context.run
    institution = context.institution
    messages = repository.allowed_messages(session, run_id=run.id)
    queued = outbox_service.queue_planned_messages(
        session,
        institution=institution,
        planned=[
            outbox_service.PlannedSend(
                key=rules.message_key(run.id, action_id),
                debtor_id=int(debtor_id),
                account_id=int(account_id) if account_id is not None else None,
                channel=str(channel),
                template=template,
                decision_id=int(decision_id),
                scheduled_at=clock.aware(planned_at),
            )
            for action_id, debtor_id, account_id, channel, template, decision_id, planned_at in (
                messages
            )
            if decision_id is not None and planned_at is not None
        ],
        actor=context.actor,
        dispatch_key=f"cycle:{run.id}",
        now=context.now,
    )
    moved = cases_service.route_to_queues(
        session,
        institution_id=institution.id,
        moves=repository.allowed_task_queues(run.id),
        now=context.now,
    )
    added = workspace_service.add_planned_tasks(
        session,
        institution_id=institution.id,
        planned=repository.allowed_tasks(run.id),
        actor=context.actor,
    )
    tasks = repository.count_kinds(session, run_id=run.id, status=ActionStatus.ALLOWED.value).get(
        ActionKind.TASK.value, 0
    )
    counts: dict[str, Any] = {}
    if tasks and allocation_service.has_agents(
        session, institution_id=institution.id, as_of=context.as_of
    ):
        allocation = allocation_service.allocate(
            session, institution=institution, as_of=context.as_of, actor=context.actor
        )
        workspace_service.give_tasks_to_owners(
            session, institution_id=institution.id, cases=repository.allowed_task_cases(run.id)
        )
        counts.update(allocated=allocation.assigned, agents=allocation.agents)
    elif tasks:
        counts.update(allocated=0, agents=0)
    repository.move_actions(
        session,
        run_id=run.id,
        where={"status": ActionStatus.ALLOWED.value},
        values={"status": ActionStatus.HANDED_OFF.value},
    )
    run.tasks_created = added
    run.messages_queued = queued.queued
    return {
        "tasks_created": added,
        "tasks_already_there": tasks - added,
        "queue_moves": moved,
        "messages_queued": queued.queued,
        "messages_already_queued": queued.duplicates,
        "messages_not_queued": dict(sorted(queued.not_queued.items())),
        **counts,
    }


def refresh_aggregates(session: Session, context: Context) -> dict[str, Any]:
    """Bring the dashboards' daily aggregates and the KPI snapshot up to the day (last stage).

    With the run's worker processes, the KPI snapshot is counted in one of them while this
    process writes the daily aggregates.

    Set-based and idempotent: a rerun rewrites the same days with the same rows.
    """
    result = analytics_service.refresh_aggregates(
        session,
        institution=context.institution,
        as_of=context.as_of,
        now=context.now,
        workers=context.workers,
    )
    return {
        "days_refreshed": (result.last - result.first).days + 1,
        "aggregate_rows": result.rows,
        "kpi_snapshots": result.kpi_snapshots,
    }


StageFunction = Callable[[Session, Context], dict[str, Any]]

STAGE_FUNCTIONS: Mapping[Stage, StageFunction] = {
    Stage.DELINQUENCY: update_delinquency,
    Stage.RECONCILIATION: reconcile,
    Stage.SCORING: score,
    Stage.CASES: sync_cases,
    Stage.SEGMENTATION: segment,
    Stage.STRATEGY: step,
    Stage.NEXT_ACTIONS: plan_actions,
    Stage.GATE: gate_counts,
    Stage.HANDOFF: hand_off,
    Stage.AGGREGATES: refresh_aggregates,
}


# ---- stages split into shards (jobs on the workers) --------------------------------------


def age_shard(session: Session, context: Context, shard: Shard) -> dict[str, Any]:
    """Age the shard's accounts (the delinquency stage's work for one shard)."""
    result = portfolio_service.age_accounts(
        session,
        institution=context.institution,
        as_of=context.as_of,
        now=context.now,
        shard=(shard.index, shard.count),
    )
    return {"aged": result.aged, "events": result.events}


def gate_shard(
    session: Session, context: Context, shard: Shard, *, limit: int = GATE_BATCH
) -> dict[str, Any]:
    """Decide every planned action of the shard's debtors, batch by batch."""
    decided = 0
    while True:
        count = gate_batch(session, context, limit=limit, shard=shard)
        if not count:
            return {"decided": decided}
        decided += count


ShardFunction = Callable[[Session, Context, Shard], dict[str, Any]]

SHARD_FUNCTIONS: Mapping[Stage, ShardFunction] = {
    Stage.DELINQUENCY: age_shard,
    Stage.GATE: gate_shard,
}


def shard_key(run: CycleRun, shard: Shard) -> str:
    """The idempotency key of a shard's job: one job per run, stage and shard."""
    return f"{run.id}:{shard.label}"


def enqueue_shards(
    session: Session, context: Context, stage: Stage, count: int, *, retry_dead: bool = False
) -> int:
    """Ask the workers for each shard of the stage not in the ledger; return how many.

    The same shard asked twice is one job (its key); with ``retry_dead`` (a run started
    again) a shard whose job died is tried afresh.
    """
    ledger = repository.stages_of(session, run_id=context.run.id)
    asked = 0
    for shard in rules.shards_of(stage, count):
        if shard.label in ledger:
            continue
        job = jobs.enqueue(
            session,
            STAGE_SHARD,
            {
                "run_id": context.run.id,
                "institution_id": context.institution.id,
                "stage": stage.value,
                "index": shard.index,
                "count": shard.count,
                "actor": context.actor,
            },
            idempotency_key=shard_key(context.run, shard),
            institution_id=context.institution.id,
        )
        if retry_dead and job.status == JobStatus.dead:
            jobs.retry(job)
        asked += 1
    return asked


@dataclass(frozen=True, slots=True)
class ShardProgress:
    """Where a stage's shards are: done (with their seconds), or dead (needing a person)."""

    done: int
    count: int
    seconds: float
    dead: tuple[str, ...]

    @property
    def finished(self) -> bool:
        return self.done == self.count


def shard_progress(session: Session, *, run: CycleRun, stage: Stage, count: int) -> ShardProgress:
    """Read the ledger (and the shards' jobs) for how far a stage's shards are."""
    shards = rules.shards_of(stage, count)
    ledger = repository.stages_of(session, run_id=run.id)
    done = [ledger[shard.label] for shard in shards if shard.label in ledger]
    waiting = {shard_key(run, shard): shard for shard in shards if shard.label not in ledger}
    dead = tuple(
        f"{job.idempotency_key} ({job.last_error or 'no error recorded'})"
        for job in repository.shard_jobs(session, name=STAGE_SHARD, keys=sorted(waiting))
        if job.status == JobStatus.dead
    )
    return ShardProgress(
        done=len(done),
        count=count,
        seconds=round(sum(row.seconds for row in done), 4),
        dead=dead,
    )


def run_shard(
    session: Session, *, institution_id: int, run_id: int, shard: Shard, actor: str
) -> bool:
    """Do one shard's work and write its ledger row; False when the ledger held it already.

    The run's row is not locked: the shards of a stage run at once on several workers.
    """
    run = repository.get_run(session, institution_id=institution_id, run_id=run_id)
    if run is None:
        raise NotFound(f"no cycle run {run_id}")
    if shard.label in repository.stages_of(session, run_id=run.id):
        return False
    institution = institutions_repository.require_by_id(session, institution_id)
    context = Context(institution=institution, run=run, actor=actor, now=utcnow())
    started = time.perf_counter()
    counts = SHARD_FUNCTIONS[shard.stage](session, context, shard)
    session.add(
        CycleStage(
            institution_id=institution_id,
            run_id=run.id,
            stage=shard.label,
            counts=counts,
            seconds=round(time.perf_counter() - started, 4),
            finished_at=utcnow(),
        )
    )
    session.flush()
    return True


def merge_shards(session: Session, context: Context, stage: Stage, count: int) -> dict[str, Any]:
    """Return a sharded stage's counts once its shards are done (what the stage would count).

    The gate counts its answers over the whole day as it does unsharded; the other stages
    add their shards' counts up.
    """
    if stage is Stage.GATE:
        return gate_counts(session, context)
    ledger = repository.stages_of(session, run_id=context.run.id)
    return rules.merge_counts(ledger[shard.label].counts for shard in rules.shards_of(stage, count))


def finish_run(session: Session, *, run: CycleRun) -> None:
    """Mark the run completed once every stage is in its ledger."""
    run.status = RunStatus.COMPLETED
    run.finished_at = utcnow()
    session.flush()
    events.emit(
        session,
        institution_id=run.institution_id,
        type="cycle.completed",
        data={
            "run_id": run.id,
            "as_of": run.as_of.isoformat(),
            "tasks_created": run.tasks_created,
            "messages_queued": run.messages_queued,
        },
    )


def fail_run(session: Session, *, institution_id: int, as_of: date, error: str) -> None:
    """Mark the day's run failed with the reason (a later run resumes it)."""
    run = repository.run_of(session, institution_id=institution_id, as_of=as_of, lock=True)
    if run is not None and run.status != RunStatus.COMPLETED:
        run.status = RunStatus.FAILED
        run.error = error[:500]


def report_of(
    session: Session, *, institution: Institution, run: CycleRun, skipped: Sequence[str] = ()
) -> RunReport:
    """Return a run's report from its ledger (``skipped``: stages a resumed run found done)."""
    ledger = repository.stages_of(session, run_id=run.id)
    stages: dict[str, StageReport] = {
        str(stage): StageReport(counts=ledger[stage].counts, seconds=ledger[stage].seconds)
        for stage in rules.STAGES
        if stage in ledger
    }
    return RunReport(
        institution=institution.code,
        as_of=run.as_of,
        status=run.status,
        stages=stages,
        tasks_created=run.tasks_created,
        messages_queued=run.messages_queued,
        blocked_by_rule=run.blocked_by_rule or {},
        seconds=run.seconds,
        attempts=run.attempts,
        started_at=run.started_at,
        finished_at=run.finished_at,
        skipped=tuple(skipped),
    )


def runs(session: Session, *, institution_id: int, page: PageRequest) -> Page[CycleRun]:
    """Return one page of the institution's runs, the latest day first."""
    return repository.runs_page(session, institution_id=institution_id, page=page)


def require_run(session: Session, *, institution_id: int, run_id: int) -> CycleRun:
    """Return one of the institution's runs (``NotFound`` for another's)."""
    run = repository.get_run(session, institution_id=institution_id, run_id=run_id)
    if run is None:
        raise NotFound(f"no cycle run {run_id}")
    return run


def run_actions(
    session: Session, *, run: CycleRun, page: PageRequest, status: str | None = None
) -> Page[CycleAction]:
    """Return one page of a run's actions: where each case went and why."""
    return repository.actions_page(session, run_id=run.id, page=page, status=status)


def action_reasons(
    session: Session, *, run: CycleRun, actions: Sequence[CycleAction]
) -> dict[int, tuple[str, dict[str, Any]]]:
    """Why each action's case was on its step that day (reason code and values, by case)."""
    return strategy_service.reasons_on(
        session,
        institution_id=run.institution_id,
        case_ids=[action.case_id for action in actions],
        as_of=run.as_of,
    )


def due_runs(session: Session, *, now: datetime) -> list[tuple[Institution, date]]:
    """Return each institution whose cycle time has passed today (local) with the day not done."""
    due: list[tuple[Institution, date]] = []
    for institution in institutions_repository.list_all(session):
        day = rules.due_day(
            settings_of(institution).cycle.run_at,
            now.astimezone(clock.zone(institution.timezone)),
        )
        if day is None:
            continue
        run = repository.run_of(session, institution_id=institution.id, as_of=day)
        if run is None or run.status != RunStatus.COMPLETED:
            due.append((institution, day))
    return due
