"""KPI formulas, pure: rates that keep what they were computed from, and the facts behind them.

Every rate is a ``Rate(numerator, denominator)`` whose ``value`` is ``None`` when the
denominator is 0: an empty state is "no data", never 0 %. Money is integer minor units of the
institution's currency. The repository counts *facts* per group of accounts in SQL
(``GroupFacts``); facts add up, so the institution's total is the sum of its groups, and
``kpis_of`` turns facts into KPIs. ``docs/kpis.md`` defines every KPI with an example.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, Protocol

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
    """Return the facts of all groups together."""
    total = GroupFacts()
    for item in facts:
        total = total + item
    return total


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
    by_count: dict[Move, Rate]
    by_balance: dict[Move, Rate]


def roll_summary(cells: Iterable[Transition]) -> list[RollSummary]:
    """Return, for every bucket M0…M6+, the share of accounts and balance per move."""
    accounts = {bucket: dict.fromkeys(MOVES, 0) for bucket in BUCKETS}
    balances = {bucket: dict.fromkeys(MOVES, 0) for bucket in BUCKETS}
    for cell in cells:
        move = move_of(cell.from_bucket, cell.to_bucket)
        accounts[cell.from_bucket][move] += cell.accounts
        balances[cell.from_bucket][move] += cell.balance
    summaries = []
    for bucket in BUCKETS:
        count_total = sum(accounts[bucket].values())
        balance_total = sum(balances[bucket].values())
        summaries.append(
            RollSummary(
                from_bucket=bucket,
                accounts=count_total,
                balance=balance_total,
                by_count={move: Rate(accounts[bucket][move], count_total) for move in MOVES},
                by_balance={move: Rate(balances[bucket][move], balance_total) for move in MOVES},
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
