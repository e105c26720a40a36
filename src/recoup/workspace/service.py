"""The agent workspace: my cases, the next case to work, a case's page and logging a contact.

Never commits. Every case id is loaded through the tenant and case scoping (an agent sees
the cases they own); the debtor, accounts and contact points of a case are then read as the
case's own, and the gate is asked only through its read-only preview for browsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.cases.rules import LIVE_STATES, CaseState
from recoup.compliance.gate import service as gate
from recoup.compliance.gate.rules import Decision
from recoup.compliance.templates import service as review
from recoup.contact import service as contact
from recoup.contact.channels import CHANNELS, Channel
from recoup.contact.rules import OUTCOMES, OutcomeCode, Party, outcome_problem
from recoup.enums import ContactKind, ContactStatus
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.kit import clock
from recoup.kit.clock import aware, utcnow
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.kit.text import require_text
from recoup.models.account import Account
from recoup.models.cases import Case
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.institution import Institution
from recoup.models.strategy import CaseStrategyState
from recoup.models.workspace import CaseNote, CaseTask
from recoup.plans import service as plans
from recoup.plans.rules import Frequency
from recoup.workbench import rules as promise_rules
from recoup.workbench import service as promises
from recoup.workspace import repository, rules
from recoup.workspace.repository import CaseFilters
from recoup.workspace.rules import TaskKind, TimelineEntry, TimelineKind

# Contact points the gate is asked about: the ones that may still reach someone.
USABLE = (ContactStatus.valid, ContactStatus.unverified)
_PHONE_KINDS = (ContactKind.mobile, ContactKind.landline)


@dataclass(frozen=True, slots=True)
class Badge:
    """Whether one channel to one contact point is allowed now, or when it next is."""

    channel: Channel
    allowed: bool
    next_allowed_at: datetime | None
    # The debtor's zone the gate decided in (the first of them), for showing local times.
    zone: str | None
    reasons_en: tuple[str, ...] = ()
    reasons_zh: tuple[str, ...] = ()


def _badge(channel: Channel, decision: Decision) -> Badge:
    return Badge(
        channel=channel,
        allowed=decision.allowed,
        next_allowed_at=decision.next_allowed_at,
        zone=decision.timezones[0] if decision.timezones else None,
        reasons_en=tuple(reason.message_en for reason in decision.reasons),
        reasons_zh=tuple(reason.message_zh for reason in decision.reasons),
    )


@dataclass(frozen=True, slots=True)
class PointBadges:
    """A contact point with a badge per channel that reaches it (none once it is unusable)."""

    contact_point: ContactPoint
    badges: list[Badge]


def now() -> datetime:
    """Return the time the workspace decides at (the clock, in one place)."""
    return utcnow()


def institution_of(session: Session, principal: Principal) -> Institution:
    """Return the caller's institution (a platform admin has none: nothing to find)."""
    if principal.institution_id is None:
        raise NotFound("cases belong to an institution; sign in as its user")
    institution = session.get(Institution, principal.institution_id)
    if institution is None:
        raise NotFound(f"no institution {principal.institution_id}")
    return institution


def my_cases(
    session: Session,
    *,
    principal: Principal,
    filters: CaseFilters,
    page: PageRequest,
    now: datetime | None = None,
) -> Page[tuple[Case, str | None, datetime | None]]:
    """One page of the caller's own cases, due call-backs first, then by priority."""
    return repository.my_cases_page(
        session, principal=principal, filters=filters, page=page, now=now or utcnow()
    )


def my_queues(session: Session, *, principal: Principal) -> list[tuple[str, str]]:
    """The queues (code, name) the caller's live cases are in."""
    return repository.my_queues(session, principal=principal)


def priority_rank(session: Session, *, case: Case) -> tuple[int, int] | None:
    """The case's rank by priority among its owner's live cases: (rank, of how many)."""
    return repository.priority_rank(session, case=case)


def case_buckets(session: Session, *, case_ids: list[int]) -> dict[int, list[tuple[str, int, str]]]:
    """Per case: the bucket, balance and currency of each of its accounts."""
    return repository.case_buckets(session, case_ids=case_ids)


def contact_badges(
    session: Session,
    *,
    institution: Institution,
    debtor: Debtor,
    contact_points: list[ContactPoint],
    at: datetime,
) -> list[PointBadges]:
    """Ask the gate (read-only) whether each channel to each usable contact point is allowed."""
    targets: list[gate.PreviewTarget] = []
    owners: list[int] = []
    for index, point in enumerate(contact_points):
        if point.status not in USABLE:
            continue
        for channel in rules.badge_channels(str(point.kind)):
            targets.append(
                gate.PreviewTarget(
                    channel=channel,
                    contact_point=point,
                    party=Party.THIRD_PARTY if point.third_party else Party.DEBTOR,
                )
            )
            owners.append(index)
    decisions = gate.preview_contacts(
        session, institution=institution, debtor=debtor, targets=targets, at=at
    )
    found = [PointBadges(point, []) for point in contact_points]
    for index, target, decision in zip(owners, targets, decisions, strict=True):
        found[index].badges.append(_badge(target.channel, decision))
    return found


@dataclass(frozen=True, slots=True)
class Skipped:
    """A case "next case" passed over, and why the gate would not allow a call now."""

    case: Case
    badge: Badge | None
    # no_phone: no usable phone of the debtor's own to call.
    code: str


@dataclass(frozen=True, slots=True)
class NextCase:
    """The case to work next (None when nothing is workable now) and the cases passed over."""

    case: Case | None
    callback_due: datetime | None = None
    skipped: list[Skipped] = field(default_factory=list)


def next_case(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    now: datetime | None = None,
    lookahead: int = rules.NEXT_CASE_LOOKAHEAD,
) -> NextCase:
    """Return the caller's highest-priority case the gate would let them call now.

    Due call-backs come first. A case whose debtor may not be called now (hours, caps, a
    stop) is passed over with the gate's reason; the preview stores nothing and claims no
    slot, so browsing never uses up a debtor's contacts.
    """
    now = now or utcnow()
    skipped: list[Skipped] = []
    candidates = repository.next_candidates(session, principal=principal, now=now, limit=lookahead)
    debtor_ids = [case.debtor_id for case, _ in candidates]
    points = repository.contact_points_of(
        session, institution_id=institution.id, debtor_ids=debtor_ids
    )
    # One set-based preview of every candidate first; the exact one, per phone, only for the
    # case about to be offered.
    previews = gate.preview_debtors(
        session, institution=institution, debtor_ids=debtor_ids, channel=Channel.CALL, at=now
    )
    debtors = repository.debtors(session, institution_id=institution.id, debtor_ids=debtor_ids)
    for case, due in candidates:
        phones = [
            point
            for point in points.get(case.debtor_id, [])
            if not point.third_party and point.status in USABLE and point.kind in _PHONE_KINDS
        ]
        if not phones:
            skipped.append(Skipped(case, None, "no_phone"))
            continue
        rough = previews[case.debtor_id]
        if not rough.allowed:
            skipped.append(Skipped(case, _badge(Channel.CALL, rough), "blocked"))
            continue
        decisions = gate.preview_contacts(
            session,
            institution=institution,
            debtor=debtors[case.debtor_id],
            targets=[gate.PreviewTarget(Channel.CALL, point) for point in phones],
            at=now,
        )
        if any(decision.allowed for decision in decisions):
            return NextCase(case, aware(due) if due else None, skipped)
        soonest = min(
            decisions,
            key=lambda decision: (
                decision.next_allowed_at is None,
                decision.next_allowed_at or now,
            ),
        )
        skipped.append(Skipped(case, _badge(Channel.CALL, soonest), "blocked"))
    return NextCase(None, None, skipped)


@dataclass(frozen=True, slots=True)
class CaseView:
    """What a case page shows."""

    case: Case
    debtor: Debtor
    accounts: list[Account]
    contact_points: list[PointBadges]
    timeline: list[TimelineEntry]
    timeline_limit: int
    more: bool
    open_tasks: list[CaseTask]
    strategy: CaseStrategyState | None = None


def load_case(session: Session, *, principal: Principal, case_id: int) -> Case:
    """Return a case the caller may see (an agent: their own); ``NotFound`` otherwise."""
    return get_scoped(session, Case, case_id, principal)


def _timeline(
    session: Session, *, case: Case, accounts: list[Account], limit: int
) -> list[TimelineEntry]:
    institution_id = case.institution_id
    # One more than shown tells whether there is more.
    take = limit + 1
    sources: list[list[TimelineEntry]] = []
    sources.append(
        [
            TimelineEntry(
                at=aware(attempt.started_at or attempt.planned_at or attempt.created_at),
                kind=TimelineKind.CONTACT,
                rank=5,
                details={"attempt": attempt, "contact_point": point},
            )
            for attempt, point in repository.attempts(
                session, institution_id=institution_id, debtor_id=case.debtor_id, limit=take
            )
        ]
    )
    sources.append(
        [
            TimelineEntry(
                at=aware(promise.resolved_at or promise.created_at),
                kind=TimelineKind.PROMISE,
                rank=3,
                details={"promise": promise},
            )
            for promise in repository.promises(
                session, institution_id=institution_id, debtor_id=case.debtor_id, limit=take
            )
        ]
    )
    sources.append(
        [
            TimelineEntry(
                at=aware(plan.created_at),
                kind=TimelineKind.PLAN,
                rank=3,
                details={"plan": plan},
            )
            for plan in repository.plans(
                session, institution_id=institution_id, debtor_id=case.debtor_id, limit=take
            )
        ]
    )
    sources.append(
        [
            TimelineEntry(
                at=aware(payment.paid_at),
                kind=TimelineKind.PAYMENT,
                rank=4,
                details={"payment": payment, "account": external_id},
            )
            for payment, external_id in repository.payments(
                session,
                institution_id=institution_id,
                account_ids=[account.id for account in accounts],
                limit=take,
            )
        ]
    )
    sources.append(
        [
            TimelineEntry(
                at=aware(event.at), kind=TimelineKind.CASE, rank=1, details={"event": event}
            )
            for event in repository.case_events(session, case_id=case.id, limit=take)
        ]
    )
    sources.append(
        [
            TimelineEntry(at=aware(note.at), kind=TimelineKind.NOTE, rank=4, details={"note": note})
            for note in repository.notes(session, case_id=case.id, limit=take)
        ]
    )
    sources.append(
        [
            TimelineEntry(
                at=aware(task.created_at), kind=TimelineKind.TASK, rank=2, details={"task": task}
            )
            for task in repository.tasks(session, case_id=case.id, limit=take)
        ]
    )
    return rules.merge_timeline(sources, limit=take)


def case_view(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    case_id: int,
    timeline_limit: int | None = None,
    now: datetime | None = None,
) -> CaseView:
    """Return what the case page shows: debtor, accounts, badges, timeline and open tasks."""
    case = load_case(session, principal=principal, case_id=case_id)
    debtor = session.get(Debtor, case.debtor_id)
    assert debtor is not None
    accounts = repository.case_accounts(session, case_id=case.id)
    points = repository.own_contact_points(
        session, institution_id=case.institution_id, debtor_id=case.debtor_id
    )
    badges = contact_badges(
        session, institution=institution, debtor=debtor, contact_points=points, at=now or utcnow()
    )
    limit = rules.timeline_limit(timeline_limit)
    entries = _timeline(session, case=case, accounts=accounts, limit=limit)
    return CaseView(
        case=case,
        debtor=debtor,
        accounts=accounts,
        contact_points=badges,
        timeline=entries[:limit],
        timeline_limit=limit,
        more=len(entries) > limit,
        open_tasks=repository.open_tasks(session, case_id=case.id),
        strategy=repository.strategy_state(session, case_id=case.id),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactForm:
    """What an agent logs about one contact, with an optional promise, plan or call-back."""

    channel: Channel
    outcome: OutcomeCode
    inbound: bool = False
    contact_point_id: int | None = None
    account_id: int | None = None
    note: str | None = None
    promise_amount: int | None = None
    promise_due: date | None = None
    plan_instalments: int | None = None
    plan_start: date | None = None
    plan_frequency: Frequency = Frequency.MONTHLY
    callback_at: datetime | None = None
    locale: str = "zh"
    # The approved call script the agent used (the script library's suggestion by default).
    script_id: int | None = None


@dataclass(frozen=True, slots=True)
class Logged:
    """What logging a contact did."""

    attempt: ContactAttempt
    promise_id: int | None = None
    plan_id: int | None = None
    plan_status: str | None = None
    callback: CaseTask | None = None
    callback_moved: bool = False
    violations: int = 0


def _problem(field_name: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(
        f"{field_name}: {message}",
        errors=[{"field": field_name, "code": code, "message": message}],
    )


def _case_point(session: Session, case: Case, contact_point_id: int | None) -> ContactPoint | None:
    if contact_point_id is None:
        return None
    point = session.get(ContactPoint, contact_point_id)
    if (
        point is None
        or point.institution_id != case.institution_id
        or point.debtor_id != case.debtor_id
    ):
        raise NotFound(f"no contact point {contact_point_id} on this case")
    return point


def _case_account(accounts: list[Account], account_id: int | None) -> Account | None:
    if account_id is None:
        return None
    for account in accounts:
        if account.id == account_id:
            return account
    raise NotFound(f"no account {account_id} on this case")


def log_contact(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    case_id: int,
    form: ContactForm,
    now: datetime | None = None,
) -> Logged:
    """Log one contact on a case, with its promise, plan or call-back, in one transaction.

    An outbound contact passes the gate first (a blocked one is refused, naming the rule and
    the next allowed time); an inbound one is logged as the debtor's. The outcome acts as the
    contact domain says (a wrong number invalidates the contact point, a dispute, hardship or
    stop moves the case). The note is kept on the case and scanned for violations; a call-back
    falls due at the first time the gate allows at or after the time asked for.
    """
    now = now or utcnow()
    case = load_case(session, principal=principal, case_id=case_id)
    if case.state not in LIVE_STATES:
        raise _problem("case", "this case is closed; nothing more is logged on it", "closed")
    accounts = repository.case_accounts(session, case_id=case.id)
    point = _case_point(session, case, form.contact_point_id)
    account = _case_account(accounts, form.account_id)
    channel = form.channel
    outcome = form.outcome
    problem = rules_problem(channel, outcome, inbound=form.inbound, point=point)
    if problem is not None:
        raise _problem(problem.field, str(problem), problem.code)
    wants_promise = form.promise_amount is not None or form.promise_due is not None
    wants_plan = form.plan_instalments is not None
    agreement = rules.agreement_problem(outcome, promise=wants_promise, plan=wants_plan)
    if agreement is not None:
        raise _problem(agreement.field, str(agreement), agreement.code)
    if (wants_promise or wants_plan) and account is None:
        if len(accounts) != 1:
            raise _problem("account_id", "choose the account the promise or plan is on", "required")
        account = accounts[0]
    if outcome is OutcomeCode.CALLBACK_REQUESTED and form.callback_at is None:
        raise _problem(
            "callback_at", "give the time the debtor asked to be called back", "required"
        )
    note = require_text("note", form.note, multiline=True)[:2000] if form.note else None
    party = Party.THIRD_PARTY if point is not None and point.third_party else Party.DEBTOR
    debtor = session.get(Debtor, case.debtor_id)
    assert debtor is not None

    if form.inbound:
        attempt, *_ = contact.log_inbound(
            session,
            institution_id=case.institution_id,
            debtor_id=case.debtor_id,
            channel=channel,
            started_at=now,
            actor=principal.actor,
            outcome=outcome,
            party=party,
            contact_point_id=point.id if point else None,
            account_id=account.id if account else None,
            agent_id=principal.user_id,
            script_id=form.script_id,
        )
    else:
        checked = gate.check_contact(
            session,
            institution_id=case.institution_id,
            debtor_id=case.debtor_id,
            channel=channel,
            party=party,
            at=now,
            actor=principal.actor,
            contact_point_id=point.id if point else None,
            account_id=account.id if account else None,
            agent_user_id=principal.user_id,
            now=now,
        )
        if not checked.decision.allowed:
            zh = form.locale.startswith("zh")
            reasons = "; ".join(
                reason.message_zh if zh else reason.message_en
                for reason in checked.decision.reasons
            )
            later = checked.decision.next_allowed_at
            if later is not None:
                # When the agent may call again, in the debtor's time (the badge's clock).
                zone = (
                    checked.decision.timezones[0]
                    if checked.decision.timezones
                    else institution.timezone
                )
                again = f"{later.astimezone(clock.zone(zone)):%Y-%m-%d %H:%M}"
                if zh:
                    reasons = reasons.rstrip("。") + f"。下次可联系时间：{again}（{zone}）"
                else:
                    reasons += f"; allowed again at {again} ({zone})"
            raise ValidationFailed(
                f"channel: the gate does not allow this contact now: {reasons}",
                errors=[{"field": "channel", "code": "blocked", "message": reasons}],
                message_key="workspace.log.blocked",
                message_params={"reasons": reasons},
            )
        attempt = gate.record_outcome(
            session,
            institution_id=case.institution_id,
            decision_id=checked.record.id,
            outcome=outcome.value,
            happened_at=now,
            actor=principal.actor,
            script_id=form.script_id,
        )

    logged_promise: int | None = None
    logged_plan: tuple[int, str] | None = None
    if wants_promise:
        assert account is not None
        if form.promise_amount is None:
            raise _problem("promise_amount", "give the amount promised", "required")
        if form.promise_due is None:
            raise _problem("promise_due", "give the date the debtor will pay by", "required")
        promise = promises.record_promise(
            session,
            institution=institution,
            account=account,
            terms=promise_rules.PromiseTerms(
                amount=form.promise_amount,
                currency=account.currency,
                due_date=form.promise_due,
                channel=channel.value,
            ),
            actor=principal.actor,
            user_id=principal.user_id,
        )
        logged_promise = promise.id
    if wants_plan:
        assert account is not None
        assert form.plan_instalments is not None
        if form.plan_start is None:
            raise _problem("plan_start", "give the date of the first instalment", "required")
        plan = plans.propose_plan(
            session,
            institution=institution,
            account=account,
            instalments=form.plan_instalments,
            start_on=form.plan_start,
            frequency=form.plan_frequency,
            actor=principal.actor,
            user_id=principal.user_id,
        )
        logged_plan = (plan.id, plan.status)

    # The contact works every call-back that was due.
    for task in repository.open_tasks(session, case_id=case.id):
        if aware(task.due_at) <= now:
            task.done_at = now

    callback: CaseTask | None = None
    moved = False
    if outcome is OutcomeCode.CALLBACK_REQUESTED:
        assert form.callback_at is not None
        requested = form.callback_at
        if requested < now:
            raise _problem("callback_at", "give a time in the future", "past")
        call_point = point if point is not None and point.kind in _PHONE_KINDS else None
        decision = gate.preview_contacts(
            session,
            institution=institution,
            debtor=debtor,
            targets=[gate.PreviewTarget(Channel.CALL, call_point, party)],
            at=requested,
        )[0]
        try:
            when = rules.callback_time(
                requested, allowed=decision.allowed, next_allowed_at=decision.next_allowed_at
            )
        except rules.NoAllowedTime as error:
            raise _problem("callback_at", str(error), "never_allowed") from None
        callback = CaseTask(
            institution_id=case.institution_id,
            case_id=case.id,
            kind=TaskKind.CALLBACK,
            due_at=when.due_at,
            requested_at=requested if when.moved else None,
            owner_id=case.owner_id or principal.user_id,
            attempt_id=attempt.id,
            created_by=principal.actor[:128],
        )
        repository.add(session, callback)
        moved = when.moved

    violations = 0
    if note:
        repository.add(
            session,
            CaseNote(
                institution_id=case.institution_id,
                case_id=case.id,
                attempt_id=attempt.id,
                body=note,
                author_id=principal.user_id,
                actor=principal.actor[:128],
                at=now,
            ),
        )
        violations = len(
            review.scan_for_violations(
                session,
                institution_id=case.institution_id,
                text=note,
                locale="zh" if form.locale.startswith("zh") else "en",
                source="contact_note",
                source_id=str(attempt.id),
                debtor_id=case.debtor_id,
                actor=principal.actor,
            )
        )
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="case.contact",
        object_type="case",
        object_id=case.id,
        institution_id=case.institution_id,
        details={
            "attempt_id": attempt.id,
            "channel": channel.value,
            "outcome": outcome.value,
            "inbound": form.inbound,
            "promise_id": logged_promise,
            "plan_id": logged_plan[0] if logged_plan else None,
            "callback_id": callback.id if callback else None,
        },
    )
    return Logged(
        attempt=attempt,
        promise_id=logged_promise,
        plan_id=logged_plan[0] if logged_plan else None,
        plan_status=logged_plan[1] if logged_plan else None,
        callback=callback,
        callback_moved=moved,
        violations=violations,
    )


def rules_problem(
    channel: Channel, outcome: OutcomeCode, *, inbound: bool, point: ContactPoint | None
) -> rules.FormProblem | None:
    """Tell why a channel, outcome and contact point do not go together (None when they do)."""
    if not inbound and not CHANNELS[channel].outbound:
        return rules.FormProblem(
            "channel", "inbound_only", f"a {CHANNELS[channel].name_en} is only logged as inbound"
        )
    problem = outcome_problem(outcome, channel)
    if problem is not None:
        return rules.FormProblem("outcome", "channel_mismatch", problem)
    if (
        point is not None
        and CHANNELS[channel].contact_kinds
        and (str(point.kind) not in CHANNELS[channel].contact_kinds)
    ):
        return rules.FormProblem(
            "contact_point_id",
            "kind_mismatch",
            f"a {CHANNELS[channel].name_en} cannot reach a {point.kind} contact point",
        )
    return None


def outcome_meanings() -> list[tuple[OutcomeCode, Any]]:
    """The outcome codes with their meanings, in the documented order."""
    return list(OUTCOMES.items())


def case_states() -> list[str]:
    """The states a case may be in, for filters."""
    return [str(state) for state in CaseState]


def add_planned_tasks(
    session: Session,
    *,
    institution_id: int,
    planned: Select[int, str | None, datetime | None],
    actor: str,
) -> int:
    """Put planned contacts on their cases as open tasks, in one write.

    ``planned`` selects ``case_id``, ``kind`` (a ``TaskKind`` value) and ``due_at``; a task
    its case already holds (same kind and time) is not added again, so handing the same day
    over twice adds nothing. Returns how many were added.
    """
    return repository.add_tasks_from(
        session, institution_id=institution_id, source=planned, actor=actor, now=utcnow()
    )


def give_tasks_to_owners(session: Session, *, institution_id: int, cases: Select[int]) -> int:
    """Give the open tasks of the selected cases to the cases' owners (after an allocation)."""
    return repository.own_open_tasks(session, institution_id=institution_id, cases=cases)
