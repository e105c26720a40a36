"""Edge cases of the contact gate under the CN and US packs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from recoup.compliance.enums import HolidaySuppression
from recoup.compliance.gate.rules import (
    ContactHistory,
    DailyWindow,
    DebtorFacts,
    NaiveDatetime,
    compile_gate,
    decide_batch,
    in_local_day,
    reschedule,
)
from recoup.compliance.policy.rules import (
    ChannelCap,
    ChannelHours,
    Policy,
    PolicyRejected,
    preset_policy,
)
from recoup.compliance.rulepack import load_pack
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from tests.compliance.gate.gate_helpers import (
    ANCHORAGE,
    CN,
    HONOLULU,
    LOS_ANGELES,
    NEW_YORK,
    SHANGHAI,
    US,
    at,
    decide,
    past,
    planned,
)

CN_CONSUMER = preset_policy("consumer_finance", pack=load_pack("CN"))
US_POLICY = preset_policy("consumer_finance", pack=load_pack("US"))
NY = ("America/New_York",)


class TestChinaQuietHours:
    def test_last_second_before_pack_end_is_allowed(self) -> None:
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 21, 59, 59))).allowed

    def test_pack_end_is_blocked_until_eight_next_morning(self) -> None:
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 22, 0, 0)))
        assert not decision.allowed
        assert decision.rule_ids == ("CN-HRS",)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 8, 0)
        assert "22:00" in decision.reasons[0].message_en
        assert "静默时段" in decision.reasons[0].message_zh

    def test_before_eight_waits_for_eight_the_same_day(self) -> None:
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 7, 59, 59)))
        assert decision.rule_ids == ("CN-HRS",)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 3, 8, 0)
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 8, 0, 0))).allowed

    def test_institution_21_00_policy(self) -> None:
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 20, 59, 59)), policy=CN_CONSUMER).allowed
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 21, 0, 0)), policy=CN_CONSUMER)
        assert decision.rule_ids == ("CN-HRS",)
        assert decision.reasons[0].code == "policy_hours"
        assert "your institution only allows calls between 08:00 and 21:00" in (
            decision.reasons[0].message_en
        )
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 8, 0)

    def test_ai_calls_follow_the_same_hours(self) -> None:
        decision = decide(
            planned(at(SHANGHAI, 2025, 3, 3, 21, 30), Channel.AI_CALL), policy=CN_CONSUMER
        )
        assert decision.rule_ids == ("CN-HRS",)

    def test_pack_reason_is_shown_once_when_both_block(self) -> None:
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 23, 0)), policy=CN_CONSUMER)
        assert decision.rule_ids == ("CN-HRS",)
        assert decision.reasons[0].code == "quiet_hours"

    def test_later_policy_start_sets_the_next_time(self) -> None:
        policy = Policy(
            hours=(ChannelHours(channels=frozenset({Channel.CALL}), start=time(9), end=time(20)),)
        )
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 7, 30)), policy=policy)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 3, 9, 0)

    def test_sms_keeps_pack_hours_under_a_call_only_policy(self) -> None:
        assert decide(
            planned(at(SHANGHAI, 2025, 3, 3, 21, 30), Channel.SMS), policy=CN_CONSUMER
        ).allowed
        blocked = decide(planned(at(SHANGHAI, 2025, 3, 3, 22, 30), Channel.SMS), policy=CN_CONSUMER)
        assert blocked.rule_ids == ("CN-HRS",)

    def test_letters_are_not_bound_by_hours(self) -> None:
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 23, 0), Channel.LETTER)).allowed

    def test_agreed_window_opens_quiet_hours(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1", agreed_windows=(DailyWindow(start=time(22), end=time(23)),)
        )
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 22, 30)), facts=facts).allowed
        late = decide(planned(at(SHANGHAI, 2025, 3, 3, 23, 0)), facts=facts)
        assert late.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 8, 0)

    def test_next_agreed_window_can_come_before_eight(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1", agreed_windows=(DailyWindow(start=time(6), end=time(7)),)
        )
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 23, 30)), facts=facts)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 6, 0)

    def test_policy_may_refuse_agreed_windows(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1", agreed_windows=(DailyWindow(start=time(22), end=time(23)),)
        )
        policy = Policy(honour_agreed_windows=False)
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 22, 30)), facts=facts, policy=policy)
        assert decision.rule_ids == ("CN-HRS",)

    def test_inconvenient_window_blocks_until_it_ends(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1", inconvenient_windows=(DailyWindow(start=time(12), end=time(14)),)
        )
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 12, 30)), facts=facts)
        assert decision.rule_ids == ("CN-HRS",)
        assert decision.reasons[0].code == "inconvenient"
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 3, 14, 0)

    def test_weekday_inconvenient_window_skips_other_days(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1",
            inconvenient_windows=(
                DailyWindow(start=time(9), end=time(18), weekdays=frozenset(range(5))),
            ),
        )
        assert not decide(planned(at(SHANGHAI, 2025, 3, 3, 10)), facts=facts).allowed
        assert decide(planned(at(SHANGHAI, 2025, 3, 8, 10)), facts=facts).allowed

    def test_naive_time_is_refused(self) -> None:
        with pytest.raises(NaiveDatetime):
            decide(planned(datetime(2025, 3, 3, 10, 0)))


class TestChinaVoiceFrequency:
    def test_fourth_effective_call_waits_for_the_next_local_day(self) -> None:
        history = tuple(past(at(SHANGHAI, 2025, 3, 3, 9 + hour)) for hour in range(3))
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 15)), history=history)
        assert decision.rule_ids == ("CN-FREQ-V",)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 8, 0)
        assert "3" in decision.reasons[0].message_en
        assert "有效语音通话" in decision.reasons[0].message_zh

    def test_unanswered_calls_do_not_count(self) -> None:
        history = (
            past(at(SHANGHAI, 2025, 3, 3, 9)),
            past(at(SHANGHAI, 2025, 3, 3, 10)),
            *(
                past(
                    at(SHANGHAI, 2025, 3, 3, 11, m), outcome=OutcomeCode.NO_ANSWER, effective=False
                )
                for m in range(5)
            ),
        )
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 15)), history=history).allowed

    def test_ai_calls_count_with_agent_calls(self) -> None:
        history = (
            past(at(SHANGHAI, 2025, 3, 3, 9)),
            past(at(SHANGHAI, 2025, 3, 3, 10)),
            past(at(SHANGHAI, 2025, 3, 3, 11), Channel.AI_CALL),
        )
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 15)), history=history).rule_ids == (
            "CN-FREQ-V",
        )
        assert decide(
            planned(at(SHANGHAI, 2025, 3, 3, 15), Channel.AI_CALL), history=history
        ).rule_ids == ("CN-FREQ-V",)
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 15), Channel.SMS), history=history).allowed

    def test_a_debtor_with_two_accounts(self) -> None:
        history = (
            past(at(SHANGHAI, 2025, 3, 3, 9), account_id="card"),
            past(at(SHANGHAI, 2025, 3, 3, 10), account_id="card"),
            past(at(SHANGHAI, 2025, 3, 3, 11), account_id="cash-loan"),
        )
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 15), account_id="card"), history=history)
        assert decision.rule_ids == ("CN-FREQ-V",)

    def test_an_agency_and_the_creditor_both_calling(self) -> None:
        history = (
            past(at(SHANGHAI, 2025, 3, 3, 9), agency_id="agency-1"),
            past(at(SHANGHAI, 2025, 3, 3, 10), agency_id="agency-1"),
            past(at(SHANGHAI, 2025, 3, 3, 11)),
        )
        creditor = decide(planned(at(SHANGHAI, 2025, 3, 3, 15)), history=history)
        agency = decide(
            planned(at(SHANGHAI, 2025, 3, 3, 15), agency_id="agency-2"), history=history
        )
        assert creditor.rule_ids == agency.rule_ids == ("CN-FREQ-V",)

    def test_daily_cap_rolls_over_at_local_midnight_not_utc(self) -> None:
        # 00:30-02:30 in Shanghai is the previous day in UTC; the calls belong to 3 March locally.
        facts = DebtorFacts(
            debtor_id="d1", agreed_windows=(DailyWindow(start=time(0), end=time(3)),)
        )
        history = tuple(past(datetime(2025, 3, 2, 16 + hour, 30, tzinfo=UTC)) for hour in range(3))
        assert [h.at.astimezone(SHANGHAI).date() for h in history] == [date(2025, 3, 3)] * 3
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 9)), history=history, facts=facts)
        assert decision.rule_ids == ("CN-FREQ-V",)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 0, 0)
        assert decide(planned(at(SHANGHAI, 2025, 3, 4, 0, 0)), history=history, facts=facts).allowed

    def test_previous_local_day_does_not_count(self) -> None:
        history = tuple(past(at(SHANGHAI, 2025, 3, 3, 19, m)) for m in range(3))
        assert decide(planned(at(SHANGHAI, 2025, 3, 4, 8)), history=history).allowed

    def test_policy_can_lower_the_cap(self) -> None:
        policy = Policy(max_effective_voice_calls_per_day=2)
        history = (past(at(SHANGHAI, 2025, 3, 3, 9)), past(at(SHANGHAI, 2025, 3, 3, 10)))
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 15)), history=history, policy=policy)
        assert decision.rule_ids == ("CN-FREQ-V",)

    def test_calls_to_contacts_do_not_count_for_the_debtor(self) -> None:
        history = tuple(
            past(at(SHANGHAI, 2025, 3, 3, 9 + h), party=Party.THIRD_PARTY, third_party_id="m")
            for h in range(3)
        )
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 15)), history=history).allowed


class TestInstitutionCapsAndFlags:
    def test_sms_cap_per_day(self) -> None:
        policy = Policy(channel_caps=(ChannelCap(channels=frozenset({Channel.SMS}), limit=2),))
        history = (
            past(at(SHANGHAI, 2025, 3, 3, 9), Channel.SMS, outcome=OutcomeCode.MESSAGE_DELIVERED),
            past(at(SHANGHAI, 2025, 3, 3, 10), Channel.SMS, outcome=OutcomeCode.MESSAGE_DELIVERED),
        )
        decision = decide(
            planned(at(SHANGHAI, 2025, 3, 3, 15), Channel.SMS), history=history, policy=policy
        )
        assert decision.rule_ids == ("POL-CAP",)
        assert "2" in decision.reasons[0].message_en
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 8, 0)

    def test_weekly_cap_waits_for_the_window_to_pass(self) -> None:
        policy = Policy(
            channel_caps=(ChannelCap(channels=frozenset({Channel.EMAIL}), limit=2, days=7),)
        )
        history = (
            past(at(SHANGHAI, 2025, 3, 1, 9), Channel.EMAIL, outcome=OutcomeCode.MESSAGE_DELIVERED),
            past(at(SHANGHAI, 2025, 3, 3, 9), Channel.EMAIL, outcome=OutcomeCode.MESSAGE_DELIVERED),
        )
        decision = decide(
            planned(at(SHANGHAI, 2025, 3, 5, 10), Channel.EMAIL), history=history, policy=policy
        )
        assert decision.rule_ids == ("POL-CAP",)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 8, 8, 0)

    def test_disabled_channel(self) -> None:
        policy = Policy(disabled_channels=frozenset({Channel.VISIT}))
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 10), Channel.VISIT), policy=policy)
        assert decision.rule_ids == ("POL-CHANNEL",)
        assert decision.next_allowed_at is None

    def test_dispute_pauses_collection_when_the_policy_says_so(self) -> None:
        facts = DebtorFacts(debtor_id="d1", dispute_open=True)
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 10)), facts=facts).allowed
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 10)), facts=facts, policy=CN_CONSUMER)
        assert decision.rule_ids == ("POL-DISPUTE",)

    def test_unrecorded_visit(self) -> None:
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 10), Channel.VISIT, recorded=False))
        assert decision.rule_ids == ("CN-REC",)

    def test_agency_outside_the_registry(self) -> None:
        policy = Policy(approved_agencies=frozenset({"agency-1"}))
        ok = decide(planned(at(SHANGHAI, 2025, 3, 3, 10), agency_id="agency-1"), policy=policy)
        refused = decide(planned(at(SHANGHAI, 2025, 3, 3, 10), agency_id="rogue"), policy=policy)
        assert ok.allowed
        assert refused.rule_ids == ("CN-OUT",)

    @pytest.mark.parametrize(
        ("flag", "code"),
        [
            ("cease_contact", "cease_contact"),
            ("deceased", "deceased"),
            ("bankruptcy", "bankruptcy"),
            ("attorney_represented", "attorney"),
        ],
    )
    def test_stop_statuses_never_reopen(self, flag: str, code: str) -> None:
        facts = DebtorFacts(debtor_id="d1", **{flag: True})  # type: ignore[arg-type]
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 23)), facts=facts)
        assert "CN-STOP" in decision.rule_ids
        assert code in {reason.code for reason in decision.reasons}
        assert decision.next_allowed_at is None

    def test_channel_opt_out_leaves_other_channels(self) -> None:
        facts = DebtorFacts(debtor_id="d1", opted_out_channels=frozenset({Channel.SMS}))
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 10), Channel.SMS), facts=facts).rule_ids == (
            "CN-STOP",
        )
        assert decide(planned(at(SHANGHAI, 2025, 3, 3, 10)), facts=facts).allowed


class TestChinaHolidays:
    def test_tiaoxiu_sunday_is_a_working_day(self) -> None:
        policy = Policy(holiday_suppression=HolidaySuppression.NON_WORKING_DAYS)
        assert decide(planned(at(SHANGHAI, 2025, 1, 26, 10)), policy=policy).allowed

    def test_ordinary_saturday_is_not(self) -> None:
        policy = Policy(holiday_suppression=HolidaySuppression.NON_WORKING_DAYS)
        decision = decide(planned(at(SHANGHAI, 2025, 1, 25, 10)), policy=policy)
        assert decision.rule_ids == ("POL-HOLIDAY",)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 1, 26, 8, 0)

    def test_spring_festival_under_non_working_days(self) -> None:
        policy = Policy(holiday_suppression=HolidaySuppression.NON_WORKING_DAYS)
        decision = decide(planned(at(SHANGHAI, 2025, 1, 29, 10)), policy=policy)
        assert decision.rule_ids == ("POL-HOLIDAY",)
        assert "Spring Festival" in decision.reasons[0].message_en
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 2, 5, 8, 0)

    def test_spring_festival_under_public_holidays_only(self) -> None:
        policy = Policy(holiday_suppression=HolidaySuppression.PUBLIC_HOLIDAYS)
        decision = decide(planned(at(SHANGHAI, 2025, 1, 29, 10)), policy=policy)
        # The whole official break (28 January – 4 February) is the holiday, weekend included.
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 2, 5, 8, 0)

    @pytest.mark.parametrize(
        ("day", "festival"),
        [
            (date(2026, 10, 4), "National Day"),
            (date(2026, 2, 15), "Chinese New Year"),
            (date(2026, 2, 21), "Chinese New Year"),
            (date(2026, 2, 22), "Chinese New Year"),
            (date(2026, 5, 3), "Labor Day"),
            (date(2026, 9, 27), "Mid-Autumn"),
            (date(2026, 1, 3), "New Year"),
        ],
    )
    def test_weekend_days_inside_an_official_break_are_holidays(
        self, day: date, festival: str
    ) -> None:
        policy = Policy(holiday_suppression=HolidaySuppression.PUBLIC_HOLIDAYS)
        assert day.weekday() >= 5
        decision = decide(planned(at(SHANGHAI, day.year, day.month, day.day, 10)), policy=policy)
        assert decision.rule_ids == ("POL-HOLIDAY",)
        assert festival in decision.reasons[0].message_en

    def test_national_day_break_ends_with_the_break(self) -> None:
        policy = Policy(holiday_suppression=HolidaySuppression.PUBLIC_HOLIDAYS)
        decision = decide(planned(at(SHANGHAI, 2026, 10, 4, 10)), policy=policy)
        assert decision.next_allowed_at == at(SHANGHAI, 2026, 10, 8, 8, 0)

    @pytest.mark.parametrize(
        "day",
        [
            date(2026, 10, 10),  # a make-up working Saturday after National Day
            date(2026, 10, 11),  # an ordinary Sunday after it
            date(2026, 3, 7),  # an ordinary Saturday
        ],
    )
    def test_days_outside_a_break_stay_open(self, day: date) -> None:
        policy = Policy(holiday_suppression=HolidaySuppression.PUBLIC_HOLIDAYS)
        assert decide(
            planned(at(SHANGHAI, day.year, day.month, day.day, 10)), policy=policy
        ).allowed

    def test_blackout_dates(self) -> None:
        policy = Policy(blackout_dates=frozenset({date(2025, 3, 3)}))
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 10)), policy=policy)
        assert decision.rule_ids == ("POL-HOLIDAY",)
        assert decision.next_allowed_at == at(SHANGHAI, 2025, 3, 4, 8, 0)


class TestChinaThirdParties:
    def failures(self, count: int) -> tuple:
        return tuple(
            past(at(SHANGHAI, 2025, 3, 1 + day, 10), outcome=OutcomeCode.NO_ANSWER, effective=False)
            for day in range(count)
        )

    def contact(self, third_party_id: str = "mother") -> object:
        return planned(
            at(SHANGHAI, 2025, 3, 10, 10), party=Party.THIRD_PARTY, third_party_id=third_party_id
        )

    def test_allowed_once_the_debtor_is_evidenced_unreachable(self) -> None:
        assert decide(self.contact(), history=self.failures(3)).allowed  # type: ignore[arg-type]

    def test_blocked_while_the_debtor_may_be_reachable(self) -> None:
        decision = decide(self.contact(), history=self.failures(2))  # type: ignore[arg-type]
        assert decision.rule_ids == ("CN-TGT",)
        assert decision.next_allowed_at is None
        assert "2 failed attempts" in decision.reasons[0].message_en

    def test_a_recent_conversation_means_reachable(self) -> None:
        history = (*self.failures(3), past(at(SHANGHAI, 2025, 3, 8, 10)))
        assert decide(self.contact(), history=history).rule_ids == ("CN-TGT",)  # type: ignore[arg-type]

    def test_old_failures_fall_out_of_the_lookback(self) -> None:
        history = tuple(
            past(at(SHANGHAI, 2025, 1, 1 + d, 10), outcome=OutcomeCode.NO_ANSWER) for d in range(5)
        )
        assert decide(self.contact(), history=history).rule_ids == ("CN-TGT",)  # type: ignore[arg-type]

    def test_never_after_that_contact_refused(self) -> None:
        refused = past(
            at(SHANGHAI, 2025, 3, 5, 10),
            party=Party.THIRD_PARTY,
            outcome=OutcomeCode.REFUSED_CONTACT,
            third_party_id="mother",
        )
        history = (*self.failures(3), refused)
        decision = decide(self.contact("mother"), history=history)  # type: ignore[arg-type]
        assert decision.rule_ids == ("CN-TGT",)
        assert decision.reasons[0].code == "third_party_refused"
        assert decide(self.contact("brother"), history=history).allowed  # type: ignore[arg-type]

    def test_policy_may_require_more_failures(self) -> None:
        policy = Policy(third_party_min_failed_attempts=5)
        decision = decide(self.contact(), history=self.failures(4), policy=policy)  # type: ignore[arg-type]
        assert decision.rule_ids == ("CN-TGT",)


class TestUnitedStatesHours:
    def test_nine_pm_boundary(self) -> None:
        assert decide(planned(at(NEW_YORK, 2025, 6, 2, 20, 59, 59)), pack=US, timezones=NY).allowed
        decision = decide(planned(at(NEW_YORK, 2025, 6, 2, 21, 0, 0)), pack=US, timezones=NY)
        assert decision.rule_ids == ("US-HRS",)
        assert decision.next_allowed_at == at(NEW_YORK, 2025, 6, 3, 8, 0)

    def test_address_and_phone_zones_must_both_allow(self) -> None:
        attempt = planned(
            at(NEW_YORK, 2025, 6, 2, 8, 30), contact_point_timezone="America/Los_Angeles"
        )
        decision = decide(attempt, pack=US, timezones=NY)
        assert decision.rule_ids == ("US-HRS",)
        assert "America/Los_Angeles" in decision.reasons[0].message_en
        assert decision.next_allowed_at == at(LOS_ANGELES, 2025, 6, 2, 8, 0)
        assert decision.timezones == ("America/New_York", "America/Los_Angeles")

    def test_evening_is_limited_by_the_eastern_zone(self) -> None:
        attempt = planned(
            at(LOS_ANGELES, 2025, 6, 2, 18, 30), contact_point_timezone="America/Los_Angeles"
        )
        decision = decide(attempt, pack=US, timezones=NY)
        assert decision.rule_ids == ("US-HRS",)
        # Next morning: 08:00 in Los Angeles is 11:00 in New York, both fine.
        assert decision.next_allowed_at == at(LOS_ANGELES, 2025, 6, 3, 8, 0)

    def test_hawaii_has_no_dst(self) -> None:
        honolulu = ("Pacific/Honolulu",)
        decision = decide(planned(at(HONOLULU, 2025, 7, 1, 7, 59)), pack=US, timezones=honolulu)
        assert decision.next_allowed_at == at(HONOLULU, 2025, 7, 1, 8, 0)
        assert decision.next_allowed_at.astimezone(UTC) == datetime(2025, 7, 1, 18, tzinfo=UTC)
        winter = decide(planned(at(HONOLULU, 2025, 1, 6, 21)), pack=US, timezones=honolulu)
        assert winter.next_allowed_at.astimezone(UTC) == datetime(2025, 1, 7, 18, tzinfo=UTC)

    def test_alaska(self) -> None:
        alaska = ("America/Anchorage",)
        moment = datetime(2025, 7, 2, 4, 30, tzinfo=UTC)  # 20:30 AKDT, 00:30 in New York
        assert decide(planned(moment), pack=US, timezones=alaska).allowed
        assert not decide(planned(moment), pack=US, timezones=NY).allowed
        late = decide(planned(at(ANCHORAGE, 2025, 7, 1, 21, 0)), pack=US, timezones=alaska)
        assert late.next_allowed_at == at(ANCHORAGE, 2025, 7, 2, 8, 0)

    def test_spring_forward_gap(self) -> None:
        decision = decide(planned(at(NEW_YORK, 2025, 3, 9, 1, 30)), pack=US, timezones=NY)
        assert decision.next_allowed_at is not None
        assert decision.next_allowed_at.astimezone(UTC) == datetime(2025, 3, 9, 12, tzinfo=UTC)
        assert not decide(
            planned(datetime(2025, 3, 9, 11, 59, 59, tzinfo=UTC)), pack=US, timezones=NY
        ).allowed

    def test_fall_back_overlap(self) -> None:
        decision = decide(planned(at(NEW_YORK, 2025, 11, 1, 22, 0)), pack=US, timezones=NY)
        assert decision.next_allowed_at.astimezone(UTC) == datetime(2025, 11, 2, 13, tzinfo=UTC)
        ambiguous = planned(at(NEW_YORK, 2025, 11, 2, 1, 30, fold=1))
        assert decide(ambiguous, pack=US, timezones=NY).rule_ids == ("US-HRS",)

    def test_inconvenient_time_named_by_the_consumer(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1",
            timezones=NY,
            inconvenient_windows=(DailyWindow(start=time(9), end=time(17)),),
        )
        decision = decide(planned(at(NEW_YORK, 2025, 6, 2, 10)), pack=US, facts=facts)
        assert decision.rule_ids == ("US-INCONV",)
        assert decision.next_allowed_at == at(NEW_YORK, 2025, 6, 2, 17, 0)

    def test_overnight_inconvenient_window(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1",
            timezones=NY,
            inconvenient_windows=(DailyWindow(start=time(20), end=time(9)),),
        )
        decision = decide(planned(at(NEW_YORK, 2025, 6, 2, 8, 30)), pack=US, facts=facts)
        assert decision.rule_ids == ("US-INCONV",)
        assert decision.next_allowed_at == at(NEW_YORK, 2025, 6, 2, 9, 0)


class TestSevenInSeven:
    def test_eighth_attempt_in_seven_days_is_blocked(self) -> None:
        history = tuple(
            past(at(NEW_YORK, 2025, 6, 2 + day, 10), outcome=OutcomeCode.NO_ANSWER, effective=False)
            for day in range(7)
        )
        decision = decide(
            planned(at(NEW_YORK, 2025, 6, 8, 15)), pack=US, history=history, timezones=NY
        )
        assert decision.rule_ids == ("US-7IN7",)
        assert decision.next_allowed_at == at(NEW_YORK, 2025, 6, 9, 8, 0)
        assert decide(
            planned(at(NEW_YORK, 2025, 6, 9, 8)), pack=US, history=history, timezones=NY
        ).allowed

    def test_seven_on_one_day_block_the_week(self) -> None:
        history = tuple(
            past(at(NEW_YORK, 2025, 6, 2, 9 + h), outcome=OutcomeCode.NO_ANSWER) for h in range(7)
        )
        decision = decide(
            planned(at(NEW_YORK, 2025, 6, 5, 10)), pack=US, history=history, timezones=NY
        )
        assert decision.rule_ids == ("US-7IN7",)
        assert decision.next_allowed_at == at(NEW_YORK, 2025, 6, 9, 8, 0)

    def test_counts_per_debt(self) -> None:
        history = tuple(
            past(at(NEW_YORK, 2025, 6, 2, 9 + h), outcome=OutcomeCode.NO_ANSWER, account_id="other")
            for h in range(7)
        )
        assert decide(
            planned(at(NEW_YORK, 2025, 6, 3, 10)), pack=US, history=history, timezones=NY
        ).allowed

    def test_no_call_within_seven_days_after_a_conversation(self) -> None:
        history = (past(at(NEW_YORK, 2025, 6, 2, 10), outcome=OutcomeCode.RIGHT_PARTY),)
        decision = decide(
            planned(at(NEW_YORK, 2025, 6, 8, 10)), pack=US, history=history, timezones=NY
        )
        assert decision.rule_ids == ("US-7IN7",)
        assert decision.reasons[0].code == "after_conversation"
        assert decision.next_allowed_at == at(NEW_YORK, 2025, 6, 9, 8, 0)
        sms = planned(at(NEW_YORK, 2025, 6, 8, 10), Channel.SMS)
        facts = DebtorFacts(
            debtor_id="d1", timezones=NY, automated_consent=frozenset({Channel.SMS})
        )
        assert decide(sms, pack=US, history=history, facts=facts).allowed


class TestUnitedStatesStatuses:
    @pytest.mark.parametrize(
        ("flag", "rule_id"),
        [
            ("cease_contact", "US-CEASE"),
            ("attorney_represented", "US-ATTY"),
            ("bankruptcy", "US-BANKR"),
            ("deceased", "US-DECEASED"),
            ("dispute_open", "US-VAL"),
        ],
    )
    def test_status_blocks_with_no_later_time(self, flag: str, rule_id: str) -> None:
        facts = DebtorFacts(debtor_id="d1", timezones=NY, **{flag: True})  # type: ignore[arg-type]
        decision = decide(planned(at(NEW_YORK, 2025, 6, 2, 10)), pack=US, facts=facts)
        assert decision.rule_ids == (rule_id,)
        assert decision.next_allowed_at is None

    def test_medium_opt_out(self) -> None:
        facts = DebtorFacts(
            debtor_id="d1", timezones=NY, opted_out_channels=frozenset({Channel.EMAIL})
        )
        decision = decide(
            planned(at(NEW_YORK, 2025, 6, 2, 10), Channel.EMAIL), pack=US, facts=facts
        )
        assert decision.rule_ids == ("US-MEDIUM",)

    def test_automated_calls_and_texts_need_consent(self) -> None:
        moment = at(NEW_YORK, 2025, 6, 2, 10)
        assert decide(planned(moment, Channel.AI_CALL), pack=US, timezones=NY).rule_ids == (
            "US-TCPA",
        )
        assert decide(planned(moment, Channel.SMS), pack=US, timezones=NY).rule_ids == ("US-TCPA",)
        assert decide(planned(moment, automated=True), pack=US, timezones=NY).rule_ids == (
            "US-TCPA",
        )
        assert decide(planned(moment), pack=US, timezones=NY).allowed
        assert decide(
            planned(moment, Channel.AI_CALL, to_mobile=False), pack=US, timezones=NY
        ).allowed
        consent = DebtorFacts(
            debtor_id="d1", timezones=NY, automated_consent=frozenset({Channel.AI_CALL})
        )
        assert decide(planned(moment, Channel.AI_CALL), pack=US, facts=consent).allowed

    def test_workplace(self) -> None:
        facts = DebtorFacts(debtor_id="d1", timezones=NY, work_contact_forbidden=True)
        moment = at(NEW_YORK, 2025, 6, 2, 10)
        assert decide(planned(moment, at_workplace=True), pack=US, facts=facts).rule_ids == (
            "US-WORK",
        )
        assert decide(planned(moment), pack=US, facts=facts).allowed

    def test_validation_notice_overdue_blocks_all_but_the_letter(self) -> None:
        facts = DebtorFacts(debtor_id="d1", timezones=NY, initial_communication_on=date(2025, 6, 2))
        assert decide(planned(at(NEW_YORK, 2025, 6, 7, 10)), pack=US, facts=facts).allowed
        decision = decide(planned(at(NEW_YORK, 2025, 6, 8, 10)), pack=US, facts=facts)
        assert decision.rule_ids == ("US-VAL",)
        assert decision.next_allowed_at is None
        assert decide(
            planned(at(NEW_YORK, 2025, 6, 8, 10), Channel.LETTER), pack=US, facts=facts
        ).allowed
        sent = DebtorFacts(
            debtor_id="d1",
            timezones=NY,
            initial_communication_on=date(2025, 6, 2),
            validation_notice_sent_on=date(2025, 6, 3),
        )
        assert decide(planned(at(NEW_YORK, 2025, 6, 8, 10)), pack=US, facts=sent).allowed

    def test_location_call_once_per_third_party(self) -> None:
        failures = tuple(
            past(at(NEW_YORK, 2025, 6, 1 + d, 10), outcome=OutcomeCode.NO_ANSWER) for d in range(3)
        )
        neighbour = past(
            at(NEW_YORK, 2025, 6, 5, 10),
            party=Party.THIRD_PARTY,
            outcome=OutcomeCode.RIGHT_PARTY,
            third_party_id="neighbour",
        )
        attempt = planned(
            at(NEW_YORK, 2025, 6, 9, 10), party=Party.THIRD_PARTY, third_party_id="neighbour"
        )
        assert decide(attempt, pack=US, history=failures, timezones=NY).allowed
        decision = decide(attempt, pack=US, history=(*failures, neighbour), timezones=NY)
        assert decision.rule_ids == ("US-3P",)
        assert decision.reasons[0].code == "third_party_limit"


class TestPolicyOverlayAtTheGate:
    def test_looser_policy_is_refused_when_compiling(self) -> None:
        policy = Policy(
            hours=(
                ChannelHours(channels=frozenset({Channel.CALL}), start=time(8), end=time(22, 30)),
            )
        )
        with pytest.raises(PolicyRejected) as error:
            compile_gate(CN, policy)
        assert error.value.violations[0].rule_id == "CN-HRS"

    def test_us_policy_cannot_stop_pausing_on_dispute(self) -> None:
        with pytest.raises(PolicyRejected, match="US-VAL"):
            compile_gate(US, Policy(pause_on_dispute=False))


class TestBatch:
    def test_caps_apply_within_the_batch(self) -> None:
        gate = compile_gate(CN, CN_CONSUMER)
        attempts = [
            planned(at(SHANGHAI, 2025, 3, 3, 9 + hour), debtor_id=debtor)
            for debtor in ("d1", "d2")
            for hour in range(5)
        ]
        facts = {d: DebtorFacts(debtor_id=d) for d in ("d1", "d2")}
        decisions = decide_batch(attempts, facts=facts, histories={}, gate=gate)
        assert [d.allowed for d in decisions] == [True, True, True, False, False] * 2
        assert decisions[3].rule_ids == ("CN-FREQ-V",)

    def test_histories_are_used_and_not_mutated(self) -> None:
        gate = compile_gate(CN)
        history = ContactHistory(attempts=(past(at(SHANGHAI, 2025, 3, 3, 8)),) * 2)
        attempts = [planned(at(SHANGHAI, 2025, 3, 3, 10)), planned(at(SHANGHAI, 2025, 3, 3, 11))]
        decisions = decide_batch(
            attempts,
            facts={"d1": DebtorFacts(debtor_id="d1")},
            histories={"d1": history},
            gate=gate,
        )
        assert [d.allowed for d in decisions] == [True, False]
        assert len(history.attempts) == 2

    def test_missing_facts_are_an_error(self) -> None:
        with pytest.raises(KeyError, match="no debtor facts"):
            decide_batch(
                [planned(at(SHANGHAI, 2025, 3, 3, 10))],
                facts={},
                histories={},
                gate=compile_gate(CN),
            )

    def test_reschedule_moves_to_the_next_allowed_time(self) -> None:
        attempt = planned(at(SHANGHAI, 2025, 3, 3, 23))
        decision = decide(attempt)
        moved = reschedule(attempt, decision)
        assert moved is not None
        assert moved.at == at(SHANGHAI, 2025, 3, 4, 8)
        assert decide(moved).allowed
        stopped = decide(attempt, facts=DebtorFacts(debtor_id="d1", deceased=True))
        assert reschedule(attempt, stopped) is None

    def test_decision_records_versions(self) -> None:
        decision = decide(planned(at(SHANGHAI, 2025, 3, 3, 10)), policy=CN_CONSUMER)
        assert (decision.pack_code, decision.pack_version) == ("CN", CN.version)
        assert decision.policy_name == CN_CONSUMER.name
        assert decision.timezones == ("Asia/Shanghai",)
        assert decision.at + timedelta(0) == at(SHANGHAI, 2025, 3, 3, 10)


class TestFactsReadByPack:
    def test_us_only_facts_are_asked_only_where_a_us_rule_reads_them(self) -> None:
        from recoup.compliance.facts.rules import facts_read_by
        from recoup.compliance.rulepack import load_pack

        fields = ("cease_contact", "work_contact_forbidden", "validation_notice_sent_on")
        assert facts_read_by(load_pack("CN"), fields) == ("cease_contact",)
        assert facts_read_by(load_pack("US"), fields) == fields


class TestInLocalDay:
    """A plan for the morning moves to the debtor's morning in every zone they may be in."""

    def test_a_debtor_west_of_the_institution_waits_for_their_own_morning(self) -> None:
        gate = compile_gate(US)
        facts = DebtorFacts(debtor_id="d1", timezones=("America/Los_Angeles",))
        moved = in_local_day(gate, planned(at(NEW_YORK, 2025, 3, 3, 9, 30)), facts, time(9, 30))
        assert moved.at == at(LOS_ANGELES, 2025, 3, 3, 9, 30)
        assert decide(moved, pack=US, facts=facts).allowed

    def test_every_zone_counts_and_the_latest_morning_wins(self) -> None:
        gate = compile_gate(US)
        facts = DebtorFacts(debtor_id="d1", timezones=("America/New_York", "Pacific/Honolulu"))
        moved = in_local_day(gate, planned(at(NEW_YORK, 2025, 3, 3, 9, 30)), facts, time(9, 30))
        assert moved.at == at(HONOLULU, 2025, 3, 3, 9, 30)  # 14:30 (15:30 in March) in New York
        assert decide(moved, pack=US, facts=facts).allowed

    def test_a_contact_point_zone_counts_too(self) -> None:
        gate = compile_gate(CN)
        facts = DebtorFacts(debtor_id="d1", timezones=("Asia/Shanghai",))
        attempt = replace(
            planned(at(SHANGHAI, 2025, 3, 3, 9, 30)), contact_point_timezone="Asia/Urumqi"
        )
        moved = in_local_day(gate, attempt, facts, time(9, 30))
        assert moved.at == at(SHANGHAI, 2025, 3, 3, 11, 30)
        assert moved.contact_point_timezone == "Asia/Urumqi"

    def test_a_zone_east_of_the_institution_reads_its_own_date(self) -> None:
        gate = compile_gate(US)
        facts = DebtorFacts(debtor_id="d1", timezones=("Pacific/Guam",))
        # 09:30 in New York is 00:30 the next day on Guam: that day's 09:30 there.
        moved = in_local_day(gate, planned(at(NEW_YORK, 2025, 3, 3, 9, 30)), facts, time(9, 30))
        assert moved.at == datetime(2025, 3, 4, 9, 30, tzinfo=ZoneInfo("Pacific/Guam"))

    def test_a_later_plan_stays_where_it_is(self) -> None:
        gate = compile_gate(CN)
        attempt = planned(at(SHANGHAI, 2025, 3, 3, 15, 0))
        facts = DebtorFacts(debtor_id="d1", timezones=("Asia/Shanghai", "Asia/Urumqi"))
        assert in_local_day(gate, attempt, facts, time(9, 30)) is attempt
