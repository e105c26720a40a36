"""Daily aggregates the dashboards read: per day and dimension, counts and sums of each metric."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, Minor, TenantMixin


class DailyFact(TenantMixin, Base):
    """One metric's count and amount on one local day for one combination of dimensions.

    Rows are rewritten by ``analytics.refresh`` (``analytics.service.refresh_aggregates``),
    never edited; ``docs/kpis.md`` ("Daily aggregates") lists the metrics and what each
    column holds for them. A dimension a metric does not have is null.
    """

    __tablename__ = "analytics_daily_facts"
    __table_args__ = (Index("ix_analytics_daily_facts_lookup", "institution_id", "metric", "day"),)

    id: Mapped[IdPk]
    day: Mapped[date]
    metric: Mapped[str] = mapped_column(String(24))
    product: Mapped[str | None] = mapped_column(String(24))
    bucket: Mapped[str | None] = mapped_column(String(8))
    # The other state of a metric: a roll's end state, a promise's status, a decision's
    # outcome, a payment's status before (charged_off).
    state: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(Id)
    province: Mapped[str | None] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(Minor, default=0)
    amount: Mapped[int] = mapped_column(Minor, default=0)


class AggregateRefresh(TenantMixin, Base):
    """How far an institution's daily aggregates are refreshed, and the last run's cost."""

    __tablename__ = "analytics_refreshes"
    __table_args__ = (UniqueConstraint("institution_id"),)

    id: Mapped[IdPk]
    refreshed_through: Mapped[date]
    refreshed_at: Mapped[datetime]
    first_day: Mapped[date]
    seconds: Mapped[float]


class KpiSnapshot(TenantMixin, Base):
    """The account facts of ``GET /api/v1/kpis`` for a period up to a day, at the finest cuts.

    Written by the aggregate refresh for the last whole day (``period_start`` the first day of
    its month, or the next day when it ends a month); a request for a period starting there and
    ending on or after ``as_of`` re-adds them and counts live only the accounts touched since
    (``analytics.service.kpi_report``). ``facts`` is ``analytics.rules.facts_to_json``.
    """

    __tablename__ = "analytics_kpi_snapshots"
    __table_args__ = (UniqueConstraint("institution_id", "period_start"),)

    id: Mapped[IdPk]
    period_start: Mapped[date]
    as_of: Mapped[date]
    computed_at: Mapped[datetime]
    seconds: Mapped[float]
    facts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
