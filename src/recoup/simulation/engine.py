"""The day loop: a strategy run on a simulated portfolio by the product's own pure rules.

Each simulated day does what the daily cycle does, on numpy columns in memory instead of
tables: age the accounts (``portfolio.rules.bucket_for``), judge promises and plans, score
(``rules.observed_propensity``), segment (``strategy.rules.segment_of``, ``arms_of``), step
(``step_indexes``, ``step_for_event``, ``route_event``), plan the day's contacts, give agents
their calls and visits by value (``allocation.rules.greedy``) within capacity and the cost
ceiling, ask the compliance gate (``compliance.gate.rules.decide_batch``, the gate the
institution's pack and policy compile to) and make only what it allows. Then the behaviour
model (``simulation.rules``) answers: who was reached, who promised, disputed, complained,
asked for a plan, and who paid.

How the engine reads a path (documented in docs/simulation.md): a message step (SMS, e-mail,
AI call, letter) is sent once, on the day the case reaches it; a worked step (call, visit)
stays on the agents' list until it reaches the debtor or has been tried ``call_retries`` days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from recoup.allocation.rules import AgentSlot
from recoup.compliance.gate.rules import (
    ContactHistory,
    DebtorFacts,
    Gate,
    PastContact,
    PlannedContact,
    decide_batch,
    in_local_days,
)
from recoup.contact.channels import CHANNELS as CHANNEL_PROPERTIES
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from recoup.cycle.rules import PLANNED_TIME, ActionKind, blocked_counts
from recoup.portfolio.rules import bucket_for
from recoup.simulation import rules
from recoup.simulation.params import Params
from recoup.strategy.document import StrategyEvent
from recoup.strategy.rules import (
    CompiledStrategy,
    EventFacts,
    arms_of,
    route_event,
    segment_of,
    step_for_event,
    step_indexes,
)

NEVER = 1 << 30
HISTORY_DAYS = 8  # the gate's caps look back 7 days; older contacts are dropped
PROMISE_NONE, PROMISE_PENDING, PROMISE_KEPT, PROMISE_BROKEN = range(4)
PLAN_NONE, PLAN_ACTIVE, PLAN_BROKEN, PLAN_COMPLETED = range(4)
PROMISE_STATES = np.array(["none", "pending", "kept", "broken"], dtype=object)
PLAN_STATES = np.array(["none", "active", "broken", "completed"], dtype=object)
CONSENTED = frozenset(c for c, p in CHANNEL_PROPERTIES.items() if p.needs_consent)
GATE_CHANNEL = {code: Channel(name) for code, name in enumerate(rules.CHANNELS)}
FIRST_CALL = time(9, 30)
CALL_HOURS = 11.0  # agents call from 09:30 to 20:30


@dataclass(frozen=True, slots=True)
class Portfolio:
    """The delinquent cases a simulation starts from, one row each (columns)."""

    case_id: npt.NDArray[np.int64]
    account_id: npt.NDArray[np.int64]
    debtor_id: npt.NDArray[np.int64]
    days_past_due: npt.NDArray[np.float64]
    balance: npt.NDArray[np.float64]
    customer_type: npt.NDArray[Any]
    age: npt.NDArray[np.float64]
    product: npt.NDArray[Any]
    region: npt.NDArray[Any]
    # The day (index into the run) each case falls delinquent, with ``days_past_due`` its
    # days past due that day; None: every case is delinquent from day 0.
    enters_on: npt.NDArray[np.int64] | None = None
    # What the product already knows of each case when the run starts (``History``); None: a
    # fresh portfolio (no payment, promise, plan or contact on record).
    history: History | None = None
    # Each case's debtor's time zones as the gate reads them (a tuple of zone names per row,
    # ``compliance.facts.service.debtors_facts``); None: every debtor in the institution's zone.
    timezones: npt.NDArray[Any] | None = None

    @property
    def size(self) -> int:
        return len(self.case_id)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any]) -> Portfolio:
        size = len(columns["case_id"])

        def objects(name: str, default: str | None) -> npt.NDArray[Any]:
            if name in columns:
                return np.asarray(columns[name], dtype=object)
            return np.full(size, default, dtype=object)

        return cls(
            case_id=np.asarray(columns["case_id"], dtype=np.int64),
            account_id=np.asarray(columns["account_id"], dtype=np.int64),
            debtor_id=np.asarray(columns.get("debtor_id", columns["case_id"]), dtype=np.int64),
            days_past_due=np.nan_to_num(np.asarray(columns["days_past_due"], dtype=np.float64)),
            balance=np.nan_to_num(np.asarray(columns["balance"], dtype=np.float64)),
            customer_type=objects("customer_type", "individual"),
            age=np.asarray(columns.get("age", np.full(size, np.nan)), dtype=np.float64),
            product=objects("product", None),
            region=objects("region", None),
            enters_on=np.asarray(columns["enters_on"], dtype=np.int64)
            if "enters_on" in columns
            else None,
            history=History.from_columns(columns, size) if "paid_before" in columns else None,
            timezones=zone_column(columns["timezones"]) if "timezones" in columns else None,
        )


def zone_column(values: Sequence[Any]) -> npt.NDArray[Any]:
    """A column of zone tuples (one per case) from zone names or sequences of them."""
    column = np.empty(len(values), dtype=object)
    column[:] = [(value,) if isinstance(value, str) else tuple(value) for value in values]
    return column


@dataclass(frozen=True, slots=True)
class History:
    """Each case's record as the product holds it on the run's first day (one row per case).

    A strategy reads these facts (a promise or plan holds the case, broken promises and calls
    that reached nobody lower the score, a payment on record raises it), so a run starts from
    them rather than from a blank case. Days are indexes into the run: a promise due on day 0
    or before is judged on the first day; ``NEVER`` means none.
    """

    paid_before: npt.NDArray[np.bool_]
    broken_promises: npt.NDArray[np.float64]
    failed_attempts: npt.NDArray[np.float64]
    promise_due: npt.NDArray[np.int64]
    promise_amount: npt.NDArray[np.float64]
    plan_next: npt.NDArray[np.int64]
    plan_amount: npt.NDArray[np.float64]
    plan_left: npt.NDArray[np.int64]

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any], size: int) -> History:
        def numbers(name: str, default: float) -> npt.NDArray[np.float64]:
            if name not in columns:
                return np.full(size, default, dtype=np.float64)
            return np.nan_to_num(np.asarray(columns[name], dtype=np.float64), nan=default)

        def days(name: str) -> npt.NDArray[np.int64]:
            if name not in columns:
                return np.full(size, NEVER, dtype=np.int64)
            return np.asarray(columns[name], dtype=np.int64)

        return cls(
            paid_before=np.asarray(columns["paid_before"], dtype=bool),
            broken_promises=numbers("broken_promises", 0.0),
            failed_attempts=numbers("failed_attempts", 0.0),
            promise_due=days("promise_due"),
            promise_amount=numbers("promise_amount", 0.0),
            plan_next=days("plan_next"),
            plan_amount=numbers("plan_amount", 0.0),
            plan_left=days("plan_left").clip(0, None)
            if "plan_left" in columns
            else np.zeros(size, dtype=np.int64),
        )


# What a recorded contact came to (``Recorder`` table ``contacts``, column ``outcome``).
OUTCOME_NO_ANSWER, OUTCOME_RIGHT_PARTY, OUTCOME_WRONG_NUMBER = range(3)
OUTCOME_DELIVERED, OUTCOME_FAILED = 3, 4
# Why a recorded payment came (table ``payments``, column ``source``).
PAID_UNPROMPTED, PAID_PROMISE, PAID_PLAN = range(3)
# Case events (table ``events``, column ``event``); ``step`` names the exit step of a hand-over.
EVENT_COMPLAINT, EVENT_DISPUTE, EVENT_CEASE, EVENT_HARDSHIP = range(4)
EVENT_HAND_OVER, EVENT_CURED, EVENT_ENTERED = 4, 5, 6

RECORDED: dict[str, tuple[str, ...]] = {
    # Every contact made: day, case row, channel code, hour (on the institution's clock, after
    # the move into the debtor's own day), outcome, and what the
    # conversation came to (a promise, a plan, hardship without a plan, a dispute, a stop
    # request, a complaint).
    "contacts": (
        "day",
        "row",
        "channel",
        "hour",
        "outcome",
        "promise",
        "plan",
        "hardship",
        "dispute",
        "cease",
        "complaint",
    ),
    "payments": ("day", "row", "amount", "source"),
    # A promise made (on a contact of that channel) and its due day; then kept or broken.
    "promises": ("day", "row", "due", "amount", "channel"),
    "promise_results": ("day", "row", "kept"),
    # A plan agreed: the instalment amount and count, its first due day (then every 30 days);
    # then each instalment paid or missed (a missed one breaks the plan).
    "plans": ("day", "row", "amount", "instalments", "first_due"),
    "plan_results": ("day", "row", "paid", "completed"),
    "events": ("day", "row", "event", "step"),
}


class Recorder:
    """A run's history as columns: contacts, payments, promises, plans and case events.

    The engine appends one array per column each day and kind (never an object per event);
    ``table`` joins them. ``row`` is a case's position in the portfolio, ``day`` an index into
    the run. Recording draws no random number, so a run's figures are the same with or without.
    """

    def __init__(self) -> None:
        self._parts: dict[str, list[dict[str, npt.NDArray[Any]]]] = {kind: [] for kind in RECORDED}

    def add(self, kind: str, day: int, **columns: npt.ArrayLike) -> None:
        arrays = {name: np.asarray(values) for name, values in columns.items()}
        size = len(arrays["row"])
        if size == 0:
            return
        arrays["day"] = np.full(size, day, dtype=np.int64)
        self._parts[kind].append(arrays)

    def table(self, kind: str) -> dict[str, npt.NDArray[Any]]:
        """One kind's columns, in the order recorded (by day)."""
        parts = self._parts[kind]
        names = RECORDED[kind]
        if not parts:
            return {
                name: np.zeros(0, dtype=np.float64 if name in _FLOATS else np.int64)
                for name in names
            }
        return {name: np.concatenate([part[name] for part in parts]) for name in names}


_FLOATS = frozenset({"hour", "amount"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    """What one run needs besides the strategy and the portfolio."""

    days: int
    seed: int
    start: date
    timezone: str
    # Channel code → cost of one contact in minor units (the institution's settings).
    costs: Mapping[str, int]
    params: Params
    # ``expected``: agents take the cases of highest propensity × balance (the allocation's
    # value); ``uplift``: of highest estimated uplift × balance (needs ``uplift_scorer``).
    priority: str = "expected"
    uplift_scorer: Callable[[Mapping[str, Any], str], npt.NDArray[np.float64]] | None = None
    # Given, the run also writes its history into it (see ``Recorder``); figures are the same.
    recorder: Recorder | None = None
    # Uplift suppression (needs ``uplift_scorer``): channel → threshold; a contact on that
    # channel whose estimated uplift is at or below it is skipped (``skip``) or, on the step's
    # first day, replaced by an SMS reminder (``sms``).
    suppress_below: Mapping[str, float] = field(default_factory=dict)
    suppress_mode: str = "skip"


@dataclass(slots=True)
class Result:
    """What a run did: money, contacts, costs, the gate's answers and the debtors' reactions."""

    strategy: str
    seed: int
    days: int
    cases: int
    initial_balance: float
    recovered: float = 0.0
    daily_recovered: list[float] = field(default_factory=list)
    contacts: Counter[str] = field(default_factory=Counter)
    cost: float = 0.0
    blocked_by_rule: Counter[str] = field(default_factory=Counter)
    violations: int = 0
    # Contacts left out by uplift suppression (a case skipped on several days counts each day).
    suppressed: int = 0
    complaints: int = 0
    right_party: int = 0
    promises: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    disputes: int = 0
    wrong_numbers: int = 0
    plans: int = 0
    cease_requests: int = 0
    cured: int = 0
    over_capacity: int = 0
    seconds: float = 0.0
    # What agents took their cases by: ``expected`` (propensity × balance) or ``uplift``.
    priority: str = "expected"

    @property
    def total_contacts(self) -> int:
        return sum(self.contacts.values())

    @property
    def recovery_rate(self) -> float:
        return self.recovered / self.initial_balance if self.initial_balance else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "priority": self.priority,
            "seed": self.seed,
            "days": self.days,
            "cases": self.cases,
            "initial_balance": round(self.initial_balance),
            "recovered_amount": round(self.recovered),
            "recovery_rate": round(self.recovery_rate, 6),
            "contacts": self.total_contacts,
            "contacts_by_channel": dict(sorted(self.contacts.items())),
            "cost": round(self.cost),
            "blocked_by_rule": dict(sorted(self.blocked_by_rule.items())),
            "violations": self.violations,
            "complaints": self.complaints,
            "right_party_contacts": self.right_party,
            "promises": self.promises,
            "promises_kept": self.promises_kept,
            "promises_broken": self.promises_broken,
            "disputes": self.disputes,
            "wrong_numbers": self.wrong_numbers,
            "plans": self.plans,
            "cease_requests": self.cease_requests,
            "cured": self.cured,
            "recovered_by_day": [round(value) for value in self.daily_recovered],
            "seconds": round(self.seconds, 3),
        }


class _State:
    """The portfolio's moving parts during a run (columns, one row per case)."""

    def __init__(self, portfolio: Portfolio, params: Params, rng: np.random.Generator) -> None:
        size = portfolio.size
        self.size = size
        self.portfolio = portfolio
        self.business = np.asarray(portfolio.customer_type == "business", dtype=bool)
        self.balance = portfolio.balance.copy()
        self.days_past_due = portfolio.days_past_due.copy()
        latent = rules.draw_latent(
            rng,
            params,
            days_past_due=portfolio.days_past_due,
            balance=portfolio.balance,
            business=self.business,
            age=portfolio.age,
        )
        self.latent = latent
        self.willingness_logit = latent.willingness_logit.copy()
        self.phone_valid = latent.phone_valid.copy()
        self.pushed_dnd = np.zeros(size, dtype=bool)
        self.active = self.balance > 0
        if portfolio.enters_on is not None:
            self.active &= portfolio.enters_on <= 0
        self.paid_before = np.zeros(size, dtype=bool)
        self.failed_attempts = np.zeros(size)
        self.unanswered = np.zeros(size)
        self.broken = np.zeros(size)
        self.promise_state = np.zeros(size, dtype=np.int64)
        self.promise_due = np.full(size, NEVER, dtype=np.int64)
        self.promise_amount = np.zeros(size)
        self.paused_until = np.full(size, -1, dtype=np.int64)
        self.plan_state = np.zeros(size, dtype=np.int64)
        self.plan_next = np.full(size, NEVER, dtype=np.int64)
        self.plan_amount = np.zeros(size)
        self.plan_left = np.zeros(size, dtype=np.int64)
        self.stopped_until = np.full(size, -1, dtype=np.int64)
        self.dispute_until = np.full(size, -1, dtype=np.int64)
        self.ceased = np.zeros(size, dtype=bool)
        self.handed_over = np.zeros(size, dtype=bool)
        self.tracing_until = np.full(size, -1, dtype=np.int64)
        self.segment = np.full(size, -2, dtype=np.int64)
        self.entered = np.zeros(size, dtype=np.int64)
        self.step = np.full(size, -1, dtype=np.int64)
        self.step_on = np.zeros(size, dtype=np.int64)
        self.step_tries = np.zeros(size, dtype=np.int64)
        self.step_reached = np.zeros(size, dtype=bool)
        self.trigger_step = np.full(size, -1, dtype=np.int64)
        self.reminded_until = np.full(size, -1, dtype=np.int64)
        self.contacts_by_day = np.zeros((7, size), dtype=np.int16)
        self.propensity = np.zeros(size)
        history = portfolio.history
        if history is not None:
            self.paid_before[:] = history.paid_before
            self.broken[:] = history.broken_promises
            self.failed_attempts[:] = history.failed_attempts
            promised = (history.promise_due < NEVER) & (history.promise_amount > 0)
            self.promise_state[promised] = PROMISE_PENDING
            self.promise_due[promised] = history.promise_due[promised]
            self.promise_amount[promised] = history.promise_amount[promised]
            planned = (
                (history.plan_next < NEVER) & (history.plan_amount > 0) & (history.plan_left > 0)
            )
            self.plan_state[planned] = PLAN_ACTIVE
            self.plan_next[planned] = history.plan_next[planned]
            self.plan_amount[planned] = history.plan_amount[planned]
            self.plan_left[planned] = history.plan_left[planned]

    def contacts_7d(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.contacts_by_day.sum(axis=0), dtype=np.float64)

    def buckets(self) -> npt.NDArray[Any]:
        days = self.days_past_due.astype(np.int64)
        values, inverse = np.unique(days, return_inverse=True)
        names = np.array([bucket_for(int(value)) for value in values], dtype=object)
        return np.asarray(names[inverse], dtype=object)

    def case_state(self, today: int) -> npt.NDArray[Any]:
        state = np.full(self.size, "open", dtype=object)
        state[self.plan_state == PLAN_ACTIVE] = "on_plan"
        state[(self.promise_state == PROMISE_PENDING)] = "promised"
        state[self.dispute_until > today] = "disputed"
        state[self.handed_over] = "escalated"
        return state

    def facts(self, today: int) -> dict[str, Any]:
        """The facts a strategy reads, as the cycle's ``facts_columns`` gives them."""
        portfolio = self.portfolio
        return {
            "account_id": portfolio.account_id,
            "case_id": portfolio.case_id,
            "bucket": self.buckets(),
            "days_past_due": self.days_past_due,
            "balance": self.balance,
            "product": portfolio.product,
            "customer_type": portfolio.customer_type,
            "age": portfolio.age,
            "region": portfolio.region,
            "case_state": self.case_state(today),
            "grade": np.full(self.size, None, dtype=object),
            "propensity": self.propensity,
            "promise_state": PROMISE_STATES[self.promise_state],
            "plan_state": PLAN_STATES[self.plan_state],
            "failed_attempts": self.failed_attempts,
            "unanswered_messages": self.unanswered,
            "broken_promises": self.broken,
        }


class Simulation:
    """One strategy on one portfolio for one seed."""

    def __init__(
        self,
        *,
        portfolio: Portfolio,
        compiled: CompiledStrategy,
        gate: Gate,
        settings: RunSettings,
        name: str,
    ) -> None:
        self.portfolio = portfolio
        self.compiled = compiled
        self.gate = gate
        self.settings = settings
        self.params = settings.params
        # Latent traits come from the seed alone: every strategy meets the same debtors.
        self.state = _State(portfolio, self.params, np.random.default_rng([settings.seed, 0]))
        self.rng = np.random.default_rng([settings.seed, 1])
        self.zone = ZoneInfo(settings.timezone)
        # The debtors' zones: each distinct set once (``zone_sets``), its index per case; a set
        # other than the institution's own zone moves the day's contacts into the debtor's day.
        own = (settings.timezone,)
        if portfolio.timezones is None:
            self.zone_sets: list[tuple[str, ...]] = [own]
            self.zone_of = np.zeros(portfolio.size, dtype=np.int64)
        else:
            index: dict[tuple[str, ...], int] = {own: 0}
            self.zone_of = np.fromiter(
                (
                    index.setdefault(tuple(zones) or own, len(index))
                    for zones in portfolio.timezones
                ),
                dtype=np.int64,
                count=portfolio.size,
            )
            self.zone_sets = list(index)
        self.first_zone = [ZoneInfo(zones[0]) for zones in self.zone_sets]
        self.histories: dict[str, list[PastContact]] = {}
        self.recorder = settings.recorder
        entering = portfolio.enters_on
        self.entering: dict[int, npt.NDArray[np.int64]] = {}
        if entering is not None:
            later = np.flatnonzero((entering > 0) & (self.state.balance > 0))
            later = later[np.argsort(entering[later], kind="stable")]
            days, first = np.unique(entering[later], return_index=True)
            for day, rows in zip(days.tolist(), np.split(later, first[1:]), strict=True):
                self.entering[day] = rows
        self.result = Result(
            strategy=name,
            seed=settings.seed,
            days=settings.days,
            cases=portfolio.size,
            initial_balance=float(portfolio.balance.sum()),
            priority="uplift"
            if settings.priority == "uplift" and settings.uplift_scorer is not None
            else "expected",
        )
        params = self.params
        cases = portfolio.size
        self.call_capacity = round(params["calls_per_thousand"] * cases / 1000)
        self.visit_capacity = round(params["visits_per_thousand"] * cases / 1000)
        per_agent = max(int(params["calls_per_agent"]), 1)
        self.call_agents = [
            AgentSlot(id=n, capacity=min(per_agent, self.call_capacity - n * per_agent))
            for n in range(-(-self.call_capacity // per_agent))
        ]
        self.visit_agents = (
            [AgentSlot(id=0, capacity=self.visit_capacity)] if self.visit_capacity else []
        )
        cost = {name: float(settings.costs.get(name, 0)) for name in rules.CHANNELS}
        self.cost_of = np.array([cost[name] for name in rules.CHANNELS])
        ceiling = params["cost_per_case_day"] * cases
        if ceiling <= 0:
            # The full agent capacity plus one reminder per case a week.
            ceiling = (
                self.call_capacity * cost["call"]
                + self.visit_capacity * cost["visit"]
                + cases / 7 * max(cost["sms"], cost["email"])
            )
        self.daily_ceiling = float(ceiling)

    # -- the day ----------------------------------------------------------------------------

    def run(self, on_day: Callable[[int], None] | None = None) -> Result:
        import time as timer

        started = timer.perf_counter()
        for today in range(self.settings.days):
            self.day(today)
            if on_day is not None:
                on_day(today)
        self.result.seconds = timer.perf_counter() - started
        return self.result

    def day(self, today: int) -> None:
        state = self.state
        if today > 0:
            state.days_past_due[state.active] += 1
        entering = self.entering.get(today)
        if entering is not None:
            # Falls delinquent today, with the days past due the portfolio gives for this day.
            state.active[entering] = True
            if self.recorder is not None:
                self.recorder.add(
                    "events",
                    today,
                    row=entering,
                    event=np.full(len(entering), EVENT_ENTERED),
                    step=np.full(len(entering), -1),
                )
        state.contacts_by_day[today % 7] = 0
        paid_today = self._reconcile(today)
        paid_today += self._unprompted_payments(today)
        self.score()
        acting, step_of = self._steps(today)
        paid_today += self._contact(today, acting, step_of)
        self.result.recovered += paid_today
        self.result.daily_recovered.append(self.result.recovered)

    def _pay(
        self,
        rows: npt.NDArray[np.int64],
        amounts: npt.NDArray[np.float64],
        today: int,
        source: int = PAID_UNPROMPTED,
    ) -> float:
        state = self.state
        if len(rows) == 0:
            return 0.0
        amounts = np.minimum(amounts, state.balance[rows])
        if self.recorder is not None:
            self.recorder.add(
                "payments", today, row=rows, amount=amounts, source=np.full(len(rows), source)
            )
        state.balance[rows] -= amounts
        state.paid_before[rows] = True
        state.unanswered[rows] = 0
        cured = rows[state.balance[rows] <= 0.5]
        if len(cured):
            route_event(
                self.compiled,
                StrategyEvent.PAYMENT_RECEIVED,
                EventFacts(as_of=self._date(today), cured=True),
            )
            state.active[cured] = False
            state.balance[cured] = 0.0
            state.days_past_due[cured] = 0
            self.result.cured += len(cured)
            if self.recorder is not None:
                self.recorder.add(
                    "events",
                    today,
                    row=cured,
                    event=np.full(len(cured), EVENT_CURED),
                    step=np.full(len(cured), -1),
                )
        return float(amounts.sum())

    def _date(self, today: int) -> date:
        return self.settings.start + timedelta(days=today)

    def _reconcile(self, today: int) -> float:
        state, params, rng = self.state, self.params, self.rng
        paid = 0.0
        due = np.flatnonzero(
            state.active & (state.promise_state == PROMISE_PENDING) & (state.promise_due <= today)
        )
        if len(due):
            keeps = rng.random(len(due)) < rules.keep_chance(
                params, state.latent.ability[due]
            ) * np.where(state.pushed_dnd[due], params["dnd_penalty"], 1.0)
            kept = due[keeps]
            broken = due[~keeps]
            if self.recorder is not None:
                self.recorder.add("promise_results", today, row=due, kept=keeps)
            paid += self._pay(kept, state.promise_amount[kept], today, PAID_PROMISE)
            state.promise_state[kept] = PROMISE_KEPT
            state.broken[kept] = 0
            state.promise_state[broken] = PROMISE_BROKEN
            state.broken[broken] += 1
            state.paused_until[due] = -1
            self.result.promises_kept += len(kept)
            self.result.promises_broken += len(broken)
            for row in broken.tolist():
                self._event(row, StrategyEvent.PROMISE_BROKEN, today)
        due = np.flatnonzero(
            state.active & (state.plan_state == PLAN_ACTIVE) & (state.plan_next <= today)
        )
        if len(due):
            keeps = rng.random(len(due)) < params["plan_keep"]
            kept = due[keeps]
            paid += self._pay(kept, state.plan_amount[kept], today, PAID_PLAN)
            state.plan_left[kept] -= 1
            state.plan_next[kept] = today + 30
            finished = (state.plan_left[due] <= 0) | ~state.active[due]
            done = kept[finished[keeps]]
            if self.recorder is not None:
                self.recorder.add(
                    "plan_results", today, row=due, paid=keeps, completed=keeps & finished
                )
            state.plan_state[done] = PLAN_COMPLETED
            state.plan_next[done] = NEVER
            lapsed = due[~keeps]
            state.plan_state[lapsed] = PLAN_BROKEN
            state.plan_next[lapsed] = NEVER
        return paid

    def _unprompted_payments(self, today: int) -> float:
        state, params = self.state, self.params
        rows = np.flatnonzero(
            state.active
            & (state.promise_state != PROMISE_PENDING)
            & (state.plan_state != PLAN_ACTIVE)
        )
        if len(rows) == 0:
            return 0.0
        chance = rules.unprompted_chance(
            params,
            ability=state.latent.ability[rows],
            willingness_logit=state.willingness_logit[rows],
            days_past_due=state.days_past_due[rows],
            reminded=state.reminded_until[rows] >= today,
            pushed_dnd=state.pushed_dnd[rows],
        )
        draws = self.rng.random((2, len(rows)))
        handed = state.handed_over[rows]
        chance = np.where(
            handed,
            np.maximum(chance, params["handover_hazard"] * state.latent.ability[rows]),
            chance,
        )
        payers = rows[draws[0] < chance]
        full = draws[1][draws[0] < chance] < params["full_payment_share"]
        amounts = np.where(
            full, state.balance[payers], np.ceil(state.balance[payers] * params["partial_fraction"])
        )
        return self._pay(payers, amounts, today)

    def score(self) -> None:
        state = self.state
        state.propensity = rules.observed_propensity(
            days_past_due=state.days_past_due,
            balance=state.balance,
            business=state.business,
            age=self.portfolio.age,
            paid_before=state.paid_before,
            broken_promises=state.broken,
            failed_attempts=state.failed_attempts,
        )

    def _event(self, row: int, event: StrategyEvent, today: int) -> None:
        """Re-route one case at once, as ``strategy.on_event`` does."""
        state = self.state
        as_of = self._date(today)
        reroute = route_event(
            self.compiled,
            event,
            EventFacts(
                as_of=as_of,
                promise_due=self._date(int(state.promise_due[row]))
                if event is StrategyEvent.PROMISE_MADE
                else None,
                broken_in_a_row=int(state.broken[row]),
            ),
        )
        if reroute.paused_until is not None:
            state.paused_until[row] = (reroute.paused_until - self.settings.start).days
        if reroute.stop_contact:
            hold = {
                StrategyEvent.DISPUTE: self.params["dispute_days"],
                StrategyEvent.COMPLAINT: self.params["complaint_review_days"],
                StrategyEvent.HARDSHIP: 7.0,
            }.get(event, float(NEVER - today - 1))
            state.stopped_until[row] = max(int(state.stopped_until[row]), today + int(hold))
        segment = int(state.segment[row])
        if segment >= 0:
            step = step_for_event(self.compiled, self.compiled.segments[segment], event, "champion")
            if step is not None:
                state.trigger_step[row] = step.index

    # -- strategy ---------------------------------------------------------------------------

    def _steps(self, today: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The cases that act today and the step each takes (indexes into compiled.steps)."""
        state, compiled = self.state, self.compiled
        live = np.flatnonzero(state.active & ~state.handed_over)
        if len(live) == 0:
            return live, live
        facts = {name: column[live] for name, column in state.facts(today).items()}
        segments = segment_of(compiled, facts)
        changed = segments != state.segment[live]
        state.entered[live[changed]] = today
        state.segment[live] = segments
        arms = arms_of(compiled, segments, facts["account_id"])
        days_on_path = (today - state.entered[live]).astype(np.float64)
        steps = step_indexes(compiled, segments, facts, days_on_path=days_on_path, arms=arms)
        new_step = steps != state.step[live]
        state.step_on[live[new_step]] = today
        state.step_tries[live[new_step]] = 0
        state.step_reached[live[new_step]] = False
        state.step[live] = steps
        trigger = state.trigger_step[live]
        chosen = np.where(trigger >= 0, trigger, steps)
        held = (
            (state.paused_until[live] > today)
            | (state.stopped_until[live] > today)
            | state.ceased[live]
            | (state.promise_state[live] == PROMISE_PENDING)
            | (state.plan_state[live] == PLAN_ACTIVE)
            | (state.dispute_until[live] > today)
            | (state.tracing_until[live] > today)
        )
        action = self._step_actions
        kind = action[np.maximum(chosen, 0)]
        # Exits: skip-trace looks for a new number; legal review and agencies take the case.
        exits = (chosen >= 0) & (kind == EXIT_TRACE) & ~held
        if exits.any():
            rows = live[exits]
            state.tracing_until[rows] = today + int(self.params["skip_trace_days"])
            found = self.rng.random(len(rows)) < self.params["trace_success"]
            state.phone_valid[rows[found]] = True
            state.failed_attempts[rows] = 0
        handed = (chosen >= 0) & (kind == EXIT_HAND_OVER) & ~held
        if self.recorder is not None:
            newly = handed & ~state.handed_over[live]
            self.recorder.add(
                "events",
                today,
                row=live[newly],
                event=np.full(int(newly.sum()), EVENT_HAND_OVER),
                step=chosen[newly],
            )
        state.handed_over[live[handed]] = True
        channel = self._step_channel[np.maximum(chosen, 0)]
        contact = (chosen >= 0) & (kind == CONTACT) & (channel >= 0) & ~held
        worked = np.isin(channel, list(rules.WORKED))
        fresh = state.step_on[live] == today
        retry = (
            worked
            & ~state.step_reached[live]
            & (state.step_tries[live] < self.params["call_retries"])
        )
        acts = contact & ((trigger >= 0) | fresh | retry)
        state.trigger_step[live[trigger >= 0]] = -1
        return live[acts], chosen[acts]

    @property
    def _step_actions(self) -> npt.NDArray[np.int64]:
        cached = getattr(self, "_actions_cache", None)
        if cached is None:
            cached = np.array(
                [
                    CONTACT
                    if not step.is_exit
                    else EXIT_TRACE
                    if step.action == "skip_trace"
                    else EXIT_HAND_OVER
                    if step.action in {"legal_review", "agency"}
                    else EXIT_OTHER
                    for step in self.compiled.steps
                ],
                dtype=np.int64,
            )
            self._actions_cache = cached
        return cached

    @property
    def _step_channel(self) -> npt.NDArray[np.int64]:
        cached = getattr(self, "_channel_cache", None)
        if cached is None:
            cached = np.array(
                [rules.CHANNEL_CODE.get(step.channel or "", -1) for step in self.compiled.steps],
                dtype=np.int64,
            )
            self._channel_cache = cached
        return cached

    # -- contact ----------------------------------------------------------------------------

    def _priority(
        self, rows: npt.NDArray[np.int64], channel: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        state = self.state
        if self.settings.priority == "uplift" and self.settings.uplift_scorer is not None:
            facts = {name: column[rows] for name, column in state.facts(0).items()}
            # A channel the model has not learnt (NaN) keeps the propensity, as the product does.
            value = np.asarray(state.propensity[rows], dtype=np.float64).copy()
            for code in np.unique(channel).tolist():
                here = channel == code
                sliced = {name: column[here] for name, column in facts.items()}
                uplift = self.settings.uplift_scorer(sliced, rules.CHANNELS[code])
                value[here] = np.where(np.isnan(uplift), value[here], np.maximum(uplift, 0.0))
            return np.asarray(value * state.balance[rows], dtype=np.float64)
        return np.asarray(state.propensity[rows] * state.balance[rows], dtype=np.float64)

    def _suppress(
        self, today: int, rows: npt.NDArray[np.int64], channel: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Drop (or downgrade to an SMS) the contacts whose estimated uplift is too low."""
        scorer, thresholds = self.settings.uplift_scorer, self.settings.suppress_below
        if scorer is None or not thresholds:
            return rows, channel
        state = self.state
        low = np.zeros(len(rows), dtype=bool)
        for name, threshold in thresholds.items():
            here = channel == rules.CHANNEL_CODE[name]
            if not here.any():
                continue
            facts = {key: column[rows[here]] for key, column in state.facts(today).items()}
            uplift = scorer(facts, name)
            low[here] = ~np.isnan(uplift) & (uplift <= threshold)
        self.result.suppressed += int(low.sum())
        if self.settings.suppress_mode == "sms":
            swap = low & (state.step_on[rows] == today)
            channel = np.where(swap, rules.SMS, channel)
            keep = ~low | swap
        else:
            keep = ~low
        return rows[keep], channel[keep]

    def _allocate(
        self,
        rows: npt.NDArray[np.int64],
        channel: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.bool_]:
        """Which of the day's contacts are made: tasks within agent capacity, all within cost."""
        keep = np.ones(len(rows), dtype=bool)
        for code, agents in ((rules.CALL, self.call_agents), (rules.VISIT, self.visit_agents)):
            tasks = np.flatnonzero(channel == code)
            if len(tasks) == 0:
                continue
            if not agents:
                keep[tasks] = False
                continue
            taken = np.zeros(len(rows), dtype=bool)
            taken[tasks[alike_agents_take(value[tasks], agents)]] = True
            self.result.over_capacity += int(len(tasks) - taken[tasks].sum())
            keep[tasks] &= taken[tasks]
        # The cost ceiling: the most valuable contacts first.
        order = np.argsort(-value, kind="stable")
        spend = np.cumsum(np.where(keep[order], self.cost_of[channel[order]], 0.0))
        within = np.zeros(len(rows), dtype=bool)
        within[order] = spend <= self.daily_ceiling
        return keep & within

    def _contact(
        self, today: int, rows: npt.NDArray[np.int64], steps: npt.NDArray[np.int64]
    ) -> float:
        state, result = self.state, self.result
        if len(rows) == 0:
            return 0.0
        channel = self._step_channel[steps]
        rows, channel = self._suppress(today, rows, channel)
        if len(rows) == 0:
            return 0.0
        value = self._priority(rows, channel)
        made = self._allocate(rows, channel, value)
        rows, channel, value = rows[made], channel[made], value[made]
        if len(rows) == 0:
            return 0.0
        order = np.argsort(-value, kind="stable")
        rows, channel = rows[order], channel[order]
        worked = np.isin(channel, list(rules.WORKED))
        # Agents work down their lists from 09:30 to 20:30; messages go out at 10:00.
        position = np.zeros(len(rows))
        for code, capacity in (
            (rules.CALL, self.call_capacity),
            (rules.VISIT, self.visit_capacity),
        ):
            here = channel == code
            position[here] = np.arange(int(here.sum())) / max(capacity, 1) * CALL_HOURS
        # On the institution's clock; a contact is then moved into the debtor's own day.
        hour = np.where(worked, 9.5 + position, 10.0)
        day = self._date(today)
        attempts = []
        debtors = [str(value) for value in self.portfolio.debtor_id[rows].tolist()]
        accounts = [str(value) for value in self.portfolio.account_id[rows].tolist()]
        midnight = datetime.combine(day, time(0, 0), tzinfo=self.zone)
        for debtor, account, code, at_hour in zip(
            debtors, accounts, channel.tolist(), hour.tolist(), strict=True
        ):
            gate_channel = GATE_CHANNEL[code]
            attempts.append(
                PlannedContact(
                    debtor_id=debtor,
                    channel=gate_channel,
                    at=midnight + timedelta(hours=at_hour),
                    party=Party.DEBTOR,
                    account_id=account,
                    automated=CHANNEL_PROPERTIES[gate_channel].automated,
                )
            )
        zone_sets = self.zone_sets
        zone_of = self.zone_of[rows]
        facts = {
            debtor: DebtorFacts(
                debtor_id=debtor,
                timezones=zone_sets[zones],
                dispute_open=bool(state.dispute_until[row] > today),
                cease_contact=bool(state.ceased[row]),
                automated_consent=CONSENTED,
            )
            for debtor, row, zones in zip(debtors, rows.tolist(), zone_of.tolist(), strict=True)
        }
        # Elsewhere, a contact moves to when it is at least the morning in every zone of the
        # debtor, as the daily cycle plans it (``in_local_days``); it keeps its place otherwise.
        local_hour = hour
        away = np.flatnonzero(zone_of != 0)
        if len(away):
            task, message = PLANNED_TIME[ActionKind.TASK], PLANNED_TIME[ActionKind.MESSAGE]
            mornings = [task if each else message for each in worked[away].tolist()]
            moved = in_local_days(self.gate, [attempts[i] for i in away], facts, mornings)
            hour = hour.copy()
            local_hour = hour.copy()
            for i, attempt in zip(away.tolist(), moved, strict=True):
                attempts[i] = attempt
                hour[i] = (attempt.at - midnight).total_seconds() / 3600
                there = attempt.at.astimezone(self.first_zone[int(zone_of[i])])
                local_hour[i] = there.hour + there.minute / 60
        cutoff = midnight - timedelta(days=HISTORY_DAYS)
        histories = {}
        for debtor in facts:
            past = self.histories.get(debtor)
            if past:
                past = [each for each in past if each.at >= cutoff]
                self.histories[debtor] = past
                histories[debtor] = ContactHistory(attempts=tuple(past))
        decisions = decide_batch(attempts, facts=facts, histories=histories, gate=self.gate)
        allowed = np.fromiter((d.allowed for d in decisions), dtype=bool, count=len(decisions))
        result.blocked_by_rule.update(
            blocked_counts(d.rule_ids for d in decisions if not d.allowed)
        )
        # Blocked work waits for another day (it does not count as a try).
        rows, channel = rows[allowed], channel[allowed]
        hour, local_hour = hour[allowed], local_hour[allowed]
        attempts = [attempt for attempt, ok in zip(attempts, allowed.tolist(), strict=True) if ok]
        if len(rows) == 0:
            return 0.0
        # An independent check: nothing reaches a debtor who disputed or asked us to stop.
        result.violations += int(((state.dispute_until[rows] > today) | state.ceased[rows]).sum())
        return self._outcomes(today, rows, channel, hour, attempts, local_hour)

    def _outcomes(
        self,
        today: int,
        rows: npt.NDArray[np.int64],
        channel: npt.NDArray[np.int64],
        hour: npt.NDArray[np.float64],
        attempts: list[PlannedContact],
        local_hour: npt.NDArray[np.float64],
    ) -> float:
        """What the made contacts came to; ``hour`` on the institution's clock, ``local_hour``
        the debtor's (who answers depends on the debtor's time of day)."""
        state, params, rng, result = self.state, self.params, self.rng, self.result
        size = len(rows)
        latent = state.latent
        for code in channel.tolist():
            result.contacts[rules.CHANNELS[code]] += 1
        result.cost += float(self.cost_of[channel].sum())
        state.step_tries[rows] += 1
        np.add.at(state.contacts_by_day[today % 7], rows, 1)
        contacts_7d = state.contacts_7d()[rows]
        state.willingness_logit[rows] -= rules.annoyance(params, contacts_7d)
        reach = rules.reach_chance(
            params,
            channel=channel,
            age=self.portfolio.age[rows],
            business=state.business[rows],
            phone_valid=state.phone_valid[rows],
            email_valid=latent.email_valid[rows],
            address_valid=latent.address_valid[rows],
            hour=local_hour,
        )
        draws = rng.random((7, size))
        reached = draws[0] < reach
        voice = np.isin(channel, list(rules.VOICE))
        spoken = voice | (channel == rules.VISIT)
        message = ~spoken
        wrong = (
            voice
            & ~state.phone_valid[rows]
            & ~reached
            & (draws[1] < params["third_party_on_wrong"])
        )
        right_party = spoken & reached
        result.right_party += int(right_party.sum())
        result.wrong_numbers += int(wrong.sum())
        state.step_reached[rows[reached]] = True
        state.failed_attempts[rows[spoken & ~reached]] += 1
        state.failed_attempts[rows[right_party]] = 0
        state.unanswered[rows[message]] += 1
        state.unanswered[rows[right_party]] = 0
        state.pushed_dnd[rows[reached & latent.dnd[rows]]] = True
        state.reminded_until[rows[reached]] = today + int(params["reminder_days"])
        # The contact log: what each made contact came to (the gate's history).
        for attempt, is_rpc, is_wrong, is_message, was_read in zip(
            attempts,
            right_party.tolist(),
            wrong.tolist(),
            message.tolist(),
            reached.tolist(),
            strict=True,
        ):
            if is_message:
                outcome = OutcomeCode.MESSAGE_DELIVERED if was_read else OutcomeCode.MESSAGE_FAILED
            else:
                outcome = (
                    OutcomeCode.RIGHT_PARTY
                    if is_rpc
                    else OutcomeCode.WRONG_NUMBER
                    if is_wrong
                    else OutcomeCode.NO_ANSWER
                )
            self.histories.setdefault(attempt.debtor_id, []).append(
                PastContact(
                    at=attempt.at,
                    channel=attempt.channel,
                    party=Party.DEBTOR,
                    outcome=outcome,
                    effective=bool(is_rpc and not is_message),
                    account_id=attempt.account_id,
                )
            )
        for row in rows[wrong].tolist():
            self._event(row, StrategyEvent.WRONG_NUMBER, today)
        # Complaints: from any contact the debtor noticed.
        complain = reached & (
            draws[2] < rules.complaint_chance(params, contacts_7d=contacts_7d, dnd=latent.dnd[rows])
        )
        result.complaints += int(complain.sum())
        for row in rows[complain].tolist():
            self._event(row, StrategyEvent.COMPLAINT, today)
        # A conversation (or a letter read) can end in a promise, a dispute, hardship or a stop.
        talk = (right_party | ((channel == rules.LETTER) & reached)) & ~complain
        talked = rows[talk]
        strength = rules.persuasion(params, channel[talk])
        ability = latent.ability[talked]
        dispute = draws[3][talk] < params["dispute_rate"]
        cease = ~dispute & (draws[4][talk] < params["cease_rate"])
        hardship = (
            ~dispute
            & ~cease
            & (draws[5][talk] < rules.hardship_chance(params, ability) * (strength >= 1))
        )
        promise_draw = draws[6][talk] < rules.promise_chance(
            params,
            strength=strength,
            ability=ability,
            willingness_logit=state.willingness_logit[talked],
        )
        promise = ~dispute & ~cease & ~hardship & promise_draw
        for row in talked[dispute].tolist():
            state.dispute_until[row] = today + int(params["dispute_days"])
            result.disputes += 1
            self._event(row, StrategyEvent.DISPUTE, today)
        for row in talked[cease].tolist():
            state.ceased[row] = True
            result.cease_requests += 1
            self._event(row, StrategyEvent.CEASE_REQUEST, today)
        plan_rows = talked[hardship]
        takes = np.zeros(len(plan_rows), dtype=bool)
        if len(plan_rows):
            takes = rng.random(len(plan_rows)) < params["plan_uptake"]
            for row in plan_rows[~takes].tolist():
                self._event(row, StrategyEvent.HARDSHIP, today)
            taken = plan_rows[takes]
            instalments = max(int(params["plan_instalments"]), 1)
            state.plan_state[taken] = PLAN_ACTIVE
            state.plan_amount[taken] = np.ceil(state.balance[taken] / instalments)
            state.plan_left[taken] = instalments
            state.plan_next[taken] = today + 7
            result.plans += len(taken)
        promised = talked[promise]
        if len(promised):
            state.promise_state[promised] = PROMISE_PENDING
            state.promise_due[promised] = today + int(params["promise_days"])
            full = ability[promise] >= 0.5
            state.promise_amount[promised] = np.where(
                full,
                state.balance[promised],
                np.ceil(state.balance[promised] * params["partial_fraction"]),
            )
            result.promises += len(promised)
            for row in promised.tolist():
                self._event(row, StrategyEvent.PROMISE_MADE, today)
        if self.recorder is not None:
            self._record_contacts(
                today,
                rows=rows,
                channel=channel,
                hour=hour,
                outcome=np.where(
                    message,
                    np.where(reached, OUTCOME_DELIVERED, OUTCOME_FAILED),
                    np.where(
                        right_party,
                        OUTCOME_RIGHT_PARTY,
                        np.where(wrong, OUTCOME_WRONG_NUMBER, OUTCOME_NO_ANSWER),
                    ),
                ),
                talk=np.flatnonzero(talk),
                results={
                    "promise": promise,
                    "dispute": dispute,
                    "cease": cease,
                    "hardship": hardship,
                },
                takes=takes,
                complaint=complain,
            )
        return 0.0

    def _record_contacts(
        self,
        today: int,
        *,
        rows: npt.NDArray[np.int64],
        channel: npt.NDArray[np.int64],
        hour: npt.NDArray[np.float64],
        outcome: npt.NDArray[np.int64],
        talk: npt.NDArray[np.int64],
        results: Mapping[str, npt.NDArray[np.bool_]],
        takes: npt.NDArray[np.bool_],
        complaint: npt.NDArray[np.bool_],
    ) -> None:
        """Append the day's contacts, promises and plans to the recorder."""
        recorder, state = self.recorder, self.state
        assert recorder is not None
        size = len(rows)
        flags: dict[str, npt.NDArray[np.bool_]] = {}
        for name, among_talks in results.items():
            flags[name] = np.zeros(size, dtype=bool)
            flags[name][talk[among_talks]] = True
        asked = talk[results["hardship"]]
        flags["plan"] = np.zeros(size, dtype=bool)
        flags["plan"][asked[takes]] = True
        flags["hardship"] = np.zeros(size, dtype=bool)
        flags["hardship"][asked[~takes]] = True
        recorder.add(
            "contacts",
            today,
            row=rows,
            channel=channel,
            hour=hour,
            outcome=outcome,
            complaint=complaint,
            **flags,
        )
        promised = flags["promise"]
        recorder.add(
            "promises",
            today,
            row=rows[promised],
            due=state.promise_due[rows[promised]],
            amount=state.promise_amount[rows[promised]],
            channel=channel[promised],
        )
        planned = rows[flags["plan"]]
        recorder.add(
            "plans",
            today,
            row=planned,
            amount=state.plan_amount[planned],
            instalments=state.plan_left[planned],
            first_due=state.plan_next[planned],
        )


CONTACT, EXIT_TRACE, EXIT_HAND_OVER, EXIT_OTHER = range(4)


def alike_agents_take(
    values: npt.NDArray[np.float64], agents: Sequence[AgentSlot]
) -> npt.NDArray[np.int64]:
    """The tasks (positions in ``values``) ``allocation.rules.greedy`` gives agents who are alike.

    The simulated agents have no skills, regions or current cases, so greedy hands out the
    most valuable tasks (whole minor units, then position) until their joint capacity is used;
    this is that result without an object per task.
    """
    capacity = sum(max(agent.capacity, 0) for agent in agents)
    positions = np.arange(len(values))
    ranked = np.lexsort((positions, -np.trunc(values)))
    return np.asarray(ranked[:capacity], dtype=np.int64)


def run_simulation(
    *,
    portfolio: Portfolio,
    compiled: CompiledStrategy,
    gate: Gate,
    settings: RunSettings,
    name: str,
    on_day: Callable[[int], None] | None = None,
) -> Result:
    """Run one strategy over the portfolio for ``settings.days`` days."""
    return Simulation(
        portfolio=portfolio, compiled=compiled, gate=gate, settings=settings, name=name
    ).run(on_day)
