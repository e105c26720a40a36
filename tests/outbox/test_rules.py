"""The outbox's pure rules: states, backoff, rate limits, missed windows, receipts, replies."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.contact.channels import Channel
from recoup.outbox.rules import (
    MissedWindow,
    NotQueued,
    OutboxStatus,
    OutboxTransitionRefused,
    QuietPeriod,
    Receipt,
    TokenBucket,
    backoff,
    choose_template,
    held_back,
    idempotency_key,
    is_opt_out_reply,
    message_id,
    quiet_end,
    quiet_period,
    read_receipt,
    receipt_status,
    transition,
)

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


class TestTransitions:
    def test_sending_is_reached_only_from_queued(self) -> None:
        assert transition(OutboxStatus.QUEUED, OutboxStatus.SENDING) is OutboxStatus.SENDING
        with pytest.raises(OutboxTransitionRefused):
            transition(OutboxStatus.SENT, OutboxStatus.SENDING)

    def test_a_dead_message_may_be_queued_again_by_a_person(self) -> None:
        assert transition(OutboxStatus.DEAD, OutboxStatus.QUEUED) is OutboxStatus.QUEUED


class TestBackoff:
    @given(st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=2**32))
    def test_the_wait_doubles_with_jitter_and_is_capped(self, attempts: int, seed: int) -> None:
        wait = backoff(attempts, rng=random.Random(seed))
        ceiling = min(timedelta(hours=2), timedelta(seconds=30) * 2 ** (attempts - 1))
        assert ceiling / 2 <= wait <= ceiling

    def test_two_failures_together_rarely_retry_together(self) -> None:
        rng = random.Random(7)
        waits = {backoff(3, rng=rng) for _ in range(20)}
        assert len(waits) == 20


class TestTokenBucket:
    def test_a_burst_then_the_rate(self) -> None:
        bucket = TokenBucket(rate=10, burst=10)
        assert all(bucket.take(0.0) == 0 for _ in range(10))
        assert bucket.take(0.0) == pytest.approx(0.1)
        assert bucket.take(1.0) == 0


class TestMissedWindow:
    def test_rescheduled_to_the_next_allowed_time_within_the_expiry(self) -> None:
        held = held_back(
            next_allowed_at=NOW + timedelta(hours=11),
            expires_at=NOW + timedelta(hours=48),
            on_missed_window=MissedWindow.RESCHEDULE,
        )
        assert held.status is OutboxStatus.QUEUED
        assert held.scheduled_at == NOW + timedelta(hours=11)

    def test_expired_past_the_expiry_or_when_the_institution_says_so(self) -> None:
        late = held_back(
            next_allowed_at=NOW + timedelta(hours=49),
            expires_at=NOW + timedelta(hours=48),
            on_missed_window=MissedWindow.RESCHEDULE,
        )
        chosen = held_back(
            next_allowed_at=NOW + timedelta(hours=1),
            expires_at=NOW + timedelta(hours=48),
            on_missed_window=MissedWindow.EXPIRE,
        )
        assert late.status is chosen.status is OutboxStatus.EXPIRED


class TestQuietPeriod:
    def test_a_period_across_midnight(self) -> None:
        quiet = QuietPeriod(time(21), time(9))
        assert quiet.holds(datetime(2025, 3, 4, 21, 5))
        assert quiet.holds(datetime(2025, 3, 5, 8, 59))
        assert not quiet.holds(datetime(2025, 3, 4, 20, 55))
        assert quiet.ends_after(datetime(2025, 3, 4, 21, 5)) == datetime(2025, 3, 5, 9, 0)
        assert quiet.ends_after(datetime(2025, 3, 5, 7, 0)) == datetime(2025, 3, 5, 9, 0)

    def test_letters_have_none_and_an_institution_may_have_none(self) -> None:
        assert quiet_period("20:00", "09:00", Channel.SMS) == QuietPeriod(time(20), time(9))
        assert quiet_period("20:00", "09:00", Channel.LETTER) is None
        assert quiet_period(None, None, Channel.SMS) is None

    def test_they_end_in_the_debtors_zone_first(self) -> None:
        quiet = QuietPeriod(time(20), time(9))
        at = datetime(2025, 3, 4, 13, 0, tzinfo=UTC)  # 21:00 in Shanghai, 19:00 in Urumqi
        assert quiet_end(
            quiet, at=at, timezones=("Asia/Shanghai",), institution_zone="Asia/Urumqi"
        ) == datetime(2025, 3, 5, 1, 0, tzinfo=UTC)
        assert quiet_end(quiet, at=at, timezones=("Asia/Urumqi",), institution_zone="UTC") is None
        assert quiet_end(quiet, at=at, timezones=(), institution_zone="Asia/Shanghai") == datetime(
            2025, 3, 5, 1, 0, tzinfo=UTC
        )
        assert quiet_end(None, at=at, timezones=(), institution_zone="Asia/Shanghai") is None


class TestReceipts:
    def test_statuses_of_the_providers(self) -> None:
        assert read_receipt("delivered") is Receipt.DELIVERED
        assert read_receipt("undelivered") is Receipt.FAILED
        assert read_receipt("undelivered", "30005") is Receipt.INVALID_CONTACT
        assert read_receipt("receiving") is None

    def test_a_late_sent_never_undoes_delivered(self) -> None:
        assert receipt_status(OutboxStatus.DELIVERED, Receipt.SENT) is None
        assert receipt_status(OutboxStatus.SENT, Receipt.SENT) is None
        assert receipt_status(OutboxStatus.SENT, Receipt.DELIVERED) is OutboxStatus.DELIVERED


class TestReplies:
    @pytest.mark.parametrize(
        "text", ["STOP", "stop.", " Stop ", "退订", "ＴＤ", "td", "UNSUBSCRIBE"]
    )
    def test_stop_words(self, text: str) -> None:
        assert is_opt_out_reply(text)

    @pytest.mark.parametrize("text", ["I will pay tomorrow", "stop calling me at work", "好的"])
    def test_other_replies(self, text: str) -> None:
        assert not is_opt_out_reply(text)


def test_keys_and_message_ids_are_stable() -> None:
    key = idempotency_key(1, 2, "sms", None)
    assert key == idempotency_key(1, 2, "sms", None) != idempotency_key(1, 2, "sms", 3)
    assert message_id(key, "bank.example") == f"<{key}@bank.example>"


class TestChooseTemplate:
    """Why a planned message is not queued, decided before its contact point is looked up."""

    ENABLED = frozenset({"sms", "email"})
    APPROVED = frozenset({("reminder", "sms"), ("reminder", "letter"), ("notice", "email")})

    def choose(
        self, channel: str | None, template: str | None, campaign: set[str] | None = None
    ) -> Channel | NotQueued:
        return choose_template(
            channel,
            template,
            enabled=self.ENABLED,
            approved=self.APPROVED,
            campaign_channels=campaign,
        )

    def test_an_enabled_channel_with_an_approved_template_is_queued_on_it(self) -> None:
        assert self.choose("sms", "reminder") is Channel.SMS
        assert self.choose("email", "notice") is Channel.EMAIL

    @pytest.mark.parametrize("channel", ["call", "visit", "ai_call", "fax", "", None])
    def test_a_channel_the_outbox_does_not_send(self, channel: str | None) -> None:
        assert self.choose(channel, "reminder") is NotQueued.CHANNEL_NOT_SENT

    def test_a_message_channel_the_institution_has_not_enabled(self) -> None:
        # Approved for letters, but letters are not enabled: the channel is named first.
        assert self.choose("letter", "reminder") is NotQueued.CHANNEL_NOT_ENABLED

    @pytest.mark.parametrize("template", [None, ""])
    def test_no_template_named(self, template: str | None) -> None:
        assert self.choose("sms", template) is NotQueued.NO_TEMPLATE

    def test_a_template_approved_only_on_another_channel(self) -> None:
        assert self.choose("email", "reminder") is NotQueued.TEMPLATE_NOT_APPROVED
        assert self.choose("sms", "unknown") is NotQueued.TEMPLATE_NOT_APPROVED

    def test_a_campaign_sends_its_template_on_its_channel_whatever_the_plan_names(self) -> None:
        assert self.choose("sms", None, campaign={"sms"}) is Channel.SMS
        assert self.choose("sms", "unknown", campaign={"sms"}) is Channel.SMS
        assert self.choose("email", "notice", campaign={"sms"}) is (NotQueued.TEMPLATE_NOT_APPROVED)

    def test_a_campaign_still_needs_an_enabled_message_channel(self) -> None:
        assert self.choose("letter", None, campaign={"letter"}) is NotQueued.CHANNEL_NOT_ENABLED
        assert self.choose("call", None, campaign={"sms"}) is NotQueued.CHANNEL_NOT_SENT
