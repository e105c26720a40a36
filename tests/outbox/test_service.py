"""The outbox on a real database: queueing with the gate, re-checking at send time, results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import AttemptStatus, ConsentKind
from recoup.ingest.service import data_quality_report
from recoup.models.account import Payment
from recoup.models.audit import AuditEvent
from recoup.models.contact import ContactAttempt
from recoup.outbox import dispatch, service
from recoup.outbox.dispatch import Dispatcher
from recoup.outbox.rules import OutboxStatus
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.outbox.helpers import (
    Permanent,
    RecordingAdapter,
    Transient,
    approved_template,
    set_channels,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def at(hour: int, minute: int = 0, *, day: int = 4, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=zone).astimezone(UTC)


class World:
    def __init__(self, session: Session, *, jurisdiction: str = "CN") -> None:
        us = jurisdiction == "US"
        self.session = session
        self.institution = make_institution(
            session,
            jurisdiction=jurisdiction,
            timezone="America/New_York" if us else "Asia/Shanghai",
            currency="USD" if us else "CNY",
        )
        set_channels(session, self.institution, quiet_start=None, quiet_end=None)
        self.debtor = make_debtor(
            session, self.institution, name="Zhang Wei" if us else "张伟",
            timezone="America/New_York" if us else None,
        )  # fmt: skip
        self.phone = make_contact_point(
            session, self.debtor, value="+12125550123" if us else "13812345678"
        )
        if us:
            contact_service.record_consent(
                session, contact_point=self.phone, channel=Channel.SMS,
                kind=ConsentKind.CONSENT, actor="test", source="loan agreement",
            )  # fmt: skip
        self.account = make_account(session, self.debtor)
        self.template = approved_template(session, self.institution)
        self.adapter = RecordingAdapter()

    def queue(self, when: datetime, **kwargs: object) -> service.Queued:
        return service.queue_message(
            self.session,
            institution_id=self.institution.id,
            debtor_id=self.debtor.id,
            contact_point_id=self.phone.id,
            account_id=self.account.id,
            channel=Channel.SMS,
            template_id=self.template.id,
            actor="manager1",
            scheduled_at=when,
            now=when,
            **kwargs,  # type: ignore[arg-type]
        )

    def dispatch(self, when: datetime) -> dispatch.DispatchReport:
        dispatcher = Dispatcher(adapters=lambda channel, institution_id, code: self.adapter)
        return dispatch.dispatch(
            self.session, now=when, institution_id=self.institution.id, dispatcher=dispatcher
        )


class TestQueueing:
    def test_an_allowed_message_is_queued_with_its_decision_and_template(
        self, session: Session
    ) -> None:
        world = World(session)
        queued = world.queue(at(10))
        message = queued.message
        assert message is not None
        assert queued.decision is not None
        assert message.status == OutboxStatus.QUEUED
        assert message.decision_id == queued.decision.id
        assert message.template_id == world.template.id
        assert len(message.template_version) == 16
        assert message.body.startswith("张伟您好")
        again = world.queue(at(10))
        assert again.duplicate
        assert again.message is not None
        assert again.message.id == message.id

    def test_a_refused_contact_queues_nothing(self, session: Session) -> None:
        world = World(session)
        world.debtor.cease_contact = True
        session.flush()
        queued = world.queue(at(10))
        assert queued.message is None
        assert queued.decision is not None
        assert not queued.decision.allowed
        assert queued.reasons

    def test_outside_hours_it_is_queued_for_the_next_allowed_time(self, session: Session) -> None:
        world = World(session)
        queued = world.queue(at(23))
        assert queued.message is not None
        assert queued.message.scheduled_at.astimezone(SHANGHAI).hour == 8

    def test_a_disabled_channel_is_refused_naming_the_setting(self, session: Session) -> None:
        world = World(session)
        set_channels(session, world.institution, enabled=["email"])
        with pytest.raises(Exception, match=r"channels\.enabled"):
            world.queue(at(10))


class TestSendTime:
    def test_a_due_message_is_sent_and_logged_once(self, session: Session) -> None:
        world = World(session)
        message = world.queue(at(10)).message
        assert message is not None
        report = world.dispatch(at(10, 5))
        assert report.sent == 1
        assert len(world.adapter.sent) == 1
        assert world.adapter.sent[0].key == message.idempotency_key
        session.refresh(message)
        assert message.status == OutboxStatus.SENT
        assert message.provider_message_id == "P-1"
        attempt = session.scalar(
            select(ContactAttempt).where(ContactAttempt.decision_id == message.decision_id)
        )
        assert attempt is not None
        assert attempt.status == AttemptStatus.MADE
        assert attempt.provider_message_id == "P-1"
        assert world.dispatch(at(10, 6)).sent == 0
        actions = set(
            session.scalars(
                select(AuditEvent.action).where(AuditEvent.object_id == str(message.id))
            )
        )
        assert {"outbox.queued", "outbox.sent"} <= actions

    def test_queued_at_2055_does_not_leave_at_2105(self, session: Session) -> None:
        """US-HRS: 08:00–21:00 at the consumer's location."""
        world = World(session, jurisdiction="US")
        message = world.queue(at(20, 55, zone=NEW_YORK)).message
        assert message is not None
        report = world.dispatch(at(21, 5, zone=NEW_YORK))
        assert report.sent == 0
        assert world.adapter.sent == []
        session.refresh(message)
        assert message.status == OutboxStatus.QUEUED
        assert "US-HRS" in (message.last_error or "")
        local = message.scheduled_at.astimezone(NEW_YORK)
        assert (local.day, local.hour) == (5, 8)
        assert world.dispatch(at(8, 1, day=5, zone=NEW_YORK)).sent == 1

    def test_the_institutions_quiet_hours_hold_a_message_the_pack_allows(
        self, session: Session
    ) -> None:
        world = World(session)
        set_channels(session, world.institution, quiet_start="21:00", quiet_end="09:00")
        message = world.queue(at(20, 55)).message
        assert message is not None
        assert world.dispatch(at(21, 5)).sent == 0
        session.refresh(message)
        local = message.scheduled_at.astimezone(SHANGHAI)
        assert (local.day, local.hour, message.status) == (5, 9, OutboxStatus.QUEUED)

    def test_in_the_institutions_quiet_hours_it_is_queued_for_their_end(
        self, session: Session
    ) -> None:
        world = World(session)
        set_channels(session, world.institution, quiet_start="20:00", quiet_end="09:00")
        queued = world.queue(at(20, 30))  # the pack allows 20:30; the institution does not
        message = queued.message
        assert message is not None
        local = message.scheduled_at.astimezone(SHANGHAI)
        assert (local.day, local.hour, local.minute) == (5, 9, 0)
        # Only the decision for 09:00 holds a planned contact; the one for 20:30 was let go.
        planned = session.scalars(
            select(ContactAttempt).where(ContactAttempt.status == AttemptStatus.PLANNED)
        ).all()
        assert [attempt.decision_id for attempt in planned] == [message.decision_id]
        assert world.dispatch(at(20, 45)).sent == 0
        assert world.dispatch(at(9, 1, day=5)).sent == 1

    def test_a_missed_window_expires_when_the_institution_says_so(self, session: Session) -> None:
        world = World(session)
        set_channels(session, world.institution, on_missed_window="expire")
        message = world.queue(at(21, 55)).message
        assert message is not None
        world.dispatch(at(22, 5))
        session.refresh(message)
        assert message.status == OutboxStatus.EXPIRED
        attempt = session.scalar(
            select(ContactAttempt).where(ContactAttempt.decision_id == message.decision_id)
        )
        assert attempt is not None
        assert attempt.status == AttemptStatus.CANCELLED

    def test_a_cease_request_since_queueing_cancels(self, session: Session) -> None:
        world = World(session)
        message = world.queue(at(10)).message
        world.debtor.cease_contact = True
        session.flush()
        world.dispatch(at(10, 5))
        assert message is not None
        assert world.adapter.sent == []
        session.refresh(message)
        assert message.status == OutboxStatus.CANCELLED
        assert message.last_error
        assert message.last_error.startswith("gate:")

    def test_a_payment_since_queueing_cancels(self, session: Session) -> None:
        world = World(session)
        message = world.queue(at(10)).message
        session.add(
            Payment(
                institution_id=world.institution.id, external_id="PAY-1",
                account_id=world.account.id, amount=100_00, currency="CNY", paid_at=at(10, 1),
            )
        )  # fmt: skip
        session.flush()
        world.dispatch(at(10, 5))
        assert message is not None
        assert world.adapter.sent == []
        session.refresh(message)
        assert message.status == OutboxStatus.CANCELLED
        assert message.last_error == "payment received since queued"

    def test_an_opt_out_reply_stops_the_next_text(self, session: Session) -> None:
        world = World(session)
        message = world.queue(at(10)).message
        assert service.record_reply(
            session, institution_id=world.institution.id, sender="13812345678", text=" 退订 "
        )
        world.dispatch(at(10, 5))
        assert message is not None
        assert world.adapter.sent == []
        session.refresh(message)
        assert message.status == OutboxStatus.CANCELLED


class TestFailures:
    def test_transient_failures_back_off_then_go_dead_and_a_person_retries(
        self, session: Session
    ) -> None:
        world = World(session)
        set_channels(session, world.institution, max_attempts=2)
        world.adapter.fail_with = Transient("provider answered HTTP 503")
        message = world.queue(at(10)).message
        assert message is not None
        world.dispatch(at(10, 5))
        session.refresh(message)
        assert message.status == OutboxStatus.QUEUED
        assert message.attempts == 1
        wait = message.scheduled_at - at(10, 5)
        assert timedelta(seconds=15) <= wait <= timedelta(seconds=30)
        world.dispatch(at(10, 10))
        session.refresh(message)
        assert message.status == OutboxStatus.DEAD
        assert "503" in (message.last_error or "")
        from recoup.identity.principal import principal_for_user
        from tests.identity.helpers import make_user

        manager = principal_for_user(make_user(session, world.institution, role="manager"))
        service.retry_message(
            session, principal=manager, institution_id=world.institution.id,
            message_id=message.id, now=at(10, 12),
        )  # fmt: skip
        world.adapter.fail_with = None
        assert world.dispatch(at(10, 15)).sent == 1

    def test_a_wrong_number_fails_and_invalidates_the_contact_point(self, session: Session) -> None:
        world = World(session)
        world.adapter.fail_with = Permanent("HTTP 400, code 21211", invalid_contact=True)
        message = world.queue(at(10)).message
        world.dispatch(at(10, 5))
        assert message is not None
        session.refresh(message)
        session.refresh(world.phone)
        assert message.status == OutboxStatus.FAILED
        assert world.phone.status == "invalid"
        report = data_quality_report(session, institution=world.institution)
        assert report.debtors_with_valid_self_contact == 0


class TestReceipts:
    def test_receipts_are_idempotent_and_move_forward_only(self, session: Session) -> None:
        world = World(session)
        message = world.queue(at(10)).message
        world.dispatch(at(10, 5))
        assert message is not None
        institution_id = world.institution.id
        service.record_receipt(
            session, institution_id=institution_id, provider_message_id="P-1", status="delivered"
        )
        service.record_receipt(
            session, institution_id=institution_id, provider_message_id="P-1", status="delivered"
        )
        service.record_receipt(
            session, institution_id=institution_id, provider_message_id="P-1", status="sent"
        )
        session.refresh(message)
        assert message.status == OutboxStatus.DELIVERED
        attempt = session.scalar(
            select(ContactAttempt).where(ContactAttempt.decision_id == message.decision_id)
        )
        assert attempt is not None
        assert attempt.outcome == "message_delivered"

    def test_an_undelivered_receipt_for_an_unknown_number_invalidates_it(
        self, session: Session
    ) -> None:
        world = World(session)
        world.queue(at(10))
        world.dispatch(at(10, 5))
        service.record_receipt(
            session, institution_id=world.institution.id, provider_message_id="P-1",
            status="undelivered", error_code="30005",
        )  # fmt: skip
        session.refresh(world.phone)
        assert world.phone.status == "invalid"
