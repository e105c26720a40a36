"""Every query of cases, queues and agents' profiles, scoped by institution."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.kit.pagination import PageRequest
from recoup.models.account import Account
from recoup.models.cases import (
    AgentAbsence,
    AgentProfile,
    Case,
    CaseAccount,
    CaseEvent,
    Queue,
    QueueMember,
)
from recoup.models.debtor import Debtor
from recoup.models.identity import Role, User
from recoup.models.scoring import AccountScore

CLOSED = "closed"
# Core tables for bulk writes (executemany, no ORM bookkeeping for tens of thousands of rows).
_CASES: Table = Case.__table__  # type: ignore[assignment]
_CASE_EVENTS: Table = CaseEvent.__table__  # type: ignore[assignment]
_CASE_ACCOUNTS: Table = CaseAccount.__table__  # type: ignore[assignment]

# Ids per IN list: under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 5_000


AccountState = tuple[int, int, str, int, int, str, str]


def account_states(session: Session, *, institution_id: int) -> list[AccountState]:
    """Every account's id, debtor, status, days past due, balance, bucket and product, by id
    (rows as the driver returns them: plain values, read by column)."""
    balance = Account.principal + Account.interest + Account.fees + Account.penalty
    return bulk.fetch_rows(
        session,
        select(
            Account.id,
            Account.debtor_id,
            Account.status,
            Account.days_past_due,
            balance,
            Account.bucket,
            Account.product,
        )
        .where(Account.institution_id == institution_id)
        .order_by(Account.id),
    )


def live_cases(session: Session, *, institution_id: int) -> list[Case]:
    """The institution's cases that are not closed."""
    return list(
        session.execute(
            select(Case)
            .where(Case.institution_id == institution_id, Case.state != CLOSED)
            .order_by(Case.id)
        )
        .scalars()
        .all()
    )


# A live case as the daily sync reads it: id, debtor, queue, expected recovery, priority.
LiveCase = tuple[int, int, int | None, int | None, int | None]


def live_case_rows(session: Session, *, institution_id: int) -> list[LiveCase]:
    """The institution's cases that are not closed, as driver rows, by id (no ORM objects):
    id, debtor, queue, expected recovery and priority (None where never set)."""
    return bulk.fetch_rows(
        session,
        select(_CASES.c.id, _CASES.c.debtor_id, _CASES.c.queue_id)
        .add_columns(_CASES.c.expected_recovery, _CASES.c.priority)
        .where(_CASES.c.institution_id == institution_id, _CASES.c.state != CLOSED)
        .order_by(_CASES.c.id),
    )


def insert_cases(session: Session, rows: list[dict[str, Any]]) -> dict[int, int]:
    """Insert cases in bulk; return each new case's id by its debtor."""
    if not rows:
        return {}
    session.execute(insert(_CASES), rows)
    debtor_ids = [int(row["debtor_id"]) for row in rows]
    institution_id = rows[0]["institution_id"]
    ids: dict[int, int] = {}
    for start in range(0, len(debtor_ids), _CHUNK):
        found = session.execute(
            select(_CASES.c.live_debtor_id, _CASES.c.id).where(
                _CASES.c.institution_id == institution_id,
                _CASES.c.live_debtor_id.in_(debtor_ids[start : start + _CHUNK]),
            )
        )
        ids.update((int(debtor_id), int(case_id)) for debtor_id, case_id in found)
    return ids


def set_standing(session: Session, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """Write cases' expected recovery, priority and queue in bulk (``case_id``, ``expected``,
    ``priority``, ``queue`` rows; one driver executemany), stamping ``updated_at`` with now."""
    bulk.update_rows(
        session,
        _CASES,
        [
            {
                "expected_recovery": row["expected"],
                "priority": row["priority"],
                "queue_id": row["queue"],
                "updated_at": now,
                "id": row["case_id"],
            }
            for row in rows
        ],
        key="id",
    )


def live_memberships(session: Session, *, institution_id: int) -> list[tuple[int, int]]:
    """(case id, account id) of every live case's accounts still in the case."""
    return bulk.fetch_rows(
        session,
        select(CaseAccount.case_id, CaseAccount.account_id)
        .join(Case, Case.id == CaseAccount.case_id)
        .where(
            Case.institution_id == institution_id,
            Case.state != CLOSED,
            CaseAccount.removed_at.is_(None),
        ),
    )


def debtor_provinces(session: Session, *, institution_id: int) -> list[tuple[int, str | None]]:
    """(debtor id, province) of each debtor (for queue routing and visit regions)."""
    return bulk.fetch_rows(
        session, select(Debtor.id, Debtor.province).where(Debtor.institution_id == institution_id)
    )


def latest_scores(session: Session, *, institution_id: int) -> dict[int, tuple[int, float | None]]:
    """Each account's newest value to work it (minor units) and priority.

    The value is the expected recovery, or the extra recovery a contact buys where the
    priority is on uplift (``allocation.priority``).
    """
    return {
        account_id: (int(value), priority)
        for account_id, value, priority in latest_score_rows(session, institution_id=institution_id)
    }


def latest_score_rows(
    session: Session, *, institution_id: int, accounts: Iterable[int] | None = None
) -> list[tuple[int, int, float | None]]:
    """``latest_scores`` as (account id, value, priority) driver rows, to read by column.

    An account's newest score is its last written (the highest id). Without ``accounts``,
    every scored account's, found by grouping all the institution's scores: a read that grows
    with the history (a million accounts scored daily add a million rows a day). With
    ``accounts``, only theirs, at the cost of a day: the scores written since the first of the
    newest day's are read in id order (the last row of an account is its newest: nothing older
    can be newer), and only the accounts they miss are looked up by grouping their own scores.
    """
    if accounts is None:
        return _newest_scores(session, institution_id)
    wanted = set(accounts)
    newest_day = (
        select(func.max(AccountScore.as_of))
        .where(AccountScore.institution_id == institution_id)
        .scalar_subquery()
    )
    first = session.scalar(
        select(func.min(AccountScore.id)).where(
            AccountScore.institution_id == institution_id, AccountScore.as_of == newest_day
        )
    )
    found: dict[int, tuple[int, int, float | None]] = {}
    if first is not None:
        for row in bulk.fetch_rows(
            session,
            select(*_SCORE_VALUE)
            .where(AccountScore.id >= first, AccountScore.institution_id == institution_id)
            .order_by(AccountScore.id),
        ):
            if row[0] in wanted:
                found[row[0]] = row
    missing = sorted(wanted - found.keys())
    rows = list(found.values())
    for start in range(0, len(missing), LOOKUP_CHUNK):
        chunk = missing[start : start + LOOKUP_CHUNK]
        rows += _newest_scores(session, institution_id, AccountScore.account_id.in_(chunk))
    return rows


# What ``latest_score_rows`` reads of a score: its account, value and priority.
_SCORE_VALUE = (
    AccountScore.account_id,
    func.coalesce(AccountScore.uplift_recovery, AccountScore.expected_recovery),
    AccountScore.priority,
)


def _newest_scores(
    session: Session, institution_id: int, *where: ColumnElement[bool]
) -> list[tuple[int, int, float | None]]:
    """``_SCORE_VALUE`` of each account's newest score (of the accounts ``where`` keeps), by
    grouping every score of theirs."""
    newest = (
        select(AccountScore.account_id, func.max(AccountScore.id).label("id"))
        .where(AccountScore.institution_id == institution_id, *where)
        .group_by(AccountScore.account_id)
        .subquery()
    )
    return bulk.fetch_rows(
        session, select(*_SCORE_VALUE).join(newest, newest.c.id == AccountScore.id)
    )


# Accounts looked up per statement (each a bound parameter).
LOOKUP_CHUNK = 5_000


def queues(session: Session, *, institution_id: int, active_only: bool = True) -> list[Queue]:
    """The institution's queues, by rank."""
    query = select(Queue).where(Queue.institution_id == institution_id)
    if active_only:
        query = query.where(Queue.active.is_(True))
    return list(session.execute(query.order_by(Queue.rank, Queue.id)).scalars().all())


def queue_by_code(session: Session, *, institution_id: int, code: str) -> Queue | None:
    return session.execute(
        select(Queue).where(Queue.institution_id == institution_id, Queue.code == code)
    ).scalar_one_or_none()


def get_case(
    session: Session, *, institution_id: int, case_id: int, lock: bool = False
) -> Case | None:
    query = select(Case).where(Case.institution_id == institution_id, Case.id == case_id)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def agents(session: Session, *, institution_id: int) -> list[tuple[User, AgentProfile | None]]:
    """The institution's active agents with their profiles (None: the defaults apply)."""
    rows = session.execute(
        select(User, AgentProfile)
        .outerjoin(AgentProfile, AgentProfile.user_id == User.id)
        .where(
            User.institution_id == institution_id,
            User.role == Role.agent,
            User.active.is_(True),
        )
        .order_by(User.id)
    )
    return [(user, profile) for user, profile in rows]


def absent_user_ids(session: Session, *, institution_id: int, on: date) -> set[int]:
    """Agents away on a day."""
    return set(
        session.execute(
            select(AgentAbsence.user_id).where(
                AgentAbsence.institution_id == institution_id,
                AgentAbsence.starts_on <= on,
                AgentAbsence.ends_on >= on,
            )
        ).scalars()
    )


def queue_members(session: Session, *, institution_id: int) -> dict[int, set[int]]:
    """Queue ids each agent works."""
    members: dict[int, set[int]] = {}
    for queue_id, user_id in session.execute(
        select(QueueMember.queue_id, QueueMember.user_id).where(
            QueueMember.institution_id == institution_id
        )
    ):
        members.setdefault(user_id, set()).add(queue_id)
    return members


def set_allocated(session: Session, *, case_ids: list[int], on: date) -> None:
    """Put cases on their owners' worklists for a day."""
    if case_ids:
        session.execute(
            update(_CASES)
            .where(_CASES.c.id == bindparam("case_id"))
            .values(allocated_on=bindparam("on")),
            [{"case_id": case_id, "on": on} for case_id in case_ids],
        )


def set_owners(session: Session, *, owners: dict[int, int | None], now: datetime) -> None:
    """Give cases (read through this institution's scoped queries) their owners in bulk."""
    if not owners:
        return
    table = _CASES
    session.execute(
        update(table)
        .where(table.c.id == bindparam("case_id"))
        .values(owner_id=bindparam("owner"), updated_at=bindparam("now")),
        [{"case_id": case_id, "owner": owner, "now": now} for case_id, owner in owners.items()],
    )


def add_history(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append case history rows in bulk."""
    if rows:
        session.execute(insert(_CASE_EVENTS), rows)


def live_counts_by_owner(
    session: Session, *, institution_id: int, on: date
) -> dict[int | None, tuple[int, int]]:
    """Per owner (None: nobody): live cases owned, and of them on that day's worklist."""
    on_list = func.sum(case((Case.allocated_on == on, 1), else_=0))
    rows = session.execute(
        select(Case.owner_id, func.count(), on_list)
        .where(Case.institution_id == institution_id, Case.state != CLOSED)
        .group_by(Case.owner_id)
    )
    return {owner: (int(total), int(today or 0)) for owner, total, today in rows}


def live_counts_by_queue(
    session: Session, *, institution_id: int
) -> dict[int | None, tuple[int, int]]:
    """Per queue (None: no queue matched): live cases, and of them without an owner."""
    unowned = func.sum(case((Case.owner_id.is_(None), 1), else_=0))
    rows = session.execute(
        select(Case.queue_id, func.count(), unowned)
        .where(Case.institution_id == institution_id, Case.state != CLOSED)
        .group_by(Case.queue_id)
    )
    return {queue: (int(total), int(free or 0)) for queue, total, free in rows}


def live_case_of_debtor(session: Session, *, institution_id: int, debtor_id: int) -> Case | None:
    """The debtor's live case, locked (there is at most one).

    The debtor row is locked first, so two transactions about accounts of one debtor (two
    promises at once) take turns instead of both opening a case.
    """
    session.execute(
        select(Debtor.id)
        .where(Debtor.institution_id == institution_id, Debtor.id == debtor_id)
        .with_for_update()
    )
    return session.execute(
        select(Case)
        .where(
            Case.institution_id == institution_id,
            Case.live_debtor_id == debtor_id,
        )
        .with_for_update()
    ).scalar_one_or_none()


def live_cases_of_accounts(
    session: Session, *, institution_id: int, account_ids: Sequence[int]
) -> dict[int, Case]:
    """The live case of each account's debtor (debtors without one are left out), locked.

    The debtor's case, not only a case the account is still in: an account that cured and
    left the case still moves it (its promise was kept). Read in chunks of ids.
    """
    found: dict[int, Case] = {}
    wanted = sorted(set(account_ids))
    for start in range(0, len(wanted), _CHUNK):
        rows = session.execute(
            select(Account.id, Case)
            .join(
                Case,
                (Case.live_debtor_id == Account.debtor_id)
                & (Case.institution_id == Account.institution_id),
            )
            .where(
                Account.institution_id == institution_id,
                Account.id.in_(wanted[start : start + _CHUNK]),
            )
            .order_by(Case.id)
            .with_for_update(of=Case)
        )
        found.update((row[0], row[1]) for row in rows)
    return found


def has_account(session: Session, *, case_id: int, account_id: int) -> bool:
    return (
        session.execute(
            select(CaseAccount.id).where(
                CaseAccount.case_id == case_id,
                CaseAccount.account_id == account_id,
                CaseAccount.removed_at.is_(None),
            )
        ).first()
        is not None
    )


def cases_page(
    session: Session,
    *,
    statement: Any,
    page: PageRequest,
) -> tuple[list[tuple[Case, str | None]], int]:
    """One page of a (scoped) select of cases with their queue's code, newest first."""
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.execute(
        statement.add_columns(Queue.code)
        .outerjoin(Queue, Queue.id == Case.queue_id)
        .order_by(Case.priority.desc(), Case.id.desc())
        .offset(page.offset)
        .limit(page.size)
    )
    return [(case, code) for case, code in rows], total


def case_accounts(session: Session, *, case_id: int) -> list[Account]:
    """The accounts in a case now."""
    return list(
        session.execute(
            select(Account)
            .join(CaseAccount, CaseAccount.account_id == Account.id)
            .where(CaseAccount.case_id == case_id, CaseAccount.removed_at.is_(None))
            .order_by(Account.id)
        )
        .scalars()
        .all()
    )


def case_history(session: Session, *, case_id: int, limit: int = 200) -> list[CaseEvent]:
    """A case's history, oldest first (the last ``limit`` changes)."""
    rows = (
        session.execute(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )
    return list(reversed(rows))


def add_memberships(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add accounts to cases in bulk."""
    if rows:
        session.execute(insert(_CASE_ACCOUNTS), rows)


def set_queues_from(
    session: Session, *, institution_id: int, moves: Select[int, int | None], now: datetime
) -> int:
    """Put cases in queues from ``moves`` (``case_id``, ``queue_id`` rows) where they differ;
    return how many moved."""
    chosen = moves.subquery()
    queue = select(chosen.c.queue_id).where(chosen.c.case_id == Case.id).scalar_subquery()
    differs = exists(
        select(chosen.c.case_id).where(
            chosen.c.case_id == Case.id,
            chosen.c.queue_id.is_not(None),
            or_(Case.queue_id.is_(None), Case.queue_id != chosen.c.queue_id),
        )
    )
    result = session.execute(
        update(Case)
        .where(Case.institution_id == institution_id, differs)
        .values(queue_id=queue, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
