"""``GET /api/v1/kpis``: the caller's institution's KPIs as of a date, in total and by group."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from recoup.analytics import rules, schemas, service
from recoup.deps import SessionDep
from recoup.enums import BUCKETS
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


# --- The answer's text, written from the groups' facts. ------------------------------------
#
# A fine cut is some thousand groups of every KPI: building each group's KPIs as objects, then
# as plain values, then writing those out cost more than counting them. So each group's KPIs
# are written as JSON text straight from its facts, with the formulas of ``rules.kpis_of``
# (``tests/analytics/test_api.py`` compares the text with those formulas' values written out,
# on random groups), and what is the same in many groups — a bucket no account is in or
# started in, a share without data — is written once. The text is what ``schemas.KpiReport``
# describes, field by field and in the same order, as ``json.dumps`` writes it (compact, not
# ASCII-escaped): integers as ``str``, shares as ``repr`` of the float, ``null`` for None.


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_NO_DATA_TEXT = '{"numerator":0,"denominator":0,"value":null}'


def _rate_text(numerator: int, denominator: int) -> str:
    """A share's text (``rules.Rate``): its value is null when the denominator is 0."""
    if not denominator:
        if not numerator:
            return _NO_DATA_TEXT
        return f'{{"numerator":{numerator},"denominator":{denominator},"value":null}}'
    value = numerator / denominator
    return f'{{"numerator":{numerator},"denominator":{denominator},"value":{value!r}}}'


def _moves_text(moves: Sequence[int], total: int) -> str:
    return "{" + ",".join(map(_move_text, _MOVE_HEADS, moves, repeat(total))) + "}"


def _move_text(head: str, numerator: int, total: int) -> str:
    return head + _rate_text(numerator, total)


_MOVE_HEADS = tuple(f"{_json(move)}:" for move in rules.MOVES)
_MOVE_INDEX = {move: position for position, move in enumerate(rules.MOVES)}
# The position in ``rules.MOVES`` of each (from bucket, to state)'s move (filled as met).
_MOVE_OF: dict[tuple[str, str], int] = {}
# A bucket no account is in, and no account started in, written once.
_ZERO_BUCKETS = {
    bucket: _json({"bucket": bucket, "accounts": 0, "balance": 0}) for bucket in BUCKETS
}
_ALL_ZERO_BUCKETS = ",".join(_ZERO_BUCKETS.values())
_BUCKET_HEADS = {bucket: f'{{"bucket":{_json(bucket)},"accounts":' for bucket in BUCKETS}
_SUMMARY_HEADS = {bucket: f'{{"from_bucket":{_json(bucket)},"accounts":' for bucket in BUCKETS}
_EMPTY_SUMMARIES = {
    bucket: (
        f"{_SUMMARY_HEADS[bucket]}0,"
        f'"balance":0,"by_count":{_moves_text([0] * 5, 0)},"by_balance":{_moves_text([0] * 5, 0)}}}'
    )
    for bucket in BUCKETS
}
_ALL_EMPTY_SUMMARIES = ",".join(_EMPTY_SUMMARIES.values())
_NO_FORECAST = '{"promises":0,"amount":0,"expected":0,"lines":[]}'


class _KpisWriter:
    """Writes the KPIs of groups' facts as JSON text, with one P(kept) and one pricing."""

    def __init__(self, probability: rules.KeptProbability, pricing: rules.Pricing) -> None:
        self.probability = probability
        self.pricing = pricing
        self.strings: dict[str | None, str] = {}
        self.costs: dict[tuple[tuple[str, int], ...], int | None] = {}

    def quoted(self, value: str | None) -> str:
        """A string's (or None's) JSON text, written once per answer."""
        text = self.strings.get(value)
        if text is None:
            text = self.strings[value] = _json(value)
        return text

    def cuts(self, cuts: Mapping[str, str | None]) -> str:
        """A group's cuts as a JSON object."""
        quoted = self.quoted
        return (
            "{" + ",".join(f"{quoted(name)}:{quoted(value)}" for name, value in cuts.items()) + "}"
        )

    def kpis(self, facts: rules.GroupFacts) -> str:
        """The text of ``rules.kpis_of(facts, …)`` as ``schemas.Kpis`` describes it."""
        accounts, balance, buckets = self.portfolio(facts.buckets)
        from_buckets, cells, cured = self.roll_rates(facts.transitions)
        start, placed, paid = facts.delinquent_at_start, facts.placed, facts.collected
        cures, due, plans = facts.cures, facts.promises_due, facts.plans_ended
        decided = due.kept + due.partially_kept + due.broken
        contacts = facts.contacts
        attempts, right_party = contacts.attempts, contacts.right_party
        by_channel = contacts.by_channel
        channel_items = tuple(by_channel.items())
        if channel_items in self.costs:
            cost = self.costs[channel_items]
        else:
            cost = self.costs[channel_items] = rules.collection_cost(by_channel, self.pricing)
        channels = ",".join(
            f"{self.quoted(channel)}:{count}" for channel, count in sorted(channel_items)
        )
        days = "null" if not cures.count else repr(cures.total / cures.count)
        return (
            f'{{"portfolio":{{"accounts":{accounts},"balance":{balance},"buckets":[{buckets}]}},'
            f'"roll_rates":{{"from_buckets":[{from_buckets}],"cells":[{cells}]}},'
            f'"cure_rate":{{"by_count":{cured[0]},"by_balance":{cured[1]}}},'
            f'"collected":{{"amount":{paid.amount},"payments":{paid.payments},'
            f'"after_charge_off":{paid.after_charge_off}}},'
            f'"delinquent_at_start":{{"accounts":{start.accounts},"balance":{start.balance},'
            f'"collected":{start.collected}}},'
            f'"recovery_rate":{_rate_text(start.collected, start.balance)},'
            f'"placed":{{"accounts":{placed.accounts},"balance":{placed.balance},'
            f'"collected":{placed.collected}}},'
            f'"liquidation_rate":{_rate_text(placed.collected, placed.balance)},'
            f'"average_days_to_cure":{{"total":{cures.total},"count":{cures.count},'
            f'"value":{days}}},'
            f'"promises_due":{{"kept":{due.kept},"partially_kept":{due.partially_kept},'
            f'"broken":{due.broken},"awaiting":{due.awaiting}}},'
            f'"promise_kept_rate":{_rate_text(due.kept, decided)},'
            f'"promise_partially_kept_rate":{_rate_text(due.partially_kept, decided)},'
            f'"promise_forecast":{self.forecast(facts.pending_promises)},'
            f'"plans_ended":{{"completed":{plans.completed},"broken":{plans.broken}}},'
            f'"plan_kept_rate":{_rate_text(plans.completed, plans.completed + plans.broken)},'
            f'"contacts":{{"attempts":{attempts},"reached":{contacts.reached},'
            f'"right_party":{right_party},"promises":{contacts.promises},'
            f'"by_channel":{{{channels}}}}},'
            f'"contact_rate":{_rate_text(contacts.reached, attempts)},'
            f'"right_party_contact_rate":{_rate_text(right_party, attempts)},'
            f'"promise_rate":{_rate_text(contacts.promises, right_party)},'
            f'"contact_cost":{"null" if cost is None else cost},'
            f'"cost_per_amount_collected":'
            f"{'null' if cost is None else _rate_text(cost, paid.amount)}}}"
        )

    def portfolio(self, counts: Sequence[rules.BucketCount]) -> tuple[int, int, str]:
        """Accounts, balance and the buckets' text (``rules.portfolio_by_bucket``)."""
        if not counts:
            return 0, 0, _ALL_ZERO_BUCKETS
        summed: dict[str, list[int]] = {}
        for item in counts:
            if item.bucket not in _ZERO_BUCKETS:
                raise KeyError(item.bucket)
            counted = summed.get(item.bucket)
            if counted is None:
                summed[item.bucket] = [item.accounts, item.balance]
            else:
                counted[0] += item.accounts
                counted[1] += item.balance
        accounts = balance = 0
        texts = []
        for bucket in BUCKETS:
            counted = summed.get(bucket)
            if counted is None:
                texts.append(_ZERO_BUCKETS[bucket])
                continue
            accounts += counted[0]
            balance += counted[1]
            texts.append(f'{_BUCKET_HEADS[bucket]}{counted[0]},"balance":{counted[1]}}}')
        return accounts, balance, ",".join(texts)

    def roll_rates(self, transitions: Sequence[rules.Cell]) -> tuple[str, str, tuple[str, str]]:
        """The from-buckets' shares, the cells and the cure rates (by count, by balance)."""
        if not transitions:
            return _ALL_EMPTY_SUMMARIES, "", (_NO_DATA_TEXT, _NO_DATA_TEXT)
        cells = rules.merged_cells(transitions)
        # Per bucket started in: accounts and balance per move (``rules.roll_summary``).
        moved: dict[str, tuple[list[int], list[int]]] = {}
        cured = [0, 0, 0, 0]  # accounts, balance current at the end; delinquent at the start
        texts = []
        for cell in cells:
            from_bucket, to_state = cell.from_bucket, cell.to_bucket
            if from_bucket not in _EMPTY_SUMMARIES:
                raise KeyError(from_bucket)
            move = _MOVE_OF.get((from_bucket, to_state))
            if move is None:
                move = _MOVE_OF[(from_bucket, to_state)] = _MOVE_INDEX[
                    rules.move_of(from_bucket, to_state)
                ]
            counted = moved.get(from_bucket)
            if counted is None:
                counted = moved[from_bucket] = ([0] * 5, [0] * 5)
            counted[0][move] += cell.accounts
            counted[1][move] += cell.balance
            if from_bucket != "M0":
                cured[2] += cell.accounts
                cured[3] += cell.balance
                if to_state == "M0":
                    cured[0] += cell.accounts
                    cured[1] += cell.balance
            texts.append(
                f'{{"from_bucket":{self.quoted(from_bucket)},'
                f'"to_state":{self.quoted(to_state)},'
                f'"accounts":{cell.accounts},"balance":{cell.balance}}}'
            )
        summaries = []
        for bucket in BUCKETS:
            counted = moved.get(bucket)
            count_total = sum(counted[0]) if counted else 0
            balance_total = sum(counted[1]) if counted else 0
            if counted is None or (not count_total and not balance_total):
                summaries.append(_EMPTY_SUMMARIES[bucket])
                continue
            summaries.append(
                f'{_SUMMARY_HEADS[bucket]}{count_total},"balance":{balance_total},'
                f'"by_count":{_moves_text(counted[0], count_total)},'
                f'"by_balance":{_moves_text(counted[1], balance_total)}}}'
            )
        return (
            ",".join(summaries),
            ",".join(texts),
            (_rate_text(cured[0], cured[2]), _rate_text(cured[1], cured[3])),
        )

    def forecast(self, pending: Sequence[rules.PendingPromises]) -> str:
        """The promise forecast's text (``rules.promise_forecast``)."""
        if not pending:
            return _NO_FORECAST
        forecast = rules.promise_forecast(pending, self.probability)
        lines = ",".join(
            f'{{"bucket":{self.quoted(line.bucket)},"promises":{line.promises},'
            f'"amount":{line.amount},'
            f'"probability":{_rate_text(line.probability.numerator, line.probability.denominator)},'
            f'"source":{self.quoted(line.source)},'
            f'"expected":{"null" if line.expected is None else line.expected}}}'
            for line in forecast.lines
        )
        expected = "null" if forecast.expected is None else forecast.expected
        return (
            f'{{"promises":{forecast.promises},"amount":{forecast.amount},'
            f'"expected":{expected},"lines":[{lines}]}}'
        )


def _report_json(report: service.KpiReport) -> str:
    """The answer's JSON text, as ``schemas.KpiReport`` describes it."""
    writer = _KpisWriter(report.kept_probability, report.pricing)
    groups = ",".join(
        f'{{"cuts":{writer.cuts(cuts)},"kpis":{writer.kpis(facts)}}}'
        for cuts, facts in report.group_facts
    )
    probability = report.kept_probability
    head = _json(
        {
            "institution": report.institution,
            "currency": report.currency,
            "as_of": report.as_of.isoformat(),
            "period": _period_plain(report.period),
            "group_by": list(report.group_by),
        }
    )
    tail = _json(
        {
            "history": _period_plain(report.kept_history),
            "overall": _rate_plain(probability.overall),
            "by_bucket": {
                bucket: _rate_plain(rate) for bucket, rate in probability.by_bucket.items()
            },
            "min_promises_per_bucket": probability.minimum,
        }
    )
    return (
        f'{head[:-1]},"total":{writer.kpis(report.total_facts)},"groups":[{groups}],'
        f'"kept_probability":{tail}}}'
    )


def _rate_plain(rate: rules.Rate) -> dict[str, Any]:
    return {"numerator": rate.numerator, "denominator": rate.denominator, "value": rate.value}


def _period_plain(period: rules.Period) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


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
