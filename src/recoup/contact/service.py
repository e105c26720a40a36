"""The contact log and consents: plan, report, log inbound, expire, read (never commits)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.contact import repository, rules
from recoup.contact.channels import CHANNELS, Channel
from recoup.contact.rules import (
    AttemptStatus,
    AttemptTransitionRefused,
    ChannelStanding,
    ConsentKind,
    Direction,
    OutcomeCode,
    OutcomeRefused,
    Party,
)
from recoup.enums import ContactStatus
from recoup.identity.principal import Principal
from recoup.identity.scoping import acting, get_scoped
from recoup.kit import jobs
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account
from recoup.models.contact import ContactAttempt, ContactPointConsent
from recoup.models.debtor import ContactPoint, Debtor

ContactLogRow = tuple[ContactAttempt, ContactPoint | None, str | None, str | None]


def plan_attempt(
    session: Session,
    *,
    institution_id: int,
    decision_id: int,
    debtor_id: int,
    channel: Channel,
    party: Party,
    planned_at: datetime,
    expires_at: datetime,
    actor: str,
    account_id: int | None = None,
    contact_point_id: int | None = None,
    agent_id: int | None = None,
) -> ContactAttempt:
    """Log the planned contact an allowed gate decision holds (the gate calls this)."""
    return repository.add_attempt(
        session,
        ContactAttempt(
            institution_id=institution_id,
            debtor_id=debtor_id,
            account_id=account_id,
            contact_point_id=contact_point_id,
            channel=channel,
            party=party,
            direction=Direction.OUTBOUND,
            status=AttemptStatus.PLANNED,
            decision_id=decision_id,
            planned_at=planned_at,
            expires_at=expires_at,
            effective=True,
            agent_id=agent_id,
            actor=actor[:128],
        ),
    )


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """A message queued on an allowed pre-checked decision, to log as a planned contact."""

    decision_id: int
    debtor_id: int
    account_id: int | None
    contact_point_id: int
    channel: Channel
    planned_at: datetime
    expires_at: datetime


def plan_messages(
    session: Session, *, institution_id: int, planned: Sequence[PlannedMessage], actor: str
) -> int:
    """Log many queued messages as planned contacts in one write (the outbox's bulk path).

    The dispatcher marks each made when a provider accepts it (``record_messages_sent``),
    as it does for a message queued one at a time; until then the planned contact counts
    against the debtor's later contacts.
    """
    return repository.add_attempts(
        session,
        [
            {
                "institution_id": institution_id,
                "debtor_id": each.debtor_id,
                "account_id": each.account_id,
                "contact_point_id": each.contact_point_id,
                "channel": each.channel.value,
                "party": Party.DEBTOR.value,
                "direction": Direction.OUTBOUND.value,
                "status": AttemptStatus.PLANNED.value,
                "decision_id": each.decision_id,
                "planned_at": each.planned_at,
                "expires_at": each.expires_at,
                "effective": True,
                "actor": actor[:128],
            }
            for each in planned
        ],
    )


# The review status of a template agents may use (``models.compliance.TemplateStatus``).
APPROVED = "approved"

# The cases domain's job that moves a case for what a conversation brought (a promise, a
# dispute, hardship, a request to stop): named, since cases build on contact, not the reverse.
CASES_APPLY_OUTCOME = "cases.apply_outcome"
STRATEGY_ON_EVENT = "strategy.on_event"


def _follow_outcome(session: Session, attempt: ContactAttempt) -> None:
    """Act on an outcome: a wrong number invalidates the contact point; a conversation may
    move the debtor's case (through the cases job)."""
    if attempt.outcome is None:
        return
    meaning = rules.OUTCOMES[OutcomeCode(attempt.outcome)]
    if attempt.outcome == OutcomeCode.WRONG_NUMBER and attempt.contact_point_id is not None:
        point = session.get(ContactPoint, attempt.contact_point_id)
        if point is not None and point.status in (ContactStatus.valid, ContactStatus.unverified):
            point.status = ContactStatus.invalid
            audit.record(
                session,
                actor=attempt.actor or "system",
                action="contact_point.invalidated",
                object_type="contact_point",
                object_id=point.id,
                institution_id=attempt.institution_id,
                details={"attempt_id": attempt.id, "outcome": attempt.outcome},
            )
        # The strategy sends the case to skip-trace at once.
        jobs.enqueue(
            session,
            STRATEGY_ON_EVENT,
            {
                "institution_id": attempt.institution_id,
                "debtor_id": attempt.debtor_id,
                "event": "wrong_number",
            },
            idempotency_key=f"strategy@attempt@{attempt.id}@wrong_number",
            institution_id=attempt.institution_id,
        )
    if meaning.conversation or meaning.refused_contact:
        jobs.enqueue(
            session,
            CASES_APPLY_OUTCOME,
            {"attempt_id": attempt.id},
            idempotency_key=f"outcome@{attempt.id}@{attempt.outcome}",
            institution_id=attempt.institution_id,
        )


def _require_script(session: Session, *, institution_id: int, script_id: int | None) -> None:
    """Refuse a script that is not one of the institution's approved call scripts: another
    institution's (or none) is not found, one still in review or rejected is refused."""
    if script_id is None:
        return
    status = repository.script_status(session, institution_id=institution_id, script_id=script_id)
    if status is None:
        raise NotFound(f"script_id: no script {script_id}")
    if status == APPROVED:
        return
    message = f"script {script_id} is {status}, not approved; only approved scripts are used"
    raise ValidationFailed(
        f"script_id: {message}; choose one from the script library or leave it empty",
        message_key="contact.error.script_not_approved",
        errors=[{"field": "script_id", "message": message}],
    )


def report_attempt(
    session: Session,
    *,
    institution_id: int,
    decision_id: int,
    outcome: str,
    happened_at: datetime,
    effective: bool | None = None,
    ended_at: datetime | None = None,
    duration_seconds: int | None = None,
    provider_message_id: str | None = None,
    agent_id: int | None = None,
    actor: str | None = None,
    script_id: int | None = None,
) -> ContactAttempt:
    """Record what came of a planned contact: made with an outcome, or not made at all.

    ``outcome`` is an outcome code, ``not_made``, or a name the gate's API took before the
    contact log (``conversation``, ``refused``, …). A cancelled attempt stops counting
    against the caps; one that did not connect stops counting as an effective call.
    """
    attempt = repository.attempt_for_decision(
        session, institution_id=institution_id, decision_id=decision_id
    )
    if attempt is None:
        raise NotFound(f"decision {decision_id} holds no planned contact (was it allowed?)")
    _require_script(session, institution_id=institution_id, script_id=script_id)
    try:
        report = rules.read_report(
            outcome, party=Party(attempt.party), channel=Channel(attempt.channel)
        )
        status = rules.transition(AttemptStatus(attempt.status), report.status)
        counted = (
            rules.is_effective(report.outcome, stated=effective)
            if status is AttemptStatus.MADE
            else False
        )
    except AttemptTransitionRefused:
        raise Conflict(
            f"the contact of decision {decision_id} is already {attempt.status}"
        ) from None
    except OutcomeRefused as error:
        raise ValidationFailed(str(error)) from None
    if ended_at is not None and ended_at < happened_at:
        raise ValidationFailed("'ended_at' is before the contact started")
    attempt.status = status
    attempt.outcome = report.outcome.value if report.outcome is not None else None
    attempt.effective = counted
    if status is AttemptStatus.MADE:
        attempt.started_at = happened_at
        attempt.ended_at = ended_at
        attempt.duration_seconds = duration_seconds
        attempt.provider_message_id = provider_message_id
        if agent_id is not None:
            attempt.agent_id = agent_id
        if actor is not None:
            attempt.actor = actor[:128]
        if script_id is not None:
            attempt.script_id = script_id
    session.flush()
    _follow_outcome(session, attempt)
    return attempt


def log_inbound(
    session: Session,
    *,
    institution_id: int,
    debtor_id: int,
    channel: Channel,
    started_at: datetime,
    actor: str,
    outcome: OutcomeCode | None = None,
    party: Party = Party.DEBTOR,
    contact_point_id: int | None = None,
    account_id: int | None = None,
    agent_id: int | None = None,
    ended_at: datetime | None = None,
    duration_seconds: int | None = None,
    provider_message_id: str | None = None,
    principal: Principal | None = None,
    script_id: int | None = None,
) -> ContactLogRow:
    """Log a contact the debtor (or a contact person) started: a call in, a reply, a web visit.

    It needs no gate decision and counts against no cap. The debtor, contact point and
    account are loaded as ``principal`` may see them. Returns the new row of the log.
    """
    scope = acting(principal, institution_id)
    debtor = get_scoped(session, Debtor, debtor_id, scope)
    contact_point = account = None
    if contact_point_id is not None:
        contact_point = get_scoped(session, ContactPoint, contact_point_id, scope)
        if contact_point.debtor_id != debtor.id:
            raise NotFound(f"no contact point {contact_point_id} for debtor {debtor_id}")
    if account_id is not None:
        account = get_scoped(session, Account, account_id, scope)
        if account.debtor_id != debtor.id:
            raise NotFound(f"no account {account_id} for debtor {debtor_id}")
    if outcome is not None:
        problem = rules.outcome_problem(outcome, channel)
        if problem is not None:
            raise ValidationFailed(problem)
    _require_script(session, institution_id=institution_id, script_id=script_id)
    attempt = repository.add_attempt(
        session,
        ContactAttempt(
            institution_id=institution_id,
            debtor_id=debtor.id,
            account_id=account_id,
            contact_point_id=contact_point_id,
            channel=channel,
            party=party,
            direction=Direction.INBOUND,
            status=AttemptStatus.MADE,
            started_at=started_at,
            ended_at=ended_at,
            duration_seconds=duration_seconds,
            outcome=outcome.value if outcome is not None else None,
            effective=False,
            agent_id=agent_id,
            actor=actor[:128],
            provider_message_id=provider_message_id,
            script_id=script_id,
        ),
    )
    audit.record(
        session,
        actor=actor,
        action="contact.inbound",
        object_type="contact_attempt",
        object_id=attempt.id,
        institution_id=institution_id,
        details={"debtor_id": debtor.id, "channel": channel.value, "outcome": attempt.outcome},
    )
    _follow_outcome(session, attempt)
    return attempt, contact_point, account.external_id if account else None, None


def log_unallowed(
    session: Session,
    *,
    institution_id: int,
    decision_id: int,
    debtor_id: int,
    channel: Channel,
    party: Party,
    outcome: OutcomeCode,
    started_at: datetime,
    actor: str,
    account_id: int | None = None,
    contact_point_id: int | None = None,
    agent_id: int | None = None,
    ended_at: datetime | None = None,
    duration_seconds: int | None = None,
    provider_message_id: str | None = None,
) -> ContactAttempt:
    """Log an outbound contact that happened although the gate blocked it (``decision_id``).

    It is what it was, made, and counts against the caps like any other; the caller flags it
    as a violation. Nothing the gate blocked is ever planned, so this is the only way in.
    """
    problem = rules.outcome_problem(outcome, channel)
    if problem is not None:
        raise ValidationFailed(problem)
    attempt = repository.add_attempt(
        session,
        ContactAttempt(
            institution_id=institution_id,
            debtor_id=debtor_id,
            account_id=account_id,
            contact_point_id=contact_point_id,
            channel=channel,
            party=party,
            direction=Direction.OUTBOUND,
            status=AttemptStatus.MADE,
            decision_id=decision_id,
            planned_at=started_at,
            started_at=started_at,
            ended_at=ended_at,
            duration_seconds=duration_seconds,
            outcome=outcome.value,
            effective=rules.is_effective(outcome, stated=None),
            agent_id=agent_id,
            actor=actor[:128],
            provider_message_id=provider_message_id,
        ),
    )
    _follow_outcome(session, attempt)
    return attempt


def expire_attempts(session: Session, *, now: datetime | None = None) -> int:
    """Mark planned contacts nobody reported by their expiry as expired; return how many.

    An expired attempt still holds its cap slots: an attempt nobody reported counts until a
    late report says it was not made or did not connect.
    """
    return repository.expire_attempts(session, now=now or utcnow())


def contact_log(
    session: Session,
    *,
    principal: Principal,
    debtor_id: int,
    page: PageRequest,
) -> Page[ContactLogRow]:
    """Return one page of a debtor's contact log, newest first; the debtor must be in scope."""
    get_scoped(session, Debtor, debtor_id, principal)
    return repository.debtor_attempts_page(
        session, principal=principal, debtor_id=debtor_id, page=page
    )


def standing(session: Session, *, contact_point: ContactPoint) -> ChannelStanding:
    """Return the channels a contact point opted out of and consented to."""
    return repository.standing(
        session, institution_id=contact_point.institution_id, contact_point_id=contact_point.id
    )


def standings(
    session: Session, *, institution_id: int, contact_point_ids: Collection[int]
) -> dict[int, ChannelStanding]:
    """Return the standing of many contact points at once, by contact point id."""
    return repository.standings(
        session, institution_id=institution_id, contact_point_ids=contact_point_ids
    )


def record_consent(
    session: Session,
    *,
    contact_point: ContactPoint,
    channel: Channel,
    kind: ConsentKind,
    actor: str,
    source: str | None = None,
    recorded_at: datetime | None = None,
) -> ContactPointConsent:
    """Record a consent to, or an opt-out of, one channel for a contact point (audited)."""
    if kind is ConsentKind.CONSENT and not CHANNELS[channel].needs_consent:
        raise ValidationFailed(f"a {CHANNELS[channel].name_en} needs no consent to record")
    row = repository.consent(session, contact_point_id=contact_point.id, channel=channel, kind=kind)
    if row is None:
        row = ContactPointConsent(
            institution_id=contact_point.institution_id,
            contact_point_id=contact_point.id,
            channel=channel,
            kind=kind,
        )
        session.add(row)
    row.source = source
    row.recorded_at = recorded_at
    row.recorded_by = actor[:128]
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"contact.{kind.value}",
        object_type="contact_point",
        object_id=contact_point.id,
        institution_id=contact_point.institution_id,
        details={"channel": channel.value, "source": source},
    )
    return row


def withdraw_consent(
    session: Session,
    *,
    contact_point: ContactPoint,
    channel: Channel,
    kind: ConsentKind,
    actor: str,
) -> None:
    """Withdraw a contact point's consent to, or opt-out of, one channel (audited)."""
    row = repository.consent(session, contact_point_id=contact_point.id, channel=channel, kind=kind)
    if row is None:
        raise NotFound(f"contact point {contact_point.id} has no {kind.value} for {channel.value}")
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"contact.{kind.value}_withdrawn",
        object_type="contact_point",
        object_id=contact_point.id,
        institution_id=contact_point.institution_id,
        details={"channel": channel.value},
    )


def record_messages_sent(
    session: Session,
    *,
    institution_id: int,
    sent: Sequence[tuple[int, datetime, str]],
    actor: str,
) -> int:
    """Log messages a provider accepted as made: ``(decision_id, sent_at, provider id)`` each.

    One write for the whole batch; an attempt already reported keeps its report. Returns how
    many attempts were marked made.
    """
    attempts = repository.attempts_for_decisions(
        session, institution_id=institution_id, decision_ids=[each[0] for each in sent]
    )
    changes: list[dict[str, object]] = []
    for decision_id, sent_at, provider_message_id in sent:
        attempt = attempts.get(decision_id)
        if attempt is None or AttemptStatus(attempt.status) not in (
            AttemptStatus.PLANNED,
            AttemptStatus.EXPIRED,
        ):
            continue
        changes.append(
            {
                "id": attempt.id,
                "status": AttemptStatus.MADE,
                "started_at": sent_at,
                "provider_message_id": provider_message_id[:128],
                "actor": actor[:128],
            }
        )
    repository.update_attempts(session, changes)
    return len(changes)


def record_message_outcome(
    session: Session,
    *,
    institution_id: int,
    decision_id: int,
    outcome: OutcomeCode,
    happened_at: datetime,
    actor: str,
    provider_message_id: str | None = None,
) -> ContactAttempt | None:
    """Record a delivery receipt's outcome (delivered, failed, bounced, wrong number) on a
    message's attempt, made or not yet reported; None when the decision logged no attempt."""
    attempt = repository.attempt_for_decision(
        session, institution_id=institution_id, decision_id=decision_id
    )
    if attempt is None:
        return None
    problem = rules.outcome_problem(outcome, Channel(attempt.channel))
    if problem is not None:
        raise ValidationFailed(problem)
    if attempt.status == AttemptStatus.CANCELLED:
        return attempt
    if attempt.status != AttemptStatus.MADE:
        attempt.status = rules.transition(AttemptStatus(attempt.status), AttemptStatus.MADE)
        attempt.started_at = happened_at
    attempt.outcome = outcome.value
    attempt.ended_at = happened_at
    attempt.actor = actor[:128]
    if provider_message_id:
        attempt.provider_message_id = provider_message_id[:128]
    session.flush()
    _follow_outcome(session, attempt)
    return attempt


def cancel_planned(
    session: Session, *, institution_id: int, decision_ids: Collection[int], actor: str
) -> list[int]:
    """Mark the planned contacts of decisions that will not happen as not made; return the
    attempt ids (whose cap slots the gate then frees)."""
    attempts = repository.attempts_for_decisions(
        session, institution_id=institution_id, decision_ids=decision_ids
    )
    changes = [
        {"id": attempt.id, "status": AttemptStatus.CANCELLED, "actor": actor[:128]}
        for attempt in attempts.values()
        if AttemptStatus(attempt.status) in (AttemptStatus.PLANNED, AttemptStatus.EXPIRED)
    ]
    repository.update_attempts(session, changes)
    return [int(str(change["id"])) for change in changes]
