"""Call lists: built through the gate, exported for a dialer, results reported (never commits)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime

import phonenumbers
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.identity.principal import Principal
from recoup.institutions.settings import settings_of
from recoup.kit.clock import local_today, utcnow
from recoup.kit.errors import PermissionDenied, ValidationFailed
from recoup.kit.masking import mask_text
from recoup.models.institution import Institution
from recoup.models.outreach import ContactReport, WorkList
from recoup.outreach import repository
from recoup.outreach import service as outreach
from recoup.outreach.dialer import rules

MIN_REASON_LENGTH = 5


def dialable(value: str, *, region: str) -> str:
    """Return a phone number in E.164 when it can be read in ``region``, else its digits."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return "".join(character for character in value if character.isdigit() or character == "+")


def build_call_list(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    agent_id: int | None = None,
    queue_code: str | None = None,
    day: date | None = None,
    now: datetime | None = None,
) -> tuple[WorkList, list[outreach.EntryView]]:
    """Build a call list for an agent or a queue, every number put to the gate (a dry run)."""
    now = now or utcnow()
    day = day or local_today(institution.timezone, now=now)
    target = outreach.list_target(
        session,
        principal=principal,
        institution=institution,
        agent_id=agent_id,
        queue_code=queue_code,
    )
    work_list, entries = outreach.build_work_list(
        session,
        institution=institution,
        kind="call",
        target=target,
        day=day,
        at=outreach.planned_at(institution, day=day, start=outreach.CALL_DAY_START, now=now),
        actor=principal.actor,
    )
    return work_list, outreach.entry_views(session, institution_id=institution.id, entries=entries)


def call_list(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    list_id: int | None = None,
) -> tuple[WorkList | None, list[outreach.EntryView]]:
    """Return a call list the caller may see (their newest without ``list_id``) with its entries."""
    return outreach.shown_list(
        session, principal=principal, institution=institution, kind="call", list_id=list_id
    )


@dataclass(frozen=True, slots=True)
class Export:
    """A call list as dialer CSV, and how many rows it holds."""

    filename: str
    text: str
    rows: int
    revealed: bool


def export_call_list(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    list_id: int,
    reveal_reason: str | None = None,
) -> Export:
    """Return the allowed entries of a call list as dialer CSV (audited).

    Numbers are masked unless ``reveal_reason`` is given by a caller who may reveal PII; the
    reveal is audited with its reason. Blocked entries are never exported.
    """
    work_list, views = call_list(
        session, principal=principal, institution=institution, list_id=list_id
    )
    assert work_list is not None
    revealed = reveal_reason is not None
    if revealed:
        if not principal.can("pii:reveal"):
            raise PermissionDenied("your role may not reveal phone numbers; export masked")
        reveal_reason = " ".join((reveal_reason or "").split())
        if len(reveal_reason) < MIN_REASON_LENGTH:
            raise ValidationFailed(
                "reason: say why the dialer needs the numbers (at least 5 characters)"
            )
    region = str(institution.jurisdiction)[:2]
    agents = {
        user.id: user.username for user in repository.agents(session, institution_id=institution.id)
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(rules.CSV_COLUMNS)
    rows = 0
    for view in views:
        if not view.entry.allowed or view.contact_point is None:
            continue
        point = view.contact_point
        phone = (
            dialable(point.value, region=region) if revealed else mask_text(point.value, point.kind)
        )
        writer.writerow(
            rules.csv_row(
                {
                    "entry_id": view.entry.id,
                    "position": view.entry.position,
                    "case_id": view.entry.case_id,
                    "debtor_ref": view.debtor.external_id,
                    "account_ref": view.account.external_id if view.account else "",
                    "phone": phone,
                    "phone_kind": point.kind,
                    "timezone": point.timezone or view.debtor.timezone,
                    "balance": f"{view.entry.balance / 100:.2f}",
                    "currency": view.entry.currency,
                    "agent": agents.get(work_list.agent_id or 0, ""),
                }
            )
        )
        rows += 1
    details: dict[str, object] = {"rows": rows, "revealed": revealed}
    if revealed:
        details["reason"] = reveal_reason
    audit.record(
        session,
        actor=principal.actor,
        action="outreach.call_list_exported",
        object_type="work_list",
        object_id=work_list.id,
        institution_id=institution.id,
        details=details,
    )
    return Export(
        filename=f"call-list-{work_list.id}-{work_list.work_day.isoformat()}.csv",
        text=buffer.getvalue(),
        rows=rows,
        revealed=revealed,
    )


def sip_template(institution: Institution) -> str | None:
    """Return the institution's SIP URI template for click-to-call (None: tel: links only)."""
    return settings_of(institution).outreach.sip_uri_template


def report_call(
    session: Session,
    *,
    principal: Principal,
    institution: Institution,
    given: outreach.ReportInput,
    now: datetime | None = None,
) -> tuple[ContactReport, bool]:
    """Record a dialer's call result (idempotent by the dialer's call id)."""
    return outreach.record_report(
        session,
        principal=principal,
        institution=institution,
        kind="call",
        given=given,
        now=now,
    )
