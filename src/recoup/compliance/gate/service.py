"""The stored, race-safe gate: decide a planned contact, reserve its slots, log the decision.

An allowed contact is a planned row of the contact log (``recoup.contact``) holding the
gate's numbered cap slots; reporting it there frees the slots it no longer needs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.compliance.certifications import service as certifications_service
from recoup.compliance.facts import service as facts_service
from recoup.compliance.facts.zones import (
    ZonedFrom,
)
from recoup.compliance.gate import repository
from recoup.compliance.gate.rules import (
    ContactHistory,
    DebtorFacts,
    Decision,
    Gate,
    PastContact,
    PlannedContact,
    Reason,
    cap_slots,
    compile_gate,
    decide_batch,
    decide_contact,
    in_local_days,
    with_block,
)
from recoup.compliance.policy import service as policy_service
from recoup.compliance.policy.rules import (
    Policy,
)
from recoup.compliance.rulepack import load_pack
from recoup.contact import repository as contact_repository
from recoup.contact import service as contact_service
from recoup.contact.channels import CHANNELS, Channel
from recoup.contact.rules import AttemptStatus, OutcomeCode, Party
from recoup.enums import ContactKind, ContactStatus
from recoup.identity.principal import Principal
from recoup.identity.scoping import acting, get_scoped
from recoup.institutions import repository as institutions_repository
from recoup.kit import events
from recoup.kit.clock import aware, utcnow
from recoup.kit.errors import NotFound, PermissionDenied, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account
from recoup.models.compliance import ContactDecision, SlotClaim
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.institution import Institution

# A channel may act on an allowed decision until this long after its planned time. The slot
# stays taken after that: an attempt nobody reported counts until an outcome says it did not
# happen or did not connect (the conservative reading regulators take).
RESERVATION_TTL = timedelta(hours=2)
# The longest look-back of any rule (third-party evidence: 30 days; caps: 7 days).
HISTORY_DAYS = 40
# A check that lost a race for the last slot decides again, seeing the winner's slot.
CHECK_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class CheckedContact:
    """A stored gate decision and the pure decision it records."""

    record: ContactDecision
    decision: Decision


_GATES: dict[tuple[str, Policy], Gate] = {}


def gate_for(session: Session, *, institution: Institution) -> Gate:
    """Return the compiled gate of the institution's pack and policy in force."""
    policy = policy_service.institution_policy(session, institution=institution)
    key = (str(institution.jurisdiction), policy)
    gate = _GATES.get(key)
    if gate is None:
        gate = compile_gate(load_pack(str(institution.jurisdiction)), policy)
        _GATES[key] = gate
    return gate


def _history(session: Session, *, debtor: Debtor, around: datetime) -> ContactHistory:
    """Return the debtor's outbound contacts that count: planned, made or expired unreported."""
    attempts = contact_repository.attempts_since(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        since=around - timedelta(days=HISTORY_DAYS),
    )
    return ContactHistory(
        attempts=tuple(_past(attempt) for attempt in attempts if attempt.planned_at is not None)
    )


def _load_targets(
    session: Session,
    *,
    scope: Principal,
    debtor_id: int,
    contact_point_id: int | None,
    account_id: int | None,
    party: Party,
) -> tuple[Debtor, ContactPoint | None, Account | None]:
    """Load what a check is about, each only if ``scope`` may see it (``NotFound`` otherwise)."""
    debtor = get_scoped(session, Debtor, debtor_id, scope)
    contact_point = None
    if contact_point_id is not None:
        contact_point = get_scoped(session, ContactPoint, contact_point_id, scope)
        if contact_point.debtor_id != debtor.id:
            raise NotFound(f"no contact point {contact_point_id} for debtor {debtor_id}")
        if contact_point.status == ContactStatus.superseded:
            raise ValidationFailed(
                f"contact point {contact_point_id} was superseded by a newer one; "
                "use the debtor's current contact point",
                errors=[{"field": "contact_point_id", "message": "superseded"}],
            )
        if contact_point.third_party != (party is Party.THIRD_PARTY):
            expected = "third_party" if contact_point.third_party else "debtor"
            raise ValidationFailed(
                f"contact point {contact_point_id} belongs to the {expected.replace('_', ' ')}; "
                f"set party to {expected}"
            )
    elif party is Party.THIRD_PARTY:
        raise ValidationFailed("a third-party contact needs the contact_point_id of that person")
    account = None
    if account_id is not None:
        account = get_scoped(session, Account, account_id, scope)
        if account.debtor_id != debtor.id:
            raise NotFound(f"no account {account_id} for debtor {debtor_id}")
    return debtor, contact_point, account


def _claim_slots(
    session: Session,
    *,
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    planned: ContactAttempt,
) -> bool:
    """Claim one free numbered slot of every cap family; False when a family is full."""
    for spec in cap_slots(gate, attempt, facts):
        taken = repository.claimed_slot_keys(
            session,
            institution_id=planned.institution_id,
            debtor_id=planned.debtor_id,
            prefix=spec.prefix,
        )
        free = next(
            (
                f"{spec.prefix}{n}"
                for n in range(1, spec.limit + 1)
                if f"{spec.prefix}{n}" not in taken
            ),
            None,
        )
        if free is None:
            return False
        session.add(
            SlotClaim(
                institution_id=planned.institution_id,
                attempt_id=planned.id,
                debtor_id=planned.debtor_id,
                slot_key=free,
            )
        )
    session.flush()
    return True


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _decision_row(
    *,
    institution_id: int,
    debtor: Debtor,
    contact_point: ContactPoint | None,
    account: Account | None,
    attempt: PlannedContact,
    decision: Decision,
    facts: DebtorFacts,
    history_size: int,
    actor: str,
    reserve: bool = True,
    zones: tuple[ZonedFrom, ...] = (),
) -> ContactDecision:
    return ContactDecision(
        institution_id=institution_id,
        debtor_id=debtor.id,
        contact_point_id=contact_point.id if contact_point else None,
        account_id=account.id if account else None,
        channel=attempt.channel.value,
        party=attempt.party.value,
        planned_at=attempt.at,
        allowed=decision.allowed,
        rule_ids=list(decision.rule_ids),
        reasons=[
            {
                "rule_id": reason.rule_id,
                "code": reason.code,
                "message_en": reason.message_en,
                "message_zh": reason.message_zh,
            }
            for reason in decision.reasons
        ],
        next_allowed_at=decision.next_allowed_at,
        timezones=list(decision.timezones),
        inputs={
            "facts": {
                "timezones": list(facts.timezones),
                "timezone_sources": [
                    {"zone": each.zone, "source": str(each.source)} for each in zones
                ],
                "cease_contact": facts.cease_contact,
                "deceased": facts.deceased,
                "bankruptcy": facts.bankruptcy,
                "attorney_represented": facts.attorney_represented,
                "dispute_open": facts.dispute_open,
                "work_contact_forbidden": facts.work_contact_forbidden,
                "initial_communication_on": _iso(facts.initial_communication_on),
                "validation_notice_sent_on": _iso(facts.validation_notice_sent_on),
                "opted_out_channels": sorted(facts.opted_out_channels),
                "automated_consent": sorted(facts.automated_consent),
                "agreed_windows": [f"{w.start:%H:%M}-{w.end:%H:%M}" for w in facts.agreed_windows],
                "inconvenient_windows": [
                    f"{w.start:%H:%M}-{w.end:%H:%M}" for w in facts.inconvenient_windows
                ],
                "inconvenient_places": sorted(facts.inconvenient_places),
            },
            "contact_point_timezone": attempt.contact_point_timezone,
            "automated": attempt.automated,
            "at_workplace": attempt.at_workplace,
            "to_mobile": attempt.to_mobile,
            "history_attempts": history_size,
            "reserve": reserve,
        },
        pack_code=decision.pack_code,
        pack_version=decision.pack_version,
        policy_name=decision.policy_name,
        policy_version=decision.policy_version,
        actor=actor,
    )


def check_contact(
    session: Session,
    *,
    institution_id: int,
    debtor_id: int,
    channel: Channel,
    party: Party,
    at: datetime,
    actor: str,
    contact_point_id: int | None = None,
    account_id: int | None = None,
    agent_user_id: int | None = None,
    automated: bool = False,
    at_workplace: bool = False,
    now: datetime | None = None,
    reserve: bool = True,
    principal: Principal | None = None,
) -> CheckedContact:
    """Decide a planned contact, store the decision, and reserve its slots when allowed.

    With ``reserve=False`` (a dry run) the decision is stored but holds no slot, so a
    channel cannot act on it and asking never uses up a debtor's contacts.

    The debtor, contact point and account are loaded as ``principal`` may see them: one
    outside its scope is ``NotFound`` and nothing is decided or reserved. Without a
    principal (CLI, cycle) the check acts for the whole institution.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValidationFailed("'at' must carry a UTC offset, e.g. 2025-03-03T10:00:00+08:00")
    now = now or utcnow()
    institution = institutions_repository.require_by_id(session, institution_id)
    debtor, contact_point, account = _load_targets(
        session,
        scope=acting(principal, institution_id),
        debtor_id=debtor_id,
        contact_point_id=contact_point_id,
        account_id=account_id,
        party=party,
    )
    gate = gate_for(session, institution=institution)
    # Phone numbers and addresses are read in the pack's country.
    region = gate.pack.jurisdiction
    zones = facts_service.debtor_zone_sources(session, debtor=debtor, region=region)
    facts = facts_service.debtor_facts(
        session,
        debtor=debtor,
        contact_point=contact_point,
        account=account,
        validation=gate.validation_notice_days is not None,
        zones=zones,
    )
    attempt = PlannedContact(
        debtor_id=str(debtor.id),
        channel=channel,
        at=at,
        party=party,
        account_id=str(account.id) if account else None,
        contact_point_timezone=facts_service.contact_point_zone(contact_point, region),
        third_party_id=str(contact_point.id)
        if party is Party.THIRD_PARTY and contact_point
        else None,
        automated=automated,
        at_workplace=at_workplace,
        to_mobile=contact_point is None or contact_point.kind == ContactKind.mobile,
    )
    # Serialise checks of this debtor; a dry run takes nothing, so it need not wait.
    if reserve:
        repository.lock_debtor(session, institution_id=institution_id, debtor_id=debtor.id)
    decision: Decision | None = None
    history_size = 0

    def decision_row(*, decision: Decision) -> ContactDecision:
        # Reads history_size when called: it is the size of the history this decision saw.
        return _decision_row(
            institution_id=institution_id,
            debtor=debtor,
            contact_point=contact_point,
            account=account,
            attempt=attempt,
            decision=decision,
            facts=facts,
            history_size=history_size,
            actor=actor,
            reserve=reserve,
            zones=zones,
        )

    for _ in range(CHECK_ATTEMPTS):
        history = _history(session, debtor=debtor, around=at)
        history_size = len(history.attempts)
        decision = decide_contact(
            attempt, facts=facts, history=history, pack=gate.pack, policy=gate.policy
        )
        if agent_user_id is not None and not certifications_service.is_certified(
            session, institution_id=institution_id, user_id=agent_user_id, on=at.date()
        ):
            decision = with_block(
                decision,
                gate=gate,
                rule_id=gate.certification_rule,
                code="no_certificate",
                values={"agent": actor},
            )
        if not decision.allowed or not reserve:
            break
        # Claim the cap slots; the unique key refuses a slot another request just took.
        try:
            with session.begin_nested():
                record = decision_row(decision=decision)
                session.add(record)
                session.flush()
                planned = contact_service.plan_attempt(
                    session,
                    institution_id=institution_id,
                    decision_id=record.id,
                    debtor_id=debtor.id,
                    account_id=account.id if account else None,
                    contact_point_id=contact_point.id if contact_point else None,
                    channel=channel,
                    party=party,
                    planned_at=at,
                    expires_at=max(at, now) + RESERVATION_TTL,
                    actor=actor,
                    agent_id=agent_user_id,
                )
                if not _claim_slots(
                    session, gate=gate, attempt=attempt, facts=facts, planned=planned
                ):
                    raise _SlotTaken
            return CheckedContact(record=record, decision=decision)
        except (IntegrityError, _SlotTaken):
            continue
    else:
        assert decision is not None
        decision = with_block(
            decision, gate=gate, rule_id=gate.race_rule, code="slot_taken", values={}
        )
    assert decision is not None
    record = decision_row(decision=decision)
    session.add(record)
    session.flush()
    if reserve and not decision.allowed:
        events.emit(
            session,
            institution_id=institution_id,
            type="contact.blocked",
            data={
                "decision_id": record.id,
                "debtor_id": debtor.id,
                "channel": str(channel),
                "rule_ids": list(decision.rule_ids),
            },
        )
    return CheckedContact(record=record, decision=decision)


@dataclass(frozen=True, slots=True)
class PreviewTarget:
    """One contact to preview: a channel, maybe to one contact point."""

    channel: Channel
    contact_point: ContactPoint | None = None
    party: Party = Party.DEBTOR


def preview_contacts(
    session: Session,
    *,
    institution: Institution,
    debtor: Debtor,
    targets: list[PreviewTarget],
    at: datetime,
    account: Account | None = None,
) -> list[Decision]:
    """Tell whether each contact would be allowed at ``at`` and when it next could be.

    A read-only preview for browsing (a worklist, a case page's badges): it decides with the
    same compiled rules as ``check_contact`` but stores no decision, takes no lock and claims
    no slot, so looking never uses up a debtor's contacts. The caller has already loaded
    ``debtor`` (and each contact point, which must be the debtor's) through its scoping.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValidationFailed("'at' must carry a UTC offset, e.g. 2025-03-03T10:00:00+08:00")
    if not targets:
        return []
    gate = gate_for(session, institution=institution)
    region = gate.pack.jurisdiction
    zones = facts_service.debtor_zone_sources(session, debtor=debtor, region=region)
    history = _history(session, debtor=debtor, around=at)
    # The debtor's facts are read once; each contact point adds its own opt-outs and consents.
    base = facts_service.debtor_facts(
        session,
        debtor=debtor,
        contact_point=None,
        account=account,
        validation=gate.validation_notice_days is not None,
        zones=zones,
    )
    points = {target.contact_point.id for target in targets if target.contact_point is not None}
    standing = contact_repository.standings(
        session, institution_id=institution.id, contact_point_ids=points
    )
    decisions: list[Decision] = []
    for target in targets:
        point = target.contact_point
        if point is not None and point.debtor_id != debtor.id:
            raise NotFound(f"no contact point {point.id} for debtor {debtor.id}")
        facts = base
        if point is not None:
            facts = replace(
                base,
                opted_out_channels=standing[point.id].opted_out,
                automated_consent=standing[point.id].consented,
            )
        planned = PlannedContact(
            debtor_id=str(debtor.id),
            channel=target.channel,
            at=at,
            party=target.party,
            account_id=str(account.id) if account else None,
            contact_point_timezone=facts_service.contact_point_zone(point, region),
            third_party_id=str(point.id)
            if target.party is Party.THIRD_PARTY and point is not None
            else None,
            to_mobile=point is None or point.kind == ContactKind.mobile,
            # A machine's channel (an AI call, a text) is judged as the machine would send it.
            automated=CHANNELS[target.channel].automated,
        )
        decisions.append(
            decide_contact(
                planned, facts=facts, history=history, pack=gate.pack, policy=gate.policy
            )
        )
    return decisions


def preview_debtors(
    session: Session,
    *,
    institution: Institution,
    debtor_ids: Sequence[int],
    channel: Channel,
    at: datetime,
) -> dict[int, Decision]:
    """Tell, for many debtors at once, whether a contact on ``channel`` would be allowed at ``at``.

    The read-only preview of a worklist: facts and histories are read set-based (as the daily
    pre-check reads them: the debtor as a whole, no particular contact point), nothing is
    stored, locked or claimed. A contact point's own opt-outs are not in these facts, so a
    caller about to offer one debtor asks ``preview_contacts`` for that debtor's points.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValidationFailed("'at' must carry a UTC offset, e.g. 2025-03-03T10:00:00+08:00")
    ids = sorted(set(debtor_ids))
    if not ids:
        return {}
    gate = gate_for(session, institution=institution)
    facts = facts_service.debtors_facts(
        session,
        institution_id=institution.id,
        debtor_ids=ids,
        validation=gate.validation_notice_days is not None,
    )
    by_debtor = contact_repository.attempts_since_for(
        session,
        institution_id=institution.id,
        debtor_ids=ids,
        since=at - timedelta(days=HISTORY_DAYS),
    )
    histories = {
        str(debtor_id): ContactHistory(
            attempts=tuple(_past(attempt) for attempt in attempts if attempt.planned_at)
        )
        for debtor_id, attempts in by_debtor.items()
    }
    attempts = [
        PlannedContact(debtor_id=str(debtor_id), channel=channel, at=at) for debtor_id in ids
    ]
    decisions = decide_batch(attempts, facts=facts, histories=histories, gate=gate, reserve=False)
    return dict(zip(ids, decisions, strict=True))


class _SlotTaken(Exception):
    """Every numbered slot of a cap family was already claimed."""


def record_outcome(
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
    actor: str | None = None,
    principal: Principal | None = None,
    script_id: int | None = None,
) -> ContactAttempt:
    """Record what came of an allowed contact in the contact log, and free what it no longer holds.

    ``outcome`` is an outcome code (``contact.rules.OutcomeCode``), ``not_made``, or one of
    the older names (``conversation``, ``refused``, …). A contact that was not made frees
    every slot it held; one whose outcome is not an effective call frees its effective-call
    slot. A decision ``principal`` may not see is ``NotFound``.
    """
    get_scoped(session, ContactDecision, decision_id, acting(principal, institution_id))
    attempt = contact_service.report_attempt(
        session,
        institution_id=institution_id,
        decision_id=decision_id,
        outcome=outcome,
        happened_at=happened_at,
        effective=effective,
        ended_at=ended_at,
        duration_seconds=duration_seconds,
        provider_message_id=provider_message_id,
        actor=actor,
        script_id=script_id,
    )
    if attempt.status == AttemptStatus.CANCELLED:
        repository.delete_claims(session, attempt_id=attempt.id)
    elif not attempt.effective:
        repository.delete_effective_claims(session, attempt_id=attempt.id)
    session.flush()
    return attempt


def decisions_page(
    session: Session,
    *,
    principal: Principal,
    institution_id: int,
    page: PageRequest,
    allowed: bool | None = None,
    rule_id: str | None = None,
    debtor_id: int | None = None,
) -> Page[ContactDecision]:
    """Return one page of gate decisions, newest first; a debtor filter must be in scope."""
    if debtor_id is not None:
        get_scoped(session, Debtor, debtor_id, acting(principal, institution_id))
    return repository.decisions_page(
        session,
        institution_id=institution_id,
        page=page,
        allowed=allowed,
        rule_id=rule_id,
        debtor_id=debtor_id,
    )


def require_allowed_decision(
    session: Session,
    *,
    institution_id: int,
    decision_id: int | None,
    debtor_id: int,
    channel: Channel,
    now: datetime | None = None,
) -> ContactAttempt:
    """Return the planned contact a channel needs before contacting; refuse otherwise."""
    if decision_id is None:
        raise PermissionDenied("no contact without a compliance decision id")
    planned = contact_repository.attempt_for_decision(
        session, institution_id=institution_id, decision_id=decision_id
    )
    if planned is None:
        decision = repository.get_decision(
            session, institution_id=institution_id, decision_id=decision_id
        )
        if decision is not None and decision.allowed and decision.inputs.get("reserve") is False:
            raise PermissionDenied(
                f"decision {decision_id} was a dry run and holds no slot; ask the gate to reserve"
            )
        raise PermissionDenied(f"decision {decision_id} did not allow a contact")
    if planned.debtor_id != debtor_id or planned.channel != channel.value:
        raise PermissionDenied(f"decision {decision_id} was for another debtor or channel")
    if planned.status == AttemptStatus.EXPIRED or (
        planned.expires_at is not None and aware(planned.expires_at) < (now or utcnow())
    ):
        raise PermissionDenied(f"decision {decision_id} expired; ask the gate again")
    if planned.status != AttemptStatus.PLANNED:
        raise PermissionDenied(f"decision {decision_id} was already {planned.status}")
    return planned


@dataclass(frozen=True, slots=True)
class SendCheck:
    """A contact the gate allowed earlier (``decision_id``), asked about again before it happens."""

    debtor: Debtor
    contact_point: ContactPoint
    account: Account | None
    channel: Channel
    decision_id: int


def _past(attempt: ContactAttempt) -> PastContact:
    return PastContact(
        at=aware(attempt.started_at or attempt.planned_at),  # type: ignore[arg-type]
        channel=Channel(attempt.channel),
        party=Party(attempt.party),
        outcome=OutcomeCode(attempt.outcome) if attempt.outcome else None,
        effective=attempt.effective,
        account_id=str(attempt.account_id) if attempt.account_id else None,
        third_party_id=(
            str(attempt.contact_point_id) if attempt.party == Party.THIRD_PARTY else None
        ),
    )


def recheck(
    session: Session, *, institution: Institution, checks: Sequence[SendCheck], at: datetime
) -> list[Decision]:
    """Ask the gate again, at ``at``, about contacts it allowed earlier; reserve nothing new.

    Each contact's own reservation is left out of the history it is judged against (it is
    the contact being asked about); the others' count, and contacts allowed earlier in the
    batch count against later ones. Facts are read now, so a cease request, a dispute or an
    opt-out recorded since the first decision blocks.
    """
    if not checks:
        return []
    gate = gate_for(session, institution=institution)
    region = gate.pack.jurisdiction
    validation = gate.validation_notice_days is not None
    by_debtor = contact_repository.attempts_since_for(
        session,
        institution_id=institution.id,
        debtor_ids={check.debtor.id for check in checks},
        since=at - timedelta(days=HISTORY_DAYS),
    )
    # Facts hold the contact point's opt-outs and consents, so the batch keys them by debtor
    # and contact point; the history of each key is the debtor's, less the key's own
    # reservations (each of which is being asked about).
    facts: dict[str, DebtorFacts] = {}
    own: dict[str, set[int]] = {}
    attempts: list[PlannedContact] = []
    found = facts_service.facts_for(
        session,
        institution_id=institution.id,
        targets=[(check.debtor, check.contact_point, check.account) for check in checks],
        region=region,
        validation=validation,
    )
    for check, known in zip(checks, found, strict=True):
        key = f"{check.debtor.id}/{check.contact_point.id}"
        own.setdefault(key, set()).add(check.decision_id)
        if key not in facts:
            facts[key] = replace(known.facts, debtor_id=key)
        attempts.append(
            PlannedContact(
                debtor_id=key,
                channel=check.channel,
                at=at,
                party=Party.DEBTOR,
                account_id=str(check.account.id) if check.account else None,
                contact_point_timezone=known.contact_point_zone,
                automated=True,
                to_mobile=check.contact_point.kind == ContactKind.mobile,
            )
        )
    histories = {
        key: ContactHistory(
            attempts=tuple(
                _past(attempt)
                for attempt in by_debtor[int(key.partition("/")[0])]
                if attempt.planned_at is not None and attempt.decision_id not in own[key]
            )
        )
        for key in facts
    }
    return decide_batch(attempts, facts=facts, histories=histories, gate=gate, reserve=True)


def release(
    session: Session, *, institution_id: int, decision_ids: Collection[int], actor: str
) -> int:
    """Cancel the planned contacts of decisions that will not be acted on; free their slots."""
    attempt_ids = contact_service.cancel_planned(
        session, institution_id=institution_id, decision_ids=decision_ids, actor=actor
    )
    for attempt_id in attempt_ids:
        repository.delete_claims(session, attempt_id=attempt_id)
    session.flush()
    return len(attempt_ids)


@dataclass(frozen=True, slots=True)
class BatchDecision:
    """A pre-checked contact of a batch: the gate's decision and its stored row's id."""

    decision: Decision
    decision_id: int
    # The moment decided: the planned one, or later when moved into the debtor's local day.
    at: datetime


def _past_contacts(rows: Sequence[Any], debtors: set[int]) -> dict[str, ContactHistory]:
    """Group the contact log's plain rows into each debtor's history."""
    grouped: dict[int, list[PastContact]] = {}
    for (
        debtor_id,
        planned_at,
        started_at,
        channel,
        party,
        outcome,
        effective,
        account,
        point,
    ) in rows:
        if debtor_id not in debtors or planned_at is None:
            continue
        grouped.setdefault(debtor_id, []).append(
            PastContact(
                at=aware(started_at or planned_at),
                channel=Channel(channel),
                party=Party(party),
                outcome=OutcomeCode(outcome) if outcome else None,
                effective=effective,
                account_id=str(account) if account else None,
                third_party_id=str(point) if party == Party.THIRD_PARTY else None,
            )
        )
    return {str(d): ContactHistory(attempts=tuple(each)) for d, each in grouped.items()}


@dataclass(frozen=True, slots=True)
class Prechecked:
    """A batch the gate decided and has not stored yet: the attempts as decided (moved into the
    debtors' mornings), their decisions, and the decisions' rows as columns (every column but
    the id and the timestamps, which are set as the rows are written)."""

    attempts: Sequence[PlannedContact]
    decisions: list[Decision]
    columns: dict[str, list[Any] | bulk.Coded]


def precheck_contacts(
    session: Session,
    *,
    institution: Institution,
    attempts: Sequence[PlannedContact],
    actor: str,
    contact_points: Mapping[int, int] | None = None,
    local_times: Sequence[time | None] | None = None,
) -> list[BatchDecision]:
    """Decide many planned contacts at once and store every decision (bulk, no slots held).

    For a daily plan: each debtor's facts and history are read once for the batch, and the
    batch's own allowed contacts count against its later ones. Nothing is reserved, so a
    channel acting on an allowed pre-check still asks ``check_contact`` when it contacts.
    With ``contact_points`` (the point each debtor is contacted at, by debtor id: a
    campaign's), that point's opt-outs and consents count too and it is stored with the
    decision, as ``check_contact`` would. With ``local_times`` (one per attempt, or ``None``),
    each attempt is first moved to when it is at least that local time in every zone the
    debtor may be in (``rules.in_local_day``): a plan for "the morning" is the debtor's morning.
    """
    checked = decide_prechecks(
        session,
        institution=institution,
        attempts=attempts,
        actor=actor,
        contact_points=contact_points,
        local_times=local_times,
    )
    ids = store_prechecked(session, checked.columns, now=utcnow())
    return [
        BatchDecision(decision=decision, decision_id=decision_id, at=attempt.at)
        for attempt, decision, decision_id in zip(
            checked.attempts, checked.decisions, ids, strict=True
        )
    ]


def store_prechecked(
    session: Session, columns: Mapping[str, Sequence[Any] | bulk.Coded], *, now: datetime
) -> list[int]:
    """Store decided pre-checks (``Prechecked.columns``) in one bulk insert; return their ids
    in the rows' order."""
    debtors = columns.get("debtor_id", ())
    count = len(debtors) if not isinstance(debtors, bulk.Coded) else 0
    if not count:
        return []
    stamp = bulk.Coded([now], [0] * count)
    return repository.add_decisions(
        session, {**columns, "created_at": stamp, "updated_at": stamp}, size=count
    )


def decide_prechecks(
    session: Session,
    *,
    institution: Institution,
    attempts: Sequence[PlannedContact],
    actor: str,
    contact_points: Mapping[int, int] | None = None,
    local_times: Sequence[time | None] | None = None,
) -> Prechecked:
    """Decide many planned contacts at once, reading only (``precheck_contacts`` without the
    write): what a worker process computes while another one writes."""
    if not attempts:
        return Prechecked(attempts=(), decisions=[], columns={})
    gate = gate_for(session, institution=institution)
    debtor_ids = {int(attempt.debtor_id) for attempt in attempts}
    account_of = {int(a.debtor_id): int(a.account_id) if a.account_id else None for a in attempts}
    facts = facts_service.debtors_facts(
        session,
        institution_id=institution.id,
        debtor_ids=sorted(debtor_ids),
        account_of=account_of,
        validation=gate.validation_notice_days is not None,
    )
    if contact_points:
        standing = contact_repository.standings(
            session, institution_id=institution.id, contact_point_ids=set(contact_points.values())
        )
        for debtor_id, point_id in contact_points.items():
            if str(debtor_id) in facts:
                facts[str(debtor_id)] = replace(
                    facts[str(debtor_id)],
                    opted_out_channels=standing[point_id].opted_out,
                    automated_consent=standing[point_id].consented,
                )
    if local_times is not None:
        attempts = in_local_days(gate, attempts, facts, local_times)
    earliest = min(attempt.at for attempt in attempts)
    histories = _past_contacts(
        contact_repository.attempt_rows_since(
            session, institution_id=institution.id, since=earliest - timedelta(days=HISTORY_DAYS)
        ),
        debtor_ids,
    )
    decisions = decide_batch(attempts, facts=facts, histories=histories, gate=gate)
    count = len(attempts)
    points = contact_points or {}
    debtors = [int(attempt.debtor_id) for attempt in attempts]
    # Stored column by column: the few distinct rule lists, reasons, zones and inputs of a
    # batch are built once and shared by their rows (bulk encodes each shared value once).
    rule_lists: dict[tuple[Reason, ...], tuple[list[str], list[dict[str, str]]]] = {}
    zone_lists: dict[tuple[str, ...], list[str]] = {}
    inputs: dict[tuple[type, object], dict[str, object]] = {}
    rule_ids: list[list[str]] = []
    reasons: list[list[dict[str, str]]] = []
    timezones: list[list[str]] = []
    for decision in decisions:
        listed = rule_lists.get(decision.reasons)
        if listed is None:
            listed = rule_lists[decision.reasons] = (
                list(decision.rule_ids),
                [{"rule_id": each.rule_id, "code": each.code} for each in decision.reasons],
            )
        rule_ids.append(listed[0])
        reasons.append(listed[1])
        zones = zone_lists.get(decision.timezones)
        if zones is None:
            zones = zone_lists[decision.timezones] = list(decision.timezones)
        timezones.append(zones)
    # The columns of few distinct values go as ``bulk.Coded``, worked out here (a worker
    # process, in the daily cycle) rather than row by row by the writer.
    columns: dict[str, list[Any] | bulk.Coded] = {
        "institution_id": [institution.id] * count,
        "debtor_id": debtors,
        "contact_point_id": [points.get(debtor_id) for debtor_id in debtors],
        "account_id": [
            int(attempt.account_id) if attempt.account_id else None for attempt in attempts
        ],
        "channel": [attempt.channel.value for attempt in attempts],
        "party": [attempt.party.value for attempt in attempts],
        "planned_at": bulk.coded([attempt.at for attempt in attempts]),
        "allowed": bulk.coded([decision.allowed for decision in decisions]),
        "rule_ids": bulk.coded(rule_ids),
        "reasons": bulk.coded(reasons),
        "next_allowed_at": bulk.coded([decision.next_allowed_at for decision in decisions]),
        "timezones": bulk.coded(timezones),
        "inputs": bulk.coded(
            [
                inputs.get((type(automated), automated))
                or inputs.setdefault(
                    (type(automated), automated),
                    {"batch": True, "automated": automated, "reserve": False},
                )
                for automated in (attempt.automated for attempt in attempts)
            ]
        ),
        "pack_code": [decision.pack_code for decision in decisions],
        "pack_version": [decision.pack_version for decision in decisions],
        "policy_name": [decision.policy_name for decision in decisions],
        "policy_version": [decision.policy_version for decision in decisions],
        "actor": [actor] * count,
    }
    return Prechecked(attempts=attempts, decisions=decisions, columns=columns)
