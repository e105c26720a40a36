"""Work lists and contact reports shared by the dialer and field visits (never commits).

A list is built by putting every case's contact to the gate as a dry run (nothing reserved);
a report of a call or visit that happened puts it to the gate again, at the time it says it
happened, and reserves what it uses. A report the gate would have refused is still logged
(it happened) and queued as a violation for the compliance officer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.compliance.gate import service as gate_service
from recoup.compliance.kinds import RuleKind
from recoup.compliance.rulepack import load_pack
from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import NOT_MADE, OutcomeCode, Party
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.kit.clock import CLOCK_SKEW, aware, utcnow, zone
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.models.account import Account
from recoup.models.cases import Case
from recoup.models.compliance import ComplianceViolation
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.institution import Institution
from recoup.models.outreach import ContactReport, WorkList, WorkListEntry
from recoup.outreach import repository

# What a work list of each kind reaches, and the contact point kinds it uses.
LIST_KINDS: dict[str, tuple[Channel, tuple[str, ...]]] = {
    "call": (Channel.CALL, ("mobile", "landline")),
    "visit": (Channel.VISIT, ("address",)),
}
# A call list built for a later day is checked at this local time of that day.
CALL_DAY_START = time(9, 0)
# Code of the reason an entry has when the debtor has no usable contact point of the kind.
NO_CONTACT_POINT = "no_contact_point"
VIOLATION_CATEGORY = "contact_gate"


@dataclass(frozen=True, slots=True)
class Target:
    """Whose work a list is: one agent's, or one queue's."""

    agent_id: int | None
    queue_id: int | None


def list_target(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    agent_id: int | None,
    queue_code: str | None,
) -> Target:
    """Return whose list the caller may build: an agent builds their own only.

    A team lead or manager names an agent of the institution or a queue; an agent naming
    anyone else, or an id of another institution, is ``NotFound``.
    """
    if principal.is_agent:
        if (agent_id is not None and agent_id != principal.user_id) or queue_code:
            raise NotFound("agents build their own lists; no such agent here")
        return Target(agent_id=principal.user_id, queue_id=None)
    if queue_code:
        queue = repository.queue_by_code(session, institution_id=institution.id, code=queue_code)
        if queue is None:
            raise NotFound(f"no queue {queue_code!r} at this institution")
        return Target(agent_id=agent_id, queue_id=queue.id)
    if agent_id is None:
        if principal.user_id is None:
            raise ValidationFailed("name the agent (agent_id) or the queue (queue) of the list")
        agent_id = principal.user_id
    if (
        repository.institution_user(session, institution_id=institution.id, user_id=agent_id)
        is None
    ):
        raise NotFound(f"no agent {agent_id} at this institution")
    return Target(agent_id=agent_id, queue_id=None)


def planned_at(
    institution: Institution, *, day: date, start: time, now: datetime | None = None
) -> datetime:
    """Return when a list's contacts are planned: the day's start, or now if that has passed."""
    moment = datetime.combine(day, start, tzinfo=zone(institution.timezone))
    now = now or utcnow()
    return max(moment, now) if moment.date() <= now.astimezone(moment.tzinfo).date() else moment


def gate_reasons(decision: Any) -> list[dict[str, Any]]:
    """Return a gate decision's reasons as a list entry stores them (rule, code, messages)."""
    return [
        {
            "rule_id": reason.rule_id,
            "code": reason.code,
            "message_en": reason.message_en,
            "message_zh": reason.message_zh,
        }
        for reason in decision.reasons
    ]


def _no_contact_point(kind: str) -> list[dict[str, Any]]:
    what_en, what_zh = ("phone number", "电话号码") if kind == "call" else ("address", "地址")
    return [
        {
            "rule_id": "",
            "code": NO_CONTACT_POINT,
            "message_en": f"the debtor has no usable {what_en}",
            "message_zh": f"债务人没有可用的{what_zh}",
        }
    ]


def build_work_list(
    session: Session,
    *,
    institution: Institution,
    kind: str,
    target: Target,
    day: date,
    at: datetime,
    actor: str,
    order: Callable[[list[WorkListEntry]], tuple[list[WorkListEntry], int | None]] | None = None,
) -> tuple[WorkList, list[WorkListEntry]]:
    """Build and store a list: each case's contact put to the gate at ``at`` (a dry run).

    For each case the debtor's own usable contact points of the kind are tried in turn (verified
    first); the first the gate allows is the entry's, else the entry is blocked with the
    reasons of the first. ``order`` arranges the allowed entries (a visit route) and returns
    the route's length; without it the list keeps the cases' priority order.
    """
    channel, point_kinds = LIST_KINDS[kind]
    cases = repository.live_cases(
        session, institution_id=institution.id, owner_id=target.agent_id, queue_id=target.queue_id
    )
    debtor_ids = sorted({case.debtor_id for case in cases})
    debtors = repository.debtors_by_id(session, institution_id=institution.id, ids=debtor_ids)
    points = repository.own_contact_points(
        session, institution_id=institution.id, debtor_ids=debtor_ids, kinds=point_kinds
    )
    accounts = repository.case_accounts(session, case_ids=[case.id for case in cases])
    work_list = WorkList(
        institution_id=institution.id,
        kind=kind,
        agent_id=target.agent_id,
        queue_id=target.queue_id,
        work_day=day,
        built_at=utcnow(),
        built_by=actor[:128],
    )
    session.add(work_list)
    session.flush()
    entries: list[WorkListEntry] = []
    for case in cases:
        debtor = debtors[case.debtor_id]
        case_accounts = accounts.get(case.id, [])
        account = max(case_accounts, key=lambda each: each.balance, default=None)
        entry = WorkListEntry(
            institution_id=institution.id,
            work_list_id=work_list.id,
            position=0,
            case_id=case.id,
            debtor_id=debtor.id,
            account_id=account.id if account else None,
            city=debtor.city,
            district=debtor.district,
            balance=sum(each.balance for each in case_accounts),
            currency=account.currency if account else institution.currency,
            reasons=_no_contact_point(kind),
        )
        first_reasons: list[dict[str, Any]] | None = None
        for point in points.get(debtor.id, []):
            checked = gate_service.check_contact(
                session,
                institution_id=institution.id,
                debtor_id=debtor.id,
                channel=channel,
                party=Party.DEBTOR,
                at=at,
                actor=actor,
                contact_point_id=point.id,
                account_id=entry.account_id,
                agent_user_id=target.agent_id,
                reserve=False,
            )
            if checked.decision.allowed:
                entry.contact_point_id = point.id
                entry.decision_id = checked.record.id
                entry.allowed = True
                entry.reasons = []
                entry.next_allowed_at = None
                break
            if first_reasons is None:
                first_reasons = gate_reasons(checked.decision)
                entry.contact_point_id = point.id
                entry.decision_id = checked.record.id
                entry.next_allowed_at = checked.decision.next_allowed_at
        if not entry.allowed and first_reasons is not None:
            entry.reasons = first_reasons
        entries.append(entry)
    allowed = [entry for entry in entries if entry.allowed]
    blocked = [entry for entry in entries if not entry.allowed]
    route_metres = None
    if order is not None:
        allowed, route_metres = order(allowed)
    for position, entry in enumerate([*allowed, *blocked], start=1):
        entry.position = position
    session.add_all(entries)
    work_list.allowed = len(allowed)
    work_list.blocked = len(blocked)
    work_list.route_metres = route_metres
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"outreach.{kind}_list_built",
        object_type="work_list",
        object_id=work_list.id,
        institution_id=institution.id,
        details={
            "agent_id": target.agent_id,
            "queue_id": target.queue_id,
            "day": day.isoformat(),
            "allowed": work_list.allowed,
            "blocked": work_list.blocked,
        },
    )
    return work_list, [*allowed, *blocked]


def visible_list(
    session: Session,
    *,
    principal: Principal,
    institution_id: int,
    list_id: int,
    kind: str | None = None,
) -> WorkList:
    """Return a work list (of ``kind``) the caller may see: agents see their own lists only."""
    work_list = repository.get_list(session, institution_id=institution_id, list_id=list_id)
    if (
        work_list is None
        or (kind is not None and work_list.kind != kind)
        or (principal.is_agent and work_list.agent_id != principal.user_id)
    ):
        raise NotFound(f"no {kind or 'work'} list {list_id}")
    return work_list


def shown_list(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    kind: str,
    list_id: int | None = None,
) -> tuple[WorkList | None, list[EntryView]]:
    """A work list of ``kind`` the caller may see (their newest without ``list_id``) and entries."""
    if list_id is not None:
        work_list: WorkList | None = visible_list(
            session, principal=principal, institution_id=institution.id, list_id=list_id, kind=kind
        )
    else:
        work_list = repository.latest_list(
            session,
            institution_id=institution.id,
            kind=kind,
            agent_id=principal.user_id if principal.is_agent else None,
            day=None,
        )
    if work_list is None or work_list.kind != kind:
        return None, []
    entries = repository.list_entries(session, work_list_id=work_list.id)
    return work_list, entry_views(session, institution_id=institution.id, entries=entries)


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What a dialer or a field agent says happened."""

    external_id: str
    entry_id: int
    happened_at: datetime
    outcome: str
    ended_at: datetime | None = None
    duration_seconds: int | None = None
    notes: str | None = None
    record_ref: str | None = None


def _same_report(report: ContactReport, given: ReportInput) -> bool:
    return (
        report.entry_id == given.entry_id
        and report.outcome == given.outcome
        and aware(report.happened_at) == given.happened_at
    )


def visits_need_record(institution: Institution) -> tuple[str, str] | None:
    """Return (rule id, message) when the pack wants every visit recorded (CN-REC), else None."""
    pack = load_pack(str(institution.jurisdiction))
    for rule in pack.rules_of(RuleKind.RECORDING):
        if rule.parameters.get("visits_recorded"):
            return rule.id, rule.message("recording_required").en
    return None


def record_report(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    kind: str,
    given: ReportInput,
    now: datetime | None = None,
) -> tuple[ContactReport, bool]:
    """Record what came of a call or visit on a list; return the report and whether it is new.

    The entry must be one the caller may see (``NotFound`` otherwise); then the same
    ``external_id`` again is the same report (returned, nothing written), and with another
    result a ``Conflict``. The contact is put to the gate at ``happened_at``: allowed, it
    is logged with its outcome; refused, it is logged all the same and flagged as a violation.
    """
    channel, _kinds = LIST_KINDS[kind]
    entry = repository.get_entry(session, institution_id=institution.id, entry_id=given.entry_id)
    work_list = (
        repository.get_list(session, institution_id=institution.id, list_id=entry.work_list_id)
        if entry is not None
        else None
    )
    if entry is None or work_list is None or work_list.kind != kind:
        raise NotFound(f"no {kind} list entry {given.entry_id}")
    if principal.is_agent and work_list.agent_id != principal.user_id:
        raise NotFound(f"no {kind} list entry {given.entry_id}")
    get_scoped(session, Case, entry.case_id, institution_scope_of(principal, institution))
    existing = repository.report_by_external_id(
        session, institution_id=institution.id, kind=kind, external_id=given.external_id
    )
    if existing is not None:
        if not _same_report(existing, given):
            raise Conflict(
                f"{kind} {given.external_id!r} was already reported with another result "
                f"(entry {existing.entry_id}, {existing.outcome})"
            )
        return existing, False
    now = now or utcnow()
    if given.happened_at > now + CLOCK_SKEW:
        raise ValidationFailed("'happened_at' is in the future; send when the contact happened")
    if given.ended_at is not None and given.ended_at < given.happened_at:
        raise ValidationFailed("'ended_at' is before 'happened_at'")
    if kind == "visit" and given.outcome != NOT_MADE and not (given.record_ref or "").strip():
        needed = visits_need_record(institution)
        if needed is not None:
            raise ValidationFailed(
                f"record_ref: {needed[0]}: {needed[1]} Give the recording's file id.",
                errors=[{"field": "record_ref", "message": needed[1]}],
            )
    agent_id = principal.user_id if principal.user_id is not None else work_list.agent_id
    report = ContactReport(
        institution_id=institution.id,
        kind=kind,
        external_id=given.external_id,
        entry_id=entry.id,
        debtor_id=entry.debtor_id,
        contact_point_id=entry.contact_point_id,
        agent_id=agent_id,
        happened_at=given.happened_at,
        outcome=given.outcome,
        record_ref=(given.record_ref or "").strip() or None,
        notes=(given.notes or "").strip() or None,
        reported_by=principal.actor[:128],
    )
    if given.outcome != NOT_MADE:
        _gate_at_result(
            session,
            institution=institution,
            channel=channel,
            entry=entry,
            report=report,
            given=given,
            agent_id=agent_id,
            actor=principal.actor,
        )
    session.add(report)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action=f"outreach.{kind}_reported",
        object_type="contact_report",
        object_id=report.id,
        institution_id=institution.id,
        details={
            "external_id": given.external_id,
            "entry_id": entry.id,
            "outcome": given.outcome,
            "violation": report.violation,
            "rule_ids": list(report.rule_ids),
            "record_ref": report.record_ref,
        },
    )
    return report, True


def institution_scope_of(principal: Principal, institution: Institution) -> Principal:
    """Return the principal rows are loaded as: the caller, who must be of the institution."""
    if principal.institution_id != institution.id:
        raise NotFound("no such institution for this caller")
    return principal


def _gate_at_result(
    session: Session,
    *,
    institution: Institution,
    channel: Channel,
    entry: WorkListEntry,
    report: ContactReport,
    given: ReportInput,
    agent_id: int | None,
    actor: str,
) -> None:
    """Put a reported contact to the gate at the time it happened and log it either way."""
    try:
        outcome = OutcomeCode(given.outcome)
    except ValueError:
        raise ValidationFailed(f"outcome: unknown outcome {given.outcome!r}") from None
    checked = gate_service.check_contact(
        session,
        institution_id=institution.id,
        debtor_id=entry.debtor_id,
        channel=channel,
        party=Party.DEBTOR,
        at=given.happened_at,
        actor=actor,
        contact_point_id=entry.contact_point_id,
        account_id=entry.account_id,
        agent_user_id=agent_id,
        reserve=True,
    )
    report.decision_id = checked.record.id
    if checked.decision.allowed:
        attempt = gate_service.record_outcome(
            session,
            institution_id=institution.id,
            decision_id=checked.record.id,
            outcome=outcome.value,
            happened_at=given.happened_at,
            ended_at=given.ended_at,
            duration_seconds=given.duration_seconds,
            provider_message_id=given.external_id[:128],
            actor=actor,
        )
        report.attempt_id = attempt.id
        return
    attempt = contact_service.log_unallowed(
        session,
        institution_id=institution.id,
        decision_id=checked.record.id,
        debtor_id=entry.debtor_id,
        channel=channel,
        party=Party.DEBTOR,
        outcome=outcome,
        started_at=given.happened_at,
        actor=actor,
        account_id=entry.account_id,
        contact_point_id=entry.contact_point_id,
        agent_id=agent_id,
        ended_at=given.ended_at,
        duration_seconds=given.duration_seconds,
        provider_message_id=given.external_id[:128],
    )
    report.attempt_id = attempt.id
    report.violation = True
    report.rule_ids = list(checked.decision.rule_ids)
    first = checked.decision.reasons[0]
    excerpt = f"{channel.value} {given.external_id} at {given.happened_at.isoformat()}: "
    excerpt = (excerpt + first.message_en)[:255]
    repository.add_violation(
        session,
        ComplianceViolation(
            institution_id=institution.id,
            source=f"outreach.{channel.value}",
            source_id=given.external_id[:64],
            debtor_id=entry.debtor_id,
            actor=actor[:128],
            category=VIOLATION_CATEGORY,
            rule_id=first.rule_id[:16],
            excerpt=excerpt,
            start=0,
            end=len(excerpt),
        ),
    )


@dataclass(frozen=True, slots=True)
class EntryView:
    """A list entry with what a page or export shows of it."""

    entry: WorkListEntry
    debtor: Debtor
    contact_point: ContactPoint | None
    account: Account | None
    reports: list[ContactReport]


def entry_views(
    session: Session, *, institution_id: int, entries: Sequence[WorkListEntry]
) -> list[EntryView]:
    """Return the entries with their debtor, contact point, account and reports."""
    debtors = repository.debtors_by_id(
        session, institution_id=institution_id, ids=sorted({e.debtor_id for e in entries})
    )
    points = {
        point.id: point
        for point in (
            session.get(ContactPoint, entry.contact_point_id)
            for entry in entries
            if entry.contact_point_id is not None
        )
        if point is not None
    }
    accounts = {
        account.id: account
        for account in (
            session.get(Account, entry.account_id) for entry in entries if entry.account_id
        )
        if account is not None
    }
    reports = repository.reports_for_entries(session, entry_ids=[entry.id for entry in entries])
    return [
        EntryView(
            entry=entry,
            debtor=debtors[entry.debtor_id],
            contact_point=points.get(entry.contact_point_id or 0),
            account=accounts.get(entry.account_id or 0),
            reports=reports.get(entry.id, []),
        )
        for entry in entries
    ]


def work_day_start(institution: Institution, day: date, start: time) -> datetime:
    """Return a work day's start in the institution's zone."""
    return datetime.combine(day, start, tzinfo=zone(institution.timezone))


def day_span(institution: Institution, day: date) -> tuple[datetime, datetime]:
    """Return a work day's bounds in the institution's zone."""
    start = work_day_start(institution, day, time(0, 0))
    return start, start + timedelta(days=1)
