"""The sandbox provider (demo only): the dispatcher sends through it like through a real
provider, and its delivery receipts — most delivered, a share failed or wrong numbers — come
back through the receipt code the providers' callbacks use."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode
from recoup.identity.scoping import institution_scope
from recoup.institutions.settings import ChannelSettings
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import ContactPoint
from recoup.models.outbox import OutboxMessage, OutboxReceipt
from recoup.outbox import dispatch, rules, service, tasks
from recoup.outbox.adapters.factory import adapter_for
from recoup.outbox.adapters.sandbox import SandboxProvider
from recoup.outbox.rules import OutboxStatus
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.outbox.helpers import approved_template, set_channels
from tests.outbox.test_service import at

COUNT = 80


def test_the_sandbox_is_never_the_default() -> None:
    defaults = ChannelSettings()
    assert (defaults.sms_provider, defaults.email_provider) == ("log", "log")
    chosen = ChannelSettings(sms_provider="sandbox", email_provider="sandbox")
    for channel in (Channel.SMS, Channel.EMAIL):
        assert isinstance(adapter_for(channel, chosen, institution_code="X"), SandboxProvider)
        assert not isinstance(adapter_for(channel, defaults, institution_code="X"), SandboxProvider)


def test_fates_are_fixed_per_message_and_mostly_delivered() -> None:
    ids = [rules.sandbox_message_id("sms", f"key-{n}") for n in range(20_000)]
    assert rules.sandbox_message_id("sms", "key-1") == ids[1]
    fates = Counter(rules.sandbox_fate(each, "sms") for each in ids)
    assert [rules.sandbox_fate(ids[7], "sms")] * 2 == [rules.sandbox_fate(ids[7], "sms")] * 2
    share = {fate: count / len(ids) for fate, count in fates.items()}
    assert 0.86 < share[("delivered", None)] < 0.90
    assert 0.05 < share[("undelivered", "30003")] < 0.09
    assert 0.03 < share[("undelivered", "30006")] < 0.07
    emails = Counter(rules.sandbox_fate(rules.sandbox_message_id("email", str(n)), "email")
                     for n in range(20_000))  # fmt: skip
    assert set(emails) == {("delivered", None), ("failed", "452"), ("bounced", "550")}
    assert 0.90 < emails[("delivered", None)] / 20_000 < 0.94


def _queued(session: Session) -> tuple[int, list[OutboxMessage]]:
    institution = make_institution(session)
    set_channels(
        session, institution, quiet_start=None, quiet_end=None, sms_provider="sandbox",
        email_provider="sandbox",
    )  # fmt: skip
    template = approved_template(session, institution)
    messages = []
    for number in range(COUNT):
        debtor = make_debtor(session, institution, name=f"李{number}")
        phone = make_contact_point(session, debtor, value=f"1390000{number:04d}")
        account = make_account(session, debtor)
        queued = service.queue_message(
            session, institution_id=institution.id, debtor_id=debtor.id,
            contact_point_id=phone.id, account_id=account.id, channel=Channel.SMS,
            template_id=template.id, actor="manager", scheduled_at=at(10), now=at(10),
        )  # fmt: skip
        assert queued.message is not None
        messages.append(queued.message)
    return institution.id, messages


def test_receipts_arrive_through_the_receipt_path(session: Session) -> None:
    institution_id, messages = _queued(session)
    report = dispatch.dispatch(session, now=at(10, 1), institution_id=institution_id)
    assert report.counts == {"sent": COUNT}
    for message in messages:
        session.refresh(message)
        assert (message.status, message.provider) == (OutboxStatus.SENT, "sandbox")
        assert (message.provider_message_id or "").startswith(rules.SANDBOX_PREFIX)

    # Not yet: a receipt comes a little while after the send.
    assert service.deliver_sandbox_receipts(session, now=at(10, 1) + timedelta(seconds=5)) == {}
    counts = service.deliver_sandbox_receipts(session, now=at(10, 2))
    assert sum(counts.values()) == COUNT
    assert counts["delivered"] >= COUNT * 0.75
    assert counts.get("undelivered", 0) >= 1

    statuses: Counter[str] = Counter()
    wrong_numbers = 0
    for message in messages:
        session.refresh(message)
        statuses[str(message.status)] += 1
        final, code = rules.sandbox_fate(message.provider_message_id or "", "sms")
        expected = OutboxStatus.DELIVERED if final == "delivered" else OutboxStatus.FAILED
        assert message.status == expected
        receipts = session.scalars(
            select(OutboxReceipt.provider_status).where(OutboxReceipt.message_id == message.id)
        ).all()
        assert sorted(receipts) == sorted(["sent", final])
        attempt = session.scalar(
            select(ContactAttempt).where(ContactAttempt.decision_id == message.decision_id)
        )
        assert attempt is not None
        point = session.get(ContactPoint, message.contact_point_id)
        assert point is not None
        if final == "delivered":
            assert attempt.outcome == OutcomeCode.MESSAGE_DELIVERED
        elif code in rules.INVALID_NUMBER_CODES:
            wrong_numbers += 1
            assert attempt.outcome == OutcomeCode.WRONG_NUMBER
            assert point.status == "invalid"
        else:
            assert attempt.outcome == OutcomeCode.MESSAGE_FAILED
            assert point.status == "valid"
    assert statuses["delivered"] == counts["delivered"]
    assert statuses["failed"] == COUNT - counts["delivered"]
    assert wrong_numbers == sum(
        1
        for m in messages
        if rules.sandbox_fate(m.provider_message_id or "", "sms")[1] in rules.INVALID_NUMBER_CODES
    )

    # Once only: the job finds nothing left to answer.
    tasks.sandbox_receipts(session, {"institution_id": institution_id})
    assert service.deliver_sandbox_receipts(session, now=at(11)) == {}
    assert session.scalar(
        select(OutboxReceipt.id).where(OutboxReceipt.institution_id == institution_id).limit(1)
    )
    total = len(
        session.scalars(
            select(OutboxReceipt.id).where(OutboxReceipt.institution_id == institution_id)
        ).all()
    )
    assert total == 2 * COUNT


def test_a_campaign_counts_its_deliveries_and_failures(session: Session) -> None:
    institution = make_institution(session)
    set_channels(session, institution, quiet_start=None, quiet_end=None, sms_provider="sandbox")
    template = approved_template(session, institution)
    for number in range(COUNT):
        debtor = make_debtor(session, institution, name=f"王{number}")
        make_contact_point(session, debtor, value=f"1370000{number:04d}")
        make_account(session, debtor, days_past_due=35)
    campaign = service.send_campaign(
        session, principal=institution_scope(institution.id, actor="manager"),
        institution_id=institution.id, name="M2", channel="sms", template_id=template.id,
        segment=service.Segment(), now=at(10),
    )  # fmt: skip
    assert campaign.queued == 0
    assert campaign.total == COUNT
    while not service.queue_campaign_batch(
        session, institution_id=institution.id, campaign_id=campaign.id, now=at(10)
    ):
        pass
    assert campaign.queued == COUNT
    dispatch.dispatch(session, now=at(10, 1), institution_id=institution.id)
    assert service.campaign_counts(
        session, institution_id=institution.id, campaign_ids=[campaign.id]
    ) == {campaign.id: {"sent": COUNT}}
    final = service.deliver_sandbox_receipts(session, now=at(10, 2))
    tally = service.campaign_counts(
        session, institution_id=institution.id, campaign_ids=[campaign.id]
    )[campaign.id]
    assert tally == {"delivered": final["delivered"], "failed": COUNT - final["delivered"]}
    assert 0 < tally["failed"] < tally["delivered"]
