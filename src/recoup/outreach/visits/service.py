"""Field visit lists: built through the gate, routed, results recorded (never commits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy.orm import Session

from recoup.identity.principal import Principal
from recoup.institutions.settings import settings_of
from recoup.kit.clock import local_today, utcnow
from recoup.models.institution import Institution
from recoup.models.outreach import ContactReport, WorkList, WorkListEntry
from recoup.outreach import service as outreach
from recoup.outreach.visits import places, rules


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def route_start(institution: Institution) -> rules.Point | None:
    """Return where the institution's field routes start (settings ``outreach.route_start``)."""
    start = settings_of(institution).outreach.route_start
    if not start:
        return None
    city, district = start.split("/", 1)
    return places.district_point(city.strip(), district.strip())


def route(entries: Sequence[WorkListEntry], *, start: rules.Point | None) -> rules.Route:
    """Return the route through the entries' districts (each visited once)."""
    return rules.plan_route(
        [
            rules.Stop(
                city=entry.city or "",
                district=entry.district or "",
                point=places.district_point(entry.city, entry.district),
            )
            for entry in entries
        ],
        start=start,
    )


def build_visit_list(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    agent_id: int | None = None,
    queue_code: str | None = None,
    day: date | None = None,
    now: datetime | None = None,
) -> tuple[WorkList, list[outreach.EntryView]]:
    """Build a field agent's visit list: each address put to the gate, the allowed ones routed.

    The gate is asked at the start of the field team's working day (``outreach.visit_start``;
    now, if that has passed): visits keep their own hours in the rule packs and policies.
    """
    now = now or utcnow()
    day = day or local_today(institution.timezone, now=now)
    settings = settings_of(institution).outreach
    target = outreach.list_target(
        session,
        principal=principal,
        institution=institution,
        agent_id=agent_id,
        queue_code=queue_code,
    )
    start = route_start(institution)

    def in_route_order(allowed: list[WorkListEntry]) -> tuple[list[WorkListEntry], int | None]:
        planned = route(allowed, start=start)
        return [allowed[index] for index in planned.order], planned.metres

    work_list, entries = outreach.build_work_list(
        session,
        institution=institution,
        kind="visit",
        target=target,
        day=day,
        at=outreach.planned_at(institution, day=day, start=_clock(settings.visit_start), now=now),
        actor=principal.actor,
        order=in_route_order,
    )
    return work_list, outreach.entry_views(session, institution_id=institution.id, entries=entries)


def visit_list(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    list_id: int | None = None,
) -> tuple[WorkList | None, list[outreach.EntryView]]:
    """Return a visit list the caller may see (their newest without ``list_id``)."""
    return outreach.shown_list(
        session, principal=principal, institution=institution, kind="visit", list_id=list_id
    )


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    """A visit on the route with the time it is planned for (None once the day is full)."""

    view: outreach.EntryView
    at: datetime | None


@dataclass(frozen=True, slots=True)
class RouteGroup:
    """The visits of one district of one city, in route order."""

    city: str
    district: str
    visits: list[PlannedVisit]


def route_groups(
    institution: Institution, work_list: WorkList, views: Sequence[outreach.EntryView]
) -> list[RouteGroup]:
    """Group a list's allowed visits by city and district in route order, with planned times.

    Visits are spaced ``outreach.visit_minutes`` apart from ``visit_start``; a visit that would
    start after ``visit_end`` has no time (the day is full).
    """
    settings = settings_of(institution).outreach
    first = outreach.work_day_start(institution, work_list.work_day, _clock(settings.visit_start))
    end = outreach.work_day_start(institution, work_list.work_day, _clock(settings.visit_end))
    allowed = [view for view in views if view.entry.allowed]
    times = rules.visit_times(first, count=len(allowed), minutes=settings.visit_minutes)
    groups: list[RouteGroup] = []
    for view, at in zip(allowed, times, strict=True):
        city, district = view.entry.city or "", view.entry.district or ""
        if not groups or (groups[-1].city, groups[-1].district) != (city, district):
            groups.append(RouteGroup(city=city, district=district, visits=[]))
        groups[-1].visits.append(PlannedVisit(view=view, at=at if at < end else None))
    return groups


def report_visit(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    given: outreach.ReportInput,
    now: datetime | None = None,
) -> tuple[ContactReport, bool]:
    """Record a visit's result (idempotent by the visit id); CN-REC wants its record's id."""
    return outreach.record_report(
        session,
        principal=principal,
        institution=institution,
        kind="visit",
        given=given,
        now=now,
    )
