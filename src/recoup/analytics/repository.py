"""Queries of the KPIs: facts per group of accounts, counted in SQL and scoped by the caller.

Every query is narrowed to the *population*: the caller's accounts (``identity.scoping``) in
the institution's currency, grouped by the cuts the request asks for. Each query groups in
SQL and returns one row per group; nothing loads accounts, payments or promises into Python.
An account's state on a date is its last live delinquency event before the date's end, found
through the (account, effective) index (``portfolio.repository.state_id_at``). A group key is
the tuple of the cut values in the order asked (``None`` where unknown).
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Date,
    Integer,
    ScalarSelect,
    Select,
    SQLColumnExpression,
    String,
    Subquery,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    type_coerce,
    union,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased, defer
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from recoup.analytics.rules import (
    DECIDED,
    KEPT,
    AccountEvent,
    AccountPayment,
    BucketCount,
    Cell,
    Cohort,
    Collected,
    ContactCounts,
    PendingPromises,
    PlanOutcomes,
    PromiseOutcomes,
    WorkedDay,
)
from recoup.analytics.rules import Average as Mean
from recoup.contact.rules import (
    RIGHT_PARTY_CODES,
    AttemptStatus,
    Direction,
    OutcomeCode,
    codes_where,
)
from recoup.enums import AccountStatus
from recoup.identity.principal import Principal
from recoup.identity.scoping import scoped
from recoup.models.account import Account, DelinquencyEvent, Payment
from recoup.models.analytics import DailyFact, KpiSnapshot
from recoup.models.base import UTCDateTime
from recoup.models.cases import Case, CaseAccount
from recoup.models.compliance import ComplianceViolation, ContactDecision
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import Debtor
from recoup.models.identity import User
from recoup.models.plans import PaymentPlan
from recoup.models.scoring import AccountScore
from recoup.models.workbench import Promise, PromiseStatus
from recoup.portfolio.repository import EXIT_STATUSES, roll_rate_matrix, state_id_at

GroupKey = tuple[str | None, ...]
# Some accounts' ids: a select of them, or a list (``listed``).
AccountList = Select[Any] | BindParameter[Any]
Columns = TypeVarTuple("Columns")
_EXITS = [str(status) for status in EXIT_STATUSES]
_DEBTOR_CUTS = frozenset({"province", "city"})
# A plan's ends, as plan follow-up records them (``plans.service``).
PLAN_COMPLETED = "completed"
PLAN_BROKEN = "broken"
# Outcomes where a person answered or was met: a contact, in the contact rate.
REACHED_CODES = codes_where(reached=True)


class WholeDaysBetween(FunctionElement[int]):
    """Whole days (of 24 hours) from the first moment to the second, in SQL."""

    type = Integer()
    inherit_cache = True
    name = "whole_days_between"


@compiles(WholeDaysBetween, "sqlite")
def _whole_days_sqlite(element: WholeDaysBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    # Whole seconds, then integer division: julianday's floating point can land just below.
    return (
        f"((CAST(strftime('%s', {end}) AS INTEGER) - CAST(strftime('%s', {start}) AS INTEGER))"
        " / 86400)"
    )


class LocalDay(FunctionElement[date]):
    """The calendar day of a moment at a fixed offset from UTC (in minutes), in SQL."""

    type = Date()
    inherit_cache = True
    name = "local_day"


@compiles(LocalDay, "sqlite")
def _local_day_sqlite(element: LocalDay, compiler: SQLCompiler, **kw: Any) -> str:
    moment, minutes = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({moment}, ({minutes}) || ' minutes')"


@compiles(LocalDay, "postgresql")
def _local_day_postgresql(element: LocalDay, compiler: SQLCompiler, **kw: Any) -> str:
    moment, minutes = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(({moment}) AT TIME ZONE 'UTC' + make_interval(mins => {minutes}) AS DATE)"


class MicrosecondsSinceEpoch(FunctionElement[int]):
    """A moment as whole microseconds since 1970-01-01 UTC, in SQL (exact, unlike a float)."""

    type = BigInteger()
    inherit_cache = True
    name = "microseconds_since_epoch"


@compiles(MicrosecondsSinceEpoch, "sqlite")
def _microseconds_sqlite(element: MicrosecondsSinceEpoch, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = (compiler.process(clause, **kw) for clause in element.clauses)
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds, then the six digits after.
    return (
        f"(CAST(strftime('%s', {moment}) AS INTEGER) * 1000000"
        f" + CAST(substr({moment}, 21, 6) AS INTEGER))"
    )


@compiles(MicrosecondsSinceEpoch, "postgresql")
def _microseconds_postgresql(
    element: MicrosecondsSinceEpoch, compiler: SQLCompiler, **kw: Any
) -> str:
    (moment,) = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(extract(epoch FROM {moment}) * 1000000 AS BIGINT)"


@compiles(WholeDaysBetween, "postgresql")
def _whole_days_postgresql(element: WholeDaysBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(floor(extract(epoch FROM ({end}) - ({start})) / 86400) AS INTEGER)"


def _latest_segment(as_of: date) -> ScalarSelect[str | None]:
    return (
        select(AccountScore.segment)
        .where(AccountScore.account_id == Account.id, AccountScore.as_of <= as_of)
        .order_by(AccountScore.as_of.desc(), AccountScore.scored_at.desc(), AccountScore.id.desc())
        .limit(1)
        .correlate(Account)
        .scalar_subquery()
    )


_STATIC_CUTS: dict[str, Callable[[date], SQLColumnExpression[Any]]] = {
    "product": lambda _as_of: Account.product,
    "province": lambda _as_of: Debtor.province,
    "city": lambda _as_of: Debtor.city,
    "segment": lambda as_of: _latest_segment(as_of),
}


@dataclass(frozen=True, slots=True)
class Population:
    """The accounts KPIs count: the caller's, in the institution's currency, and the cuts asked.

    Every query selects from ``Account`` (joined to what it counts) and passes through
    ``narrow``; ``group`` gives its group columns. Keeping the accounts a table rather than a
    subquery lets both databases reach events, payments and promises through their indexes.
    """

    institution_id: int
    principal: Principal
    currency: str
    as_of: date
    cuts: tuple[str, ...]
    # Only these accounts (a select of their ids or a list of them, ``listed``), say those
    # touched since a stored snapshot.
    accounts: AccountList | None = None
    # No account at all: only contact attempts about a debtor as a whole count.
    without_accounts: bool = False
    # All accounts but these (a list, ``listed``).
    except_accounts: AccountList | None = None
    # Payments reversed at or after this moment still count (what a snapshot stored as of
    # then counted); ``None``: a reversed payment never counts.
    reversed_before: datetime | None = None

    def not_reversed(self) -> ColumnElement[bool]:
        """The condition a payment counts by: not reversed (by ``reversed_before``)."""
        if self.reversed_before is None:
            return Payment.reversed_at.is_(None)
        return or_(Payment.reversed_at.is_(None), Payment.reversed_at >= self.reversed_before)

    def narrow(self, statement: Select[*Columns]) -> Select[*Columns]:
        """Restrict a statement over ``Account`` to these accounts (with their debtor if cut by)."""
        statement = scoped(statement, Account, self.principal).where(
            Account.currency == self.currency
        )
        if self.accounts is not None:
            statement = statement.where(Account.id.in_(self.accounts))
        if self.without_accounts:
            statement = statement.where(false())
        if self.except_accounts is not None:
            statement = statement.where(Account.id.not_in(self.except_accounts))
        if _DEBTOR_CUTS.intersection(self.cuts):
            statement = statement.join(Debtor, Debtor.id == Account.debtor_id)
        return statement

    def static_columns(self) -> list[ColumnElement[Any]]:
        """Return the columns of the account's own cuts (not bucket or channel), by cut."""
        return [
            _STATIC_CUTS[cut](self.as_of).label(f"cut_{cut}")
            for cut in self.cuts
            if cut in _STATIC_CUTS
        ]

    def group(
        self,
        bucket: SQLColumnExpression[Any],
        channel: SQLColumnExpression[Any] | None = None,
    ) -> list[ColumnElement[Any]]:
        """Return the group columns in the order of the cuts (a fact without a channel: none)."""
        static = iter(self.static_columns())
        columns: list[ColumnElement[Any]] = []
        for cut in self.cuts:
            if cut == "bucket":
                columns.append(bucket.label("cut_bucket"))
            elif cut == "channel":
                if channel is not None:
                    columns.append(channel.label("cut_channel"))
            else:
                columns.append(next(static))
        return columns

    def key(self, values: Sequence[Any], *, bucket: Any = None, channel: bool = False) -> GroupKey:
        """Return the group key of a row's group values (from ``group``, or static ones and
        ``bucket``); a fact without a channel has none."""
        given = iter(values)
        key: list[str | None] = []
        for cut in self.cuts:
            if cut == "channel" and not channel:
                value = None
            elif cut == "bucket" and bucket is not None:
                value = bucket
            else:
                value = next(given)
            key.append(None if value is None else str(value))
        return tuple(key)


def population(
    *,
    principal: Principal,
    institution_id: int,
    currency: str,
    as_of: date,
    cuts: Sequence[str],
    accounts: AccountList | None = None,
    without_accounts: bool = False,
    except_accounts: AccountList | None = None,
    reversed_before: datetime | None = None,
) -> Population:
    """Return the caller's accounts in ``currency``, cut by ``cuts`` (the bucket: per KPI).

    ``accounts`` narrows them to some accounts; ``without_accounts`` to none (only contact
    attempts about a debtor as a whole then count); ``except_accounts`` to all but some;
    ``reversed_before``: payments reversed from then on still count (a snapshot's moment).
    """
    return Population(
        institution_id,
        principal,
        currency,
        as_of,
        tuple(cuts),
        accounts,
        without_accounts,
        except_accounts,
        reversed_before,
    )


def touched_accounts(
    *,
    institution_id: int,
    since: datetime,
    until: datetime,
    scored_after: date,
    scored_by: date,
    by_contacts: bool = True,
    by_payments: bool = True,
) -> Select[Any]:
    """Select the accounts whose facts may have changed between the moments.

    Those with a delinquency event, a payment (``by_payments``; reversed then: always) or
    (``by_contacts``) a contact attempt then, or
    scored on a day after ``scored_after`` up to ``scored_by`` into another segment than their
    last score's by ``scored_after`` (the segment is the only cut a score sets: a daily cycle
    scores every account each day, and most stay in their segment). Each part reads a
    (institution, time) index.
    """
    attempt = ContactAttempt
    parts: list[Select[*tuple[Any, ...]]] = [
        select(DelinquencyEvent.account_id).where(
            DelinquencyEvent.institution_id == institution_id,
            DelinquencyEvent.effective_at >= since,
            DelinquencyEvent.effective_at < until,
        ),
        *(
            [
                select(Payment.account_id).where(
                    Payment.institution_id == institution_id,
                    Payment.paid_at >= since,
                    Payment.paid_at < until,
                )
            ]
            if by_payments
            else []
        ),
        # A payment reversed in the period no longer counts for its account.
        select(Payment.account_id).where(
            Payment.institution_id == institution_id,
            Payment.reversed_at >= since,
            Payment.reversed_at < until,
        ),
        scored_accounts(
            institution_id=institution_id, scored_after=scored_after, scored_by=scored_by
        ),
    ]
    if not by_contacts:
        return select(union(*parts).subquery("touched").c[0])
    parts += [
        select(attempt.account_id).where(
            attempt.institution_id == institution_id,
            attempt.account_id.is_not(None),
            attempt.started_at >= since,
            attempt.started_at < until,
        ),
        select(attempt.account_id).where(
            attempt.institution_id == institution_id,
            attempt.account_id.is_not(None),
            attempt.started_at.is_(None),
            func.coalesce(attempt.planned_at, attempt.created_at) >= since,
            func.coalesce(attempt.planned_at, attempt.created_at) < until,
        ),
    ]
    touched = union(*parts).subquery("touched")
    return select(touched.c[0])


def paid_between(
    *, institution_id: int, since: datetime, until: datetime
) -> Select[int, int, bool, bool]:
    """Select the payments made between the moments: account, amount, whether after
    charge-off, whether not reversed (the (institution, paid) index)."""
    return select(
        Payment.account_id,
        Payment.amount,
        Payment.status_before == AccountStatus.charged_off,
        Payment.reversed_at.is_(None),
    ).where(
        Payment.institution_id == institution_id,
        Payment.paid_at >= since,
        Payment.paid_at < until,
    )


def account_states(
    session: Session, people: Population, *, at: datetime
) -> dict[int, tuple[tuple[str | None, ...], str | None, str | None]]:
    """Return ``people``'s accounts' cut values (``account_cuts``) and bucket and status at
    ``at`` (``None``: no state then), by account id."""
    state = _state()
    rows = session.connection().execute(
        people.narrow(
            select(Account.id, state.bucket, state.status, *people.static_columns())
            .select_from(Account)
            .outerjoin(state, state.id == state_id_at(at))
        )
    )
    return {
        account_id: (
            tuple(None if value is None else str(value) for value in values),
            bucket,
            status,
        )
        for account_id, bucket, status, *values in rows
    }


def reversed_accounts(*, institution_id: int, since: datetime) -> Select[Any]:
    """Select the accounts with a payment reversed at or after ``since`` (the (institution,
    reversed) index)."""
    return select(Payment.account_id).where(
        Payment.institution_id == institution_id, Payment.reversed_at >= since
    )


def scored_accounts(*, institution_id: int, scored_after: date, scored_by: date) -> Select[Any]:
    """Select the accounts scored on a day after ``scored_after`` up to ``scored_by`` into
    another segment than their last score's by ``scored_after``.

    The segment is the only cut a score sets: an account scored into the same segment counts
    the same on both days (a daily cycle scores every account each day; most stay put).
    """
    scored = aliased(AccountScore, name="scored")
    segment_before = (
        select(AccountScore.segment)
        .where(AccountScore.account_id == scored.account_id, AccountScore.as_of <= scored_after)
        .order_by(AccountScore.as_of.desc(), AccountScore.scored_at.desc(), AccountScore.id.desc())
        .limit(1)
        .correlate(scored)
        .scalar_subquery()
    )
    return select(scored.account_id).where(
        scored.institution_id == institution_id,
        scored.as_of > scored_after,
        scored.as_of <= scored_by,
        scored.segment.is_distinct_from(segment_before),
    )


def listed(account_ids: Sequence[int], *, dialect: str) -> AccountList:
    """Return account ids for ``population(accounts=…)`` and ``except_accounts``.

    Found once per request (``touched_accounts``) instead of again in every statement. On
    SQLite they are one JSON text bound once and read through ``json_each`` (SQLite seeks each
    account by its id, as with a written-out list, without parsing thousands of numbers in
    each statement); elsewhere written out rather than bound one parameter each (a busy day
    touches more accounts than a statement takes parameters).
    """
    ids = sorted(account_ids)
    if dialect == "sqlite":
        listing = func.json_each(
            bindparam("listed_accounts", json.dumps(ids), type_=String())
        ).table_valued("value")
        return select(listing.c.value)
    return bindparam("listed_accounts", ids, expanding=True, literal_execute=True)


def account_cuts(session: Session, people: Population) -> dict[int, tuple[str | None, ...]]:
    """Return the cut values of ``people``'s accounts but bucket and channel, by account id.

    In the order of ``Population.static_columns``; an account outside the population (another
    currency, not the caller's) is not listed.
    """
    rows = session.connection().execute(
        people.narrow(select(Account.id, *people.static_columns()).select_from(Account))
    )
    return {
        account_id: tuple(None if value is None else str(value) for value in values)
        for account_id, *values in rows
    }


@dataclass(frozen=True, slots=True)
class AccountHistories:
    """Some accounts' cut values (``account_cuts``), live events and payments, by account id."""

    cuts: dict[int, tuple[str | None, ...]]
    events: dict[int, list[AccountEvent]]
    payments: dict[int, list[AccountPayment]]


def account_histories(
    session: Session, people: Population, *, since: datetime, until: datetime, paid: bool
) -> AccountHistories:
    """Read what counting ``people``'s accounts (a list of them) again needs, by account.

    Their cut values and live events from their state at ``since`` (the last event before it)
    to ``until``, in order (moment, then id), and, with ``paid``, their payments from ``since``
    until ``until`` (reversed or not). Moments are as the database compares them
    (``compared_moment``).

    An account's events are read in one pass of the (account, effective) index, from the moment
    of its last event before ``since`` (found in that index alone) to ``until``: looking the
    state up apart (``state_id_at``, which reads each candidate's row to skip a superseded one)
    and then the events after it cost each account a second seek and its state's row a second
    read. Only an account whose events at that moment are all superseded has its state looked
    up apart.
    """
    if people.accounts is None:
        raise ValueError("account histories are read for a list of accounts")
    dialect = session.get_bind().dialect.name
    connection = session.connection()

    def event_columns(event: Any) -> tuple[Any, ...]:
        return (
            _compared(event.effective_at, dialect),
            event.id,
            event.bucket,
            event.status,
            event.balance,
            event.days_past_due,
        )

    event = DelinquencyEvent
    earlier = aliased(DelinquencyEvent, name="earlier")
    last_moment_before = (
        select(func.max(earlier.effective_at))
        .where(earlier.account_id == Account.id, earlier.effective_at < since)
        .correlate(Account)
        .scalar_subquery()
    )
    width = len(event_columns(event))
    since_compared = compared_moment(session)(since)
    make_event = AccountEvent._make
    cuts: dict[int, tuple[str | None, ...]] = {}
    events: dict[int, list[AccountEvent]] = {}
    # Accounts whose events at their last moment before ``since`` are all superseded.
    unsettled: list[int] = []

    def keep(account_id: int, state: Any, before: bool, after: list[AccountEvent]) -> None:
        if state is not None:
            after.insert(0, make_event(state[:width]))
        elif before:
            unsettled.append(account_id)
        if after:
            events[account_id] = after

    # Rows as plain tuples (tens of thousands per request), in order of account, then event:
    # the event (none: the account has none then), whether it is superseded, the account's id
    # and its cut values.
    current: int | None = None
    state: Any = None
    before = False
    after: list[AccountEvent] = []
    for row in connection.execute(
        people.narrow(
            select(*event_columns(event), event.superseded, Account.id, *people.static_columns())
            .select_from(Account)
            .outerjoin(
                event,
                and_(
                    event.account_id == Account.id,
                    event.effective_at >= func.coalesce(last_moment_before, since),
                    event.effective_at < until,
                ),
            )
            .order_by(Account.id, event.effective_at, event.id)
        )
    ).all():
        account_id = row[width + 1]
        if account_id != current:
            if current is not None:
                keep(current, state, before, after)
            current, state, before, after = account_id, None, False, []
            cuts[account_id] = row[width + 2 :]  # strings (``Population.key`` reads them)
        if row[1] is None:
            continue
        if row[0] < since_compared:
            # At the last moment before ``since``: the last live event then is the state.
            before = True
            if not row[width]:
                state = row
        elif not row[width]:
            after.append(make_event(row[:width]))
    if current is not None:
        keep(current, state, before, after)
    if unsettled:
        looked_up = _state()
        for row in connection.execute(
            select(*event_columns(looked_up), Account.id)
            .select_from(Account)
            .join(looked_up, looked_up.id == state_id_at(since))
            .where(Account.id.in_(listed(unsettled, dialect=dialect)))
        ).all():
            events.setdefault(row[width], []).insert(0, make_event(row[:width]))
    payments: dict[int, list[AccountPayment]] = {}
    if paid:
        make_payment = AccountPayment._make
        for row in connection.execute(
            select(
                _compared(Payment.paid_at, dialect),
                Payment.amount,
                Payment.status_before == AccountStatus.charged_off,
                _compared(Payment.reversed_at, dialect),
                Payment.account_id,
            ).where(
                Payment.account_id.in_(people.accounts),
                Payment.paid_at >= since,
                Payment.paid_at < until,
            )
        ).all():
            payments.setdefault(row[4], []).append(make_payment(row[:4]))
    return AccountHistories(cuts, events, payments)


def _compared(column: Any, dialect: str) -> Any:
    """A moment column read as the database compares it (SQLite: its stored text)."""
    return type_coerce(column, String()) if dialect == "sqlite" else column


def compared_moment(session: Session) -> Callable[[datetime], Any]:
    """Return a function giving a moment as the database compares it (``rules.Moment``).

    SQLite compares the stored text, so a moment becomes the text a statement binds; elsewhere
    it stays a ``datetime``.
    """
    dialect = session.get_bind().dialect
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    if dialect.name != "sqlite" or process is None:
        return lambda moment: moment.astimezone(UTC)
    return process


def whole_days_between(session: Session) -> Callable[[Any, Any], int]:
    """Return ``WholeDaysBetween`` in Python, over moments as the database compares them."""
    if session.get_bind().dialect.name == "sqlite":
        return _whole_days_of_text
    return _whole_days_of_datetimes


def _whole_days_of_text(start: str, end: str) -> int:
    # As SQLite's: each moment's whole seconds (its fraction dropped), then integer division.
    seconds = [
        calendar.timegm(datetime.fromisoformat(moment).timetuple()) for moment in (start, end)
    ]
    elapsed = seconds[1] - seconds[0]
    return elapsed // 86400 if elapsed >= 0 else -(-elapsed // 86400)


def _whole_days_of_datetimes(start: datetime, end: datetime) -> int:
    return (end - start) // timedelta(days=1)


def _state() -> Any:
    return aliased(DelinquencyEvent, name="state")


def _paid(
    start: datetime | SQLColumnExpression[datetime],
    end: datetime,
    counts: ColumnElement[bool] | None = None,
) -> ScalarSelect[int]:
    """Select what the outer ``Account`` paid from ``start`` until ``end`` (0 if nothing).

    ``counts``: which payments count (default: those not reversed).
    """
    return (
        select(func.coalesce(func.sum(Payment.amount), 0))
        .where(
            Payment.account_id == Account.id,
            Payment.paid_at >= start,
            Payment.paid_at < end,
            Payment.reversed_at.is_(None) if counts is None else counts,
        )
        .scalar_subquery()
    )


def buckets(
    session: Session, people: Population, *, cutoff: datetime
) -> dict[GroupKey, list[BucketCount]]:
    """Count accounts and their balance by bucket at ``cutoff`` (accounts that left: not)."""
    state = _state()
    group = people.group(state.bucket)
    rows = session.execute(
        people.narrow(
            select(*group, state.bucket, func.count(), func.sum(state.balance))
            .select_from(Account)
            .join(state, state.id == state_id_at(cutoff))
            .where(state.status.not_in(_EXITS))
            .group_by(*group, state.bucket)
        )
    )
    found: dict[GroupKey, list[BucketCount]] = {}
    for *values, bucket, accounts, balance in rows:
        found.setdefault(people.key(values), []).append(
            BucketCount(str(bucket), int(accounts), int(balance or 0))
        )
    return found


def transitions(
    session: Session, people: Population, *, start: date, end: date
) -> dict[GroupKey, list[Cell]]:
    """Return the roll-rate cells from the end of ``start`` to the end of ``end`` per group."""
    found: dict[GroupKey, list[Cell]] = {}
    for cell in roll_rate_matrix(
        session,
        institution_id=people.institution_id,
        start=start,
        end=end,
        narrow=people.narrow,
        groups=people.static_columns(),
    ):
        key = people.key(cell.group, bucket=cell.from_bucket)
        found.setdefault(key, []).append(
            Cell(cell.from_bucket, cell.to_bucket, cell.accounts, cell.balance)
        )
    return found


def delinquent_at_start(
    session: Session,
    people: Population,
    *,
    start: datetime,
    end: datetime,
) -> dict[GroupKey, Cohort]:
    """Count accounts delinquent at ``start``, their balance, and what they paid until ``end``."""
    state = _state()
    group = people.group(state.bucket)
    rows = session.execute(
        people.narrow(
            select(
                *group,
                func.count(),
                func.sum(state.balance),
                func.sum(_paid(start, end, people.not_reversed())),
            )
            .select_from(Account)
            .join(state, state.id == state_id_at(start))
            .where(state.bucket != "M0", state.status.not_in(_EXITS))
            .group_by(*group)
        )
    )
    return {
        people.key(values): Cohort(int(accounts), int(balance or 0), int(collected or 0))
        for *values, accounts, balance, collected in rows
    }


def placed(
    session: Session, people: Population, *, start: datetime, end: datetime
) -> dict[GroupKey, Cohort]:
    """Count accounts placed (turned delinquent) between the moments, and what they paid since.

    An account is placed by its first live delinquent state in the period if it was current
    at the start or not known yet; its balance is the one that state recorded.
    """
    placement = aliased(DelinquencyEvent, name="placement")
    before = _state()
    first_delinquent = (
        select(DelinquencyEvent.id)
        .where(
            DelinquencyEvent.account_id == Account.id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.effective_at >= start,
            DelinquencyEvent.effective_at < end,
            DelinquencyEvent.bucket != "M0",
            DelinquencyEvent.status.not_in(_EXITS),
        )
        .order_by(DelinquencyEvent.effective_at, DelinquencyEvent.id)
        .limit(1)
        .correlate(Account)
        .scalar_subquery()
    )
    group = people.group(placement.bucket)
    rows = session.execute(
        people.narrow(
            select(
                *group,
                func.count(),
                func.sum(placement.balance),
                func.sum(_paid(placement.effective_at, end, people.not_reversed())),
            )
            .select_from(Account)
            .join(placement, placement.id == first_delinquent)
            .outerjoin(before, before.id == state_id_at(start))
            .where(
                or_(
                    before.id.is_(None),
                    and_(before.bucket == "M0", before.status.not_in(_EXITS)),
                )
            )
            .group_by(*group)
        )
    )
    return {
        people.key(values): Cohort(int(accounts), int(balance or 0), int(collected or 0))
        for *values, accounts, balance, collected in rows
    }


def collected(
    session: Session,
    people: Population,
    *,
    start: datetime,
    end: datetime,
) -> dict[GroupKey, Collected]:
    """Sum the payments made between the moments; the bucket cut is the bucket at ``start``."""
    state = _state()
    group = people.group(state.bucket)
    after_charge_off = case(
        (Payment.status_before == AccountStatus.charged_off, Payment.amount), else_=0
    )
    rows = session.execute(
        people.narrow(
            select(*group, func.sum(Payment.amount), func.count(), func.sum(after_charge_off))
            .select_from(Account)
            .join(Payment, Payment.account_id == Account.id)
            .outerjoin(state, state.id == state_id_at(start))
            .where(Payment.paid_at >= start, Payment.paid_at < end, people.not_reversed())
            .group_by(*group)
        )
    )
    return {
        people.key(values): Collected(int(amount or 0), int(payments), int(charged_off or 0))
        for *values, amount, payments, charged_off in rows
    }


def cures(
    session: Session, people: Population, *, start: datetime, end: datetime
) -> dict[GroupKey, Mean]:
    """Count cures between the moments and the days each account had been delinquent.

    A cure is a live state in M0 (not an exit) right after a delinquent one; the days are the
    days past due of that delinquent state plus the whole days from it to the cure
    (``rules.days_to_cure``). The bucket cut is the bucket the account cured from.
    """
    cure = aliased(DelinquencyEvent, name="cure")
    prior = aliased(DelinquencyEvent, name="prior")
    prior_id = (
        select(DelinquencyEvent.id)
        .where(
            DelinquencyEvent.account_id == cure.account_id,
            DelinquencyEvent.superseded.is_(False),
            or_(
                DelinquencyEvent.effective_at < cure.effective_at,
                and_(
                    DelinquencyEvent.effective_at == cure.effective_at,
                    DelinquencyEvent.id < cure.id,
                ),
            ),
        )
        .order_by(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc())
        .limit(1)
        .correlate(cure)
        .scalar_subquery()
    )
    group = people.group(prior.bucket)
    days = prior.days_past_due + WholeDaysBetween(prior.effective_at, cure.effective_at)
    rows = session.execute(
        people.narrow(
            select(*group, func.count(), func.sum(days))
            .select_from(cure)
            .join(Account, Account.id == cure.account_id)
            .join(prior, prior.id == prior_id)
            .where(
                cure.institution_id == people.institution_id,
                cure.superseded.is_(False),
                cure.effective_at >= start,
                cure.effective_at < end,
                cure.bucket == "M0",
                cure.status.not_in(_EXITS),
                prior.bucket != "M0",
                prior.status.not_in(_EXITS),
            )
            .group_by(*group)
        )
    )
    return {people.key(values): Mean(int(total or 0), int(count)) for *values, count, total in rows}


def _bucket_when_promised() -> ScalarSelect[str | None]:
    # By account only: the account is the institution's, and an extra institution condition
    # made PostgreSQL intersect the account's events with all of the institution's.
    return (
        select(DelinquencyEvent.bucket)
        .where(
            DelinquencyEvent.account_id == Promise.account_id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.effective_at <= Promise.created_at,
        )
        .order_by(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc())
        .limit(1)
        .correlate(Promise)
        .scalar_subquery()
    )


@dataclass(frozen=True, slots=True)
class AsOf:
    """The date KPIs are read as of: its end, and the due dates whose grace had passed by then."""

    day: date
    cutoff: datetime
    # A promise due before this day had its whole payment window before ``day``.
    window_closed_before: date


def _promises(people: Population, as_of: AsOf) -> Subquery:
    """Select promises of the population with their bucket when made and status as of a date.

    A kept, partially kept or broken promise was so on the date if it was reconciled before
    its end, or if its payment window had closed by then (reconciled later, say in a catch-up
    run, it reads the same); a cancelled one if cancelled before its end; else it was pending.
    """
    reconciled_by_then = and_(Promise.resolved_at.is_not(None), Promise.resolved_at < as_of.cutoff)
    status_then = case(
        (
            and_(
                Promise.status.in_(DECIDED),
                or_(reconciled_by_then, Promise.due_date < as_of.window_closed_before),
            ),
            Promise.status,
        ),
        (and_(Promise.status == PromiseStatus.cancelled, reconciled_by_then), Promise.status),
        else_=literal(str(PromiseStatus.pending)),
    )
    left = Promise.amount - Promise.paid_amount
    # What is still to come: the promise's amount, less what is paid toward it if still open
    # now (a promise decided after the date had all of its amount still to come then).
    amount_left = case(
        (Promise.status != PromiseStatus.pending, Promise.amount),
        (left > 0, left),
        else_=0,
    )
    return people.narrow(
        select(
            Promise.id,
            Promise.due_date,
            Promise.promised_on,
            Promise.status,
            status_then.label("status_then"),
            amount_left.label("amount_left"),
            _bucket_when_promised().label("bucket"),
            Promise.channel.label("cut_channel"),
            Promise.created_by_id.label("agent_id"),
            *people.static_columns(),
        )
        .select_from(Promise)
        .join(Account, Account.id == Promise.account_id)
        .where(Promise.institution_id == people.institution_id)
    ).subquery("promise")


def _promise_group(promise: Subquery, cuts: Sequence[str]) -> list[ColumnElement[Any]]:
    """Group columns of ``_promises`` rows: the bucket when promised, the promise's channel."""
    return [promise.c.bucket if cut == "bucket" else promise.c[f"cut_{cut}"] for cut in cuts]


def promises_due(
    session: Session,
    people: Population,
    *,
    first_due: date,
    last_due: date,
    as_of: AsOf,
) -> dict[GroupKey, PromiseOutcomes]:
    """Count promises due between the days (made by ``as_of``) by their status then.

    Cancelled promises are left out; the bucket cut is the bucket when the promise was made,
    the channel cut the channel it was made on.
    """
    promise = _promises(people, as_of)
    group = _promise_group(promise, people.cuts)
    rows = session.execute(
        select(*group, promise.c.status_then, func.count())
        .where(
            promise.c.due_date >= first_due,
            promise.c.due_date <= last_due,
            promise.c.promised_on <= as_of.day,
            promise.c.status_then != PromiseStatus.cancelled,
        )
        .group_by(*group, promise.c.status_then)
    )
    found: dict[GroupKey, PromiseOutcomes] = {}
    for *values, status, count in rows:
        key = people.key(values, channel=True)
        found[key] = found.get(key, PromiseOutcomes()).adding(str(status), int(count))
    return found


def kept_history(
    session: Session,
    people: Population,
    *,
    first_due: date,
    last_due: date,
    as_of: AsOf,
) -> dict[str | None, PromiseOutcomes]:
    """Count promises due between the days and decided as of a date, by bucket when made."""
    promise = _promises(people, as_of)
    rows = session.execute(
        select(promise.c.bucket, promise.c.status_then, func.count())
        .where(
            promise.c.due_date >= first_due,
            promise.c.due_date <= last_due,
            promise.c.promised_on <= as_of.day,
            promise.c.status_then.in_(DECIDED),
        )
        .group_by(promise.c.bucket, promise.c.status_then)
    )
    found: dict[str | None, PromiseOutcomes] = {}
    for bucket, status, count in rows:
        key = None if bucket is None else str(bucket)
        found[key] = found.get(key, PromiseOutcomes()).adding(str(status), int(count))
    return found


def pending_promises(
    session: Session,
    people: Population,
    *,
    as_of: AsOf,
) -> dict[GroupKey, list[PendingPromises]]:
    """Count promises made by ``as_of`` and still open then, and the amount they leave."""
    promise = _promises(people, as_of)
    group = _promise_group(promise, people.cuts)
    rows = session.execute(
        select(*group, promise.c.bucket, func.count(), func.sum(promise.c.amount_left))
        .where(
            promise.c.promised_on <= as_of.day,
            promise.c.status_then == PromiseStatus.pending,
        )
        .group_by(*group, promise.c.bucket)
    )
    found: dict[GroupKey, list[PendingPromises]] = {}
    for *values, bucket, count, amount in rows:
        found.setdefault(people.key(values, channel=True), []).append(
            PendingPromises(None if bucket is None else str(bucket), int(count), int(amount or 0))
        )
    return found


def plans_ended(
    session: Session, people: Population, *, start: datetime, end: datetime
) -> dict[GroupKey, PlanOutcomes]:
    """Count payment plans completed or broken between the moments (when plan follow-up said so).

    The bucket cut is the account's bucket when the plan was made.
    """
    bucket_then = (
        select(DelinquencyEvent.bucket)
        .where(
            DelinquencyEvent.account_id == PaymentPlan.account_id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.effective_at <= PaymentPlan.created_at,
        )
        .order_by(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc())
        .limit(1)
        .correlate(PaymentPlan)
        .scalar_subquery()
    )
    group = people.group(bucket_then)
    rows = session.execute(
        people.narrow(
            select(*group, PaymentPlan.status, func.count())
            .select_from(PaymentPlan)
            .join(Account, Account.id == PaymentPlan.account_id)
            .where(
                PaymentPlan.institution_id == people.institution_id,
                PaymentPlan.status.in_((PLAN_COMPLETED, PLAN_BROKEN)),
                PaymentPlan.resolved_at >= start,
                PaymentPlan.resolved_at < end,
            )
            .group_by(*group, PaymentPlan.status)
        )
    )
    found: dict[GroupKey, PlanOutcomes] = {}
    for *values, status, count in rows:
        key = people.key(values)
        ended = (
            PlanOutcomes(completed=int(count))
            if status == PLAN_COMPLETED
            else PlanOutcomes(broken=int(count))
        )
        found[key] = found.get(key, PlanOutcomes()) + ended
    return found


def happened_between(attempt: Any, institution_id: int, start: datetime, end: datetime) -> Any:
    """Attempts of the institution that happened between the moments (their start, else when
    planned or created), as two ranges the (institution, started_at) index answers."""
    return or_(
        and_(
            attempt.institution_id == institution_id,
            attempt.started_at >= start,
            attempt.started_at < end,
        ),
        and_(
            attempt.institution_id == institution_id,
            attempt.started_at.is_(None),
            func.coalesce(attempt.planned_at, attempt.created_at) >= start,
            func.coalesce(attempt.planned_at, attempt.created_at) < end,
        ),
    )


def begun_between(attempt: Any, institution_id: int, start: datetime, end: datetime) -> Any:
    """Attempts of the institution begun between the moments (their start, else when planned),
    as two ranges the (institution, started_at) index answers."""
    return or_(
        and_(
            attempt.institution_id == institution_id,
            attempt.started_at >= start,
            attempt.started_at < end,
        ),
        and_(
            attempt.institution_id == institution_id,
            attempt.started_at.is_(None),
            attempt.planned_at >= start,
            attempt.planned_at < end,
        ),
    )


def contacts(
    session: Session, people: Population, *, start: datetime, end: datetime
) -> dict[GroupKey, ContactCounts]:
    """Count outbound attempts made between the moments, by outcome meaning and channel.

    An attempt counts when it happened (its start, else when it was planned). Attempts about
    the debtor as a whole (no account) count with the debtor's cuts; their account cuts are
    unknown. The bucket cut is the account's bucket when the attempt happened.
    """
    attempt = ContactAttempt
    happened = func.coalesce(attempt.started_at, attempt.planned_at, attempt.created_at)
    bucket_then = (
        select(DelinquencyEvent.bucket)
        .where(
            DelinquencyEvent.account_id == attempt.account_id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.effective_at <= happened,
        )
        .order_by(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc())
        .limit(1)
        .correlate(attempt)
        .scalar_subquery()
    )

    def counted(codes: Iterable[str]) -> ColumnElement[int]:
        return func.sum(case((attempt.outcome.in_(sorted(codes)), 1), else_=0))

    group = people.group(bucket_then, channel=attempt.channel)
    statement = (
        select(
            *group,
            attempt.channel,
            func.count(),
            counted(REACHED_CODES),
            counted(RIGHT_PARTY_CODES),
            counted([OutcomeCode.PROMISE_MADE]),
        )
        .select_from(attempt)
        .outerjoin(Account, Account.id == attempt.account_id)
        .where(
            attempt.status == AttemptStatus.MADE,
            attempt.direction == Direction.OUTBOUND,
            happened_between(attempt, people.institution_id, start, end),
            or_(attempt.account_id.is_(None), Account.currency == people.currency),
        )
        .group_by(*group, attempt.channel)
    )
    if _DEBTOR_CUTS.intersection(people.cuts):
        statement = statement.join(Debtor, Debtor.id == attempt.debtor_id)
    if people.accounts is not None:
        # Through the debtors' attempts (indexed by debtor), then the accounts themselves.
        statement = statement.where(
            attempt.debtor_id.in_(select(Account.debtor_id).where(Account.id.in_(people.accounts))),
            attempt.account_id.in_(people.accounts),
        )
    if people.without_accounts:
        statement = statement.where(attempt.account_id.is_(None))
    if people.except_accounts is not None:
        statement = statement.where(
            or_(attempt.account_id.is_(None), attempt.account_id.not_in(people.except_accounts))
        )
    found: dict[GroupKey, ContactCounts] = {}
    for *values, channel, attempts, reached, right_party, promises in session.execute(
        scoped(statement, ContactAttempt, people.principal)
    ):
        key = people.key(values, channel=True)
        found[key] = found.get(key, ContactCounts()) + ContactCounts(
            int(attempts),
            int(reached or 0),
            int(right_party or 0),
            int(promises or 0),
            {str(channel): int(attempts)},
        )
    return found


# --- Per agent and per region: the facts of fair comparisons. ----------------------------------

AgentBucketKey = tuple[int, str | None]


def _attempt_bucket(attempt: Any, happened: Any) -> ScalarSelect[str | None]:
    return (
        select(DelinquencyEvent.bucket)
        .where(
            DelinquencyEvent.account_id == attempt.account_id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.effective_at <= happened,
        )
        .order_by(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc())
        .limit(1)
        .correlate(attempt)
        .scalar_subquery()
    )


def agent_attempts(
    session: Session, people: Population, *, start: datetime, end: datetime
) -> dict[AgentBucketKey, tuple[int, int, int]]:
    """Count outbound attempts each agent made between the moments, by the bucket when made.

    Returns (attempts, right-party contacts, promises made) per (agent id, bucket); attempts
    without an agent (a dialer's, a gateway's) are left out.
    """
    attempt = ContactAttempt
    happened = func.coalesce(attempt.started_at, attempt.planned_at, attempt.created_at)
    bucket = _attempt_bucket(attempt, happened)

    def counted(codes: Iterable[str]) -> ColumnElement[int]:
        return func.sum(case((attempt.outcome.in_(sorted(codes)), 1), else_=0))

    statement = (
        select(
            attempt.agent_id,
            bucket,
            func.count(),
            counted(RIGHT_PARTY_CODES),
            counted([OutcomeCode.PROMISE_MADE]),
        )
        .select_from(attempt)
        .outerjoin(Account, Account.id == attempt.account_id)
        .where(
            attempt.agent_id.is_not(None),
            attempt.status == AttemptStatus.MADE,
            attempt.direction == Direction.OUTBOUND,
            happened_between(attempt, people.institution_id, start, end),
            or_(attempt.account_id.is_(None), Account.currency == people.currency),
        )
        .group_by(attempt.agent_id, bucket)
    )
    return {
        (int(agent or 0), None if bucket_value is None else str(bucket_value)): (
            int(attempts),
            int(rpc or 0),
            int(promises or 0),
        )
        for agent, bucket_value, attempts, rpc, promises in session.execute(
            scoped(statement, ContactAttempt, people.principal)
        )
    }


def agent_days(
    session: Session,
    people: Population,
    *,
    start: datetime,
    end: datetime,
    offset_minutes: int,
) -> dict[int, list[WorkedDay]]:
    """Return each agent's worked days: the first attempt's start and the last one's end.

    Days are local at ``offset_minutes`` from UTC (the institution's offset on the report date).
    """
    attempt = ContactAttempt
    begun = func.coalesce(attempt.started_at, attempt.planned_at)
    finished = func.coalesce(attempt.ended_at, attempt.started_at, attempt.planned_at)
    day = LocalDay(begun, literal(offset_minutes))
    statement = (
        select(attempt.agent_id, day, func.min(begun), func.max(finished))
        .where(
            attempt.agent_id.is_not(None),
            attempt.status == AttemptStatus.MADE,
            attempt.direction == Direction.OUTBOUND,
            begun_between(attempt, people.institution_id, start, end),
        )
        .group_by(attempt.agent_id, day)
    )
    found: dict[int, list[WorkedDay]] = {}
    for agent, local, first, last in session.execute(
        scoped(statement, ContactAttempt, people.principal)
    ):
        first_at, last_at = _moment(first), _moment(last)
        found.setdefault(int(agent or 0), []).append(
            WorkedDay(
                date.fromisoformat(str(local)),
                first_at.timestamp(),
                max(last_at, first_at).timestamp(),
            )
        )
    return found


def _moment(value: Any) -> datetime:
    """Return a UTC moment from what an aggregate gave (a datetime, or SQLite's text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def agent_promises(
    session: Session, people: Population, *, first_due: date, last_due: date, as_of: AsOf
) -> dict[AgentBucketKey, tuple[int, int]]:
    """Count the promises each agent took that fell due between the days and were decided.

    Returns (decided, kept) per (agent id, bucket when promised).
    """
    promise = _promises(people, as_of)
    rows = session.execute(
        select(
            promise.c.agent_id,
            promise.c.bucket,
            func.count(),
            func.sum(case((promise.c.status_then == KEPT, 1), else_=0)),
        )
        .where(
            promise.c.agent_id.is_not(None),
            promise.c.due_date >= first_due,
            promise.c.due_date <= last_due,
            promise.c.promised_on <= as_of.day,
            promise.c.status_then.in_(DECIDED),
        )
        .group_by(promise.c.agent_id, promise.c.bucket)
    )
    return {
        (int(agent), None if bucket is None else str(bucket)): (int(decided), int(kept or 0))
        for agent, bucket, decided, kept in rows
    }


def agent_portfolios(
    session: Session, people: Population, *, start: datetime, end: datetime
) -> dict[AgentBucketKey, tuple[int, int]]:
    """Sum the accounts each agent works now, delinquent at ``start``, by that bucket.

    An account's agent is the owner of the newest case it joined (a cured account left its
    case but still counts for whoever collected it). Returns (balance at the start, paid
    between the moments) per (agent id, bucket): the payments not reversed (by
    ``people.reversed_before``).
    """
    state = _state()
    owner = _newest_case_owner()
    rows = session.execute(
        people.narrow(
            select(
                owner,
                state.bucket,
                func.sum(state.balance),
                func.sum(_paid(start, end, people.not_reversed())),
            )
            .select_from(Account)
            .join(state, state.id == state_id_at(start))
            .where(
                owner.is_not(None),
                state.bucket != "M0",
                state.status.not_in(_EXITS),
            )
            .group_by(owner, state.bucket)
        )
    )
    return {
        (int(agent), str(bucket)): (int(balance or 0), int(paid or 0))
        for agent, bucket, balance, paid in rows
    }


def _newest_case_owner() -> Any:
    """The owner of the newest case the outer ``Account`` joined (left or not)."""
    return (
        select(Case.owner_id)
        .join(CaseAccount, CaseAccount.case_id == Case.id)
        .where(CaseAccount.account_id == Account.id)
        .order_by(CaseAccount.id.desc())
        .limit(1)
        .scalar_subquery()
        .label("owner_id")
    )


def agent_blocks(
    session: Session, people: Population, *, start: datetime, end: datetime
) -> dict[int, tuple[int, int]]:
    """Count gate decisions on contacts each agent planned between the moments, and blocks.

    A decision is the agent's when its actor is their user name. Returns (decisions, blocked).
    """
    statement = (
        select(
            User.id,
            func.count(),
            func.sum(case((ContactDecision.allowed.is_(False), 1), else_=0)),
        )
        .select_from(ContactDecision)
        .join(
            User,
            and_(
                User.username == ContactDecision.actor,
                User.institution_id == ContactDecision.institution_id,
            ),
        )
        .where(ContactDecision.planned_at >= start, ContactDecision.planned_at < end)
        .group_by(User.id)
    )
    return {
        int(user): (int(decisions), int(blocked or 0))
        for user, decisions, blocked in session.execute(
            scoped(statement, ContactDecision, people.principal)
        )
    }


def agent_violations(
    session: Session, people: Population, *, start: datetime, end: datetime
) -> dict[int, int]:
    """Count review findings (violations) in each agent's texts recorded between the moments."""
    statement = (
        select(User.id, func.count())
        .select_from(ComplianceViolation)
        .join(
            User,
            and_(
                User.username == ComplianceViolation.actor,
                User.institution_id == ComplianceViolation.institution_id,
            ),
        )
        .where(ComplianceViolation.created_at >= start, ComplianceViolation.created_at < end)
        .group_by(User.id)
    )
    return {
        int(user): int(count)
        for user, count in session.execute(scoped(statement, ComplianceViolation, people.principal))
    }


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An agent the report lists: id, user name, display name and team lead."""

    id: int
    username: str
    display_name: str
    team_lead_id: int | None


def agents(
    session: Session, *, institution_id: int, team_lead_id: int | None = None
) -> list[AgentRow]:
    """Return the institution's agents (active or not), maybe only one team lead's."""
    statement = select(User.id, User.username, User.display_name, User.team_lead_id).where(
        User.institution_id == institution_id, User.role == "agent"
    )
    if team_lead_id is not None:
        statement = statement.where(User.team_lead_id == team_lead_id)
    return [
        AgentRow(int(user), str(name), str(display or ""), lead)
        for user, name, display, lead in session.execute(statement.order_by(User.username))
    ]


def team_lead(session: Session, *, institution_id: int, user_id: int) -> User | None:
    """Return the institution's team lead (or manager) ``user_id``, else ``None``."""
    return session.execute(
        select(User).where(
            User.id == user_id,
            User.institution_id == institution_id,
            User.role.in_(("team_lead", "manager")),
        )
    ).scalar_one_or_none()


def kpi_snapshot_periods(session: Session, *, institution_id: int) -> list[tuple[date, date]]:
    """Return the stored snapshots' ``(period_start, as_of)``, without their facts."""
    return [
        (period_start, as_of)
        for period_start, as_of in session.execute(
            select(KpiSnapshot.period_start, KpiSnapshot.as_of)
            .where(KpiSnapshot.institution_id == institution_id)
            .order_by(KpiSnapshot.period_start)
        )
    ]


def kpi_snapshot(
    session: Session, *, institution_id: int, period_start: date
) -> KpiSnapshot | None:
    """Return the stored account facts of the period starting ``period_start`` (or ``None``).

    Its ``facts`` (a few megabytes of JSON at a million accounts) are read when first used:
    a request whose sums are cached by the snapshot's stamp does not read them.
    """
    return session.execute(
        select(KpiSnapshot)
        .options(defer(KpiSnapshot.facts))
        .where(
            KpiSnapshot.institution_id == institution_id,
            KpiSnapshot.period_start == period_start,
        )
    ).scalar_one_or_none()


# --- The agents page from the daily aggregates (``analytics_daily_facts``). --------------------
#
# ``attempts:agent``, ``right_party:agent`` and ``promise_made:agent`` hold each day's outbound
# attempts per agent and bucket when made, ``worked`` each agent's first start and last end of
# a day (``analytics.daily.repository``); ``agent_balance`` and ``agent_paid`` hold, per period
# start (``day``), the accounts delinquent then by the agent working them and that bucket: their
# balance then and what they paid up to the KPI snapshot's day (``write_agent_cohort``).

AGENT_TOTALS = {"attempts:agent": 0, "right_party:agent": 1, "promise_made:agent": 2}
WORKED = "worked"
AGENT_BALANCE = "agent_balance"
AGENT_PAID = "agent_paid"


def stored_agent_attempts(
    session: Session, *, institution_id: int, first: date, last: date
) -> dict[AgentBucketKey, tuple[int, int, int]]:
    """Return ``agent_attempts`` for the local days ``first``…``last`` from the aggregates."""
    rows = session.execute(
        select(DailyFact.metric, DailyFact.agent_id, DailyFact.bucket, func.sum(DailyFact.count))
        .where(
            DailyFact.institution_id == institution_id,
            DailyFact.metric.in_(list(AGENT_TOTALS)),
            DailyFact.day >= first,
            DailyFact.day <= last,
        )
        .group_by(DailyFact.metric, DailyFact.agent_id, DailyFact.bucket)
    )
    found: dict[AgentBucketKey, list[int]] = {}
    for metric, agent, bucket, count in rows:
        counts = found.setdefault(
            (int(agent or 0), None if bucket is None else str(bucket)), [0, 0, 0]
        )
        counts[AGENT_TOTALS[str(metric)]] += int(count or 0)
    return {key: (counts[0], counts[1], counts[2]) for key, counts in found.items()}


def stored_agent_days(
    session: Session, *, institution_id: int, first: date, last: date
) -> dict[int, list[WorkedDay]]:
    """Return ``agent_days`` for the local days ``first``…``last`` from the aggregates."""
    rows = session.execute(
        select(DailyFact.agent_id, DailyFact.day, DailyFact.count, DailyFact.amount)
        .where(
            DailyFact.institution_id == institution_id,
            DailyFact.metric == WORKED,
            DailyFact.day >= first,
            DailyFact.day <= last,
        )
        .order_by(DailyFact.agent_id, DailyFact.day)
    )
    found: dict[int, list[WorkedDay]] = {}
    for agent, day, first_at, last_at in rows:
        # Whole microseconds over 10**6: the same float as ``datetime.timestamp()``.
        found.setdefault(int(agent or 0), []).append(
            WorkedDay(day, int(first_at) / 10**6, max(int(last_at), int(first_at)) / 10**6)
        )
    return found


def write_agent_cohort(
    session: Session,
    *,
    institution_id: int,
    period_start: date,
    cohort: Mapping[AgentBucketKey, tuple[int, int]],
) -> int:
    """Store ``agent_portfolios`` (``cohort``) of the period starting ``period_start``.

    One marker row without an agent says the period is stored even when nobody owns an
    account delinquent at its start. Returns the rows written.
    """
    session.execute(
        delete(DailyFact).where(
            DailyFact.institution_id == institution_id,
            DailyFact.metric.in_((AGENT_BALANCE, AGENT_PAID)),
            DailyFact.day == period_start,
        )
    )
    rows: list[dict[str, Any]] = [
        {
            "institution_id": institution_id,
            "day": period_start,
            "metric": AGENT_BALANCE,
            "agent_id": None,
            "bucket": None,
            "count": 0,
            "amount": 0,
        }
    ]
    for (agent, bucket), (balance, paid) in cohort.items():
        for metric, amount in ((AGENT_BALANCE, balance), (AGENT_PAID, paid)):
            rows.append(
                {
                    "institution_id": institution_id,
                    "day": period_start,
                    "metric": metric,
                    "agent_id": agent,
                    "bucket": bucket,
                    "count": 0,
                    "amount": amount,
                }
            )
    session.execute(insert(DailyFact), rows)
    return len(rows)


def stored_agent_cohort(
    session: Session, *, institution_id: int, period_start: date
) -> dict[AgentBucketKey, tuple[int, int]] | None:
    """Return the stored ``agent_portfolios`` of a period (``None``: not stored)."""
    rows = list(
        session.execute(
            select(DailyFact.metric, DailyFact.agent_id, DailyFact.bucket, DailyFact.amount).where(
                DailyFact.institution_id == institution_id,
                DailyFact.metric.in_((AGENT_BALANCE, AGENT_PAID)),
                DailyFact.day == period_start,
            )
        )
    )
    if not rows:
        return None
    found: dict[AgentBucketKey, tuple[int, int]] = {}
    for metric, agent, bucket, amount in rows:
        if agent is None:
            continue
        key = (int(agent), str(bucket))
        balance, paid = found.get(key, (0, 0))
        if metric == AGENT_BALANCE:
            balance += int(amount)
        else:
            paid += int(amount)
        found[key] = (balance, paid)
    return found


def agent_cohort_paid(
    session: Session, people: Population, *, start: datetime, since: datetime, end: datetime
) -> dict[AgentBucketKey, int]:
    """Sum what accounts delinquent at ``start`` paid from ``since`` until ``end``, less what
    they paid from ``start`` until ``since`` in payments reversed from ``since`` on.

    A cohort stored as of ``since`` counted the payments not reversed by then; this turns it
    into the cohort as of ``end`` (the payments counted: ``people.not_reversed()``). By the
    agent working each account now and its bucket at ``start``, as ``agent_portfolios``
    counts them; reads the payments of those moments and those reversed since only (the
    (institution, paid) and (institution, reversed) indexes).
    """
    state = _state()
    owner = _newest_case_owner()

    def summed(*where: ColumnElement[bool]) -> Iterable[Any]:
        return session.execute(
            people.narrow(
                select(owner, state.bucket, func.sum(Payment.amount))
                .select_from(Payment)
                .join(Account, Account.id == Payment.account_id)
                .join(state, state.id == state_id_at(start))
                .where(
                    Payment.institution_id == people.institution_id,
                    *where,
                    owner.is_not(None),
                    state.bucket != "M0",
                    state.status.not_in(_EXITS),
                )
                .group_by(owner, state.bucket)
            )
        )

    found: dict[AgentBucketKey, int] = {}
    for agent, bucket, paid in summed(
        Payment.paid_at >= since, Payment.paid_at < end, people.not_reversed()
    ):
        key = (int(agent), str(bucket))
        found[key] = found.get(key, 0) + int(paid or 0)
    # Counted as of ``since`` (not reversed by then) and reversed since (by ``end`` when the
    # answer is stored): taken out.
    for agent, bucket, paid in summed(
        Payment.reversed_at >= since,
        Payment.paid_at >= start,
        Payment.paid_at < since,
        not_(people.not_reversed()),
    ):
        key = (int(agent), str(bucket))
        found[key] = found.get(key, 0) - int(paid or 0)
    return found
