"""API shapes of the KPIs (``GET /api/v1/kpis``); amounts are minor units of ``currency``."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KpiRate(BaseModel):
    """A share with what it was counted from; ``value`` is null when the denominator is 0."""

    numerator: int
    denominator: int
    value: float | None


class KpiAverage(BaseModel):
    """A mean with its total and count; ``value`` is null when nothing was counted."""

    total: int
    count: int
    value: float | None


class BucketTotal(BaseModel):
    """Accounts in one bucket and their balance."""

    bucket: str
    accounts: int
    balance: int


class PortfolioKpis(BaseModel):
    """Accounts in the portfolio as of the date, by bucket M0…M6+ (empty buckets: zeros)."""

    accounts: int
    balance: int
    buckets: list[BucketTotal]


class MoveShares(BaseModel):
    """Where a bucket's accounts went: shares that add up to 1 (all null when it was empty)."""

    forward: KpiRate = Field(description="to a later bucket, or charged off")
    stay: KpiRate = Field(description="in the same bucket")
    roll_back: KpiRate = Field(description="to an earlier bucket other than M0")
    cure: KpiRate = Field(description="to M0 (current)")
    left: KpiRate = Field(description="settled or closed: out of the portfolio")


class RollFromBucket(BaseModel):
    """The accounts of one bucket at the start of the period and where they were at its end."""

    from_bucket: str
    accounts: int
    balance: int
    by_count: MoveShares
    by_balance: MoveShares


class RollCell(BaseModel):
    """Accounts (and their start balance) from a bucket to a bucket or exit state."""

    from_bucket: str
    to_state: str = Field(description="a bucket, or settled / closed / charged_off")
    accounts: int
    balance: int


class RollRates(BaseModel):
    """The roll-rate matrix of the period: its cells, and shares per from-bucket."""

    from_buckets: list[RollFromBucket]
    cells: list[RollCell]


class CureRate(BaseModel):
    """Accounts delinquent at the start of the period that were current at its end."""

    by_count: KpiRate
    by_balance: KpiRate


class CollectedKpis(BaseModel):
    """Payments received in the period; ``after_charge_off`` is the part on charged-off debts."""

    amount: int
    payments: int
    after_charge_off: int


class Cohort(BaseModel):
    """Accounts with the balance they were counted at and what was collected from them."""

    accounts: int
    balance: int
    collected: int


class PromiseOutcomes(BaseModel):
    """Promises due in the period by what became of them as of the date."""

    kept: int
    partially_kept: int
    broken: int
    awaiting: int = Field(description="due, but still within the grace days or not reconciled")


class ForecastLine(BaseModel):
    """Cash expected from the open promises of accounts in one bucket (when promised)."""

    bucket: str | None
    promises: int
    amount: int
    probability: KpiRate
    source: Literal["bucket", "institution", "none"] = Field(
        description="whose kept rate P(kept) is: the bucket's own, the institution's, none"
    )
    expected: int | None


class PromiseForecast(BaseModel):
    """Cash expected from promises open on the date: Σ amount left × P(kept)."""

    promises: int
    amount: int
    expected: int | None = Field(description="null when there is no promise history for P(kept)")
    lines: list[ForecastLine]


class PlansEnded(BaseModel):
    """Payment plans that ended in the period."""

    completed: int
    broken: int


class ContactKpis(BaseModel):
    """Outbound contact attempts made in the period (the contact log), and whom they reached."""

    attempts: int
    reached: int = Field(description="attempts where anyone answered or was met")
    right_party: int = Field(description="attempts that reached the debtor")
    promises: int = Field(description="attempts whose outcome was a promise to pay")
    by_channel: dict[str, int]


class Kpis(BaseModel):
    """Every KPI of a set of accounts; docs/kpis.md defines each one."""

    portfolio: PortfolioKpis
    roll_rates: RollRates
    cure_rate: CureRate
    collected: CollectedKpis
    delinquent_at_start: Cohort
    recovery_rate: KpiRate
    placed: Cohort
    liquidation_rate: KpiRate
    average_days_to_cure: KpiAverage
    promises_due: PromiseOutcomes
    promise_kept_rate: KpiRate
    promise_partially_kept_rate: KpiRate
    promise_forecast: PromiseForecast
    plans_ended: PlansEnded
    plan_kept_rate: KpiRate = Field(description="plans completed ÷ plans that ended")
    contacts: ContactKpis
    contact_rate: KpiRate
    right_party_contact_rate: KpiRate
    promise_rate: KpiRate = Field(description="promises to pay per right-party contact")
    contact_cost: int | None = Field(
        description="what the attempts cost at the institution's channel costs (minor units); "
        "null when a channel used has no cost set"
    )
    cost_per_amount_collected: KpiRate | None = Field(
        description="contact cost ÷ collected; null when the cost is unknown"
    )


class KpiGroup(BaseModel):
    """The KPIs of the accounts sharing one value of every cut (null: not known)."""

    cuts: dict[str, str | None]
    kpis: Kpis


class Period(BaseModel):
    """Days counted, both ends included."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


class KeptProbability(BaseModel):
    """P(kept) of the forecast: the kept rate of promises decided in ``history``."""

    history: Period
    overall: KpiRate
    by_bucket: dict[str, KpiRate]
    min_promises_per_bucket: int


class KpiReport(BaseModel):
    """An institution's KPIs as of a date over a period, in total and by group."""

    institution: str
    currency: str
    as_of: date
    period: Period
    group_by: list[str]
    total: Kpis
    groups: list[KpiGroup]
    kept_probability: KeptProbability


class Compared(BaseModel):
    """A figure and what the bucket mix predicts for it; ``index`` = actual ÷ expected."""

    actual: float | None
    expected: float | None
    index: float | None = Field(
        description="1.0: as the mix predicts; above: more than predicted (for blocks and "
        "violations, worse); null when either side is unknown or nothing was expected"
    )


class AgentEfficiency(BaseModel):
    """One agent's figures over the period, each against their bucket mix."""

    agent_id: int
    username: str
    display_name: str
    team_lead_id: int | None
    attempts: int
    right_party_contacts: int
    promises: int
    worked_days: int
    worked_hours: float = Field(description="Σ over worked days of first start → last end")
    attempts_per_hour: Compared
    rpc_per_hour: Compared
    promises_per_hour: Compared
    right_party_rate: Compared = Field(description="right-party contacts ÷ attempts")
    kept_rate: Compared = Field(description="their promises kept ÷ decided, due in the period")
    collected: Compared = Field(
        description="paid in the period by accounts assigned to them (minor units)"
    )
    block_rate: Compared = Field(description="gate decisions blocked ÷ decisions they asked")
    violations: Compared = Field(description="review findings in their notes (a count)")
    overall_index: float | None = Field(
        description="mean of the known indexes of pace, RPC rate, promises/hour, kept rate, "
        "collected: the rank"
    )


class AgentReport(BaseModel):
    """Agents ranked by their overall index, best first."""

    institution: str
    currency: str
    as_of: date
    period: Period
    team_lead_id: int | None
    agents: list[AgentEfficiency]


class RegionDifficulty(BaseModel):
    """One region's rates against what its bucket mix predicts."""

    province: str | None
    city: str | None = None
    attempts: int
    delinquent: int = Field(description="accounts delinquent at the period's start")
    contact_rate: Compared
    ptp_rate: Compared = Field(description="promises ÷ right-party contacts")
    cure_rate: Compared
    overall_index: float | None = Field(
        description="mean of the known indexes; below 1: harder than the mix explains"
    )


class RegionReport(BaseModel):
    """Regions, hardest first."""

    institution: str
    as_of: date
    period: Period
    level: Literal["province", "city"]
    regions: list[RegionDifficulty]
