"""The workspace's queries: an agent's cases, call-backs, notes and a case's timeline sources."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.cases.rules import WORKED_STATES, CaseState
from recoup.identity.principal import Principal
from recoup.identity.scoping import scoped
from recoup.kit import clock
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account, Payment
from recoup.models.base import UTCDateTime
from recoup.models.cases import Case, CaseAccount, CaseEvent, Queue
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.plans import PaymentPlan
from recoup.models.strategy import CaseStrategyState
from recoup.models.workbench import Promise
from recoup.models.workspace import CaseNote, CaseTask

_TASKS: Table = CaseTask.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class CaseFilters:
    """What an agent narrows their case list to."""

    state: str | None = None
    bucket: str | None = None
    queue: str | None = None
    callback_due: bool = False


def _due_callback(now: datetime) -> Any:
    """The earliest open call-back of each case that is due by ``now``."""
    return (
        select(func.min(CaseTask.due_at))
        .where(
            CaseTask.case_id == Case.id,
            CaseTask.done_at.is_(None),
            CaseTask.due_at <= now,
        )
        .correlate(Case)
        .scalar_subquery()
    )


def _my_cases(principal: Principal) -> Select[Case]:
    """The cases the principal owns, through the tenant and case scoping."""
    return scoped(select(Case), Case, principal).where(Case.owner_id == principal.user_id)


def my_queues(session: Session, *, principal: Principal) -> list[tuple[str, str]]:
    """The queues (code, name) the principal's live cases are in, for the case list's filter."""
    rows = session.execute(
        select(Queue.code, Queue.name)
        .where(
            Queue.id.in_(
                _my_cases(principal)
                .where(Case.state != CaseState.CLOSED, Case.queue_id.is_not(None))
                .with_only_columns(Case.queue_id)
            )
        )
        .order_by(Queue.rank, Queue.code)
    )
    return [(code, name) for code, name in rows]


def priority_rank(session: Session, *, case: Case) -> tuple[int, int] | None:
    """Where the case's priority ranks among its owner's live cases: (rank, of how many)."""
    if case.owner_id is None:
        return None
    live = (
        select(func.count())
        .select_from(Case)
        .where(
            Case.institution_id == case.institution_id,
            Case.owner_id == case.owner_id,
            Case.state != CaseState.CLOSED,
        )
    )
    total = session.scalar(live) or 0
    above = session.scalar(live.where(Case.priority > case.priority)) or 0
    return (above + 1, max(total, above + 1))


def my_cases_page(
    session: Session,
    *,
    principal: Principal,
    filters: CaseFilters,
    page: PageRequest,
    now: datetime,
) -> Page[tuple[Case, str | None, datetime | None]]:
    """One page of the principal's cases with their queue and due call-back, due ones first."""
    statement = _my_cases(principal)
    if filters.state:
        statement = statement.where(Case.state == filters.state)
    else:
        statement = statement.where(Case.state != CaseState.CLOSED)
    if filters.queue:
        statement = statement.where(
            Case.queue_id.in_(
                select(Queue.id).where(
                    Queue.institution_id == principal.institution_id,
                    Queue.code == filters.queue,
                )
            )
        )
    if filters.bucket:
        statement = statement.where(
            exists(
                select(CaseAccount.id)
                .join(Account, Account.id == CaseAccount.account_id)
                .where(
                    CaseAccount.case_id == Case.id,
                    CaseAccount.removed_at.is_(None),
                    Account.bucket == filters.bucket,
                )
            )
        )
    due = _due_callback(now)
    if filters.callback_due:
        statement = statement.where(due.is_not(None))
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.execute(
        statement.add_columns(Queue.code, due.label("due"))
        .outerjoin(Queue, Queue.id == Case.queue_id)
        .order_by(due.is_(None), due, Case.priority.desc(), Case.id.desc())
        .offset(page.offset)
        .limit(page.size)
    )
    items = [(case, code, due_at) for case, code, due_at in rows]
    return Page(items=items, total=total, page=page.page, size=page.size)


def next_candidates(
    session: Session, *, principal: Principal, now: datetime, limit: int
) -> list[tuple[Case, datetime | None]]:
    """The principal's workable cases in the order "next case" tries them."""
    due = _due_callback(now)
    rows = session.execute(
        _my_cases(principal)
        .where(Case.state.in_([str(state) for state in WORKED_STATES]))
        .add_columns(due.label("due"))
        .order_by(due.is_(None), due, Case.priority.desc(), Case.id.desc())
        .limit(limit)
    )
    return [(case, due_at) for case, due_at in rows]


def case_buckets(session: Session, *, case_ids: list[int]) -> dict[int, list[tuple[str, int, str]]]:
    """Per case: its accounts' (bucket, balance, currency)."""
    found: dict[int, list[tuple[str, int, str]]] = {case_id: [] for case_id in case_ids}
    if not case_ids:
        return found
    rows = session.execute(
        select(
            CaseAccount.case_id,
            Account.bucket,
            Account.principal + Account.interest + Account.fees + Account.penalty,
            Account.currency,
        )
        .join(Account, Account.id == CaseAccount.account_id)
        .where(CaseAccount.case_id.in_(case_ids), CaseAccount.removed_at.is_(None))
    )
    for case_id, bucket, balance, currency in rows:
        found[case_id].append((bucket, balance, currency))
    return found


def own_contact_points(
    session: Session, *, institution_id: int, debtor_id: int
) -> list[ContactPoint]:
    """A debtor's contact points (their own and their contact persons'), best first."""
    return list(
        session.execute(
            select(ContactPoint)
            .where(
                ContactPoint.institution_id == institution_id,
                ContactPoint.debtor_id == debtor_id,
            )
            .order_by(ContactPoint.third_party, ContactPoint.id)
        ).scalars()
    )


def contact_points_of(
    session: Session, *, institution_id: int, debtor_ids: list[int]
) -> dict[int, list[ContactPoint]]:
    """Many debtors' contact points (their own first), by debtor."""
    found: dict[int, list[ContactPoint]] = {debtor_id: [] for debtor_id in debtor_ids}
    if not found:
        return found
    for point in session.execute(
        select(ContactPoint)
        .where(
            ContactPoint.institution_id == institution_id,
            ContactPoint.debtor_id.in_(list(found)),
        )
        .order_by(ContactPoint.third_party, ContactPoint.id)
    ).scalars():
        found[point.debtor_id].append(point)
    return found


def debtors(session: Session, *, institution_id: int, debtor_ids: list[int]) -> dict[int, Debtor]:
    """Many debtors by id."""
    if not debtor_ids:
        return {}
    return {
        debtor.id: debtor
        for debtor in session.execute(
            select(Debtor).where(Debtor.institution_id == institution_id, Debtor.id.in_(debtor_ids))
        ).scalars()
    }


def open_tasks(session: Session, *, case_id: int) -> list[CaseTask]:
    """A case's tasks not yet done, earliest first."""
    return list(
        session.execute(
            select(CaseTask)
            .where(CaseTask.case_id == case_id, CaseTask.done_at.is_(None))
            .order_by(CaseTask.due_at, CaseTask.id)
        ).scalars()
    )


def add(session: Session, row: CaseTask | CaseNote) -> None:
    """Add a task or a note."""
    session.add(row)


# The timeline's sources, each the newest ``limit`` rows of the case or its debtor.


def attempts(
    session: Session, *, institution_id: int, debtor_id: int, limit: int
) -> list[tuple[ContactAttempt, ContactPoint | None]]:
    when = func.coalesce(
        ContactAttempt.started_at, ContactAttempt.planned_at, ContactAttempt.created_at
    )
    rows = session.execute(
        select(ContactAttempt, ContactPoint)
        .outerjoin(ContactPoint, ContactPoint.id == ContactAttempt.contact_point_id)
        .where(
            ContactAttempt.institution_id == institution_id,
            ContactAttempt.debtor_id == debtor_id,
        )
        .order_by(when.desc(), ContactAttempt.id.desc())
        .limit(limit)
    )
    return [(attempt, point) for attempt, point in rows]


def promises(session: Session, *, institution_id: int, debtor_id: int, limit: int) -> list[Promise]:
    return list(
        session.execute(
            select(Promise)
            .where(Promise.institution_id == institution_id, Promise.debtor_id == debtor_id)
            .order_by(Promise.created_at.desc(), Promise.id.desc())
            .limit(limit)
        ).scalars()
    )


def plans(
    session: Session, *, institution_id: int, debtor_id: int, limit: int
) -> list[PaymentPlan]:
    return list(
        session.execute(
            select(PaymentPlan)
            .where(PaymentPlan.institution_id == institution_id, PaymentPlan.debtor_id == debtor_id)
            .order_by(PaymentPlan.created_at.desc(), PaymentPlan.id.desc())
            .limit(limit)
        ).scalars()
    )


def payments(
    session: Session, *, institution_id: int, account_ids: list[int], limit: int
) -> list[tuple[Payment, str]]:
    if not account_ids:
        return []
    rows = session.execute(
        select(Payment, Account.external_id)
        .join(Account, Account.id == Payment.account_id)
        .where(
            Payment.institution_id == institution_id,
            Payment.account_id.in_(account_ids),
        )
        .order_by(Payment.paid_at.desc(), Payment.id.desc())
        .limit(limit)
    )
    return [(payment, external_id) for payment, external_id in rows]


def case_events(session: Session, *, case_id: int, limit: int) -> list[CaseEvent]:
    return list(
        session.execute(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
            .limit(limit)
        ).scalars()
    )


def notes(session: Session, *, case_id: int, limit: int) -> list[CaseNote]:
    return list(
        session.execute(
            select(CaseNote)
            .where(CaseNote.case_id == case_id)
            .order_by(CaseNote.at.desc(), CaseNote.id.desc())
            .limit(limit)
        ).scalars()
    )


def tasks(session: Session, *, case_id: int, limit: int) -> list[CaseTask]:
    return list(
        session.execute(
            select(CaseTask)
            .where(CaseTask.case_id == case_id)
            .order_by(CaseTask.created_at.desc(), CaseTask.id.desc())
            .limit(limit)
        ).scalars()
    )


def strategy_state(session: Session, *, case_id: int) -> CaseStrategyState | None:
    """Where the case stands on its strategy, once the daily cycle has placed it."""
    return session.execute(
        select(CaseStrategyState).where(CaseStrategyState.case_id == case_id)
    ).scalar_one_or_none()


def case_accounts(session: Session, *, case_id: int) -> list[Account]:
    """The accounts in a case now."""
    return list(
        session.execute(
            select(Account)
            .join(CaseAccount, CaseAccount.account_id == Account.id)
            .where(CaseAccount.case_id == case_id, CaseAccount.removed_at.is_(None))
            .order_by(Account.id)
        ).scalars()
    )


def add_tasks_from(
    session: Session,
    *,
    institution_id: int,
    source: Select[int, str | None, datetime | None],
    actor: str,
    now: datetime,
) -> int:
    """Insert a task for each (case, kind, due) row of ``source`` its case does not hold yet,
    in one bulk write; return how many.

    On SQLite, one INSERT … SELECT (its plan looks each row up by the case index, however
    few tasks the table held when planned): the source's due times are copied as stored, so
    ``source`` names a stored timestamp column. Elsewhere the rows to add are read first and
    written after: one INSERT … SELECT that checks the table it fills lets PostgreSQL, when
    ``case_tasks`` is (nearly) empty at planning time, re-read the growing table once per row,
    quadratic in the day's tasks.
    """
    planned = source.subquery()
    held = exists(
        select(CaseTask.id).where(
            CaseTask.case_id == planned.c.case_id,
            CaseTask.kind == planned.c.kind,
            CaseTask.due_at == planned.c.due_at,
        )
    )
    if session.get_bind().dialect.name == "sqlite":
        stamp = literal(now, UTCDateTime())
        result = session.execute(
            insert(CaseTask).from_select(
                [
                    "case_id",
                    "kind",
                    "due_at",
                    "institution_id",
                    "created_by",
                    "created_at",
                    "updated_at",
                ],
                select(
                    planned.c.case_id,
                    planned.c.kind,
                    planned.c.due_at,
                    literal(institution_id),
                    literal(actor[:128]),
                    stamp,
                    stamp,
                ).where(~held),
                include_defaults=False,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
    rows = session.execute(
        select(planned.c.case_id, planned.c.kind, planned.c.due_at).where(~held)
    ).all()
    if not rows:
        return 0
    case_ids, kinds, due = zip(*rows, strict=True)
    # A due time computed in the source (not read from a typed column) comes back as the
    # driver gives it: naive UTC on SQLite.
    due = tuple(None if moment is None else clock.aware(moment) for moment in due)
    return bulk.insert_columns(
        session,
        _TASKS,
        {"case_id": case_ids, "kind": kinds, "due_at": due},
        size=len(rows),
        constants={
            "institution_id": institution_id,
            "created_by": actor[:128],
            "created_at": now,
            "updated_at": now,
        },
    )


def own_open_tasks(session: Session, *, institution_id: int, cases: Select[int]) -> int:
    """Give the open tasks of the cases ``cases`` selects their case's owner; return how many."""
    owner = (
        select(Case.owner_id)
        .where(Case.id == CaseTask.case_id)
        .correlate(CaseTask)
        .scalar_subquery()
    )
    result = session.execute(
        update(CaseTask)
        .where(
            CaseTask.institution_id == institution_id,
            CaseTask.case_id.in_(cases),
            CaseTask.done_at.is_(None),
        )
        .values(owner_id=owner)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
