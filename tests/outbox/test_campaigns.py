"""Campaigns queue in a job, set-based: the same messages and gate decisions as one message at
a time, each account once however often the job runs, progress and blocked counts per rule."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import AttemptStatus, ConsentKind
from recoup.identity.scoping import institution_scope
from recoup.kit import jobs
from recoup.kit.clock import aware
from recoup.kit.errors import ValidationFailed
from recoup.models import Institution
from recoup.models.account import Account
from recoup.models.compliance import ContactDecision
from recoup.models.contact import ContactAttempt
from recoup.models.jobs import Job
from recoup.models.outbox import OutboxCampaign, OutboxMessage
from recoup.outbox import repository, rules, service
from recoup.outbox.rules import CampaignStatus
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.outbox.helpers import approved_template, set_channels
from tests.outbox.test_service import at


def _book(session: Session, size: int) -> tuple[Institution, int]:
    """An institution with ``size`` debtors: most reachable by SMS, some without a phone, some
    who asked not to be contacted, some whose phone opted out of texts, some with two
    accounts."""
    institution = make_institution(session)
    set_channels(session, institution, quiet_start=None, quiet_end=None)
    template = approved_template(session, institution)
    for number in range(size):
        debtor = make_debtor(session, institution, name=f"王{number}")
        if number % 10 != 3:
            point = make_contact_point(session, debtor, value=f"137{number:08d}")
            if number % 20 == 9:
                contact_service.record_consent(
                    session, contact_point=point, channel=Channel.SMS,
                    kind=ConsentKind.OPT_OUT, actor="test", source="replied TD",
                )  # fmt: skip
        if number % 10 == 5:
            debtor.cease_contact = True
        make_account(session, debtor, days_past_due=35)
        if number % 10 == 7:
            make_account(session, debtor, days_past_due=40)
    session.flush()
    return institution, template.id


def _send(session: Session, institution: Institution, template_id: int, when: datetime) -> Any:
    return service.send_campaign(
        session, principal=institution_scope(institution.id, actor="manager"),
        institution_id=institution.id, name="M2 reminder", channel="sms",
        template_id=template_id, segment=service.Segment(), now=when,
    )  # fmt: skip


def _run_job(session: Session, campaign: OutboxCampaign) -> None:
    """Run the campaign's queueing job the way a worker does (its handler, its payload)."""
    job = session.execute(
        select(Job).where(
            Job.name == "outbox.queue_campaign", Job.idempotency_key == f"campaign:{campaign.id}"
        )
    ).scalar_one()
    jobs.job_type(job.name).run(session, dict(job.payload))


def _messages(session: Session, campaign_id: int) -> dict[int, OutboxMessage]:
    rows = session.execute(
        select(OutboxMessage).where(OutboxMessage.campaign_id == campaign_id)
    ).scalars()
    return {int(row.account_id or 0): row for row in rows}


def _one_at_a_time(
    session: Session, institution: Institution, template_id: int, when: datetime
) -> dict[int, tuple[bool, tuple[str, ...], datetime | None, str | None]]:
    """What queueing each account's message on its own (``queue_message``) decides, undone."""
    accounts = repository.segment_accounts(
        session, institution_id=institution.id, buckets=(), segments=(), grades=(), limit=10_000
    )
    points = repository.own_points(
        session, institution_id=institution.id,
        debtor_ids={account.debtor_id for account in accounts}, kinds={"mobile"},
    )  # fmt: skip
    answers = {}
    savepoint = session.begin_nested()
    for account in accounts:
        if account.debtor_id not in points:
            continue
        queued = service.queue_message(
            session, institution_id=institution.id, debtor_id=account.debtor_id,
            contact_point_id=points[account.debtor_id].id, account_id=account.id,
            channel=Channel.SMS, template_id=template_id, actor="manager",
            scheduled_at=when, now=when,
        )  # fmt: skip
        message = queued.message
        answers[account.id] = (
            message is not None,
            tuple(sorted(queued.reasons)),
            message.scheduled_at if message else None,
            message.body if message else None,
        )
    savepoint.rollback()
    return answers


@pytest.mark.parametrize("hour", [10, 7, 20])
def test_a_campaign_queues_what_one_message_at_a_time_would(session: Session, hour: int) -> None:
    institution, template_id = _book(session, 40)
    if hour == 20:
        # In the institution's own quiet hours (20:00–09:00), inside the pack's: both queue the
        # message for 09:00, when the dispatcher would send it, not for now.
        set_channels(session, institution, quiet_start="20:00", quiet_end="09:00")
    when = at(hour)  # 07:00 is before the contact hours: both move the message to 08:00
    expected = _one_at_a_time(session, institution, template_id, when)
    assert Counter(allowed for allowed, *_ in expected.values()) == {True: 34, False: 6}

    campaign = _send(session, institution, template_id, when)
    assert (campaign.status, campaign.total, campaign.progress) == ("queueing", 44, 0)
    assert _messages(session, campaign.id) == {}
    while not service.queue_campaign_batch(
        session, institution_id=institution.id, campaign_id=campaign.id, now=when
    ):
        pass

    messages = _messages(session, campaign.id)
    got: dict[int, tuple[bool, tuple[str, ...], datetime | None, str | None]] = {}
    for account_id in expected:
        if account_id in messages:
            message = messages[account_id]
            got[account_id] = (True, (), message.scheduled_at, message.body)
        else:
            last = session.execute(
                select(ContactDecision)
                .where(ContactDecision.account_id == account_id)
                .order_by(ContactDecision.id.desc())
                .limit(1)
            ).scalar_one()
            assert not last.allowed
            got[account_id] = (False, tuple(sorted(last.rule_ids)), None, None)
    assert got == expected
    if hour == 7:
        assert {m.scheduled_at for m in messages.values()} == {at(8)}
    if hour == 20:
        assert {m.scheduled_at for m in messages.values()} == {at(9, day=5)}
        # The decisions asked for 20:00 hold no planned contact: only the 09:00 ones do.
        planned = session.scalars(
            select(ContactAttempt.planned_at).where(
                ContactAttempt.status == AttemptStatus.PLANNED,
                ContactAttempt.decision_id.in_([m.decision_id for m in messages.values()]),
            )
        ).all()
        assert len(planned) == len(messages)
        assert {aware(moment) for moment in planned} == {at(9, day=5)}
        assert session.scalar(
            select(func.count())
            .select_from(ContactAttempt)
            .where(ContactAttempt.status == AttemptStatus.PLANNED)
        ) == len(messages)
    for message in messages.values():
        assert message.idempotency_key == rules.campaign_key(campaign.id, message.account_id or 0)
        assert session.get(ContactDecision, message.decision_id).allowed  # type: ignore[union-attr]
    blocked = Counter(
        rule for allowed, ids, *_ in expected.values() if not allowed for rule in set(ids)
    )
    assert (campaign.status, campaign.queued, campaign.blocked, campaign.skipped) == (
        "queued",
        34,
        6,
        4,
    )
    assert campaign.progress == campaign.total == 44
    assert campaign.blocked_by_rule == dict(sorted(blocked.items()))
    assert service.campaign_blocked(campaign)[0][1] == max(blocked.values())


def test_thousands_of_accounts_queue_in_one_job_with_a_dispatch(session: Session) -> None:
    institution, template_id = _book(session, 2_500)
    when = at(10)
    campaign = _send(session, institution, template_id, when)
    _run_job(session, campaign)

    session.refresh(campaign)
    assert campaign.status == CampaignStatus.QUEUED
    assert campaign.progress == campaign.total == 2_750
    assert campaign.skipped == 250
    assert campaign.queued + campaign.blocked == 2_750 - 250
    assert campaign.blocked_by_rule
    assert len(_messages(session, campaign.id)) == campaign.queued
    dispatches = session.execute(
        select(Job.idempotency_key).where(
            Job.name == "outbox.dispatch", Job.institution_id == institution.id
        )
    ).scalars()
    assert sorted(dispatches) == sorted(
        f"campaign:{campaign.id}:{last}" for last in _batch_ends(session, institution)
    )


def _batch_ends(session: Session, institution: Institution) -> list[int]:
    ids = (
        session.execute(
            select(Account.id).where(Account.institution_id == institution.id).order_by(Account.id)
        )
        .scalars()
        .all()
    )
    return [
        ids[min(end, len(ids)) - 1]
        for end in range(
            service.CAMPAIGN_BATCH, len(ids) + service.CAMPAIGN_BATCH, service.CAMPAIGN_BATCH
        )
    ]


def test_a_killed_or_retried_job_queues_nothing_twice(session: Session) -> None:
    institution, template_id = _book(session, 60)
    when = at(10)
    campaign = _send(session, institution, template_id, when)

    def step() -> bool:
        return service.queue_campaign_batch(
            session, institution_id=institution.id, campaign_id=campaign.id, limit=25, now=when
        )

    # Killed before its first batch committed: nothing of it stays.
    savepoint = session.begin_nested()
    step()
    savepoint.rollback()
    session.refresh(campaign)
    assert (campaign.progress, campaign.queued) == (0, 0)
    # Killed after its first batch committed: the retry goes on from the next account.
    step()
    first = dict(_messages(session, campaign.id))
    assert campaign.progress == 25
    assert first
    while not step():
        pass
    done = (campaign.queued, campaign.blocked, campaign.skipped, dict(campaign.blocked_by_rule))
    messages = _messages(session, campaign.id)
    assert len(messages) == campaign.queued
    assert {key: first[key].id for key in first} == {key: messages[key].id for key in first}

    # Run again when done (a job handed over twice): nothing moves.
    _run_job(session, campaign)
    # Even with its place lost, the keys (campaign, account) keep every message once.
    campaign.status, campaign.last_account_id = CampaignStatus.QUEUEING, 0
    session.flush()
    _run_job(session, campaign)
    session.refresh(campaign)
    assert len(_messages(session, campaign.id)) == done[0]
    assert (
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.campaign_id == campaign.id)
        )
        == done[0]
    )
    assert campaign.queued == done[0]


def test_a_template_of_another_channel_is_refused(session: Session) -> None:
    institution = make_institution(session)
    email = approved_template(session, institution, channel="email")
    with pytest.raises(ValidationFailed, match="is for email, not sms"):
        _send(session, institution, email.id, at(10))
    assert session.scalar(select(func.count()).select_from(OutboxCampaign)) == 0
    assert (
        session.scalar(
            select(func.count()).select_from(Job).where(Job.name == "outbox.queue_campaign")
        )
        == 0
    )
