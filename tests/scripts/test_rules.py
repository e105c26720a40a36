"""Which script situation a conversation gets, and the rates a script's outcomes give."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.compliance.templates.rules import script_audience, script_problem
from recoup.contact.rules import OutcomeCode
from recoup.enums import ScriptSituation
from recoup.scripts.rules import (
    Answered,
    Conversation,
    ScriptOutcomes,
    SuggestionReason,
    script_rates,
    suggest_situation,
)

S = ScriptSituation


class TestSuggestion:
    @pytest.mark.parametrize(
        ("conversation", "situation", "reason"),
        [
            (Conversation(), S.first_contact, SuggestionReason.OPENING),
            (Conversation(case_state="open"), S.first_contact, SuggestionReason.OPENING),
            (
                Conversation(answered=Answered.WRONG_NUMBER, case_state="disputed"),
                S.wrong_number,
                SuggestionReason.WRONG_NUMBER,
            ),
            (
                Conversation(answered=Answered.THIRD_PARTY, last_outcome="abusive"),
                S.third_party,
                SuggestionReason.THIRD_PARTY,
            ),
            (
                Conversation(last_outcome=OutcomeCode.ABUSIVE, case_state="disputed"),
                S.anger_or_abuse,
                SuggestionReason.ABUSIVE_LAST_TIME,
            ),
            (Conversation(case_state="disputed"), S.dispute, SuggestionReason.DISPUTED),
            (Conversation(last_outcome="dispute"), S.dispute, SuggestionReason.DISPUTED),
            (
                Conversation(case_state="paused", case_reason="hardship"),
                S.hardship,
                SuggestionReason.HARDSHIP,
            ),
            (Conversation(last_outcome="hardship"), S.hardship, SuggestionReason.HARDSHIP),
            (
                Conversation(case_state="paused", case_reason="complaint"),
                S.first_contact,
                SuggestionReason.OPENING,
            ),
            (
                Conversation(case_state="promised", refusals=5),
                S.promise_confirmation,
                SuggestionReason.PROMISE_RUNNING,
            ),
            (
                Conversation(case_state="on_plan"),
                S.promise_confirmation,
                SuggestionReason.PLAN_RUNNING,
            ),
            (
                Conversation(refusals=2, last_outcome="refused_to_pay"),
                S.plan_offer,
                SuggestionReason.REPEATED_REFUSALS,
            ),
            (
                Conversation(promise_broken=True),
                S.plan_offer,
                SuggestionReason.PROMISE_BROKEN,
            ),
            (
                Conversation(refusals=1, last_outcome="refused_to_pay"),
                S.refusal_to_pay,
                SuggestionReason.REFUSED_LAST_TIME,
            ),
        ],
    )
    def test_the_first_rule_that_applies_wins(
        self, conversation: Conversation, situation: ScriptSituation, reason: SuggestionReason
    ) -> None:
        suggestion = suggest_situation(conversation)
        assert (suggestion.situation, suggestion.reason) == (situation, reason)

    @given(
        state=st.sampled_from([None, "open", "promised", "on_plan", "disputed", "paused"]),
        reason=st.sampled_from([None, "hardship", "complaint", "cease"]),
        outcome=st.sampled_from([None, *OutcomeCode]),
        refusals=st.integers(0, 10),
        broken=st.booleans(),
    )
    def test_someone_else_on_the_line_never_gets_a_script_about_the_debt(
        self,
        state: str | None,
        reason: str | None,
        outcome: str | None,
        refusals: int,
        broken: bool,
    ) -> None:
        for answered in (Answered.THIRD_PARTY, Answered.WRONG_NUMBER):
            suggestion = suggest_situation(
                Conversation(
                    case_state=state,
                    case_reason=reason,
                    last_outcome=outcome,
                    answered=answered,
                    refusals=refusals,
                    promise_broken=broken,
                )
            )
            assert script_audience(suggestion.situation).value == "third_party"


class TestScriptFields:
    def test_a_script_needs_a_situation_guidance_a_spoken_channel_and_its_audience(
        self,
    ) -> None:
        ok = {"kind": "script", "situation": "hardship", "guidance": "listen", "channel": "call"}
        assert script_problem(**ok, audience="debtor") is None
        assert script_problem(**{**ok, "situation": "chat"})[0] == "situation"  # type: ignore[index]
        assert script_problem(**{**ok, "guidance": " "})[0] == "guidance"  # type: ignore[index]
        assert script_problem(**{**ok, "channel": "sms"})[0] == "channel"  # type: ignore[index]
        assert script_problem(**ok, audience="third_party")[0] == "audience"  # type: ignore[index]
        third = {**ok, "situation": "third_party"}
        assert script_problem(**third, audience="debtor")[0] == "audience"  # type: ignore[index]

    def test_a_message_template_has_no_situation(self) -> None:
        assert script_problem(kind=None, situation=None, guidance=None, channel="sms") is None
        refused = script_problem(kind=None, situation="dispute", guidance=None, channel="sms")
        assert refused is not None
        assert refused[0] == "situation"


class TestRates:
    def test_rates_divide_by_what_they_are_about(self) -> None:
        rates = script_rates(
            ScriptOutcomes(
                attempts=10,
                right_party=5,
                promises=2,
                promises_resolved=2,
                promises_kept=1,
                disputes=1,
                complaints=0,
            )
        )
        assert (rates.promise_rate, rates.kept_rate, rates.dispute_rate, rates.complaint_rate) == (
            0.4,
            0.5,
            0.1,
            0.0,
        )

    def test_nothing_to_divide_is_no_rate(self) -> None:
        rates = script_rates(
            ScriptOutcomes(
                attempts=0,
                right_party=0,
                promises=0,
                promises_resolved=0,
                promises_kept=0,
                disputes=0,
                complaints=0,
            )
        )
        assert rates.promise_rate is None
        assert rates.kept_rate is None
