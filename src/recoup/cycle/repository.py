"""Queries of the daily cycle: runs, the stage ledger and the day's actions (set-based)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, Table, case, func, literal, or_, select, text, update
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.cases.rules import CaseState
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account
from recoup.models.cases import Case, CaseAccount, Queue
from recoup.models.cycle import CycleAction, CycleRun, CycleStage
from recoup.models.jobs import Job
from recoup.models.scoring import AccountScore
from recoup.models.strategy import CaseStrategyState

# The actions' Core table: a day's actions go in as one executemany, no ORM bookkeeping per row.
_ACTIONS: Table = CycleAction.__table__  # type: ignore[assignment]


def run_of(
    session: Session, *, institution_id: int, as_of: date, lock: bool = False
) -> CycleRun | None:
    """Return the institution's run for a day (locked for the stage about to run)."""
    query = select(CycleRun).where(
        CycleRun.institution_id == institution_id, CycleRun.as_of == as_of
    )
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def get_run(session: Session, *, institution_id: int, run_id: int) -> CycleRun | None:
    """Return one run of the institution."""
    return session.execute(
        select(CycleRun).where(CycleRun.institution_id == institution_id, CycleRun.id == run_id)
    ).scalar_one_or_none()


def runs_page(session: Session, *, institution_id: int, page: PageRequest) -> Page[CycleRun]:
    """Return one page of the institution's runs, the latest day first."""
    total = session.scalar(
        select(func.count()).select_from(CycleRun).where(CycleRun.institution_id == institution_id)
    )
    items = (
        session.execute(
            select(CycleRun)
            .where(CycleRun.institution_id == institution_id)
            .order_by(CycleRun.as_of.desc(), CycleRun.id.desc())
            .offset(page.offset)
            .limit(page.size)
        )
        .scalars()
        .all()
    )
    return Page(items=list(items), total=int(total or 0), page=page.page, size=page.size)


def stages_of(session: Session, *, run_id: int) -> dict[str, CycleStage]:
    """Return the stages a run finished, by name."""
    rows = session.execute(select(CycleStage).where(CycleStage.run_id == run_id)).scalars()
    return {row.stage: row for row in rows}


def case_members(session: Session, *, institution_id: int) -> Sequence[Any]:
    """Return (case, debtor, queue, state, account, bucket, balance) of live cases' accounts
    (driver rows)."""
    balance = Account.principal + Account.interest + Account.fees + Account.penalty
    return bulk.fetch_rows(
        session,
        select(
            Case.id,
            Case.debtor_id,
            Case.queue_id,
            Case.state,
            Account.id,
            Account.bucket,
            balance,
        )
        .join(CaseAccount, CaseAccount.case_id == Case.id)
        .join(Account, Account.id == CaseAccount.account_id)
        .where(
            Case.institution_id == institution_id,
            Case.state != CaseState.CLOSED,
            CaseAccount.removed_at.is_(None),
        )
        .order_by(Case.id, Account.id),
    )


def scores_on(session: Session, *, institution_id: int, as_of: date) -> Sequence[Any]:
    """Return (account, grade, segment, priority) of every score of the day, in the order they
    were written: an account's last row is its newest score (driver rows).

    Read along the (institution, day) index in id order; picking each account's newest is left
    to the caller (a ``GROUP BY`` here sorted a million rows in a temporary tree: 2.0 s against
    1.2 s at a million accounts).
    """
    return bulk.fetch_rows(
        session,
        select(
            AccountScore.account_id,
            AccountScore.grade,
            AccountScore.segment,
            AccountScore.priority,
        )
        .where(AccountScore.institution_id == institution_id, AccountScore.as_of == as_of)
        .order_by(AccountScore.id),
    )


def add_actions(
    session: Session,
    columns: Mapping[str, Sequence[Any]],
    *,
    size: int,
    constants: Mapping[str, Any],
) -> int:
    """Insert the day's actions, given column by column, in one driver executemany; return
    how many."""
    return bulk.insert_columns(session, _ACTIONS, columns, size=size, constants=constants)


def segments_of_run(session: Session, *, run_id: int, status: str) -> list[str]:
    """Return the distinct segments of a run's actions in one status."""
    return list(
        session.execute(
            select(CycleAction.segment)
            .where(CycleAction.run_id == run_id, CycleAction.status == status)
            .distinct()
            .order_by(CycleAction.segment)
        ).scalars()
    )


def channels_of_run(session: Session, *, run_id: int, status: str) -> list[str | None]:
    """Return the distinct channels of a run's actions in one status."""
    return list(
        session.execute(
            select(CycleAction.channel)
            .where(CycleAction.run_id == run_id, CycleAction.status == status)
            .distinct()
        ).scalars()
    )


def move_actions(
    session: Session,
    *,
    run_id: int,
    where: Mapping[str, Any],
    values: Mapping[str, Any],
) -> int:
    """Update a run's actions matching column values in one statement; return how many."""
    conditions = [CycleAction.run_id == run_id]
    for column, value in where.items():
        attribute = getattr(CycleAction, column)
        conditions.append(attribute.is_(None) if value is None else attribute == value)
    result = session.execute(
        update(CycleAction)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def count_values(session: Session, *, run_id: int, status: str, column: str) -> dict[Any, int]:
    """Count a run's actions in one status by one column's value (None for no value)."""
    attribute = getattr(CycleAction, column)
    rows = session.execute(
        select(attribute, func.count())
        .where(CycleAction.run_id == run_id, CycleAction.status == status)
        .group_by(attribute)
    )
    return {value: int(count) for value, count in rows}


def move_actions_by(
    session: Session,
    *,
    run_id: int,
    status: str,
    column: str,
    values: Mapping[Any, Mapping[str, Any]],
) -> int:
    """Update a run's actions in one status by one column's value, in one statement.

    ``values`` maps a value of ``column`` (None: no value) to the columns its actions take;
    an action whose value is not there is left as it is, and so is a column its value does
    not name. Return how many actions were updated. One pass over the actions, where an
    update per value reads every action in the status again.
    """
    if not values:
        return 0
    attribute = getattr(CycleAction, column)
    keys = [key for key in values if key is not None]
    names = sorted({name for changes in values.values() for name in changes})
    assignments: dict[str, Any] = {}
    for name in names:
        target = getattr(CycleAction, name)
        whens = [
            (
                attribute.is_(None) if key is None else attribute == key,
                literal(changes[name], target.type),
            )
            for key, changes in values.items()
            if name in changes
        ]
        assignments[name] = case(*whens, else_=target)
    matched = [attribute.in_(keys)] if keys else []
    if None in values:
        matched.append(attribute.is_(None))
    result = session.execute(
        update(CycleAction)
        .where(CycleAction.run_id == run_id, CycleAction.status == status, or_(*matched))
        .values(**assignments)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def planned_actions(
    session: Session,
    *,
    run_id: int,
    limit: int | None,
    debtors: tuple[int, int] | None = None,
    between: tuple[int, int] | None = None,
) -> Sequence[Any]:
    """Return up to ``limit`` of a run's actions waiting for the gate, in id order.

    ``debtors=(index, count)``: only those of debtors whose id modulo ``count`` is ``index``;
    ``between=(first, last)``: only those with an id in that range.
    """
    query = select(
        CycleAction.id,
        CycleAction.debtor_id,
        CycleAction.account_id,
        CycleAction.channel,
        CycleAction.planned_at,
    ).where(CycleAction.run_id == run_id, CycleAction.status == "planned")
    if debtors is not None:
        query = query.where(CycleAction.debtor_id % debtors[1] == debtors[0])
    if between is not None:
        query = query.where(CycleAction.id.between(*between))
    return session.execute(query.order_by(CycleAction.id).limit(limit)).all()


def planned_action_ids(session: Session, *, run_id: int) -> list[int]:
    """Return the ids of a run's actions waiting for the gate, in order."""
    return [
        int(action_id)
        for (action_id,) in bulk.fetch_rows(
            session,
            select(CycleAction.id)
            .where(CycleAction.run_id == run_id, CycleAction.status == "planned")
            .order_by(CycleAction.id),
        )
    ]


def count_planned(session: Session, *, run_id: int, first: int, last: int) -> int:
    """Count a run's actions waiting for the gate with an id from ``first`` to ``last``."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(CycleAction)
            .where(
                CycleAction.run_id == run_id,
                CycleAction.status == "planned",
                CycleAction.id.between(first, last),
            )
        )
        or 0
    )


def shard_jobs(session: Session, *, name: str, keys: Sequence[str]) -> Sequence[Job]:
    """Return the jobs of a stage's shards (by their idempotency keys)."""
    return session.scalars(
        select(Job).where(Job.name == name, Job.idempotency_key.in_(list(keys)))
    ).all()


def record_decisions(session: Session, columns: Mapping[str, Sequence[Any] | bulk.Coded]) -> None:
    """Write the gate's answers onto actions by id (one executemany), given as columns: the
    actions' ``id`` and their new ``status``, ``rule_ids``, ``decision_id``,
    ``next_allowed_at`` and ``planned_at`` (moved into the debtor's local day), one value
    per action each."""
    bulk.update_columns(session, _ACTIONS, columns, key="id")


def count_by(session: Session, *, run_id: int, column: str) -> dict[str, int]:
    """Count a run's actions by one column's value."""
    attribute = getattr(CycleAction, column)
    rows = session.execute(
        select(attribute, func.count()).where(CycleAction.run_id == run_id).group_by(attribute)
    )
    return {str(value): int(count) for value, count in rows}


def allowed_messages(session: Session, *, run_id: int) -> Sequence[Any]:
    """Return a run's allowed message actions in id order:
    (action, debtor, account, channel, template, decision, planned at)."""
    return session.execute(
        select(
            CycleAction.id,
            CycleAction.debtor_id,
            CycleAction.account_id,
            CycleAction.channel,
            CycleAction.template,
            CycleAction.decision_id,
            CycleAction.planned_at,
        )
        .where(
            CycleAction.run_id == run_id,
            CycleAction.status == "allowed",
            CycleAction.kind == "message",
        )
        .order_by(CycleAction.id)
    ).all()


def _allowed_tasks(run_id: int) -> Any:
    return (
        CycleAction.run_id == run_id,
        CycleAction.status == "allowed",
        CycleAction.kind == "task",
        CycleAction.planned_at.is_not(None),
    )


def allowed_tasks(run_id: int) -> Select[int, str | None, datetime | None]:
    """Select a run's allowed task actions as (``case_id``, ``kind``, ``due_at``): the
    action's channel is the task's kind, its planned time the task's due time."""
    return select(
        CycleAction.case_id.label("case_id"),
        CycleAction.channel.label("kind"),
        CycleAction.planned_at.label("due_at"),
    ).where(*_allowed_tasks(run_id))


def allowed_task_queues(run_id: int) -> Select[int, int | None]:
    """Select the queue of each of a run's allowed task actions as (``case_id``, ``queue_id``)."""
    return select(
        CycleAction.case_id.label("case_id"), CycleAction.queue_id.label("queue_id")
    ).where(*_allowed_tasks(run_id))


def allowed_task_cases(run_id: int) -> Select[int]:
    """Select the cases of a run's allowed task actions."""
    return select(CycleAction.case_id).where(*_allowed_tasks(run_id))


def count_kinds(session: Session, *, run_id: int, status: str) -> dict[str, int]:
    """Count a run's actions in one status by kind."""
    rows = session.execute(
        select(CycleAction.kind, func.count())
        .where(CycleAction.run_id == run_id, CycleAction.status == status)
        .group_by(CycleAction.kind)
    )
    return {str(kind): int(count) for kind, count in rows}


def blocked_rule_ids(session: Session, *, run_id: int) -> list[list[str]]:
    """Return the rule ids each blocked action of a run cites."""
    return [
        list(ids or ())
        for ids in session.execute(
            select(CycleAction.rule_ids).where(
                CycleAction.run_id == run_id, CycleAction.status == "blocked"
            )
        ).scalars()
    ]


def actions_page(
    session: Session, *, run_id: int, page: PageRequest, status: str | None = None
) -> Page[CycleAction]:
    """Return one page of a run's actions (optionally in one status), in case order."""
    conditions = [CycleAction.run_id == run_id]
    if status:
        conditions.append(CycleAction.status == status)
    total = session.scalar(select(func.count()).select_from(CycleAction).where(*conditions))
    items = (
        session.execute(
            select(CycleAction)
            .where(*conditions)
            .order_by(CycleAction.case_id)
            .offset(page.offset)
            .limit(page.size)
        )
        .scalars()
        .all()
    )
    return Page(items=list(items), total=int(total or 0), page=page.page, size=page.size)


def _held_states(institution_id: int, as_of: date) -> Any:
    return select(CaseStrategyState.case_id).where(
        CaseStrategyState.institution_id == institution_id,
        or_(
            CaseStrategyState.contact_stopped.is_(True),
            CaseStrategyState.paused_until > as_of,
        ),
    )


def held_steps(session: Session, *, institution_id: int, as_of: date) -> list[str | None]:
    """Return the distinct steps of the cases an event holds (contact stopped, or paused)."""
    return list(
        session.execute(
            select(CaseStrategyState.step)
            .where(CaseStrategyState.case_id.in_(_held_states(institution_id, as_of)))
            .distinct()
        ).scalars()
    )


def hold_actions(
    session: Session,
    *,
    run_id: int,
    institution_id: int,
    as_of: date,
    step: str | None,
    status: str,
    values: Mapping[str, Any],
) -> int:
    """Move a run's actions of the cases an event holds on ``step``; return how many."""
    held = _held_states(institution_id, as_of).where(
        CaseStrategyState.step.is_(None) if step is None else CaseStrategyState.step == step
    )
    result = session.execute(
        update(CycleAction)
        .where(
            CycleAction.run_id == run_id,
            CycleAction.status == status,
            CycleAction.case_id.in_(held),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def step_actions(
    session: Session,
    *,
    run_id: int,
    institution_id: int,
    version_id: int,
    segment: str,
    step: str,
    status: str,
    values: Mapping[str, Any],
) -> int:
    """Move a run's actions of the cases whose strategy state is on a segment's step."""
    cases = select(CaseStrategyState.case_id).where(
        CaseStrategyState.institution_id == institution_id,
        CaseStrategyState.strategy_version_id == version_id,
        CaseStrategyState.segment == segment,
        CaseStrategyState.step == step,
    )
    result = session.execute(
        update(CycleAction)
        .where(
            CycleAction.run_id == run_id,
            CycleAction.status == status,
            CycleAction.case_id.in_(cases),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def queue_ids(session: Session, *, institution_id: int) -> dict[str, int]:
    """Return the institution's queue ids by code."""
    rows = session.execute(
        select(Queue.code, Queue.id).where(Queue.institution_id == institution_id)
    )
    return {str(code): int(queue_id) for code, queue_id in rows}


# Rows SQLite samples per index when it refreshes its statistics: enough to tell a table
# holding one institution from one holding many, in milliseconds on a million rows.
STATISTICS_SAMPLE = 1000


# The tables a run reads whole portfolios of (PostgreSQL analyses these before a run).
PORTFOLIO_TABLES = (
    "accounts",
    "payments",
    "delinquency_events",
    "cases",
    "case_accounts",
    "account_scores",
)


def refresh_statistics(session: Session) -> None:
    """Refresh the table statistics (sampled) before a run reads whole portfolios.

    Without them SQLite reads an institution's payments through the (institution, paid_at)
    index in time order, a random walk over the table about five times slower than reading
    them account by account. PostgreSQL without statistics (a freshly loaded portfolio, or
    autovacuum off) joins the scoring stage's parts of accounts to their payments by a nested
    loop over the institution's whole index, minutes for 100,000 accounts; its ``ANALYZE``
    samples a fixed number of rows per table, well under a second each.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {', '.join(PORTFOLIO_TABLES)}"))
        return
    if session.get_bind().dialect.name != "sqlite":
        return
    session.execute(text(f"PRAGMA analysis_limit = {STATISTICS_SAMPLE}"))
    session.execute(text("ANALYZE"))
