"""Collection features and labels as of a date, computed column-wise from portfolio tables.

One function computes features for training snapshots and for scoring runs alike, so the
model never sees data shaped differently from what it learned on. Nothing after the as-of
date is read for features; labels look only at the window after it.

Features (money in minor units, as stored):

| feature | meaning |
|---|---|
| days_past_due | days past due at the as-of date (latest delinquency event, else the account) |
| bucket | delinquency bucket as a rank: M0 = 0, M1 = 1 … M6+ = 7 |
| balance | outstanding balance at the as-of date |
| utilisation | balance ÷ credit limit (missing without a limit) |
| months_on_book | months from opening to the as-of date |
| product | product type (categorical) |
| payment_ratio_1m / _3m / _6m | paid in the last 1/3/6 months ÷ balance at the as-of date |
| months_delinquent_12m | month-ends of the last twelve with days past due above zero |
| days_since_last_payment | days since the last payment (missing if none yet) |
| last_payment_amount | amount of the last payment (missing if none yet) |
| valid_self_contact | 1 when the debtor has a valid contact point of their own |
| contact_attempts_30d | contacts made about the debtor in the last 30 days, on any account |
| right_party_contacts_90d | conversations with the debtor in person in the last 90 days |
| days_since_right_party_contact | days since the last conversation with the debtor (else missing) |
| promises_made_90d | promises to pay made on the account in the last 90 days |
| promises_broken_180d | promises on the account found broken in the last 180 days |
| promise_kept_ratio | kept ÷ resolved (kept, partially kept, broken) promises; missing if none |
| days_since_broken_promise | days since a promise on the account was last found broken |
| consecutive_broken_promises | broken promises in a row, back from the latest resolved one |
| plans_broken_365d | payment plans on the account found broken in the last 365 days |
| on_plan | 1 when a payment plan on the account was running at the as-of date |
| age_band | debtor's age band (categorical; lawful, coarse) |
| region | debtor's province (categorical) |
| customer_type | individual or business (categorical) |

Contact history comes from the contact log (``recoup.contact``): an attempt is an outbound
contact that was made (its outcome reported), dated when it happened; a right-party contact
is a contact made, in either direction, whose outcome code reached the debtor (spoke with
them, a promise, a dispute, …). Counts are per debtor, as the CN frequency rules count them,
so every account of a debtor carries the same contact history.

Promise history is per account and as of the cutoff: a promise counts as made on its
``promised_on`` date and as resolved (kept, partially kept, broken) only from its
``resolved_at`` instant, so a snapshot never sees an outcome reconciliation had not yet found.
Cancelled promises count as made but never as resolved. Without any promise the counts are
0 and the ratio and recency are missing, like the other "no data yet" features; training
drops a column that is constant or missing throughout.

Plan history is per account and as of the cutoff too: a plan runs from when it was agreed
(its approval, when it needed one; else its creation) until it was resolved (completed,
broken, cancelled); a plan waiting for approval or rejected never ran. A broken plan counts
from its ``resolved_at`` instant.

A model uses only the features it was trained with (its spec names them), so adding a
feature here changes nothing for models already trained: they keep scoring as before, and
the next model trained may use the new columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from recoup.scoring.spec import FloatArray

BUCKET_RANKS = {"M0": 0, "M1": 1, "M2": 2, "M3": 3, "M4": 4, "M5": 5, "M6": 6, "M6+": 7}
AGE_BANDS = ((0, "under 25"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55 and over"))
DAYS_PER_MONTH = 30
RATIO_CAP = 10.0

FEATURE_KINDS: dict[str, str] = {
    "days_past_due": "numeric",
    "bucket": "numeric",
    "balance": "numeric",
    "utilisation": "numeric",
    "months_on_book": "numeric",
    "product": "categorical",
    "payment_ratio_1m": "numeric",
    "payment_ratio_3m": "numeric",
    "payment_ratio_6m": "numeric",
    "months_delinquent_12m": "numeric",
    "days_since_last_payment": "numeric",
    "last_payment_amount": "numeric",
    "valid_self_contact": "numeric",
    "contact_attempts_30d": "numeric",
    "right_party_contacts_90d": "numeric",
    "days_since_right_party_contact": "numeric",
    "promises_made_90d": "numeric",
    "promises_broken_180d": "numeric",
    "promise_kept_ratio": "numeric",
    "days_since_broken_promise": "numeric",
    "consecutive_broken_promises": "numeric",
    "plans_broken_365d": "numeric",
    "on_plan": "numeric",
    "age_band": "categorical",
    "region": "categorical",
    "customer_type": "categorical",
}
FEATURE_NAMES = tuple(FEATURE_KINDS)

ACCOUNT_COLUMNS = (
    "account_id",
    "debtor_id",
    "product",
    "currency",
    "credit_limit",
    "principal",
    "balance",
    "overdue_amount",
    "minimum_due",
    "days_past_due",
    "bucket",
    "status",
    "opened_on",
    "debtor_kind",
    "birth_date",
    "province",
)
EVENT_COLUMNS = ("account_id", "effective_at", "days_past_due", "bucket", "balance")
PAYMENT_COLUMNS = ("account_id", "paid_at", "amount")
CONTACT_COLUMNS = ("debtor_id", "created_at")
CONTACT_ATTEMPT_COLUMNS = ("debtor_id", "happened_at", "outbound", "right_party")
ATTEMPT_WINDOW_DAYS = 30
RIGHT_PARTY_WINDOW_DAYS = 90
PROMISE_COLUMNS = ("account_id", "promised_on", "due_date", "status", "resolved_at")
PROMISES_MADE_WINDOW_DAYS = 90
PROMISES_BROKEN_WINDOW_DAYS = 180
PROMISE_KEPT = "kept"
PROMISE_BROKEN = "broken"
PROMISE_RESOLVED = ("kept", "partially_kept", "broken")
PLAN_COLUMNS = ("account_id", "created_at", "needs_approval", "decided_at", "status", "resolved_at")
PLANS_BROKEN_WINDOW_DAYS = 365
PLAN_BROKEN = "broken"
# The statuses of a plan that was agreed at some point (it ran, or still runs).
PLAN_AGREED = ("active", "completed", "broken", "cancelled")


@dataclass(frozen=True, slots=True)
class PortfolioTables:
    """Column data of one institution's portfolio, read once per run."""

    accounts: pd.DataFrame
    events: pd.DataFrame
    payments: pd.DataFrame
    valid_self_contacts: pd.DataFrame
    contact_attempts: pd.DataFrame
    promises: pd.DataFrame = field(default_factory=lambda: _promise_frame([]))
    plans: pd.DataFrame = field(default_factory=lambda: _plan_frame([]))


@dataclass(frozen=True, slots=True)
class AccountState:
    """Per-account state at a date: days past due, bucket rank and balance."""

    days_past_due: np.ndarray
    bucket: np.ndarray
    balance: np.ndarray


def end_of_day(day: date) -> pd.Timestamp:
    """Return the first instant after a date, in UTC: everything before it is 'as of' that date."""
    return pd.Timestamp(datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC))


def tables_from_rows(
    *,
    accounts: list[tuple[object, ...]],
    events: list[tuple[object, ...]],
    payments: list[tuple[object, ...]],
    valid_self_contacts: list[tuple[object, ...]],
    contact_attempts: list[tuple[object, ...]] | None = None,
    promises: list[tuple[object, ...]] | None = None,
    plans: list[tuple[object, ...]] | None = None,
) -> PortfolioTables:
    """Build portfolio tables from query rows, with UTC timestamps throughout."""
    account_frame = pd.DataFrame(accounts, columns=list(ACCOUNT_COLUMNS))
    event_frame = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    payment_frame = pd.DataFrame(payments, columns=list(PAYMENT_COLUMNS))
    contact_frame = pd.DataFrame(valid_self_contacts, columns=list(CONTACT_COLUMNS))
    event_frame["effective_at"] = _instants(event_frame["effective_at"])
    payment_frame["paid_at"] = _instants(payment_frame["paid_at"])
    contact_frame["created_at"] = _instants(contact_frame["created_at"])
    attempt_frame = pd.DataFrame(contact_attempts or [], columns=list(CONTACT_ATTEMPT_COLUMNS))
    attempt_frame["happened_at"] = _instants(attempt_frame["happened_at"])
    return PortfolioTables(
        accounts=account_frame.sort_values("account_id").reset_index(drop=True),
        events=event_frame.sort_values(["effective_at", "account_id"]).reset_index(drop=True),
        payments=payment_frame,
        valid_self_contacts=contact_frame,
        contact_attempts=attempt_frame,
        promises=_promise_frame(promises or []),
        plans=_plan_frame(plans or []),
    )


def _instants(values: pd.Series) -> pd.Series:
    """Return UTC timestamps from datetimes or the ISO text SQLite stores (naive = UTC)."""
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _promise_frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    """Return promise rows with dates as day timestamps and resolution instants in UTC."""
    frame = pd.DataFrame(rows, columns=list(PROMISE_COLUMNS))
    frame["promised_on"] = pd.to_datetime(frame["promised_on"])
    frame["due_date"] = pd.to_datetime(frame["due_date"])
    frame["resolved_at"] = pd.to_datetime(frame["resolved_at"], utc=True)
    frame["status"] = frame["status"].astype(str)
    return frame


def _plan_frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    """Return plan rows with the instant each was agreed (``agreed_at``; NaT if it never was)."""
    frame = pd.DataFrame(rows, columns=list(PLAN_COLUMNS))
    for column in ("created_at", "decided_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["status"] = frame["status"].astype(str)
    needed = frame["needs_approval"].astype(bool)
    agreed = frame["created_at"].where(~needed, frame["decided_at"])
    frame["agreed_at"] = agreed.where(frame["status"].isin(PLAN_AGREED))
    return frame


def state_as_of(tables: PortfolioTables, cutoff: pd.Timestamp) -> AccountState:
    """Return each account's delinquency state from its latest event before the cutoff.

    Accounts with no history at all fall back to their current row; accounts whose history
    starts after the cutoff did not exist yet and get NaN.
    """
    accounts = tables.accounts
    days = accounts["days_past_due"].to_numpy(dtype=np.float64).copy()
    buckets = accounts["bucket"].map(BUCKET_RANKS).to_numpy(dtype=np.float64).copy()
    balance = accounts["balance"].to_numpy(dtype=np.float64).copy()
    later_only = accounts["account_id"].isin(tables.events["account_id"]).to_numpy().copy()
    events = tables.events[tables.events["effective_at"] < cutoff]
    if len(events):
        latest = events.drop_duplicates("account_id", keep="last").set_index("account_id")
        position = pd.Index(accounts["account_id"]).get_indexer(latest.index)
        found = position >= 0
        rows = position[found]
        later_only[rows] = False
        days[rows] = latest["days_past_due"].to_numpy(dtype=np.float64)[found]
        buckets[rows] = latest["bucket"].map(BUCKET_RANKS).to_numpy(dtype=np.float64)[found]
        balance[rows] = latest["balance"].to_numpy(dtype=np.float64)[found]
    days[later_only] = np.nan
    buckets[later_only] = np.nan
    balance[later_only] = np.nan
    return AccountState(days_past_due=days, bucket=buckets, balance=balance)


def _paid_between(tables: PortfolioTables, start: pd.Timestamp, end: pd.Timestamp) -> FloatArray:
    """Return the amount each account paid in [start, end)."""
    payments = tables.payments
    window = payments[(payments["paid_at"] >= start) & (payments["paid_at"] < end)]
    totals = window.groupby("account_id")["amount"].sum()
    paid: FloatArray = totals.reindex(tables.accounts["account_id"], fill_value=0).to_numpy(
        dtype=np.float64
    )
    return paid


def _contact_history(tables: PortfolioTables, cutoff: pd.Timestamp) -> dict[str, FloatArray]:
    """Return each account's debtor-level contact attempts, right-party contacts and recency."""
    contacts = tables.contact_attempts
    contacts = contacts[contacts["happened_at"] < cutoff]
    attempts = contacts[contacts["outbound"].astype(bool)]
    right_party = contacts[contacts["right_party"].astype(bool)]
    debtors = tables.accounts["debtor_id"]
    recent_attempts = attempts[
        attempts["happened_at"] >= cutoff - pd.Timedelta(days=ATTEMPT_WINDOW_DAYS)
    ]
    recent_right_party = right_party[
        right_party["happened_at"] >= cutoff - pd.Timedelta(days=RIGHT_PARTY_WINDOW_DAYS)
    ]
    last_right_party = right_party.groupby("debtor_id")["happened_at"].max().reindex(debtors)
    return {
        "contact_attempts_30d": recent_attempts.groupby("debtor_id")
        .size()
        .reindex(debtors, fill_value=0)
        .to_numpy(dtype=np.float64),
        "right_party_contacts_90d": recent_right_party.groupby("debtor_id")
        .size()
        .reindex(debtors, fill_value=0)
        .to_numpy(dtype=np.float64),
        "days_since_right_party_contact": (cutoff - last_right_party)
        .dt.total_seconds()
        .to_numpy(dtype=np.float64, na_value=np.nan)
        / 86_400.0,
    }


def _promise_history(
    tables: PortfolioTables, *, as_of: date, cutoff: pd.Timestamp
) -> dict[str, FloatArray]:
    """Return each account's promise counts, kept ratio and broken-promise recency and run."""
    accounts = tables.accounts["account_id"]
    promises = tables.promises
    day = pd.Timestamp(as_of)
    made = promises[
        (promises["promised_on"] <= day)
        & (promises["promised_on"] > day - pd.Timedelta(days=PROMISES_MADE_WINDOW_DAYS))
    ]
    resolved = promises[
        promises["status"].isin(PROMISE_RESOLVED) & (promises["resolved_at"] < cutoff)
    ].sort_values(["account_id", "due_date", "resolved_at"])
    broken = resolved[resolved["status"] == PROMISE_BROKEN]
    recent_broken = broken[
        broken["resolved_at"] >= cutoff - pd.Timedelta(days=PROMISES_BROKEN_WINDOW_DAYS)
    ]
    resolved_count = resolved.groupby("account_id").size().reindex(accounts)
    kept_count = (
        resolved[resolved["status"] == PROMISE_KEPT]
        .groupby("account_id")
        .size()
        .reindex(accounts, fill_value=0)
    )
    last_broken = broken.groupby("account_id")["resolved_at"].max().reindex(accounts)
    # The run of broken promises at the end of each account's resolved history.
    position = resolved.groupby("account_id").cumcount()
    unbroken = resolved["status"] != PROMISE_BROKEN
    last_unbroken = position[unbroken].groupby(resolved.loc[unbroken, "account_id"]).max()
    run_start = resolved["account_id"].map(last_unbroken).fillna(-1)
    trailing = resolved[~unbroken & (position > run_start)]
    return {
        "promises_made_90d": made.groupby("account_id")
        .size()
        .reindex(accounts, fill_value=0)
        .to_numpy(dtype=np.float64),
        "promises_broken_180d": recent_broken.groupby("account_id")
        .size()
        .reindex(accounts, fill_value=0)
        .to_numpy(dtype=np.float64),
        "promise_kept_ratio": (kept_count / resolved_count).to_numpy(
            dtype=np.float64, na_value=np.nan
        ),
        "days_since_broken_promise": (cutoff - last_broken)
        .dt.total_seconds()
        .to_numpy(dtype=np.float64, na_value=np.nan)
        / 86_400.0,
        "consecutive_broken_promises": trailing.groupby("account_id")
        .size()
        .reindex(accounts, fill_value=0)
        .to_numpy(dtype=np.float64),
    }


def _plan_history(tables: PortfolioTables, *, cutoff: pd.Timestamp) -> dict[str, FloatArray]:
    """Return each account's plans broken in the last year and whether a plan was running."""
    accounts = tables.accounts["account_id"]
    plans = tables.plans
    broken = plans[
        (plans["status"] == PLAN_BROKEN)
        & (plans["resolved_at"] < cutoff)
        & (plans["resolved_at"] >= cutoff - pd.Timedelta(days=PLANS_BROKEN_WINDOW_DAYS))
    ]
    running = plans[
        (plans["agreed_at"] < cutoff)
        & (plans["resolved_at"].isna() | (plans["resolved_at"] >= cutoff))
    ]
    return {
        "plans_broken_365d": broken.groupby("account_id")
        .size()
        .reindex(accounts, fill_value=0)
        .to_numpy(dtype=np.float64),
        "on_plan": accounts.isin(running["account_id"]).to_numpy(dtype=np.float64),
    }


def _age_bands(birth_dates: pd.Series, as_of: date) -> np.ndarray:
    """Return coarse age bands; unknown where the birth date is missing."""
    born = pd.to_datetime(birth_dates, errors="coerce")
    years = (pd.Timestamp(as_of) - born).dt.days / 365.25
    bands = np.full(len(born), "unknown", dtype=object)
    for lower, label in AGE_BANDS:
        bands[(years >= lower).to_numpy()] = label
    return bands


def compute_features(tables: PortfolioTables, *, as_of: date) -> pd.DataFrame:
    """Return one row of features per account, as of the end of the given date."""
    accounts = tables.accounts
    cutoff = end_of_day(as_of)
    state = state_as_of(tables, cutoff)
    balance = state.balance
    safe_balance = np.where(balance > 0, balance, np.nan)

    payments = tables.payments[tables.payments["paid_at"] < cutoff]
    last = payments.sort_values("paid_at").drop_duplicates("account_id", keep="last")
    last = last.set_index("account_id").reindex(accounts["account_id"])
    days_since_last = (cutoff - last["paid_at"]).dt.total_seconds().to_numpy() / 86_400.0

    months_delinquent = np.zeros(len(accounts), dtype=np.float64)
    for month in range(12):
        past = state_as_of(tables, cutoff - pd.Timedelta(days=DAYS_PER_MONTH * month))
        months_delinquent += past.days_past_due > 0

    contacts = tables.valid_self_contacts
    reachable = set(contacts.loc[contacts["created_at"] < cutoff, "debtor_id"])
    opened = pd.to_datetime(accounts["opened_on"], errors="coerce")
    credit_limit = accounts["credit_limit"].to_numpy(dtype=np.float64, na_value=np.nan)
    credit_limit = np.where(credit_limit > 0, credit_limit, np.nan)

    features = {
        "days_past_due": state.days_past_due,
        "bucket": state.bucket,
        "balance": balance,
        "utilisation": balance / credit_limit,
        "months_on_book": ((pd.Timestamp(as_of) - opened).dt.days / (365.25 / 12)).to_numpy(
            dtype=np.float64, na_value=np.nan
        ),
        "product": accounts["product"].astype(object).to_numpy(),
        "months_delinquent_12m": months_delinquent,
        "days_since_last_payment": days_since_last,
        "last_payment_amount": last["amount"].to_numpy(dtype=np.float64, na_value=np.nan),
        "valid_self_contact": accounts["debtor_id"].isin(reachable).to_numpy(dtype=np.float64),
        "age_band": _age_bands(accounts["birth_date"], as_of),
        "region": accounts["province"].astype(object).to_numpy(),
        "customer_type": accounts["debtor_kind"].astype(object).to_numpy(),
        **_contact_history(tables, cutoff),
        **_promise_history(tables, as_of=as_of, cutoff=cutoff),
        **_plan_history(tables, cutoff=cutoff),
    }
    for months in (1, 3, 6):
        paid = _paid_between(tables, cutoff - pd.Timedelta(days=DAYS_PER_MONTH * months), cutoff)
        features[f"payment_ratio_{months}m"] = np.minimum(paid / safe_balance, RATIO_CAP)
    frame = pd.DataFrame(features, index=pd.Index(accounts["account_id"], name="account_id"))
    return frame[list(FEATURE_NAMES)]


def overdue_estimate(tables: PortfolioTables, state: AccountState) -> FloatArray:
    """Estimate the overdue amount at a past date: one minimum payment per month late."""
    minimum_due = tables.accounts["minimum_due"].to_numpy(dtype=np.float64)
    months_late = np.ceil(state.days_past_due / DAYS_PER_MONTH)
    estimate: FloatArray = np.minimum(state.balance, np.maximum(minimum_due, 1.0) * months_late)
    return estimate


def collection_labels(
    tables: PortfolioTables, *, as_of: date, horizon_days: int, payment_share: float
) -> npt.NDArray[np.int8]:
    """Return 1 where the account paid the share of its overdue amount, or cured, within H days."""
    cutoff = end_of_day(as_of)
    horizon_end = cutoff + pd.Timedelta(days=horizon_days)
    state = state_as_of(tables, cutoff)
    paid = _paid_between(tables, cutoff, horizon_end)
    owed = overdue_estimate(tables, state)
    events = tables.events
    window = events[(events["effective_at"] >= cutoff) & (events["effective_at"] < horizon_end)]
    cured_ids = set(window.loc[window["days_past_due"] == 0, "account_id"])
    cured = tables.accounts["account_id"].isin(cured_ids).to_numpy()
    paid_enough = paid >= payment_share * owed - 1e-9
    labels: npt.NDArray[np.int8] = (cured | paid_enough).astype(np.int8)
    return labels


def training_snapshots(
    tables: PortfolioTables,
    *,
    as_of: date,
    horizon_days: int,
    payment_share: float,
    snapshots: int,
) -> pd.DataFrame:
    """Stack features and labels of delinquent accounts at past month-ends with known outcomes."""
    frames: list[pd.DataFrame] = []
    last_snapshot = as_of - timedelta(days=horizon_days)
    for step in range(snapshots):
        snapshot = last_snapshot - timedelta(days=DAYS_PER_MONTH * step)
        features = compute_features(tables, as_of=snapshot)
        labels = collection_labels(
            tables, as_of=snapshot, horizon_days=horizon_days, payment_share=payment_share
        )
        frame = features.assign(snapshot=snapshot.isoformat(), pays=labels)
        frames.append(frame[frame["days_past_due"] > 0].reset_index())
    if not frames:
        return pd.DataFrame(columns=["account_id", *FEATURE_NAMES, "snapshot", "pays"])
    return pd.concat(frames, ignore_index=True)
