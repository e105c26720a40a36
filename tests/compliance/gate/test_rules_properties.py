"""Property tests of the contact gate over random times, zones, policies and histories."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from recoup.compliance.enums import HolidaySuppression
from recoup.compliance.gate.rules import (
    ContactHistory,
    DailyWindow,
    DebtorFacts,
    PastContact,
    PlannedContact,
    compile_gate,
    decide_batch,
    decide_contact,
)
from recoup.compliance.policy.rules import ChannelCap, ChannelHours, Policy
from recoup.compliance.rulepack import RulePack
from recoup.contact.channels import OUTBOUND_CHANNELS, Channel
from recoup.contact.rules import OutcomeCode, Party
from tests.compliance.gate.gate_helpers import CN, US

ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "America/Los_Angeles",
    "America/Chicago",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Santiago",
    "Australia/Lord_Howe",
]
# Around DST changes in 2025 as well as ordinary days.
instants = st.datetimes(
    min_value=datetime(2024, 12, 20), max_value=datetime(2026, 1, 10), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))
packs = st.sampled_from([CN, US])
channels = st.sampled_from(sorted(OUTBOUND_CHANNELS))
zone_sets = st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True).map(tuple)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    start = draw(st.integers(min_value=8 * 60, max_value=12 * 60))
    end = draw(st.integers(min_value=13 * 60, max_value=21 * 60))
    hours: tuple[ChannelHours, ...] = ()
    if draw(st.booleans()):
        hours = (
            ChannelHours(
                channels=frozenset(draw(st.sets(channels, min_size=1))),
                start=time(start // 60, start % 60),
                end=time(end // 60, end % 60),
            ),
        )
    caps: tuple[ChannelCap, ...] = ()
    if draw(st.booleans()):
        caps = (
            ChannelCap(
                channels=frozenset(draw(st.sets(channels, min_size=1))),
                limit=draw(st.integers(min_value=0, max_value=3)),
                days=draw(st.integers(min_value=1, max_value=3)),
            ),
        )
    return Policy(
        hours=hours,
        channel_caps=caps,
        holiday_suppression=draw(st.sampled_from(list(HolidaySuppression))),
        honour_agreed_windows=draw(st.booleans()),
    )


@st.composite
def windows(draw: st.DrawFn) -> DailyWindow:
    start = draw(st.integers(min_value=0, max_value=23))
    length = draw(st.integers(min_value=1, max_value=6))
    return DailyWindow(start=time(start), end=time((start + length) % 24))


@st.composite
def histories(draw: st.DrawFn, around: datetime) -> tuple[PastContact, ...]:
    count = draw(st.integers(min_value=0, max_value=12))
    attempts = []
    for _ in range(count):
        offset = draw(st.integers(min_value=-10 * 24 * 60, max_value=60))
        outcome = draw(st.sampled_from([None, *OutcomeCode]))
        attempts.append(
            PastContact(
                at=around + timedelta(minutes=offset),
                channel=draw(channels),
                party=draw(st.sampled_from(list(Party))),
                outcome=outcome,
                effective=outcome is OutcomeCode.RIGHT_PARTY or draw(st.booleans()),
                account_id=draw(st.sampled_from(["a1", "a2"])),
                third_party_id="mother",
            )
        )
    return tuple(attempts)


def hours_for(pack: RulePack, policy: Policy, channel: Channel) -> list[tuple[time, time]]:
    rule_id = "CN-HRS" if pack.code == "CN" else "US-HRS"
    bounds: list[tuple[time, time]] = []
    if channel.value in pack.names_parameter(rule_id, "channels"):
        bounds.append((pack.time_parameter(rule_id, "start"), pack.time_parameter(rule_id, "end")))
    for hours in policy.hours:
        if channel in hours.channels:
            bounds.append((hours.start, hours.end))
    return bounds


class TestQuietHoursProperty:
    @settings(max_examples=400, deadline=None)
    @given(moment=instants, pack=packs, policy=policies(), channel=channels, zones=zone_sets)
    def test_no_allowed_decision_lies_in_quiet_hours(
        self,
        moment: datetime,
        pack: RulePack,
        policy: Policy,
        channel: Channel,
        zones: tuple[str, ...],
    ) -> None:
        facts = DebtorFacts(debtor_id="d1", timezones=zones, automated_consent=frozenset(Channel))
        attempt = PlannedContact(debtor_id="d1", channel=channel, at=moment)
        decision = decide_contact(
            attempt, facts=facts, history=ContactHistory(), pack=pack, policy=policy
        )
        if not decision.allowed:
            return
        for name in zones:
            wall = moment.astimezone(ZoneInfo(name)).time()
            for start, end in hours_for(pack, policy, channel):
                assert start <= wall < end, (name, wall, start, end)


class TestNextAllowedProperty:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data(), moment=instants, pack=packs, policy=policies(), zones=zone_sets)
    def test_next_allowed_at_passes_and_is_the_earliest(
        self,
        data: st.DataObject,
        moment: datetime,
        pack: RulePack,
        policy: Policy,
        zones: tuple[str, ...],
    ) -> None:
        channel = data.draw(channels)
        party = data.draw(st.sampled_from(list(Party)))
        facts = DebtorFacts(
            debtor_id="d1",
            timezones=zones,
            automated_consent=frozenset(Channel),
            agreed_windows=tuple(data.draw(st.lists(windows(), max_size=1))),
            inconvenient_windows=tuple(data.draw(st.lists(windows(), max_size=2))),
        )
        history = ContactHistory(attempts=data.draw(histories(moment)))
        attempt = PlannedContact(
            debtor_id="d1",
            channel=channel,
            at=moment,
            party=party,
            account_id="a1",
            third_party_id="mother",
        )
        decision = decide_contact(attempt, facts=facts, history=history, pack=pack, policy=policy)
        if decision.allowed or decision.next_allowed_at is None:
            event("allowed" if decision.allowed else "no later time")
            return
        event("rescheduled by " + ",".join(sorted(set(decision.rule_ids))))
        later = decision.next_allowed_at
        assert later > moment
        again = decide_contact(
            PlannedContact(
                debtor_id="d1",
                channel=channel,
                at=later,
                party=party,
                account_id="a1",
                third_party_id="mother",
            ),
            facts=facts,
            history=history,
            pack=pack,
            policy=policy,
        )
        assert again.allowed, (later, again.reasons)
        just_before = later - timedelta(seconds=1)
        if just_before > moment:
            earlier = decide_contact(
                PlannedContact(
                    debtor_id="d1",
                    channel=channel,
                    at=just_before,
                    party=party,
                    account_id="a1",
                    third_party_id="mother",
                ),
                facts=facts,
                history=history,
                pack=pack,
                policy=policy,
            )
            assert not earlier.allowed


class TestCapProperty:
    @settings(max_examples=150, deadline=None)
    @given(
        offsets=st.lists(st.integers(min_value=0, max_value=6 * 24 * 60), max_size=40),
        zone_name=st.sampled_from(ZONES),
        shuffle=st.randoms(use_true_random=False),
    )
    def test_cn_daily_voice_cap_never_exceeded(
        self, offsets: list[int], zone_name: str, shuffle: object
    ) -> None:
        start = datetime(2025, 3, 6, tzinfo=UTC)
        attempts = [
            PlannedContact(
                debtor_id="d1",
                channel=Channel.AI_CALL if offset % 2 else Channel.CALL,
                at=start + timedelta(minutes=offset),
                account_id="a1" if offset % 3 else "a2",
            )
            for offset in offsets
        ]
        shuffle.shuffle(attempts)  # type: ignore[attr-defined]
        gate = compile_gate(CN)
        facts = {"d1": DebtorFacts(debtor_id="d1", timezones=(zone_name,))}
        decisions = decide_batch(attempts, facts=facts, histories={}, gate=gate)
        per_day = Counter(
            attempt.at.astimezone(ZoneInfo(zone_name)).date()
            for attempt, decision in zip(attempts, decisions, strict=True)
            if decision.allowed
        )
        assert all(count <= 3 for count in per_day.values())

    @settings(max_examples=150, deadline=None)
    @given(offsets=st.lists(st.integers(min_value=0, max_value=20 * 24 * 60), max_size=60))
    def test_us_seven_in_seven_never_exceeded(self, offsets: list[int]) -> None:
        start = datetime(2025, 3, 1, tzinfo=UTC)
        attempts = [
            PlannedContact(
                debtor_id="d1",
                channel=Channel.CALL,
                at=start + timedelta(minutes=m),
                account_id="a1",
            )
            for m in offsets
        ]
        gate = compile_gate(US)
        facts = {"d1": DebtorFacts(debtor_id="d1", timezones=("America/Chicago",))}
        decisions = decide_batch(attempts, facts=facts, histories={}, gate=gate)
        zone_info = ZoneInfo("America/Chicago")
        days = Counter(
            attempt.at.astimezone(zone_info).date()
            for attempt, decision in zip(attempts, decisions, strict=True)
            if decision.allowed
        )
        first = date(2025, 2, 20)
        for shift in range(40):
            window_start = first + timedelta(days=shift)
            total = sum(days[window_start + timedelta(days=step)] for step in range(7))
            assert total <= 7
