"""Channels, outcome codes and their meanings, attempt transitions, consent standing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.contact.channels import (
    CHANNELS,
    CONSENT_CHANNELS,
    OUTBOUND_CHANNELS,
    REAL_TIME_CHANNELS,
    VOICE_CHANNELS,
    Channel,
    Medium,
    outbound_channel,
)
from recoup.contact.rules import (
    ACCEPTED_OUTCOME_NAMES,
    CONVERSATIONS,
    FAILED_TO_REACH,
    LEGACY_OUTCOMES,
    OUTCOMES,
    REFUSALS,
    RIGHT_PARTY_CODES,
    AttemptStatus,
    AttemptTransitionRefused,
    ChannelStanding,
    ConsentKind,
    OutcomeCode,
    OutcomeRefused,
    Party,
    channel_standing,
    expired,
    holds_slots,
    import_flags,
    is_effective,
    outcome_problem,
    read_report,
    transition,
)


class TestChannels:
    def test_every_channel_has_its_properties(self) -> None:
        assert set(CHANNELS) == set(Channel)

    def test_voice_and_real_time_channels(self) -> None:
        assert {Channel.CALL, Channel.AI_CALL} == VOICE_CHANNELS
        assert {Channel.CALL, Channel.AI_CALL, Channel.VISIT} == REAL_TIME_CHANNELS

    def test_automated_contact_needs_consent_on_calls_and_texts(self) -> None:
        assert {Channel.CALL, Channel.AI_CALL, Channel.SMS} == CONSENT_CHANNELS

    def test_the_self_service_page_is_inbound_only(self) -> None:
        assert Channel.WEB not in OUTBOUND_CHANNELS
        assert CHANNELS[Channel.WEB].medium is Medium.SELF_SERVICE
        with pytest.raises(ValueError, match="not a channel contacts are made on"):
            outbound_channel("web")
        assert outbound_channel("sms") is Channel.SMS

    def test_names_for_people(self) -> None:
        assert CHANNELS[Channel.AI_CALL].name_zh == "智能语音"
        assert CHANNELS[Channel.VISIT].plural_en == "field visits"


class TestOutcomeMeanings:
    def test_every_code_has_a_meaning(self) -> None:
        assert set(OUTCOMES) == set(OutcomeCode)

    def test_the_gate_sets_are_drawn_from_the_meanings(self) -> None:
        # The gate's former FAILED_TO_REACH: no answer, busy, voicemail, wrong number,
        # unreachable (now switched off) and failed (now message failed); plus a bounce.
        assert {
            OutcomeCode.NO_ANSWER,
            OutcomeCode.BUSY,
            OutcomeCode.VOICEMAIL,
            OutcomeCode.WRONG_NUMBER,
            OutcomeCode.SWITCHED_OFF,
            OutcomeCode.MESSAGE_FAILED,
            OutcomeCode.MESSAGE_BOUNCED,
        } == FAILED_TO_REACH
        assert CONVERSATIONS == RIGHT_PARTY_CODES
        assert OutcomeCode.PROMISE_MADE in RIGHT_PARTY_CODES
        assert {OutcomeCode.REFUSED_CONTACT} == REFUSALS

    @given(st.sampled_from(OutcomeCode))
    def test_a_code_is_a_contact_or_a_failure_never_both(self, code: OutcomeCode) -> None:
        meaning = OUTCOMES[code]
        assert not (meaning.reached and meaning.failed_to_reach)
        assert not (meaning.right_party and meaning.third_party)
        assert meaning.effective == meaning.reached
        assert not meaning.conversation or meaning.right_party

    def test_codes_fit_their_media(self) -> None:
        assert outcome_problem(OutcomeCode.BUSY, Channel.CALL) is None
        assert outcome_problem(OutcomeCode.MESSAGE_BOUNCED, Channel.LETTER) is None
        assert outcome_problem(OutcomeCode.PROMISE_MADE, Channel.VISIT) is None
        assert outcome_problem(OutcomeCode.BUSY, Channel.LETTER) == (
            "outcome busy does not describe a letter"
        )
        assert outcome_problem(OutcomeCode.MESSAGE_DELIVERED, Channel.CALL) is not None


class TestReports:
    def test_a_code_records_a_made_contact(self) -> None:
        report = read_report("promise_made", party=Party.DEBTOR, channel=Channel.CALL)
        assert (report.status, report.outcome) == (AttemptStatus.MADE, OutcomeCode.PROMISE_MADE)

    def test_not_made_cancels(self) -> None:
        report = read_report("not_made", party=Party.DEBTOR, channel=Channel.CALL)
        assert (report.status, report.outcome) == (AttemptStatus.CANCELLED, None)

    @pytest.mark.parametrize(
        ("name", "party", "channel", "code"),
        [
            ("conversation", Party.DEBTOR, Channel.CALL, OutcomeCode.RIGHT_PARTY),
            ("conversation", Party.THIRD_PARTY, Channel.CALL, OutcomeCode.THIRD_PARTY),
            ("refused", Party.THIRD_PARTY, Channel.CALL, OutcomeCode.REFUSED_CONTACT),
            ("refused", Party.DEBTOR, Channel.CALL, OutcomeCode.REFUSED_CONTACT),
            ("unreachable", Party.DEBTOR, Channel.CALL, OutcomeCode.SWITCHED_OFF),
            ("failed", Party.DEBTOR, Channel.SMS, OutcomeCode.MESSAGE_FAILED),
            ("failed", Party.DEBTOR, Channel.VISIT, OutcomeCode.NO_ANSWER),
            ("delivered", Party.DEBTOR, Channel.EMAIL, OutcomeCode.MESSAGE_DELIVERED),
            ("delivered", Party.DEBTOR, Channel.CALL, None),
            ("planned", Party.DEBTOR, Channel.CALL, None),
        ],
    )
    def test_older_names_are_still_taken(
        self, name: str, party: Party, channel: Channel, code: OutcomeCode | None
    ) -> None:
        report = read_report(name, party=party, channel=channel)
        assert (report.status, report.outcome) == (AttemptStatus.MADE, code)

    @given(
        st.sampled_from(ACCEPTED_OUTCOME_NAMES),
        st.sampled_from(Party),
        st.sampled_from(sorted(OUTBOUND_CHANNELS)),
    )
    def test_an_older_name_reads_as_a_code_that_fits_the_channel(
        self, name: str, party: Party, channel: Channel
    ) -> None:
        if name not in LEGACY_OUTCOMES:
            return
        report = read_report(name, party=party, channel=channel)
        if report.outcome is not None:
            assert outcome_problem(report.outcome, channel) is None

    def test_unknown_or_unfit_outcomes_are_refused(self) -> None:
        with pytest.raises(OutcomeRefused, match="unknown outcome 'answered'"):
            read_report("answered", party=Party.DEBTOR, channel=Channel.CALL)
        with pytest.raises(OutcomeRefused, match="does not describe a text message"):
            read_report("busy", party=Party.DEBTOR, channel=Channel.SMS)


class TestEffective:
    def test_the_code_decides(self) -> None:
        assert is_effective(OutcomeCode.RIGHT_PARTY)
        assert not is_effective(OutcomeCode.NO_ANSWER)

    def test_a_caller_may_count_more_but_not_less(self) -> None:
        assert is_effective(OutcomeCode.VOICEMAIL, stated=True)
        assert not is_effective(OutcomeCode.NO_ANSWER, stated=False)
        with pytest.raises(OutcomeRefused, match="is an effective call"):
            is_effective(OutcomeCode.PROMISE_MADE, stated=False)

    def test_a_contact_made_without_a_code_counts_unless_said_otherwise(self) -> None:
        assert is_effective(None)
        assert not is_effective(None, stated=False)


class TestTransitions:
    @pytest.mark.parametrize(
        ("current", "wanted"),
        [
            (AttemptStatus.PLANNED, AttemptStatus.MADE),
            (AttemptStatus.PLANNED, AttemptStatus.CANCELLED),
            (AttemptStatus.PLANNED, AttemptStatus.EXPIRED),
            (AttemptStatus.EXPIRED, AttemptStatus.MADE),
            (AttemptStatus.EXPIRED, AttemptStatus.CANCELLED),
        ],
    )
    def test_allowed_moves(self, current: AttemptStatus, wanted: AttemptStatus) -> None:
        assert transition(current, wanted) is wanted

    @given(
        st.sampled_from([AttemptStatus.MADE, AttemptStatus.CANCELLED]),
        st.sampled_from(AttemptStatus),
    )
    def test_a_reported_attempt_is_final(
        self, current: AttemptStatus, wanted: AttemptStatus
    ) -> None:
        with pytest.raises(AttemptTransitionRefused, match=f"already {current}"):
            transition(current, wanted)

    def test_only_a_cancelled_attempt_frees_its_slots(self) -> None:
        assert [holds_slots(status) for status in AttemptStatus] == [True, True, False, True]

    def test_expiry(self) -> None:
        noon = datetime(2025, 3, 3, 12, tzinfo=UTC)
        assert expired(AttemptStatus.PLANNED, expires_at=noon, now=noon)
        assert not expired(AttemptStatus.PLANNED, expires_at=noon, now=noon.replace(hour=11))
        assert not expired(AttemptStatus.MADE, expires_at=noon, now=noon)


class TestConsent:
    def test_standing_from_rows(self) -> None:
        standing = channel_standing([("sms", "opt_out"), ("call", "consent")])
        assert standing == ChannelStanding(
            opted_out=frozenset({Channel.SMS}), consented=frozenset({Channel.CALL})
        )

    def test_import_flags_read_back(self) -> None:
        standing = ChannelStanding(
            opted_out=frozenset({Channel.CALL, Channel.AI_CALL}),
            consented=frozenset(CONSENT_CHANNELS),
        )
        assert import_flags(standing) == {
            "opt_out_call": True,
            "opt_out_sms": False,
            "opt_out_email": False,
            "consent_automated": True,
        }
        # A flag holds only when every channel it stands for does.
        partial = ChannelStanding(opted_out=frozenset({Channel.CALL}))
        assert import_flags(partial)["opt_out_call"] is False
        assert ConsentKind("opt_out") is ConsentKind.OPT_OUT


class TestOtherDomainsName:
    def test_case_events_are_keyed_by_real_outcome_codes(self) -> None:
        from recoup.cases.rules import OUTCOME_EVENTS

        assert set(OUTCOME_EVENTS) <= {code.value for code in OutcomeCode}
