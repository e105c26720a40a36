"""The KPIs of an institution as of a date and over a period, cut by product, bucket, region…

One function, ``kpi_report``: it checks the request, counts the facts of every group in SQL
(``repository``), and turns them into KPIs (``rules.kpis_of``). The institution's total is the
sum of its groups' facts, so totals and groups always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from recoup.analytics import repository, rules
from recoup.analytics.repository import AsOf, GroupKey
from recoup.identity.principal import Principal
from recoup.institutions.settings import settings_of
from recoup.kit.clock import start_of_day
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
