"""Exactly once to the outside world: a dispatcher killed (SIGKILL) after the provider accepted
a message and before its own commit does not send the message again when it restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from recoup.db import unit_of_work
from recoup.kit.crypto import get_keyring, save_keyring
from recoup.models.outbox import OutboxMessage
from recoup.outbox import rules, service
from recoup.outbox.rules import OutboxStatus
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.outbox.helpers import approved_template, set_channels
from tests.outbox.servers import sms_server, smtp_server

SOURCE = Path(__file__).resolve().parents[2] / "src"
QUEUED_AT = datetime(2025, 3, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
SENT_AT = "2025-03-04T02:05:00+00:00"


def _queue(channel: str, **channels: object) -> tuple[int, str, str]:
    with unit_of_work() as session:
        institution = make_institution(session)
        set_channels(session, institution, quiet_start=None, quiet_end=None, **channels)
        debtor = make_debtor(session, institution)
        if channel == "email":
            point = make_contact_point(session, debtor, kind="email", value="zw@example.com")
        else:
            point = make_contact_point(session, debtor)
        account = make_account(session, debtor)
        template = approved_template(session, institution, channel=channel)
        queued = service.queue_message(
            session, institution_id=institution.id, debtor_id=debtor.id,
            contact_point_id=point.id, account_id=account.id, channel=channel,
            template_id=template.id, actor="manager1", scheduled_at=QUEUED_AT, now=QUEUED_AT,
        )  # fmt: skip
        assert queued.message is not None
        return queued.message.id, queued.message.idempotency_key, institution.code


def _dispatch(env: dict[str, str], code: str, *, fault: bool) -> subprocess.CompletedProcess[str]:
    run_env = {**env, "PYTHONPATH": str(SOURCE)}
    if fault:
        run_env["RECOUP_OUTBOX_FAULT"] = "kill-after-send"
    else:
        run_env.pop("RECOUP_OUTBOX_FAULT", None)
    return subprocess.run(
        [sys.executable, "-m", "recoup", "outbox", "dispatch", "--institution", code,
         "--reconcile-after", "0", "--now", SENT_AT, "--json"],
        env=run_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _status(message_id: int) -> tuple[str, str | None]:
    with unit_of_work(write=False) as session:
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
        assert message is not None
        return str(message.status), message.provider_message_id


@pytest.fixture
def child_env(live_database: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a dispatcher process: the same database, key ring and data folder."""
    ring = tmp_path / "keyring.json"
    save_keyring(get_keyring(), ring)
    return {
        **os.environ,
        "RECOUP_DATABASE_URL": live_database,
        "RECOUP_KEYRING_FILE": str(ring),
        "RECOUP_DATA_DIR": str(tmp_path / "data"),
    }


class TestKilledBetweenAcceptAndCommit:
    def test_an_sms_is_delivered_once(self, child_env: dict[str, str]) -> None:
        with sms_server() as (url, provider):
            message_id, key, code = _queue("sms", sms_provider="gateway", sms_gateway_url=url)
            killed = _dispatch(child_env, code, fault=True)
            assert killed.returncode == -signal.SIGKILL, killed.stderr
            assert provider.deliveries[key] == 1
            assert _status(message_id) == (OutboxStatus.SENDING, None)
            restarted = _dispatch(child_env, code, fault=False)
            assert restarted.returncode == 0, restarted.stderr
            assert '"reconciled": 1' in restarted.stdout
            assert provider.deliveries[key] == 1
            assert provider.total == 1
        assert _status(message_id) == (OutboxStatus.SENT, "G1")

    def test_an_email_is_delivered_once(self, child_env: dict[str, str]) -> None:
        with smtp_server() as (port, mailbox):
            message_id, key, code = _queue(
                "email", email_provider="smtp", smtp_host="127.0.0.1", smtp_port=port,
                email_from="collections@bank.example",
            )  # fmt: skip
            killed = _dispatch(child_env, code, fault=True)
            assert killed.returncode == -signal.SIGKILL, killed.stderr
            assert len(mailbox.messages) == 1
            restarted = _dispatch(child_env, code, fault=False)
            assert restarted.returncode == 0, restarted.stderr
            assert len(mailbox.messages) == 1
        reference = rules.message_id(key, "bank.example")
        assert mailbox.count(reference) == 1
        assert _status(message_id) == (OutboxStatus.SENT, reference)

    def test_a_message_the_provider_never_got_is_sent_after_a_restart(
        self, child_env: dict[str, str]
    ) -> None:
        with sms_server() as (url, provider):
            message_id, key, code = _queue("sms", sms_provider="gateway", sms_gateway_url=url)
            # A dispatcher that died after marking it sending, before calling the provider.
            with unit_of_work() as session:
                message = session.get(OutboxMessage, message_id)
                assert message is not None
                message.status = OutboxStatus.SENDING
                message.send_token = "dead-dispatcher"
                message.sending_since = QUEUED_AT
            restarted = _dispatch(child_env, code, fault=False)
            assert restarted.returncode == 0, restarted.stderr
            assert provider.deliveries[key] == 1
        assert _status(message_id)[0] == OutboxStatus.SENT
