"""Webhook delivery end to end: a real local receiver verifies each signature; a 500 is retried
with backoff until it succeeds; a delivery failing every try is a dead letter, replayed by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.db import unit_of_work
from recoup.institutions import service as institutions
from recoup.kit import events, jobs
from recoup.kit.clock import utcnow
from recoup.models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEvent
from recoup.webhooks import service
from tests.factories import make_institution
from tests.webhooks.receiver import Receiver

# The receiver listens on the loopback, so these tests allow private targets.
pytestmark = pytest.mark.usefixtures("private_webhook_targets")


def _subscribe(hook: Receiver, *, max_attempts: int = 8, types: list[str] | None = None) -> int:
    with unit_of_work() as session:
        institution = make_institution(session)
        institutions.update_settings(
            session,
            institution=institution,
            changes={"integration": {"webhook_max_attempts": max_attempts}},
            actor="test",
        )
        created = service.create_subscription(
            session,
            institution_id=institution.id,
            url=hook.url,
            event_types=types or ["payment.received"],
            actor="test",
        )
        hook.secret = created.secret
        return institution.id


def _emit(institution_id: int, event_type: str = "payment.received") -> str | None:
    with unit_of_work() as session:
        event = events.emit(
            session,
            institution_id=institution_id,
            type=event_type,
            data={"payment_id": 7, "account_id": 3, "amount_minor": 12_345, "currency": "CNY"},
        )
        return event.event_id if event else None


def _deliveries() -> list[WebhookDelivery]:
    with unit_of_work(write=False) as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def _later(minutes: int) -> None:
    jobs.drain(now=utcnow() + timedelta(minutes=minutes))


class TestDelivery:
    def test_a_signed_event_reaches_the_receiver(self, database: str, hook: Receiver) -> None:
        institution_id = _subscribe(hook)
        event_id = _emit(institution_id)
        assert _emit(institution_id, "promise.created") is None  # nobody subscribed
        jobs.drain()
        assert hook.refused == 0
        assert [item["event_id"] for item in hook.received] == [event_id]
        body = hook.received[0]["body"]
        assert body["type"] == "payment.received"
        assert body["data"] == {
            "payment_id": 7,
            "account_id": 3,
            "amount_minor": 12_345,
            "currency": "CNY",
        }
        (delivery,) = _deliveries()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            DeliveryStatus.delivered,
            1,
            200,
        )

    def test_a_500_is_retried_after_a_backoff_then_delivered(
        self, database: str, hook: Receiver
    ) -> None:
        institution_id = _subscribe(hook)
        hook.answers = [500]
        event_id = _emit(institution_id)
        jobs.drain()
        (delivery,) = _deliveries()
        assert delivery.status == DeliveryStatus.retrying
        assert delivery.next_attempt_at is not None
        wait = delivery.next_attempt_at - delivery.last_attempt_at  # type: ignore[operator]
        assert timedelta(seconds=29) <= wait <= timedelta(seconds=61)
        jobs.drain()  # not yet due: nothing is sent
        assert len(hook.received) == 1
        _later(minutes=2)
        assert [(item["status"], item["attempt"]) for item in hook.received] == [
            (500, 1),
            (200, 2),
        ]
        assert {item["event_id"] for item in hook.received} == {event_id}
        (delivery,) = _deliveries()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.delivered, 2)

    def test_every_try_failing_is_a_dead_letter_replayed_by_hand(
        self, database: str, hook: Receiver
    ) -> None:
        institution_id = _subscribe(hook, max_attempts=3)
        hook.answers = [500, 503, 500]
        _emit(institution_id)
        for minutes in (0, 5, 30, 120):
            _later(minutes)
        (delivery,) = _deliveries()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.dead, 3)
        assert delivery.last_error == "HTTP 500"
        assert len(hook.received) == 3

        with unit_of_work() as session:
            dead = session.get(WebhookDelivery, delivery.id)
            assert dead is not None
            service.replay(session, delivery=dead, actor="admin")
        jobs.drain()
        (delivery,) = _deliveries()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.delivered, 1)
        assert len(hook.received) == 4

    def test_a_receiver_with_another_secret_refuses_and_the_event_is_kept(
        self, database: str, hook: Receiver
    ) -> None:
        institution_id = _subscribe(hook)
        hook.secret = "whsec_not-the-one"
        _emit(institution_id)
        jobs.drain()
        assert hook.refused == 1
        (delivery,) = _deliveries()
        assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.retrying, 401)

    def test_a_turned_off_subscription_gets_nothing_new(
        self, database: str, hook: Receiver
    ) -> None:
        institution_id = _subscribe(hook)
        with unit_of_work() as session:
            (subscription,) = service.repository.subscriptions(
                session, institution_id=institution_id
            )
            service.update_subscription(
                session, subscription=subscription, active=False, actor="admin"
            )
        assert _emit(institution_id) is None
        jobs.drain()
        assert hook.received == []


class TestEmit:
    def test_an_unknown_type_is_refused(self, session: Session) -> None:
        institution = make_institution(session)
        with pytest.raises(events.UnknownEventType, match=r"payment\.received"):
            events.emit(session, institution_id=institution.id, type="payment.made", data={})

    def test_an_event_is_written_only_with_its_change(self, session: Session) -> None:
        institution = make_institution(session)
        service.create_subscription(
            session,
            institution_id=institution.id,
            url="https://crm.example.com/hooks",
            event_types=["case.closed"],
            actor="admin",
        )
        session.commit()
        savepoint = session.begin_nested()
        events.emit(session, institution_id=institution.id, type="case.closed", data={"case_id": 1})
        savepoint.rollback()
        assert session.scalars(select(WebhookEvent)).all() == []
