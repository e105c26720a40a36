"""``GET /api/v1/kpis``: the caller's institution's KPIs as of a date, in total and by group."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from recoup.analytics import rules, schemas, service
from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.kit import collector
from recoup.kit.schemas import Day

router = APIRouter(prefix="/api/v1", tags=["analytics"])


def _rate(rate: rules.Rate) -> schemas.KpiRate:
    return schemas.KpiRate(numerator=rate.numerator, denominator=rate.denominator, value=rate.value)


def _period(period: rules.Period) -> schemas.Period:
    return schemas.Period(from_=period.start, to=period.end)


@router.get(
    "/kpis", response_model=schemas.KpiReport, dependencies=[Depends(authorize("kpis:read"))]
)
def kpis(
    principal: CurrentPrincipal,
    session: SessionDep,
    as_of: Annotated[Day, Query(description="the date read as of (its end, institution time)")],
    start: Annotated[
        Day | None,
        Query(alias="from", description="first day of the period (default: as_of's month)"),
    ] = None,
    end: Annotated[
        Day | None, Query(alias="to", description="last day of the period (default: as_of)")
    ] = None,
    group_by: Annotated[
        list[str] | None,
        Query(
            description=f"cuts, repeated or comma-separated: {', '.join(rules.CUTS)}",
            max_length=len(rules.CUTS),
        ),
    ] = None,
) -> Response:
    """Report the institution's KPIs as of a date over a period, in total and by group."""
    # Some thousand groups of every KPI are a few hundred thousand short-lived objects and no
    # reference cycles: the cyclic collector would rescan the server's whole heap meanwhile.
    with collector.paused():
        report = service.kpi_report(
            session,
            principal=principal,
            as_of=as_of,
            start=start,
            end=end,
            group_by=group_by or (),
        )
        # Written out as ``schemas.KpiReport`` describes it (the OpenAPI document), from plain
        # values: a fine cut is some thousand groups of every KPI, and building them as models
        # took longer than counting them.
        text = _report_json(report)
    return Response(text, media_type="application/json")


def _rate_plain(rate: rules.Rate) -> dict[str, Any]:
    return {"numerator": rate.numerator, "denominator": rate.denominator, "value": rate.value}


def _cohort_plain(cohort: rules.Cohort) -> dict[str, int]:
    return {"accounts": cohort.accounts, "balance": cohort.balance, "collected": cohort.collected}


def _moves_plain(shares: Mapping[rules.Move, rules.Rate]) -> dict[str, Any]:
    if shares is rules.NO_MOVES:
        return _NO_MOVES_PLAIN
    return {move: _rate_plain(rate) for move, rate in shares.items()}


# Written as is for every bucket no account started in (only serialized, never changed).
_NO_MOVES_PLAIN: dict[str, Any] = {move: _rate_plain(rate) for move, rate in rules.NO_MOVES.items()}


# A bucket no account started in is the same text in every group (two "no data" shares per
# move): ``_report_json`` writes it once per bucket. ``_kpis_plain(…, marked=True)`` puts a
# marker string in its place, replaced in the JSON text by the bucket's text written once.
def _summary_plain(summary: rules.RollSummary) -> dict[str, Any]:
    return {
        "from_bucket": summary.from_bucket,
        "accounts": summary.accounts,
        "balance": summary.balance,
        "by_count": _moves_plain(summary.by_count),
        "by_balance": _moves_plain(summary.by_balance),
    }


_EMPTY_MARKERS = {bucket: f"\x00empty-bucket:{bucket}\x00" for bucket in rules.EMPTY_SUMMARIES}
_EMPTY_TEXTS = {
    json.dumps(marker): json.dumps(
        _summary_plain(summary), ensure_ascii=False, separators=(",", ":")
    )
    for marker, summary in zip(_EMPTY_MARKERS.values(), rules.EMPTY_SUMMARIES.values(), strict=True)
}


def _report_json(report: service.KpiReport) -> str:
    """The JSON text of ``_report_plain`` (a bucket no account started in written once)."""
    # A marker is a string no answer holds: text with a NUL character is written plainly.
    strings = [report.institution, report.currency, *report.group_by]
    strings += [value for group in report.groups for value in group.cuts.values() if value]
    marked = not any("\x00" in value for value in strings)
    text = json.dumps(
        _report_plain(report, marked=marked), ensure_ascii=False, separators=(",", ":")
    )
    if marked:
        for marker, written in _EMPTY_TEXTS.items():
            text = text.replace(marker, written)
    return text


def _kpis_plain(kpis: rules.Kpis, *, marked: bool = False) -> dict[str, Any]:
    """``_kpis`` as the plain values its JSON holds (the same fields in the same order).

    ``marked``: a bucket no account started in is its marker (``_report_json``).
    """
    forecast = kpis.promise_forecast
    contacts = kpis.contacts
    cost = kpis.cost_per_amount_collected
    return {
        "portfolio": {
            "accounts": kpis.accounts,
            "balance": kpis.balance,
            "buckets": [
                {"bucket": item.bucket, "accounts": item.accounts, "balance": item.balance}
                for item in kpis.buckets
            ],
        },
        "roll_rates": {
            "from_buckets": [
                _EMPTY_MARKERS[summary.from_bucket]
                if marked and summary is rules.EMPTY_SUMMARIES.get(summary.from_bucket)
                else _summary_plain(summary)
                for summary in kpis.roll_rates
            ],
            "cells": [
                {
                    "from_bucket": cell.from_bucket,
                    "to_state": cell.to_bucket,
                    "accounts": cell.accounts,
                    "balance": cell.balance,
                }
                for cell in kpis.transitions
            ],
        },
        "cure_rate": {
            "by_count": _rate_plain(kpis.cure_rate_by_count),
            "by_balance": _rate_plain(kpis.cure_rate_by_balance),
        },
        "collected": {
            "amount": kpis.collected.amount,
            "payments": kpis.collected.payments,
            "after_charge_off": kpis.collected.after_charge_off,
        },
        "delinquent_at_start": _cohort_plain(kpis.delinquent_at_start),
        "recovery_rate": _rate_plain(kpis.recovery_rate),
        "placed": _cohort_plain(kpis.placed),
        "liquidation_rate": _rate_plain(kpis.liquidation_rate),
        "average_days_to_cure": {
            "total": kpis.average_days_to_cure.total,
            "count": kpis.average_days_to_cure.count,
            "value": kpis.average_days_to_cure.value,
        },
        "promises_due": {
            "kept": kpis.promises_due.kept,
            "partially_kept": kpis.promises_due.partially_kept,
            "broken": kpis.promises_due.broken,
            "awaiting": kpis.promises_due.awaiting,
        },
        "promise_kept_rate": _rate_plain(kpis.promise_kept_rate),
        "promise_partially_kept_rate": _rate_plain(kpis.promise_partially_kept_rate),
        "promise_forecast": {
            "promises": forecast.promises,
            "amount": forecast.amount,
            "expected": forecast.expected,
            "lines": [
                {
                    "bucket": line.bucket,
                    "promises": line.promises,
                    "amount": line.amount,
                    "probability": _rate_plain(line.probability),
                    "source": line.source,
                    "expected": line.expected,
                }
                for line in forecast.lines
            ],
        },
        "plans_ended": {
            "completed": kpis.plans_ended.completed,
            "broken": kpis.plans_ended.broken,
        },
        "plan_kept_rate": _rate_plain(kpis.plan_kept_rate),
        "contacts": {
            "attempts": contacts.attempts,
            "reached": contacts.reached,
            "right_party": contacts.right_party,
            "promises": contacts.promises,
            "by_channel": dict(sorted(contacts.by_channel.items())),
        },
        "contact_rate": _rate_plain(kpis.contact_rate),
        "right_party_contact_rate": _rate_plain(kpis.right_party_contact_rate),
        "promise_rate": _rate_plain(kpis.promise_rate),
        "contact_cost": kpis.contact_cost,
        "cost_per_amount_collected": None if cost is None else _rate_plain(cost),
    }


def _period_plain(period: rules.Period) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


def _report_plain(report: service.KpiReport, *, marked: bool = False) -> dict[str, Any]:
    """``_report`` as the plain values its JSON holds (``marked``: see ``_kpis_plain``)."""
    probability = report.kept_probability
    return {
        "institution": report.institution,
        "currency": report.currency,
        "as_of": report.as_of.isoformat(),
        "period": _period_plain(report.period),
        "group_by": list(report.group_by),
        "total": _kpis_plain(report.total, marked=marked),
        "groups": [
            {"cuts": group.cuts, "kpis": _kpis_plain(group.kpis, marked=marked)}
            for group in report.groups
        ],
        "kept_probability": {
            "history": _period_plain(report.kept_history),
            "overall": _rate_plain(probability.overall),
            "by_bucket": {
                bucket: _rate_plain(rate) for bucket, rate in probability.by_bucket.items()
            },
            "min_promises_per_bucket": probability.minimum,
        },
    }


def _compared(value: rules.Compared) -> schemas.Compared:
    return schemas.Compared(actual=value.actual, expected=value.expected, index=value.index)


def agent_report_read(report: service.AgentReport) -> schemas.AgentReport:
    """Return the API shape of an agent report (pages and exports use it too)."""
    return schemas.AgentReport(
        institution=report.institution,
        currency=report.currency,
        as_of=report.as_of,
        period=_period(report.period),
        team_lead_id=report.team_lead_id,
        agents=[
            schemas.AgentEfficiency(
                agent_id=line.agent.id,
                username=line.agent.username,
                display_name=line.agent.display_name,
                team_lead_id=line.agent.team_lead_id,
                attempts=line.figures.attempts,
                right_party_contacts=line.figures.right_party_contacts,
                promises=line.figures.promises,
                worked_days=line.figures.worked_days,
                worked_hours=line.figures.worked_hours,
                attempts_per_hour=_compared(line.figures.attempts_per_hour),
                rpc_per_hour=_compared(line.figures.rpc_per_hour),
                promises_per_hour=_compared(line.figures.promises_per_hour),
                right_party_rate=_compared(line.figures.right_party_rate),
                kept_rate=_compared(line.figures.kept_rate),
                collected=_compared(line.figures.collected),
                block_rate=_compared(line.figures.block_rate),
                violations=_compared(line.figures.violations),
                overall_index=line.figures.overall_index,
            )
            for line in report.agents
        ],
    )


def region_report_read(report: service.RegionReport) -> schemas.RegionReport:
    """Return the API shape of a region report."""
    return schemas.RegionReport(
        institution=report.institution,
        as_of=report.as_of,
        period=_period(report.period),
        level="city" if report.level == "city" else "province",
        regions=[
            schemas.RegionDifficulty(
                province=item.region[0],
                city=item.region[1] if len(item.region) > 1 else None,
                attempts=item.attempts,
                delinquent=item.delinquent,
                contact_rate=_compared(item.contact_rate),
                ptp_rate=_compared(item.ptp_rate),
                cure_rate=_compared(item.cure_rate),
                overall_index=item.overall_index,
            )
            for item in report.regions
        ],
    )


AsOfQuery = Annotated[Day, Query(description="the date read as of (its end, institution time)")]
FromQuery = Annotated[
    Day | None, Query(alias="from", description="first day of the period (default: as_of's month)")
]
ToQuery = Annotated[Day | None, Query(alias="to", description="last day (default: as_of)")]


@router.get(
    "/kpis/agents",
    response_model=schemas.AgentReport,
    dependencies=[Depends(authorize("kpis:read"))],
)
def agent_kpis(
    principal: CurrentPrincipal,
    session: SessionDep,
    as_of: AsOfQuery,
    start: FromQuery = None,
    end: ToQuery = None,
    team_lead_id: Annotated[
        int | None,
        Query(ge=1, le=2**63 - 1, description="a team lead's user id: list their agents only"),
    ] = None,
) -> schemas.AgentReport:
    """Rank agents fairly: each figure against what their bucket mix predicts (docs/kpis.md)."""
    return agent_report_read(
        service.agent_report(
            session,
            principal=principal,
            as_of=as_of,
            start=start,
            end=end,
            team_lead_id=team_lead_id,
        )
    )


@router.get(
    "/kpis/regions",
    response_model=schemas.RegionReport,
    dependencies=[Depends(authorize("kpis:read"))],
)
def region_kpis(
    principal: CurrentPrincipal,
    session: SessionDep,
    as_of: AsOfQuery,
    start: FromQuery = None,
    end: ToQuery = None,
    level: Annotated[
        Literal["province", "city"], Query(description="compare provinces, or cities")
    ] = "province",
) -> schemas.RegionReport:
    """Regions' contact, PTP and cure rates against their bucket mix, hardest first."""
    return region_report_read(
        service.region_report(
            session, principal=principal, as_of=as_of, start=start, end=end, level=level
        )
    )
