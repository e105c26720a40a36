"""Pure decisions of the daily aggregates and the dashboards built on them.

Which days a refresh rewrites, which days get a portfolio snapshot, the previous period a
headline is compared with, the bucket waterfall, and when an alert is raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from recoup.analytics.rules import Rate

# A first refresh fills this many days of history; later ones rewrite the days since the last
# refresh plus this many before it (late reports, promises reconciled after their grace).
BACKFILL_DAYS = 366
RELOOK_DAYS = 7


def refresh_range(
    as_of: date, *, refreshed_through: date | None, grace_days: int
) -> tuple[date, date]:
    """Return the first and last day a refresh up to ``as_of`` rewrites.

    Never refreshed: the ``BACKFILL_DAYS`` up to ``as_of``. Else from the day after the last
    refresh, but at least ``RELOOK_DAYS`` plus the promise grace days back, so promises
    decided and contacts reported late are counted on their day.
    """
    if refreshed_through is None:
        return as_of - timedelta(days=BACKFILL_DAYS - 1), as_of
    relook = as_of - timedelta(days=RELOOK_DAYS + grace_days)
    return min(refreshed_through + timedelta(days=1), relook), as_of


def changed_days(stored: Mapping[date, int], found: Mapping[date, int]) -> list[date]:
    """Return the days whose stored count differs from the count found now, in order.

    For rows that are only ever added (the gate's decisions), a day holding as many as its
    stored aggregates counted holds the same rows: its aggregates need no rewrite.
    """
    return sorted(day for day in {*stored, *found} if stored.get(day, 0) != found.get(day, 0))


def snapshot_days(first: date, last: date) -> list[date]:
    """Return the days of a range that get a portfolio snapshot: month ends, and the last day."""
    days = []
    day = _month_end(first)
    while day < last:
        days.append(day)
        day = _month_end(day + timedelta(days=1))
    days.append(last)
    return days


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def month_start(day: date) -> date:
    """Return the first day of ``day``'s month."""
    return day.replace(day=1)


@dataclass(frozen=True, slots=True)
class Span:
    """Days counted, both ends included."""

    first: date
    last: date

    @property
    def days(self) -> int:
        """How many days the span covers."""
        return (self.last - self.first).days + 1


def previous_span(span: Span) -> Span:
    """Return the span of the same length that ends the day before ``span`` starts."""
    last = span.first - timedelta(days=1)
    return Span(last - timedelta(days=span.days - 1), last)


@dataclass(frozen=True, slots=True)
class Headline:
    """A headline figure now and in the previous period (``None``: no data)."""

    key: str
    unit: str  # "money" (minor units), "percent" (a share 0…1), "count", "days"
    current: float | None
    previous: float | None
    # Whether a rise is good news (collected) or bad (broken promises, blocks).
    higher_is_better: bool = True

    @property
    def change(self) -> float | None:
        """Current − previous (in the unit; for shares, percentage points ÷ 100)."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def relative_change(self) -> float | None:
        """(current − previous) ÷ previous, or ``None`` when previous is 0 or unknown."""
        if self.current is None or not self.previous:
            return None
        return (self.current - self.previous) / self.previous

    @property
    def good(self) -> bool | None:
        """Whether the change is good news (``None``: no change or unknown)."""
        change = self.change
        if change is None or change == 0:
            return None
        return (change > 0) == self.higher_is_better


@dataclass(frozen=True, slots=True)
class Step:
    """One bar of the bucket waterfall: where it starts and how much it adds."""

    label: str
    base: int
    value: int


def waterfall(balances: Sequence[tuple[str, int]]) -> list[Step]:
    """Return each bucket's balance stacked on the ones before it, then the total."""
    steps, running = [], 0
    for label, value in balances:
        steps.append(Step(label, running, value))
        running += value
    steps.append(Step("total", 0, running))
    return steps


def share(numerator: int, denominator: int) -> float | None:
    """Return numerator ÷ denominator, ``None`` without a denominator."""
    return Rate(numerator, denominator).value


# --- Alerts. ------------------------------------------------------------------------------------

SPIKE_FACTOR = 1.5
MIN_SPIKE_COUNT = 5
DRIFT_PSI = 0.25


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a manager should look at: its kind, severity and the figures behind it."""

    kind: str  # drift, broken_promises, compliance, backlog
    severity: str  # warning, danger
    values: Mapping[str, str]


def spike(
    *, recent: int, recent_base: int, before: int, before_base: int
) -> tuple[float, float] | None:
    """Return (recent rate, earlier rate) when the recent rate is a spike, else ``None``.

    A spike: at least ``MIN_SPIKE_COUNT`` recent events, and a recent rate at least
    ``SPIKE_FACTOR`` times the earlier one (any rate when there was none before).
    """
    if recent < MIN_SPIKE_COUNT or recent_base == 0:
        return None
    now = recent / recent_base
    then = before / before_base if before_base else 0.0
    if now >= SPIKE_FACTOR * then and now > then:
        return now, then
    return None


@dataclass(frozen=True, slots=True)
class QueueLoad:
    """A queue's open cases nobody owns and its members' daily capacity."""

    code: str
    unassigned: int
    capacity: int


def backlog_alerts(queues: Iterable[QueueLoad]) -> list[Alert]:
    """Raise a backlog alert for each queue with more unassigned cases than a day's capacity."""
    return [
        Alert(
            "backlog",
            "danger" if queue.unassigned > 2 * max(queue.capacity, 1) else "warning",
            {"queue": queue.code, "cases": str(queue.unassigned), "capacity": str(queue.capacity)},
        )
        for queue in queues
        if queue.unassigned > queue.capacity
    ]
