"""The demo's recent past, lived by the behaviour simulator instead of invented.

The generator draws the static portfolio (debtors, contact points, accounts with today's days
past due, and a year of month-end history). For the last ``HISTORY_DAYS`` days this module
replaces that invented history by one run of ``simulation.engine`` over the delinquent cases:
the institution's preset strategy, its compliance gate and the behaviour model decide every
contact, promise, plan and payment, and the recorder (``engine.Recorder``) hands the history
back as columns. From it come the contact log, promises, plans, payments and the delinquency
events in the window, and today's balances, buckets and statuses, so what the dashboards show
of the past and what the worklists show of today are one story.

Which accounts live the simulated past: those delinquent today whose debtor has no flag that
stops collection (deceased, bankrupt, disputed, stop request, represented by an attorney).
Each debtor's such accounts form one case, as the daily cycle groups them; the case falls
delinquent on the day its most delinquent account did (``Portfolio.enters_on``), or is
delinquent from the window's first day. A case's payments go to its most delinquent account
first, then the next; within an account to penalty, fees, interest, then principal. Every
other account keeps the generator's history.

Pure: numpy in, numpy out; no database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from recoup.compliance.facts.zones import ZoneSource, address_zones, debtor_zones
from recoup.compliance.gate.rules import Gate
from recoup.contact.rules import OutcomeCode
from recoup.demo import generator
from recoup.demo.generator import (
    BUCKETS,
    CHINA_UTC_OFFSET_HOURS,
    Column,
    Portfolio,
    Table,
    bucket_index,
    concat,
    weighted_choice,
)
from recoup.simulation import engine
from recoup.simulation import rules as behaviour
from recoup.simulation.engine import Recorder, RunSettings, Simulation
from recoup.simulation.params import Params, default_params
from recoup.strategy.rules import CompiledStrategy

# Three 30-day months: the KPI pages show a month and the trends compare months. A multiple of
# the generator's snapshot spacing, so the window opens on a month-end snapshot.
HISTORY_DAYS = 90
# Debtors pay between 08:00 and 22:00 local time, most at lunch and in the evening.
_PAYMENT_HOUR_WEIGHTS = [2, 4, 5, 5, 8, 6, 4, 4, 4, 5, 8, 10, 9, 6]
_FLAGS_THAT_STOP = ("deceased", "bankrupt", "disputed", "cease_contact", "attorney_represented")
# The channel a promise is recorded under: a message or letter answered on the self-service page.
_PROMISE_CHANNEL = {
    "call": "call",
    "ai_call": "ai_call",
    "visit": "visit",
    "sms": "web",
    "email": "web",
    "letter": "web",
}
_SELF_POINT_KINDS = {
    "call": "mobile",
    "ai_call": "mobile",
    "sms": "mobile",
    "email": "email",
    "visit": "address",
    "letter": "address",
}
_ACCOUNT_STATUS_OF_EXIT = {"legal_review": "legal", "agency": "agency"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """What the run needs from the institution: its strategy, gate, costs and time zone."""

    compiled: CompiledStrategy
    gate: Gate
    costs: dict[str, int]
    timezone: str
    params: Params | None = None


@dataclass(frozen=True)
class Cases:
    """The simulated cases: one per debtor, over the accounts that live the simulated past."""

    accounts: Column  # account rows, ordered by case then most delinquent first
    case_of_account: Column  # each of those accounts' case
    lead: Column  # each case's most delinquent account (row in the account table)
    debtor: Column  # each case's debtor row
    opening: Column  # each of those accounts' balance when the window opens (minor units)


def simulated_accounts(portfolio: Portfolio) -> Column:
    """Return the account rows whose recent past is simulated (a boolean mask)."""
    accounts, debtors = portfolio.accounts, portfolio.debtors
    stopped = np.zeros(len(debtors), dtype=bool)
    for flag in _FLAGS_THAT_STOP:
        stopped |= np.asarray(debtors[flag], dtype=bool)
    mask: Column = (
        (accounts["status"] == "delinquent")
        & (accounts["days_past_due"] > 0)
        & ~stopped[accounts["debtor_index"]]
    )
    return mask


def _balance(accounts: Table) -> Column:
    total: Column = accounts["principal"] + accounts["interest"] + accounts["fees"]
    return total + accounts["penalty"]


def _cases(portfolio: Portfolio) -> Cases:
    accounts = portfolio.accounts
    rows = np.flatnonzero(simulated_accounts(portfolio))
    debtor = accounts["debtor_index"][rows]
    days = accounts["days_past_due"][rows]
    order = np.lexsort((rows, -days, debtor))
    rows, debtor = rows[order], debtor[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = debtor[1:] != debtor[:-1]
    case_of_account = np.cumsum(first) - 1
    return Cases(
        accounts=rows,
        case_of_account=case_of_account,
        lead=rows[first],
        debtor=debtor[first],
        opening=_balance(accounts)[rows],
    )


def simulate_history(
    portfolio: Portfolio, *, seed: int, setting: Setting, days: int = HISTORY_DAYS
) -> tuple[Portfolio, dict[str, int]]:
    """Replace the last ``days`` days of the portfolio's history by a simulator run.

    Returns the portfolio with its tables brought to the seeding date (complaints included), and
    the counts of what the run made (complaints, disputes, stop requests, wrong numbers).
    """
    if days % generator.SNAPSHOT_DAYS:
        raise ValueError(f"the simulated window must be whole months of 30 days, not {days}")
    cases = _cases(portfolio)
    as_of = portfolio.as_of
    start = as_of - timedelta(days=days)
    accounts = portfolio.accounts
    debtors = portfolio.debtors
    lead_days = accounts["days_past_due"][cases.lead].astype(np.int64)
    case_balance = np.bincount(
        cases.case_of_account, weights=cases.opening, minlength=len(cases.lead)
    )
    birth = debtors["birth_date"][cases.debtor]
    age = np.where(
        np.isnat(birth),
        np.nan,
        (np.datetime64(as_of, "D") - birth).astype(np.float64) / 365.25,
    )
    columns: dict[str, Any] = {
        "case_id": np.arange(len(cases.lead), dtype=np.int64),
        "account_id": cases.lead.astype(np.int64),
        "debtor_id": cases.debtor.astype(np.int64),
        # Day i of the run is ``start + i``: the lead account is ``lead_days`` past due today.
        "days_past_due": np.maximum(lead_days - days, 1).astype(np.float64),
        "enters_on": np.maximum(days + 1 - lead_days, 0),
        "balance": case_balance,
        "customer_type": np.asarray(debtors["kind"][cases.debtor], dtype=object),
        "age": age,
        "product": np.asarray(accounts["product"][cases.lead], dtype=object),
        "region": np.asarray(debtors["province"][cases.debtor], dtype=object),
        # Each debtor's zones as the gate will read them from the written rows: a debtor with a
        # Xinjiang address is contacted in the morning of Xinjiang time too.
        "timezones": debtor_zone_column(debtors, cases.debtor),
    }
    recorder = Recorder()
    settings = RunSettings(
        days=days,
        seed=seed,
        start=start,
        timezone=setting.timezone,
        costs=setting.costs,
        params=setting.params or default_params(),
        recorder=recorder,
    )
    simulation = Simulation(
        portfolio=engine.Portfolio.from_columns(columns),
        compiled=setting.compiled,
        gate=setting.gate,
        settings=settings,
        name="demo",
    )
    simulation.run()
    rng = np.random.default_rng(np.random.SeedSequence([seed, portfolio.flavour.stream, 11]))
    return _Builder(portfolio, cases, simulation, recorder, rng, start, days).build()


def debtor_zone_column(debtors: Table, rows: npt.NDArray[Any]) -> list[tuple[str, ...]]:
    """The zones of the debtors at ``rows`` as ``compliance.facts.service.debtors_facts`` reads
    them (the stored zone, then the address's), each distinct zone and address worked out once."""
    found: dict[tuple[str, str, str], tuple[str, ...]] = {}
    zones = []
    for key in zip(
        debtors["timezone"][rows].tolist(),
        debtors["province"][rows].tolist(),
        debtors["city"][rows].tolist(),
        strict=True,
    ):
        if key not in found:
            zone, province, city = key
            found[key] = tuple(
                each.zone
                for each in debtor_zones(
                    zone=zone, source=ZoneSource.COLUMN, address=address_zones(province, city)
                )
            ) or (zone,)
        zones.append(found[key])
    return zones


class _Builder:
    """Turns one recorded run into the portfolio's tables."""

    def __init__(
        self,
        portfolio: Portfolio,
        cases: Cases,
        simulation: Simulation,
        recorder: Recorder,
        rng: np.random.Generator,
        start: date,
        days: int,
    ) -> None:
        self.portfolio = portfolio
        self.cases = cases
        self.simulation = simulation
        self.recorder = recorder
        self.rng = rng
        self.start = np.datetime64(start, "D")
        self.days = days
        self.today = np.datetime64(portfolio.as_of, "D")
        self.currency = portfolio.flavour.currency
        # Each case's position of its first account in ``cases.accounts``.
        self.first_of_case = np.searchsorted(cases.case_of_account, np.arange(len(cases.lead)))

    def date_of(self, day: Column) -> Column:
        return self.start + np.asarray(day, dtype=np.int64).astype("timedelta64[D]")

    def local_instants(self, day: Column, hour: Column) -> Column:
        """UTC instants of local (China) times, ``hour`` a float hour of the day."""
        seconds = np.rint(np.asarray(hour, dtype=np.float64) * 3600).astype(np.int64)
        instants: Column = self.date_of(day).astype("datetime64[s]") + (
            seconds - CHINA_UTC_OFFSET_HOURS * 3600
        ).astype("timedelta64[s]")
        return instants

    def build(self) -> tuple[Portfolio, dict[str, int]]:
        payments, paid = self._payments()
        accounts, debtors = self._today(paid)
        portfolio = replace(
            self.portfolio,
            accounts=accounts,
            debtors=debtors,
            payments=payments,
            delinquency_events=self._events(),
            promises=self._promises(),
            contact_attempts=self._contacts(),
        )
        portfolio = replace(portfolio, complaints=self._complaints(portfolio.contact_attempts))
        plans, instalments = self._plans()
        portfolio = replace(portfolio, payment_plans=plans, plan_instalments=instalments)
        contacts = self.recorder.table("contacts")
        outcome = contacts["outcome"]
        extra = {
            "complaints": int(contacts["complaint"].sum()),
            "disputes": int(contacts["dispute"].sum()),
            "cease_requests": int(contacts["cease"].sum()),
            "wrong_numbers": int((outcome == engine.OUTCOME_WRONG_NUMBER).sum()),
        }
        return portfolio, extra

    # -- payments -----------------------------------------------------------------------------

    def _payments(self) -> tuple[Table, Column]:
        """The window's payments: the generator's for other accounts, the run's for the cases.

        Also returns, per simulated account (``cases.accounts`` order), the amount paid in the
        window.
        """
        cases, recorder = self.cases, self.recorder
        old = self.portfolio.payments
        simulated = np.zeros(len(self.portfolio.accounts), dtype=bool)
        simulated[cases.accounts] = True
        window_start = self.start.astype("datetime64[s]") - np.timedelta64(
            CHINA_UTC_OFFSET_HOURS * 3600, "s"
        )
        keep = ~simulated[old["account_index"]] | (old["paid_at"] < window_start)
        recorded = recorder.table("payments")
        row = recorded["row"]
        amount = np.rint(recorded["amount"]).astype(np.int64)
        # Oldest debt first: each case's accounts in order, each up to its opening balance.
        cumulative_case = _cumulative_within(row, amount)
        counts = np.bincount(cases.case_of_account, minlength=len(cases.lead))[row]
        payment = np.repeat(np.arange(len(row)), counts)
        position = self.first_of_case[row][payment] + _ranks(payment)
        opening = cases.opening[position]
        before_account = np.cumsum(cases.opening) - cases.opening
        threshold = before_account[position] - before_account[self.first_of_case[row]][payment]
        now = cumulative_case[payment]
        then = now - amount[payment]
        share = np.clip(now - threshold, 0, opening) - np.clip(then - threshold, 0, opening)
        paying = share > 0
        payment, position, share = payment[paying], position[paying], share[paying]
        paid_before = _cumulative_within(position, share) - share
        size = len(share)
        account_rows = cases.accounts[position]
        accounts = self.portfolio.accounts
        columns: dict[str, Column] = {
            "account_index": account_rows,
            "amount": share,
            "currency": np.full(size, self.currency),
            "paid_at": self.local_instants(
                recorded["day"][payment],
                weighted_choice(self.rng, _PAYMENT_HOUR_WEIGHTS, size)
                + 8
                + self.rng.integers(0, 60, size) / 60,
            ),
            "channel": self._payment_channels(size),
        }
        # Penalty, then fees, interest and principal.
        edge = np.zeros(size, dtype=np.int64)
        for part in ("penalty", "fees", "interest", "principal"):
            component = accounts[part][account_rows]
            columns[f"applied_{part}"] = np.clip(
                paid_before + share - edge, 0, component
            ) - np.clip(paid_before - edge, 0, component)
            edge = edge + component
        columns["unapplied"] = np.zeros(size, dtype=np.int64)
        paid = np.bincount(position, weights=share, minlength=len(cases.accounts)).astype(np.int64)
        # The day each account is paid off (after the run: never).
        self.paid_off_day = np.full(len(cases.accounts), self.days + 1, dtype=np.int64)
        final = paid_before + share >= cases.opening[position]
        self.paid_off_day[position[final]] = recorded["day"][payment[final]]
        merged = {
            name: np.concatenate([old[name][keep], columns[name]])
            for name in columns
            if name in old.columns
        }
        order = np.lexsort((merged["paid_at"], merged["account_index"]))
        merged = {name: values[order] for name, values in merged.items()}
        merged["external_id"] = concat(
            "P", np.strings.zfill(np.arange(1, len(order) + 1).astype("U"), 10)
        )
        return Table(merged), paid

    def _payment_channels(self, size: int) -> Column:
        names = np.array([name for name, _ in self.portfolio.flavour.channels])
        weights = [weight for _, weight in self.portfolio.flavour.channels]
        channels: Column = names[weighted_choice(self.rng, weights, size)]
        return channels

    # -- today --------------------------------------------------------------------------------

    def _today(self, paid: Column) -> tuple[Table, Table]:
        """Accounts and debtors as the run leaves them on the seeding date."""
        cases, state = self.cases, self.simulation.state
        accounts = {name: values.copy() for name, values in self.portfolio.accounts.columns.items()}
        rows = cases.accounts
        left = paid.copy()
        for part in ("penalty", "fees", "interest", "principal"):
            taken = np.minimum(left, accounts[part][rows])
            accounts[part][rows] -= taken
            left -= taken
        balance = _balance(Table(accounts))[rows]
        case = cases.case_of_account
        cured = balance == 0
        dpd = accounts["days_past_due"]
        dpd[rows[cured]] = 0
        accounts["overdue_amount"][rows] = np.where(
            cured, 0, np.minimum(accounts["overdue_amount"][rows], balance)
        )
        accounts["minimum_due"][rows] = np.where(
            cured, 0, np.minimum(accounts["minimum_due"][rows], balance)
        )
        status = accounts["status"].astype("U16")
        status[rows[cured]] = "closed"
        disputed = state.dispute_until[case] > self.days - 1
        status[rows[disputed & ~cured]] = "disputed"
        handed = self._handed_over_status()
        status[rows] = np.where(
            (handed[case] != "") & ~cured & ~disputed, handed[case], status[rows]
        )
        accounts["status"] = status
        accounts["bucket"] = np.array(BUCKETS)[bucket_index(dpd)]
        # Agents keep queues only of accounts still delinquent.
        accounts["agent_slot"] = np.where(status == "delinquent", accounts["agent_slot"], -1)
        debtors = dict(self.portfolio.debtors.columns)
        for flag, mask in (
            ("disputed", state.dispute_until > self.days - 1),
            ("cease_contact", state.ceased),
        ):
            values = debtors[flag].copy()
            values[cases.debtor[mask & state.active]] = True
            debtors[flag] = values
        return Table(accounts), Table(debtors)

    def _handed_over_status(self) -> Column:
        events = self.recorder.table("events")
        handed = np.full(len(self.cases.lead), "", dtype="U16")
        over = events["event"] == engine.EVENT_HAND_OVER
        actions = np.array(
            [
                _ACCOUNT_STATUS_OF_EXIT.get(step.action or "", "")
                for step in self.simulation.compiled.steps
            ],
            dtype="U16",
        )
        handed[events["row"][over]] = actions[events["step"][over]]
        return handed

    # -- delinquency events ---------------------------------------------------------------------

    def _events(self) -> Table:
        """Bucket and status changes: the generator's before the window, the run's in it."""
        cases = self.cases
        old = self.portfolio.delinquency_events
        simulated = np.zeros(len(self.portfolio.accounts), dtype=bool)
        simulated[cases.accounts] = True
        window_start = self.start.astype("datetime64[s]") - np.timedelta64(
            CHINA_UTC_OFFSET_HOURS * 3600, "s"
        )
        keep = ~simulated[old["account_index"]] | (old["effective_at"] <= window_start)
        accounts = self.portfolio.accounts
        days_today = accounts["days_past_due"][cases.accounts].astype(np.int64)
        paid_off_day = self.paid_off_day
        # The account crosses into bucket b (M1 … M6+) on the day it is 30(b-1)+1 days past due.
        crossings = np.arange(1, len(BUCKETS))
        day = (self.days - days_today)[:, None] + (crossings - 1)[None, :] * 30 + 1
        valid = (day > 0) & (day <= np.minimum(paid_off_day, self.days)[:, None])
        position, which = np.nonzero(valid)
        crossing_day = day[position, which]
        dpd = days_today[position] - (self.days - crossing_day)
        status = np.full(len(position), "delinquent", dtype="U16")
        cause = np.full(len(position), "cycle", dtype="U16")
        # Paid off: the day's last payment brings the account to M0, closed.
        cured_position = np.flatnonzero(paid_off_day <= self.days)
        position = np.concatenate([position, cured_position])
        crossing_day = np.concatenate([crossing_day, paid_off_day[cured_position]])
        dpd = np.concatenate([dpd, np.zeros(len(cured_position), dtype=np.int64)])
        status = np.concatenate([status, np.full(len(cured_position), "closed", dtype="U16")])
        cause = np.concatenate([cause, np.full(len(cured_position), "payment", dtype="U16")])
        balance = self._balance_on(position, crossing_day)
        at_midnight = self.local_instants(crossing_day, np.zeros(len(position)))
        # A pay-off is recorded at the end of its day, after that day's payments.
        effective_at = np.where(
            cause == "payment", at_midnight + np.timedelta64(22 * 3600, "s"), at_midnight
        )
        new = {
            "account_index": cases.accounts[position],
            "effective_at": effective_at,
            "recorded_at": effective_at + np.timedelta64(2 * 3600, "s"),
            "days_past_due": dpd,
            "bucket": np.array(BUCKETS)[bucket_index(dpd)],
            "status": status,
            "balance": np.where(cause == "payment", 0, balance),
            "cause": cause,
            "superseded": np.zeros(len(position), dtype=bool),
        }
        merged = {name: np.concatenate([old[name][keep], new[name]]) for name in new}
        order = np.lexsort((merged["effective_at"], merged["account_index"]))
        return Table({name: values[order] for name, values in merged.items()})

    def _balance_on(self, position: Column, day: Column) -> Column:
        """Each simulated account's balance at the start of a day of the run."""
        payments = self.recorder.table("payments")
        # The account's share of its case's payments before that day (oldest debt first).
        cases = self.cases
        case = cases.case_of_account[position]
        row, amount = payments["row"], np.rint(payments["amount"]).astype(np.int64)
        key = row * (self.days + 2) + payments["day"]
        order = np.argsort(key, kind="stable")
        cumulative = np.concatenate([[0], np.cumsum(amount[order])])
        sorted_key = key[order]
        case_start = np.searchsorted(sorted_key, case * (self.days + 2))
        before = np.searchsorted(sorted_key, case * (self.days + 2) + day)
        case_paid = cumulative[before] - cumulative[case_start]
        before_account = np.cumsum(cases.opening) - cases.opening
        threshold = before_account[position] - before_account[self.first_of_case[case]]
        opening = cases.opening[position]
        result: Column = opening - np.clip(case_paid - threshold, 0, opening)
        return result

    def _owing_account(self, row: Column, day: Column) -> Column:
        """The account (position) of each case its next payment goes to at the start of a day."""
        counts = np.bincount(self.cases.case_of_account, minlength=len(self.cases.lead))[row]
        item = np.repeat(np.arange(len(row)), counts)
        position = self.first_of_case[row][item] + _ranks(item)
        owing = self._balance_on(position, np.asarray(day)[item]) > 0
        # The first account still owing (the lead when none is: the case is paid off).
        never = len(self.cases.accounts)
        first_owing = np.full(len(row), never, dtype=np.int64)
        np.minimum.at(first_owing, item[owing], position[owing])
        chosen: Column = np.where(first_owing < never, first_owing, self.first_of_case[row])
        return chosen

    # -- promises -----------------------------------------------------------------------------

    def _promises(self) -> Table:
        """Promises: the generator's settled before the window, the run's in it."""
        cases, recorder = self.cases, self.recorder
        old = self.portfolio.promises
        simulated = np.zeros(len(self.portfolio.accounts), dtype=bool)
        simulated[cases.accounts] = True
        grace = np.timedelta64(generator.PROMISE_GRACE_DAYS, "D")
        keep = ~simulated[old["account_index"]] | (old["due_date"] + grace < self.start)
        made = recorder.table("promises")
        results = recorder.table("promise_results")
        rank = _ranks_by(made["row"], made["day"])
        result_rank = _ranks_by(results["row"], results["day"])
        # The k-th promise of a case is settled by its k-th result (one promise open at a time).
        settled = np.full(len(made["row"]), -1, dtype=np.int64)
        key_made = made["row"] * 10_000 + rank
        key_result = results["row"] * 10_000 + result_rank
        order = np.argsort(key_result)
        found = np.searchsorted(key_result[order], key_made)
        found = np.minimum(found, max(len(order) - 1, 0))
        hit = len(order) > 0
        if hit:
            matches = key_result[order][found] == key_made
            settled[matches] = order[found[matches]]
        row = made["row"]
        # On the account the case pays next, at most its balance then.
        position = self._owing_account(row, made["day"])
        balance_then = self._balance_on(position, made["day"])
        amount = np.minimum(np.rint(made["amount"]).astype(np.int64), balance_then)
        count = len(row)
        is_settled = settled >= 0
        kept = np.zeros(count, dtype=bool)
        kept[is_settled] = results["kept"][settled[is_settled]]
        settle_day = np.where(is_settled, results["day"][np.maximum(settled, 0)], 0)
        # The run settles a promise on the last day of its grace: due that many days before.
        due_date = self.date_of(made["due"]) - grace
        status = np.where(kept, "kept", np.where(is_settled, "broken", "pending"))
        resolved_at = np.where(
            kept,
            self.local_instants(settle_day, np.full(count, 12.0)),
            np.where(
                is_settled,
                self.local_instants(settle_day, np.full(count, 23.5)),
                np.datetime64("NaT", "s"),
            ),
        )
        channel = np.array([_PROMISE_CHANNEL[name] for name in behaviour.CHANNELS])[made["channel"]]
        new = {
            "account_index": cases.accounts[position],
            "amount": amount,
            "currency": np.full(count, self.currency),
            "promised_on": self.date_of(made["day"]),
            "due_date": due_date,
            "channel": channel,
            "status": status,
            "paid_amount": np.where(kept, amount, 0),
            "resolved_at": resolved_at,
            # The agent who took it on a call or visit (the demo agent of that slot).
            "agent_slot": self._agent_slot(row, np.isin(made["channel"], list(behaviour.WORKED))),
        }
        old_columns = dict(old.columns) | {"agent_slot": np.full(len(old), -1, dtype=np.int64)}
        merged = {name: np.concatenate([old_columns[name][keep], new[name]]) for name in new}
        return Table(merged)

    def _agent_slot(self, row: Column, worked: Column) -> Column:
        """The demo agent (slot) who works each case's calls and visits: its queue's, or one
        of the agents by debtor; -1 for what no agent does."""
        slot = self.portfolio.accounts["agent_slot"][self.cases.lead[row]]
        debtor = self.cases.debtor[row]
        chosen: Column = np.where(
            worked, np.where(slot >= 0, slot, debtor % generator.DEMO_AGENTS), -1
        )
        return chosen

    # -- plans --------------------------------------------------------------------------------

    def _plans(self) -> tuple[Table, Table]:
        cases, recorder = self.cases, self.recorder
        plans = recorder.table("plans")
        results = recorder.table("plan_results")
        row, day = plans["row"], plans["day"]
        count = len(row)
        # Each instalment result belongs to the case's latest plan agreed on an earlier day (a
        # day's instalments are settled before its contacts, which may agree a new plan).
        key_plan = row * (self.days + 2) + day
        order = np.argsort(key_plan, kind="stable")
        key_result = results["row"] * (self.days + 2) + results["day"]
        owner = (
            order[np.searchsorted(key_plan[order], key_result, side="left") - 1]
            if count
            else (np.zeros(0, dtype=np.int64))
        )
        paid = np.bincount(owner[results["paid"]], minlength=count)
        missed = np.zeros(count, dtype=bool)
        missed[owner[~results["paid"]]] = True
        completed = np.zeros(count, dtype=bool)
        completed[owner[results["completed"]]] = True
        missed_day = np.full(count, -1, dtype=np.int64)
        missed_day[owner[~results["paid"]]] = results["day"][~results["paid"]]
        done_day = np.full(count, -1, dtype=np.int64)
        done_day[owner[results["completed"]]] = results["day"][results["completed"]]
        amount = np.maximum(np.rint(plans["amount"]).astype(np.int64), 1)
        # The plan is on the account the case pays next, which its instalments pay first: it
        # covers what that account owed when agreed (a case's other accounts are paid after).
        position = self._owing_account(row, day)
        owed = self._balance_on(position, day)
        instalments = np.minimum(plans["instalments"].astype(np.int64), -(-owed // amount))
        total = np.minimum(amount * plans["instalments"].astype(np.int64), owed)
        last_paid_day = np.full(count, -1, dtype=np.int64)
        np.maximum.at(last_paid_day, owner[results["paid"]], results["day"][results["paid"]])
        completed |= (paid >= instalments) & (paid > 0)
        done_day = np.where(done_day >= 0, done_day, last_paid_day)
        status = np.where(completed, "completed", np.where(missed, "broken", "active"))
        resolved_day = np.where(completed, done_day, missed_day)
        made_at = self.local_instants(day, np.full(count, 12.0))
        table = Table(
            {
                "account_index": cases.accounts[position],
                "debtor_index": cases.debtor[row],
                "currency": np.full(count, self.currency),
                "balance": total,
                "discount": np.zeros(count, dtype=np.int64),
                "total": total,
                "down_payment": np.zeros(count, dtype=np.int64),
                "instalment_count": instalments,
                "frequency": np.full(count, "monthly"),
                "start_on": self.date_of(plans["first_due"]),
                "status": status,
                "standing": np.where(status == "active", "on_track", status),
                "paid_amount": np.minimum(paid * amount, total),
                "overdue_amount": np.zeros(count, dtype=np.int64),
                "needs_approval": np.zeros(count, dtype=bool),
                "decided_at": made_at,
                # Agreed then: plan reconciliation counts payments from the day a plan was made.
                "created_at": made_at,
                "updated_at": made_at,
                "resolved_at": np.where(
                    resolved_day >= 0,
                    self.local_instants(np.maximum(resolved_day, 0), np.full(count, 23.5)),
                    np.datetime64("NaT", "s"),
                ),
            }
        )
        plan = np.repeat(np.arange(count), instalments)
        number = _ranks(plan) + 1
        instalment_table = Table(
            {
                "plan_index": plan,
                "number": number,
                "due_on": self.date_of(plans["first_due"][plan] + (number - 1) * 30),
                # The last one is what is left of the account's balance.
                "amount": np.minimum(number * amount[plan], total[plan])
                - np.minimum((number - 1) * amount[plan], total[plan]),
            }
        )
        return table, instalment_table

    # -- contacts -----------------------------------------------------------------------------

    def _contacts(self) -> Table:
        """The contact log of the window: every contact the gate allowed and the run made."""
        cases, recorder = self.cases, self.recorder
        contacts = recorder.table("contacts")
        row, channel_code = contacts["row"], contacts["channel"]
        size = len(row)
        channel = np.array(behaviour.CHANNELS)[channel_code]
        spoken = np.isin(channel_code, [behaviour.CALL, behaviour.AI_CALL, behaviour.VISIT])
        worked = np.isin(channel_code, list(behaviour.WORKED))
        names = np.array(
            [
                OutcomeCode.NO_ANSWER,
                OutcomeCode.RIGHT_PARTY,
                OutcomeCode.WRONG_NUMBER,
                OutcomeCode.MESSAGE_DELIVERED,
                OutcomeCode.MESSAGE_FAILED,
            ],
            dtype="U24",
        )
        outcome = names[contacts["outcome"]]
        right_party = contacts["outcome"] == engine.OUTCOME_RIGHT_PARTY
        # What the conversation came to, as the agent logs it.
        for flag, code in (
            ("hardship", OutcomeCode.HARDSHIP),
            ("plan", OutcomeCode.HARDSHIP),
            ("cease", OutcomeCode.REFUSED_CONTACT),
            ("dispute", OutcomeCode.DISPUTE),
            ("promise", OutcomeCode.PROMISE_MADE),
        ):
            outcome = np.where(right_party & contacts[flag], code.value, outcome)
        # Messages go out from 10:00 over two hours; agents work their lists as the run says.
        hour = np.where(worked, contacts["hour"], 10.0 + self.rng.integers(0, 120, size) / 60)
        started_at = self.local_instants(contacts["day"], hour)
        duration = np.where(
            right_party,
            self.rng.integers(90, 420, size),
            np.where(spoken, self.rng.integers(15, 45, size), 0),
        )
        debtor = cases.debtor[row]
        points = self._self_points(debtor, channel)
        agent_slot = self._agent_slot(row, worked)
        return Table(
            {
                "debtor_index": debtor,
                "account_index": cases.lead[row],
                "contact_index": points,
                "channel": channel,
                "party": np.full(size, "debtor"),
                "direction": np.full(size, "outbound"),
                "status": np.full(size, "made"),
                "planned_at": started_at,
                "started_at": started_at,
                "ended_at": started_at + duration.astype("timedelta64[s]"),
                "duration_seconds": _maybe(duration, spoken),
                "outcome": outcome,
                "effective": right_party & spoken & (channel_code != behaviour.VISIT),
                "agent_slot": agent_slot,
            }
        )

    def _complaints(self, attempts: Table) -> Table:
        """The complaints of the window: each debtor's complaint about a contact, when it ended,
        on that contact's channel and to its agent (``agent_slot``, -1 for a message)."""
        made = np.asarray(self.recorder.table("contacts")["complaint"], dtype=bool)
        return Table(
            {
                "debtor_index": attempts["debtor_index"][made],
                "account_index": attempts["account_index"][made],
                "channel": attempts["channel"][made],
                "agent_slot": attempts["agent_slot"][made],
                "at": attempts["ended_at"][made],
            }
        )

    def _self_points(self, debtor: Column, channel: Column) -> Column:
        """Each contact's contact point: the debtor's own first one of the channel's kind."""
        points = self.portfolio.contact_points
        found = np.full(len(debtor), -1, dtype=np.int64)
        own = points["relation"] == "self"
        for kind in sorted(set(_SELF_POINT_KINDS.values())):
            rows = np.flatnonzero(own & (points["kind"] == kind))
            owners = points["debtor_index"][rows]
            first = np.ones(len(rows), dtype=bool)
            first[1:] = owners[1:] != owners[:-1]
            rows, owners = rows[first], owners[first]
            wanted = np.isin(channel, [c for c, k in _SELF_POINT_KINDS.items() if k == kind])
            at = np.searchsorted(owners, debtor[wanted])
            at = np.minimum(at, max(len(owners) - 1, 0))
            if len(owners):
                hit = owners[at] == debtor[wanted]
                found[np.flatnonzero(wanted)[hit]] = rows[at[hit]]
        return found


def _maybe(values: Column, present: Column) -> Column:
    result: Column = np.full(len(values), None, dtype=object)
    result[present] = values[present].tolist()
    return result


def _ranks(group: Column) -> Column:
    """Each element's position within its run of equal, adjacent values of ``group``."""
    size = len(group)
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.ones(size, dtype=bool)
    start[1:] = group[1:] != group[:-1]
    first = np.flatnonzero(start)
    ranks: Column = np.arange(size) - np.repeat(first, np.diff(np.append(first, size)))
    return ranks


def _ranks_by(group: Column, order_key: Column) -> Column:
    """Each element's rank within its group, by ``order_key`` (then position)."""
    order = np.lexsort((np.arange(len(group)), order_key, group))
    ranks = np.empty(len(group), dtype=np.int64)
    ranks[order] = _ranks(group[order])
    return ranks


def _cumulative_within(group: Column, amount: Column) -> Column:
    """Running total of ``amount`` within each group, in the order given."""
    order = np.argsort(group, kind="stable")
    totals = np.cumsum(amount[order])
    sorted_group = group[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = sorted_group[1:] != sorted_group[:-1]
    base = np.repeat(
        np.concatenate([[0], totals])[np.flatnonzero(start)],
        np.diff(np.append(np.flatnonzero(start), len(order))),
    )
    result = np.empty(len(order), dtype=totals.dtype if len(order) else np.int64)
    result[order] = totals - base
    return result
