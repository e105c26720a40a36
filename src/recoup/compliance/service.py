"""Compliance orchestration: the stored race-safe gate, policies, templates, violations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.compliance import repository
from recoup.compliance.enums import Channel, Outcome, Party
from recoup.compliance.policy import (
    Policy,
    PolicyViolation,
    policy_document,
    policy_from_document,
    preset_policy,
    validate_policy,
)
from recoup.compliance.review import (
    ReviewInputError,
    ReviewResult,
    review,
    time_barred_threats,
    with_time_barred_check,
)
from recoup.compliance.rulepack import load_pack
from recoup.compliance.rules import (
    ContactHistory,
    DailyWindow,
    DebtorFacts,
    Decision,
    Gate,
    InconvenientPlace,
    PastContact,
    PlannedContact,
    StatedPreferenceError,
    StatedWindow,
    TemplateTransitionRefused,
    account_fact_problems,
    cap_slots,
    compile_gate,
    decide_contact,
    facts_read_by,
    is_time_barred,
    parse_places,
    parse_stated_window,
    template_transition,
    with_block,
)
from recoup.compliance.zones import (
    ZonedFrom,
    ZoneSource,
    address_zones,
    debtor_zones,
    phone_zones_for,
)
from recoup.identity.principal import Principal
from recoup.identity.scoping import acting, get_scoped
from recoup.kit import clock
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.kit.text import require_text
from recoup.models.account import Account
from recoup.models.compliance import (
    Certification,
    CompliancePolicy,
    ComplianceViolation,
    ContactDecision,
    ContactReservation,
    ContactWindow,
    MessageTemplate,
    ReservationStatus,
    SlotClaim,
    TemplateStatus,
    ViolationStatus,
    WindowKind,
)
from recoup.models.debtor import ContactKind, ContactPoint, Debtor
from recoup.models.identity import Role, User
from recoup.models.institution import Institution
from recoup.portfolio.repository import aware
from recoup.portfolio.rules import FINISHED_STATUSES

# A channel may act on an allowed decision until this long after its planned time. The slot
# stays taken after that: an attempt nobody reported counts until an outcome says it did not
# happen or did not connect (the conservative reading regulators take).
RESERVATION_TTL = timedelta(hours=2)
# The longest look-back of any rule (third-party evidence: 30 days; caps: 7 days).
HISTORY_DAYS = 40
# A check that lost a race for the last slot decides again, seeing the winner's slot.
CHECK_ATTEMPTS = 3
RE_REVIEW_AFTER = timedelta(days=365)
_AUTOMATED_CONSENT = frozenset({Channel.SMS, Channel.AI_CALL, Channel.CALL})
_SANDBOX = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True, slots=True)
class CheckedContact:
    """A stored gate decision and the pure decision it records."""

    record: ContactDecision
    decision: Decision


def _institution(session: Session, institution_id: int) -> Institution:
    institution = session.get(Institution, institution_id)
    if institution is None:
        raise NotFound(f"no institution {institution_id}")
    return institution


def institution_policy(session: Session, *, institution: Institution) -> Policy:
    """Return the policy in force: the newest approved version, else the preset."""
    row = repository.latest_approved_policy(session, institution_id=institution.id)
    if row is None:
        return preset_policy(str(institution.preset), jurisdiction=str(institution.jurisdiction))
    document = {**row.document, "version": str(row.version), "name": row.name}
    return policy_from_document(document)


_GATES: dict[tuple[str, Policy], Gate] = {}


def gate_for(session: Session, *, institution: Institution) -> Gate:
    """Return the compiled gate of the institution's pack and policy in force."""
    policy = institution_policy(session, institution=institution)
    key = (str(institution.jurisdiction), policy)
    gate = _GATES.get(key)
    if gate is None:
        gate = compile_gate(load_pack(str(institution.jurisdiction)), policy)
        _GATES[key] = gate
    return gate


def _window(row: ContactWindow) -> DailyWindow:
    return DailyWindow(
        start=time(row.start_minute // 60, row.start_minute % 60),
        end=time(row.end_minute // 60 % 24, row.end_minute % 60),
        weekdays=None if row.weekdays is None else frozenset(row.weekdays),
    )


def _validation_facts(
    session: Session, *, debtor: Debtor, account: Account | None
) -> tuple[date | None, date | None]:
    """Return (initial communication, validation notice sent) for the gate.

    Reg F counts the validation period per debt: an attempt naming an account uses that
    account's dates; otherwise the strictest open account decides — the earliest initial
    communication still waiting for its notice.
    """
    if account is not None:
        return account.initial_communication_on, account.validation_notice_sent_on
    waiting = session.execute(
        select(func.min(Account.initial_communication_on)).where(
            Account.institution_id == debtor.institution_id,
            Account.debtor_id == debtor.id,
            Account.status.not_in(sorted(FINISHED_STATUSES)),
            Account.initial_communication_on.is_not(None),
            Account.validation_notice_sent_on.is_(None),
        )
    ).scalar_one_or_none()
    return waiting, None


def debtor_zone_sources(session: Session, *, debtor: Debtor, region: str) -> tuple[ZonedFrom, ...]:
    """Return every zone the debtor's data places them in, each with where it came from."""
    phones: list[ZonedFrom] = []
    for phone in repository.own_phones(
        session, institution_id=debtor.institution_id, debtor_id=debtor.id
    ):
        if phone.timezone and phone.timezone_source != ZoneSource.PHONE:
            phones.append(ZonedFrom(phone.timezone, ZoneSource.CONTACT_POINT))
        phones += [
            ZonedFrom(zone, ZoneSource.PHONE) for zone in phone_zones_for(phone.value, region)
        ]
    return debtor_zones(
        zone=debtor.timezone,
        source=ZoneSource(debtor.timezone_source or ZoneSource.COLUMN),
        address=address_zones(debtor.province, debtor.city),
        phones=phones,
    )


def _contact_point_zone(contact_point: ContactPoint | None, region: str) -> str | None:
    """Return the zone of the number or address contacted: given, else its phone area's."""
    if contact_point is None:
        return None
    if contact_point.timezone:
        return contact_point.timezone
    if contact_point.kind in (ContactKind.mobile, ContactKind.landline):
        inferred = phone_zones_for(contact_point.value, region)
        return inferred[0] if inferred else None
    return None


def _facts(
    session: Session,
    *,
    debtor: Debtor,
    contact_point: ContactPoint | None,
    account: Account | None = None,
    validation: bool = True,
    zones: tuple[ZonedFrom, ...] = (),
) -> DebtorFacts:
    windows = repository.contact_windows(
        session, institution_id=debtor.institution_id, debtor_id=debtor.id
    )
    opted_out: set[Channel] = set()
    consent: frozenset[Channel] = frozenset()
    if contact_point is not None:
        if contact_point.opt_out_call:
            opted_out |= {Channel.CALL, Channel.AI_CALL}
        if contact_point.opt_out_sms:
            opted_out.add(Channel.SMS)
        if contact_point.opt_out_email:
            opted_out.add(Channel.EMAIL)
        if contact_point.consent_automated:
            consent = _AUTOMATED_CONSENT
    # Packs without US-VAL never read the validation dates: skip their query.
    initial_communication_on, validation_notice_sent_on = (
        _validation_facts(session, debtor=debtor, account=account) if validation else (None, None)
    )
    return DebtorFacts(
        debtor_id=str(debtor.id),
        timezones=tuple(each.zone for each in zones) or (debtor.timezone,),
        agreed_windows=tuple(_window(w) for w in windows if w.kind == WindowKind.agreed),
        inconvenient_windows=tuple(
            _window(w) for w in windows if w.kind == WindowKind.inconvenient
        ),
        inconvenient_places=_places(debtor),
        cease_contact=debtor.cease_contact,
        opted_out_channels=frozenset(opted_out),
        attorney_represented=debtor.attorney_represented,
        dispute_open=debtor.disputed,
        deceased=debtor.deceased,
        bankruptcy=debtor.bankrupt,
        automated_consent=consent,
        work_contact_forbidden=debtor.work_contact_forbidden,
        initial_communication_on=initial_communication_on,
        validation_notice_sent_on=validation_notice_sent_on,
    )


def _places(debtor: Debtor) -> frozenset[InconvenientPlace]:
    return frozenset(InconvenientPlace(place) for place in debtor.inconvenient_places or ())


def _history(session: Session, *, debtor: Debtor, around: datetime) -> ContactHistory:
    reservations = repository.reservations_since(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        since=around - timedelta(days=HISTORY_DAYS),
    )
    return ContactHistory(
        attempts=tuple(
            PastContact(
                at=aware(reservation.happened_at or reservation.planned_at),
                channel=Channel(reservation.channel),
                party=Party(reservation.party),
                outcome=Outcome(reservation.outcome) if reservation.outcome else Outcome.PLANNED,
                effective=reservation.effective,
                account_id=str(reservation.account_id) if reservation.account_id else None,
                third_party_id=(
                    str(reservation.contact_point_id)
                    if reservation.party == Party.THIRD_PARTY
                    else None
                ),
            )
            for reservation in reservations
        )
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


def find_debtor(session: Session, *, institution_id: int, reference: str) -> Debtor:
    """Return the institution's debtor named by an external id (D0001) or an internal id."""
    reference = reference.strip()
    found = repository.debtors_by_reference(
        session, institution_id=institution_id, reference=reference
    )
    if not found:
        raise NotFound(f"no debtor {reference}; give its external id (e.g. D0001) or its id")
    if len(found) > 1:
        by_external = [debtor for debtor in found if debtor.external_id == reference]
        raise ValidationFailed(
            f"{reference!r} is the id of one debtor and the external id of another "
            f"(id {by_external[0].id}); give the other debtor's external id instead"
        )
    return found[0]


def is_certified(session: Session, *, institution_id: int, user_id: int, on: date) -> bool:
    """Tell whether a user holds a compliance certificate valid on a date (POL-CERT)."""
    return bool(
        repository.certifications_valid_on(
            session, institution_id=institution_id, user_id=user_id, on=on
        )
    )


def _claim_slots(
    session: Session,
    *,
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    reservation: ContactReservation,
) -> bool:
    """Claim one free numbered slot of every cap family; False when a family is full."""
    for spec in cap_slots(gate, attempt, facts):
        taken = repository.claimed_slot_keys(
            session,
            institution_id=reservation.institution_id,
            debtor_id=reservation.debtor_id,
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
                institution_id=reservation.institution_id,
                reservation_id=reservation.id,
                debtor_id=reservation.debtor_id,
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
    institution = _institution(session, institution_id)
    debtor, contact_point, account = _load_targets(
        session,
        scope=acting(principal, institution_id),
        debtor_id=debtor_id,
        contact_point_id=contact_point_id,
        account_id=account_id,
        party=party,
    )
    gate = gate_for(session, institution=institution)
    zones = debtor_zone_sources(session, debtor=debtor, region=str(institution.jurisdiction))
    facts = _facts(
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
        contact_point_timezone=_contact_point_zone(contact_point, str(institution.jurisdiction)),
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
        if agent_user_id is not None and not is_certified(
            session, institution_id=institution_id, user_id=agent_user_id, on=at.date()
        ):
            decision = with_block(
                decision,
                gate=gate,
                rule_id="POL-CERT",
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
                reservation = ContactReservation(
                    institution_id=institution_id,
                    decision_id=record.id,
                    debtor_id=debtor.id,
                    account_id=account.id if account else None,
                    contact_point_id=contact_point.id if contact_point else None,
                    channel=channel.value,
                    party=party.value,
                    planned_at=at,
                    expires_at=max(at, now) + RESERVATION_TTL,
                )
                session.add(reservation)
                session.flush()
                if not _claim_slots(
                    session, gate=gate, attempt=attempt, facts=facts, reservation=reservation
                ):
                    raise _SlotTaken
            return CheckedContact(record=record, decision=decision)
        except (IntegrityError, _SlotTaken):
            continue
    else:
        assert decision is not None
        decision = with_block(decision, gate=gate, rule_id="POL-RACE", code="slot_taken", values={})
    assert decision is not None
    record = decision_row(decision=decision)
    session.add(record)
    session.flush()
    return CheckedContact(record=record, decision=decision)


class _SlotTaken(Exception):
    """Every numbered slot of a cap family was already claimed."""


def record_outcome(
    session: Session,
    *,
    institution_id: int,
    decision_id: int,
    outcome: Outcome,
    effective: bool,
    happened_at: datetime,
    principal: Principal | None = None,
) -> ContactReservation:
    """Record what came of an allowed contact.

    A call that did not connect frees its effective-call slot; a contact that was not made
    at all (``not_made``) frees every slot it held. A decision ``principal`` may not see is
    ``NotFound``.
    """
    get_scoped(session, ContactDecision, decision_id, acting(principal, institution_id))
    reservation = repository.reservation_for_decision(
        session, institution_id=institution_id, decision_id=decision_id
    )
    if reservation is None:
        raise NotFound(f"decision {decision_id} holds no reservation (was it allowed?)")
    if reservation.status != ReservationStatus.reserved:
        raise Conflict(f"the contact of decision {decision_id} is already {reservation.status}")
    reservation.outcome = outcome.value
    reservation.happened_at = happened_at
    if outcome is Outcome.NOT_MADE:
        reservation.status = ReservationStatus.released
        reservation.effective = False
        repository.delete_claims(session, reservation_id=reservation.id)
        session.flush()
        return reservation
    reservation.status = ReservationStatus.used
    reservation.effective = effective
    if not effective:
        repository.delete_effective_claims(session, reservation_id=reservation.id)
    session.flush()
    return reservation


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
) -> ContactReservation:
    """Return the live reservation a channel needs before contacting; refuse otherwise."""
    if decision_id is None:
        raise PermissionDenied("no contact without a compliance decision id")
    reservation = repository.reservation_for_decision(
        session, institution_id=institution_id, decision_id=decision_id
    )
    if reservation is None:
        decision = repository.get_decision(
            session, institution_id=institution_id, decision_id=decision_id
        )
        if decision is not None and decision.allowed and decision.inputs.get("reserve") is False:
            raise PermissionDenied(
                f"decision {decision_id} was a dry run and holds no slot; ask the gate to reserve"
            )
        raise PermissionDenied(f"decision {decision_id} did not allow a contact")
    if reservation.debtor_id != debtor_id or reservation.channel != channel.value:
        raise PermissionDenied(f"decision {decision_id} was for another debtor or channel")
    if reservation.status != ReservationStatus.reserved:
        raise PermissionDenied(f"decision {decision_id} was already {reservation.status}")
    if aware(reservation.expires_at) < (now or utcnow()):
        raise PermissionDenied(f"decision {decision_id} expired; ask the gate again")
    return reservation


# Policies


def propose_policy(
    session: Session, *, institution_id: int, document: Mapping[str, Any], actor: str
) -> CompliancePolicy:
    """Store a new policy version after checking it is no looser than the rule pack."""
    institution = _institution(session, institution_id)
    try:
        policy = policy_from_document(document)
    except (ValueError, KeyError, TypeError) as error:
        raise ValidationFailed(f"the policy document is not valid: {error}") from error
    violations = validate_policy(policy, load_pack(str(institution.jurisdiction)))
    if violations:
        raise ValidationFailed(
            "the policy would loosen the rule pack: "
            + "; ".join(f"{v.rule_id} ({v.field}): {v.message.en}" for v in violations),
            violations=[
                {"rule_id": v.rule_id, "field": v.field, "message": v.message.en}
                for v in violations
            ],
        )
    version = repository.newest_policy_version(session, institution_id=institution_id) + 1
    row = CompliancePolicy(
        institution_id=institution_id,
        version=version,
        name=policy.name,
        document=policy_document(policy),
        proposed_by=actor,
    )
    session.add(row)
    session.flush()
    _audit_policy(session, row=row, action="compliance.policy_proposed", actor=actor)
    return row


def _audit_policy(session: Session, *, row: CompliancePolicy, action: str, actor: str) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="compliance_policy",
        object_id=row.id,
        institution_id=row.institution_id,
        details={"version": row.version},
    )


def approve_policy(
    session: Session, *, institution_id: int, version: int, actor: str
) -> CompliancePolicy:
    """Put a proposed policy version in force; the proposer cannot approve it."""
    row = repository.policy_version(session, institution_id=institution_id, version=version)
    if row is None:
        raise NotFound(f"no policy version {version}")
    if row.approved_at is not None:
        raise Conflict(
            f"policy version {version} is already approved",
            message_key="compliance.error.policy_already_approved",
            message_params={"version": version},
        )
    if row.proposed_by == actor:
        raise PermissionDenied(
            "the proposer cannot approve their own policy; ask another officer",
            message_key="compliance.error.own_policy",
        )
    row.approved_by = actor
    row.approved_at = utcnow()
    session.flush()
    _audit_policy(session, row=row, action="compliance.policy_approved", actor=actor)
    return row


# Templates and scripts


def review_text(
    *,
    text: str,
    locale: str,
    audience: str,
    channel: str,
    kind: str | None = None,
    jurisdiction: str | None = None,
) -> ReviewResult:
    """Review a text for banned language and missing required elements.

    Without a jurisdiction the locale's pack applies (zh → CN, en → US); anything
    reviewed for an institution goes through ``review_for_institution`` instead.
    """
    try:
        return review(
            text,
            locale=locale,
            audience=audience,
            channel=channel,
            kind=kind,
            jurisdiction=jurisdiction,
        )
    except ReviewInputError as error:
        raise ValidationFailed(str(error)) from error


def review_for_institution(
    session: Session,
    *,
    institution_id: int,
    text: str,
    locale: str,
    audience: str,
    channel: str,
    kind: str | None = None,
) -> ReviewResult:
    """Review a text under the institution's own rule pack, whatever language it is in."""
    institution = _institution(session, institution_id)
    return review_text(
        text=text,
        locale=locale,
        audience=audience,
        channel=channel,
        kind=kind,
        jurisdiction=str(institution.jurisdiction),
    )


def create_template(
    session: Session,
    *,
    institution_id: int,
    name: str,
    channel: str,
    locale: str,
    audience: str,
    body: str,
    author: str,
    author_id: int | None,
    kind: str | None = None,
) -> MessageTemplate:
    """Add a draft template."""
    name = require_text("name", name)
    body = require_text("body", body, multiline=True)
    review_text(text="", locale=locale, audience=audience, channel=channel)
    try:
        _SANDBOX.parse(body)
    except TemplateError as error:
        raise ValidationFailed(
            f"the template does not parse: {error}",
            message_key="compliance.error.template_syntax",
            message_params={"detail": str(error)},
        ) from error
    template = MessageTemplate(
        institution_id=institution_id,
        name=name,
        channel=channel,
        locale=locale,
        audience=audience,
        kind=kind,
        body=body,
        author=author,
        author_id=author_id,
        status=TemplateStatus.draft,
    )
    session.add(template)
    session.flush()
    audit.record(
        session,
        actor=author,
        action="compliance.template_created",
        object_type="template",
        object_id=template.id,
        institution_id=institution_id,
        details={"name": name, "channel": channel},
    )
    return template


def _template(session: Session, *, institution_id: int, template_id: int) -> MessageTemplate:
    template = repository.get_template(
        session, institution_id=institution_id, template_id=template_id
    )
    if template is None:
        raise NotFound(f"no template {template_id}")
    return template


def _findings(result: ReviewResult) -> list[dict[str, Any]]:
    return [
        {
            "category": f.category,
            "rule_id": f.rule_id,
            "start": f.start,
            "end": f.end,
            "text": f.text,
            "message_en": f.message_en,
            "message_zh": f.message_zh,
        }
        for f in result.findings
    ]


def _transition(
    session: Session,
    *,
    template: MessageTemplate,
    action: str,
    actor: str,
    actor_id: int | None,
    review_passed: bool,
) -> None:
    try:
        status = template_transition(
            action=action,
            status=str(template.status),
            author_id=template.author_id,
            reviewer_id=actor_id,
            review_passed=review_passed,
        )
    except TemplateTransitionRefused as error:
        raise Conflict(str(error)) from error
    template.status = TemplateStatus(status)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"compliance.template_{status}",
        object_type="template",
        object_id=template.id,
        institution_id=template.institution_id,
        details={"findings": len(template.findings or [])},
    )


def submit_template(
    session: Session, *, institution_id: int, template_id: int, actor: str, actor_id: int | None
) -> MessageTemplate:
    """Run the review and send the template to a compliance officer."""
    template = _template(session, institution_id=institution_id, template_id=template_id)
    result = review_for_institution(
        session,
        institution_id=institution_id,
        text=template.body,
        locale=template.locale,
        audience=template.audience,
        channel=template.channel,
        kind=template.kind,
    )
    template.findings = _findings(result)
    template.submitted_at = utcnow()
    _transition(
        session,
        template=template,
        action="submit",
        actor=actor,
        actor_id=actor_id,
        review_passed=True,
    )
    return template


def decide_template(
    session: Session,
    *,
    institution_id: int,
    template_id: int,
    approve: bool,
    actor: str,
    actor_id: int | None,
    note: str | None = None,
    today: date | None = None,
) -> MessageTemplate:
    """Approve or reject a submitted template: four eyes, and only a clean text is approved."""
    note = require_text("note", note) if note else note
    template = _template(session, institution_id=institution_id, template_id=template_id)
    result = review_for_institution(
        session,
        institution_id=institution_id,
        text=template.body,
        locale=template.locale,
        audience=template.audience,
        channel=template.channel,
        kind=template.kind,
    )
    template.findings = _findings(result)
    template.reviewer = actor
    template.reviewer_id = actor_id
    template.reviewed_at = utcnow()
    template.review_note = note
    if approve:
        template.re_review_on = (today or utcnow().date()) + RE_REVIEW_AFTER
    _transition(
        session,
        template=template,
        action="approve" if approve else "reject",
        actor=actor,
        actor_id=actor_id,
        review_passed=result.passed,
    )
    return template


def render_approved_template(
    session: Session,
    *,
    institution_id: int,
    template_id: int,
    values: Mapping[str, Any],
    today: date | None = None,
    account_id: int | None = None,
) -> str:
    """Render an approved, not overdue template in the sandbox; anything else is refused.

    Rendered for an account whose statute of limitations has run out (US-SOL), a text
    threatening suit is refused too.
    """
    template = _template(session, institution_id=institution_id, template_id=template_id)
    if template.status != TemplateStatus.approved:
        raise PermissionDenied(f"template {template_id} is {template.status}, not approved")
    if template.re_review_on is not None and template.re_review_on < (today or utcnow().date()):
        raise PermissionDenied(
            f"template {template_id} was due for re-review on {template.re_review_on}"
        )
    try:
        text = _SANDBOX.from_string(template.body).render(**values)
    except TemplateError as error:
        raise ValidationFailed(f"template {template_id} could not be rendered: {error}") from error
    if account_id is not None:
        _refuse_time_barred_threats(
            session,
            institution_id=institution_id,
            account_id=account_id,
            template_id=template_id,
            text=text,
            today=today,
        )
    return text


def _refuse_time_barred_threats(
    session: Session,
    *,
    institution_id: int,
    account_id: int,
    template_id: int,
    text: str,
    today: date | None,
) -> None:
    account = _institution_account(session, institution_id, account_id)
    today = today or institution_today(session, institution_id=institution_id)
    if not is_time_barred(account.time_barred_on, today=today):
        return
    threats = time_barred_threats(text)
    if threats:
        raise PermissionDenied(
            f"US-SOL: account {account.external_id} is time-barred since "
            f"{account.time_barred_on}; template {template_id} threatens suit "
            f"({', '.join(sorted({finding.text for finding in threats}))}). "
            "Use a template without lawsuit language.",
            rule_id="US-SOL",
            findings=[
                {"rule_id": f.rule_id, "start": f.start, "end": f.end, "text": f.text}
                for f in threats
            ],
        )


# Violations


def scan_for_violations(
    session: Session,
    *,
    institution_id: int,
    text: str,
    locale: str,
    source: str,
    source_id: str | None,
    debtor_id: int | None,
    actor: str | None,
    principal: Principal | None = None,
) -> list[ComplianceViolation]:
    """Scan an agent's note or transcript after the fact and queue every hit.

    The debtor named, if any, must be one ``principal`` may see (``NotFound`` otherwise).
    """
    if debtor_id is not None:
        get_scoped(session, Debtor, debtor_id, acting(principal, institution_id))
    result = review_for_institution(
        session,
        institution_id=institution_id,
        text=text,
        locale=locale,
        audience="debtor",
        channel="call",
    )
    rows = [
        ComplianceViolation(
            institution_id=institution_id,
            source=source,
            source_id=source_id,
            debtor_id=debtor_id,
            actor=actor,
            category=finding.category,
            rule_id=finding.rule_id,
            excerpt=text[max(0, finding.start - 20) : finding.end + 20][:255],
            start=finding.start,
            end=finding.end,
        )
        for finding in result.findings
        if finding.end > finding.start
    ]
    session.add_all(rows)
    session.flush()
    return rows


def resolve_violation(
    session: Session,
    *,
    institution_id: int,
    violation_id: int,
    confirmed: bool,
    actor: str,
    note: str | None = None,
) -> ComplianceViolation:
    """Confirm or dismiss a queued violation."""
    note = require_text("note", note) if note else note
    violation = repository.get_violation(
        session, institution_id=institution_id, violation_id=violation_id
    )
    if violation is None:
        raise NotFound(f"no violation {violation_id}")
    if violation.status != ViolationStatus.open:
        raise Conflict(
            f"violation {violation_id} is already {violation.status}",
            message_key="compliance.error.violation_closed",
        )
    violation.status = ViolationStatus.confirmed if confirmed else ViolationStatus.dismissed
    violation.resolved_by = actor
    violation.resolved_at = utcnow()
    violation.resolution_note = note
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"compliance.violation_{violation.status}",
        object_type="compliance_violation",
        object_id=violation.id,
        institution_id=institution_id,
    )
    return violation


# Certifications


def grant_certification(
    session: Session,
    *,
    institution_id: int,
    user_id: int,
    course: str,
    issued_on: date,
    expires_on: date,
    actor: str,
    principal: Principal | None = None,
) -> Certification:
    """Record a compliance training certificate for an active agent of the institution."""
    course = require_text("course", course)
    user = get_scoped(session, User, user_id, acting(principal, institution_id))
    if user.role != Role.agent or not user.active:
        raise ValidationFailed(
            f"user_id {user_id}: {user.username} is not an active agent; "
            "certificates are for agents of this institution",
            errors=[{"field": "user_id", "message": "not an active agent of this institution"}],
        )
    if expires_on <= issued_on:
        raise ValidationFailed(
            "a certificate must expire after it is issued",
            message_key="compliance.error.certificate_dates",
        )
    certification = Certification(
        institution_id=institution_id,
        user_id=user_id,
        course=course,
        issued_on=issued_on,
        expires_on=expires_on,
        issued_by=actor,
    )
    session.add(certification)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="compliance.certification_granted",
        object_type="certification",
        object_id=certification.id,
        institution_id=institution_id,
        details={"user_id": user_id, "expires_on": expires_on.isoformat()},
    )
    return certification


def expiring_certifications(
    session: Session, *, institution_id: int, on: date, within_days: int = 30
) -> list[Certification]:
    """Return certificates that expire within the coming days, for team leads to act on."""
    return list(
        repository.certifications_expiring(
            session,
            institution_id=institution_id,
            before=on + timedelta(days=within_days),
            on=on,
        )
    )


# Compliance pages (added with the web views)

CERTIFICATE_EXPIRY_WARNING_DAYS = 30


def update_template(
    session: Session,
    *,
    institution_id: int,
    template_id: int,
    name: str,
    channel: str,
    locale: str,
    audience: str,
    body: str,
    actor: str,
    actor_id: int | None,
) -> MessageTemplate:
    """Change a draft or rejected template; a submitted or approved one must be rejected first."""
    name = require_text("name", name)
    body = require_text("body", body, multiline=True)
    template = _template(session, institution_id=institution_id, template_id=template_id)
    if template.status not in {TemplateStatus.draft, TemplateStatus.rejected}:
        raise Conflict(
            f"a {template.status} template cannot be edited; it must be draft or rejected",
            message_key="compliance.error.template_locked",
        )
    if template.author_id is not None and actor_id is not None and template.author_id != actor_id:
        raise PermissionDenied(
            "only the author edits a template; draft a new one instead",
            message_key="compliance.error.not_author",
        )
    review_text(text="", locale=locale, audience=audience, channel=channel)
    try:
        _SANDBOX.parse(body)
    except TemplateError as error:
        raise ValidationFailed(
            f"the template does not parse: {error}",
            message_key="compliance.error.template_syntax",
            message_params={"detail": str(error)},
        ) from error
    template.name = name
    template.channel = channel
    template.locale = locale
    template.audience = audience
    template.body = body
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="compliance.template_updated",
        object_type="template",
        object_id=template.id,
        institution_id=institution_id,
        details={"name": name, "channel": channel},
    )
    return template


def policy_problems(
    session: Session, *, institution_id: int, document: Mapping[str, Any]
) -> list[PolicyViolation]:
    """List how a policy document would loosen the institution's rule pack (zh and en)."""
    institution = _institution(session, institution_id)
    try:
        policy = policy_from_document(document)
    except (ValueError, KeyError, TypeError) as error:
        raise ValidationFailed(f"the policy document is not valid: {error}") from error
    return validate_policy(policy, load_pack(str(institution.jurisdiction)))


def certificate_standing(
    expires_on: date | None, *, today: date, warning_days: int = CERTIFICATE_EXPIRY_WARNING_DAYS
) -> str:
    """Say whether a certificate is valid, expiring within the warning days, expired or missing."""
    if expires_on is None:
        return "missing"
    if expires_on < today:
        return "expired"
    if expires_on <= today + timedelta(days=warning_days):
        return "expiring"
    return "valid"


@dataclass(frozen=True, slots=True)
class AgentCertification:
    """An agent, their latest certificate (if any) and how it stands today."""

    user: User
    certification: Certification | None
    standing: str


def certification_roster(
    session: Session, *, institution_id: int, today: date, team_lead_id: int | None = None
) -> list[AgentCertification]:
    """Return every active agent (or one team lead's) with their latest certificate."""
    agents = repository.institution_agents(
        session, institution_id=institution_id, team_lead_id=team_lead_id
    )
    latest: dict[int, Certification] = {}
    for certification in repository.certifications_of_users(
        session, institution_id=institution_id, user_ids=[agent.id for agent in agents]
    ):
        latest.setdefault(certification.user_id, certification)
    return [
        AgentCertification(
            user=agent,
            certification=latest.get(agent.id),
            standing=certificate_standing(
                latest[agent.id].expires_on if agent.id in latest else None, today=today
            ),
        )
        for agent in agents
    ]


# Compliance facts people record (cease contact, attorney, dispute, validation dates …)

DEBTOR_FACT_FIELDS: tuple[str, ...] = (
    "cease_contact",
    "attorney_represented",
    "disputed",
    "deceased",
    "bankrupt",
    "work_contact_forbidden",
)
ACCOUNT_FACT_FIELDS: tuple[str, ...] = (
    "initial_communication_on",
    "validation_notice_sent_on",
    "time_barred_on",
)


def fact_fields_for(institution: Institution) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the debtor and account facts the institution's rule pack reads (for its forms)."""
    pack = load_pack(str(institution.jurisdiction))
    return (
        facts_read_by(pack, DEBTOR_FACT_FIELDS),
        facts_read_by(pack, ACCOUNT_FACT_FIELDS),
    )


def _fact_problem(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


def institution_today(
    session: Session, *, institution_id: int, now: datetime | None = None
) -> date:
    """Return today's date in the institution's time zone."""
    institution = _institution(session, institution_id)
    return clock.local_today(institution.timezone, now=now)


def _audit_facts(
    session: Session,
    *,
    actor: str,
    object_type: str,
    object_id: int,
    institution_id: int,
    changes: Mapping[str, tuple[object, object]],
) -> None:
    audit.record(
        session,
        actor=actor,
        action="compliance.facts_update",
        object_type=object_type,
        object_id=object_id,
        institution_id=institution_id,
        details={
            "changes": {
                field: {"old": _plain(old), "new": _plain(new)}
                for field, (old, new) in changes.items()
            }
        },
    )


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def update_debtor_facts(
    session: Session, *, debtor: Debtor, changes: Mapping[str, bool], actor: str
) -> dict[str, tuple[object, object]]:
    """Change the given debtor-level facts (only those given) and audit old → new."""
    for field, value in changes.items():
        if field not in DEBTOR_FACT_FIELDS:
            raise _fact_problem(field, f"not a debtor fact; use {', '.join(DEBTOR_FACT_FIELDS)}")
        if not isinstance(value, bool):
            raise _fact_problem(field, "must be true or false")
    return _apply_facts(session, debtor, changes, object_type="debtor", actor=actor)


def update_account_facts(
    session: Session,
    *,
    account: Account,
    changes: Mapping[str, date | None],
    actor: str,
    today: date | None = None,
) -> dict[str, tuple[object, object]]:
    """Change the given per-debt validation facts (None clears one) and audit old → new.

    Dates of a communication or notice cannot be in the future, and the validation notice
    cannot predate the initial communication (judged on the account after the change).
    """
    today = today or institution_today(session, institution_id=account.institution_id)
    for field, value in changes.items():
        if field not in ACCOUNT_FACT_FIELDS:
            raise _fact_problem(field, f"not an account fact; use {', '.join(ACCOUNT_FACT_FIELDS)}")
        if value is not None and not isinstance(value, date):
            raise _fact_problem(field, "must be a date like 2025-03-31, or null to clear it")
    stored = {field: getattr(account, field) for field in ACCOUNT_FACT_FIELDS}
    for field, message in account_fact_problems(changes, stored, today=today)[:1]:
        raise _fact_problem(field, message)
    return _apply_facts(session, account, changes, object_type="account", actor=actor)


def _apply_facts(
    session: Session,
    target: Debtor | Account,
    changes: Mapping[str, object],
    *,
    object_type: str,
    actor: str,
) -> dict[str, tuple[object, object]]:
    """Set the checked facts that differ from the stored ones and audit old → new once."""
    changed: dict[str, tuple[object, object]] = {}
    for field, value in changes.items():
        old = getattr(target, field)
        if old != value:
            setattr(target, field, value)
            changed[field] = (old, value)
    if changed:
        session.flush()
        _audit_facts(
            session,
            actor=actor,
            object_type=object_type,
            object_id=target.id,
            institution_id=target.institution_id,
            changes=changed,
        )
    return changed


def review_for_account(
    session: Session,
    *,
    institution_id: int,
    account_id: int,
    text: str,
    locale: str,
    audience: str,
    channel: str,
    kind: str | None = None,
    today: date | None = None,
) -> ReviewResult:
    """Review a text meant for one account: the usual review plus US-SOL when time-barred."""
    account = _institution_account(session, institution_id, account_id)
    result = review_for_institution(
        session,
        institution_id=institution_id,
        text=text,
        locale=locale,
        audience=audience,
        channel=channel,
        kind=kind,
    )
    today = today or institution_today(session, institution_id=institution_id)
    if is_time_barred(account.time_barred_on, today=today):
        return with_time_barred_check(result, text)
    return result


def _institution_account(session: Session, institution_id: int, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None or account.institution_id != institution_id:
        raise NotFound(f"no account {account_id}")
    return account


def certified_agents(session: Session, *, institution_id: int, on: date) -> list[User]:
    """Return the institution's active agents holding a certificate valid on a date (POL-CERT)."""
    return [
        agent
        for agent in repository.institution_agents(session, institution_id=institution_id)
        if is_certified(session, institution_id=institution_id, user_id=agent.id, on=on)
    ]


# Consumer-stated inconvenient times and places (US-INCONV)


@dataclass(frozen=True, slots=True)
class Inconvenient:
    """The times and places a debtor said are inconvenient for contact."""

    times: tuple[StatedWindow, ...]
    places: frozenset[InconvenientPlace]

    @property
    def time_labels(self) -> list[str]:
        """Return the times as people write them."""
        return [window.label for window in self.times]

    @property
    def place_names(self) -> list[str]:
        """Return the places, sorted."""
        return sorted(str(place) for place in self.places)


def inconvenient_for(session: Session, *, debtor: Debtor) -> Inconvenient:
    """Return what the debtor said is inconvenient."""
    rows = repository.contact_windows(
        session, institution_id=debtor.institution_id, debtor_id=debtor.id
    )
    return Inconvenient(
        times=tuple(
            StatedWindow(
                row.start_minute,
                row.end_minute,
                None if row.weekdays is None else tuple(row.weekdays),
            )
            for row in rows
            if row.kind == WindowKind.inconvenient
        ),
        places=_places(debtor),
    )


def read_inconvenient(
    *, times: Sequence[str] | None, places: Sequence[str] | None
) -> tuple[tuple[StatedWindow, ...] | None, frozenset[InconvenientPlace] | None]:
    """Read stated times (``22:00-08:00``, ``09:00-17:00 mon-fri``) and places, or refuse."""
    windows: tuple[StatedWindow, ...] | None = None
    if times is not None:
        try:
            windows = tuple(parse_stated_window(text) for text in times if text.strip())
        except StatedPreferenceError as error:
            raise _fact_problem("inconvenient_times", str(error)) from error
    read_places: frozenset[InconvenientPlace] | None = None
    if places is not None:
        try:
            read_places = parse_places(places)
        except StatedPreferenceError as error:
            raise _fact_problem("inconvenient_places", str(error)) from error
    return windows, read_places


def record_inconvenient(
    session: Session,
    *,
    debtor: Debtor,
    actor: str,
    times: Sequence[StatedWindow] | None = None,
    places: frozenset[InconvenientPlace] | None = None,
    note: str | None = None,
) -> Inconvenient:
    """Replace the debtor's stated inconvenient times and/or places (None keeps them); audit."""
    before = inconvenient_for(session, debtor=debtor)
    if times is not None and tuple(times) != before.times:
        repository.delete_windows(
            session,
            institution_id=debtor.institution_id,
            debtor_id=debtor.id,
            kind=WindowKind.inconvenient,
        )
        session.add_all(
            ContactWindow(
                institution_id=debtor.institution_id,
                debtor_id=debtor.id,
                kind=WindowKind.inconvenient,
                start_minute=window.start_minute,
                end_minute=window.end_minute,
                weekdays=None if window.weekdays is None else list(window.weekdays),
                note=note,
            )
            for window in times
        )
    if places is not None and places != before.places:
        debtor.inconvenient_places = sorted(str(place) for place in places) or None
    session.flush()
    after = inconvenient_for(session, debtor=debtor)
    changes: dict[str, tuple[object, object]] = {}
    if after.times != before.times:
        changes["inconvenient_times"] = (before.time_labels, after.time_labels)
    if after.places != before.places:
        changes["inconvenient_places"] = (before.place_names, after.place_names)
    if changes:
        _audit_facts(
            session,
            actor=actor,
            object_type="debtor",
            object_id=debtor.id,
            institution_id=debtor.institution_id,
            changes=changes,
        )
    return after
