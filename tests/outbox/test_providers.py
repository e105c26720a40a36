"""The adapters against real local servers: SMTP (aiosmtpd) and an SMS gateway / Twilio."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from recoup import config
from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import ConsentKind
from recoup.models.debtor import ContactPoint
from recoup.models.outbox import OutboxMessage
from recoup.outbox import dispatch, rules, service
from recoup.outbox.dispatch import Dispatcher
from recoup.outbox.rules import OutboxStatus
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import client_for
from tests.outbox.helpers import approved_template, set_channels
from tests.outbox.servers import SmsProvider, self_signed, sms_server, smtp_server

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def local(hour: int, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(2025, 3, 4, hour, minute, tzinfo=zone).astimezone(UTC)


def queue(
    session: Session, *, jurisdiction: str = "CN", channel: str = "sms", **channels: object
) -> tuple[OutboxMessage, ContactPoint]:
    us = jurisdiction == "US"
    institution = make_institution(
        session,
        jurisdiction=jurisdiction,
        timezone="America/New_York" if us else "Asia/Shanghai",
        currency="USD" if us else "CNY",
    )
    set_channels(session, institution, quiet_start=None, quiet_end=None, **channels)
    debtor = make_debtor(session, institution, name="Zhang Wei" if us else "张伟",
                         timezone="America/New_York" if us else None)  # fmt: skip
    if channel == "email":
        point = make_contact_point(session, debtor, kind="email", value="zhang.wei@example.com")
    else:
        point = make_contact_point(session, debtor, value="+12125550123" if us else "13812345678")
        if us:
            contact_service.record_consent(
                session, contact_point=point, channel=Channel.SMS, kind=ConsentKind.CONSENT,
                actor="test",
            )  # fmt: skip
    account = make_account(session, debtor)
    template = approved_template(session, institution, channel=channel)
    when = local(10, zone=NEW_YORK if us else SHANGHAI)
    queued = service.queue_message(
        session, institution_id=institution.id, debtor_id=debtor.id, contact_point_id=point.id,
        account_id=account.id, channel=channel, template_id=template.id, actor="manager1",
        scheduled_at=when, now=when,
    )  # fmt: skip
    assert queued.message is not None
    return queued.message, point


def run(session: Session, message: OutboxMessage) -> dispatch.DispatchReport:
    when = message.scheduled_at
    return dispatch.dispatch(
        session, now=when, institution_id=message.institution_id, dispatcher=Dispatcher()
    )


class TestEmail:
    def test_multipart_with_a_stable_message_id(self, session: Session) -> None:
        with smtp_server() as (port, mailbox):
            message, _point = queue(
                session, channel="email", email_provider="smtp", smtp_host="127.0.0.1",
                smtp_port=port, email_from="collections@bank.example",
            )  # fmt: skip
            assert run(session, message).sent == 1
        session.refresh(message)
        assert message.status == OutboxStatus.SENT
        assert len(mailbox.messages) == 1
        email = mailbox.messages[0]
        assert email["Message-ID"] == rules.message_id(message.idempotency_key, "bank.example")
        assert email.get_content_type() == "multipart/alternative"
        kinds = [part.get_content_type() for part in email.get_payload()]  # type: ignore[union-attr]
        assert kinds == ["text/plain", "text/html"]
        assert email["List-Unsubscribe"] is None

    def test_starttls_when_configured(
        self, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        certificate, key = self_signed(tmp_path)
        # The adapter trusts the system's certificates: here, the test's own.
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
        with smtp_server(tls=(certificate, key)) as (port, mailbox):
            plain, _ = queue(
                session, channel="email", email_provider="smtp", smtp_host="127.0.0.1",
                smtp_port=port,
            )  # fmt: skip
            run(session, plain)
            secure, _ = queue(
                session, channel="email", email_provider="smtp", smtp_host="127.0.0.1",
                smtp_port=port, smtp_starttls=True,
            )  # fmt: skip
            run(session, secure)
        session.refresh(plain)
        session.refresh(secure)
        # The server requires STARTTLS (530): retried until the settings are fixed.
        assert plain.status == OutboxStatus.QUEUED
        assert "530" in (plain.last_error or "")
        assert secure.status == OutboxStatus.SENT
        assert len(mailbox.messages) == 1

    def test_a_us_email_carries_an_opt_out_path(self, session: Session) -> None:
        with smtp_server() as (port, mailbox):
            message, _ = queue(
                session, jurisdiction="US", channel="email", email_provider="smtp",
                smtp_host="127.0.0.1", smtp_port=port,
            )  # fmt: skip
            run(session, message)
        assert mailbox.messages[0]["List-Unsubscribe"].startswith("<mailto:")

    def test_an_unknown_mailbox_fails_and_invalidates_the_address(self, session: Session) -> None:
        with smtp_server() as (port, mailbox):
            mailbox.refuse_with = "550 5.1.1 no such user"
            message, point = queue(
                session, channel="email", email_provider="smtp", smtp_host="127.0.0.1",
                smtp_port=port,
            )  # fmt: skip
            run(session, message)
        session.refresh(message)
        session.refresh(point)
        assert message.status == OutboxStatus.FAILED
        assert point.status == "invalid"

    def test_a_busy_server_is_retried_later(self, session: Session) -> None:
        with smtp_server() as (port, mailbox):
            mailbox.refuse_with = "451 4.3.0 try again later"
            message, _ = queue(
                session, channel="email", email_provider="smtp", smtp_host="127.0.0.1",
                smtp_port=port,
            )  # fmt: skip
            run(session, message)
        session.refresh(message)
        assert message.status == OutboxStatus.QUEUED
        assert "451" in (message.last_error or "")


class TestSms:
    def test_the_gateway_gets_the_key_and_delivers_once(self, session: Session) -> None:
        with sms_server() as (url, provider):
            message, _ = queue(session, sms_provider="gateway", sms_gateway_url=url)
            provider.fail_next = 1
            run(session, message)
            session.refresh(message)
            assert message.status == OutboxStatus.QUEUED
            assert "503" in (message.last_error or "")
            dispatch.dispatch(
                session, now=message.scheduled_at, institution_id=message.institution_id,
                dispatcher=Dispatcher(),
            )  # fmt: skip
        session.refresh(message)
        assert message.status == OutboxStatus.SENT
        assert provider.deliveries[message.idempotency_key] == 1
        assert message.provider_message_id == "G1"

    def test_the_gateway_takes_a_retry_of_an_accepted_message_as_the_same(
        self, session: Session
    ) -> None:
        with sms_server() as (url, provider):
            message, _ = queue(session, sms_provider="gateway", sms_gateway_url=url)
            provider.accept_then_fail = 1
            _send_twice(session, message)
        assert message.status == OutboxStatus.SENT
        assert provider.deliveries[message.idempotency_key] == 1
        assert message.provider_message_id == "G1"

    def test_twilio_is_not_asked_twice_for_a_message_it_took(self, session: Session) -> None:
        message, provider = _twilio_retry(session, failing="accept_then_fail")
        assert message.status == OutboxStatus.SENT
        assert provider.total == 1
        assert message.provider_message_id == provider.twilio[0]["sid"]

    def test_twilio_gets_the_retry_when_it_never_took_the_message(self, session: Session) -> None:
        message, provider = _twilio_retry(session, failing="fail_next")
        assert message.status == OutboxStatus.SENT
        assert provider.total == 1

    def test_twilios_request_shape(self, session: Session) -> None:
        with sms_server() as (url, provider):
            message, _ = queue(
                session, sms_provider="twilio", twilio_account_sid="AC123",
                twilio_base_url=url, sms_sender="+15005550006",
                callback_base_url="https://recoup.example",
            )  # fmt: skip
            run(session, message)
        session.refresh(message)
        assert message.status == OutboxStatus.SENT
        sent = provider.twilio[0]
        assert sent["To"] == "13812345678"
        assert sent["From"] == "+15005550006"
        assert sent["Body"] == message.body
        assert sent["StatusCallback"].endswith("/api/v1/outbox/hooks/" + _code(session, message)
                                               + "/twilio/status")  # fmt: skip


def _twilio_retry(session: Session, *, failing: str) -> tuple[OutboxMessage, SmsProvider]:
    """Send a message through Twilio whose first answer fails as ``failing`` says, and retry."""
    with sms_server() as (url, provider):
        message, _ = queue(
            session, sms_provider="twilio", twilio_account_sid="AC123",
            twilio_base_url=url, sms_sender="+15005550006",
        )  # fmt: skip
        setattr(provider, failing, 1)
        _send_twice(session, message)
    return message, provider


def _send_twice(session: Session, message: OutboxMessage) -> None:
    """Send; the provider's answer fails (503, or 500 after taking it); send again when due."""
    run(session, message)
    session.refresh(message)
    assert message.status == OutboxStatus.QUEUED
    assert message.provider_message_id is None
    dispatch.dispatch(
        session, now=message.scheduled_at, institution_id=message.institution_id,
        dispatcher=Dispatcher(),
    )  # fmt: skip
    session.refresh(message)


def _code(session: Session, message: OutboxMessage) -> str:
    from recoup.models import Institution

    institution = session.get(Institution, message.institution_id)
    assert institution is not None
    return institution.code


class TestCallbacks:
    @pytest.fixture(autouse=True)
    def _secrets(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RECOUP_SMS_CALLBACK_SECRET", "s3cret")
        monkeypatch.setenv("RECOUP_TWILIO_AUTH_TOKEN", "tw-token")
        config.get_settings.cache_clear()

    def test_a_signed_gateway_receipt_is_recorded_once(self, session: Session) -> None:
        with sms_server() as (url, _provider):
            message, _ = queue(session, sms_provider="gateway", sms_gateway_url=url)
            run(session, message)
        code = _code(session, message)
        body = json.dumps({"id": "G1", "status": "delivered"}).encode()
        signature = rules.gateway_signature("s3cret", body)
        hook = f"/api/v1/outbox/hooks/{code}/gateway/status"
        with client_for(session) as client:
            refused = client.post(hook, content=body, headers={"X-Recoup-Signature": "bad"})
            first = client.post(hook, content=body, headers={"X-Recoup-Signature": signature})
            again = client.post(hook, content=body, headers={"X-Recoup-Signature": signature})
        assert refused.status_code == 401
        assert (first.status_code, again.status_code) == (204, 204)
        session.refresh(message)
        assert message.status == OutboxStatus.DELIVERED

    def test_a_signed_twilio_callback_and_a_stop_reply(self, session: Session) -> None:
        with sms_server() as (url, _provider):
            message, point = queue(
                session, sms_provider="twilio", twilio_account_sid="AC1", twilio_base_url=url,
                callback_base_url="https://recoup.example",
            )  # fmt: skip
            run(session, message)
        code = _code(session, message)
        assert message.provider_message_id is not None
        status_path = f"/api/v1/outbox/hooks/{code}/twilio/status"
        form = {"MessageSid": message.provider_message_id, "MessageStatus": "delivered"}
        signature = rules.twilio_signature("tw-token", f"https://recoup.example{status_path}", form)
        reply_path = f"/api/v1/outbox/hooks/{code}/twilio/inbound"
        reply = {"From": "13812345678", "Body": "STOP", "MessageSid": "SMreply"}
        reply_signature = rules.twilio_signature(
            "tw-token", f"https://recoup.example{reply_path}", reply
        )
        with client_for(session) as client:
            answer = client.post(status_path, data=form, headers={"X-Twilio-Signature": signature})
            unsigned = client.post(reply_path, data=reply)
            stopped = client.post(
                reply_path, data=reply, headers={"X-Twilio-Signature": reply_signature}
            )
        assert answer.status_code == 204
        assert unsigned.status_code == 401
        assert stopped.status_code == 204
        session.refresh(message)
        assert message.status == OutboxStatus.DELIVERED
        assert Channel.SMS in contact_service.standing(session, contact_point=point).opted_out
