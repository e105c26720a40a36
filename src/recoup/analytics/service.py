"""The KPIs of an institution as of a date and over a period, cut by product, bucket, region…

One function, ``kpi_report``: it checks the request, counts the facts of every group in SQL
(``repository``), and turns them into KPIs (``rules.kpis_of``). The institution's total is the
sum of its groups' facts, so totals and groups always agree.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from recoup.analytics import repository, rules
from recoup.analytics.daily import repository as daily_repository
from recoup.analytics.repository import AsOf, GroupKey
from recoup.db import worker_url
from recoup.identity.principal import Principal
from recoup.identity.scoping import institution_scope
from recoup.institutions import repository as institutions_repository
from recoup.institutions.settings import settings_of
from recoup.kit import collector, processes
from recoup.kit.clock import local_today, start_of_day, utcnow, zone
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.money import minor_digits
from recoup.models.analytics import KpiSnapshot
from recoup.models.institution import Institution


@dataclass(frozen=True, slots=True)
class KpiGroup:
    """The KPIs of the accounts sharing one value of every cut."""

    cuts: dict[str, str | None]
    kpis: rules.Kpis


@dataclass(frozen=True, slots=True)
class KpiReport:
    """The KPIs of an institution's accounts as of a date, over a period, in total and by group.

    It holds the facts of the total and of every group; ``total`` and ``groups`` turn them into
    KPIs (``rules.kpis_of``) when read. The API writes its answer from the facts directly, group
    after group, without building KPI objects: a fine cut is some thousand groups.
    """

    institution: str
    currency: str
    as_of: date
    period: rules.Period
    group_by: tuple[str, ...]
    total_facts: rules.GroupFacts
    # Every group's cuts and facts, in the answer's order (none without cuts).
    group_facts: list[tuple[dict[str, str | None], rules.GroupFacts]]
    kept_probability: rules.KeptProbability
    kept_history: rules.Period
    pricing: rules.Pricing

    @property
    def total(self) -> rules.Kpis:
        """The KPIs of all the groups together."""
        return rules.kpis_of(self.total_facts, self.kept_probability, self.pricing)

    @property
    def groups(self) -> list[KpiGroup]:
        """The KPIs of every group, in the answer's order."""
        return [
            KpiGroup(cuts=cuts, kpis=rules.kpis_of(facts, self.kept_probability, self.pricing))
            for cuts, facts in self.group_facts
        ]


def kpi_report(
    session: Session,
    *,
    principal: Principal,
    as_of: date,
    start: date | None = None,
    end: date | None = None,
    group_by: Sequence[str] = (),
) -> KpiReport:
    """Compute the KPIs of the caller's institution as of a date over a period, per group.

    The period defaults to the month up to ``as_of``; ``group_by`` names cuts (``rules.CUTS``).
    """
    cuts, problems = rules.parse_cuts(group_by)
    problems += rules.period_problems(as_of, start, end)
    if problems:
        raise ValidationFailed(
            "; ".join(f"{problem.field}: {problem.message}" for problem in problems),
            errors=[{"field": problem.field, "message": problem.message} for problem in problems],
        )
    institution = (
        session.get(Institution, principal.institution_id)
        if principal.institution_id is not None
        else None
    )
    if institution is None:
        raise NotFound("KPIs belong to an institution; sign in as one of its users")
    settings = settings_of(institution)
    period = rules.period_for(as_of, start, end)
    clock = DayClock(institution.timezone, settings.workbench.promise_grace_days)
    moment = clock.end_of(as_of)
    people = repository.population(
        principal=principal,
        institution_id=institution.id,
        currency=institution.currency,
        as_of=as_of,
        cuts=cuts,
    )
    facts = stored_account_facts(
        session,
        principal=principal,
        institution=institution,
        clock=clock,
        as_of=as_of,
        period=period,
        cuts=cuts,
    )
    if facts is None:
        # Settled as the snapshot's are: a statement without a group column (the cuts asked
        # are all ``channel``) answers one row of zeros when nothing counts, a group with no
        # account fact that the snapshot does not list.
        facts = {
            key: kept
            for key, item in account_facts(
                session, people, clock=clock, as_of=as_of, first=period.start, last=period.end
            ).items()
            if (kept := rules.settled(item)) is not None
        }
    period_start = clock.start_of(period.start)
    period_end = clock.end_of(period.end).cutoff

    def add(key: GroupKey, part: rules.GroupFacts) -> None:
        facts[key] = facts.get(key, rules.GroupFacts()) + part

    for key, outcomes in repository.promises_due(
        session, people, first_due=period.start, last_due=period.end, as_of=moment
    ).items():
        add(key, rules.GroupFacts(promises_due=outcomes))
    for key, pending in repository.pending_promises(session, people, as_of=moment).items():
        add(key, rules.GroupFacts(pending_promises=tuple(pending)))
    for key, ended in repository.plans_ended(
        session, people, start=period_start, end=period_end
    ).items():
        add(key, rules.GroupFacts(plans_ended=ended))

    history = rules.Period(
        start=as_of - timedelta(days=settings.analytics.kept_rate_days - 1), end=as_of
    )
    probability = rules.kept_probability(
        repository.kept_history(
            session,
            repository.population(
                principal=principal,
                institution_id=institution.id,
                currency=institution.currency,
                as_of=as_of,
                cuts=(),
            ),
            first_due=history.start,
            last_due=history.end,
            as_of=moment,
        ),
        minimum=settings.analytics.min_promises_per_bucket,
    )
    pricing = rules.Pricing(
        costs=settings.analytics.contact_cost, minor_digits=minor_digits(institution.currency)
    )
    return KpiReport(
        institution=institution.code,
        currency=institution.currency,
        as_of=as_of,
        period=period,
        group_by=cuts,
        total_facts=rules.total_of(facts.values()),
        group_facts=[
            (dict(zip(cuts, key, strict=True)), facts[key]) for key in sorted(facts, key=_key_order)
        ]
        if cuts
        else [],
        kept_probability=probability,
        kept_history=history,
        pricing=pricing,
    )


def _key_order(key: GroupKey) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, value or "") for value in key)


@dataclass(frozen=True, slots=True)
class DayClock:
    """Where an institution's days begin and end, and its promises' grace days."""

    timezone: str
    grace_days: int

    def start_of(self, day: date) -> datetime:
        return start_of_day(day, self.timezone)

    def end_of(self, day: date) -> AsOf:
        return AsOf(
            day=day,
            cutoff=start_of_day(day + timedelta(days=1), self.timezone),
            window_closed_before=day - timedelta(days=self.grace_days),
        )


# The account facts ``account_facts`` counts (``rules.GroupFacts`` fields).
ACCOUNT_FACTS = frozenset(
    {"buckets", "transitions", "delinquent_at_start", "placed", "collected", "cures", "contacts"}
)


def account_facts(
    session: Session,
    people: repository.Population,
    *,
    clock: DayClock,
    as_of: date,
    first: date,
    last: date,
    only: frozenset[str] = ACCOUNT_FACTS,
) -> dict[GroupKey, rules.GroupFacts]:
    """Count the facts of accounts and contacts as of a day over the days ``first``…``last``.

    Everything but promises and plans (counted per request: their status depends on the
    day read), or ``only`` some of them. ``last`` may be the day before ``first``: an empty
    period, whose states are those at its start (what a period starting the next day builds
    on).
    """
    start = clock.start_of(first)
    end = clock.end_of(last).cutoff
    facts: dict[GroupKey, rules.GroupFacts] = {}

    def add(key: GroupKey, part: rules.GroupFacts) -> None:
        facts[key] = facts.get(key, rules.GroupFacts()) + part

    if "buckets" in only:
        for key, counts in repository.buckets(
            session, people, cutoff=clock.end_of(as_of).cutoff
        ).items():
            add(key, rules.GroupFacts(buckets=tuple(counts)))
    if "transitions" in only:
        for key, cells in repository.transitions(
            session, people, start=first - timedelta(days=1), end=last
        ).items():
            add(key, rules.GroupFacts(transitions=tuple(cells)))
    if "delinquent_at_start" in only:
        for key, cohort in repository.delinquent_at_start(
            session, people, start=start, end=end
        ).items():
            add(key, rules.GroupFacts(delinquent_at_start=cohort))
    if "placed" in only:
        for key, cohort in repository.placed(session, people, start=start, end=end).items():
            add(key, rules.GroupFacts(placed=cohort))
    if "collected" in only:
        for key, collected in repository.collected(session, people, start=start, end=end).items():
            add(key, rules.GroupFacts(collected=collected))
    if "cures" in only:
        for key, cured in repository.cures(session, people, start=start, end=end).items():
            add(key, rules.GroupFacts(cures=cured))
    if "contacts" in only:
        for key, attempts in repository.contacts(session, people, start=start, end=end).items():
            add(key, rules.GroupFacts(contacts=attempts))
    return facts


# A stored period is moved to the one asked by counting again the accounts touched between
# their starts and between their ends: beyond this many days, counting live is as cheap.
MAX_SHIFT_DAYS = 45


def snapshot_shift(stored: tuple[date, date], period: rules.Period, as_of: date) -> int:
    """Return the days a snapshot ``(period_start, as_of)`` is moved to serve ``period``.

    Its start is moved to the period's; its day to the period's end and to ``as_of`` (the
    buckets' day): each day in between has its accounts counted again.
    """
    period_start, stored_as_of = stored
    ends = (stored_as_of, period.end, as_of)
    return abs((period.start - period_start).days) + (max(ends) - min(ends)).days


def nearest_snapshot(
    session: Session, *, institution_id: int, period: rules.Period, as_of: date
) -> KpiSnapshot | None:
    """Return the stored snapshot the fewest days from ``period`` (``None``: none near)."""
    stored = [
        (snapshot_shift(item, period, as_of), item)
        for item in repository.kpi_snapshot_periods(session, institution_id=institution_id)
    ]
    near = [item for item in stored if item[0] <= MAX_SHIFT_DAYS]
    if not near:
        return None
    _shift, (period_start, _as_of) = min(near)
    return repository.kpi_snapshot(
        session, institution_id=institution_id, period_start=period_start
    )


# The stored snapshots' facts re-added per set of cuts, by the snapshot's stamp: they change
# only when a refresh writes the snapshot again (a new ``computed_at``), so a request re-adds a
# snapshot's thousands of finest groups once per process and cut set, not every time.
_SUMS_KEPT = 64
_sums: OrderedDict[tuple[Any, ...], dict[GroupKey, rules.GroupFacts]] = OrderedDict()
_sums_lock = threading.Lock()


def stored_sums(
    session: Session, snapshot: KpiSnapshot, cuts: Sequence[str]
) -> Mapping[GroupKey, rules.GroupFacts]:
    """Return ``snapshot``'s stored facts re-added into groups of ``cuts`` (do not change them).

    Kept per process, by the database, the snapshot and its stamp (when and how long it was
    written), and the cuts; a snapshot written again has a new stamp, so it is re-added anew.
    """
    key = (
        str(session.get_bind().engine.url),
        snapshot.id,
        snapshot.institution_id,
        snapshot.period_start,
        snapshot.as_of,
        snapshot.computed_at,
        snapshot.seconds,
        tuple(cuts),
    )
    with _sums_lock:
        found = _sums.get(key)
        if found is not None:
            _sums.move_to_end(key)
            return found
    found = rules.facts_from_json(snapshot.facts, stored_cuts=rules.CUTS, cuts=cuts)
    with _sums_lock:
        _sums[key] = found
        while len(_sums) > _SUMS_KEPT:
            _sums.popitem(last=False)
    return found


def stored_account_facts(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    clock: DayClock,
    as_of: date,
    period: rules.Period,
    cuts: Sequence[str],
    snapshot: KpiSnapshot | None = None,
    only: frozenset[str] = ACCOUNT_FACTS,
    to_store: bool = False,
) -> dict[GroupKey, rules.GroupFacts] | None:
    """Return the account facts of ``period`` as of ``as_of`` from a stored snapshot.

    The snapshot holds the facts of a period up to its day for every cut (``snapshot``, or
    the stored one nearest the period). An account with no delinquency event and no payment
    between the snapshot's start and the period's, nor between the snapshot's day and the
    period's end or ``as_of``, and not scored between the two days, counts the same in both
    but for its contacts. The others — touched — are counted again live, once as the snapshot
    counted them (taken out) and once as asked (added), but for their contacts: an attempt
    counts the same in both unless its account's segment moved (scored between the two days),
    so only those accounts' contacts are counted again, and every other account (and debtor as
    a whole) has the contacts of the days between added or taken out. ``None`` when no
    snapshot is near enough (``MAX_SHIFT_DAYS``) or the caller does not see the whole
    institution (an agent's view is narrower). With ``only`` some facts, the others are left
    out of the answer (and the touched accounts are not counted for them).

    A snapshot counts the payments not reversed by the end of its day (``Population.
    reversed_before``): an account with a payment reversed since is touched, counted as the
    snapshot counted it (the payment in) and as asked (out). ``to_store``: the answer is a
    snapshot as of ``as_of`` to store (a payment reversed after that day's end still counts).
    """
    if principal.is_agent:
        return None
    if snapshot is None:
        snapshot = nearest_snapshot(
            session, institution_id=institution.id, period=period, as_of=as_of
        )
    if snapshot is None:
        return None
    stored = rules.Period(snapshot.period_start, snapshot.as_of)
    stored_cutoff = clock.end_of(stored.end).cutoff
    ends = (stored.end, period.end, as_of)
    ranges = [(clock.end_of(min(ends)).cutoff, clock.end_of(max(ends)).cutoff)]
    if stored.start != period.start:
        ranges.append(
            (
                clock.start_of(min(stored.start, period.start)),
                clock.start_of(max(stored.start, period.start)),
            )
        )
    touched_ids: set[int] = set()
    for position, (since, until) in enumerate(ranges):
        # Plain rows (not through the ORM's loading, which cost more than the query).
        touched_ids.update(
            session.connection()
            .execute(
                repository.touched_accounts(
                    institution_id=institution.id,
                    since=since,
                    until=until,
                    scored_after=min(stored.end, as_of),
                    scored_by=max(stored.end, as_of),
                    by_contacts=False,
                    # The payments between the starts are read apart (below).
                    by_payments=position == 0,
                )
            )
            .scalars()
        )
    # The snapshot counted a payment reversed after its day's end (whenever the period asked
    # ends): its account is counted again.
    reversed_ids = set(
        session.connection()
        .execute(repository.reversed_accounts(institution_id=institution.id, since=stored_cutoff))
        .scalars()
    )
    touched_ids |= reversed_ids
    # An account touched between the starts by its payments alone (none reversed since, no
    # event there, nothing between the ends, not scored) counts alike in both periods but for
    # those payments: they are added to (or taken out of) its collected and delinquent facts,
    # without reading its history (``rules.count_paid_between_starts``).
    paid_between: dict[int, list[tuple[int, bool]]] = {}
    if len(ranges) > 1:
        since, until = ranges[1]
        for account_id, amount, after_charge_off, counts in session.connection().execute(
            repository.paid_between(institution_id=institution.id, since=since, until=until)
        ):
            if account_id in touched_ids:
                continue
            listed_payments = paid_between.setdefault(account_id, [])
            if counts:
                listed_payments.append((int(amount), bool(after_charge_off)))
    # An attempt counts by itself, its account's and debtor's cuts, the bucket its account was
    # in when it was made and the segment on the day read: a state or payment dated later does
    # not move it. So only the accounts scored between the two days (their segment moved) have
    # their contacts counted again; every other account's contacts of the days both periods
    # hold count as stored, and those of the days between are added or taken out below.
    scored_ids = set(
        session.connection()
        .execute(
            repository.scored_accounts(
                institution_id=institution.id,
                scored_after=min(stored.end, as_of),
                scored_by=max(stored.end, as_of),
            )
        )
        .scalars()
    )
    dialect = session.get_bind().dialect.name
    scored = repository.listed(sorted(scored_ids), dialect=dialect)

    def people(day: date, **narrowed: Any) -> repository.Population:
        return repository.population(
            principal=principal,
            institution_id=institution.id,
            currency=institution.currency,
            as_of=day,
            cuts=cuts,
            **narrowed,
        )

    # Facts of groups add up: the stored finest groups are re-added into the groups asked
    # for first, and the touched accounts are counted in those groups only.
    combined = dict(stored_sums(session, snapshot, cuts))
    if only != ACCOUNT_FACTS:
        combined = {
            key: dataclasses.replace(
                rules.GroupFacts(), **{name: getattr(item, name) for name in only}
            )
            for key, item in combined.items()
        }
    now_reversed_before = clock.end_of(as_of).cutoff if to_store else None
    recounted = only - {"contacts"}
    if paid_between and recounted & {"collected", "delinquent_at_start"}:
        earlier_start = min(stored.start, period.start)
        # Held by the period asked when it starts earlier (added), else by the stored one.
        sign = 1 if period.start < stored.start else -1
        tally = rules.FactsTally()
        population = people(
            as_of, accounts=repository.listed(sorted(paid_between), dialect=dialect)
        )
        bucket_at = population.cuts.index("bucket") if "bucket" in population.cuts else None
        groups: dict[tuple[str | None, ...], rules.AccountGroup] = {}
        for account_id, (values, bucket, status) in repository.account_states(
            session, population, at=clock.start_of(earlier_start)
        ).items():
            group = groups.get(values)
            if group is None:
                group = groups[values] = rules.AccountGroup(
                    population.key(values, bucket=""), bucket_at
                )
            rules.count_paid_between_starts(
                tally,
                group,
                None if bucket is None or status is None else (bucket, status),
                paid_between[account_id],
                sign=sign,
                facts=recounted,
            )
        for key, item in tally.facts().items():
            combined[key] = combined.get(key, rules.GroupFacts()) + item
    if touched_ids and recounted:
        touched = repository.listed(sorted(touched_ids), dialect=dialect)
        # Tens of thousands of rows and sums, and no reference cycles: left running, the cyclic
        # collector would rescan the server's whole heap meanwhile (``kit.collector``).
        with collector.paused():
            tally = _touched_counted_again(
                session,
                people=people,
                accounts=touched,
                spans=(
                    # As the snapshot counted them (taken out), then as asked (added).
                    (-1, stored.end, stored, stored_cutoff),
                    (1, as_of, period, now_reversed_before),
                ),
                clock=clock,
                facts=recounted,
            )
            for key, item in tally.facts().items():
                combined[key] = combined.get(key, rules.GroupFacts()) + item
    if scored_ids and "contacts" in only:
        # The accounts scored into another segment: their contacts as the snapshot counted them
        # (taken out) and as asked (added).
        for sign, day, days in ((-1, stored.end, stored), (1, as_of, period)):
            for key, contacts in repository.contacts(
                session,
                people(day, accounts=scored),
                start=clock.start_of(days.start),
                end=clock.end_of(days.end).cutoff,
            ).items():
                part = rules.GroupFacts(contacts=contacts)
                combined[key] = combined.get(key, rules.GroupFacts()) + (
                    part if sign > 0 else rules.negated(part)
                )
    # Every account but those scored (and a debtor as a whole) counted the contacts it counts
    # now, but for those made between the two starts and between the two ends: the days from the
    # period's start to the stored one's are added (taken out when the period starts later),
    # and those from the stored day to the period's end added (taken out when it ends sooner).
    for first, last in (
        (period.start, stored.start),
        (stored.end + timedelta(days=1), period.end + timedelta(days=1)),
    ):
        if first == last or "contacts" not in only:
            continue
        counted = _others_contacts(
            session,
            institution=institution,
            clock=clock,
            people=people,
            as_of=as_of,
            scored=scored if scored_ids else None,
            first=min(first, last),
            last=max(first, last) - timedelta(days=1),
        )
        for key, contacts in counted.items():
            part = rules.GroupFacts(contacts=contacts)
            combined[key] = combined.get(key, rules.GroupFacts()) + (
                part if first < last else rules.negated(part)
            )
    return {
        key: kept for key, item in combined.items() if (kept := rules.settled(item)) is not None
    }


def _others_contacts(
    session: Session,
    *,
    institution: Institution,
    clock: DayClock,
    people: Callable[..., repository.Population],
    as_of: date,
    scored: repository.AccountList | None,
    first: date,
    last: date,
) -> dict[GroupKey, rules.ContactCounts]:
    """Count the attempts of the days ``first``…``last`` but the ``scored`` accounts', by cut.

    From the daily aggregates when they hold those days whole at the cuts asked (less the
    scored accounts' attempts, counted live); else live. Two days of a million accounts'
    attempts are some ten thousand rows, each read with its account; their daily rows, a few
    hundred.
    """
    cuts = people(as_of).cuts
    if daily_repository.CONTACT_CUTS.issuperset(cuts) and _holds_whole_days(
        session, institution, first=first, last=last
    ):
        counted = daily_repository.stored_contacts(
            session, institution_id=institution.id, first=first, last=last, cuts=cuts
        )
        if scored is not None:
            for key, contacts in repository.contacts(
                session,
                people(as_of, accounts=scored),
                start=clock.start_of(first),
                end=clock.end_of(last).cutoff,
            ).items():
                taken = rules.negated(rules.GroupFacts(contacts=contacts)).contacts
                counted[key] = counted.get(key, rules.ContactCounts()) + taken
        return counted
    return repository.contacts(
        session,
        people(as_of, except_accounts=scored),
        start=clock.start_of(first),
        end=clock.end_of(last).cutoff,
    )


def _holds_whole_days(
    session: Session, institution: Institution, *, first: date, last: date
) -> bool:
    """Whether the daily aggregates hold the days ``first``…``last`` whole, cut as its days are.

    Days refreshed, the last of them before the day the last refresh ran: each refresh writes
    again the days since the one before (and a week and the promise grace days more, for
    attempts reported late), so a day it ran on is written whole by the next. As the KPI
    snapshot, they hold what was reported by the refresh. The aggregates' days are cut at one
    UTC offset (the refresh's): only where the institution's zone kept one offset since their
    first day are they its own days.
    """
    refresh = daily_repository.refresh_state(session, institution_id=institution.id)
    if refresh is None or first < refresh.first_day or last > refresh.refreshed_through:
        return False
    ran_on = local_today(institution.timezone, now=refresh.refreshed_at)
    return last < ran_on and _one_offset(institution.timezone, refresh.first_day, ran_on)


@functools.lru_cache(maxsize=64)
def _one_offset(timezone: str, first: date, last: date) -> bool:
    """Whether ``timezone`` starts every day from ``first`` to ``last`` at one UTC offset."""
    place = zone(timezone)
    offsets = {
        datetime.combine(first + timedelta(days=days), datetime.min.time(), place).utcoffset()
        for days in range((last - first).days + 2)
    }
    return len(offsets) == 1


# The facts counted from an account's payments (besides its events).
PAID_FACTS = frozenset({"delinquent_at_start", "placed", "collected"})


def _touched_counted_again(
    session: Session,
    *,
    people: Callable[..., repository.Population],
    accounts: repository.AccountList,
    spans: Sequence[tuple[int, date, rules.Period, datetime | None]],
    clock: DayClock,
    facts: frozenset[str],
) -> rules.FactsTally:
    """Count some accounts' facts (but contacts) over periods, each with a sign, in one tally.

    Each span is (sign, the day read, the period, the moment from which a reversed payment
    still counts), as ``account_facts`` would count it with ``people(day, accounts=…)``. Each
    account's cut values, live events (from its state at the earliest start) and payments are
    read once (``repository.account_histories``) and counted for every span in Python
    (``rules.count_account``), instead of in a statement per fact and span, each walking every
    account's index again.
    """
    moment = repository.compared_moment(session)
    since = min(clock.start_of(period.start) for _sign, _day, period, _reversed in spans)
    until = max(
        clock.end_of(max(period.end, day)).cutoff for _sign, day, period, _reversed in spans
    )
    first_day = spans[0][1]
    history = repository.account_histories(
        session,
        people(first_day, accounts=accounts),
        since=since,
        until=until,
        paid=bool(facts & PAID_FACTS),
    )
    whole_days = repository.whole_days_between(session)
    tally = rules.FactsTally()
    no_events: list[rules.AccountEvent] = []
    no_payments: list[rules.AccountPayment] = []
    for sign, day, period, reversed_before in spans:
        population = people(day, accounts=accounts)
        # Only the segment is read as of a day: another day's is read again.
        cuts_of = (
            repository.account_cuts(session, population)
            if day != first_day and "segment" in population.cuts
            else history.cuts
        )
        span = rules.CountedSpan(
            start=moment(clock.start_of(period.start)),
            end=moment(clock.end_of(period.end).cutoff),
            buckets_at=moment(clock.end_of(day).cutoff),
            reversed_before=None if reversed_before is None else moment(reversed_before),
            facts=facts,
        )
        bucket_at = population.cuts.index("bucket") if "bucket" in population.cuts else None
        # Accounts sharing their cut values share their group.
        groups: dict[tuple[str | None, ...], rules.AccountGroup] = {}
        events_of, payments_of = history.events.get, history.payments.get
        count_account = rules.count_account
        for account_id, values in cuts_of.items():
            group = groups.get(values)
            if group is None:
                # The bucket's place in the key is filled in per fact (``AccountGroup``).
                group = groups[values] = rules.AccountGroup(
                    population.key(values, bucket=""), bucket_at
                )
            count_account(
                tally,
                group,
                events_of(account_id, no_events),
                payments_of(account_id, no_payments),
                span,
                sign=sign,
                whole_days=whole_days,
            )
    return tally


def snapshot_periods(as_of: date) -> list[date]:
    """Return the first days of the periods a snapshot on ``as_of`` serves.

    Its month's first day, and the next day when ``as_of`` ends a month (the new month's
    requests build on the old month's last states).
    """
    starts = [as_of.replace(day=1)]
    following = as_of + timedelta(days=1)
    if following.day == 1:
        starts.append(following)
    return starts


@dataclass(frozen=True, slots=True)
class CountedSnapshot:
    """One period's KPI snapshot counted and not yet stored (``count_kpi_snapshots``)."""

    period_start: date
    facts: Any  # ``rules.facts_to_json``'s document
    cohort: dict[repository.AgentBucketKey, tuple[int, int]]
    seconds: float


def count_kpi_snapshots(
    session: Session, *, institution: Institution, as_of: date, again: bool = True
) -> list[CountedSnapshot]:
    """Count the account facts of the periods up to ``as_of`` at every cut, writing nothing.

    ``as_of`` should be a day that has ended: what happens later is counted live per request.
    Without ``again``, a period already stored as of ``as_of`` is left out, and one stored as
    of an earlier day of it is brought forward from it (the accounts touched since counted
    again, ``stored_account_facts``) instead of counted over the whole portfolio. Reads only,
    so it can run in another process beside the refresh's writes (``count_beside``).
    """
    clock = DayClock(institution.timezone, settings_of(institution).workbench.promise_grace_days)
    # A payment reversed after the day's end still counts: the snapshot is the day's.
    people = repository.population(
        principal=institution_scope(institution.id),
        institution_id=institution.id,
        currency=institution.currency,
        as_of=as_of,
        cuts=rules.CUTS,
        reversed_before=clock.end_of(as_of).cutoff,
    )
    counted: list[CountedSnapshot] = []
    for first in snapshot_periods(as_of):
        snapshot = repository.kpi_snapshot(
            session, institution_id=institution.id, period_start=first
        )
        if snapshot is not None and snapshot.as_of == as_of and not again:
            continue
        started = time.perf_counter()
        # A period starting after ``as_of`` is empty: its states are those at its start.
        last = as_of if first <= as_of else first - timedelta(days=1)
        start, end = clock.start_of(first), clock.end_of(last).cutoff
        rolled = snapshot is not None and not again and first <= snapshot.as_of < as_of
        if rolled and snapshot is not None:
            # Yesterday's facts with the accounts touched since counted again, as a request
            # reads them: the refresh costs what changed, not the portfolio.
            facts = stored_account_facts(
                session,
                principal=institution_scope(institution.id),
                institution=institution,
                clock=clock,
                as_of=as_of,
                period=rules.Period(first, last),
                cuts=rules.CUTS,
                snapshot=snapshot,
                to_store=True,
            )
            cohort = repository.stored_agent_cohort(
                session, institution_id=institution.id, period_start=first
            )
        else:
            facts = cohort = None
        if facts is None:
            facts = account_facts(session, people, clock=clock, as_of=as_of, first=first, last=last)
        if cohort is None or snapshot is None:
            cohort = repository.agent_portfolios(session, people, start=start, end=end)
        else:
            cohort = dict(cohort)
            since = clock.end_of(snapshot.as_of).cutoff
            for key, paid in repository.agent_cohort_paid(
                session, people, start=start, since=since, end=end
            ).items():
                balance, before = cohort.get(key, (0, 0))
                cohort[key] = (balance, before + paid)
        counted.append(
            CountedSnapshot(
                period_start=first,
                facts=rules.facts_to_json(facts),
                cohort=dict(cohort),
                seconds=time.perf_counter() - started,
            )
        )
    return counted


def store_kpi_snapshots(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    counted: Sequence[CountedSnapshot],
) -> int:
    """Store KPI snapshots counted as of ``as_of`` (``count_kpi_snapshots``); return how many."""
    for item in counted:
        repository.write_agent_cohort(
            session,
            institution_id=institution.id,
            period_start=item.period_start,
            cohort=item.cohort,
        )
        snapshot = repository.kpi_snapshot(
            session, institution_id=institution.id, period_start=item.period_start
        )
        if snapshot is None:
            snapshot = KpiSnapshot(institution_id=institution.id, period_start=item.period_start)
            session.add(snapshot)
        snapshot.as_of = as_of
        snapshot.facts = item.facts
        snapshot.computed_at = utcnow()
        snapshot.seconds = item.seconds
    session.flush()
    return len(counted)


@contextmanager
def counting_beside(
    session: Session, *, institution: Institution, as_of: date, again: bool, workers: int
) -> Iterator[Callable[[], list[CountedSnapshot]]]:
    """Count the KPI snapshots (``count_kpi_snapshots``) beside the caller's own work.

    With ``workers`` (and a database another process can open), a worker process starts
    counting at once, reading what is committed (SQLite lets it read while this process
    writes, WAL): the caller goes on with writes the count does not read (the daily
    aggregates), then calls the function yielded, which waits for the count. Without, that
    function counts in this process, in ``session``.
    """
    url = worker_url(session) if workers > 0 else None
    if url is None:
        yield lambda: count_kpi_snapshots(
            session, institution=institution, as_of=as_of, again=again
        )
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork: the worker starts with the libraries already imported.
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_snapshot_worker,
        initargs=(url,),
    )
    try:
        future = pool.submit(_count_in_worker, institution.id, as_of, again)
        yield future.result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# The snapshot worker's state, set once as the process starts (``_start_snapshot_worker``).
_SNAPSHOT_WORKER: dict[str, Any] = {}


def _start_snapshot_worker(url: str) -> None:
    from recoup.db import make_engine, session_factory

    processes.exit_with_parent("recoup-kpi-snapshot-parent-watch")
    # A fresh engine: connections inherited from the parent are never used here.
    _SNAPSHOT_WORKER.update(sessions=session_factory(make_engine(url, pool_size=1), write=False))


def _count_in_worker(institution_id: int, as_of: date, again: bool) -> list[CountedSnapshot]:
    with _SNAPSHOT_WORKER["sessions"]() as session, collector.paused():
        institution = institutions_repository.require_by_id(session, institution_id)
        return count_kpi_snapshots(session, institution=institution, as_of=as_of, again=again)


def write_kpi_snapshots(
    session: Session, *, institution: Institution, as_of: date, again: bool = True
) -> int:
    """Store the account facts of the periods up to ``as_of`` at every cut; return how many.

    ``count_kpi_snapshots`` then ``store_kpi_snapshots``, in this process.
    """
    counted = count_kpi_snapshots(session, institution=institution, as_of=as_of, again=again)
    return store_kpi_snapshots(session, institution=institution, as_of=as_of, counted=counted)


# --- Fair comparisons: agents and regions. -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    """A request's institution, period and the moments bounding it."""

    institution: Institution
    period: rules.Period
    moment: AsOf
    start: datetime
    end: datetime


def _frame(
    session: Session, *, principal: Principal, as_of: date, start: date | None, end: date | None
) -> _Frame:
    problems = rules.period_problems(as_of, start, end)
    if problems:
        raise ValidationFailed(
            "; ".join(f"{problem.field}: {problem.message}" for problem in problems),
            errors=[{"field": problem.field, "message": problem.message} for problem in problems],
        )
    institution = (
        session.get(Institution, principal.institution_id)
        if principal.institution_id is not None
        else None
    )
    if institution is None:
        raise NotFound("KPIs belong to an institution; sign in as one of its users")
    settings = settings_of(institution)
    period = rules.period_for(as_of, start, end)

    def end_of(day: date) -> AsOf:
        return AsOf(
            day=day,
            cutoff=start_of_day(day + timedelta(days=1), institution.timezone),
            window_closed_before=day - timedelta(days=settings.workbench.promise_grace_days),
        )

    return _Frame(
        institution=institution,
        period=period,
        moment=end_of(as_of),
        start=start_of_day(period.start, institution.timezone),
        end=end_of(period.end).cutoff,
    )


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One agent's figures with their name and team lead."""

    agent: repository.AgentRow
    figures: rules.AgentEfficiency


@dataclass(frozen=True, slots=True)
class AgentReport:
    """Agents' efficiency over a period, each against their bucket mix; best first."""

    institution: str
    currency: str
    as_of: date
    period: rules.Period
    team_lead_id: int | None
    agents: list[AgentLine]


def agent_report(
    session: Session,
    *,
    principal: Principal,
    as_of: date,
    start: date | None = None,
    end: date | None = None,
    team_lead_id: int | None = None,
) -> AgentReport:
    """Rank the institution's agents fairly: every figure against what their mix predicts.

    The rates the mix is weighted by are over all of the institution's agents, whatever
    ``team_lead_id`` (a team lead's or manager's user id) narrows the list to.
    """
    frame = _frame(session, principal=principal, as_of=as_of, start=start, end=end)
    institution = frame.institution
    if team_lead_id is not None and (
        repository.team_lead(session, institution_id=institution.id, user_id=team_lead_id) is None
    ):
        raise NotFound(f"no team lead {team_lead_id}")
    people = repository.population(
        principal=principal,
        institution_id=institution.id,
        currency=institution.currency,
        as_of=as_of,
        cuts=(),
    )
    offset = frame.moment.cutoff.astimezone(zone(institution.timezone)).utcoffset()
    offset_minutes = int(offset.total_seconds() // 60) if offset else 0
    # Whole days the aggregates hold are read from them; the days after, counted live.
    stored_through = (
        None if principal.is_agent else _aggregated_through(session, institution, frame.period)
    )
    attempts: dict[repository.AgentBucketKey, tuple[int, ...]] = {}
    days: dict[int, list[rules.WorkedDay]] = {}
    live_from = frame.start
    if stored_through is not None:
        attempts.update(
            repository.stored_agent_attempts(
                session,
                institution_id=institution.id,
                first=frame.period.start,
                last=stored_through,
            )
        )
        days.update(
            repository.stored_agent_days(
                session,
                institution_id=institution.id,
                first=frame.period.start,
                last=stored_through,
            )
        )
        live_from = start_of_day(stored_through + timedelta(days=1), institution.timezone)
    if live_from < frame.end:
        for key, counts in repository.agent_attempts(
            session, people, start=live_from, end=frame.end
        ).items():
            before = attempts.get(key, (0, 0, 0))
            attempts[key] = tuple(a + b for a, b in zip(before, counts, strict=True))
        for agent_id, worked in repository.agent_days(
            session, people, start=live_from, end=frame.end, offset_minutes=offset_minutes
        ).items():
            days.setdefault(agent_id, []).extend(worked)
    promises = repository.agent_promises(
        session,
        people,
        first_due=frame.period.start,
        last_due=frame.period.end,
        as_of=frame.moment,
    )
    portfolios = _agent_portfolios(session, principal, people, frame)
    blocks = repository.agent_blocks(session, people, start=frame.start, end=frame.end)
    violations = repository.agent_violations(session, people, start=frame.start, end=frame.end)
    everyone = repository.agents(session, institution_id=institution.id)
    facts = []
    for agent in everyone:

        def of(
            found: Mapping[repository.AgentBucketKey, tuple[int, ...]], position: int, agent_id: int
        ) -> dict[str | None, int]:
            return {
                bucket: values[position]
                for (owner, bucket), values in found.items()
                if owner == agent_id
            }

        decisions, blocked = blocks.get(agent.id, (0, 0))
        facts.append(
            rules.AgentFacts(
                agent_id=agent.id,
                attempts=of(attempts, 0, agent.id),
                right_party=of(attempts, 1, agent.id),
                promises_made=of(attempts, 2, agent.id),
                promises_decided=of(promises, 0, agent.id),
                promises_kept=of(promises, 1, agent.id),
                balance=of(portfolios, 0, agent.id),
                collected=of(portfolios, 1, agent.id),
                worked_days=tuple(days.get(agent.id, ())),
                decisions=decisions,
                blocks=blocked,
                violations=violations.get(agent.id, 0),
            )
        )
    named = {agent.id: agent for agent in everyone}
    listed = {
        agent.id for agent in everyone if team_lead_id is None or agent.team_lead_id == team_lead_id
    }
    return AgentReport(
        institution=institution.code,
        currency=institution.currency,
        as_of=as_of,
        period=frame.period,
        team_lead_id=team_lead_id,
        agents=[
            AgentLine(named[figures.agent_id], figures)
            for figures in rules.agent_efficiency(facts)
            if figures.agent_id in listed
        ],
    )


def _aggregated_through(
    session: Session, institution: Institution, period: rules.Period
) -> date | None:
    """Return the last day of ``period`` the daily aggregates hold whole (``None``: none).

    Days up to the last refresh and before today; the aggregates must start by the period's
    first day.
    """
    refresh = daily_repository.refresh_state(session, institution_id=institution.id)
    if refresh is None or refresh.first_day > period.start:
        return None
    yesterday = local_today(institution.timezone) - timedelta(days=1)
    last = min(refresh.refreshed_through, yesterday, period.end)
    return last if last >= period.start else None


def _agent_portfolios(
    session: Session, principal: Principal, people: repository.Population, frame: _Frame
) -> Mapping[repository.AgentBucketKey, tuple[int, ...]]:
    """Return ``repository.agent_portfolios`` for the frame, from the refresh's cohort if kept.

    The cohort of the period's accounts delinquent at its start holds their balance then and
    what they paid up to the KPI snapshot's day; what they paid since is added live.
    """
    institution = frame.institution
    snapshot = (
        None
        if principal.is_agent
        else repository.kpi_snapshot(
            session, institution_id=institution.id, period_start=frame.period.start
        )
    )
    stored = (
        None
        if snapshot is None or snapshot.as_of > frame.period.end
        else repository.stored_agent_cohort(
            session, institution_id=institution.id, period_start=frame.period.start
        )
    )
    if snapshot is None or stored is None:
        return repository.agent_portfolios(session, people, start=frame.start, end=frame.end)
    since = start_of_day(snapshot.as_of + timedelta(days=1), institution.timezone)
    combined = dict(stored)
    for key, paid in repository.agent_cohort_paid(
        session, people, start=frame.start, since=since, end=frame.end
    ).items():
        balance, before = combined.get(key, (0, 0))
        combined[key] = (balance, before + paid)
    return combined


REGION_LEVELS: tuple[str, ...] = ("province", "city")


@dataclass(frozen=True, slots=True)
class RegionReport:
    """Regions' contact, PTP and cure rates against their bucket mix; hardest first."""

    institution: str
    as_of: date
    period: rules.Period
    level: str
    regions: list[rules.RegionDifficulty]


def region_report(
    session: Session,
    *,
    principal: Principal,
    as_of: date,
    start: date | None = None,
    end: date | None = None,
    level: str = "province",
) -> RegionReport:
    """Compare every province (or province and city) with what its bucket mix predicts."""
    if level not in REGION_LEVELS:
        raise ValidationFailed(
            f"level: unknown level {level!r}: use province or city",
            errors=[{"field": "level", "message": "use province or city"}],
        )
    frame = _frame(session, principal=principal, as_of=as_of, start=start, end=end)
    institution = frame.institution
    cuts = ("province", "bucket") if level == "province" else ("province", "city", "bucket")
    people = repository.population(
        principal=principal,
        institution_id=institution.id,
        currency=institution.currency,
        as_of=as_of,
        cuts=cuts,
    )
    regions: dict[tuple[str | None, ...], dict[str, dict[str | None, int]]] = {}

    def region(key: GroupKey) -> tuple[tuple[str | None, ...], str | None]:
        return key[:-1], key[-1]

    def add(key: GroupKey, name: str, count: int) -> None:
        place, bucket = region(key)
        counts = regions.setdefault(place, {}).setdefault(name, {})
        counts[bucket] = counts.get(bucket, 0) + count

    stored = stored_account_facts(
        session,
        principal=principal,
        institution=institution,
        clock=DayClock(institution.timezone, settings_of(institution).workbench.promise_grace_days),
        as_of=as_of,
        period=frame.period,
        cuts=cuts,
        only=frozenset({"transitions", "contacts"}),
    )
    if stored is not None:
        counted_contacts = {
            key: item.contacts for key, item in stored.items() if item.contacts.attempts
        }
        cells_of = {key: list(item.transitions) for key, item in stored.items() if item.transitions}
    else:
        counted_contacts = repository.contacts(session, people, start=frame.start, end=frame.end)
        cells_of = {
            key: list(cells)
            for key, cells in repository.transitions(
                session,
                people,
                start=frame.period.start - timedelta(days=1),
                end=frame.period.end,
            ).items()
        }
    for key, counted in counted_contacts.items():
        add(key, "attempts", counted.attempts)
        add(key, "reached", counted.reached)
        add(key, "right_party", counted.right_party)
        add(key, "promises", counted.promises)
    for key, cells in cells_of.items():
        for cell in cells:
            if cell.from_bucket == "M0":
                continue
            add(key, "delinquent", cell.accounts)
            add(key, "cured", cell.accounts if cell.to_bucket == "M0" else 0)
    facts = [
        rules.RegionFacts(
            region=place,
            **{
                name: dict(
                    sorted(by_bucket.items(), key=lambda item: (item[0] is None, item[0] or ""))
                )
                for name, by_bucket in counts.items()
            },
        )
        for place, counts in sorted(regions.items(), key=lambda item: _key_order(item[0]))
    ]
    return RegionReport(
        institution=institution.code,
        as_of=as_of,
        period=frame.period,
        level=level,
        regions=rules.region_difficulty(facts),
    )


def agents(session: Session, *, institution_id: int) -> list[repository.AgentRow]:
    """Return the institution's agents with their team leads (for pickers and labels)."""
    return repository.agents(session, institution_id=institution_id)
