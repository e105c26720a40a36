"""Small builders for contact-gate tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from recoup.compliance.gate.rules import (
    ContactHistory,
    DebtorFacts,
    Decision,
    PastContact,
    PlannedContact,
    decide_contact,
)
from recoup.compliance.policy.rules import Policy
from recoup.compliance.rulepack import load_pack
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
HONOLULU = ZoneInfo("Pacific/Honolulu")
ANCHORAGE = ZoneInfo("America/Anchorage")
CN = load_pack("CN")
US = load_pack("US")


def at(tz: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    """Return an aware local datetime."""
    return datetime(*parts, tzinfo=tz, fold=fold)  # type: ignore[misc]


def planned(
    moment: datetime,
    channel: Channel = Channel.CALL,
    *,
    party: Party = Party.DEBTOR,
    debtor_id: str = "d1",
    account_id: str | None = "a1",
    **extra: object,
) -> PlannedContact:
    """Return a planned contact."""
    return PlannedContact(
        debtor_id=debtor_id,
        channel=channel,
        at=moment,
        party=party,
        account_id=account_id,
        **extra,  # type: ignore[arg-type]
    )


def past(
    moment: datetime,
    channel: Channel = Channel.CALL,
    *,
    outcome: OutcomeCode = OutcomeCode.RIGHT_PARTY,
    effective: bool = True,
    party: Party = Party.DEBTOR,
    account_id: str | None = "a1",
    **extra: object,
) -> PastContact:
    """Return a past contact."""
    return PastContact(
        at=moment,
        channel=channel,
        outcome=outcome,
        effective=effective,
        party=party,
        account_id=account_id,
        **extra,  # type: ignore[arg-type]
    )


def decide(
    attempt: PlannedContact,
    *,
    pack: object = CN,
    policy: Policy | None = None,
    history: tuple[PastContact, ...] = (),
    facts: DebtorFacts | None = None,
    timezones: tuple[str, ...] = (),
) -> Decision:
    """Decide with sensible defaults."""
    facts = facts or DebtorFacts(debtor_id=attempt.debtor_id, timezones=timezones)
    return decide_contact(
        attempt,
        facts=facts,
        history=ContactHistory(attempts=history),
        pack=pack,  # type: ignore[arg-type]
        policy=policy,
    )
