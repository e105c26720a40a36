"""The outbox: queue a message with its gate decision, re-check and send it, record receipts.

Nothing here commits. ``queue_message`` runs in the transaction of the decision that wants
the message. The dispatcher (``outbox.dispatch``) calls ``prepare`` in one transaction and
commits the *sending* marks before any provider is called, then ``record_results`` in the
next; those commits are the boundary's, not the service's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.audit.service import AuditEntry
from recoup.compliance.facts import service as facts_service
from recoup.compliance.facts.rules import is_time_barred
from recoup.compliance.gate import service as gate_service
from recoup.compliance.gate.localtime import WorkingDayCalendar
from recoup.compliance.gate.rules import PlannedContact
from recoup.compliance.gate.service import SendCheck
from recoup.compliance.kinds import RuleKind
from recoup.compliance.templates import service as templates_service
from recoup.contact import service as contact_service
from recoup.contact.channels import CHANNELS, Channel
from recoup.contact.rules import ConsentKind, OutcomeCode, Party
from recoup.enums import ContactKind, ContactStatus
from recoup.identity.principal import Principal
from recoup.identity.scoping import acting, get_scoped
from recoup.institutions import repository as institutions_repository
from recoup.institutions.settings import ChannelSettings, OutreachSettings, settings_of
from recoup.kit import clock, events, jobs
from recoup.kit.clock import aware, utcnow
from recoup.kit.crypto import blind_index
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.kit.money import to_decimal
from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account
from recoup.models.compliance import ContactDecision, MessageTemplate
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.institution import Institution
from recoup.models.outbox import OutboxCampaign, OutboxMessage, OutboxReceipt
from recoup.outbox import repository, rules
from recoup.outbox.adapters.base import Accepted, OutgoingMessage
from recoup.outbox.rules import (
    MESSAGE_CHANNELS,
    CampaignStatus,
    MissedWindow,
    NotQueued,
    OutboxStatus,
    QuietPeriod,
    Receipt,
)

SYSTEM_ACTOR = "outbox"


@dataclass(frozen=True, slots=True)
class Queued:
    """What queueing a message came to: the message, or the gate decision that refused it."""

    message: OutboxMessage | None
    decision: ContactDecision | None
    reasons: tuple[str, ...] = ()
    duplicate: bool = False


def _message_channel(value: Channel | str, settings: ChannelSettings) -> Channel:
    try:
        channel = Channel(value)
    except ValueError:
        channel = None
    if channel is None or channel not in MESSAGE_CHANNELS:
        choices = ", ".join(sorted(c.value for c in MESSAGE_CHANNELS))
        raise ValidationFailed(f"channel {value!r} sends no messages; use one of {choices}")
    if channel.value not in settings.enabled:
        raise ValidationFailed(
            f"channel {channel.value} is not enabled for this institution "
            "(channels.enabled in its settings)"
        )
    return channel


# How to stop messages, by channel and language: what ``{{ opt_out }}`` renders as (US-MEDIUM).
OPT_OUT_TEXT: Mapping[tuple[Channel, str], str] = {
    (Channel.SMS, "en"): "Reply STOP to opt out.",
    (Channel.SMS, "zh"): "回复TD退订",
    (Channel.EMAIL, "en"): "To stop these emails, reply with the word unsubscribe.",
    (Channel.EMAIL, "zh"): "如不希望再收到此类邮件，请回复“退订”。",
    (Channel.LETTER, "en"): "To stop letters, write to us or call us.",
    (Channel.LETTER, "zh"): "如不希望再收到信函，请致电或来函告知。",
}


def template_values(
    *,
    institution: Institution,
    debtor: Debtor,
    account: Account | None,
    channel: Channel = Channel.SMS,
    locale: str = "zh-CN",
    on: date | None = None,
    letterhead: OutreachSettings | None = None,
) -> dict[str, Any]:
    """Return the values a message template may use (``{{ debtor_name }}``, ``{{ balance }}``,
    ``{{ opt_out }}`` …). ``on`` is the day the message is sent: a validation notice's dispute
    deadline (``{{ validation_end_date }}``, ``{{ dispute_by }}``) counts from it. Pass the
    institution's ``letterhead`` (its outreach settings) when rendering many at once."""
    language = "zh" if locale.lower().startswith("zh") else "en"
    today = on or clock.local_today(institution.timezone)
    outreach = letterhead or settings_of(institution).outreach
    values: dict[str, Any] = {
        "debtor_name": debtor.name,
        "institution_name": institution.name,
        "creditor_name": institution.name,
        "collector_name": outreach.letter_sender_name or institution.name,
        "opt_out": OPT_OUT_TEXT.get((channel, language), ""),
    }
    if outreach.letter_sender_phone:
        values["collector_phone"] = outreach.letter_sender_phone
    if outreach.letter_sender_address:
        values["collector_address"] = outreach.letter_sender_address
    if on is not None:
        deadline = rules.validation_period_end(on, is_working_day=_working_day(institution))
        values["validation_end_date"] = values["dispute_by"] = rules.written_date(
            deadline, language
        )
    if account is not None:
        itemized = rules.itemization_date(
            charged_off_on=account.charged_off_on,
            due_date=account.due_date,
            opened_on=account.opened_on,
            today=today,
        )
        values.update(
            account_number=account.external_id,
            currency=account.currency,
            balance=str(to_decimal(account.balance, account.currency)),
            principal=str(to_decimal(account.principal, account.currency)),
            interest=str(to_decimal(account.interest, account.currency)),
            fees=str(to_decimal(account.fees + account.penalty, account.currency)),
            overdue_amount=str(to_decimal(account.overdue_amount, account.currency)),
            minimum_due=str(to_decimal(account.minimum_due, account.currency)),
            due_date=account.due_date.isoformat() if account.due_date else "",
            days_past_due=account.days_past_due,
            itemization_date=rules.written_date(itemized, language),
        )
    return values


def _working_day(institution: Institution) -> Callable[[date], bool]:
    """Return whether a day is a working day where the institution is (weekends and, for US
    institutions, legal public holidays are not)."""
    if str(institution.jurisdiction).upper().startswith("US"):
        return _calendar("US").is_working_day
    return lambda day: day.weekday() < 5


@cache
def _calendar(country: str) -> WorkingDayCalendar:
    return WorkingDayCalendar(country)


def _approved_template(
    session: Session, *, institution_id: int, template_id: int, channel: Channel
) -> MessageTemplate:
    template = session.get(MessageTemplate, template_id)
    if template is None or template.institution_id != institution_id:
        raise NotFound(f"no template {template_id}")
    if template.channel != channel.value:
        raise ValidationFailed(
            f"template {template_id} is for {template.channel}, not {channel.value}; "
            "choose a template of the channel"
        )
    return template


def queue_message(
    session: Session,
    *,
    institution_id: int,
    debtor_id: int,
    contact_point_id: int,
    channel: Channel | str,
    template_id: int,
    actor: str,
    account_id: int | None = None,
    scheduled_at: datetime | None = None,
    idempotency_key: str | None = None,
    campaign_id: int | None = None,
    subject: str | None = None,
    values: Mapping[str, Any] | None = None,
    principal: Principal | None = None,
    now: datetime | None = None,
) -> Queued:
    """Ask the gate, render the approved template and queue the message in the caller's
    transaction; a refused contact queues nothing and returns the decision's reasons.

    The same idempotency key (by default: debtor, contact point, channel, template, account,
    time and campaign) returns the message already queued, asking the gate nothing.
    """
    now = now or utcnow()
    scheduled_at = scheduled_at or now
    if scheduled_at.tzinfo is None:
        raise ValidationFailed("'scheduled_at' must carry a UTC offset")
    institution = institutions_repository.require_by_id(session, institution_id)
    settings = settings_of(institution).channels
    channel = _message_channel(channel, settings)
    key = idempotency_key or rules.idempotency_key(
        institution_id,
        debtor_id,
        contact_point_id,
        channel.value,
        template_id,
        account_id,
        scheduled_at.isoformat(),
        campaign_id,
    )
    if len(key) > 64:
        raise ValidationFailed("'idempotency_key' is at most 64 characters")
    existing = repository.by_key(session, institution_id=institution_id, key=key)
    if existing is not None:
        return Queued(existing, None, duplicate=True)
    scope = acting(principal, institution_id)
    debtor = get_scoped(session, Debtor, debtor_id, scope)
    contact_point = get_scoped(session, ContactPoint, contact_point_id, scope)
    if contact_point.debtor_id != debtor.id:
        raise NotFound(f"no contact point {contact_point_id} for debtor {debtor_id}")
    if str(contact_point.kind) not in CHANNELS[channel].contact_kinds:
        raise ValidationFailed(
            f"contact point {contact_point_id} is a {contact_point.kind}; "
            f"a {CHANNELS[channel].name_en} goes to "
            + " or ".join(sorted(CHANNELS[channel].contact_kinds))
        )
    if contact_point.status in (ContactStatus.invalid, ContactStatus.superseded):
        raise ValidationFailed(f"contact point {contact_point_id} is {contact_point.status}")
    account = None
    if account_id is not None:
        account = get_scoped(session, Account, account_id, scope)
        if account.debtor_id != debtor.id:
            raise NotFound(f"no account {account_id} for debtor {debtor_id}")
    template = _approved_template(
        session, institution_id=institution_id, template_id=template_id, channel=channel
    )
    # Render before asking the gate: a template that cannot be rendered reserves nothing.
    text = templates_service.render_approved_template(
        session,
        institution_id=institution_id,
        template_id=template_id,
        values={
            **template_values(
                institution=institution,
                debtor=debtor,
                account=account,
                channel=channel,
                locale=template.locale,
                on=scheduled_at.astimezone(clock.zone(institution.timezone)).date(),
            ),
            **(values or {}),
        },
        account_id=account_id,
        today=clock.local_today(institution.timezone, now=now),
    )

    def check_at(at: datetime) -> gate_service.CheckedContact:
        return _check(
            session,
            institution_id=institution_id,
            debtor=debtor,
            contact_point=contact_point,
            account=account,
            channel=channel,
            at=at,
            actor=actor,
            now=now,
            principal=principal,
        )

    checked = check_at(scheduled_at)
    expire_after = timedelta(hours=settings.expire_after_hours)
    later = checked.decision.next_allowed_at
    if not checked.decision.allowed and later is not None and later <= scheduled_at + expire_after:
        # Outside the hours now: queue it for the first allowed moment, if soon enough.
        checked = check_at(later)
    quiet_end = (
        rules.quiet_end(
            _quiet(settings, channel),
            at=checked.decision.at,
            timezones=checked.decision.timezones,
            institution_zone=institution.timezone,
        )
        if checked.decision.allowed
        else None
    )
    if quiet_end is not None and quiet_end <= scheduled_at + expire_after:
        # In the institution's own quiet hours: queued for when they end, not held at send time.
        gate_service.release(
            session, institution_id=institution_id, decision_ids=[checked.record.id], actor=actor
        )
        checked = check_at(quiet_end)
    if not checked.decision.allowed:
        return Queued(None, checked.record, reasons=checked.decision.rule_ids)
    message = OutboxMessage(
        institution_id=institution_id,
        debtor_id=debtor.id,
        account_id=account.id if account else None,
        contact_point_id=contact_point.id,
        channel=channel,
        decision_id=checked.record.id,
        campaign_id=campaign_id,
        template_id=template.id,
        template_version=rules.template_version(template.body),
        subject=(subject or template.name)[:255] if channel is Channel.EMAIL else None,
        body=text,
        idempotency_key=key,
        status=OutboxStatus.QUEUED,
        scheduled_at=checked.decision.at,
        expires_at=scheduled_at + expire_after,
        attempts=0,
        actor=actor[:128],
    )
    session.add(message)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="outbox.queued",
        object_type="outbox_message",
        object_id=message.id,
        institution_id=institution_id,
        details={
            "channel": channel.value,
            "decision_id": checked.record.id,
            "template_id": template.id,
            "template_version": message.template_version,
            "campaign_id": campaign_id,
        },
    )
    return Queued(message, checked.record)


# Rows read per query in the bulk path (under any database's bound-parameter limit).
CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class PlannedSend:
    """A message a plan wants sent, on a gate decision that allowed it (a batch pre-check).

    ``template`` is the name of the approved template the plan's step names; ``key`` is the
    message's idempotency key (the same key never queues twice).
    """

    key: str
    debtor_id: int
    account_id: int | None
    channel: str
    template: str | None
    decision_id: int
    scheduled_at: datetime


@dataclass(frozen=True, slots=True)
class BulkQueued:
    """What queueing a plan's messages came to: queued, already queued, and not queued by why."""

    queued: int
    duplicates: int
    not_queued: dict[str, int]
    dispatch_job_id: int | None = None


def _chunks(values: Sequence[int]) -> list[Sequence[int]]:
    return [values[start : start + CHUNK] for start in range(0, len(values), CHUNK)]


def message_points(
    session: Session, *, institution_id: int, wanted: Iterable[tuple[int, Channel]]
) -> dict[tuple[int, Channel], ContactPoint]:
    """Return the point each (debtor, message channel) goes to: the debtor's own usable point
    of the channel's kinds (valid before unverified, then oldest); none when it has none."""
    debtors: dict[Channel, set[int]] = {}
    for debtor_id, channel in wanted:
        debtors.setdefault(channel, set()).add(debtor_id)
    points: dict[tuple[int, Channel], ContactPoint] = {}
    for channel, debtor_ids in debtors.items():
        for chunk in _chunks(sorted(debtor_ids)):
            found = repository.own_points(
                session,
                institution_id=institution_id,
                debtor_ids=chunk,
                kinds=CHANNELS[channel].contact_kinds,
            )
            points.update({(debtor_id, channel): point for debtor_id, point in found.items()})
    return points


def queue_planned_messages(
    session: Session,
    *,
    institution: Institution,
    planned: Sequence[PlannedSend],
    actor: str,
    dispatch_key: str,
    now: datetime | None = None,
    template: MessageTemplate | None = None,
    campaign_id: int | None = None,
) -> BulkQueued:
    """Queue many allowed messages at once (the daily cycle's hand-off, a campaign), set-based.

    Each message is rendered from the newest approved template of its name and channel
    (compiled once per template) to the debtor's own usable contact point of the channel,
    stored with its gate decision id, template version and idempotency key in one insert,
    logged as a planned contact and audited. A key already queued is skipped, so a re-run
    queues nothing twice. A message that cannot be queued is counted under its reason
    (``rules.NotQueued``; ``rules.choose_template`` decides the first ones). One dispatch job
    (key ``dispatch_key``) is enqueued for the earliest message; the dispatcher asks the gate
    again at send time.

    A campaign names its one approved ``template`` (each send's channel must be the
    template's) and its ``campaign_id``, stored on every message.
    """
    now = now or utcnow()
    settings = settings_of(institution).channels
    institution_id = institution.id
    today = clock.local_today(institution.timezone, now=now)
    not_queued: dict[str, int] = dict.fromkeys((reason.value for reason in NotQueued), 0)
    existing = repository.existing_keys(
        session, institution_id=institution_id, keys={each.key for each in planned}
    )
    templates: dict[tuple[str, str], MessageTemplate] = {}
    for approved in repository.approved_templates(
        session,
        institution_id=institution_id,
        channels=sorted(c.value for c in MESSAGE_CHANNELS),
        today=today,
    ):
        # Ordered by name then id: the newest approved template of a name wins.
        templates[(approved.name, str(approved.channel))] = approved
    campaign_channels = {str(template.channel)} if template is not None else None
    enabled = set(settings.enabled)
    wanted: list[tuple[PlannedSend, Channel, MessageTemplate]] = []
    for each in planned:
        if each.key in existing:
            continue
        channel = rules.choose_template(
            each.channel,
            each.template,
            enabled=enabled,
            approved=templates,
            campaign_channels=campaign_channels,
        )
        if isinstance(channel, NotQueued):
            not_queued[channel] += 1
        else:
            chosen = template or templates[(each.template or "", channel.value)]
            wanted.append((each, channel, chosen))
    points = message_points(
        session,
        institution_id=institution_id,
        wanted=[(each.debtor_id, channel) for each, channel, _ in wanted],
    )
    reachable = []
    for each, channel, chosen in wanted:
        if (each.debtor_id, channel) in points:
            reachable.append((each, channel, chosen))
        else:
            not_queued[NotQueued.NO_CONTACT_POINT] += 1
    debtors: dict[int, Any] = {}
    for chunk in _chunks(sorted({each.debtor_id for each, _, _ in reachable})):
        debtors.update(_by_id(session, Debtor, set(chunk)))
    accounts: dict[int, Any] = {}
    account_ids = sorted({each.account_id for each, _, _ in reachable if each.account_id})
    for chunk in _chunks(account_ids):
        accounts.update(_by_id(session, Account, set(chunk)))
    by_template: dict[int, list[tuple[PlannedSend, Channel, MessageTemplate]]] = {}
    for item in reachable:
        by_template.setdefault(item[2].id, []).append(item)
    expire_after = timedelta(hours=settings.expire_after_hours)
    letterhead = settings_of(institution).outreach
    rows: list[dict[str, Any]] = []
    sends: list[contact_service.PlannedMessage] = []
    for group in by_template.values():
        chosen = group[0][2]
        rendered = templates_service.render_many(
            chosen,
            values=[
                template_values(
                    institution=institution,
                    debtor=debtors[each.debtor_id],
                    account=accounts.get(each.account_id) if each.account_id else None,
                    channel=channel,
                    locale=chosen.locale,
                    on=today,
                    letterhead=letterhead,
                )
                for each, channel, _ in group
            ],
            time_barred=[
                each.account_id is not None
                and each.account_id in accounts
                and is_time_barred(accounts[each.account_id].time_barred_on, today=today)
                for each, _, _ in group
            ],
            today=today,
        )
        version = rules.template_version(chosen.body)
        for (each, channel, _), text in zip(group, rendered, strict=True):
            if text.text is None:
                not_queued[text.refused or NotQueued.RENDER_FAILED] += 1
                continue
            point = points[(each.debtor_id, channel)]
            scheduled_at = each.scheduled_at
            expires_at = scheduled_at + expire_after
            rows.append(
                {
                    "institution_id": institution_id,
                    "debtor_id": each.debtor_id,
                    "account_id": each.account_id,
                    "contact_point_id": point.id,
                    "channel": channel.value,
                    "decision_id": each.decision_id,
                    "campaign_id": campaign_id,
                    "template_id": chosen.id,
                    "template_version": version,
                    "subject": chosen.name[:255] if channel is Channel.EMAIL else None,
                    "body": text.text,
                    "idempotency_key": each.key,
                    "status": OutboxStatus.QUEUED.value,
                    "scheduled_at": scheduled_at,
                    "expires_at": expires_at,
                    "attempts": 0,
                    "actor": actor[:128],
                }
            )
            sends.append(
                contact_service.PlannedMessage(
                    decision_id=each.decision_id,
                    debtor_id=each.debtor_id,
                    account_id=each.account_id,
                    contact_point_id=point.id,
                    channel=channel,
                    planned_at=scheduled_at,
                    expires_at=expires_at,
                )
            )
    ids = repository.add_messages(session, rows)
    contact_service.plan_messages(
        session, institution_id=institution_id, planned=sends, actor=actor
    )
    audit.record_many(
        session,
        [
            AuditEntry(
                actor=actor,
                action="outbox.queued",
                object_type="outbox_message",
                object_id=message_id,
                institution_id=institution_id,
                details={
                    "channel": row["channel"],
                    "decision_id": row["decision_id"],
                    "template_id": row["template_id"],
                    "template_version": row["template_version"],
                    "campaign_id": campaign_id,
                },
            )
            for message_id, row in zip(ids, rows, strict=True)
        ],
    )
    job_id = None
    if rows:
        job = jobs.enqueue(
            session,
            "outbox.dispatch",
            {"institution_id": institution_id},
            idempotency_key=dispatch_key,
            institution_id=institution_id,
            at=min(row["scheduled_at"] for row in rows),
        )
        session.flush()
        job_id = job.id
    return BulkQueued(
        queued=len(rows),
        duplicates=len(existing),
        not_queued={reason: count for reason, count in not_queued.items() if count},
        dispatch_job_id=job_id,
    )


def _check(
    session: Session,
    *,
    institution_id: int,
    debtor: Debtor,
    contact_point: ContactPoint,
    account: Account | None,
    channel: Channel,
    at: datetime,
    actor: str,
    now: datetime,
    principal: Principal | None,
) -> gate_service.CheckedContact:
    return gate_service.check_contact(
        session,
        institution_id=institution_id,
        debtor_id=debtor.id,
        contact_point_id=contact_point.id,
        account_id=account.id if account else None,
        channel=channel,
        party=Party.THIRD_PARTY if contact_point.third_party else Party.DEBTOR,
        at=at,
        actor=actor,
        automated=CHANNELS[channel].automated,
        now=now,
        principal=principal,
    )


# Dispatch ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message marked sending, ready for its adapter."""

    message_id: int
    institution_id: int
    institution_code: str
    channel: Channel
    token: str
    message: OutgoingMessage


@dataclass(frozen=True, slots=True)
class Result:
    """What the provider did with one outgoing message."""

    outgoing: Outgoing
    accepted: Accepted | None = None
    error: Exception | None = None
    # The adapter's name (gateway, twilio, smtp, log, sandbox), stored with the message.
    provider: str | None = None


def _quiet(settings: ChannelSettings, channel: Channel) -> QuietPeriod | None:
    return rules.quiet_period(settings.quiet_start, settings.quiet_end, channel)


def _opt_out_required(session: Session, institution: Institution, channel: Channel) -> bool:
    gate = gate_service.gate_for(session, institution=institution)
    return any(
        channel.value in (rule.parameters.get("opt_out_required_channels") or ())  # type: ignore[operator]
        for rule in gate.pack.rules_of(RuleKind.CHANNEL_OPT_OUT)
    )


def _callback(settings: ChannelSettings, institution: Institution) -> str | None:
    provider = settings.sms_provider
    if not settings.callback_base_url or provider not in ("gateway", "twilio"):
        return None
    return (
        f"{settings.callback_base_url.rstrip('/')}/api/v1/outbox/hooks/"
        f"{institution.code}/{provider}/status"
    )


def prepare(
    session: Session, *, messages: Sequence[OutboxMessage], now: datetime
) -> list[Outgoing]:
    """Ask the gate again about due messages; mark those it allows *sending*, hold the rest.

    A message past its expiry expires; one whose contact point became invalid, whose debtor
    paid since it was queued, or that a block no later time lifts (a cease request, an
    opt-out, a dispute) is cancelled; one outside the hours is rescheduled to the gate's next
    allowed time or expired, as the institution's ``channels.on_missed_window`` says. Every
    one of these releases the gate reservation it held.
    """
    outgoing: list[Outgoing] = []
    by_institution: dict[int, list[OutboxMessage]] = {}
    for message in messages:
        by_institution.setdefault(message.institution_id, []).append(message)
    for institution_id, batch in by_institution.items():
        outgoing.extend(
            _prepare_institution(session, institution_id=institution_id, batch=batch, now=now)
        )
    return outgoing


def _prepare_institution(
    session: Session, *, institution_id: int, batch: Sequence[OutboxMessage], now: datetime
) -> list[Outgoing]:
    institution = institutions_repository.require_by_id(session, institution_id)
    settings = settings_of(institution).channels
    missed = MissedWindow(settings.on_missed_window)
    debtors = _by_id(session, Debtor, {m.debtor_id for m in batch})
    points = _by_id(session, ContactPoint, {m.contact_point_id for m in batch})
    accounts = _by_id(session, Account, {m.account_id for m in batch if m.account_id})
    paid = repository.paid_since(
        session,
        institution_id=institution_id,
        pairs={(m.debtor_id, m.account_id, aware(m.created_at)) for m in batch},
    )
    changes: list[dict[str, Any]] = []
    released: list[int] = []
    entries: list[AuditEntry] = []

    def hold(
        message: OutboxMessage, status: OutboxStatus, reason: str, at: datetime | None = None
    ) -> None:
        change: dict[str, Any] = {"id": message.id, "status": status, "last_error": reason[:255]}
        if status is OutboxStatus.QUEUED and at is not None:
            change["scheduled_at"] = at
        else:
            change["finished_at"] = now
            released.append(message.decision_id)
        changes.append(change)
        entries.append(
            AuditEntry(
                actor=SYSTEM_ACTOR,
                action=f"outbox.{'rescheduled' if status is OutboxStatus.QUEUED else status.value}",
                object_type="outbox_message",
                object_id=message.id,
                institution_id=institution_id,
                details={"reason": reason[:255], "scheduled_at": at.isoformat() if at else None},
            )
        )

    checks: list[tuple[OutboxMessage, SendCheck]] = []
    for message in batch:
        point = points[message.contact_point_id]
        if aware(message.expires_at) <= now:
            hold(message, OutboxStatus.EXPIRED, "not sent before its expiry")
        elif point.status in (ContactStatus.invalid, ContactStatus.superseded):
            hold(message, OutboxStatus.CANCELLED, f"contact point {point.status}")
        elif (message.debtor_id, message.account_id) in paid:
            hold(message, OutboxStatus.CANCELLED, "payment received since queued")
        else:
            checks.append(
                (
                    message,
                    SendCheck(
                        debtor=debtors[message.debtor_id],
                        contact_point=point,
                        account=accounts.get(message.account_id) if message.account_id else None,
                        channel=Channel(message.channel),
                        decision_id=message.decision_id,
                    ),
                )
            )
    decisions = gate_service.recheck(
        session, institution=institution, checks=[check for _, check in checks], at=now
    )
    unsubscribe = {
        channel: _opt_out_required(session, institution, channel) for channel in MESSAGE_CHANNELS
    }
    callback = _callback(settings, institution)
    outgoing: list[Outgoing] = []
    for (message, check), decision in zip(checks, decisions, strict=True):
        expires_at = aware(message.expires_at)
        if not decision.allowed:
            reason = "gate: " + ", ".join(decision.rule_ids)
            if decision.next_allowed_at is None:
                hold(message, OutboxStatus.CANCELLED, reason)
            else:
                held = rules.held_back(
                    next_allowed_at=decision.next_allowed_at,
                    expires_at=expires_at,
                    on_missed_window=missed,
                )
                hold(message, held.status, reason, held.scheduled_at)
            continue
        quiet_end = rules.quiet_end(
            _quiet(settings, check.channel),
            at=now,
            timezones=decision.timezones,
            institution_zone=institution.timezone,
        )
        if quiet_end is not None:
            held = rules.held_back(
                next_allowed_at=quiet_end, expires_at=expires_at, on_missed_window=missed
            )
            hold(message, held.status, "institution quiet hours", held.scheduled_at)
            continue
        token = secrets.token_hex(16)
        changes.append(
            {
                "id": message.id,
                "status": OutboxStatus.SENDING,
                "send_token": token,
                "sending_since": now,
                "attempts": message.attempts + 1,
            }
        )
        outgoing.append(
            Outgoing(
                message_id=message.id,
                institution_id=institution_id,
                institution_code=institution.code,
                channel=check.channel,
                token=token,
                message=_outgoing(
                    message,
                    to=check.contact_point.value,
                    settings=settings,
                    unsubscribe=unsubscribe[check.channel],
                    callback=callback,
                    since=now,
                ),
            )
        )
    repository.update_messages(session, changes)
    if released:
        gate_service.release(
            session, institution_id=institution_id, decision_ids=released, actor=SYSTEM_ACTOR
        )
    audit.record_many(session, entries)
    return outgoing


def _outgoing(
    message: OutboxMessage,
    *,
    to: str,
    settings: ChannelSettings,
    unsubscribe: bool,
    callback: str | None,
    since: datetime | None,
) -> OutgoingMessage:
    channel = Channel(message.channel)
    return OutgoingMessage(
        key=message.idempotency_key,
        to=to,
        text=message.body,
        subject=message.subject,
        sender=settings.sms_sender if channel is Channel.SMS else settings.email_from,
        status_callback=callback if channel is Channel.SMS else None,
        unsubscribe=(
            f"mailto:{settings.email_from}?subject=unsubscribe%20{message.idempotency_key}"
            if unsubscribe and channel is Channel.EMAIL
            else None
        ),
        sending_since=aware(message.sending_since) if message.sending_since else since,
        earlier_tries=message.attempts,
    )


def _by_id(session: Session, model: type[Any], ids: set[int]) -> dict[int, Any]:
    from sqlalchemy import select

    if not ids:
        return {}
    rows = session.execute(select(model).where(model.id.in_(list(ids)))).scalars()
    return {row.id: row for row in rows}


def record_results(
    session: Session, *, results: Sequence[Result], now: datetime, max_attempts: Mapping[int, int]
) -> dict[str, int]:
    """Record what providers did: sent, to retry later, dead or failed; log sends and failures.

    A result whose message no longer holds the token it was sent under is ignored (another
    dispatcher reconciled it). Returns how many messages reached each status.
    """
    messages = repository.messages_by_id(session, {r.outgoing.message_id for r in results})
    changes: list[dict[str, Any]] = []
    entries: list[AuditEntry] = []
    sent_by_institution: dict[int, list[tuple[int, datetime, str]]] = {}
    counts: dict[str, int] = {}
    for result in results:
        message = messages.get(result.outgoing.message_id)
        if message is None or message.send_token != result.outgoing.token:
            continue
        if message.status != OutboxStatus.SENDING:
            continue
        status = _apply_result(
            session, message=message, result=result, now=now, changes=changes,
            max_attempts=max_attempts.get(message.institution_id, 6),
        )  # fmt: skip
        counts[status.value] = counts.get(status.value, 0) + 1
        announce(session, message, status)
        if result.accepted is not None:
            sent_by_institution.setdefault(message.institution_id, []).append(
                (message.decision_id, now, result.accepted.provider_message_id)
            )
        entries.append(
            AuditEntry(
                actor=SYSTEM_ACTOR,
                action=(
                    "outbox.sent"
                    if result.accepted is not None
                    else "outbox.retry_scheduled"
                    if status is OutboxStatus.QUEUED
                    else f"outbox.{status.value}"
                ),
                object_type="outbox_message",
                object_id=message.id,
                institution_id=message.institution_id,
                details={
                    "channel": str(message.channel),
                    "decision_id": message.decision_id,
                    "provider": message.provider if result.accepted is None else None,
                    "error": _error_text(result.error),
                },
            )
        )
    repository.update_messages(session, changes)
    for institution_id, sent in sent_by_institution.items():
        contact_service.record_messages_sent(
            session, institution_id=institution_id, sent=sent, actor=SYSTEM_ACTOR
        )
    audit.record_many(session, entries)
    return counts


def _error_text(error: Exception | None) -> str | None:
    # Adapters word their errors without personal data (a status code, an exception class).
    return None if error is None else f"{type(error).__name__}: {error}"[:255]


def _apply_result(
    session: Session,
    *,
    message: OutboxMessage,
    result: Result,
    now: datetime,
    changes: list[dict[str, Any]],
    max_attempts: int,
) -> OutboxStatus:
    if result.accepted is not None:
        status = (
            OutboxStatus.DELIVERED
            if rules.read_receipt(result.accepted.status) is Receipt.DELIVERED
            else OutboxStatus.SENT
        )
        changes.append(
            {
                "id": message.id,
                "status": status,
                "provider": (result.provider or message.provider or "")[:32] or None,
                "provider_message_id": result.accepted.provider_message_id[:128],
                "sent_at": now,
                "finished_at": now if status is OutboxStatus.DELIVERED else None,
                "last_error": None,
            }
        )
        return status
    error = result.error
    if isinstance(error, rules.Permanent):
        changes.append(
            {"id": message.id, "status": OutboxStatus.FAILED, "finished_at": now,
             "last_error": _error_text(error)}
        )  # fmt: skip
        _failed_contact(session, message=message, now=now, invalid_contact=error.invalid_contact)
        return OutboxStatus.FAILED
    if message.attempts >= max_attempts:
        changes.append(
            {"id": message.id, "status": OutboxStatus.DEAD, "finished_at": now,
             "last_error": _error_text(error)}
        )  # fmt: skip
        return OutboxStatus.DEAD
    changes.append(
        {
            "id": message.id,
            "status": OutboxStatus.QUEUED,
            "scheduled_at": now + rules.backoff(message.attempts),
            "last_error": _error_text(error),
            "send_token": None,
        }
    )
    return OutboxStatus.QUEUED


def _failed_contact(
    session: Session, *, message: OutboxMessage, now: datetime, invalid_contact: bool
) -> None:
    """Log a failed message; a wrong number or address invalidates the contact point."""
    if not invalid_contact:
        outcome = OutcomeCode.MESSAGE_FAILED
    elif message.channel == Channel.EMAIL:
        outcome = OutcomeCode.MESSAGE_BOUNCED
    else:
        outcome = OutcomeCode.WRONG_NUMBER
    contact_service.record_message_outcome(
        session,
        institution_id=message.institution_id,
        decision_id=message.decision_id,
        outcome=outcome,
        happened_at=now,
        actor=SYSTEM_ACTOR,
        provider_message_id=message.provider_message_id,
    )
    if invalid_contact:
        point = session.get(ContactPoint, message.contact_point_id)
        if point is not None and point.status != ContactStatus.invalid:
            point.status = ContactStatus.invalid
            audit.record(
                session,
                actor=SYSTEM_ACTOR,
                action="contact_point.invalidated",
                object_type="contact_point",
                object_id=point.id,
                institution_id=message.institution_id,
                details={"outbox_message_id": message.id, "outcome": outcome.value},
            )


def outgoing_for_reconcile(session: Session, *, message: OutboxMessage) -> Outgoing:
    """Return the outgoing form of a message found *sending* after a crash."""
    institution = institutions_repository.require_by_id(session, message.institution_id)
    settings = settings_of(institution).channels
    point = session.get(ContactPoint, message.contact_point_id)
    assert point is not None
    channel = Channel(message.channel)
    return Outgoing(
        message_id=message.id,
        institution_id=institution.id,
        institution_code=institution.code,
        channel=channel,
        token=message.send_token or "",
        message=_outgoing(
            message,
            to=point.value,
            settings=settings,
            unsubscribe=_opt_out_required(session, institution, channel),
            callback=_callback(settings, institution),
            since=None,
        ),
    )


def reconciled(
    session: Session,
    *,
    message: OutboxMessage,
    found: Accepted | None,
    unknown: str | None,
    now: datetime,
    provider: str | None = None,
) -> OutboxStatus:
    """Settle a message found *sending* after a crash from what the provider says.

    Found there: it was sent. Not there: it never left, so it is queued again (under the same
    decision, re-checked by the gate before it goes). Unknown: it is dead, for a person to
    check, and never sent twice by the machine.
    """
    if found is not None:
        status = (
            OutboxStatus.DELIVERED
            if rules.read_receipt(found.status) is Receipt.DELIVERED
            else OutboxStatus.SENT
        )
        message.status = status
        message.provider_message_id = found.provider_message_id[:128]
        if provider:
            message.provider = provider[:32]
        message.sent_at = message.sending_since or now
        message.last_error = None
        contact_service.record_messages_sent(
            session,
            institution_id=message.institution_id,
            sent=[(message.decision_id, aware(message.sent_at), found.provider_message_id)],
            actor=SYSTEM_ACTOR,
        )
    elif unknown is not None:
        message.status = OutboxStatus.DEAD
        message.finished_at = now
        message.last_error = f"delivery unknown after a restart: {unknown}"[:255]
    else:
        message.status = OutboxStatus.QUEUED
        message.scheduled_at = now
        message.send_token = None
        message.last_error = "not at the provider after a restart; queued again"
    session.flush()
    audit.record(
        session,
        actor=SYSTEM_ACTOR,
        action="outbox.reconciled",
        object_type="outbox_message",
        object_id=message.id,
        institution_id=message.institution_id,
        details={"status": message.status, "found": found is not None},
    )
    return OutboxStatus(message.status)


# Receipts and replies ---------------------------------------------------------------------


def announce(session: Session, message: OutboxMessage, status: OutboxStatus) -> None:
    """Tell webhook subscribers a message was delivered or failed for good (ids only)."""
    if status not in (OutboxStatus.DELIVERED, OutboxStatus.FAILED, OutboxStatus.DEAD):
        return
    events.emit(
        session,
        institution_id=message.institution_id,
        type="message.delivered" if status is OutboxStatus.DELIVERED else "message.failed",
        data={
            "message_id": message.id,
            "debtor_id": message.debtor_id,
            "channel": str(message.channel),
            "status": str(status),
        },
    )


def record_receipt(
    session: Session,
    *,
    institution_id: int,
    provider_message_id: str,
    status: str,
    error_code: str | None = None,
    received_at: datetime | None = None,
) -> OutboxMessage | None:
    """Record a provider's delivery receipt once; a repeated or out-of-order one changes nothing.

    A failure the provider blames on the number invalidates the contact point. Returns the
    message, or None when no message has that provider id (or the status is not tracked).
    """
    received_at = received_at or utcnow()
    message = repository.by_provider_id(
        session, institution_id=institution_id, provider_message_id=provider_message_id
    )
    receipt = rules.read_receipt(status, error_code)
    if message is None or receipt is None:
        return None
    new = repository.add_receipt(
        session,
        OutboxReceipt(
            institution_id=institution_id,
            message_id=message.id,
            provider_status=status.strip().lower()[:32],
            error_code=(error_code or None) and str(error_code)[:32],
            received_at=received_at,
        ),
    )
    if not new:
        return message
    wanted = rules.receipt_status(OutboxStatus(message.status), receipt)
    if wanted is not None:
        message.status = wanted
        if wanted in rules.FINAL_STATUSES:
            message.finished_at = received_at
        if wanted is OutboxStatus.FAILED:
            message.last_error = f"provider receipt: {status}" + (
                f" ({error_code})" if error_code else ""
            )
    session.flush()
    if wanted is not None:
        announce(session, message, wanted)
    if receipt is Receipt.DELIVERED and wanted is not None:
        contact_service.record_message_outcome(
            session,
            institution_id=institution_id,
            decision_id=message.decision_id,
            outcome=OutcomeCode.MESSAGE_DELIVERED,
            happened_at=received_at,
            actor=SYSTEM_ACTOR,
        )
    elif receipt in (Receipt.FAILED, Receipt.INVALID_CONTACT) and wanted is not None:
        _failed_contact(
            session,
            message=message,
            now=received_at,
            invalid_contact=receipt is Receipt.INVALID_CONTACT,
        )
    audit.record(
        session,
        actor=SYSTEM_ACTOR,
        action="outbox.receipt",
        object_type="outbox_message",
        object_id=message.id,
        institution_id=institution_id,
        details={"status": status[:32], "error_code": error_code},
    )
    return message


def deliver_sandbox_receipts(
    session: Session,
    *,
    now: datetime | None = None,
    institution_id: int | None = None,
    limit: int = 1_000,
) -> dict[str, int]:
    """Record the sandbox provider's receipts for the messages it accepted a while ago (demo).

    Each message gets what a real gateway posts: a "sent" receipt, then its final one (mostly
    delivered; undelivered, failed or bounced for a share, by ``rules.sandbox_fate``), through
    ``record_receipt``, the code the providers' callbacks use: statuses change, the contact log
    and the audit trail record them, a wrong number or mailbox invalidates the contact point.
    Returns how many final receipts of each status were recorded.
    """
    now = now or utcnow()
    counts: dict[str, int] = {}
    waiting = repository.sandbox_awaiting_receipts(
        session,
        sent_before=now - rules.SANDBOX_RECEIPT_DELAY,
        limit=limit,
        institution_id=institution_id,
    )
    for message in waiting:
        provider_id = message.provider_message_id
        if not provider_id:
            continue
        sent_at = aware(message.sent_at) if message.sent_at else now
        status, code = rules.sandbox_fate(provider_id, str(message.channel))
        record_receipt(
            session,
            institution_id=message.institution_id,
            provider_message_id=provider_id,
            status="sent",
            received_at=min(now, sent_at + timedelta(seconds=2)),
        )
        record_receipt(
            session,
            institution_id=message.institution_id,
            provider_message_id=provider_id,
            status=status,
            error_code=code,
            received_at=now,
        )
        counts[status] = counts.get(status, 0) + 1
    return counts


def record_reply(
    session: Session,
    *,
    institution_id: int,
    sender: str,
    text: str,
    received_at: datetime | None = None,
    provider_message_id: str | None = None,
) -> bool:
    """Log an inbound text; "STOP", "退订" or "TD" opts the number out of texts.

    Returns whether it was an opt-out. A reply from a number nobody has is ignored.
    """
    received_at = received_at or utcnow()
    from sqlalchemy import select

    index = blind_index(sender, context="contact_points.value")
    point = (
        session.execute(
            select(ContactPoint).where(
                ContactPoint.institution_id == institution_id,
                ContactPoint.value_index == index,
                ContactPoint.kind == ContactKind.mobile,
            )
        )
        .scalars()
        .first()
    )
    if point is None:
        return False
    opt_out = rules.is_opt_out_reply(text)
    contact_service.log_inbound(
        session,
        institution_id=institution_id,
        debtor_id=point.debtor_id,
        channel=Channel.SMS,
        started_at=received_at,
        actor="sms-reply",
        outcome=OutcomeCode.REFUSED_CONTACT if opt_out else None,
        party=Party.THIRD_PARTY if point.third_party else Party.DEBTOR,
        contact_point_id=point.id,
        provider_message_id=provider_message_id,
    )
    if opt_out:
        contact_service.record_consent(
            session,
            contact_point=point,
            channel=Channel.SMS,
            kind=ConsentKind.OPT_OUT,
            actor="sms-reply",
            source="reply",
            recorded_at=received_at,
        )
    return opt_out


# People's actions -------------------------------------------------------------------------


def retry_message(
    session: Session,
    *,
    principal: Principal,
    institution_id: int,
    message_id: int,
    now: datetime | None = None,
) -> OutboxMessage:
    """Give a dead message another set of tries (the gate is asked again when it is due)."""
    message = get_scoped(session, OutboxMessage, message_id, acting(principal, institution_id))
    if message.status != OutboxStatus.DEAD:
        raise Conflict(f"message {message_id} is {message.status}; only dead messages are retried")
    now = now or utcnow()
    message.status = OutboxStatus.QUEUED
    message.attempts = 0
    message.send_token = None
    message.scheduled_at = now
    message.finished_at = None
    if aware(message.expires_at) <= now:
        message.expires_at = now + timedelta(
            hours=settings_of(
                institutions_repository.require_by_id(session, institution_id)
            ).channels.expire_after_hours
        )
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="outbox.retried",
        object_type="outbox_message",
        object_id=message.id,
        institution_id=institution_id,
        details={"channel": str(message.channel)},
    )
    return message


def messages_page(
    session: Session,
    *,
    principal: Principal,
    institution_id: int,
    page: PageRequest,
    status: str | None = None,
    campaign_id: int | None = None,
) -> Page[OutboxMessage]:
    """Return one page of the institution's messages, newest first."""
    acting(principal, institution_id)
    if status is not None and status not in set(OutboxStatus):
        raise ValidationFailed(
            f"status {status!r} is not a message status; use one of "
            + ", ".join(s.value for s in OutboxStatus)
        )
    return repository.messages_page(
        session, institution_id=institution_id, page=page, status=status, campaign_id=campaign_id
    )


# Campaigns --------------------------------------------------------------------------------

# The most accounts a campaign's preview asks the gate about (a request's worth).
CAMPAIGN_LIMIT = 2_000
# The accounts a campaign's job queues per transaction (progress shows after each).
CAMPAIGN_BATCH = 2_000
GRADES = ("A", "B", "C", "D", "E")


@dataclass(frozen=True, slots=True)
class Segment:
    """Which accounts a campaign goes to: buckets, the latest score's segments and grades."""

    buckets: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    grades: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        """Return the segment as stored with the campaign."""
        return {
            "bucket": list(self.buckets),
            "segment": list(self.segments),
            "grade": list(self.grades),
        }


@dataclass(frozen=True, slots=True)
class CampaignPreview:
    """What sending a campaign now would do."""

    accounts: int
    reachable: int
    blocked: int
    limited: bool


def _targets(
    session: Session, *, institution_id: int, channel: Channel, segment: Segment
) -> tuple[list[tuple[Account, ContactPoint]], int, bool]:
    """Return each account of the segment with its debtor's own point for the channel."""
    accounts = repository.segment_accounts(
        session,
        institution_id=institution_id,
        buckets=segment.buckets,
        segments=segment.segments,
        grades=segment.grades,
        limit=CAMPAIGN_LIMIT + 1,
    )
    limited = len(accounts) > CAMPAIGN_LIMIT
    accounts = accounts[:CAMPAIGN_LIMIT]
    points = repository.own_points(
        session,
        institution_id=institution_id,
        debtor_ids={account.debtor_id for account in accounts},
        kinds=CHANNELS[channel].contact_kinds,
    )
    targets = [
        (account, points[account.debtor_id]) for account in accounts if account.debtor_id in points
    ]
    return targets, len(accounts), limited


def _campaign_template(
    session: Session, *, institution_id: int, channel: Channel | str, template_id: int
) -> tuple[Channel, MessageTemplate]:
    institution = institutions_repository.require_by_id(session, institution_id)
    chosen = _message_channel(channel, settings_of(institution).channels)
    template = _approved_template(
        session, institution_id=institution_id, template_id=template_id, channel=chosen
    )
    if template.status != "approved":
        raise ValidationFailed(f"template {template_id} is {template.status}, not approved")
    return chosen, template


def preview_campaign(
    session: Session,
    *,
    principal: Principal,
    institution_id: int,
    channel: Channel | str,
    template_id: int,
    segment: Segment,
    now: datetime | None = None,
) -> CampaignPreview:
    """Count a campaign's accounts, those reachable on the channel and those the gate would
    block now (asking the gate without reserving or storing anything)."""
    acting(principal, institution_id)
    chosen, _template = _campaign_template(
        session, institution_id=institution_id, channel=channel, template_id=template_id
    )
    targets, accounts, limited = _targets(
        session, institution_id=institution_id, channel=chosen, segment=segment
    )
    institution = institutions_repository.require_by_id(session, institution_id)
    debtors = _by_id(session, Debtor, {account.debtor_id for account, _ in targets})
    decisions = gate_service.recheck(
        session,
        institution=institution,
        checks=[
            SendCheck(
                debtor=debtors[account.debtor_id],
                contact_point=point,
                account=account,
                channel=chosen,
                decision_id=0,
            )
            for account, point in targets
        ],
        at=now or utcnow(),
    )
    blocked = sum(1 for decision in decisions if not decision.allowed)
    return CampaignPreview(
        accounts=accounts, reachable=len(targets), blocked=blocked, limited=limited
    )


def send_campaign(
    session: Session,
    *,
    principal: Principal,
    institution_id: int,
    name: str,
    channel: Channel | str,
    template_id: int,
    segment: Segment,
    now: datetime | None = None,
) -> OutboxCampaign:
    """Store a campaign of one approved template to a segment and enqueue the job that queues
    its messages (``outbox.queue_campaign``); the campaign shows "queueing" until it is done."""
    acting(principal, institution_id)
    name = name.strip()
    if not name or len(name) > 128:
        raise ValidationFailed("'name' is 1–128 characters, e.g. M1 reminder March")
    chosen, template = _campaign_template(
        session, institution_id=institution_id, channel=channel, template_id=template_id
    )
    total = repository.count_segment_accounts(
        session,
        institution_id=institution_id,
        buckets=segment.buckets,
        segments=segment.segments,
        grades=segment.grades,
    )
    campaign = repository.add_campaign(
        session,
        OutboxCampaign(
            institution_id=institution_id,
            name=name,
            channel=chosen,
            template_id=template.id,
            segment=segment.as_dict(),
            status=CampaignStatus.QUEUEING,
            total=total,
            progress=0,
            last_account_id=0,
            blocked_by_rule={},
            created_by=principal.actor[:128],
        ),
    )
    jobs.enqueue(
        session,
        "outbox.queue_campaign",
        {"institution_id": institution_id, "campaign_id": campaign.id},
        idempotency_key=f"campaign:{campaign.id}",
        institution_id=institution_id,
        at=now,
    )
    audit.record(
        session,
        actor=principal.actor,
        action="outbox.campaign_sent",
        object_type="outbox_campaign",
        object_id=campaign.id,
        institution_id=institution_id,
        details={
            "channel": chosen.value,
            "template_id": template.id,
            "segment": segment.as_dict(),
            "accounts": total,
        },
    )
    return campaign


def queue_campaign_batch(
    session: Session,
    *,
    institution_id: int,
    campaign_id: int,
    limit: int = CAMPAIGN_BATCH,
    now: datetime | None = None,
) -> bool:
    """Queue the next ``limit`` accounts of a campaign's segment; return True once it is done.

    The accounts after the last one done are read by id, each debtor's own point of the
    channel found, the gate asked for the batch at once (``precheck_contacts``; one refused
    only for the hour is asked again at its next allowed time, within the channel's expiry),
    the allowed messages rendered and inserted in bulk with a key of (campaign, account) and a
    dispatch job enqueued. The campaign's counts, blocked-by-rule tally and place move in the
    same transaction: a job killed before its commit redoes the batch, one killed after goes
    on from the next, and no key queues twice.
    """
    now = now or utcnow()
    campaign = repository.get_campaign(
        session, institution_id=institution_id, campaign_id=campaign_id, lock=True
    )
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    if campaign.status == CampaignStatus.QUEUED:
        return True
    institution = institutions_repository.require_by_id(session, institution_id)
    channel, template = _campaign_template(
        session,
        institution_id=institution_id,
        channel=str(campaign.channel),
        template_id=campaign.template_id,
    )
    segment = campaign.segment or {}
    accounts = repository.segment_accounts(
        session,
        institution_id=institution_id,
        buckets=segment.get("bucket", []),
        segments=segment.get("segment", []),
        grades=segment.get("grade", []),
        limit=limit,
        after=campaign.last_account_id,
    )
    if not accounts:
        campaign.status = CampaignStatus.QUEUED
        campaign.total = campaign.progress
        session.flush()
        audit.record(
            session,
            actor=SYSTEM_ACTOR,
            action="outbox.campaign_queued",
            object_type="outbox_campaign",
            object_id=campaign.id,
            institution_id=institution_id,
            details={
                "queued": campaign.queued,
                "blocked": campaign.blocked,
                "skipped": campaign.skipped,
                "blocked_by_rule": dict(campaign.blocked_by_rule or {}),
            },
        )
        return True
    points = repository.own_points(
        session,
        institution_id=institution_id,
        debtor_ids={account.debtor_id for account in accounts},
        kinds=CHANNELS[channel].contact_kinds,
    )
    targets = [account for account in accounts if account.debtor_id in points]
    taken = repository.existing_keys(
        session,
        institution_id=institution_id,
        keys={rules.campaign_key(campaign.id, account.id) for account in targets},
    )
    targets = [a for a in targets if rules.campaign_key(campaign.id, a.id) not in taken]
    decisions = _precheck(
        session,
        institution=institution,
        targets=[(a, now) for a in targets],
        points=points,
        channel=channel,
    )
    expire_after = timedelta(hours=settings_of(institution).channels.expire_after_hours)

    def ask_again(moved: list[tuple[int, datetime]]) -> None:
        """Put in place the gate's decisions about the contacts moved to the given moments."""
        again = _precheck(
            session,
            institution=institution,
            targets=[(targets[index], moment) for index, moment in moved],
            points=points,
            channel=channel,
        )
        for (index, _at), decided in zip(moved, again, strict=True):
            decisions[index] = decided

    later: list[tuple[int, datetime]] = []
    for index, decided in enumerate(decisions):
        moment = decided.decision.next_allowed_at
        if not decided.decision.allowed and moment is not None and moment <= now + expire_after:
            later.append((index, moment))
    if later:
        # Outside the hours now: asked again for the first allowed moment, as one message is.
        ask_again(later)
    quiet = _quiet(settings_of(institution).channels, channel)
    hushed: list[tuple[int, datetime]] = []
    for index, decided in enumerate(decisions):
        if not decided.decision.allowed:
            continue
        end = rules.quiet_end(
            quiet,
            at=decided.decision.at,
            timezones=decided.decision.timezones,
            institution_zone=institution.timezone,
        )
        if end is not None and end <= now + expire_after:
            hushed.append((index, end))
    if hushed:
        # In the institution's own quiet hours: queued for when they end (the dispatcher would
        # hold them until then anyway), on decisions asked for that moment.
        gate_service.release(
            session,
            institution_id=institution_id,
            decision_ids=[decisions[index].decision_id for index, _ in hushed],
            actor=SYSTEM_ACTOR,
        )
        ask_again(hushed)
    blocked = [d.decision.rule_ids for d in decisions if not d.decision.allowed]
    result = queue_planned_messages(
        session,
        institution=institution,
        planned=[
            PlannedSend(
                key=rules.campaign_key(campaign.id, account.id),
                debtor_id=account.debtor_id,
                account_id=account.id,
                channel=channel.value,
                template=template.name,
                decision_id=decided.decision_id,
                scheduled_at=decided.decision.at,
            )
            for account, decided in zip(targets, decisions, strict=True)
            if decided.decision.allowed
        ],
        actor=campaign.created_by,
        dispatch_key=f"campaign:{campaign.id}:{accounts[-1].id}",
        now=now,
        template=template,
        campaign_id=campaign.id,
    )
    unreachable = result.not_queued.get("no_contact_point", 0)
    refused = {k: v for k, v in result.not_queued.items() if k != "no_contact_point"}
    campaign.queued += result.queued
    campaign.blocked += len(blocked) + sum(refused.values())
    campaign.skipped += len(accounts) - len(targets) - len(taken) + unreachable
    campaign.blocked_by_rule = rules.add_blocked(
        campaign.blocked_by_rule or {},
        [*blocked, *([reason] for reason, count in refused.items() for _ in range(count))],
    )
    campaign.progress += len(accounts)
    campaign.total = max(campaign.total, campaign.progress)
    campaign.last_account_id = accounts[-1].id
    session.flush()
    return False


def _precheck(
    session: Session,
    *,
    institution: Institution,
    targets: Sequence[tuple[Account, datetime]],
    points: Mapping[int, ContactPoint],
    channel: Channel,
) -> list[gate_service.BatchDecision]:
    """Ask the gate about each account's contact at its time, at the debtor's point, at once."""
    region = gate_service.gate_for(session, institution=institution).pack.jurisdiction
    zones: dict[int, str | None] = {}
    attempts = []
    for account, at in targets:
        point = points[account.debtor_id]
        if point.id not in zones:
            zones[point.id] = facts_service.contact_point_zone(point, region)
        attempts.append(
            PlannedContact(
                debtor_id=str(account.debtor_id),
                channel=channel,
                at=at,
                party=Party.DEBTOR,
                account_id=str(account.id),
                contact_point_timezone=zones[point.id],
                to_mobile=point.kind == ContactKind.mobile,
                automated=CHANNELS[channel].automated,
            )
        )
    return gate_service.precheck_contacts(
        session,
        institution=institution,
        attempts=attempts,
        actor=SYSTEM_ACTOR,
        contact_points={account.debtor_id: points[account.debtor_id].id for account, _ in targets},
    )


def campaign_blocked(campaign: OutboxCampaign) -> list[tuple[str, int]]:
    """Return a campaign's blocked contacts per rule (or reason), the most first."""
    counts = campaign.blocked_by_rule or {}
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def approved_templates(
    session: Session, *, institution_id: int, channels: Sequence[str]
) -> list[MessageTemplate]:
    """Return the institution's approved templates of the given channels, not due for re-review."""
    institution = institutions_repository.require_by_id(session, institution_id)
    return repository.approved_templates(
        session,
        institution_id=institution_id,
        channels=channels,
        today=clock.local_today(institution.timezone),
    )


def outbox_overview(
    session: Session, *, principal: Principal, institution_id: int, campaign_id: int | None = None
) -> tuple[dict[str, int], list[OutboxCampaign]]:
    """Return how many messages (of one campaign, or all) are in each status and the latest
    campaigns."""
    acting(principal, institution_id)
    return (
        repository.status_counts(session, institution_id=institution_id, campaign_id=campaign_id),
        repository.campaigns(session, institution_id=institution_id),
    )


def campaign_counts(
    session: Session, *, institution_id: int, campaign_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Return how many of each campaign's messages are in each status (sent, delivered …)."""
    return repository.status_counts_by_campaign(
        session, institution_id=institution_id, campaign_ids=campaign_ids
    )


def receipts_of(
    session: Session, *, institution_id: int, message_ids: Sequence[int]
) -> dict[int, list[OutboxReceipt]]:
    """Return the receipts of messages, oldest first."""
    return repository.receipts_of(session, institution_id=institution_id, message_ids=message_ids)
