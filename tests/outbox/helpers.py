"""Shared test pieces for the outbox: an approved template and an adapter that records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from recoup.compliance.templates import service as templates_service
from recoup.institutions import service as institutions_service
from recoup.models import Institution
from recoup.models.compliance import MessageTemplate
from recoup.outbox.adapters.base import Accepted, OutgoingMessage
from recoup.outbox.rules import Permanent, Transient
from tests.identity.helpers import make_user

SMS_BODY = "{{ debtor_name }}您好，您尾号{{ account_number }}的账户逾期{{ overdue_amount }}元，请及时还款。"
US_SMS_BODY = (
    "Hello {{ debtor_name }}, this is a message from a debt collector about account "
    "{{ account_number }}. Reply STOP to opt out."
)
EMAIL_BODY = "Dear {{ debtor_name }}, your account {{ account_number }} is overdue by {{ overdue_amount }} {{ currency }}."


def approved_template(
    session: Session,
    institution: Institution,
    *,
    channel: str = "sms",
    body: str | None = None,
    locale: str = "zh-CN",
    today: date | None = None,
) -> MessageTemplate:
    """Draft, submit and approve (four eyes) a template."""
    author = make_user(session, institution, role="manager")
    reviewer = make_user(session, institution, role="compliance_officer")
    template = templates_service.create_template(
        session,
        institution_id=institution.id,
        name="reminder",
        channel=channel,
        locale="en-US" if institution.jurisdiction == "US" else locale,
        audience="debtor",
        body=body or _default_body(institution, channel),
        author=author.username,
        author_id=author.id,
    )
    templates_service.submit_template(
        session, institution_id=institution.id, template_id=template.id,
        actor=author.username, actor_id=author.id,
    )  # fmt: skip
    return templates_service.decide_template(
        session, institution_id=institution.id, template_id=template.id, approve=True,
        actor=reviewer.username, actor_id=reviewer.id, today=today,
    )  # fmt: skip


def _default_body(institution: Institution, channel: str) -> str:
    if channel == "email":
        if institution.jurisdiction == "US":
            return "This is a communication from a debt collector. " + EMAIL_BODY + " {{ opt_out }}"
        return EMAIL_BODY
    return US_SMS_BODY if institution.jurisdiction == "US" else SMS_BODY


def set_channels(session: Session, institution: Institution, **values: object) -> None:
    """Change the institution's channel settings."""
    institutions_service.update_settings(
        session, institution=institution, changes={"channels": values}, actor="test"
    )


@dataclass
class RecordingAdapter:
    """An adapter that accepts (or fails) and remembers what it was given."""

    name: str = "recording"
    fail_with: Exception | None = None
    sent: list[OutgoingMessage] = field(default_factory=list)

    def send(self, message: OutgoingMessage) -> Accepted:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
        return Accepted(f"P-{len(self.sent)}", "sent")

    def lookup(self, message: OutgoingMessage) -> Accepted | None:
        for index, sent in enumerate(self.sent, 1):
            if sent.key == message.key:
                return Accepted(f"P-{index}", "sent")
        return None

    def close(self) -> None:
        return None


__all__ = ["Permanent", "RecordingAdapter", "Transient", "approved_template", "set_channels"]
