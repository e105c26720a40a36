"""The KPIs of an institution as of a date and over a period, cut by product, bucket, region…

One function, ``kpi_report``: it checks the request, counts the facts of every group in SQL
(``repository``), and turns them into KPIs (``rules.kpis_of``). The institution's total is the
sum of its groups' facts, so totals and groups always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from recoup.analytics import repository, rules
from recoup.analytics.repository import AsOf, GroupKey
from recoup.identity.principal import Principal
from recoup.institutions.settings import settings_of
from recoup.kit.clock import start_of_day, zone
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.money import minor_digits
from recoup.models.institution import Institution


@dataclass(frozen=True, slots=True)
class KpiGroup:
    """The KPIs of the accounts sharing one value of every cut."""

    cuts: dict[str, str | None]
    kpis: rules.Kpis


@dataclass(frozen=True, slots=True)
class KpiReport:
    """The KPIs of an institution's accounts as of a date, over a period, in total and by group."""

    institution: str
    currency: str
    as_of: date
    period: rules.Period
    group_by: tuple[str, ...]
    total: rules.Kpis
    groups: list[KpiGroup]
    kept_probability: rules.KeptProbability
    kept_history: rules.Period


def kpi_report(
    session: Session,
    *,
    principal: Principal,
    as_of: date,
    start: date | None = None,
    end: date | None = None,
    group_by: Sequence[str] = (),
) -> KpiReport:
    """Compute the KPIs of the caller's institution as of a date over a period, per group.

    The period defaults to the month up to ``as_of``; ``group_by`` names cuts (``rules.CUTS``).
    """
    cuts, problems = rules.parse_cuts(group_by)
    problems += rules.period_problems(as_of, start, end)
    if problems:
        raise ValidationFailed(
            "; ".join(f"{problem.field}: {problem.message}" for problem in problems),
            errors=[{"field": problem.field, "message": problem.message} for problem in problems],
        )
    institution = (
        session.get(Institution, principal.institution_id)
        if principal.institution_id is not None
        else None
    )
    if institution is None:
        raise NotFound("KPIs belong to an institution; sign in as one of its users")
    settings = settings_of(institution)
    period = rules.period_for(as_of, start, end)

    def end_of(day: date) -> AsOf:
        return AsOf(
            day=day,
            cutoff=start_of_day(day + timedelta(days=1), institution.timezone),
            window_closed_before=day - timedelta(days=settings.workbench.promise_grace_days),
        )

    moment = end_of(as_of)
    period_start = start_of_day(period.start, institution.timezone)
    period_end = end_of(period.end).cutoff
    people = repository.population(
        principal=principal,
        institution_id=institution.id,
        currency=institution.currency,
        as_of=as_of,
        cuts=cuts,
    )
    facts: dict[GroupKey, rules.GroupFacts] = {}

    def add(key: GroupKey, part: rules.GroupFacts) -> None:
        facts[key] = facts.get(key, rules.GroupFacts()) + part

    for key, counts in repository.buckets(session, people, cutoff=moment.cutoff).items():
        add(key, rules.GroupFacts(buckets=tuple(counts)))
    for key, cells in repository.transitions(
        session, people, start=period.start - timedelta(days=1), end=period.end
    ).items():
        add(key, rules.GroupFacts(transitions=tuple(cells)))
    for key, cohort in repository.delinquent_at_start(
        session, people, start=period_start, end=period_end
    ).items():
        add(key, rules.GroupFacts(delinquent_at_start=cohort))
    for key, cohort in repository.placed(
        session, people, start=period_start, end=period_end
    ).items():
        add(key, rules.GroupFacts(placed=cohort))
    for key, collected in repository.collected(
        session, people, start=period_start, end=period_end
    ).items():
        add(key, rules.GroupFacts(collected=collected))
    for key, cured in repository.cures(session, people, start=period_start, end=period_end).items():
        add(key, rules.GroupFacts(cures=cured))
    for key, outcomes in repository.promises_due(
        session, people, first_due=period.start, last_due=period.end, as_of=moment
    ).items():
        add(key, rules.GroupFacts(promises_due=outcomes))
    for key, pending in repository.pending_promises(session, people, as_of=moment).items():
        add(key, rules.GroupFacts(pending_promises=tuple(pending)))
    for key, ended in repository.plans_ended(
        session, people, start=period_start, end=period_end
    ).items():
        add(key, rules.GroupFacts(plans_ended=ended))
    for key, attempts in repository.contacts(
        session, people, start=period_start, end=period_end
    ).items():
        add(key, rules.GroupFacts(contacts=attempts))

    history = rules.Period(
        start=as_of - timedelta(days=settings.analytics.kept_rate_days - 1), end=as_of
    )
    probability = rules.kept_probability(
        repository.kept_history(
            session,
            repository.population(
                principal=principal,
                institution_id=institution.id,
                currency=institution.currency,
                as_of=as_of,
                cuts=(),
            ),
            first_due=history.start,
            last_due=history.end,
            as_of=moment,
        ),
        minimum=settings.analytics.min_promises_per_bucket,
    )
    pricing = rules.Pricing(
        costs=settings.analytics.contact_cost, minor_digits=minor_digits(institution.currency)
    )
    groups = [
        KpiGroup(
            cuts=dict(zip(cuts, key, strict=True)),
            kpis=rules.kpis_of(facts[key], probability, pricing),
        )
        for key in sorted(facts, key=_key_order)
    ]
    return KpiReport(
        institution=institution.code,
        currency=institution.currency,
        as_of=as_of,
        period=period,
        group_by=cuts,
        total=rules.kpis_of(rules.total_of(facts.values()), probability, pricing),
        groups=groups if cuts else [],
        kept_probability=probability,
        kept_history=history,
    )


def _key_order(key: GroupKey) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, value or "") for value in key)


# --- Fair comparisons: agents and regions. -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    """A request's institution, period and the moments bounding it."""

    institution: Institution
    period: rules.Period
    moment: AsOf
    start: datetime
    end: datetime


def _frame(
    session: Session, *, principal: Principal, as_of: date, start: date | None, end: date | None
) -> _Frame:
    problems = rules.period_problems(as_of, start, end)
    if problems:
        raise ValidationFailed(
            "; ".join(f"{problem.field}: {problem.message}" for problem in problems),
            errors=[{"field": problem.field, "message": problem.message} for problem in problems],
        )
    institution = (
        session.get(Institution, principal.institution_id)
        if principal.institution_id is not None
        else None
    )
    if institution is None:
        raise NotFound("KPIs belong to an institution; sign in as one of its users")
    settings = settings_of(institution)
    period = rules.period_for(as_of, start, end)

    def end_of(day: date) -> AsOf:
        return AsOf(
            day=day,
            cutoff=start_of_day(day + timedelta(days=1), institution.timezone),
            window_closed_before=day - timedelta(days=settings.workbench.promise_grace_days),
        )

    return _Frame(
        institution=institution,
        period=period,
        moment=end_of(as_of),
        start=start_of_day(period.start, institution.timezone),
        end=end_of(period.end).cutoff,
    )


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One agent's figures with their name and team lead."""

    agent: repository.AgentRow
    figures: rules.AgentEfficiency


@dataclass(frozen=True, slots=True)
class AgentReport:
    """Agents' efficiency over a period, each against their bucket mix; best first."""

    institution: str
    currency: str
    as_of: date
    period: rules.Period
    team_lead_id: int | None
    agents: list[AgentLine]


def agent_report(
    session: Session,
    *,
    principal: Principal,
    as_of: date,
    start: date | None = None,
    end: date | None = None,
    team_lead_id: int | None = None,
) -> AgentReport:
    """Rank the institution's agents fairly: every figure against what their mix predicts.

    The rates the mix is weighted by are over all of the institution's agents, whatever
    ``team_lead_id`` (a team lead's or manager's user id) narrows the list to.
    """
    frame = _frame(session, principal=principal, as_of=as_of, start=start, end=end)
    institution = frame.institution
    if team_lead_id is not None and (
        repository.team_lead(session, institution_id=institution.id, user_id=team_lead_id) is None
    ):
        raise NotFound(f"no team lead {team_lead_id}")
    people = repository.population(
        principal=principal,
        institution_id=institution.id,
        currency=institution.currency,
        as_of=as_of,
        cuts=(),
    )
    attempts = repository.agent_attempts(session, people, start=frame.start, end=frame.end)
    offset = frame.moment.cutoff.astimezone(zone(institution.timezone)).utcoffset()
    days = repository.agent_days(
        session,
        people,
        start=frame.start,
        end=frame.end,
        offset_minutes=int(offset.total_seconds() // 60) if offset else 0,
    )
    promises = repository.agent_promises(
        session,
        people,
        first_due=frame.period.start,
        last_due=frame.period.end,
        as_of=frame.moment,
    )
    portfolios = repository.agent_portfolios(session, people, start=frame.start, end=frame.end)
    blocks = repository.agent_blocks(session, people, start=frame.start, end=frame.end)
    violations = repository.agent_violations(session, people, start=frame.start, end=frame.end)
    everyone = repository.agents(session, institution_id=institution.id)
    facts = []
    for agent in everyone:

        def of(
            found: Mapping[repository.AgentBucketKey, tuple[int, ...]], position: int, agent_id: int
        ) -> dict[str | None, int]:
            return {
                bucket: values[position]
                for (owner, bucket), values in found.items()
                if owner == agent_id
            }

        decisions, blocked = blocks.get(agent.id, (0, 0))
        facts.append(
            rules.AgentFacts(
                agent_id=agent.id,
                attempts=of(attempts, 0, agent.id),
                right_party=of(attempts, 1, agent.id),
                promises_made=of(attempts, 2, agent.id),
                promises_decided=of(promises, 0, agent.id),
                promises_kept=of(promises, 1, agent.id),
                balance=of(portfolios, 0, agent.id),
                collected=of(portfolios, 1, agent.id),
                worked_days=tuple(days.get(agent.id, ())),
                decisions=decisions,
                blocks=blocked,
                violations=violations.get(agent.id, 0),
            )
        )
    named = {agent.id: agent for agent in everyone}
    listed = {
        agent.id for agent in everyone if team_lead_id is None or agent.team_lead_id == team_lead_id
    }
    return AgentReport(
        institution=institution.code,
        currency=institution.currency,
        as_of=as_of,
        period=frame.period,
        team_lead_id=team_lead_id,
        agents=[
            AgentLine(named[figures.agent_id], figures)
            for figures in rules.agent_efficiency(facts)
            if figures.agent_id in listed
        ],
    )


REGION_LEVELS: tuple[str, ...] = ("province", "city")


@dataclass(frozen=True, slots=True)
class RegionReport:
    """Regions' contact, PTP and cure rates against their bucket mix; hardest first."""

    institution: str
    as_of: date
    period: rules.Period
    level: str
    regions: list[rules.RegionDifficulty]


def region_report(
    session: Session,
    *,
    principal: Principal,
    as_of: date,
    start: date | None = None,
    end: date | None = None,
    level: str = "province",
) -> RegionReport:
    """Compare every province (or province and city) with what its bucket mix predicts."""
    if level not in REGION_LEVELS:
        raise ValidationFailed(
            f"level: unknown level {level!r}: use province or city",
            errors=[{"field": "level", "message": "use province or city"}],
        )
    frame = _frame(session, principal=principal, as_of=as_of, start=start, end=end)
    institution = frame.institution
    cuts = ("province", "bucket") if level == "province" else ("province", "city", "bucket")
    people = repository.population(
        principal=principal,
        institution_id=institution.id,
        currency=institution.currency,
        as_of=as_of,
        cuts=cuts,
    )
    regions: dict[tuple[str | None, ...], dict[str, dict[str | None, int]]] = {}

    def region(key: GroupKey) -> tuple[tuple[str | None, ...], str | None]:
        return key[:-1], key[-1]

    def add(key: GroupKey, name: str, count: int) -> None:
        place, bucket = region(key)
        counts = regions.setdefault(place, {}).setdefault(name, {})
        counts[bucket] = counts.get(bucket, 0) + count

    for key, counted in repository.contacts(
        session, people, start=frame.start, end=frame.end
    ).items():
        add(key, "attempts", counted.attempts)
        add(key, "reached", counted.reached)
        add(key, "right_party", counted.right_party)
        add(key, "promises", counted.promises)
    for key, cells in repository.transitions(
        session,
        people,
        start=frame.period.start - timedelta(days=1),
        end=frame.period.end,
    ).items():
        for cell in cells:
            if cell.from_bucket == "M0":
                continue
            add(key, "delinquent", cell.accounts)
            add(key, "cured", cell.accounts if cell.to_bucket == "M0" else 0)
    facts = [rules.RegionFacts(region=place, **counts) for place, counts in regions.items()]
    return RegionReport(
        institution=institution.code,
        as_of=as_of,
        period=frame.period,
        level=level,
        regions=rules.region_difficulty(facts),
    )


def agents(session: Session, *, institution_id: int) -> list[repository.AgentRow]:
    """Return the institution's agents with their team leads (for pickers and labels)."""
    return repository.agents(session, institution_id=institution_id)
