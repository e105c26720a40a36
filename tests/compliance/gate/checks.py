"""Ask the stored gate in tests: a call by default, at a Shanghai wall-clock time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from recoup.compliance.gate import service as gate_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def check(session: Session, debtor, at: datetime, **extra: object) -> gate_service.CheckedContact:
    values: dict[str, object] = {"channel": Channel.CALL, "party": Party.DEBTOR, "actor": "tester"}
    values.update(extra)
    return gate_service.check_contact(
        session,
        institution_id=debtor.institution_id,
        debtor_id=debtor.id,
        at=at,
        now=NOW,
        **values,  # type: ignore[arg-type]
    )
