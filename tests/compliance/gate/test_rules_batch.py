"""The batch gate decides exactly as the single-contact gate does, contact by contact."""

from __future__ import annotations

import gc
import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from recoup.compliance.enums import HolidaySuppression
from recoup.compliance.gate.rules import (
    ContactHistory,
    DailyWindow,
    DebtorFacts,
    Decision,
    PastContact,
    PlannedContact,
    compile_gate,
    decide_batch,
    decide_contact,
    reservation_for,
)
from recoup.compliance.policy.rules import ChannelCap, Policy
from recoup.compliance.rulepack import RulePack
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from tests.compliance.gate.gate_helpers import CN, US

US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)
CHANNELS = (Channel.CALL, Channel.CALL, Channel.AI_CALL, Channel.SMS, Channel.EMAIL, Channel.VISIT)
OUTCOMES = (
    OutcomeCode.NO_ANSWER,
    OutcomeCode.RIGHT_PARTY,
    OutcomeCode.MESSAGE_DELIVERED,
    OutcomeCode.REFUSED_CONTACT,
)
# Around the US spring DST change, so gaps and day boundaries are crossed.
START = datetime(2025, 3, 7, tzinfo=UTC)


def _random_facts(rng: random.Random, debtor_id: str, zones: tuple[str, ...]) -> DebtorFacts:
    return DebtorFacts(
        debtor_id=debtor_id,
        timezones=tuple(dict.fromkeys(rng.choice(zones) for _ in range(rng.randint(1, 2)))),
        automated_consent=frozenset({Channel.SMS}) if rng.random() < 0.7 else frozenset(),
        agreed_windows=((DailyWindow(start=time(7), end=time(8)),) if rng.random() < 0.15 else ()),
        inconvenient_windows=(
            (DailyWindow(start=time(12), end=time(13), weekdays=frozenset({0, 1, 2, 3, 4})),)
            if rng.random() < 0.15
            else ()
        ),
        cease_contact=rng.random() < 0.03,
        dispute_open=rng.random() < 0.03,
        opted_out_channels=frozenset({Channel.EMAIL}) if rng.random() < 0.1 else frozenset(),
        initial_communication_on=date(2025, 2, 1) if rng.random() < 0.1 else None,
    )


def _random_history(rng: random.Random) -> ContactHistory:
    return ContactHistory(
        attempts=tuple(
            PastContact(
                at=START - timedelta(minutes=rng.randint(1, 10 * 24 * 60)),
                channel=rng.choice(CHANNELS),
                party=Party.THIRD_PARTY if rng.random() < 0.1 else Party.DEBTOR,
                outcome=rng.choice(OUTCOMES),
                effective=rng.random() < 0.4,
                account_id=f"acct-{rng.randint(0, 1)}",
                third_party_id=f"tp-{rng.randint(0, 1)}",
            )
            for _ in range(rng.randint(0, 14))
        )
    )


def _random_attempt(rng: random.Random, debtor_id: str) -> PlannedContact:
    third_party = rng.random() < 0.1
    return PlannedContact(
        debtor_id=debtor_id,
        channel=rng.choice(CHANNELS),
        at=START + timedelta(seconds=rng.randint(0, 3 * 24 * 3600)),
        party=Party.THIRD_PARTY if third_party else Party.DEBTOR,
        account_id=f"acct-{rng.randint(0, 1)}",
        third_party_id=f"tp-{rng.randint(0, 1)}" if third_party else None,
        contact_point_timezone=rng.choice((None, None, None, "America/Chicago")),
        automated=rng.random() < 0.2,
        recorded=rng.random() < 0.9,
    )


def _evidence(decision: Decision) -> tuple[object, ...]:
    """Return everything a decision shows, messages and the offset of times included."""
    return (
        decision,
        tuple((reason.code, reason.message_en, reason.message_zh) for reason in decision.reasons),
        None if decision.next_allowed_at is None else decision.next_allowed_at.isoformat(),
        decision.at.isoformat(),
    )


POLICY_CASES = [
    pytest.param(CN, Policy(), ("Asia/Shanghai", "Asia/Urumqi"), id="cn"),
    pytest.param(
        CN,
        Policy(
            channel_caps=(ChannelCap(channels=frozenset({Channel.SMS}), limit=2),),
            holiday_suppression=HolidaySuppression.NON_WORKING_DAYS,
        ),
        ("Asia/Shanghai",),
        id="cn-stricter",
    ),
    pytest.param(US, Policy(), US_ZONES, id="us"),
    pytest.param(
        US,
        Policy(
            channel_caps=(ChannelCap(channels=frozenset({Channel.SMS}), limit=2, days=3),),
            blackout_dates=frozenset({date(2025, 3, 8)}),
        ),
        US_ZONES,
        id="us-stricter",
    ),
]


class TestBatchAgreesWithSingleDecisions:
    @pytest.mark.parametrize(("pack", "policy", "zones"), POLICY_CASES)
    @pytest.mark.parametrize("reserve", [True, False])
    def test_every_decision_matches_decide_contact(
        self, pack: RulePack, policy: Policy, zones: tuple[str, ...], reserve: bool
    ) -> None:
        rng = random.Random(f"{pack.code}-{len(zones)}-{reserve}")
        debtor_ids = [f"d{number}" for number in range(300)]
        facts = {debtor_id: _random_facts(rng, debtor_id, zones) for debtor_id in debtor_ids}
        histories = {debtor_id: _random_history(rng) for debtor_id in debtor_ids[:250]}
        attempts = [_random_attempt(rng, rng.choice(debtor_ids)) for _ in range(2500)]

        decisions = decide_batch(
            attempts, facts=facts, histories=histories, gate=compile_gate(pack, policy),
            reserve=reserve,
        )  # fmt: skip

        running = dict(histories)
        blocked = 0
        for attempt, decision in zip(attempts, decisions, strict=True):
            history = running.get(attempt.debtor_id, ContactHistory())
            single = decide_contact(
                attempt, facts=facts[attempt.debtor_id], history=history, pack=pack, policy=policy
            )
            assert _evidence(decision) == _evidence(single), attempt
            if decision.allowed and reserve:
                running[attempt.debtor_id] = history.with_attempt(reservation_for(attempt))
            blocked += not decision.allowed
        # Both answers occur often, so the comparison covers the reasons and next times too.
        assert 0.1 < blocked / len(attempts) < 0.9

    def test_collector_state_is_restored(self) -> None:
        gate = compile_gate(CN)
        facts = {"d1": DebtorFacts(debtor_id="d1")}
        attempt = PlannedContact(debtor_id="d1", channel=Channel.CALL, at=START)
        assert gc.isenabled()
        decide_batch([attempt], facts=facts, histories={}, gate=gate)
        assert gc.isenabled()
        gc.disable()
        try:
            decide_batch([attempt], facts=facts, histories={}, gate=gate)
            assert not gc.isenabled()
        finally:
            gc.enable()
        with pytest.raises(KeyError):
            decide_batch(
                [PlannedContact(debtor_id="unknown", channel=Channel.CALL, at=START)],
                facts=facts, histories={}, gate=gate,
            )  # fmt: skip
        assert gc.isenabled()


class TestReservation:
    def test_reservation_equals_the_past_contact_it_stands_for(self) -> None:
        attempt = PlannedContact(
            debtor_id="d1",
            channel=Channel.SMS,
            at=START,
            party=Party.THIRD_PARTY,
            account_id="a1",
            third_party_id="t1",
            agency_id="g1",
        )
        reservation = reservation_for(attempt)
        assert reservation == PastContact(
            at=START,
            channel=Channel.SMS,
            party=Party.THIRD_PARTY,
            outcome=None,
            effective=True,
            account_id="a1",
            third_party_id="t1",
            agency_id="g1",
        )
        assert repr(reservation).startswith("PastContact(at=")
        assert hash(reservation) == hash(replace(reservation))
