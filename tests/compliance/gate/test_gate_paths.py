"""The batch gate's shortcuts give exactly what the plain rules and constructors give."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from recoup.compliance.facts.rules import InconvenientPlace
from recoup.compliance.gate.rules import (
    ContactHistory,
    DailyWindow,
    DebtorFacts,
    Decision,
    PastContact,
    PlannedContact,
    Reason,
    batch_debtor_facts,
    compile_gate,
    decide_batch,
    decide_contact,
    in_local_day,
    in_local_days,
)
from recoup.compliance.policy.rules import ChannelCap, Policy
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from tests.compliance.gate.gate_helpers import LOS_ANGELES, NEW_YORK, US, at, past, planned

TWO_ZONES = ("America/New_York", "America/Los_Angeles")


def _matches_single_decisions(
    attempts: list[PlannedContact],
    facts: dict[str, DebtorFacts],
    histories: dict[str, ContactHistory],
    policy: Policy | None = None,
) -> list[Decision]:
    """Decide in one batch and check each decision against decide_contact."""
    decisions = decide_batch(
        attempts, facts=facts, histories=histories, gate=compile_gate(US, policy)
    )
    running = dict(histories)
    for attempt, decision in zip(attempts, decisions, strict=True):
        history = running.get(attempt.debtor_id, ContactHistory())
        single = decide_contact(
            attempt, facts=facts[attempt.debtor_id], history=history, pack=US, policy=policy
        )
        assert decision == single, attempt
        assert [r.message_en for r in decision.reasons] == [r.message_en for r in single.reasons]
        assert decision.next_allowed_at == single.next_allowed_at
        if decision.allowed:
            running[attempt.debtor_id] = history.with_attempt(
                PastContact(
                    at=attempt.at,
                    channel=attempt.channel,
                    party=attempt.party,
                    outcome=None,
                    effective=True,
                    account_id=attempt.account_id,
                    third_party_id=attempt.third_party_id,
                    agency_id=attempt.agency_id,
                )
            )
    return decisions


class TestDecisionsAreOrdinaryDecisions:
    def test_allowed_decision_equals_one_built_by_its_constructor(self) -> None:
        moment = at(NEW_YORK, 2025, 6, 2, 12)
        gate = compile_gate(US)
        [decision] = decide_batch(
            [planned(moment)],
            facts={"d1": DebtorFacts(debtor_id="d1", timezones=TWO_ZONES)},
            histories={},
            gate=gate,
        )
        built = Decision(
            allowed=True,
            reasons=(),
            next_allowed_at=None,
            at=moment,
            timezones=TWO_ZONES,
            pack_code=US.code,
            pack_version=US.version,
            policy_name=gate.policy.name,
            policy_version=gate.policy.version,
        )
        assert decision == built
        assert repr(decision) == repr(built)
        assert hash(decision) == hash(built)
        assert decision.at is moment

    def test_blocked_decision_and_reason_equal_constructed_ones(self) -> None:
        moment = at(NEW_YORK, 2025, 6, 2, 7, 30)
        gate = compile_gate(US)
        [decision] = decide_batch(
            [planned(moment)],
            facts={"d1": DebtorFacts(debtor_id="d1", timezones=("America/New_York",))},
            histories={},
            gate=gate,
        )
        [reason] = decision.reasons
        assert isinstance(reason, Reason)
        assert reason == Reason("US-HRS", "quiet_hours", reason.template, dict)
        assert "07:30" in reason.message_en
        assert decision == Decision(
            False,
            (reason,),
            at(NEW_YORK, 2025, 6, 2, 8),
            moment,
            ("America/New_York",),
            US.code,
            US.version,
            gate.policy.name,
            gate.policy.version,
        )
        assert repr(decision).startswith("Decision(allowed=False, reasons=(Reason(rule_id='US-HRS'")


class TestPerDebtorShortcuts:
    def test_standing_blocks_follow_each_attempts_own_flags(self) -> None:
        # One debtor, the same channels with different flags in one batch: the standing
        # blocks kept for the default flags must not leak to the others, nor back.
        facts = {
            "d1": DebtorFacts(
                debtor_id="d1",
                timezones=("America/New_York",),
                work_contact_forbidden=True,
            )
        }
        moment = at(NEW_YORK, 2025, 6, 2, 10)
        attempts = [
            planned(moment, Channel.SMS),
            planned(moment + timedelta(minutes=1), Channel.SMS, to_mobile=False),
            planned(moment + timedelta(minutes=2), Channel.CALL, automated=True),
            planned(moment + timedelta(minutes=3), Channel.CALL),
            planned(moment + timedelta(minutes=4), Channel.CALL, at_workplace=True),
            planned(moment + timedelta(minutes=5), Channel.CALL),
            planned(moment + timedelta(minutes=6), Channel.SMS),
        ]
        decisions = _matches_single_decisions(attempts, facts, {})
        assert [decision.rule_ids for decision in decisions] == [
            ("US-TCPA",),
            (),
            ("US-TCPA",),
            (),
            ("US-WORK",),
            (),
            ("US-TCPA",),
        ]

    def test_zones_follow_each_attempts_contact_point(self) -> None:
        facts = {"d1": DebtorFacts(debtor_id="d1", timezones=("America/New_York",))}
        # 09:00 in New York is 06:00 in Los Angeles.
        moment = at(NEW_YORK, 2025, 6, 2, 9)
        attempts = [
            planned(moment),
            planned(moment, contact_point_timezone="America/Los_Angeles"),
            planned(moment + timedelta(minutes=1)),
        ]
        decisions = _matches_single_decisions(attempts, facts, {})
        assert [decision.timezones for decision in decisions] == [
            ("America/New_York",),
            ("America/New_York", "America/Los_Angeles"),
            ("America/New_York",),
        ]
        assert [decision.allowed for decision in decisions] == [True, False, True]

    def test_a_cap_of_no_contacts_is_full_without_history(self) -> None:
        policy = Policy(channel_caps=(ChannelCap(channels=frozenset({Channel.EMAIL}), limit=0),))
        facts = {"d1": DebtorFacts(debtor_id="d1", timezones=("America/New_York",))}
        moment = at(NEW_YORK, 2025, 6, 2, 10)
        decisions = _matches_single_decisions(
            [planned(moment, Channel.EMAIL), planned(moment, Channel.CALL)], facts, {}, policy
        )
        assert decisions[0].rule_ids == ("POL-CAP",)
        assert decisions[1].allowed

    def test_caps_fill_from_reservations_within_the_batch(self) -> None:
        policy = Policy(channel_caps=(ChannelCap(channels=frozenset({Channel.EMAIL}), limit=2),))
        facts = {"d1": DebtorFacts(debtor_id="d1", timezones=TWO_ZONES)}
        moment = at(NEW_YORK, 2025, 6, 2, 12)
        attempts = [planned(moment + timedelta(hours=h), Channel.EMAIL) for h in range(4)]
        decisions = _matches_single_decisions(attempts, facts, {}, policy)
        assert [decision.allowed for decision in decisions] == [True, True, False, False]
        # The cap lifts at midnight in the zone where the day ends last, then the hours open.
        assert decisions[2].next_allowed_at == at(LOS_ANGELES, 2025, 6, 3, 8).astimezone(NEW_YORK)


class TestNextAllowedAcrossZones:
    def test_cooldown_ending_at_midnight_waits_for_hours_in_both_zones(self) -> None:
        # A conversation on 3 March: no calls on that debt through 9 March local time in
        # each zone. The clocks change on 9 March; on the 10th the first minute open in
        # both zones is 08:00 in Los Angeles, 11:00 in New York.
        history = (past(at(NEW_YORK, 2025, 3, 3, 15), outcome=OutcomeCode.RIGHT_PARTY),)
        facts = {"d1": DebtorFacts(debtor_id="d1", timezones=TWO_ZONES)}
        attempt = planned(at(NEW_YORK, 2025, 3, 5, 12))
        [decision] = _matches_single_decisions(
            [attempt], facts, {"d1": ContactHistory(attempts=history)}
        )
        assert decision.rule_ids == ("US-7IN7",)
        assert decision.next_allowed_at == datetime(2025, 3, 10, 15, tzinfo=UTC)
        assert decision.next_allowed_at.tzinfo == NEW_YORK
        assert decision.next_allowed_at.hour == 11
        for moment, allowed in (
            (datetime(2025, 3, 10, 14, 59, 59, tzinfo=UTC), False),
            (datetime(2025, 3, 10, 15, tzinfo=UTC), True),
        ):
            again = decide_contact(
                planned(moment),
                facts=facts["d1"],
                history=ContactHistory(attempts=history),
                pack=US,
            )
            assert again.allowed is allowed, moment

    def test_third_party_look_back_counts_days_on_the_planned_times_clock(self) -> None:
        # 30 days before 20 March 10:00 in New York (daylight time) is 18 February 10:00
        # there (standard time), 15:00 UTC; the gate works in UTC elsewhere, but this
        # look-back keeps the wall-clock days of the planned time.
        facts = {"d1": DebtorFacts(debtor_id="d1", timezones=("America/New_York",))}
        recent = tuple(
            past(at(NEW_YORK, 2025, 3, day, 10), outcome=OutcomeCode.NO_ANSWER, effective=False)
            for day in (10, 11)
        )
        attempt = PlannedContact(
            debtor_id="d1",
            channel=Channel.CALL,
            at=at(NEW_YORK, 2025, 3, 20, 10),
            party=Party.THIRD_PARTY,
            contact_point_timezone="America/New_York",
            third_party_id="tp-1",
        )
        for third_failure, allowed in (
            (datetime(2025, 2, 18, 14, 30, tzinfo=UTC), False),
            (datetime(2025, 2, 18, 15, 0, 1, tzinfo=UTC), True),
        ):
            history = ContactHistory(
                attempts=(
                    *recent,
                    past(third_failure, outcome=OutcomeCode.NO_ANSWER, effective=False),
                )
            )
            [decision] = _matches_single_decisions([attempt], facts, {"d1": history})
            assert decision.allowed is allowed, third_failure
            if not allowed:
                assert [reason.code for reason in decision.reasons] == ["debtor_reachable"]


class TestDebtorsDecidedAlike:
    """Debtors with one contact in the batch and nothing counted share one decision per
    distinct facts and contact; every decision is still the one decide_contact gives."""

    def test_alike_debtors_share_a_decision_and_others_get_their_own(self) -> None:
        moment = at(NEW_YORK, 2025, 6, 2, 12)
        alike = DebtorFacts(debtor_id="x", timezones=TWO_ZONES)
        facts = {f"d{n}": replace(alike, debtor_id=f"d{n}") for n in range(1, 5)} | {
            "opted": replace(
                alike, debtor_id="opted", opted_out_channels=frozenset({Channel.EMAIL})
            ),
            "seen": replace(alike, debtor_id="seen"),
            "twice": replace(alike, debtor_id="twice"),
        }
        policy = Policy(channel_caps=(ChannelCap(channels=frozenset({Channel.EMAIL}), limit=1),))
        attempts = [
            planned(moment, Channel.EMAIL, debtor_id="d1", account_id="a1"),
            planned(moment, Channel.EMAIL, debtor_id="d2", account_id="a2"),
            # The same instant on another clock is another wall time: its own decision.
            planned(moment.astimezone(LOS_ANGELES), Channel.EMAIL, debtor_id="d3"),
            planned(moment, Channel.CALL, debtor_id="d4"),
            planned(moment, Channel.EMAIL, debtor_id="opted"),
            # A debtor with history, and one with two contacts: the first fills the cap.
            planned(moment, Channel.EMAIL, debtor_id="seen"),
            planned(moment, Channel.EMAIL, debtor_id="twice"),
            planned(moment + timedelta(minutes=5), Channel.EMAIL, debtor_id="twice"),
        ]
        histories = {
            "seen": ContactHistory(attempts=(past(moment - timedelta(hours=1), Channel.EMAIL),))
        }

        decisions = _matches_single_decisions(attempts, facts, histories, policy)

        assert [decision.allowed for decision in decisions] == [
            True,
            True,
            True,
            True,
            False,
            False,
            True,
            False,
        ]
        assert decisions[0] is decisions[1]
        assert decisions[2] is not decisions[0]
        assert decisions[2].at.tzinfo is LOS_ANGELES
        assert decisions[4].rule_ids == ("US-MEDIUM",)
        assert decisions[5].rule_ids == ("POL-CAP",)
        assert decisions[7].rule_ids == ("POL-CAP",)

    @settings(max_examples=60, deadline=None)
    @given(
        plan=st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=5),  # debtor
                st.sampled_from([Channel.CALL, Channel.SMS, Channel.EMAIL]),
                st.integers(min_value=0, max_value=30).map(lambda h: h * 60),  # minutes
                st.booleans(),  # planned on the Los Angeles clock
            ),
            max_size=25,
        ),
        kinds=st.lists(st.integers(min_value=0, max_value=3), min_size=6, max_size=6),
        seen=st.sets(st.integers(min_value=0, max_value=5), max_size=2),
    )
    def test_every_decision_is_decide_contacts(
        self, plan: list[tuple[int, Channel, int, bool]], kinds: list[int], seen: set[int]
    ) -> None:
        start = at(NEW_YORK, 2025, 6, 2, 6)
        shapes = [
            DebtorFacts(debtor_id="x", timezones=("America/New_York",)),
            DebtorFacts(debtor_id="x", timezones=TWO_ZONES),
            DebtorFacts(
                debtor_id="x",
                timezones=("America/New_York",),
                opted_out_channels=frozenset({Channel.EMAIL}),
            ),
            DebtorFacts(debtor_id="x", timezones=("America/Los_Angeles",), cease_contact=True),
        ]
        facts = {f"d{n}": replace(shapes[kinds[n]], debtor_id=f"d{n}") for n in range(6)}
        histories = {
            f"d{n}": ContactHistory(attempts=(past(start - timedelta(hours=20)),)) for n in seen
        }
        attempts = []
        for debtor, channel, minutes, western in plan:
            moment = start + timedelta(minutes=minutes)
            attempts.append(
                planned(
                    moment.astimezone(LOS_ANGELES) if western else moment,
                    channel,
                    debtor_id=f"d{debtor}",
                )
            )
        policy = Policy(channel_caps=(ChannelCap(channels=frozenset({Channel.CALL}), limit=1),))
        decisions = _matches_single_decisions(attempts, facts, histories, policy)
        for attempt, decision in zip(attempts, decisions, strict=True):
            assert decision.at == attempt.at
            assert decision.at.utcoffset() == attempt.at.utcoffset()


class TestBatchDebtorFacts:
    def test_equal_the_constructors_facts(self) -> None:
        window = DailyWindow(start=time(9), end=time(12), weekdays=frozenset({0, 1}))
        given_values: list[dict[str, Any]] = [
            {"debtor_id": "d1", "timezones": ("Asia/Shanghai",)},
            {
                "debtor_id": "d2",
                "timezones": TWO_ZONES,
                "agreed_windows": (window,),
                "inconvenient_windows": (window, window),
                "inconvenient_places": frozenset({InconvenientPlace.WORKPLACE}),
                "cease_contact": True,
                "attorney_represented": True,
                "dispute_open": True,
                "deceased": True,
                "bankruptcy": True,
                "work_contact_forbidden": True,
                "initial_communication_on": date(2025, 1, 2),
                "validation_notice_sent_on": date(2025, 1, 3),
            },
        ]
        for values in given_values:
            fast = batch_debtor_facts(**values)
            built = DebtorFacts(**values)
            assert fast == built
            assert repr(fast) == repr(built)
            assert hash(fast) == hash(built)
            assert fast.opted_out_channels == frozenset()
            assert fast.automated_consent == frozenset()


class TestInLocalDays:
    def test_each_attempt_moves_as_in_local_day_moves_it(self) -> None:
        gate = compile_gate(US)
        zones = {
            "east": ("America/New_York",),
            "west": ("America/Los_Angeles",),
            "both": ("America/New_York", "Pacific/Honolulu"),
        }
        facts = {
            name: DebtorFacts(debtor_id=name, timezones=found) for name, found in zones.items()
        }
        morning = at(NEW_YORK, 2025, 3, 3, 9, 30)
        attempts = [
            planned(morning, debtor_id="east"),
            planned(morning, debtor_id="west"),
            planned(morning, debtor_id="west", account_id="a2"),
            planned(morning, debtor_id="both"),
            planned(morning, debtor_id="east", contact_point_timezone="America/Los_Angeles"),
            # The same instant on the west coast's clock, and a plan already late enough.
            planned(morning.astimezone(LOS_ANGELES), debtor_id="west"),
            planned(at(NEW_YORK, 2025, 3, 3, 16), debtor_id="both"),
            planned(morning, debtor_id="unknown"),
            planned(morning, debtor_id="west"),
        ]
        local_times = [time(9, 30)] * (len(attempts) - 1) + [None]

        moved = in_local_days(gate, attempts, facts, local_times)

        for attempt, local, each in zip(attempts, local_times, moved, strict=True):
            known = facts.get(attempt.debtor_id)
            if local is None or known is None:
                assert each is attempt
                continue
            single = in_local_day(gate, attempt, known, local)
            assert each == single
            assert each.at.tzinfo is single.at.tzinfo
            if single is attempt:
                assert each is attempt
        assert moved[1].at == at(LOS_ANGELES, 2025, 3, 3, 9, 30)
        assert moved[0] is attempts[0]
