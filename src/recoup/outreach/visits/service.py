"""Field visit lists: built through the gate, routed, results recorded (never commits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.identity.principal import Principal
from recoup.institutions.settings import settings_of
from recoup.kit.clock import aware, local_today, utcnow
from recoup.models.institution import Institution
from recoup.models.outreach import ContactReport, WorkList, WorkListEntry
from recoup.outreach import repository
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


def _stops(entries: Sequence[WorkListEntry]) -> list[rules.Stop]:
    return [
        rules.Stop(
            city=entry.city or "",
            district=entry.district or "",
            point=places.district_point(entry.city, entry.district),
        )
        for entry in entries
    ]


def route(entries: Sequence[WorkListEntry], *, start: rules.Point | None) -> rules.Route:
    """Return the route through the entries' districts (each visited once)."""
    return rules.plan_route(_stops(entries), start=start)


# How many times one visit may be moved to the gate's next allowed time before it is dropped.
MAX_MOVES = 3


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
    """Build a field agent's visit list: each address put to the gate, the allowed ones routed,
    and each visit put to the gate again at its own planned time.

    The list is screened at the start of the field team's working day (``outreach.visit_start``;
    now, if that has passed). The visits the gate allows then — and those it only holds until
    later that day — are routed, then planned one every ``outreach.visit_minutes`` in route
    order, each asked of the gate (a dry run) at its slot, in the debtor's local time. A visit
    refused at its slot moves to the gate's next allowed time that day (the visits after it
    follow); one that cannot be made that day is dropped from the route with the rule named.
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
    first = outreach.planned_at(institution, day=day, start=_clock(settings.visit_start), now=now)
    work_list, entries = outreach.build_work_list(
        session,
        institution=institution,
        kind="visit",
        target=target,
        day=day,
        at=first,
        actor=principal.actor,
    )
    entries = _plan_slots(
        session,
        institution=institution,
        work_list=work_list,
        entries=entries,
        agent_id=target.agent_id,
        actor=principal.actor,
        first=first,
        minutes=settings.visit_minutes,
    )
    return work_list, outreach.entry_views(session, institution_id=institution.id, entries=entries)


def _plan_slots(
    session: Session,
    *,
    institution: Institution,
    work_list: WorkList,
    entries: list[WorkListEntry],
    agent_id: int | None,
    actor: str,
    first: datetime,
    minutes: int,
) -> list[WorkListEntry]:
    """Route the day's visits and put each to the gate at its planned slot; return the entries
    in list order (planned visits in route order, then the blocked ones)."""
    day_end = outreach.day_span(institution, work_list.work_day)[1]
    candidates = [
        entry
        for entry in entries
        if entry.allowed
        or (
            entry.contact_point_id is not None
            and entry.next_allowed_at is not None
            and aware(entry.next_allowed_at) < day_end
        )
    ]
    left_out = [entry for entry in entries if entry not in candidates]
    start = route_start(institution)
    ordered = [candidates[index] for index in route(candidates, start=start).order]
    planned: list[WorkListEntry] = []
    dropped: list[WorkListEntry] = []
    slot = first
    for entry in ordered:
        at = slot
        if entry.allowed and at == first:
            planned.append(entry)  # asked at this very time when the list was screened
            slot = at + timedelta(minutes=minutes)
            continue
        for _ in range(MAX_MOVES + 1):
            checked = gate_service.check_contact(
                session,
                institution_id=institution.id,
                debtor_id=entry.debtor_id,
                channel=Channel.VISIT,
                party=Party.DEBTOR,
                at=at,
                actor=actor,
                contact_point_id=entry.contact_point_id,
                account_id=entry.account_id,
                agent_user_id=agent_id,
                reserve=False,
            )
            entry.decision_id = checked.record.id
            if checked.decision.allowed:
                break
            moved = rules.moved_slot(at, checked.decision.next_allowed_at, day_end=day_end)
            if moved is None:
                break
            at = moved
        if checked.decision.allowed:
            entry.allowed, entry.reasons, entry.next_allowed_at = True, [], None
            planned.append(entry)
            slot = at + timedelta(minutes=minutes)
        else:
            entry.allowed = False
            entry.reasons = outreach.gate_reasons(checked.decision)
            entry.next_allowed_at = checked.decision.next_allowed_at
            dropped.append(entry)
    listed = [*planned, *dropped, *left_out]
    for position, entry in enumerate(listed, start=1):
        entry.position = position
    work_list.allowed = len(planned)
    work_list.blocked = len(listed) - len(planned)
    work_list.route_metres = rules.stops_length(_stops(planned), start=start) if planned else None
    session.flush()
    return listed


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


def planned_times(session: Session, views: Sequence[outreach.EntryView]) -> dict[int, datetime]:
    """Return each allowed visit's planned time (when the gate was asked about it), by entry id."""
    decisions = {
        view.entry.id: view.entry.decision_id
        for view in views
        if view.entry.allowed and view.entry.decision_id is not None
    }
    times = repository.decision_times(session, ids=sorted(set(decisions.values())))
    return {
        entry_id: aware(times[decision_id])
        for entry_id, decision_id in decisions.items()
        if decision_id in times
    }


def route_groups(
    institution: Institution,
    work_list: WorkList,
    views: Sequence[outreach.EntryView],
    *,
    planned: Mapping[int, datetime] | None = None,
) -> list[RouteGroup]:
    """Group a list's allowed visits by city and district in route order, with planned times.

    A visit's time is the slot the gate allowed it at (``planned``, from ``planned_times``);
    without one, visits are spaced ``outreach.visit_minutes`` apart from ``visit_start``. A
    visit that would start after ``visit_end`` has no time (the field team's day is full).
    """
    settings = settings_of(institution).outreach
    first = outreach.work_day_start(institution, work_list.work_day, _clock(settings.visit_start))
    end = outreach.work_day_start(institution, work_list.work_day, _clock(settings.visit_end))
    allowed = [view for view in views if view.entry.allowed]
    spaced = rules.visit_times(first, count=len(allowed), minutes=settings.visit_minutes)
    times = [
        (planned or {}).get(view.entry.id, default)
        for view, default in zip(allowed, spaced, strict=True)
    ]
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
