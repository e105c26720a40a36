"""Writing and reading the daily aggregates (``analytics_daily_facts``), set-based in SQL.

Each refresh writes one metric's rows for a range of local days with one ``INSERT … SELECT``
per metric (grouped by day and dimensions in the database); nothing loads payments,
attempts or promises into Python. Reads sum rows by the dimensions a page asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from recoup.analytics.repository import (
    LocalDay,
    MicrosecondsSinceEpoch,
    begun_between,
    happened_between,
)
from recoup.analytics.rules import ContactCounts
from recoup.contact.rules import (
    RIGHT_PARTY_CODES,
    AttemptStatus,
    Direction,
    OutcomeCode,
    codes_where,
)
from recoup.enums import AccountStatus
from recoup.models.account import Account, DelinquencyEvent, Payment
from recoup.models.analytics import AggregateRefresh, DailyFact
from recoup.models.cases import Case, CaseEvent
from recoup.models.compliance import (
    Certification,
    ComplianceViolation,
    ContactDecision,
    MessageTemplate,
)
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import Debtor
from recoup.models.identity import User
from recoup.models.ingest import ImportRun
from recoup.models.institution import Institution
from recoup.models.workbench import Promise
from recoup.portfolio.repository import (
    EXIT_STATUSES,
    account_owner_id,
    roll_rate_matrix,
    state_id_at,
)

# Metrics counted over a range of days (rewritten whole for the days refreshed).
FLOW_METRICS = (
    "payments",
    "attempts",
    "reached",
    "right_party",
    "promise_made",
    "promises",
    "decisions",
    "violations",
)
# The busiest flows again per day, product and agent only (``<metric>:total``): what the
# home page's headlines and trend add up, a few dozen rows a day instead of thousands.
TOTALLED_METRICS = ("payments", "attempts", "reached", "right_party", "promise_made")
TOTALS = tuple(f"{metric}:total" for metric in TOTALLED_METRICS)
# The agents page's flows per day, agent and bucket (``<metric>:agent``), and each agent's
# worked day (``worked``: ``count`` the first attempt's start, ``amount`` the last one's end,
# in microseconds since 1970 UTC): what the fair comparison adds up.
AGENT_METRICS = ("attempts", "right_party", "promise_made")
AGENT_TOTALS = tuple(f"{metric}:agent" for metric in AGENT_METRICS)
WORKED = "worked"
# Metrics written for one day only: the portfolio at its end and the month's roll to it.
SNAPSHOT_METRICS = ("portfolio", "roll")
_EXITS = [str(status) for status in EXIT_STATUSES]
_COLUMNS = (
    "institution_id",
    "day",
    "metric",
    "product",
    "bucket",
    "state",
    "channel",
    "agent_id",
    "province",
    "count",
    "amount",
)
REACHED_CODES = sorted(codes_where(reached=True))


@dataclass(frozen=True, slots=True)
class Scope:
    """An institution's accounts in its currency, and the local days' offset from UTC."""

    institution_id: int
    currency: str
    offset_minutes: int


def _bucket_before(
    account_id: Any, moment: Any, correlate: Any, *, strictly: bool = False
) -> ScalarSelect[str | None]:
    """Select the account's bucket at a moment (``strictly``: just before it)."""
    at = (
        DelinquencyEvent.effective_at < moment
        if strictly
        else DelinquencyEvent.effective_at <= moment
    )
    return (
        select(DelinquencyEvent.bucket)
        .where(
            DelinquencyEvent.account_id == account_id,
            DelinquencyEvent.superseded.is_(False),
            at,
        )
        .order_by(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc())
        .limit(1)
        .correlate(correlate)
        .scalar_subquery()
    )


def _write(session: Session, statement: Select[*tuple[Any, ...]]) -> int:
    # An INSERT's row count is kept only when asked for (PostgreSQL reported -1 without it).
    result = session.execute(
        insert(DailyFact).from_select(list(_COLUMNS), statement),
        execution_options={"preserve_rowcount": True},
    )
    rows = int(getattr(result, "rowcount", -1))
    if rows < 0 and session.get_bind().dialect.name == "sqlite":
        # SQLite's driver reports no row count for an INSERT that starts with a CTE.
        rows = int(session.execute(select(func.changes())).scalar_one())
    return max(rows, 0)


def _row(
    scope: Scope,
    day: Any,
    metric: str,
    *,
    product: Any = None,
    bucket: Any = None,
    state: Any = None,
    channel: Any = None,
    agent: Any = None,
    province: Any = None,
    count: Any,
    amount: Any = None,
) -> list[ColumnElement[Any]]:
    def value(column: Any) -> ColumnElement[Any]:
        return null() if column is None else column

    return [
        literal(scope.institution_id).label("institution_id"),
        day.label("day"),
        literal(metric).label("metric"),
        value(product).label("product"),
        value(bucket).label("bucket"),
        value(state).label("state"),
        value(channel).label("channel"),
        value(agent).label("agent_id"),
        value(province).label("province"),
        count.label("count"),
        (literal(0) if amount is None else func.coalesce(amount, 0)).label("amount"),
    ]


def clear(
    session: Session, scope: Scope, *, first: date, last: date, metrics: Sequence[str]
) -> None:
    """Delete the rows of ``metrics`` on the days from ``first`` to ``last``."""
    session.execute(
        delete(DailyFact).where(
            DailyFact.institution_id == scope.institution_id,
            DailyFact.metric.in_(list(metrics)),
            DailyFact.day >= first,
            DailyFact.day <= last,
        )
    )


def _per_row(statement: Select[*tuple[Any, ...]], name: str) -> Any:
    """Return ``statement`` as a materialized CTE: its correlated look-ups run once a row.

    Grouping by a correlated subquery directly makes SQLite evaluate it again for the
    grouping; selecting the rows first and grouping the CTE's columns does not.
    """
    return statement.cte(name).prefix_with("MATERIALIZED")


def write_payments(session: Session, scope: Scope, *, start: datetime, end: datetime) -> int:
    """Payments by day paid, product, bucket before the payment, assigned agent, province.

    ``state`` is ``charged_off`` for a payment on an account charged off when it arrived.
    """
    day = LocalDay(Payment.paid_at, literal(scope.offset_minutes))
    bucket = _bucket_before(Payment.account_id, Payment.paid_at, Payment, strictly=True)
    after = case((Payment.status_before == AccountStatus.charged_off, "charged_off"), else_=None)
    paid = _per_row(
        select(
            day.label("day"),
            Account.product.label("product"),
            bucket.label("bucket"),
            after.label("state"),
            account_owner_id().label("agent_id"),
            Debtor.province.label("province"),
            Payment.amount.label("amount"),
        )
        .select_from(Payment)
        .join(Account, Account.id == Payment.account_id)
        .join(Debtor, Debtor.id == Account.debtor_id)
        .where(
            Payment.institution_id == scope.institution_id,
            Account.currency == scope.currency,
            Payment.paid_at >= start,
            Payment.paid_at < end,
            Payment.reversed_at.is_(None),
        ),
        "paid",
    )
    columns = (paid.c.day, paid.c.product, paid.c.bucket, paid.c.state, paid.c.agent_id)
    return _write(
        session,
        select(
            *_row(
                scope,
                paid.c.day,
                "payments",
                product=paid.c.product,
                bucket=paid.c.bucket,
                state=paid.c.state,
                agent=paid.c.agent_id,
                province=paid.c.province,
                count=func.count(),
                amount=func.sum(paid.c.amount),
            )
        ).group_by(*columns, paid.c.province),
    )


def write_attempts(session: Session, scope: Scope, *, start: datetime, end: datetime) -> int:
    """Outbound attempts made, and those that reached anyone, the debtor, a promise.

    By day, product, the account's bucket when made, channel, agent and the debtor's province.
    """
    attempt = ContactAttempt
    happened = func.coalesce(attempt.started_at, attempt.planned_at, attempt.created_at)
    day = LocalDay(happened, literal(scope.offset_minutes))
    bucket = _bucket_before(attempt.account_id, happened, attempt)

    def counted(outcome: Any, codes: Iterable[str]) -> ColumnElement[int]:
        return func.sum(case((outcome.in_(sorted(codes)), 1), else_=0))

    rows = _per_row(
        select(
            day.label("day"),
            Account.product.label("product"),
            bucket.label("bucket"),
            attempt.channel.label("channel"),
            attempt.agent_id.label("agent_id"),
            Debtor.province.label("province"),
            attempt.outcome.label("outcome"),
        )
        .select_from(attempt)
        .join(Debtor, Debtor.id == attempt.debtor_id)
        .outerjoin(Account, Account.id == attempt.account_id)
        .where(
            attempt.status == AttemptStatus.MADE,
            attempt.direction == Direction.OUTBOUND,
            happened_between(attempt, scope.institution_id, start, end),
            (attempt.account_id.is_(None)) | (Account.currency == scope.currency),
        ),
        "made",
    )
    dimensions = (
        rows.c.day,
        rows.c.product,
        rows.c.bucket,
        rows.c.channel,
        rows.c.agent_id,
        rows.c.province,
    )
    grouped = (
        select(
            *dimensions,
            func.count().label("attempts"),
            counted(rows.c.outcome, REACHED_CODES).label("reached"),
            counted(rows.c.outcome, RIGHT_PARTY_CODES).label("right_party"),
            counted(rows.c.outcome, [OutcomeCode.PROMISE_MADE]).label("promise_made"),
        )
        .group_by(*dimensions)
        .cte("grouped")
    )
    parts = [
        select(
            *_row(
                scope,
                grouped.c.day,
                metric,
                product=grouped.c.product,
                bucket=grouped.c.bucket,
                channel=grouped.c.channel,
                agent=grouped.c.agent_id,
                province=grouped.c.province,
                count=grouped.c[metric],
            )
        ).where(grouped.c[metric] > 0)
        for metric in ("attempts", "reached", "right_party", "promise_made")
    ]
    union = union_all(*parts).subquery("metrics")
    return _write(session, select(*[union.c[name] for name in _COLUMNS]))


def write_promises(session: Session, scope: Scope, *, first: date, last: date) -> int:
    """Promises by due day and their status now, with the bucket when made and the taker."""
    bucket = (
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
    columns = (
        Promise.due_date,
        Account.product,
        bucket,
        Promise.status,
        Promise.channel,
        Promise.created_by_id,
        Debtor.province,
    )
    return _write(
        session,
        select(
            *_row(
                scope,
                Promise.due_date,
                "promises",
                product=Account.product,
                bucket=bucket,
                state=Promise.status,
                channel=Promise.channel,
                agent=Promise.created_by_id,
                province=Debtor.province,
                count=func.count(),
                amount=func.sum(Promise.amount),
            )
        )
        .select_from(Promise)
        .join(Account, Account.id == Promise.account_id)
        .join(Debtor, Debtor.id == Account.debtor_id)
        .where(
            Promise.institution_id == scope.institution_id,
            Account.currency == scope.currency,
            Promise.due_date >= first,
            Promise.due_date <= last,
        )
        .group_by(*columns),
    )


def _planned(scope: Scope, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    return [
        ContactDecision.institution_id == scope.institution_id,
        ContactDecision.planned_at >= start,
        ContactDecision.planned_at < end,
    ]


def decision_days(
    session: Session, scope: Scope, *, first: date, last: date, start: datetime, end: datetime
) -> tuple[dict[date, int], dict[date, int]]:
    """Return the gate's decisions per day planned: as stored in the aggregates, and now.

    Counting them now reads one column of each decision; writing them joins three tables.
    """
    day = LocalDay(ContactDecision.planned_at, literal(scope.offset_minutes))
    found = session.execute(
        select(day, func.count()).where(*_planned(scope, start, end)).group_by(day)
    ).all()
    stored = session.execute(
        select(DailyFact.day, func.sum(DailyFact.count))
        .where(
            DailyFact.institution_id == scope.institution_id,
            DailyFact.metric == "decisions",
            DailyFact.day >= first,
            DailyFact.day <= last,
        )
        .group_by(DailyFact.day)
    ).all()
    return (
        {as_date(value): int(count or 0) for value, count in stored},
        {as_date(value): int(count or 0) for value, count in found},
    )


def as_date(value: Any) -> date:
    """Return a day read from the database as a date (SQLite returns the ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def write_decisions(
    session: Session,
    scope: Scope,
    *,
    start: datetime,
    end: datetime,
    days: Sequence[date] | None = None,
) -> int:
    """Gate decisions by day planned, outcome (allowed / blocked), channel, agent, province.

    ``days``: only those days between the moments (``None``: every day).
    """
    day = LocalDay(ContactDecision.planned_at, literal(scope.offset_minutes))
    outcome = case((ContactDecision.allowed.is_(True), "allowed"), else_="blocked")
    columns = (day, Account.product, outcome, ContactDecision.channel, User.id, Debtor.province)
    conditions = _planned(scope, start, end)
    if days is not None:
        conditions.append(day.in_(list(days)))
    return _write(
        session,
        select(
            *_row(
                scope,
                day,
                "decisions",
                product=Account.product,
                state=outcome,
                channel=ContactDecision.channel,
                agent=User.id,
                province=Debtor.province,
                count=func.count(),
            )
        )
        .select_from(ContactDecision)
        .join(Debtor, Debtor.id == ContactDecision.debtor_id)
        .outerjoin(Account, Account.id == ContactDecision.account_id)
        .outerjoin(
            User,
            and_(
                User.username == ContactDecision.actor,
                User.institution_id == ContactDecision.institution_id,
            ),
        )
        .where(*conditions)
        .group_by(*columns),
    )


def write_violations(session: Session, scope: Scope, *, start: datetime, end: datetime) -> int:
    """Review findings by day recorded, category (``state``) and agent (by user name)."""
    day = LocalDay(ComplianceViolation.created_at, literal(scope.offset_minutes))
    columns = (day, ComplianceViolation.category, User.id)
    return _write(
        session,
        select(
            *_row(
                scope,
                day,
                "violations",
                state=ComplianceViolation.category,
                agent=User.id,
                count=func.count(),
            )
        )
        .select_from(ComplianceViolation)
        .outerjoin(
            User,
            and_(
                User.username == ComplianceViolation.actor,
                User.institution_id == ComplianceViolation.institution_id,
            ),
        )
        .where(
            ComplianceViolation.institution_id == scope.institution_id,
            ComplianceViolation.created_at >= start,
            ComplianceViolation.created_at < end,
        )
        .group_by(*columns),
    )


def write_totals(session: Session, scope: Scope, *, first: date, last: date) -> int:
    """Add up the busiest flows' rows of the days per day, product and agent (``TOTALS``)."""
    return _write(
        session,
        select(
            literal(scope.institution_id).label("institution_id"),
            DailyFact.day,
            (DailyFact.metric + literal(":total")).label("metric"),
            DailyFact.product,
            null().label("bucket"),
            null().label("state"),
            null().label("channel"),
            DailyFact.agent_id,
            null().label("province"),
            func.sum(DailyFact.count).label("count"),
            func.sum(DailyFact.amount).label("amount"),
        )
        .where(
            DailyFact.institution_id == scope.institution_id,
            DailyFact.metric.in_(TOTALLED_METRICS),
            DailyFact.day >= first,
            DailyFact.day <= last,
        )
        .group_by(DailyFact.day, DailyFact.metric, DailyFact.product, DailyFact.agent_id),
    )


def write_agent_totals(session: Session, scope: Scope, *, first: date, last: date) -> int:
    """Add up the agents' attempt rows of the days per day, agent and bucket (``AGENT_TOTALS``)."""
    return _write(
        session,
        select(
            literal(scope.institution_id).label("institution_id"),
            DailyFact.day,
            (DailyFact.metric + literal(":agent")).label("metric"),
            null().label("product"),
            DailyFact.bucket,
            null().label("state"),
            null().label("channel"),
            DailyFact.agent_id,
            null().label("province"),
            func.sum(DailyFact.count).label("count"),
            literal(0).label("amount"),
        )
        .where(
            DailyFact.institution_id == scope.institution_id,
            DailyFact.metric.in_(AGENT_METRICS),
            DailyFact.agent_id.is_not(None),
            DailyFact.day >= first,
            DailyFact.day <= last,
        )
        .group_by(DailyFact.day, DailyFact.metric, DailyFact.agent_id, DailyFact.bucket),
    )


def write_worked(session: Session, scope: Scope, *, start: datetime, end: datetime) -> int:
    """Each agent's worked days: the first outbound attempt's start and the last one's end.

    The day is the local day of the attempt's start (else when planned), as
    ``analytics.repository.agent_days`` counts it live.
    """
    attempt = ContactAttempt
    begun = func.coalesce(attempt.started_at, attempt.planned_at)
    finished = func.coalesce(attempt.ended_at, attempt.started_at, attempt.planned_at)
    day = LocalDay(begun, literal(scope.offset_minutes))
    return _write(
        session,
        select(
            *_row(
                scope,
                day,
                WORKED,
                agent=attempt.agent_id,
                count=func.min(MicrosecondsSinceEpoch(begun)),
                amount=func.max(MicrosecondsSinceEpoch(finished)),
            )
        )
        .where(
            attempt.agent_id.is_not(None),
            attempt.status == AttemptStatus.MADE,
            attempt.direction == Direction.OUTBOUND,
            begun_between(attempt, scope.institution_id, start, end),
        )
        .group_by(day, attempt.agent_id),
    )


def has_totals(session: Session, *, institution_id: int) -> bool:
    """Tell whether the institution's aggregates hold the daily and the agents' totals.

    Both are newer than the rest: aggregates without them are rewritten once.
    """

    def any_row(*conditions: Any) -> bool:
        return (
            session.execute(
                select(DailyFact.id)
                .where(DailyFact.institution_id == institution_id, *conditions)
                .limit(1)
            ).first()
            is not None
        )

    if not any_row(DailyFact.metric.in_(TOTALS)):
        return False
    agents_attempted = any_row(
        DailyFact.metric == "attempts:total", DailyFact.agent_id.is_not(None)
    )
    return not agents_attempted or any_row(DailyFact.metric.in_(AGENT_TOTALS))


def write_portfolio(session: Session, scope: Scope, *, day: date, cutoff: datetime) -> int:
    """Accounts in the portfolio at the end of ``day`` and their balance, by bucket and more."""
    state = DelinquencyEvent
    held = _per_row(
        select(
            Account.product.label("product"),
            state.bucket.label("bucket"),
            account_owner_id().label("agent_id"),
            Debtor.province.label("province"),
            state.balance.label("balance"),
        )
        .select_from(Account)
        .join(state, state.id == state_id_at(cutoff))
        .join(Debtor, Debtor.id == Account.debtor_id)
        .where(
            Account.institution_id == scope.institution_id,
            Account.currency == scope.currency,
            state.status.not_in(_EXITS),
        ),
        "held",
    )
    columns = (held.c.product, held.c.bucket, held.c.agent_id, held.c.province)
    return _write(
        session,
        select(
            *_row(
                scope,
                literal(day),
                "portfolio",
                product=held.c.product,
                bucket=held.c.bucket,
                agent=held.c.agent_id,
                province=held.c.province,
                count=func.count(),
                amount=func.sum(held.c.balance),
            )
        ).group_by(*columns),
    )


def write_roll(session: Session, scope: Scope, *, day: date, since: date) -> int:
    """The roll-rate cells from the end of ``since`` to the end of ``day``, by product."""
    cells = roll_rate_matrix(
        session,
        institution_id=scope.institution_id,
        start=since,
        end=day,
        narrow=lambda statement: statement.where(Account.currency == scope.currency),
        groups=[Account.product.label("product")],
    )
    rows = [
        {
            "institution_id": scope.institution_id,
            "day": day,
            "metric": "roll",
            "product": cell.group[0],
            "bucket": cell.from_bucket,
            "state": cell.to_bucket,
            "count": cell.accounts,
            "amount": cell.balance,
        }
        for cell in cells
    ]
    if rows:
        session.execute(insert(DailyFact), rows)
    return len(rows)


def write_snapshots(
    session: Session,
    scope: Scope,
    *,
    days: Sequence[date],
    since: Sequence[date],
    cutoff: Callable[[date], datetime],
) -> int:
    """The portfolio at the end of each of ``days`` and the roll to it from ``since``'s end.

    What ``write_portfolio`` and ``write_roll`` write for each day, from one look-up of each
    account's state at each distinct cutoff (``cutoff(day)``: the end of a day) instead of one
    per statement: a daily refresh's last day and the month end before it (rolling from the
    month end before that) need three look-ups per account, not six, and its owner once. An
    account whose state at a later cutoff began before an earlier one is not looked up again
    for it. The accounts are first added up by all their cuts and states at once (far fewer
    groups than accounts), and each day's portfolio and roll are sums of those groups: one
    grouping pass over the accounts instead of two per day.
    """
    if len(days) != len(since):
        raise ValueError("give one roll start per snapshot day")
    moments = sorted({*days, *since})
    at = {moment: index for index, moment in enumerate(moments)}
    states = [aliased(DelinquencyEvent, name=f"state_{index}") for index in range(len(moments))]
    statement = (
        select(
            Account.product.label("product"),
            account_owner_id().label("agent_id"),
            Debtor.province.label("province"),
            *(
                column
                for index, state in enumerate(states)
                for column in (
                    # The exit status, else the bucket (the two never share a name); none
                    # before the account's first event.
                    case((state.status.in_(_EXITS), state.status), else_=state.bucket).label(
                        f"state_{index}"
                    ),
                    state.balance.label(f"balance_{index}"),
                )
            ),
        )
        .select_from(Account)
        .join(Debtor, Debtor.id == Account.debtor_id)
        .where(Account.institution_id == scope.institution_id, Account.currency == scope.currency)
    )
    # Latest day end first: an account's state there, when it began before an earlier day
    # end, is its state at that one too, so only accounts with an event in between are looked
    # up again (most accounts hold one state for weeks).
    later: Any = None
    for moment, state in reversed(list(zip(moments, states, strict=True))):
        until = cutoff(moment)
        if later is None:
            found: ColumnElement[Any] = state_id_at(until)
        else:
            found = case((later.effective_at < until, later.id), else_=state_id_at(until))
        statement = statement.outerjoin(state, state.id == found)
        later = state
    accounts = _per_row(statement, "held")
    cuts = [accounts.c.product, accounts.c.agent_id, accounts.c.province]
    states_at = [accounts.c[f"state_{index}"] for index in range(len(moments))]
    held = _per_row(
        select(
            *cuts,
            *states_at,
            func.count().label("accounts"),
            *(
                func.sum(accounts.c[f"balance_{index}"]).label(f"balance_{index}")
                for index in range(len(moments))
            ),
        ).group_by(*cuts, *states_at),
        "held_groups",
    )

    def live(index: int) -> ColumnElement[bool]:
        state = held.c[f"state_{index}"]
        return and_(state.is_not(None), state.not_in(_EXITS))

    parts: list[Select[Any]] = []
    for day, start in zip(days, since, strict=True):
        end, begin = at[day], at[start]
        bucket = held.c[f"state_{end}"]
        parts.append(
            select(
                *_row(
                    scope,
                    literal(day),
                    "portfolio",
                    product=held.c.product,
                    bucket=bucket,
                    agent=held.c.agent_id,
                    province=held.c.province,
                    count=func.sum(held.c.accounts),
                    amount=func.sum(held.c[f"balance_{end}"]),
                )
            )
            .where(live(end))
            .group_by(held.c.product, bucket, held.c.agent_id, held.c.province)
        )
        to_state = held.c[f"state_{end}"]
        from_bucket = held.c[f"state_{begin}"]
        parts.append(
            select(
                *_row(
                    scope,
                    literal(day),
                    "roll",
                    product=held.c.product,
                    bucket=from_bucket,
                    state=to_state,
                    count=func.sum(held.c.accounts),
                    amount=func.sum(held.c[f"balance_{begin}"]),
                )
            )
            .where(live(begin), to_state.is_not(None))
            .group_by(held.c.product, from_bucket, to_state)
        )
    both = union_all(*parts).subquery("snapshots")
    return _write(session, select(*[both.c[name] for name in _COLUMNS]))


def write_month_ends(
    session: Session, scope: Scope, *, days: Sequence[date], cutoffs: Sequence[datetime]
) -> int:
    """The portfolio at the end of each of ``days`` and the roll to it, in one pass.

    What ``write_portfolio`` and ``write_roll`` write day by day, from one read of the
    delinquency events instead of three look-ups per account and day. ``cutoffs`` are the end
    of the day each roll starts from (the first) and the end of each day: day ``k`` rolls
    from cutoff ``k - 1`` to cutoff ``k``. Each live event is a *span*, from its moment to the
    next event's: it is an account's state at every cutoff it covers. A span adds itself to
    the portfolio (and to a roll where it covers both ends) from the first cutoff it covers
    and takes itself out at the first it no longer covers; running sums over the cutoffs give
    each day. An account whose state changes between two cutoffs rolls from the span that
    ends to its state at the later one (one look-up per span).
    """
    if len(cutoffs) != len(days) + 1:
        raise ValueError("give one cutoff more than days: where the first roll starts")
    last = len(cutoffs)  # one past the last cutoff's index: never reached

    def index_of(moment: Any) -> ColumnElement[int]:
        """How many cutoffs are at or before ``moment`` (``last`` when none is after it)."""
        return case(
            *((moment < cutoff, literal(position)) for position, cutoff in enumerate(cutoffs)),
            else_=literal(last),
        )

    event = DelinquencyEvent
    following = func.lead(event.effective_at).over(
        partition_by=event.account_id, order_by=(event.effective_at, event.id)
    )
    spans = _per_row(
        select(
            event.account_id.label("account_id"),
            event.bucket.label("bucket"),
            event.status.label("status"),
            event.balance.label("balance"),
            event.effective_at.label("effective_at"),
            following.label("next_at"),
        ).where(event.institution_id == scope.institution_id, event.superseded.is_(False)),
        "spans",
    )
    # Each span with its account's cuts and the cutoffs it covers: from ``first`` to ``ends``.
    covered = _per_row(
        select(
            spans.c.account_id,
            spans.c.bucket,
            spans.c.status,
            spans.c.balance,
            Account.product.label("product"),
            account_owner_id().label("agent_id"),
            Debtor.province.label("province"),
            index_of(spans.c.effective_at).label("first"),
            case((spans.c.next_at.is_(None), literal(last)), else_=index_of(spans.c.next_at)).label(
                "ends"
            ),
        )
        .select_from(spans)
        .join(Account, Account.id == spans.c.account_id)
        .join(Debtor, Debtor.id == Account.debtor_id)
        .where(Account.currency == scope.currency),
        "covered",
    )
    held = covered.c.status.not_in(_EXITS)
    to_state = case((covered.c.status.in_(_EXITS), covered.c.status), else_=covered.c.bucket)
    positions = union_all(
        *(select(literal(position).label("position")) for position in range(len(cutoffs)))
    ).cte("positions")

    def running(changes: Any, keys: Sequence[str], name: str) -> Any:
        """Running sums of ``changes`` (position, keys, accounts, balance) at every position."""
        grouped = (
            select(
                changes.c.position,
                *(changes.c[key] for key in keys),
                func.sum(changes.c.accounts).label("accounts"),
                func.sum(changes.c.balance).label("balance"),
            )
            .group_by(changes.c.position, *(changes.c[key] for key in keys))
            .cte(f"{name}_changes")
        )
        groups = select(*(grouped.c[key] for key in keys)).distinct().cte(f"{name}_groups")
        joined = (
            select(
                positions.c.position,
                *(groups.c[key] for key in keys),
                func.coalesce(grouped.c.accounts, 0).label("accounts"),
                func.coalesce(grouped.c.balance, 0).label("balance"),
            )
            .select_from(positions)
            .join(groups, true())
            .outerjoin(
                grouped,
                and_(
                    grouped.c.position == positions.c.position,
                    *(grouped.c[key].is_not_distinct_from(groups.c[key]) for key in keys),
                ),
            )
            .subquery(f"{name}_grid")
        )
        partition = [joined.c[key] for key in keys]
        return select(
            joined.c.position,
            *(joined.c[key] for key in keys),
            func.sum(joined.c.accounts)
            .over(partition_by=partition, order_by=joined.c.position)
            .label("accounts"),
            func.sum(joined.c.balance)
            .over(partition_by=partition, order_by=joined.c.position)
            .label("balance"),
        ).subquery(f"{name}_running")

    def span_changes(start: Any, keys: dict[str, Any], condition: Any) -> Any:
        """+1 where a span starts counting (``start``), -1 at the first cutoff it leaves."""
        entering = select(
            start.label("position"),
            *(value.label(key) for key, value in keys.items()),
            literal(1).label("accounts"),
            covered.c.balance.label("balance"),
        ).where(condition, start < last, start < covered.c.ends)
        leaving = select(
            covered.c.ends.label("position"),
            *(value.label(key) for key, value in keys.items()),
            literal(-1).label("accounts"),
            (-covered.c.balance).label("balance"),
        ).where(condition, covered.c.ends < last, start < covered.c.ends)
        return union_all(entering, leaving).subquery()

    portfolio_keys = {
        "product": covered.c.product,
        "bucket": covered.c.bucket,
        "agent_id": covered.c.agent_id,
        "province": covered.c.province,
    }
    portfolio = running(
        span_changes(covered.c.first, portfolio_keys, held), list(portfolio_keys), "portfolio"
    )
    # A roll to cutoff k from k - 1: spans covering both stay in their state…
    roll_keys = {"product": covered.c.product, "bucket": covered.c.bucket, "state": to_state}
    stayed = running(span_changes(covered.c.first + 1, roll_keys, held), list(roll_keys), "stayed")
    # …and a span ending between them rolls to the state at k.
    later = aliased(DelinquencyEvent, name="later")
    state_then = (
        select(DelinquencyEvent.id)
        .where(
            DelinquencyEvent.account_id == covered.c.account_id,
            DelinquencyEvent.superseded.is_(False),
            DelinquencyEvent.effective_at
            < case(
                *((covered.c.ends == position, cutoff) for position, cutoff in enumerate(cutoffs))
            ),
        )
        .order_by(DelinquencyEvent.effective_at.desc(), DelinquencyEvent.id.desc())
        .limit(1)
        .correlate(covered)
        .scalar_subquery()
    )
    moved = (
        select(
            covered.c.ends.label("position"),
            covered.c.product,
            covered.c.bucket,
            case((later.status.in_(_EXITS), later.status), else_=later.bucket).label("state"),
            literal(1).label("accounts"),
            covered.c.balance.label("balance"),
        )
        .select_from(covered)
        .join(later, later.id == state_then)
        .where(held, covered.c.ends >= 1, covered.c.ends < last, covered.c.first < covered.c.ends)
    )
    rolls = union_all(
        select(
            stayed.c.position,
            stayed.c.product,
            stayed.c.bucket,
            stayed.c.state,
            stayed.c.accounts,
            stayed.c.balance,
        ),
        moved,
    ).subquery("rolls")

    def day_of(position: Any) -> ColumnElement[Any]:
        return case(*((position == index, literal(day)) for index, day in enumerate(days, start=1)))

    held_rows = select(
        *_row(
            scope,
            day_of(portfolio.c.position),
            "portfolio",
            product=portfolio.c.product,
            bucket=portfolio.c.bucket,
            agent=portfolio.c.agent_id,
            province=portfolio.c.province,
            count=portfolio.c.accounts,
            amount=portfolio.c.balance,
        )
    ).where(portfolio.c.position >= 1, portfolio.c.accounts > 0)
    cells = (
        select(
            rolls.c.position,
            rolls.c.product,
            rolls.c.bucket,
            rolls.c.state,
            func.sum(rolls.c.accounts).label("accounts"),
            func.sum(rolls.c.balance).label("balance"),
        )
        .group_by(rolls.c.position, rolls.c.product, rolls.c.bucket, rolls.c.state)
        .subquery("cells")
    )
    roll_rows = select(
        *_row(
            scope,
            day_of(cells.c.position),
            "roll",
            product=cells.c.product,
            bucket=cells.c.bucket,
            state=cells.c.state,
            count=cells.c.accounts,
            amount=cells.c.balance,
        )
    ).where(cells.c.position >= 1, cells.c.accounts > 0)
    both = union_all(held_rows, roll_rows).subquery("month_ends")
    return _write(session, select(*[both.c[name] for name in _COLUMNS]))


def hold_refresh(session: Session, *, institution_id: int) -> None:
    """Take the institution's refresh turn until the transaction ends: two refreshes of one
    institution (the cycle's stage and the scheduled job) would otherwise both find no stored
    snapshot and both insert one. A row lock on PostgreSQL; SQLite has one writer anyway."""
    session.execute(
        select(Institution.id).where(Institution.id == institution_id).with_for_update()
    )


def refresh_state(session: Session, *, institution_id: int) -> AggregateRefresh | None:
    """Return how far the institution's aggregates are refreshed (``None``: never)."""
    return session.execute(
        select(AggregateRefresh).where(AggregateRefresh.institution_id == institution_id)
    ).scalar_one_or_none()


# --- Reads. ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    """What a dashboard narrows the aggregates to: a product, some agents (a team)."""

    product: str | None = None
    agent_ids: tuple[int, ...] | None = None


def _narrow(statement: Any, filters: Filters) -> Any:
    if filters.product is not None:
        statement = statement.where(DailyFact.product == filters.product)
    if filters.agent_ids is not None:
        statement = statement.where(DailyFact.agent_id.in_(filters.agent_ids or (-1,)))
    return statement


_DIMENSIONS = {
    "day": DailyFact.day,
    "product": DailyFact.product,
    "bucket": DailyFact.bucket,
    "state": DailyFact.state,
    "channel": DailyFact.channel,
    "agent": DailyFact.agent_id,
    "province": DailyFact.province,
}


def sums(
    session: Session,
    *,
    institution_id: int,
    metrics: Sequence[str],
    first: date,
    last: date,
    by: Sequence[str] = (),
    filters: Filters = Filters(),
) -> list[tuple[Any, ...]]:
    """Return (metric, *dimensions ``by``, Σ count, Σ amount) over the days, per group."""
    dimensions = [_DIMENSIONS[name] for name in by]
    statement = (
        select(DailyFact.metric, *dimensions, func.sum(DailyFact.count), func.sum(DailyFact.amount))
        .where(
            DailyFact.institution_id == institution_id,
            DailyFact.metric.in_(list(metrics)),
            DailyFact.day >= first,
            DailyFact.day <= last,
        )
        .group_by(DailyFact.metric, *dimensions)
    )
    return [tuple(row) for row in session.execute(_narrow(statement, filters))]


# The cuts an attempt's daily rows hold (``write_attempts``), as ``analytics.rules.CUTS`` names
# them, and its metrics in the order of ``ContactCounts``.
CONTACT_CUTS = frozenset({"product", "bucket", "province", "channel"})
CONTACT_METRICS = ("attempts", "reached", "right_party", "promise_made")


def stored_contacts(
    session: Session, *, institution_id: int, first: date, last: date, cuts: Sequence[str]
) -> dict[tuple[str | None, ...], ContactCounts]:
    """Return the outbound attempts of the days ``first``…``last`` by ``cuts`` (``CONTACT_CUTS``
    only), from the daily rows: what ``analytics.repository.contacts`` counts over those days.
    """
    if not CONTACT_CUTS.issuperset(cuts):
        raise ValueError(f"the daily rows hold attempts by {sorted(CONTACT_CUTS)}, not {cuts}")
    by = [*(cut for cut in cuts if cut != "channel"), "channel"]
    counts: dict[tuple[str | None, ...], list[int]] = {}
    channels: dict[tuple[str | None, ...], dict[str, int]] = {}
    for metric, *values, count, _amount in sums(
        session,
        institution_id=institution_id,
        metrics=CONTACT_METRICS,
        first=first,
        last=last,
        by=by,
    ):
        of_cut = dict(zip(by, values, strict=True))
        key = tuple(None if of_cut[cut] is None else str(of_cut[cut]) for cut in cuts)
        position = CONTACT_METRICS.index(metric)
        counts.setdefault(key, [0, 0, 0, 0])[position] += int(count)
        if position == 0:
            by_channel = channels.setdefault(key, {})
            channel = str(of_cut["channel"])
            by_channel[channel] = by_channel.get(channel, 0) + int(count)
    return {
        key: ContactCounts(counted[0], counted[1], counted[2], counted[3], channels.get(key, {}))
        for key, counted in counts.items()
    }


def snapshot_day(
    session: Session, *, institution_id: int, metric: str, on_or_before: date
) -> date | None:
    """Return the last day on or before a date with a ``metric`` snapshot (``None``: none)."""
    found = session.execute(
        select(func.max(DailyFact.day)).where(
            DailyFact.institution_id == institution_id,
            DailyFact.metric == metric,
            DailyFact.day <= on_or_before,
        )
    ).scalar_one_or_none()
    return found


def snapshot_days(
    session: Session, *, institution_id: int, metric: str, first: date, last: date
) -> list[date]:
    """Return the days between two dates that have a ``metric`` snapshot, in order."""
    return list(
        session.execute(
            select(DailyFact.day)
            .where(
                DailyFact.institution_id == institution_id,
                DailyFact.metric == metric,
                DailyFact.day >= first,
                DailyFact.day <= last,
            )
            .distinct()
            .order_by(DailyFact.day)
        ).scalars()
    )


# --- Live reads of the compliance, data-quality and agent's-day pages (small tables). ---------


def blocked_rules(
    session: Session, *, institution_id: int, start: datetime, end: datetime
) -> dict[str, int]:
    """Count the gate's blocked decisions planned between the moments by each rule they cite."""
    counts: dict[str, int] = {}
    for rule_ids in session.execute(
        select(ContactDecision.rule_ids).where(
            ContactDecision.institution_id == institution_id,
            ContactDecision.allowed.is_(False),
            ContactDecision.planned_at >= start,
            ContactDecision.planned_at < end,
        )
    ).scalars():
        for rule_id in dict.fromkeys(rule_ids or []):
            counts[str(rule_id)] = counts.get(str(rule_id), 0) + 1
    return counts


def violation_counts(
    session: Session, *, institution_id: int, start: datetime, end: datetime
) -> list[tuple[str, str, str | None, str, int]]:
    """Count review findings recorded between the moments by rule, category, actor, status."""
    rows = session.execute(
        select(
            ComplianceViolation.rule_id,
            ComplianceViolation.category,
            ComplianceViolation.actor,
            ComplianceViolation.status,
            func.count(),
        )
        .where(
            ComplianceViolation.institution_id == institution_id,
            ComplianceViolation.created_at >= start,
            ComplianceViolation.created_at < end,
        )
        .group_by(
            ComplianceViolation.rule_id,
            ComplianceViolation.category,
            ComplianceViolation.actor,
            ComplianceViolation.status,
        )
        .order_by(func.count().desc(), ComplianceViolation.rule_id)
    )
    return [
        (str(rule), str(category), actor, str(status), int(count))
        for rule, category, actor, status, count in rows
    ]


def template_backlog(session: Session, *, institution_id: int) -> list[tuple[str, int, Any]]:
    """Count message templates per review status, with the oldest submission waiting."""
    rows = session.execute(
        select(MessageTemplate.status, func.count(), func.min(MessageTemplate.submitted_at))
        .where(MessageTemplate.institution_id == institution_id)
        .group_by(MessageTemplate.status)
    )
    return [(str(status), int(count), oldest) for status, count, oldest in rows]


def expiring_certifications(
    session: Session, *, institution_id: int, until: date
) -> list[tuple[str, str, str, date]]:
    """Return agents' certificates that expire on or before ``until`` (latest per person)."""
    latest = (
        select(Certification.user_id, func.max(Certification.expires_on).label("expires_on"))
        .where(Certification.institution_id == institution_id)
        .group_by(Certification.user_id)
        .subquery()
    )
    rows = session.execute(
        select(User.username, User.display_name, Certification.course, Certification.expires_on)
        .join(latest, latest.c.user_id == User.id)
        .join(
            Certification,
            and_(
                Certification.user_id == User.id,
                Certification.expires_on == latest.c.expires_on,
                Certification.institution_id == institution_id,
            ),
        )
        .where(latest.c.expires_on <= until, User.active.is_(True))
        .order_by(Certification.expires_on, User.username)
    )
    return [
        (str(name), str(display or ""), str(course), expires)
        for name, display, course, expires in rows
    ]


# Outcomes a compliance officer reads as a complaint or dispute.
COMPLAINT_OUTCOMES = (
    OutcomeCode.DISPUTE,
    OutcomeCode.REFUSED_CONTACT,
    OutcomeCode.ABUSIVE,
)


def complaints(
    session: Session, *, institution_id: int, start: datetime, end: datetime
) -> tuple[int, dict[str, int]]:
    """Return debtors disputing their debt now, and disputes or refusals logged in the period."""
    disputed = session.execute(
        select(func.count()).where(Debtor.institution_id == institution_id, Debtor.disputed)
    ).scalar_one()
    happened = func.coalesce(ContactAttempt.started_at, ContactAttempt.created_at)
    rows = session.execute(
        select(ContactAttempt.outcome, func.count())
        .where(
            ContactAttempt.institution_id == institution_id,
            ContactAttempt.outcome.in_([str(code) for code in COMPLAINT_OUTCOMES]),
            happened >= start,
            happened < end,
        )
        .group_by(ContactAttempt.outcome)
    )
    return int(disputed), {str(outcome): int(count) for outcome, count in rows}


def recorded_complaints(
    session: Session, *, institution_id: int, start: datetime, end: datetime
) -> int:
    """Return the complaints recorded on cases in the period (``complaint`` case events)."""
    count = session.execute(
        select(func.count()).where(
            CaseEvent.institution_id == institution_id,
            CaseEvent.event == COMPLAINT_EVENT,
            CaseEvent.at >= start,
            CaseEvent.at < end,
        )
    ).scalar_one()
    return int(count)


# The case event a complaint records (``cases.rules.CaseEvent.COMPLAINT``).
COMPLAINT_EVENT = "complaint"


def import_quality(
    session: Session, *, institution_id: int, start: datetime, end: datetime, offset_minutes: int
) -> list[tuple[date, str, int, int, int]]:
    """Return per local day and import kind: runs, rows read and rows rejected."""
    day = LocalDay(ImportRun.started_at, literal(offset_minutes))
    rows = session.execute(
        select(
            day,
            ImportRun.kind,
            func.count(),
            func.sum(ImportRun.rows_read),
            func.sum(ImportRun.rejected),
        )
        .where(
            ImportRun.institution_id == institution_id,
            ImportRun.started_at >= start,
            ImportRun.started_at < end,
        )
        .group_by(day, ImportRun.kind)
        .order_by(day, ImportRun.kind)
    )
    return [
        (
            as_date(value),
            str(kind),
            int(runs),
            int(read or 0),
            int(rejected or 0),
        )
        for value, kind, runs, read, rejected in rows
    ]


@dataclass(frozen=True, slots=True)
class DayContact:
    """One contact attempt of an agent's day."""

    at: datetime | None
    channel: str
    status: str
    outcome: str | None
    duration_seconds: int | None
    debtor_id: int
    account_id: int | None


@dataclass(frozen=True, slots=True)
class DayNote:
    """A note an agent wrote that day: on a promise, or on a case change."""

    at: datetime
    kind: str  # promise, case
    text: str
    debtor_id: int | None
    amount: int | None


def agent_day(
    session: Session, *, institution_id: int, agent: User, start: datetime, end: datetime
) -> tuple[list[DayContact], list[DayNote]]:
    """Return an agent's contact attempts and notes between the moments, in time order."""
    happened = func.coalesce(ContactAttempt.started_at, ContactAttempt.planned_at)
    contacts = [
        DayContact(at, str(channel), str(status), outcome, duration, debtor, account)
        for at, channel, status, outcome, duration, debtor, account in session.execute(
            select(
                happened,
                ContactAttempt.channel,
                ContactAttempt.status,
                ContactAttempt.outcome,
                ContactAttempt.duration_seconds,
                ContactAttempt.debtor_id,
                ContactAttempt.account_id,
            )
            .where(
                ContactAttempt.institution_id == institution_id,
                ContactAttempt.agent_id == agent.id,
                happened >= start,
                happened < end,
            )
            .order_by(happened, ContactAttempt.id)
            .limit(500)
        )
    ]
    notes = [
        DayNote(at, "promise", str(note or ""), debtor, amount)
        for at, note, debtor, amount in session.execute(
            select(Promise.created_at, Promise.note, Promise.debtor_id, Promise.amount)
            .where(
                Promise.institution_id == institution_id,
                Promise.created_by_id == agent.id,
                Promise.created_at >= start,
                Promise.created_at < end,
            )
            .order_by(Promise.created_at)
            .limit(200)
        )
    ]
    notes += [
        DayNote(at, "case", str(note), debtor, None)
        for at, note, debtor in session.execute(
            select(CaseEvent.at, CaseEvent.note, Case.debtor_id)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(
                CaseEvent.institution_id == institution_id,
                CaseEvent.actor == agent.username,
                CaseEvent.note.is_not(None),
                CaseEvent.at >= start,
                CaseEvent.at < end,
            )
            .order_by(CaseEvent.at)
            .limit(200)
        )
    ]
    return contacts, sorted(notes, key=lambda note: note.at)
