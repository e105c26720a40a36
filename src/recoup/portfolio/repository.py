"""Queries of the portfolio domain; every one is scoped by institution."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    ScalarSelect,
    Select,
    SQLColumnExpression,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from recoup.enums import FINISHED_STATUSES, AccountStatus
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped, scoped
from recoup.kit.clock import aware, start_of_day
from recoup.kit.crypto import blind_index
from recoup.kit.errors import ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account, DelinquencyEvent, Payment
from recoup.models.cases import Case, CaseAccount
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.identity import User
from recoup.models.institution import Institution
from recoup.models.scoring import AccountScore
from recoup.portfolio.rules import BUCKETS, bucket_rank
from recoup.portfolio.schemas import AccountFilters, BucketState, RollRateCell

# Events a payment writes; a backdated payment supersedes and rewrites only these.
PAYMENT_CAUSE = "payment"
CORRECTION_CAUSE = "correction"
# Events the daily cycle writes when accounts age into a later bucket.
CYCLE_CAUSE = "cycle"
PAYMENT_CAUSES = (PAYMENT_CAUSE, CORRECTION_CAUSE)
# Statuses that take an account out of the roll-rate matrix: it left the portfolio.
EXIT_STATUSES = (AccountStatus.settled, AccountStatus.closed, AccountStatus.charged_off)

# Keep IN lists well under every backend's bound-parameter limit.
_IN_CHUNK = 5000

_T = TypeVar("_T")


def _chunks(values: Iterable[_T]) -> Iterator[list[_T]]:
    batch: list[_T] = []
    for value in values:
        batch.append(value)
        if len(batch) == _IN_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def accounts_by_external_id(
    session: Session, *, institution_id: int, external_ids: Iterable[str], lock: bool = False
) -> dict[str, Account]:
    """Return the institution's accounts with these external ids, keyed by external id.

    With ``lock`` the rows are locked for update (in external id order, so concurrent
    batches queue instead of deadlocking) and re-read even if the session holds them.
    """
    found: dict[str, Account] = {}
    for batch in _chunks(sorted(set(external_ids))):
        query = select(Account).where(
            Account.institution_id == institution_id, Account.external_id.in_(batch)
        )
        if lock:
            query = (
                query.order_by(Account.external_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        rows = session.scalars(query)
        found.update((account.external_id, account) for account in rows)
    return found


def payments_by_external_id(
    session: Session, *, institution_id: int, external_ids: Iterable[str]
) -> dict[str, Payment]:
    """Return the institution's already-recorded payments with these external ids."""
    found: dict[str, Payment] = {}
    for batch in _chunks(sorted(set(external_ids))):
        rows = session.scalars(
            select(Payment).where(
                Payment.institution_id == institution_id, Payment.external_id.in_(batch)
            )
        )
        found.update((payment.external_id, payment) for payment in rows)
    return found


def account_external_ids(
    session: Session, *, institution_id: int, account_ids: Iterable[int]
) -> dict[int, str]:
    """Return the external id of each of these accounts."""
    found: dict[int, str] = {}
    for batch in _chunks(sorted(set(account_ids))):
        rows = session.execute(
            select(Account.id, Account.external_id).where(
                Account.institution_id == institution_id, Account.id.in_(batch)
            )
        )
        found.update((account_id, external_id) for account_id, external_id in rows)
    return found


def latest_paid_at(
    session: Session, *, institution_id: int, account_ids: Iterable[int]
) -> dict[int, datetime]:
    """Return when each account's latest recorded payment was made (none: absent)."""
    found: dict[int, datetime] = {}
    for batch in _chunks(sorted(set(account_ids))):
        rows = session.execute(
            select(Payment.account_id, func.max(Payment.paid_at))
            .where(
                Payment.institution_id == institution_id,
                Payment.account_id.in_(batch),
                Payment.reversed_at.is_(None),
            )
            .group_by(Payment.account_id)
        )
        found.update((account_id, aware(paid_at)) for account_id, paid_at in rows)
    return found


def settled_at(
    session: Session, *, institution_id: int, account_ids: Iterable[int]
) -> dict[int, datetime]:
    """Return when the payment that settled each account was made (settled otherwise: absent)."""
    found: dict[int, datetime] = {}
    for batch in _chunks(sorted(set(account_ids))):
        rows = session.execute(
            select(DelinquencyEvent.account_id, func.min(Payment.paid_at))
            .join(Payment, Payment.id == DelinquencyEvent.payment_id)
            .where(
                DelinquencyEvent.institution_id == institution_id,
                DelinquencyEvent.account_id.in_(batch),
                DelinquencyEvent.superseded.is_(False),
                DelinquencyEvent.status == AccountStatus.settled,
            )
            .group_by(DelinquencyEvent.account_id)
        )
        found.update((account_id, aware(moment)) for account_id, moment in rows)
    return found


def snapshot_at(
    session: Session, *, institution_id: int, account_ids: Iterable[int]
) -> dict[int, datetime]:
    """Return when each account's state was last set from outside payments (import, cycle…)."""
    found: dict[int, datetime] = {}
    for batch in _chunks(sorted(set(account_ids))):
        rows = session.execute(
            select(DelinquencyEvent.account_id, func.max(DelinquencyEvent.effective_at))
            .where(
                DelinquencyEvent.institution_id == institution_id,
                DelinquencyEvent.account_id.in_(batch),
                DelinquencyEvent.superseded.is_(False),
                DelinquencyEvent.cause.not_in(PAYMENT_CAUSES),
            )
            .group_by(DelinquencyEvent.account_id)
        )
        found.update((account_id, aware(moment)) for account_id, moment in rows)
    return found


def payments_after(
    session: Session, *, institution_id: int, account_id: int, after: datetime
) -> list[Payment]:
    """Return an account's payments made strictly after ``after`` and not reversed, in the order
    they were made."""
    return list(
        session.scalars(
            select(Payment)
            .where(
                Payment.institution_id == institution_id,
                Payment.account_id == account_id,
                Payment.paid_at > after,
                Payment.reversed_at.is_(None),
            )
            .order_by(Payment.paid_at, Payment.id)
        )
    )


def account_payments(session: Session, *, institution_id: int, account_id: int) -> list[Payment]:
    """Return all of an account's payments in the order they were made."""
    return list(
        session.scalars(
            select(Payment)
            .where(Payment.institution_id == institution_id, Payment.account_id == account_id)
            .order_by(Payment.paid_at, Payment.id)
        )
    )


def delinquency_events(
    session: Session, *, institution_id: int, account_id: int, include_superseded: bool = True
) -> list[DelinquencyEvent]:
    """Return an account's delinquency history in effective order."""
    query = select(DelinquencyEvent).where(
        DelinquencyEvent.institution_id == institution_id,
        DelinquencyEvent.account_id == account_id,
    )
    if not include_superseded:
        query = query.where(DelinquencyEvent.superseded.is_(False))
    return list(session.scalars(query.order_by(DelinquencyEvent.effective_at, DelinquencyEvent.id)))


def supersede_payment_events(
    session: Session, *, institution_id: int, account_id: int, payment_ids: Iterable[int]
) -> int:
    """Mark the live events these payments wrote as superseded; return how many."""
    result = session.execute(
        update(DelinquencyEvent)
        .where(
            DelinquencyEvent.institution_id == institution_id,
            DelinquencyEvent.account_id == account_id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.payment_id.in_(sorted(set(payment_ids))),
        )
        .values(superseded=True)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def end_of_day(session: Session, *, institution_id: int, day: date) -> datetime:
    """Return the end of ``day`` where the institution is: what "as of a date" means."""
    timezone = session.scalar(select(Institution.timezone).where(Institution.id == institution_id))
    return start_of_day(day + timedelta(days=1), timezone or "UTC")


def states_as_of(
    institution_id: int, cutoff: datetime
) -> Select[int, str, str, int, int, datetime]:
    """Select each account's last live delinquency state before ``cutoff`` (one row each)."""
    ranked = (
        select(
            DelinquencyEvent.account_id,
            DelinquencyEvent.bucket,
            DelinquencyEvent.status,
            DelinquencyEvent.days_past_due,
            DelinquencyEvent.balance,
            DelinquencyEvent.effective_at,
            func.row_number()
            .over(
                partition_by=DelinquencyEvent.account_id,
                order_by=(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc()),
            )
            .label("position"),
        )
        .where(
            DelinquencyEvent.institution_id == institution_id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.effective_at < cutoff,
        )
        .subquery()
    )
    return select(
        ranked.c.account_id,
        ranked.c.bucket,
        ranked.c.status,
        ranked.c.days_past_due,
        ranked.c.balance,
        ranked.c.effective_at,
    ).where(ranked.c.position == 1)


def bucket_history(session: Session, *, institution_id: int, as_of: date) -> dict[int, BucketState]:
    """Return each account's bucket at the end of ``as_of`` (institution time), from live history.

    Accounts with no delinquency event by then are absent: nothing was known of them.
    """
    cutoff = end_of_day(session, institution_id=institution_id, day=as_of)
    rows = session.execute(states_as_of(institution_id, cutoff))
    return {
        account_id: BucketState(
            account_id=account_id,
            bucket=bucket,
            status=status,
            days_past_due=days_past_due,
            balance=balance,
            effective_at=aware(effective_at),
        )
        for account_id, bucket, status, days_past_due, balance, effective_at in rows
    }


def state_id_at(cutoff: datetime) -> ScalarSelect[int]:
    """Select the id of the last live delinquency event before ``cutoff`` of the outer ``Account``.

    A correlated look-up through the (account, effective) index: joining two per-account
    windows over the whole history instead made SQLite compare every account with every other.
    """
    return (
        select(DelinquencyEvent.id)
        .where(
            DelinquencyEvent.account_id == Account.id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.effective_at < cutoff,
        )
        .order_by(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc())
        .limit(1)
        .correlate(Account)
        .scalar_subquery()
    )


def roll_rate_matrix(
    session: Session,
    *,
    institution_id: int,
    start: date,
    end: date,
    narrow: Callable[[Select[Any]], Select[Any]] | None = None,
    groups: Sequence[ColumnElement[Any]] = (),
) -> list[RollRateCell]:
    """Count accounts (and their start balance) by bucket at ``start`` and at ``end``.

    Accounts already settled, closed or charged off at the start are left out; an
    account that left the portfolio by the end is counted under its status instead of
    a bucket, so paying off is not mistaken for a cure.

    ``narrow`` restricts the statement (over ``Account``) to some accounts; ``groups``,
    columns of what it selects from, split every cell, in order, into ``RollRateCell.group``.
    """
    if end < start:
        raise ValueError("the end of a roll-rate period cannot be before its start")
    exits = [str(status) for status in EXIT_STATUSES]
    start_state = aliased(DelinquencyEvent, name="start_state")
    end_state = aliased(DelinquencyEvent, name="end_state")
    start_cutoff = end_of_day(session, institution_id=institution_id, day=start)
    end_cutoff = end_of_day(session, institution_id=institution_id, day=end)
    to_bucket = case((end_state.status.in_(exits), end_state.status), else_=end_state.bucket).label(
        "to_bucket"
    )
    statement: Select[Any] = (
        select(
            start_state.bucket.label("from_bucket"),
            to_bucket,
            func.count().label("accounts"),
            func.coalesce(func.sum(start_state.balance), literal(0)).label("balance"),
            *groups,
        )
        .select_from(Account)
        .join(start_state, start_state.id == state_id_at(start_cutoff))
        .join(end_state, end_state.id == state_id_at(end_cutoff))
        .where(Account.institution_id == institution_id, start_state.status.not_in(exits))
        .group_by(start_state.bucket, to_bucket, *groups)
    )
    if narrow is not None:
        statement = narrow(statement)
    cells = [
        RollRateCell(
            from_bucket=from_bucket,
            to_bucket=to,
            accounts=int(accounts),
            balance=int(balance),
            group=tuple(None if value is None else str(value) for value in group),
        )
        for from_bucket, to, accounts, balance, *group in session.execute(statement)
    ]
    return sorted(
        cells,
        key=lambda cell: (
            tuple((value is None, value or "") for value in cell.group),
            _state_rank(cell.from_bucket),
            _state_rank(cell.to_bucket),
        ),
    )


def _state_rank(state: str) -> int:
    if state in BUCKETS:
        return bucket_rank(state)
    return len(BUCKETS) + [str(status) for status in EXIT_STATUSES].index(state)


# --- Reads for the portfolio API, every one through ``identity.scoping.scoped``. ---


def _page(
    session: Session,
    statement: Select[_T],
    page: PageRequest,
    *,
    after: SQLColumnExpression[int] | None = None,
) -> Page[_T]:
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    if after is not None and page.after is not None:
        statement = statement.where(after > page.after)
    items = list(session.scalars(statement.offset(page.offset).limit(page.size)))
    return Page(items=items, total=int(total or 0), page=page.page, size=page.size)


def _with_cursor(page: Page[_T], ids: list[int]) -> Page[_T]:
    """Name the page's last row as the next cursor when the page is full (rows ordered by id)."""
    if len(ids) < page.size:
        return page
    return replace(page, next_after=ids[-1])


def debtors_page(
    session: Session,
    *,
    principal: Principal,
    page: PageRequest,
    phone_index: str | None = None,
    national_id_index: str | None = None,
) -> Page[Debtor]:
    """Return one page of the debtors the caller may see, optionally matching a phone or id hash."""
    statement = scoped(select(Debtor), Debtor, principal)
    if national_id_index is not None:
        statement = statement.where(Debtor.national_id_index == national_id_index)
    if phone_index is not None:
        holders = scoped(select(ContactPoint.debtor_id), ContactPoint, principal).where(
            ContactPoint.value_index == phone_index
        )
        statement = statement.where(Debtor.id.in_(holders))
    found = _page(session, statement.order_by(Debtor.id), page, after=Debtor.id)
    return _with_cursor(found, [debtor.id for debtor in found.items])


def held_accounts_by_bucket(session: Session, *, principal: Principal) -> dict[str, int]:
    """How many accounts the caller may see are held now (not settled, closed or charged
    off), by their current bucket: the figures the manager's snapshot counts each day-end."""
    rows = session.execute(
        scoped(select(Account.bucket, func.count()), Account, principal)
        .where(Account.status.not_in([str(status) for status in EXIT_STATUSES]))
        .group_by(Account.bucket)
    )
    counted = {str(bucket): int(number) for bucket, number in rows}
    return {bucket: counted.get(bucket, 0) for bucket in BUCKETS}


def accounts_page(
    session: Session,
    *,
    principal: Principal,
    page: PageRequest,
    debtor_id: int | None = None,
    bucket: str | None = None,
) -> Page[Account]:
    """Return one page of the accounts the caller may see; a debtor filter must be one too."""
    statement = scoped(select(Account), Account, principal)
    if debtor_id is not None:
        get_scoped(session, Debtor, debtor_id, principal)
        statement = statement.where(Account.debtor_id == debtor_id)
    if bucket is not None:
        statement = statement.where(Account.bucket == bucket)
    return _page(session, statement.order_by(Account.id), page)


@dataclass(frozen=True, slots=True)
class AccountListRow:
    """An account with its latest score and its agent, as the accounts list shows it."""

    account: Account
    score: float | None
    grade: str | None
    segment: str | None
    priority: float | None
    agent_id: int | None
    agent_username: str | None
    agent_name: str | None


def account_owner_id() -> ScalarSelect[int | None]:
    """The agent working an account: the owner of the live case the account is in."""
    return (
        select(Case.owner_id)
        .join(CaseAccount, CaseAccount.case_id == Case.id)
        .where(
            CaseAccount.account_id == Account.id,
            CaseAccount.removed_at.is_(None),
            Case.closed_at.is_(None),
        )
        .limit(1)
        .scalar_subquery()
    )


def account_owners(session: Session, *, account_ids: Sequence[int]) -> dict[int, int | None]:
    """The agent of each account (``None`` when no live case holds it or nobody owns it)."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(Account.id, account_owner_id()).where(Account.id.in_(account_ids))
    )
    return {row[0]: row[1] for row in rows}


def _latest_score_id() -> ScalarSelect[int]:
    # Looked up per account through the account_id index: a window over every score of the
    # institution, joined back, made SQLite rescan all scores for each account.
    return (
        select(AccountScore.id)
        .where(AccountScore.account_id == Account.id)
        .order_by(AccountScore.as_of.desc(), AccountScore.scored_at.desc(), AccountScore.id.desc())
        .limit(1)
        .correlate(Account)
        .scalar_subquery()
    )


def _matches_search(search: str, principal: Principal) -> ColumnElement[bool]:
    # Names, id numbers and phones are encrypted: only an exact match through the keyed hash.
    debtors = scoped(select(Debtor.id), Debtor, principal).where(
        or_(
            Debtor.name_index == blind_index(search, context="debtors.name"),
            Debtor.national_id_index == blind_index(search, context="debtors.national_id"),
        )
    )
    phone_holders = scoped(select(ContactPoint.debtor_id), ContactPoint, principal).where(
        ContactPoint.value_index == blind_index(search, context="contact_points.value")
    )
    return or_(
        Account.external_id == search,
        Account.debtor_id.in_(debtors),
        Account.debtor_id.in_(phone_holders),
    )


def _account_conditions(filters: AccountFilters, principal: Principal) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.search:
        conditions.append(_matches_search(filters.search, principal))
    if filters.debtor_id is not None:
        conditions.append(Account.debtor_id == filters.debtor_id)
    if filters.bucket is not None:
        conditions.append(Account.bucket == filters.bucket)
    if filters.status is not None:
        conditions.append(Account.status == filters.status)
    if filters.agent_id == 0:
        conditions.append(account_owner_id().is_(None))
    elif filters.agent_id is not None:
        conditions.append(account_owner_id() == filters.agent_id)
    return conditions


def _score_conditions(filters: AccountFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.grade is not None:
        conditions.append(AccountScore.grade == filters.grade)
    if filters.segment is not None:
        conditions.append(AccountScore.segment == filters.segment)
    return conditions


def account_list(
    session: Session, *, principal: Principal, page: PageRequest, filters: AccountFilters
) -> Page[AccountListRow]:
    """Return one page of the accounts the caller may see, filtered, searched and sorted.

    A debtor filter must name a debtor the caller may see (else ``NotFound``).
    """
    if filters.debtor_id is not None:
        get_scoped(session, Debtor, filters.debtor_id, principal)
    conditions = _account_conditions(filters, principal)
    score_conditions = _score_conditions(filters)
    statement = scoped(
        select(
            Account,
            AccountScore.probability,
            AccountScore.grade,
            AccountScore.segment,
            AccountScore.priority,
            User.id,
            User.username,
            User.display_name,
        )
        .outerjoin(AccountScore, AccountScore.id == _latest_score_id())
        .outerjoin(User, User.id == account_owner_id()),
        Account,
        principal,
    ).where(*conditions, *score_conditions)
    sort_column: SQLColumnExpression[Any] = {
        "priority": AccountScore.priority,
        "score": AccountScore.probability,
        "balance": Account.principal + Account.interest + Account.fees + Account.penalty,
        "dpd": Account.days_past_due,
        "id": Account.id,
    }[filters.sort]
    ordered = sort_column.desc() if filters.order == "desc" else sort_column.asc()
    tie_break = Account.id.desc() if filters.order == "desc" else Account.id.asc()
    statement = statement.order_by(ordered.nulls_last(), tie_break)

    # Counted without the score lookup unless a score filter needs it.
    counting = scoped(select(func.count(Account.id)), Account, principal).where(*conditions)
    if score_conditions:
        counting = counting.join(AccountScore, AccountScore.id == _latest_score_id()).where(
            *score_conditions
        )
    total = session.scalar(counting)
    by_id = filters.sort == "id" and filters.order != "desc"
    if page.after is not None:
        if not by_id:
            raise ValidationFailed(
                "cursor pages follow the id order: leave out sort and direction, or use page",
                errors=[{"field": "query.cursor", "message": "only with the id order"}],
            )
        statement = statement.where(Account.id > page.after)
    rows = session.execute(statement.offset(page.offset).limit(page.size))
    items = [
        AccountListRow(
            account=account,
            score=score,
            grade=grade,
            segment=segment,
            priority=priority,
            agent_id=agent_id,
            agent_username=username,
            agent_name=display_name or None,
        )
        for account, score, grade, segment, priority, agent_id, username, display_name in rows
    ]
    found = Page(items=items, total=int(total or 0), page=page.page, size=page.size)
    return _with_cursor(found, [row.account.id for row in items]) if by_id else found


def agents(session: Session, *, principal: Principal) -> list[User]:
    """Return the agents of the caller's institution, to filter a list by (none for an agent)."""
    if principal.institution_id is None or principal.is_agent:
        return []
    statement = select(User).where(
        User.institution_id == principal.institution_id, User.role == "agent"
    )
    return list(session.scalars(statement.order_by(User.username)))


def debtor_accounts(session: Session, *, principal: Principal, debtor_id: int) -> list[Account]:
    """Return a debtor's accounts that the caller may see."""
    statement = scoped(select(Account), Account, principal).where(Account.debtor_id == debtor_id)
    return list(session.scalars(statement.order_by(Account.id)))


def debtor_contact_points(
    session: Session, *, principal: Principal, debtor_id: int
) -> list[ContactPoint]:
    """Return a debtor's contact points that the caller may see."""
    statement = scoped(select(ContactPoint), ContactPoint, principal).where(
        ContactPoint.debtor_id == debtor_id
    )
    return list(session.scalars(statement.order_by(ContactPoint.id)))


def _days_since(session: Session, as_of: date, column: Any) -> ColumnElement[int]:
    """Whole days from ``column`` (a date) to ``as_of``, in the database's own date arithmetic."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(as_of.isoformat()) - func.julianday(column), Integer)
    return cast(literal(as_of, Date) - column, Integer)


def _bucket_of(days: ColumnElement[int]) -> ColumnElement[str]:
    """The bucket of a days-past-due expression (as ``rules.bucket_for`` computes it)."""
    whens = [(days <= 0, "M0")] + [(days <= 30 * index, BUCKETS[index]) for index in range(1, 7)]
    return case(*whens, else_="M6+")


def age_accounts(
    session: Session,
    *,
    institution_id: int,
    as_of: date,
    effective_at: datetime,
    now: datetime,
    shard: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """Age every overdue account to ``as_of`` in two statements; return (aged, events).

    Days past due count from the oldest unpaid due date (``due_date``) and only grow here:
    a payment is what cures. Each bucket or status change adds a ``cycle`` history event.
    Running it again for the same day changes nothing. ``shard=(index, count)`` keeps to the
    accounts whose id modulo ``count`` is ``index``.
    """
    days = _days_since(session, as_of, Account.due_date)
    bucket = _bucket_of(days)
    status = case(
        (Account.status == AccountStatus.current, literal(str(AccountStatus.delinquent))),
        else_=Account.status,
    )
    ages = (
        Account.institution_id == institution_id,
        Account.overdue_amount > 0,
        Account.due_date.is_not(None),
        Account.due_date < as_of,
        Account.status.not_in(sorted(FINISHED_STATUSES)),
        days > Account.days_past_due,
        *(() if shard is None else (Account.id % shard[1] == shard[0],)),
    )
    history = select(
        Account.institution_id,
        Account.id,
        literal(effective_at, DelinquencyEvent.__table__.c.effective_at.type),
        literal(now, DelinquencyEvent.__table__.c.recorded_at.type),
        days,
        bucket,
        status,
        Account.principal + Account.interest + Account.fees + Account.penalty,
        literal(CYCLE_CAUSE),
        literal(False),
    ).where(*ages, or_(bucket != Account.bucket, status != Account.status))
    # Counted from RETURNING: drivers disagree on an INSERT … SELECT's row count.
    events = session.execute(
        insert(DelinquencyEvent)
        .from_select(
            [
                "institution_id",
                "account_id",
                "effective_at",
                "recorded_at",
                "days_past_due",
                "bucket",
                "status",
                "balance",
                "cause",
                "superseded",
            ],
            history,
        )
        .returning(DelinquencyEvent.id)
    ).all()
    aged = session.execute(
        update(Account)
        .where(*ages)
        .values(days_past_due=days, bucket=bucket, status=status, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return max(int(getattr(aged, "rowcount", 0) or 0), 0), len(events)
