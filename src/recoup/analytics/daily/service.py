"""Refreshing the daily aggregates, and the manager's home read from them.

``refresh_aggregates`` is what the job ``analytics.refresh`` and the daily cycle call: it
rewrites the days since the last refresh (and a few before, for late reports) set-based, and
snapshots the portfolio and the month's roll rates at month ends and on the last day. Pages
then read sums of a few thousand rows instead of scanning the portfolio. Never commits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from recoup.allocation import service as allocation
from recoup.analytics import repository as kpi_repository
from recoup.analytics import service as kpi_service
from recoup.analytics.daily import repository, rules
from recoup.analytics.daily.repository import Filters, Scope
from recoup.analytics.daily.rules import Alert, Headline, Span, Step
from recoup.cases.rules import LIVE_STATES
from recoup.contact.rules import AttemptStatus, Direction
from recoup.identity.principal import Principal
from recoup.institutions.settings import settings_of
from recoup.kit.clock import local_today, start_of_day, utcnow, zone
from recoup.kit.errors import NotFound
from recoup.models.analytics import AggregateRefresh
from recoup.models.cases import Case, Queue
from recoup.models.compliance import ContactDecision
from recoup.models.contact import ContactAttempt
from recoup.models.institution import Institution
from recoup.models.scoring import ScoringRun
from recoup.portfolio.rules import BUCKETS


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one refresh rewrote and how long it took."""

    institution: str
    first: date
    last: date
    rows: int
    snapshots: tuple[date, ...]
    seconds: float
    kpi_snapshots: int = 0


def _scope(institution: Institution, as_of: date) -> Scope:
    offset = start_of_day(as_of, institution.timezone).astimezone(zone(institution.timezone))
    utc_offset = offset.utcoffset()
    return Scope(
        institution_id=institution.id,
        currency=institution.currency,
        offset_minutes=int(utc_offset.total_seconds() // 60) if utc_offset else 0,
    )


def refresh_aggregates(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    first: date | None = None,
    now: datetime | None = None,
    workers: int = 0,
) -> RefreshResult:
    """Rewrite the institution's daily aggregates up to ``as_of`` (its local day).

    Without ``first``, from the day after the last refresh (less a few days to count late
    reports; ``rules.refresh_range``), or a year back when never refreshed. Then stores the
    KPI facts of the month up to the last whole day (``kpi_service.count_kpi_snapshots``),
    once a day: ``GET /api/v1/kpis`` builds on them. With ``workers``, those are counted in a
    worker process beside the daily aggregates' writes (``kpi_service.counting_beside``).
    """
    started = time.perf_counter()
    repository.hold_refresh(session, institution_id=institution.id)
    state = repository.refresh_state(session, institution_id=institution.id)
    grace = settings_of(institution).workbench.promise_grace_days
    # A first refresh or a range asked for rewrites history: the KPI snapshot goes with it.
    rewrite = first is not None or state is None
    daily = state is not None and not rewrite
    if first is None:
        first, last = rules.refresh_range(
            as_of, refreshed_through=state.refreshed_through if state else None, grace_days=grace
        )
        if state is not None and not repository.has_totals(session, institution_id=institution.id):
            # Aggregates from before the daily totals existed: rewrite all their days once.
            first = min(first, state.first_day)
            daily = False
    else:
        last = as_of
    yesterday = local_today(institution.timezone, now=now) - timedelta(days=1)
    kpi_as_of = min(last, yesterday)
    # The KPI snapshot reads none of the daily aggregates: with ``workers`` it is counted in
    # another process while this one writes them.
    with kpi_service.counting_beside(
        session, institution=institution, as_of=kpi_as_of, again=rewrite, workers=workers
    ) as counted:
        rows, snapshots = _write_days(
            session,
            institution,
            as_of=as_of,
            first=first,
            last=last,
            daily=daily,
            previous=state.refreshed_through if state is not None else None,
        )
        kpi_snapshots = kpi_service.store_kpi_snapshots(
            session, institution=institution, as_of=kpi_as_of, counted=counted()
        )
    seconds = time.perf_counter() - started
    if state is None:
        state = AggregateRefresh(
            institution_id=institution.id,
            refreshed_through=last,
            refreshed_at=utcnow(),
            first_day=first,
            seconds=seconds,
        )
        session.add(state)
    else:
        state.refreshed_through = max(state.refreshed_through, last)
        state.first_day = min(state.first_day, first)
        state.refreshed_at = utcnow()
        state.seconds = seconds
    session.flush()
    return RefreshResult(
        institution.code, first, last, rows, tuple(snapshots), seconds, kpi_snapshots
    )


def _write_days(
    session: Session,
    institution: Institution,
    *,
    as_of: date,
    first: date,
    last: date,
    daily: bool,
    previous: date | None,
) -> tuple[int, list[date]]:
    """Rewrite the daily aggregates of ``first`` to ``last``; return the rows and snapshot days.

    ``daily``: a daily refresh after one through ``previous``, which rewrites only the days
    whose gate decisions changed.
    """
    scope = _scope(institution, as_of)
    start = start_of_day(first, institution.timezone)
    end = start_of_day(last + timedelta(days=1), institution.timezone)
    decision_days = (
        _changed_decision_days(
            session,
            institution,
            scope,
            first=first,
            last=last,
            previous=previous,
        )
        if daily and previous is not None
        else None
    )
    flows: tuple[str, ...] = repository.FLOW_METRICS
    if decision_days is not None:
        flows = tuple(metric for metric in flows if metric != "decisions")
        for day in decision_days:
            repository.clear(session, scope, first=day, last=day, metrics=("decisions",))
    repository.clear(
        session,
        scope,
        first=first,
        last=last,
        metrics=(*flows, *repository.TOTALS, *repository.AGENT_TOTALS, repository.WORKED),
    )
    rows = repository.write_payments(session, scope, start=start, end=end)
    rows += repository.write_attempts(session, scope, start=start, end=end)
    rows += repository.write_promises(session, scope, first=first, last=last)
    if decision_days is None or decision_days:
        rows += repository.write_decisions(session, scope, start=start, end=end, days=decision_days)
    rows += repository.write_violations(session, scope, start=start, end=end)
    rows += repository.write_totals(session, scope, first=first, last=last)
    rows += repository.write_agent_totals(session, scope, first=first, last=last)
    rows += repository.write_worked(session, scope, start=start, end=end)
    snapshots = rules.snapshot_days(first, last)
    for day in snapshots:
        repository.clear(session, scope, first=day, last=day, metrics=repository.SNAPSHOT_METRICS)
    starts = [rules.month_start(day) - timedelta(days=1) for day in snapshots]
    if len(snapshots) > 2 and starts[1:] == snapshots[:-1]:
        # Each month end rolls from the one before: one pass over the events writes them all
        # (for one or two days, looking each account up is cheaper than reading every event).
        rows += repository.write_month_ends(
            session,
            scope,
            days=snapshots,
            cutoffs=[
                start_of_day(day + timedelta(days=1), institution.timezone)
                for day in (starts[0], *snapshots)
            ],
        )
    else:
        # A daily refresh: its last day (and a month end within its days), each account's
        # states looked up once per distinct day end for the portfolios and the rolls.
        rows += repository.write_snapshots(
            session,
            scope,
            days=snapshots,
            since=starts,
            cutoff=lambda day: start_of_day(day + timedelta(days=1), institution.timezone),
        )
    return rows, snapshots


def _changed_decision_days(
    session: Session,
    institution: Institution,
    scope: Scope,
    *,
    first: date,
    last: date,
    previous: date,
) -> list[date] | None:
    """Return the days of a daily refresh whose gate decisions changed (``None``: every day).

    The gate's decisions are only ever added, never changed or deleted, so a day holding as
    many as its stored rows count is stored already: a daily refresh rewrites the days that
    gained decisions (today's, and any planned on an earlier day but recorded since), not
    every day of its look-back (at a million accounts some 800,000 a day). Days are local at
    the UTC offset of the refresh date: when the offset differs on the first day rewritten
    or on the last refresh's day (a daylight-saving change between), every day is rewritten.
    """
    if any(
        _scope(institution, day).offset_minutes != scope.offset_minutes for day in (first, previous)
    ):
        return None
    stored, found = repository.decision_days(
        session,
        scope,
        first=first,
        last=last,
        start=start_of_day(first, institution.timezone),
        end=start_of_day(last + timedelta(days=1), institution.timezone),
    )
    return rules.changed_days(stored, found)


# --- The manager's home. ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueWork:
    """Today's work of one queue: cases planned for today, done, and blocked by the gate."""

    code: str
    name: str
    planned: int
    done: int
    blocked: int
    unassigned: int
    capacity: int


@dataclass(frozen=True, slots=True)
class RollRow:
    """One from-bucket of the month's roll: accounts per end state, and the shares."""

    from_bucket: str
    accounts: int
    to: dict[str, int]


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One month: collected, the delinquent balance at the month's start, recovery."""

    month: str
    collected: int
    delinquent_at_start: int | None
    recovery: float | None


@dataclass(frozen=True, slots=True)
class Home:
    """Everything the manager's home shows, read from the daily aggregates."""

    currency: str
    span: Span
    previous: Span
    refreshed: AggregateRefresh | None
    snapshot: date | None
    headlines: list[Headline]
    buckets: list[tuple[str, int, int]]  # bucket, accounts, balance
    waterfall: list[Step]
    roll_day: date | None
    roll: list[RollRow]
    roll_states: list[str]
    trend: list[TrendPoint]
    work: list[QueueWork]
    alerts: list[Alert] = field(default_factory=list)


def _institution(session: Session, principal: Principal) -> Institution:
    institution = (
        session.get(Institution, principal.institution_id)
        if principal.institution_id is not None
        else None
    )
    if institution is None:
        raise NotFound("dashboards belong to an institution; sign in as one of its users")
    return institution


def team_agents(
    session: Session, *, principal: Principal, team_lead_id: int | None
) -> tuple[int, ...] | None:
    """Return the agent ids of a team lead's team (``None``: no team asked); unknown → 404."""
    if team_lead_id is None:
        return None
    institution = _institution(session, principal)
    if (
        kpi_repository.team_lead(session, institution_id=institution.id, user_id=team_lead_id)
        is None
    ):
        raise NotFound(f"no team lead {team_lead_id}")
    return tuple(
        agent.id
        for agent in kpi_repository.agents(
            session, institution_id=institution.id, team_lead_id=team_lead_id
        )
    )


def _totals(rows: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[int, int]]:
    found: dict[tuple[Any, ...], tuple[int, int]] = {}
    for *key, count, amount in rows:
        found[tuple(key)] = (int(count or 0), int(amount or 0))
    return found


def _flows(session: Session, institution_id: int, span: Span, filters: Filters) -> dict[str, Any]:
    rows = {
        (str(metric).removesuffix(":total"),): value
        for (metric,), value in _totals(
            repository.sums(
                session,
                institution_id=institution_id,
                metrics=repository.TOTALS,
                first=span.first,
                last=span.last,
                filters=filters,
            )
        ).items()
    }
    promises = _totals(
        repository.sums(
            session,
            institution_id=institution_id,
            metrics=("promises", "decisions"),
            first=span.first,
            last=span.last,
            by=("state",),
            filters=filters,
        )
    )

    def count(metric: str) -> int:
        return rows.get((metric,), (0, 0))[0]

    kept = promises.get(("promises", "kept"), (0, 0))[0]
    decided = kept + sum(
        promises.get(("promises", status), (0, 0))[0] for status in ("partially_kept", "broken")
    )
    blocked = promises.get(("decisions", "blocked"), (0, 0))[0]
    decisions = blocked + promises.get(("decisions", "allowed"), (0, 0))[0]
    return {
        "collected": rows.get(("payments",), (0, 0))[1],
        "contact_rate": rules.share(count("reached"), count("attempts")),
        "rpc_rate": rules.share(count("right_party"), count("attempts")),
        "ptp_rate": rules.share(count("promise_made"), count("right_party")),
        "kept_rate": rules.share(kept, decided),
        "broken": promises.get(("promises", "broken"), (0, 0))[0],
        "decided": decided,
        "block_rate": rules.share(blocked, decisions),
        "blocked": blocked,
        "decisions": decisions,
        "attempts": count("attempts"),
    }


def _portfolio(
    session: Session, institution_id: int, day: date | None, filters: Filters
) -> dict[str, tuple[int, int]]:
    if day is None:
        return {}
    return {
        str(bucket): value
        for (_metric, bucket), value in _totals(
            repository.sums(
                session,
                institution_id=institution_id,
                metrics=("portfolio",),
                first=day,
                last=day,
                by=("bucket",),
                filters=filters,
            )
        ).items()
    }


def _delinquent(buckets: dict[str, tuple[int, int]]) -> tuple[int, int]:
    accounts = sum(value[0] for bucket, value in buckets.items() if bucket != "M0")
    balance = sum(value[1] for bucket, value in buckets.items() if bucket != "M0")
    return accounts, balance


def manager_home(
    session: Session,
    *,
    principal: Principal,
    span: Span,
    product: str | None = None,
    team_lead_id: int | None = None,
    today: date | None = None,
) -> Home:
    """Read the manager's home for a period from the aggregates (and today's work, live)."""
    institution = _institution(session, principal)
    filters = Filters(
        product=product,
        agent_ids=team_agents(session, principal=principal, team_lead_id=team_lead_id),
    )
    previous = rules.previous_span(span)
    now, before = (
        _flows(session, institution.id, span, filters),
        _flows(session, institution.id, previous, filters),
    )
    snapshot = repository.snapshot_day(
        session, institution_id=institution.id, metric="portfolio", on_or_before=span.last
    )
    earlier = repository.snapshot_day(
        session, institution_id=institution.id, metric="portfolio", on_or_before=previous.last
    )
    buckets = _portfolio(session, institution.id, snapshot, filters)
    before_buckets = _portfolio(session, institution.id, earlier, filters)
    delinquent, delinquent_before = _delinquent(buckets), _delinquent(before_buckets)
    headlines = [
        Headline(
            "delinquent_balance",
            "money",
            delinquent[1] if snapshot else None,
            delinquent_before[1] if earlier else None,
            higher_is_better=False,
        ),
        Headline(
            "delinquent_accounts",
            "count",
            delinquent[0] if snapshot else None,
            delinquent_before[0] if earlier else None,
            higher_is_better=False,
        ),
        Headline("collected", "money", now["collected"], before["collected"]),
        Headline("contact_rate", "percent", now["contact_rate"], before["contact_rate"]),
        Headline("rpc_rate", "percent", now["rpc_rate"], before["rpc_rate"]),
        Headline("ptp_rate", "percent", now["ptp_rate"], before["ptp_rate"]),
        Headline("kept_rate", "percent", now["kept_rate"], before["kept_rate"]),
        Headline(
            "block_rate",
            "percent",
            now["block_rate"],
            before["block_rate"],
            higher_is_better=False,
        ),
    ]
    ordered = [(bucket, *buckets.get(bucket, (0, 0))) for bucket in BUCKETS]
    roll_day = repository.snapshot_day(
        session, institution_id=institution.id, metric="roll", on_or_before=span.last
    )
    roll, states = _roll(session, institution.id, roll_day, filters)
    work = queue_work(session, institution=institution, today=today or span.last)
    refreshed = repository.refresh_state(session, institution_id=institution.id)
    return Home(
        currency=institution.currency,
        span=span,
        previous=previous,
        refreshed=refreshed,
        snapshot=snapshot,
        headlines=headlines,
        buckets=ordered,
        waterfall=rules.waterfall([(bucket, balance) for bucket, _n, balance in ordered]),
        roll_day=roll_day,
        roll=roll,
        roll_states=states,
        trend=_trend(session, institution.id, span.last, filters, refreshed),
        work=work,
        alerts=_alerts(session, institution, span.last, filters, work),
    )


ROLL_STATES = (*BUCKETS, "settled", "closed", "charged_off")


def _roll(
    session: Session, institution_id: int, day: date | None, filters: Filters
) -> tuple[list[RollRow], list[str]]:
    if day is None:
        return [], []
    cells = _totals(
        repository.sums(
            session,
            institution_id=institution_id,
            metrics=("roll",),
            first=day,
            last=day,
            by=("bucket", "state"),
            filters=Filters(product=filters.product),
        )
    )
    used = {str(to) for (_metric, _from, to) in cells}
    states = [state for state in ROLL_STATES if state in used]
    rows = []
    for bucket in BUCKETS:
        to = {state: cells.get(("roll", bucket, state), (0, 0))[0] for state in states}
        rows.append(RollRow(bucket, sum(to.values()), to))
    return rows, states


def _trend(
    session: Session,
    institution_id: int,
    last: date,
    filters: Filters,
    refreshed: AggregateRefresh | None,
) -> list[TrendPoint]:
    """Collected per month for up to 12 months to ``last`` (months the aggregates cover)."""
    if refreshed is None:
        return []
    first = max(
        rules.month_start(last.replace(day=1) - timedelta(days=330)),
        rules.month_start(refreshed.first_day),
    )
    by_day = repository.sums(
        session,
        institution_id=institution_id,
        metrics=("payments:total",),
        first=first,
        last=last,
        by=("day",),
        filters=filters,
    )
    collected: dict[str, int] = {}
    for _metric, day, _count, amount in by_day:
        key = repository.as_date(day).strftime("%Y-%m")
        collected[key] = collected.get(key, 0) + int(amount or 0)
    # The delinquent balance on each month's eve, from the snapshots, in one read.
    delinquent: dict[date, int] = {}
    for _metric, day, bucket, _count, amount in repository.sums(
        session,
        institution_id=institution_id,
        metrics=("portfolio",),
        first=first - timedelta(days=1),
        last=last,
        by=("day", "bucket"),
        filters=filters,
    ):
        snapshot = repository.as_date(day)
        delinquent.setdefault(snapshot, 0)
        if bucket != "M0":
            delinquent[snapshot] += int(amount or 0)
    points = []
    month = first
    while month <= last:
        key = month.strftime("%Y-%m")
        base = delinquent.get(month - timedelta(days=1))
        amount = collected.get(key, 0)
        points.append(TrendPoint(key, amount, base, rules.share(amount, base) if base else None))
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return points


def queue_work(session: Session, *, institution: Institution, today: date) -> list[QueueWork]:
    """Count, per active queue, today's cases planned, done and blocked, live.

    Planned: live cases of the queue allocated for today with an owner; done: those with an
    outbound attempt made today; blocked: those not done whose contact the gate blocked today.
    Unassigned: live cases of the queue nobody owns; capacity: what the agents who may take its
    cases can do in a day (members, or generalists: ``allocation.service.queue_capacities``).
    """
    start = start_of_day(today, institution.timezone)
    end = start_of_day(today + timedelta(days=1), institution.timezone)
    live = [str(state) for state in LIVE_STATES]
    made_today = exists().where(
        ContactAttempt.institution_id == institution.id,
        ContactAttempt.debtor_id == Case.debtor_id,
        ContactAttempt.status == AttemptStatus.MADE,
        ContactAttempt.direction == Direction.OUTBOUND,
        ContactAttempt.started_at >= start,
        ContactAttempt.started_at < end,
    )
    blocked_today = exists().where(
        ContactDecision.institution_id == institution.id,
        ContactDecision.debtor_id == Case.debtor_id,
        ContactDecision.allowed.is_(False),
        ContactDecision.planned_at >= start,
        ContactDecision.planned_at < end,
    )
    planned = and_(Case.allocated_on == today, Case.owner_id.is_not(None))
    rows = session.execute(
        select(
            Queue.code,
            Queue.name,
            func.sum(case((planned, 1), else_=0)),
            func.sum(case((and_(planned, made_today), 1), else_=0)),
            func.sum(case((and_(planned, ~made_today, blocked_today), 1), else_=0)),
            func.sum(case((and_(Case.id.is_not(None), Case.owner_id.is_(None)), 1), else_=0)),
        )
        .select_from(Queue)
        .outerjoin(
            Case,
            and_(Case.queue_id == Queue.id, Case.state.in_(live)),
        )
        .where(Queue.institution_id == institution.id, Queue.active.is_(True))
        .group_by(Queue.id, Queue.code, Queue.name, Queue.rank)
        .order_by(Queue.rank, Queue.code)
    ).all()
    capacity = allocation.queue_capacities(session, institution_id=institution.id, as_of=today)
    codes = dict(
        session.execute(
            select(Queue.code, Queue.id).where(Queue.institution_id == institution.id)
        ).all()
    )
    return [
        QueueWork(
            code=str(code),
            name=str(name),
            planned=int(planned_count or 0),
            done=int(done or 0),
            blocked=int(blocked or 0),
            unassigned=int(unassigned or 0),
            capacity=int(capacity.get(codes[code], 0) or 0),
        )
        for code, name, planned_count, done, blocked, unassigned in rows
    ]


def _alerts(
    session: Session,
    institution: Institution,
    last: date,
    filters: Filters,
    work: Sequence[QueueWork],
) -> list[Alert]:
    alerts: list[Alert] = []
    run = session.execute(
        select(ScoringRun.model_version, ScoringRun.score_psi, ScoringRun.as_of)
        .where(ScoringRun.institution_id == institution.id)
        .order_by(ScoringRun.scored_at.desc())
        .limit(1)
    ).first()
    if run is not None and run.score_psi >= rules.DRIFT_PSI:
        alerts.append(
            Alert(
                "drift",
                "danger",
                {"model": run.model_version, "psi": f"{run.score_psi:.2f}", "day": str(run.as_of)},
            )
        )
    recent = Span(last - timedelta(days=6), last)
    earlier = Span(last - timedelta(days=34), last - timedelta(days=7))
    now, before = (
        _flows(session, institution.id, recent, filters),
        _flows(session, institution.id, earlier, filters),
    )
    broken = rules.spike(
        recent=now["broken"],
        recent_base=now["decided"],
        before=before["broken"],
        before_base=before["decided"],
    )
    if broken is not None:
        alerts.append(
            Alert(
                "broken_promises",
                "warning",
                {"now": f"{broken[0]:.0%}", "before": f"{broken[1]:.0%}"},
            )
        )
    blocks = rules.spike(
        recent=now["blocked"],
        recent_base=now["decisions"],
        before=before["blocked"],
        before_base=before["decisions"],
    )
    if blocks is not None:
        alerts.append(
            Alert(
                "compliance", "warning", {"now": f"{blocks[0]:.0%}", "before": f"{blocks[1]:.0%}"}
            )
        )
    alerts += rules.backlog_alerts(
        rules.QueueLoad(queue.code, queue.unassigned, queue.capacity)
        for queue in work
        if queue.unassigned
    )
    return alerts
