"""KPI formulas, pure: rates that keep what they were computed from, and the facts behind them.

Every rate is a ``Rate(numerator, denominator)`` whose ``value`` is ``None`` when the
denominator is 0: an empty state is "no data", never 0 %. Money is integer minor units of the
institution's currency. The repository counts *facts* per group of accounts in SQL
(``GroupFacts``); facts add up, so the institution's total is the sum of its groups, and
``kpis_of`` turns facts into KPIs. ``docs/kpis.md`` defines every KPI with an example.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain, pairwise
from typing import Any, Literal, NamedTuple, Protocol

from recoup.portfolio.rules import BUCKETS, bucket_rank

# What KPIs can be cut by, in the order the API lists them. ``channel`` splits only what has a
# channel (contact attempts, promises); the other facts fall in the group without one.
CUTS: tuple[str, ...] = ("product", "bucket", "province", "city", "segment", "channel")
# States an account leaves the portfolio in; charge-off is the last roll forward.
CHARGED_OFF = "charged_off"
LEFT_STATES = frozenset({"settled", "closed"})

Move = Literal["forward", "stay", "roll_back", "cure", "left"]
MOVES: tuple[Move, ...] = ("forward", "stay", "roll_back", "cure", "left")

KEPT = "kept"
PARTIALLY_KEPT = "partially_kept"
BROKEN = "broken"
DECIDED = (KEPT, PARTIALLY_KEPT, BROKEN)

DEFAULT_KEPT_RATE_DAYS = 90
DEFAULT_MIN_PROMISES_PER_BUCKET = 30


@dataclass(frozen=True, slots=True)
class Rate:
    """A share: what was counted over what it was counted among (``value`` None without data)."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        """The share, or ``None`` when there was nothing to count among."""
        return None if self.denominator == 0 else self.numerator / self.denominator

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.numerator + other.numerator, self.denominator + other.denominator)


NO_DATA = Rate(0, 0)


@dataclass(frozen=True, slots=True)
class Average:
    """A mean: a total over a count (``value`` None when nothing was counted)."""

    total: int
    count: int

    @property
    def value(self) -> float | None:
        """The mean, or ``None`` when nothing was counted."""
        return None if self.count == 0 else self.total / self.count

    def __add__(self, other: Average) -> Average:
        return Average(self.total + other.total, self.count + other.count)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a KPI request cannot be answered: the field and a message with the fix."""

    field: str
    message: str


# --- The period and the cuts a request asks for. -------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """The days a flow KPI counts, both ends included."""

    start: date
    end: date


def period_problems(as_of: date, start: date | None, end: date | None) -> list[Problem]:
    """Return why a requested period cannot be used with ``as_of`` (empty when it can)."""
    period = period_for(as_of, start, end)
    if period.start > period.end:
        return [
            Problem(
                "from",
                f"from {period.start.isoformat()} is after to {period.end.isoformat()}: "
                "give a start on or before the end",
            )
        ]
    if period.end > as_of:
        return [
            Problem(
                "to",
                f"to {period.end.isoformat()} is after as_of {as_of.isoformat()}: a period "
                "can only count days known as of the date; move as_of or to",
            )
        ]
    return []


def period_for(as_of: date, start: date | None, end: date | None) -> Period:
    """Return the period a request means: as given, else the month up to ``as_of``.

    Without ``from`` the period starts on the first day of its end's month; without ``to``
    it ends on ``as_of``.
    """
    last = end or as_of
    return Period(start=start or last.replace(day=1), end=last)


def parse_cuts(values: Iterable[str]) -> tuple[tuple[str, ...], list[Problem]]:
    """Return the cuts asked for (repeated or comma-separated, duplicates once) and problems."""
    cuts: list[str] = []
    unknown: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if name not in CUTS:
                unknown.append(name)
            elif name not in cuts:
                cuts.append(name)
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        return tuple(cuts), [
            Problem("group_by", f"unknown group_by {listed}: use any of {', '.join(CUTS)}")
        ]
    return tuple(cuts), []


# --- Facts counted per group, and their sum. ------------------------------------------------


@dataclass(frozen=True, slots=True)
class BucketCount:
    """Accounts in one bucket and their balance."""

    bucket: str
    accounts: int
    balance: int


class Transition(Protocol):
    """Accounts that moved from a bucket to a bucket or exit state (a roll-rate cell)."""

    @property
    def from_bucket(self) -> str: ...
    @property
    def to_bucket(self) -> str: ...
    @property
    def accounts(self) -> int: ...
    @property
    def balance(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Cell:
    """One roll-rate cell: accounts (and their start balance) from one state to another."""

    from_bucket: str
    to_bucket: str
    accounts: int
    balance: int


@dataclass(frozen=True, slots=True)
class Cohort:
    """Accounts with a balance and what was collected from them (recovery, liquidation)."""

    accounts: int = 0
    balance: int = 0
    collected: int = 0

    def __add__(self, other: Cohort) -> Cohort:
        return Cohort(
            self.accounts + other.accounts,
            self.balance + other.balance,
            self.collected + other.collected,
        )


@dataclass(frozen=True, slots=True)
class Collected:
    """Payments received in a period; those on charged-off accounts also counted apart."""

    amount: int = 0
    payments: int = 0
    after_charge_off: int = 0

    def __add__(self, other: Collected) -> Collected:
        return Collected(
            self.amount + other.amount,
            self.payments + other.payments,
            self.after_charge_off + other.after_charge_off,
        )


@dataclass(frozen=True, slots=True)
class PromiseOutcomes:
    """Promises that fell due, by what became of them as of a date."""

    kept: int = 0
    partially_kept: int = 0
    broken: int = 0
    # Fell due, but still inside the grace days (or not yet reconciled) on the date.
    awaiting: int = 0

    @property
    def decided(self) -> int:
        """Promises kept, partially kept or broken: what a kept rate is counted among."""
        return self.kept + self.partially_kept + self.broken

    def __add__(self, other: PromiseOutcomes) -> PromiseOutcomes:
        return PromiseOutcomes(
            self.kept + other.kept,
            self.partially_kept + other.partially_kept,
            self.broken + other.broken,
            self.awaiting + other.awaiting,
        )

    def adding(self, status: str, count: int) -> PromiseOutcomes:
        """Return these outcomes with ``count`` more promises of ``status`` (pending: awaiting)."""
        name = status if status in DECIDED else "awaiting"
        return replace(self, **{name: getattr(self, name) + count})


@dataclass(frozen=True, slots=True)
class PendingPromises:
    """Promises still open on a date, of accounts in one bucket, and the amount they leave."""

    bucket: str | None
    promises: int
    amount: int


@dataclass(frozen=True, slots=True)
class PlanOutcomes:
    """Payment plans that ended in a period: completed (kept) or broken."""

    completed: int = 0
    broken: int = 0

    def __add__(self, other: PlanOutcomes) -> PlanOutcomes:
        return PlanOutcomes(self.completed + other.completed, self.broken + other.broken)


@dataclass(frozen=True, slots=True)
class ContactCounts:
    """Outbound contact attempts made (from the contact log), and whom they reached."""

    attempts: int = 0
    reached: int = 0  # anyone
    right_party: int = 0  # the debtor
    promises: int = 0  # attempts whose outcome was a promise to pay
    by_channel: Mapping[str, int] = field(default_factory=dict)

    def __add__(self, other: ContactCounts) -> ContactCounts:
        by_channel = dict(self.by_channel)
        for channel, count in other.by_channel.items():
            by_channel[channel] = by_channel.get(channel, 0) + count
        return ContactCounts(
            self.attempts + other.attempts,
            self.reached + other.reached,
            self.right_party + other.right_party,
            self.promises + other.promises,
            by_channel,
        )


@dataclass(frozen=True, slots=True)
class GroupFacts:
    """What the repository counts for one group of accounts; facts of groups add up."""

    buckets: tuple[BucketCount, ...] = ()
    transitions: tuple[Cell, ...] = ()
    delinquent_at_start: Cohort = Cohort()
    placed: Cohort = Cohort()
    collected: Collected = Collected()
    cures: Average = Average(0, 0)  # total days to cure over cures
    promises_due: PromiseOutcomes = PromiseOutcomes()
    pending_promises: tuple[PendingPromises, ...] = ()
    plans_ended: PlanOutcomes = PlanOutcomes()
    contacts: ContactCounts = ContactCounts()

    def __add__(self, other: GroupFacts) -> GroupFacts:
        return GroupFacts(
            buckets=self.buckets + other.buckets,
            transitions=self.transitions + other.transitions,
            delinquent_at_start=self.delinquent_at_start + other.delinquent_at_start,
            placed=self.placed + other.placed,
            collected=self.collected + other.collected,
            cures=self.cures + other.cures,
            promises_due=self.promises_due + other.promises_due,
            pending_promises=self.pending_promises + other.pending_promises,
            plans_ended=self.plans_ended + other.plans_ended,
            contacts=self.contacts + other.contacts,
        )


def total_of(facts: Iterable[GroupFacts]) -> GroupFacts:
    """Return the facts of all groups together (the groups added one to the next).

    Each part is added up once over the groups: adding the groups one by one re-copied the
    buckets, cells and pending promises gathered so far at every group (some thousand).
    """
    items = list(facts)
    by_channel: dict[str, int] = {}
    for item in items:
        for channel, count in item.contacts.by_channel.items():
            by_channel[channel] = by_channel.get(channel, 0) + count
    contacts = [item.contacts for item in items]
    return GroupFacts(
        buckets=tuple(chain.from_iterable(item.buckets for item in items)),
        transitions=tuple(chain.from_iterable(item.transitions for item in items)),
        delinquent_at_start=_cohort_total([item.delinquent_at_start for item in items]),
        placed=_cohort_total([item.placed for item in items]),
        collected=Collected(
            sum(item.collected.amount for item in items),
            sum(item.collected.payments for item in items),
            sum(item.collected.after_charge_off for item in items),
        ),
        cures=Average(
            sum(item.cures.total for item in items), sum(item.cures.count for item in items)
        ),
        promises_due=PromiseOutcomes(
            sum(item.promises_due.kept for item in items),
            sum(item.promises_due.partially_kept for item in items),
            sum(item.promises_due.broken for item in items),
            sum(item.promises_due.awaiting for item in items),
        ),
        pending_promises=tuple(chain.from_iterable(item.pending_promises for item in items)),
        plans_ended=PlanOutcomes(
            sum(item.plans_ended.completed for item in items),
            sum(item.plans_ended.broken for item in items),
        ),
        contacts=ContactCounts(
            sum(counts.attempts for counts in contacts),
            sum(counts.reached for counts in contacts),
            sum(counts.right_party for counts in contacts),
            sum(counts.promises for counts in contacts),
            by_channel,
        ),
    )


def _cohort_total(cohorts: Sequence[Cohort]) -> Cohort:
    return Cohort(
        sum(cohort.accounts for cohort in cohorts),
        sum(cohort.balance for cohort in cohorts),
        sum(cohort.collected for cohort in cohorts),
    )


# --- Stored facts: the finest groups of a day, re-added for any cut. ------------------------
#
# The daily refresh stores the account facts of the month to its day at the finest grain
# (every cut, ``CUTS``); a request re-adds them for the cuts it asks, takes out what the
# accounts touched since counted then and adds what they count now. Facts of groups add up,
# so the result is the one the live count gives.

FactsKey = tuple[str | None, ...]


def negated(facts: GroupFacts) -> GroupFacts:
    """Return facts that cancel ``facts`` when added (every count and amount negated)."""
    contacts = facts.contacts
    return GroupFacts(
        buckets=tuple(
            BucketCount(item.bucket, -item.accounts, -item.balance) for item in facts.buckets
        ),
        transitions=tuple(
            Cell(cell.from_bucket, cell.to_bucket, -cell.accounts, -cell.balance)
            for cell in facts.transitions
        ),
        delinquent_at_start=_negated_cohort(facts.delinquent_at_start),
        placed=_negated_cohort(facts.placed),
        collected=Collected(
            -facts.collected.amount, -facts.collected.payments, -facts.collected.after_charge_off
        ),
        cures=Average(-facts.cures.total, -facts.cures.count),
        promises_due=PromiseOutcomes(
            -facts.promises_due.kept,
            -facts.promises_due.partially_kept,
            -facts.promises_due.broken,
            -facts.promises_due.awaiting,
        ),
        pending_promises=tuple(
            PendingPromises(item.bucket, -item.promises, -item.amount)
            for item in facts.pending_promises
        ),
        plans_ended=PlanOutcomes(-facts.plans_ended.completed, -facts.plans_ended.broken),
        contacts=ContactCounts(
            -contacts.attempts,
            -contacts.reached,
            -contacts.right_party,
            -contacts.promises,
            {channel: -count for channel, count in contacts.by_channel.items()},
        ),
    )


def _negated_cohort(cohort: Cohort) -> Cohort:
    return Cohort(-cohort.accounts, -cohort.balance, -cohort.collected)


def settled(facts: GroupFacts) -> GroupFacts | None:
    """Return the facts with what cancelled out dropped, or ``None`` when nothing is left.

    Every fact the database counts has at least one account, payment, attempt or promise,
    so a bucket, cell or channel with none left is one the live count would not list.
    """
    buckets: dict[str, tuple[int, int]] = {}
    for item in facts.buckets:
        accounts, balance = buckets.get(item.bucket, (0, 0))
        buckets[item.bucket] = (accounts + item.accounts, balance + item.balance)
    cells = tuple(cell for cell in merged_cells(facts.transitions) if cell.accounts)
    contacts = facts.contacts
    channels = {channel: count for channel, count in contacts.by_channel.items() if count}
    pending = tuple(item for item in facts.pending_promises if item.promises)
    result = GroupFacts(
        buckets=tuple(
            BucketCount(bucket, accounts, balance)
            for bucket, (accounts, balance) in buckets.items()
            if accounts
        ),
        transitions=cells,
        delinquent_at_start=facts.delinquent_at_start,
        placed=facts.placed,
        collected=facts.collected,
        cures=facts.cures,
        promises_due=facts.promises_due,
        pending_promises=pending,
        plans_ended=facts.plans_ended,
        contacts=replace(contacts, by_channel=channels),
    )
    if (
        result.buckets
        or result.transitions
        or result.delinquent_at_start.accounts
        or result.placed.accounts
        or result.collected.payments
        or result.cures.count
        or result.promises_due != PromiseOutcomes()
        or result.pending_promises
        or result.plans_ended != PlanOutcomes()
        or result.contacts.attempts
    ):
        return result
    return None


def facts_to_json(facts: Mapping[FactsKey, GroupFacts]) -> list[dict[str, object]]:
    """Return the account facts of groups as plain JSON (promise and plan facts are not kept)."""
    rows: list[dict[str, object]] = []
    for key, item in facts.items():
        contacts = item.contacts
        rows.append(
            {
                "key": list(key),
                "buckets": [[b.bucket, b.accounts, b.balance] for b in item.buckets],
                "cells": [
                    [c.from_bucket, c.to_bucket, c.accounts, c.balance] for c in item.transitions
                ],
                "delinquent": _cohort_json(item.delinquent_at_start),
                "placed": _cohort_json(item.placed),
                "collected": [
                    item.collected.amount,
                    item.collected.payments,
                    item.collected.after_charge_off,
                ],
                "cures": [item.cures.total, item.cures.count],
                "contacts": [
                    contacts.attempts,
                    contacts.reached,
                    contacts.right_party,
                    contacts.promises,
                    dict(contacts.by_channel),
                ],
            }
        )
    return rows


def _cohort_json(cohort: Cohort) -> list[int]:
    return [cohort.accounts, cohort.balance, cohort.collected]


def facts_from_json(
    rows: Iterable[Mapping[str, object]],
    *,
    stored_cuts: Sequence[str] | None = None,
    cuts: Sequence[str] | None = None,
) -> dict[FactsKey, GroupFacts]:
    """Return the facts ``facts_to_json`` wrote, re-added into groups of ``cuts``.

    The rows are grouped by ``stored_cuts``; ``cuts`` (a subset of them, in any order) keeps
    only those positions of each key. Without either, each row is its own group. The rows are
    summed as plain numbers before any fact is built: a snapshot holds thousands of the finest
    groups and a request usually asks for a few.
    """
    positions = (
        None
        if stored_cuts is None or cuts is None
        else [list(stored_cuts).index(cut) for cut in cuts]
    )
    sums: dict[FactsKey, _Sums] = {}
    for row in rows:
        stored = _list(row["key"])
        key = tuple(
            None if value is None else str(value)
            for value in (stored if positions is None else [stored[at] for at in positions])
        )
        sums.setdefault(key, _Sums()).add(row)
    return {key: counted.facts() for key, counted in sums.items()}


class _Sums:
    """The numbers of stored rows added up, before they become ``GroupFacts``."""

    __slots__ = (
        "buckets",
        "by_channel",
        "cells",
        "collected",
        "contacts",
        "cures",
        "delinquent",
        "placed",
    )

    def __init__(self) -> None:
        self.buckets: dict[str, list[int]] = {}
        self.cells: dict[tuple[str, str], list[int]] = {}
        self.delinquent = [0, 0, 0]
        self.placed = [0, 0, 0]
        self.collected = [0, 0, 0]
        self.cures = [0, 0]
        self.contacts = [0, 0, 0, 0]
        self.by_channel: dict[str, int] = {}

    def add(self, row: Mapping[str, object]) -> None:
        for item in _list(row["buckets"]):
            bucket, accounts, balance = _list(item)
            counted = self.buckets.setdefault(str(bucket), [0, 0])
            counted[0] += int(accounts)
            counted[1] += int(balance)
        for item in _list(row["cells"]):
            from_bucket, to_bucket, accounts, balance = _list(item)
            counted = self.cells.setdefault((str(from_bucket), str(to_bucket)), [0, 0])
            counted[0] += int(accounts)
            counted[1] += int(balance)
        for total, name in (
            (self.delinquent, "delinquent"),
            (self.placed, "placed"),
            (self.collected, "collected"),
            (self.cures, "cures"),
        ):
            for position, value in enumerate(_list(row[name])):
                total[position] += int(value)
        contacts = _list(row["contacts"])
        for position in range(4):
            self.contacts[position] += int(contacts[position])
        by_channel = contacts[4]
        if isinstance(by_channel, dict):
            for channel, count in by_channel.items():
                self.by_channel[str(channel)] = self.by_channel.get(str(channel), 0) + int(count)

    def facts(self) -> GroupFacts:
        return GroupFacts(
            buckets=tuple(
                BucketCount(bucket, accounts, balance)
                for bucket, (accounts, balance) in self.buckets.items()
            ),
            transitions=tuple(
                Cell(from_bucket, to_bucket, accounts, balance)
                for (from_bucket, to_bucket), (accounts, balance) in self.cells.items()
            ),
            delinquent_at_start=Cohort(*self.delinquent),
            placed=Cohort(*self.placed),
            collected=Collected(*self.collected),
            cures=Average(*self.cures),
            contacts=ContactCounts(
                self.contacts[0],
                self.contacts[1],
                self.contacts[2],
                self.contacts[3],
                dict(self.by_channel),
            ),
        )


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"stored KPI facts hold {value!r} where a list belongs")
    return value


# --- One account's facts, counted over its own rows. -----------------------------------------
#
# A period served from a snapshot counts the accounts touched since twice: as the snapshot
# counted them (taken out) and as asked (added). Counted in SQL, each fact and each of the two
# walks every account's events and payments by index again; read once per account (its live
# events from the state before the earliest moment needed, its payments in the span) they are
# counted here, as the statements of ``repository`` count them, for both.

# A moment as the database orders it (its stored text on SQLite, a ``datetime`` elsewhere):
# comparing moments here compares them as the statements do.
Moment = Any
# States an account leaves the portfolio in (``portfolio.repository.EXIT_STATUSES``).
EXIT_STATES = LEFT_STATES | {CHARGED_OFF}


class AccountEvent(NamedTuple):
    """A live delinquency event of one account (its state from ``moment`` on).

    A tuple (tens of thousands are read per request): events sort by moment, then id.
    """

    moment: Moment
    id: int
    bucket: str
    status: str
    balance: int
    days_past_due: int


class AccountPayment(NamedTuple):
    """A payment of one account; ``after_charge_off`` when the account was charged off then."""

    moment: Moment
    amount: int
    after_charge_off: bool | None  # unknown (no status before): not
    reversed_at: Moment | None


@dataclass(frozen=True, slots=True)
class CountedSpan:
    """The moments one count of accounts is made over, as ``service.account_facts`` makes it.

    ``start`` and ``end`` bound the period (the roll-rate cells run from the state at ``start``
    to the state at ``end``), ``buckets_at`` is the portfolio's moment (the end of the day
    read); a payment reversed at or after ``reversed_before`` still counts (``None``: a reversed
    payment never does). ``facts`` names the facts counted (``GroupFacts`` fields).
    """

    start: Moment
    end: Moment
    buckets_at: Moment
    reversed_before: Moment | None
    facts: frozenset[str]


@dataclass(frozen=True, slots=True)
class AccountGroup:
    """An account's group key, but for the bucket: each fact puts its own bucket in."""

    key: FactsKey
    # Where the bucket goes in the key (``None``: not cut by bucket).
    bucket_at: int | None

    def with_bucket(self, bucket: str | None) -> FactsKey:
        """Return the key of a fact counted in ``bucket``."""
        at = self.bucket_at
        if at is None:
            return self.key
        return (*self.key[:at], bucket, *self.key[at + 1 :])


class FactsTally:
    """Facts of accounts added up per group as plain numbers, each account with a sign.

    ``count_account`` adds one account's facts (−1: taken out, as the snapshot counted them);
    ``facts`` returns them as ``GroupFacts`` once, per group.
    """

    __slots__ = ("sums",)

    def __init__(self) -> None:
        self.sums: dict[FactsKey, _Sums] = {}

    def of(self, key: FactsKey) -> _Sums:
        """Return the running sums of the group ``key``."""
        found = self.sums.get(key)
        if found is None:
            found = self.sums[key] = _Sums()
        return found

    def facts(self) -> dict[FactsKey, GroupFacts]:
        """Return the facts added up, per group."""
        return {key: counted.facts() for key, counted in self.sums.items()}


def count_account(
    tally: FactsTally,
    group: AccountGroup,
    events: Sequence[AccountEvent],
    payments: Sequence[AccountPayment],
    span: CountedSpan,
    *,
    sign: int,
    whole_days: Callable[[Moment, Moment], int],
) -> None:
    """Add one account's facts over ``span`` to ``tally``, times ``sign``.

    ``events`` are its live events in order (moment, then id) from the last one before the
    earliest moment counted; ``payments`` those paid in the moments counted. The facts are the
    ones ``repository`` counts in SQL: the bucket at ``buckets_at``; the roll-rate cell from the
    state at ``start`` to the one at ``end``; delinquent at ``start`` (with what it paid in the
    period); placed (turned delinquent in the period from current or unknown, with what it paid
    since); collected (by the bucket at ``start``); cures (by the bucket cured from, with the
    days past due then plus the whole days since: ``whole_days``, as the database counts them).
    """
    facts = span.facts
    start, end, buckets_at = span.start, span.end, span.buckets_at
    # The states at the three moments (the last event before each) in one pass: tens of
    # thousands of accounts are counted per request, each with a few events.
    at_start = at_end = state = None
    for event in events:
        moment = event.moment
        if moment < start:
            at_start = event
        if moment < end:
            at_end = event
        if moment < buckets_at:
            state = event
    if "buckets" in facts and state is not None and state.status not in EXIT_STATES:
        counted = tally.of(group.with_bucket(state.bucket)).buckets.setdefault(state.bucket, [0, 0])
        counted[0] += sign
        counted[1] += sign * state.balance
    if (
        "transitions" in facts
        and at_start is not None
        and at_end is not None
        and at_start.status not in EXIT_STATES
    ):
        to_state = at_end.status if at_end.status in EXIT_STATES else at_end.bucket
        cell = tally.of(group.with_bucket(at_start.bucket)).cells.setdefault(
            (at_start.bucket, to_state), [0, 0]
        )
        cell[0] += sign
        cell[1] += sign * at_start.balance
    reversed_before = span.reversed_before
    paid = (
        [
            payment
            for payment in payments
            if start <= payment.moment < end
            and (
                payment.reversed_at is None
                or (reversed_before is not None and payment.reversed_at >= reversed_before)
            )
        ]
        if payments
        else payments
    )
    if (
        "delinquent_at_start" in facts
        and at_start is not None
        and at_start.bucket != "M0"
        and at_start.status not in EXIT_STATES
    ):
        cohort = tally.of(group.with_bucket(at_start.bucket)).delinquent
        cohort[0] += sign
        cohort[1] += sign * at_start.balance
        cohort[2] += sign * sum(payment.amount for payment in paid)
    if "placed" in facts and (
        at_start is None or (at_start.bucket == "M0" and at_start.status not in EXIT_STATES)
    ):
        placement = next(
            (
                event
                for event in events
                if start <= event.moment < end
                and event.bucket != "M0"
                and event.status not in EXIT_STATES
            ),
            None,
        )
        if placement is not None:
            cohort = tally.of(group.with_bucket(placement.bucket)).placed
            cohort[0] += sign
            cohort[1] += sign * placement.balance
            cohort[2] += sign * sum(
                payment.amount for payment in paid if placement.moment <= payment.moment
            )
    if "collected" in facts and paid:
        collected = tally.of(
            group.with_bucket(None if at_start is None else at_start.bucket)
        ).collected
        for payment in paid:
            collected[0] += sign * payment.amount
            collected[1] += sign
            if payment.after_charge_off:
                collected[2] += sign * payment.amount
    if "cures" in facts and len(events) > 1:
        for prior, cure in pairwise(events):
            if (
                start <= cure.moment < end
                and cure.bucket == "M0"
                and cure.status not in EXIT_STATES
                and prior.bucket != "M0"
                and prior.status not in EXIT_STATES
            ):
                cures = tally.of(group.with_bucket(prior.bucket)).cures
                cures[0] += sign * (prior.days_past_due + whole_days(prior.moment, cure.moment))
                cures[1] += sign


def count_paid_between_starts(
    tally: FactsTally,
    group: AccountGroup,
    at_start: tuple[str, str] | None,
    payments: Sequence[tuple[int, bool]],
    *,
    sign: int,
    facts: frozenset[str],
) -> None:
    """Add what one account paid between two periods' starts to ``tally``, times ``sign``.

    For an account with no event between the starts nor between the ends, and no other
    payment there: both periods count it alike (``count_account``) but for these payments
    (amount, whether after charge-off), which only the earlier starting one holds. They are
    collected by the bucket at its start (``at_start``: bucket and status, ``None``: no state)
    and paid by the accounts delinquent then; never by the placed (placed later, by an event
    both periods hold).
    """
    if not payments:
        return
    bucket = None if at_start is None else at_start[0]
    if "collected" in facts:
        collected = tally.of(group.with_bucket(bucket)).collected
        for amount, after_charge_off in payments:
            collected[0] += sign * amount
            collected[1] += sign
            if after_charge_off:
                collected[2] += sign * amount
    if (
        "delinquent_at_start" in facts
        and at_start is not None
        and at_start[0] != "M0"
        and at_start[1] not in EXIT_STATES
    ):
        cohort = tally.of(group.with_bucket(bucket)).delinquent
        cohort[2] += sign * sum(amount for amount, _after in payments)


# --- The formulas. --------------------------------------------------------------------------


def portfolio_by_bucket(counts: Iterable[BucketCount]) -> list[BucketCount]:
    """Return every bucket M0…M6+ in order with its accounts and balance (zeros where empty)."""
    accounts = dict.fromkeys(BUCKETS, 0)
    balances = dict.fromkeys(BUCKETS, 0)
    for count in counts:
        accounts[count.bucket] += count.accounts
        balances[count.bucket] += count.balance
    return [BucketCount(bucket, accounts[bucket], balances[bucket]) for bucket in BUCKETS]


def move_of(from_bucket: str, to_state: str) -> Move:
    """Return how an account moved: forward (incl. charge-off), stay, roll back, cure, or left.

    A cure is a delinquent account back in M0; a roll back is a lower bucket that is not M0.
    An account settled or closed has left the portfolio, which is not a cure.
    """
    if to_state == CHARGED_OFF:
        return "forward"
    if to_state in LEFT_STATES:
        return "left"
    start, end = bucket_rank(from_bucket), bucket_rank(to_state)
    if end > start:
        return "forward"
    if end == start:
        return "stay"
    return "cure" if end == 0 else "roll_back"


@dataclass(frozen=True, slots=True)
class RollSummary:
    """Where the accounts of one bucket went, as shares by count and by start balance."""

    from_bucket: str
    accounts: int
    balance: int
    by_count: Mapping[Move, Rate]
    by_balance: Mapping[Move, Rate]


# The shares of a bucket no account started in: one map for every such bucket and group (most
# groups of a fine cut hold few buckets); never changed.
NO_MOVES: Mapping[Move, Rate] = dict.fromkeys(MOVES, NO_DATA)


# The summary of a bucket no account started in, per bucket (frozen, shared by every group).
EMPTY_SUMMARIES: Mapping[str, RollSummary] = {
    bucket: RollSummary(bucket, 0, 0, NO_MOVES, NO_MOVES) for bucket in BUCKETS
}


def roll_summary(cells: Iterable[Transition]) -> list[RollSummary]:
    """Return, for every bucket M0…M6+, the share of accounts and balance per move."""
    # Only the buckets some cell starts in are counted: a group of a fine cut holds few.
    counted: dict[str, tuple[dict[Move, int], dict[Move, int]]] = {}
    for cell in cells:
        if cell.from_bucket not in EMPTY_SUMMARIES:
            raise KeyError(cell.from_bucket)
        move = move_of(cell.from_bucket, cell.to_bucket)
        moves = counted.get(cell.from_bucket)
        if moves is None:
            moves = counted[cell.from_bucket] = (dict.fromkeys(MOVES, 0), dict.fromkeys(MOVES, 0))
        moves[0][move] += cell.accounts
        moves[1][move] += cell.balance
    summaries = []
    for bucket in BUCKETS:
        moves = counted.get(bucket)
        count_total = sum(moves[0].values()) if moves else 0
        balance_total = sum(moves[1].values()) if moves else 0
        if moves is None or (not count_total and not balance_total):
            # Most groups of a fine cut hold few buckets: an empty one shares "no data".
            summaries.append(EMPTY_SUMMARIES[bucket])
            continue
        accounts, balances = moves
        summaries.append(
            RollSummary(
                from_bucket=bucket,
                accounts=count_total,
                balance=balance_total,
                by_count={move: Rate(accounts[move], count_total) for move in MOVES},
                by_balance={move: Rate(balances[move], balance_total) for move in MOVES},
            )
        )
    return summaries


def cure_rate(cells: Iterable[Transition]) -> tuple[Rate, Rate]:
    """Return the share of delinquent accounts (by count, by balance) current at the end."""
    by_count, by_balance = NO_DATA, NO_DATA
    for cell in cells:
        if cell.from_bucket == "M0":
            continue
        cured = cell.to_bucket == "M0"
        by_count += Rate(cell.accounts if cured else 0, cell.accounts)
        by_balance += Rate(cell.balance if cured else 0, cell.balance)
    return by_count, by_balance


def recovery_rate(delinquent_at_start: Cohort) -> Rate:
    """Return collected in the period ÷ the balance delinquent at its start (same accounts)."""
    return Rate(delinquent_at_start.collected, delinquent_at_start.balance)


def liquidation_rate(placed: Cohort) -> Rate:
    """Return collected since placement ÷ the balance placed (turned delinquent) in the period."""
    return Rate(placed.collected, placed.balance)


def days_to_cure(*, days_past_due_before: int, days_since: int) -> int:
    """Return how long an account was delinquent when it cured.

    ``days_past_due_before`` is its days past due at its last delinquent state, ``days_since``
    the whole days from that state to the cure (days past due grow a day a day in between).
    """
    return days_past_due_before + days_since


def promise_kept_rate(outcomes: PromiseOutcomes) -> Rate:
    """Return promises kept ÷ promises that fell due and were decided."""
    return Rate(outcomes.kept, outcomes.decided)


def promise_partially_kept_rate(outcomes: PromiseOutcomes) -> Rate:
    """Return promises partially kept ÷ promises that fell due and were decided."""
    return Rate(outcomes.partially_kept, outcomes.decided)


ProbabilitySource = Literal["bucket", "institution", "none"]


@dataclass(frozen=True, slots=True)
class KeptProbability:
    """P(kept): the institution's kept rate over recent promises, by bucket where enough."""

    overall: Rate
    by_bucket: Mapping[str, Rate]
    minimum: int

    def for_bucket(self, bucket: str | None) -> tuple[Rate, ProbabilitySource]:
        """Return the kept rate to use for a bucket's promises, and where it came from."""
        own = self.by_bucket.get(bucket) if bucket is not None else None
        if own is not None and own.denominator >= self.minimum:
            return own, "bucket"
        if self.overall.denominator == 0:
            return self.overall, "none"
        return self.overall, "institution"


def kept_probability(
    history: Mapping[str | None, PromiseOutcomes], *, minimum: int
) -> KeptProbability:
    """Return P(kept) from decided promises by bucket (``None``: bucket unknown).

    A bucket with at least ``minimum`` decided promises uses its own kept rate; the others,
    the institution's over all buckets.
    """
    overall = NO_DATA
    by_bucket: dict[str, Rate] = {}
    for bucket, outcomes in history.items():
        rate = promise_kept_rate(outcomes)
        overall += rate
        if bucket is not None:
            by_bucket[bucket] = by_bucket.get(bucket, NO_DATA) + rate
    return KeptProbability(overall=overall, by_bucket=by_bucket, minimum=minimum)


@dataclass(frozen=True, slots=True)
class ForecastLine:
    """The cash expected from one bucket's open promises."""

    bucket: str | None
    promises: int
    amount: int
    probability: Rate
    source: ProbabilitySource
    expected: int | None


@dataclass(frozen=True, slots=True)
class PromiseForecast:
    """Cash expected from open promises: Σ amount left × P(kept) (None without any history)."""

    promises: int
    amount: int
    expected: int | None
    lines: tuple[ForecastLine, ...]


def share_of(amount: int, rate: Rate) -> int | None:
    """Return ``amount × rate`` in whole minor units, half up (None when the rate has no data)."""
    if rate.denominator == 0:
        return None
    return (2 * amount * rate.numerator + rate.denominator) // (2 * rate.denominator)


def promise_forecast(
    pending: Iterable[PendingPromises], probability: KeptProbability
) -> PromiseForecast:
    """Return the cash expected from open promises, bucket by bucket."""
    promises: dict[str | None, int] = {}
    amounts: dict[str | None, int] = {}
    for item in pending:
        promises[item.bucket] = promises.get(item.bucket, 0) + item.promises
        amounts[item.bucket] = amounts.get(item.bucket, 0) + item.amount
    lines = []
    for bucket in sorted(promises, key=_bucket_order):
        rate, source = probability.for_bucket(bucket)
        lines.append(
            ForecastLine(
                bucket=bucket,
                promises=promises[bucket],
                amount=amounts[bucket],
                probability=rate,
                source=source,
                expected=share_of(amounts[bucket], rate),
            )
        )
    known = [line.expected for line in lines]
    return PromiseForecast(
        promises=sum(promises.values()),
        amount=sum(amounts.values()),
        expected=None if None in known else sum(value or 0 for value in known),
        lines=tuple(lines),
    )


def _bucket_order(bucket: str | None) -> int:
    return len(BUCKETS) if bucket is None else bucket_rank(bucket)


def plan_kept_rate(plans: PlanOutcomes) -> Rate:
    """Return payment plans completed ÷ plans that ended (completed or broken)."""
    return Rate(plans.completed, plans.completed + plans.broken)


# --- Contact KPIs, from the contact log. ------------------------------------------------------


def contact_rate(*, attempts: int, contacts: int) -> Rate:
    """Return attempts that reached anyone ÷ attempts."""
    return Rate(contacts, attempts)


def right_party_contact_rate(*, attempts: int, right_party_contacts: int) -> Rate:
    """Return attempts that reached the debtor ÷ attempts."""
    return Rate(right_party_contacts, attempts)


def promise_rate(*, right_party_contacts: int, promises: int) -> Rate:
    """Return promises to pay made ÷ right-party contacts."""
    return Rate(promises, right_party_contacts)


@dataclass(frozen=True, slots=True)
class Pricing:
    """What one contact costs per channel, in major units, and the currency's decimals."""

    costs: Mapping[str, Decimal]
    minor_digits: int


def collection_cost(attempts: Mapping[str, int], pricing: Pricing) -> int | None:
    """Return what the attempts cost, in minor units (half up), from per-channel unit costs.

    ``None`` when a channel that was used has no cost set: unknown, not free.
    """
    total = Decimal(0)
    for channel, count in attempts.items():
        if count and channel not in pricing.costs:
            return None
        total += pricing.costs.get(channel, Decimal(0)) * count
    return int(total.scaleb(pricing.minor_digits).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def cost_per_amount_collected(*, cost: int, collected: int) -> Rate:
    """Return collection cost ÷ amount collected (both in minor units)."""
    return Rate(cost, collected)


# --- From facts to KPIs. ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kpis:
    """Every KPI of one group of accounts (or of all of them)."""

    buckets: list[BucketCount]
    accounts: int
    balance: int
    roll_rates: list[RollSummary]
    transitions: tuple[Cell, ...]
    cure_rate_by_count: Rate
    cure_rate_by_balance: Rate
    collected: Collected
    delinquent_at_start: Cohort
    recovery_rate: Rate
    placed: Cohort
    liquidation_rate: Rate
    average_days_to_cure: Average
    promises_due: PromiseOutcomes
    promise_kept_rate: Rate
    promise_partially_kept_rate: Rate
    promise_forecast: PromiseForecast
    plans_ended: PlanOutcomes
    plan_kept_rate: Rate
    contacts: ContactCounts
    contact_rate: Rate
    right_party_contact_rate: Rate
    promise_rate: Rate
    contact_cost: int | None
    cost_per_amount_collected: Rate | None


def kpis_of(facts: GroupFacts, probability: KeptProbability, pricing: Pricing) -> Kpis:
    """Return the KPIs of a group's facts; P(kept) is the institution's, whatever the group."""
    buckets = portfolio_by_bucket(facts.buckets)
    transitions = merged_cells(facts.transitions)
    by_count, by_balance = cure_rate(transitions)
    contacts = facts.contacts
    cost = collection_cost(contacts.by_channel, pricing)
    return Kpis(
        buckets=buckets,
        accounts=sum(item.accounts for item in buckets),
        balance=sum(item.balance for item in buckets),
        roll_rates=roll_summary(transitions),
        transitions=transitions,
        cure_rate_by_count=by_count,
        cure_rate_by_balance=by_balance,
        collected=facts.collected,
        delinquent_at_start=facts.delinquent_at_start,
        recovery_rate=recovery_rate(facts.delinquent_at_start),
        placed=facts.placed,
        liquidation_rate=liquidation_rate(facts.placed),
        average_days_to_cure=facts.cures,
        promises_due=facts.promises_due,
        promise_kept_rate=promise_kept_rate(facts.promises_due),
        promise_partially_kept_rate=promise_partially_kept_rate(facts.promises_due),
        promise_forecast=promise_forecast(facts.pending_promises, probability),
        plans_ended=facts.plans_ended,
        plan_kept_rate=plan_kept_rate(facts.plans_ended),
        contacts=contacts,
        contact_rate=contact_rate(attempts=contacts.attempts, contacts=contacts.reached),
        right_party_contact_rate=right_party_contact_rate(
            attempts=contacts.attempts, right_party_contacts=contacts.right_party
        ),
        promise_rate=promise_rate(
            right_party_contacts=contacts.right_party, promises=contacts.promises
        ),
        contact_cost=cost,
        cost_per_amount_collected=(
            None
            if cost is None
            else cost_per_amount_collected(cost=cost, collected=facts.collected.amount)
        ),
    )


def merged_cells(cells: Sequence[Transition]) -> tuple[Cell, ...]:
    """Return roll-rate cells with the same from and to states added up, in bucket order."""
    accounts: dict[tuple[str, str], int] = {}
    balances: dict[tuple[str, str], int] = {}
    for cell in cells:
        key = (cell.from_bucket, cell.to_bucket)
        accounts[key] = accounts.get(key, 0) + cell.accounts
        balances[key] = balances.get(key, 0) + cell.balance
    return tuple(
        Cell(
            from_bucket,
            to_state,
            accounts[(from_bucket, to_state)],
            balances[(from_bucket, to_state)],
        )
        for from_bucket, to_state in sorted(accounts, key=_cell_order)
    )


def _cell_order(key: tuple[str, str]) -> tuple[int, int, str]:
    from_bucket, to_state = key
    to_rank = bucket_rank(to_state) if to_state in BUCKETS else len(BUCKETS)
    return bucket_rank(from_bucket), to_rank, to_state


# --- Fair comparisons: agents and regions against what their bucket mix predicts. ------------
#
# An agent working M4 accounts reaches fewer debtors than one working M1 accounts, and a
# region with more late accounts cures fewer of them: ranking on raw rates ranks the mix. So
# each figure comes with what the *mix* predicts: for every bucket the group worked, how much
# of it the bucket's rate over everyone compared would give (Σ_b base_b × rate_b), and the
# index actual ÷ expected (1.0: as the mix predicts; 1.2: 20 % better; for blocks and
# violations, higher is worse). ``docs/kpis.md`` defines each figure.

# A worked day is the span from its first attempt's start to its last attempt's end, at least
# this long, so a day of a single short call does not make thousands of attempts an hour.
MIN_WORKED_SECONDS_PER_DAY = 15 * 60


@dataclass(frozen=True, slots=True)
class Compared:
    """A figure and what the mix predicts for it; ``index`` is actual ÷ expected."""

    actual: float | None
    expected: float | None

    @property
    def index(self) -> float | None:
        """Actual ÷ expected, or ``None`` when either is unknown or nothing was expected."""
        if self.actual is None or self.expected is None or self.expected == 0:
            return None
        return self.actual / self.expected


@dataclass(frozen=True, slots=True)
class WorkedDay:
    """One agent's day of contact attempts: the first start and the last end, in seconds."""

    day: date
    first: float  # seconds since an epoch, any, the same for ``last``
    last: float


def worked_seconds(days: Iterable[WorkedDay]) -> int:
    """Return the time worked over days: each day's span, at least the day minimum."""
    return sum(max(round(day.last - day.first), MIN_WORKED_SECONDS_PER_DAY) for day in days)


def expected_count(
    base: Mapping[str | None, int], rates: Mapping[str | None, Rate]
) -> float | None:
    """Return Σ over buckets of ``base[b] × rates[b]``: what the mix predicts.

    A bucket with a base but no rate over everyone compared (cannot happen when the group is
    one of them) makes the expectation unknown (``None``); buckets with no base add nothing.
    """
    total = 0.0
    for bucket, count in base.items():
        if count == 0:
            continue
        rate = rates.get(bucket, NO_DATA).value
        if rate is None:
            return None
        total += count * rate
    return total


def rates_by_bucket(
    numerators: Iterable[Mapping[str | None, int]], denominators: Iterable[Mapping[str | None, int]]
) -> dict[str | None, Rate]:
    """Return, per bucket, Σ numerators ÷ Σ denominators over every group compared."""
    top: dict[str | None, int] = {}
    bottom: dict[str | None, int] = {}
    for mapping in numerators:
        for bucket, count in mapping.items():
            top[bucket] = top.get(bucket, 0) + count
    for mapping in denominators:
        for bucket, count in mapping.items():
            bottom[bucket] = bottom.get(bucket, 0) + count
    return {bucket: Rate(top.get(bucket, 0), count) for bucket, count in bottom.items()}


def _share(numerator: float | None, denominator: float) -> float | None:
    return None if numerator is None or denominator == 0 else numerator / denominator


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """What one agent did in a period, by bucket (the account's bucket at the time).

    ``attempts``/``right_party``/``promises_made``: outbound attempts they made, by the bucket
    when made; ``promises_decided``/``promises_kept``: promises they took that fell due in the
    period and were decided, by the bucket when promised; ``balance``/``collected``: accounts
    in the cases they own, delinquent at the period's start, by that bucket, and what those paid in
    the period; ``decisions``/``blocks``: gate decisions on contacts they planned, and the
    blocked ones; ``violations``: review findings in their notes.
    """

    agent_id: int
    attempts: Mapping[str | None, int] = field(default_factory=dict)
    right_party: Mapping[str | None, int] = field(default_factory=dict)
    promises_made: Mapping[str | None, int] = field(default_factory=dict)
    promises_decided: Mapping[str | None, int] = field(default_factory=dict)
    promises_kept: Mapping[str | None, int] = field(default_factory=dict)
    balance: Mapping[str | None, int] = field(default_factory=dict)
    collected: Mapping[str | None, int] = field(default_factory=dict)
    worked_days: tuple[WorkedDay, ...] = ()
    decisions: int = 0
    blocks: int = 0
    violations: int = 0


@dataclass(frozen=True, slots=True)
class AgentEfficiency:
    """One agent's figures, each with what their bucket mix predicts."""

    agent_id: int
    attempts: int
    right_party_contacts: int
    promises: int
    worked_days: int
    worked_hours: float
    attempts_per_hour: Compared
    rpc_per_hour: Compared
    promises_per_hour: Compared
    right_party_rate: Compared
    kept_rate: Compared
    collected: Compared
    block_rate: Compared
    violations: Compared
    # The mean of the indexes that are known, blocks and violations left out: the rank.
    overall_index: float | None


def _total(mapping: Mapping[str | None, int]) -> int:
    return sum(mapping.values())


def agent_efficiency(agents: Sequence[AgentFacts]) -> list[AgentEfficiency]:
    """Return every agent's figures against their mix, the rates being over ``agents`` together.

    - pace: attempts per worked hour; expected: everyone's attempts ÷ everyone's hours;
    - RPC and promises per hour: expected = everyone's pace × the share of attempts their
      buckets' attempts turn into RPCs (promises) over everyone;
    - RPC rate per attempt and kept rate of their promises: expected = Σ_b base_b × rate_b ÷ base;
    - collected: expected = Σ_b balance_b × (everyone's collected_b ÷ balance_b);
    - blocks per gate decision: expected = everyone's block share;
    - violations: expected = their attempts × everyone's violations per attempt.
    """
    rpc_rates = rates_by_bucket((a.right_party for a in agents), (a.attempts for a in agents))
    promise_rates = rates_by_bucket((a.promises_made for a in agents), (a.attempts for a in agents))
    kept_rates = rates_by_bucket(
        (a.promises_kept for a in agents), (a.promises_decided for a in agents)
    )
    recovery_rates = rates_by_bucket((a.collected for a in agents), (a.balance for a in agents))
    all_attempts = sum(_total(a.attempts) for a in agents)
    all_hours = sum(worked_seconds(a.worked_days) for a in agents) / 3600
    pace = None if all_hours == 0 else all_attempts / all_hours
    block_share = Rate(sum(a.blocks for a in agents), sum(a.decisions for a in agents)).value
    violation_share = Rate(sum(a.violations for a in agents), all_attempts).value
    result = []
    for agent in agents:
        attempts = _total(agent.attempts)
        rpc = _total(agent.right_party)
        promises = _total(agent.promises_made)
        hours = worked_seconds(agent.worked_days) / 3600
        rpc_share = _share(expected_count(agent.attempts, rpc_rates), attempts)
        promise_share = _share(expected_count(agent.attempts, promise_rates), attempts)
        decided = _total(agent.promises_decided)
        figures = AgentEfficiency(
            agent_id=agent.agent_id,
            attempts=attempts,
            right_party_contacts=rpc,
            promises=promises,
            worked_days=len(agent.worked_days),
            worked_hours=hours,
            attempts_per_hour=Compared(_share(attempts, hours), pace if hours else None),
            rpc_per_hour=Compared(
                _share(rpc, hours),
                None if pace is None or rpc_share is None or not hours else pace * rpc_share,
            ),
            promises_per_hour=Compared(
                _share(promises, hours),
                None
                if pace is None or promise_share is None or not hours
                else pace * promise_share,
            ),
            right_party_rate=Compared(_share(rpc, attempts), rpc_share),
            kept_rate=Compared(
                _share(_total(agent.promises_kept), decided),
                _share(expected_count(agent.promises_decided, kept_rates), decided),
            ),
            collected=Compared(
                float(_total(agent.collected)) if _total(agent.balance) else None,
                expected_count(agent.balance, recovery_rates) if _total(agent.balance) else None,
            ),
            block_rate=Compared(
                _share(agent.blocks, agent.decisions),
                block_share if agent.decisions else None,
            ),
            violations=Compared(
                float(agent.violations),
                None if violation_share is None else attempts * violation_share,
            ),
            overall_index=None,
        )
        known = [
            value
            for value in (
                figures.attempts_per_hour.index,
                figures.right_party_rate.index,
                figures.promises_per_hour.index,
                figures.kept_rate.index,
                figures.collected.index,
            )
            if value is not None
        ]
        result.append(replace(figures, overall_index=sum(known) / len(known) if known else None))
    return sorted(result, key=_rank_order)


def _rank_order(item: AgentEfficiency) -> tuple[bool, float, int]:
    index = item.overall_index
    return (index is None, -(index or 0.0), item.agent_id)


@dataclass(frozen=True, slots=True)
class RegionFacts:
    """One region's facts in a period, by bucket: contact attempts made (bucket when made) and
    accounts delinquent at the period's start (by that bucket) and those of them cured."""

    region: tuple[str | None, ...]
    attempts: Mapping[str | None, int] = field(default_factory=dict)
    reached: Mapping[str | None, int] = field(default_factory=dict)
    right_party: Mapping[str | None, int] = field(default_factory=dict)
    promises: Mapping[str | None, int] = field(default_factory=dict)
    delinquent: Mapping[str | None, int] = field(default_factory=dict)
    cured: Mapping[str | None, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegionDifficulty:
    """A region's contact, PTP and cure rates against what its bucket mix predicts."""

    region: tuple[str | None, ...]
    attempts: int
    delinquent: int
    contact_rate: Compared
    ptp_rate: Compared
    cure_rate: Compared
    # The mean of the known indexes; below 1: harder than the portfolio mix explains.
    overall_index: float | None


def region_difficulty(regions: Sequence[RegionFacts]) -> list[RegionDifficulty]:
    """Return every region's rates against the rates its mix predicts (over all regions).

    contact rate = reached ÷ attempts; PTP rate = promises ÷ right-party contacts; cure rate =
    delinquent at the start and current at the end ÷ delinquent at the start. Expected: the
    same rate per bucket over every region, weighted by the region's own base per bucket.
    """
    contact_rates = rates_by_bucket((r.reached for r in regions), (r.attempts for r in regions))
    ptp_rates = rates_by_bucket((r.promises for r in regions), (r.right_party for r in regions))
    cure_rates = rates_by_bucket((r.cured for r in regions), (r.delinquent for r in regions))
    result = []
    for region in regions:
        attempts, rpc = _total(region.attempts), _total(region.right_party)
        delinquent = _total(region.delinquent)
        contact = Compared(
            _share(_total(region.reached), attempts),
            _share(expected_count(region.attempts, contact_rates), attempts),
        )
        ptp = Compared(
            _share(_total(region.promises), rpc),
            _share(expected_count(region.right_party, ptp_rates), rpc),
        )
        cure = Compared(
            _share(_total(region.cured), delinquent),
            _share(expected_count(region.delinquent, cure_rates), delinquent),
        )
        known = [c.index for c in (contact, ptp, cure) if c.index is not None]
        result.append(
            RegionDifficulty(
                region=region.region,
                attempts=attempts,
                delinquent=delinquent,
                contact_rate=contact,
                ptp_rate=ptp,
                cure_rate=cure,
                overall_index=sum(known) / len(known) if known else None,
            )
        )
    return sorted(result, key=_region_order)


def _region_order(item: RegionDifficulty) -> tuple[bool, float, tuple[str, ...]]:
    index = item.overall_index
    return (index is None, index or 0.0, tuple(part or "" for part in item.region))
