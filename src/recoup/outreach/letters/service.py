"""Letters: queued through the gate as outbox messages, printed as one PDF a day (never commits).

A letter is an outbox message of channel ``letter``: queueing asks the gate (letter channel)
and renders an approved letter template; the dispatcher asks the gate again and releases it
to the print queue (its status becomes ``sent``). The day's print batch is every letter
released that day (institution time), as one PDF and a manifest CSV.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.contact.channels import Channel
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.institutions.settings import settings_of
from recoup.kit.clock import local_today, utcnow, zone
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.models.account import Account
from recoup.models.compliance import MessageTemplate
from recoup.models.debtor import Debtor
from recoup.models.institution import Institution
from recoup.models.outbox import OutboxMessage
from recoup.outbox import rules as outbox_rules
from recoup.outbox import service as outbox_service
from recoup.outreach import repository
from recoup.outreach import service as outreach
from recoup.outreach.letters import pdf, rules

RELEASED = ("sent", "delivered")
WAITING = ("queued", "sending")
# Letters are queued for this institution-local time of their day (the print run's morning).
LETTER_TIME = time(9, 0)


def queue_letter(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    debtor_id: int,
    template_id: int,
    account_id: int | None = None,
    day: date | None = None,
    now: datetime | None = None,
) -> outbox_service.Queued:
    """Queue a letter to the debtor's own address from an approved letter template.

    Without ``account_id`` the letter is about the debtor's open account with the largest
    balance. The gate decides on the letter channel; a refused letter queues nothing and the
    result carries the rules. The same debtor, template, account and day again is the same
    letter.
    """
    now = now or utcnow()
    day = day or local_today(institution.timezone, now=now)
    scope = outreach.institution_scope_of(principal, institution)
    debtor = get_scoped(session, Debtor, debtor_id, scope)
    if account_id is not None:
        account = get_scoped(session, Account, account_id, scope)
        if account.debtor_id != debtor.id:
            raise NotFound(f"no account {account_id} for debtor {debtor_id}")
    else:
        largest = repository.largest_open_account(
            session, institution_id=institution.id, debtor_id=debtor.id
        )
        account_id = largest.id if largest is not None else None
    template = session.get(MessageTemplate, template_id)
    if template is None or template.institution_id != institution.id:
        raise NotFound(f"no template {template_id}")
    addresses = repository.own_contact_points(
        session, institution_id=institution.id, debtor_ids=[debtor.id], kinds=("address",)
    ).get(debtor.id, [])
    if not addresses:
        raise ValidationFailed(
            f"debtor_id: debtor {debtor.external_id} has no usable address to send a letter to"
        )
    # The letter is the day's, whenever in the day (or after it) it is asked for: keyed by the
    # day's letter time, not by when it is planned, which is "now" once that time has passed.
    letter_time = datetime.combine(day, LETTER_TIME, tzinfo=zone(institution.timezone))
    key = outbox_rules.idempotency_key(
        institution.id,
        debtor.id,
        addresses[0].id,
        Channel.LETTER.value,
        template_id,
        account_id,
        letter_time.isoformat(),
        None,
    )
    return outbox_service.queue_message(
        session,
        institution_id=institution.id,
        debtor_id=debtor.id,
        contact_point_id=addresses[0].id,
        channel=Channel.LETTER,
        template_id=template_id,
        actor=principal.actor,
        account_id=account_id,
        scheduled_at=outreach.planned_at(institution, day=day, start=LETTER_TIME, now=now),
        idempotency_key=key,
        principal=principal,
        now=now,
    )


def debtor_for_reference(
    session: Session, *, principal: Principal, institution: Institution, reference: str
) -> int:
    """Return the id of the debtor a person named: by reference (external id) or by id."""
    reference = reference.strip()
    found = repository.debtor_by_external_id(
        session, institution_id=institution.id, external_id=reference
    )
    if found is not None:
        return get_scoped(
            session, Debtor, found.id, outreach.institution_scope_of(principal, institution)
        ).id
    if reference.isdigit() and 0 < int(reference) < 2**63:
        return int(reference)
    raise ValidationFailed(
        f"debtor: no debtor {reference!r} here; give the debtor's reference (e.g. D00000001) or id"
    )


def _span(institution: Institution, day: date) -> tuple[datetime, datetime]:
    start = outreach.work_day_start(institution, day, time(0, 0))
    return start, start + timedelta(days=1)


def released_letters(
    session: Session, *, institution: Institution, day: date
) -> list[OutboxMessage]:
    """Return the letters released to print on ``day`` (institution time), in print order."""
    start, end = _span(institution, day)
    return repository.letters_between(
        session,
        institution_id=institution.id,
        start=start,
        end=end,
        statuses=RELEASED,
        by_sent=True,
    )


def waiting_letters(
    session: Session, *, institution: Institution, day: date
) -> list[OutboxMessage]:
    """Return the letters due on ``day`` that the dispatcher has not released yet."""
    start, end = _span(institution, day)
    return repository.letters_between(
        session,
        institution_id=institution.id,
        start=start,
        end=end,
        statuses=WAITING,
        by_sent=False,
    )


def contents(
    session: Session, *, institution: Institution, messages: list[OutboxMessage], day: date
) -> list[rules.LetterContent]:
    """Return what is printed on each letter: letterhead, recipient and the rendered body."""
    settings = settings_of(institution).outreach
    debtors = repository.debtors_by_id(
        session, institution_id=institution.id, ids=sorted({m.debtor_id for m in messages})
    )
    points = repository.contact_points_by_id(
        session, ids=sorted({m.contact_point_id for m in messages})
    )
    templates = {
        template_id: session.get(MessageTemplate, template_id)
        for template_id in {m.template_id for m in messages}
    }
    letters = []
    for message in messages:
        template = templates[message.template_id]
        locale, title = rules.title_for(
            str(institution.jurisdiction),
            validation_notice=template is not None and template.kind == "validation_notice",
        )
        point = points.get(message.contact_point_id)
        letters.append(
            rules.LetterContent(
                message_id=message.id,
                locale=locale,
                sender_name=settings.letter_sender_name or institution.name,
                sender_address=settings.letter_sender_address,
                sender_phone=settings.letter_sender_phone,
                recipient_name=debtors[message.debtor_id].name,
                recipient_address=point.value if point is not None else "",
                day=day,
                title=title,
                body=message.body,
                reference=f"{institution.code}-L{message.id}",
            )
        )
    return letters


@dataclass(frozen=True, slots=True)
class Batch:
    """A day's print file and its manifest."""

    day: date
    pdf: bytes
    manifest: str
    letters: int
    pages: int

    @property
    def filename(self) -> str:
        return f"letters-{self.day.isoformat()}"


def print_batch(
    session: Session, *, principal: Principal, institution: Institution, day: date
) -> Batch:
    """Return the day's print file: every released letter in one PDF, with a manifest (audited)."""
    messages = released_letters(session, institution=institution, day=day)
    letters = contents(session, institution=institution, messages=messages, day=day)
    document, pages = pdf.render(letters, title=f"{institution.code} letters {day.isoformat()}")
    accounts = repository.accounts_by_id(
        session, ids=sorted({m.account_id for m in messages if m.account_id is not None})
    )
    debtors = repository.debtors_by_id(
        session, institution_id=institution.id, ids=sorted({m.debtor_id for m in messages})
    )
    rows: list[dict[str, object]] = []
    first_page = 1
    for sequence, (message, count) in enumerate(zip(messages, pages, strict=True), start=1):
        account = accounts.get(message.account_id or 0)
        rows.append(
            {
                "sequence": sequence,
                "message_id": message.id,
                "first_page": first_page,
                "pages": count,
                "debtor_ref": debtors[message.debtor_id].external_id,
                "account_ref": account.external_id if account else "",
                "template_id": message.template_id,
                "template_version": message.template_version,
                "decision_id": message.decision_id,
                "sent_at": message.sent_at.isoformat() if message.sent_at else "",
            }
        )
        first_page += count
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rules.manifest_rows(rows))
    audit.record(
        session,
        actor=principal.actor,
        action="outreach.letters_printed",
        object_type="institution",
        object_id=institution.id,
        institution_id=institution.id,
        details={"day": day.isoformat(), "letters": len(messages), "pages": sum(pages)},
    )
    return Batch(
        day=day, pdf=document, manifest=buffer.getvalue(), letters=len(messages), pages=sum(pages)
    )
