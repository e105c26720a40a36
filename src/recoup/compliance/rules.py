"""The contact gate: pure decisions on whether a planned contact may happen, and when."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from recoup.compliance.enums import (
    CHANNEL_NAMES_EN,
    CHANNEL_NAMES_ZH,
    CHANNEL_PLURALS_EN,
    CHANNEL_VERBS_ZH,
    FAILED_TO_REACH,
    Channel,
    HolidaySuppression,
    Outcome,
    Party,
)
from recoup.compliance.localtime import (
    WorkingDayCalendar,
    instant_at_wall,
    local_date_start,
    working_day_calendar,
    zone,
)
from recoup.compliance.policy import VOICE_CHANNELS, Policy, ensure_policy_allowed
from recoup.compliance.rulepack import LocalisedText, RulePack

# How many later instants next_allowed_at may try; a month of daily blocks fits easily.
MAX_RESCHEDULE_STEPS = 400

# Enum members bound once: looking them up on the class costs more than the check itself.
_DEBTOR = Party.DEBTOR
_THIRD_PARTY = Party.THIRD_PARTY
_CONVERSATION = Outcome.CONVERSATION
_PLANNED = Outcome.PLANNED
_LETTER = Channel.LETTER


class NaiveDatetime(ValueError):
    """A compliance time was given without a timezone."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyWindow:
    """Local hours [start, end) on some weekdays; end <= start runs past midnight."""

    start: time
    end: time
    weekdays: frozenset[int] | None = None

    def covers(self, local: datetime) -> bool:
        """Tell whether the local wall time falls in the window."""
        return self.containing_start_date(local) is not None

    def containing_start_date(self, local: datetime) -> date | None:
        """Return the date the window instance containing local started on, or None."""
        wall = local.time().replace(tzinfo=None)
        today = local.date()
        if self.start < self.end:
            if self.start <= wall < self.end and self._on(today):
                return today
            return None
        if wall >= self.start and self._on(today):
            return today
        yesterday = today - timedelta(days=1)
        if wall < self.end and self._on(yesterday):
            return yesterday
        return None

    def end_after(self, start_date: date, tz: ZoneInfo) -> datetime:
        """Return the instant the window instance started on start_date ends."""
        end_date = start_date if self.start < self.end else start_date + timedelta(days=1)
        return instant_at_wall(end_date, self.end, tz)

    def next_start(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """Return the first start of the window strictly after the instant."""
        today = after.astimezone(tz).date()
        for offset in range(8):
            day = today + timedelta(days=offset)
            if not self._on(day):
                continue
            candidate = instant_at_wall(day, self.start, tz)
            if candidate > after:
                return candidate
        return None

    def _on(self, day: date) -> bool:
        return self.weekdays is None or day.weekday() in self.weekdays


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedContact:
    """A contact someone wants to make: who, how, when and on which debt."""

    debtor_id: str
    channel: Channel
    at: datetime
    party: Party = Party.DEBTOR
    account_id: str | None = None
    contact_point_timezone: str | None = None
    third_party_id: str | None = None
    agency_id: str | None = None
    automated: bool = False
    to_mobile: bool = True
    at_workplace: bool = False
    recorded: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DebtorFacts:
    """What the rules need to know about a debtor, across all their accounts."""

    debtor_id: str
    timezones: tuple[str, ...] = ()
    agreed_windows: tuple[DailyWindow, ...] = ()
    inconvenient_windows: tuple[DailyWindow, ...] = ()
    cease_contact: bool = False
    opted_out_channels: frozenset[Channel] = field(default_factory=frozenset)
    attorney_represented: bool = False
    dispute_open: bool = False
    deceased: bool = False
    bankruptcy: bool = False
    automated_consent: frozenset[Channel] = field(default_factory=frozenset)
    work_contact_forbidden: bool = False
    initial_communication_on: date | None = None
    validation_notice_sent_on: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PastContact:
    """One earlier (or reserved) contact attempt about the debtor, by anyone."""

    at: datetime
    channel: Channel
    party: Party = Party.DEBTOR
    outcome: Outcome = Outcome.NO_ANSWER
    effective: bool = False
    account_id: str | None = None
    third_party_id: str | None = None
    agency_id: str | None = None


@dataclass(frozen=True, slots=True)
class ContactHistory:
    """The debtor-wide attempts: every account, the creditor and all its agencies."""

    attempts: tuple[PastContact, ...] = ()

    def with_attempt(self, attempt: PastContact) -> ContactHistory:
        """Return the history with one more attempt."""
        return ContactHistory(attempts=(*self.attempts, attempt))


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a contact is blocked: the rule and a message a person can act on."""

    rule_id: str
    code: str
    template: LocalisedText = field(repr=False, compare=False)
    values: Callable[[], Mapping[str, object]] = field(repr=False, compare=False)

    @property
    def message_en(self) -> str:
        """Return the English message."""
        return self.template.en.format(**self.values())

    @property
    def message_zh(self) -> str:
        """Return the Chinese message."""
        return self.template.zh.format(**self.values())


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's answer for one planned contact, with its evidence."""

    allowed: bool
    reasons: tuple[Reason, ...]
    next_allowed_at: datetime | None
    at: datetime
    timezones: tuple[str, ...]
    pack_code: str
    pack_version: str
    policy_name: str
    policy_version: str

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Return the ids of the rules that blocked the contact."""
        return tuple(reason.rule_id for reason in self.reasons)


@dataclass(frozen=True, slots=True)
class _Hours:
    rule_id: str
    code: str
    start: time
    end: time

    @property
    def start_second(self) -> int:
        return self.start.hour * 3600 + self.start.minute * 60 + self.start.second

    @property
    def end_second(self) -> int:
        return self.end.hour * 3600 + self.end.minute * 60 + self.end.second


@dataclass(frozen=True, slots=True)
class _Cap:
    rule_id: str
    code: str
    channels: frozenset[Channel]
    limit: int
    days: int
    effective_only: bool
    per_debt: bool


@dataclass(slots=True)
class _Block:
    rule_id: str
    code: str
    values: Mapping[str, object] | Callable[[], Mapping[str, object]]
    retry_at: datetime | None


@dataclass(frozen=True, slots=True)
class Gate:
    """A rule pack and a policy compiled once into what each decision needs."""

    pack: RulePack
    policy: Policy
    default_timezone: str
    hours: Mapping[Channel, tuple[_Hours, ...]]
    honour_agreed_windows: bool
    inconvenient_rule: str
    caps: tuple[_Cap, ...]
    conversation_cooldown_days: int | None
    stop_rules: Mapping[str, str]
    dispute_rule: str | None
    validation_notice_days: int | None
    third_party_rule: str | None
    third_party_min_failed: int
    third_party_lookback: timedelta
    third_party_max_contacts: int | None
    automated_rule: str | None
    automated_channels: frozenset[Channel]
    workplace_rule: str | None
    recording_rule: str | None
    holiday_suppression: HolidaySuppression
    blackout_dates: frozenset[date]
    calendar: WorkingDayCalendar
    hour_seconds: Mapping[Channel, tuple[tuple[_Hours, int, int], ...]]
    messages: Mapping[tuple[str, str], LocalisedText]
    channel_values: Mapping[Channel, Mapping[str, object]]
    checks_days: bool
    hour_ranges: Mapping[Channel, tuple[int, int] | None]
    cap_positions: Mapping[Channel, tuple[int, ...]]
    day_kinds: dict[int, tuple[str, str] | None] = field(default_factory=dict, compare=False)


def _channels(names: Iterable[str]) -> frozenset[Channel]:
    return frozenset(Channel(name) for name in names)


def _compile_hours(pack: RulePack, policy: Policy) -> dict[Channel, tuple[_Hours, ...]]:
    hours: dict[Channel, list[_Hours]] = {channel: [] for channel in Channel}
    hours_rule = next((r for r in ("CN-HRS", "US-HRS") if pack.has(r)), None)
    if hours_rule is not None:
        pack_hours = _Hours(
            hours_rule,
            "quiet_hours",
            pack.time_parameter(hours_rule, "start"),
            pack.time_parameter(hours_rule, "end"),
        )
        for channel in _channels(pack.names_parameter(hours_rule, "channels")):
            hours[channel].append(pack_hours)
    for channel_hours in policy.hours:
        for channel in channel_hours.channels:
            hours[channel].append(
                _Hours(
                    hours_rule or "POL-HOURS",
                    "policy_hours",
                    channel_hours.start,
                    channel_hours.end,
                )
            )
    return {channel: tuple(rules) for channel, rules in hours.items()}


def _compile_caps(pack: RulePack, policy: Policy) -> tuple[_Cap, ...]:
    caps: list[_Cap] = []
    if pack.has("CN-FREQ-V"):
        limit = pack.int_parameter("CN-FREQ-V", "max_effective_calls_per_day")
        if policy.max_effective_voice_calls_per_day is not None:
            limit = min(limit, policy.max_effective_voice_calls_per_day)
        caps.append(
            _Cap(
                "CN-FREQ-V",
                "daily_cap",
                _channels(pack.names_parameter("CN-FREQ-V", "channels")),
                limit,
                1,
                effective_only=True,
                per_debt=False,
            )
        )
    if pack.has("US-7IN7"):
        limit = pack.int_parameter("US-7IN7", "max_calls")
        if policy.max_calls_per_debt_in_window is not None:
            limit = min(limit, policy.max_calls_per_debt_in_window)
        caps.append(
            _Cap(
                "US-7IN7",
                "call_cap",
                _channels(pack.names_parameter("US-7IN7", "channels")),
                limit,
                pack.int_parameter("US-7IN7", "days"),
                effective_only=False,
                per_debt=True,
            )
        )
    for cap in policy.channel_caps:
        caps.append(
            _Cap(
                "POL-CAP",
                "channel_cap",
                cap.channels,
                cap.limit,
                cap.days,
                effective_only=False,
                per_debt=False,
            )
        )
    return tuple(caps)


def _stop_rules(pack: RulePack) -> dict[str, str]:
    if pack.has("CN-STOP"):
        statuses = pack.names_parameter("CN-STOP", "statuses")
        rules = dict.fromkeys(statuses, "CN-STOP")
        rules["channel_opt_out"] = "CN-STOP"
        return rules
    named = {
        "cease_contact": "US-CEASE",
        "deceased": "US-DECEASED",
        "bankruptcy": "US-BANKR",
        "attorney": "US-ATTY",
        "channel_opt_out": "US-MEDIUM",
    }
    return {status: rule_id for status, rule_id in named.items() if pack.has(rule_id)}


def compile_gate(pack: RulePack, policy: Policy | None = None) -> Gate:
    """Check the policy against the pack and precompute everything decisions need."""
    policy = policy or Policy()
    ensure_policy_allowed(policy, pack)
    third_party_rule = next((r for r in ("CN-TGT", "US-3P") if pack.has(r)), None)
    min_failed = 0
    lookback_days = 0
    max_contacts: int | None = None
    if third_party_rule is not None:
        min_failed = pack.int_parameter(third_party_rule, "min_failed_attempts")
        lookback_days = pack.int_parameter(third_party_rule, "max_lookback_days")
        max_contacts = pack.optional_int_parameter(third_party_rule, "max_contacts_per_third_party")
        if policy.third_party_min_failed_attempts is not None:
            min_failed = max(min_failed, policy.third_party_min_failed_attempts)
        if policy.third_party_lookback_days is not None:
            lookback_days = min(lookback_days, policy.third_party_lookback_days)
        if policy.max_contacts_per_third_party is not None:
            max_contacts = (
                policy.max_contacts_per_third_party
                if max_contacts is None
                else min(max_contacts, policy.max_contacts_per_third_party)
            )
    dispute_rule: str | None = None
    if pack.has("US-VAL") and pack.bool_parameter("US-VAL", "pause_on_dispute"):
        dispute_rule = "US-VAL"
    elif policy.pause_on_dispute:
        dispute_rule = "POL-DISPUTE"
    cooldown: int | None = None
    if pack.has("US-7IN7"):
        cooldown = pack.int_parameter("US-7IN7", "conversation_cooldown_days")
        if policy.conversation_cooldown_days is not None:
            cooldown = max(cooldown, policy.conversation_cooldown_days)
    hours_rule = next((r for r in ("CN-HRS", "US-HRS") if pack.has(r)), None)
    hours = _compile_hours(pack, policy)
    caps = _compile_caps(pack, policy)
    return Gate(
        pack=pack,
        policy=policy,
        default_timezone=pack.default_timezone,
        hours=hours,
        honour_agreed_windows=policy.honour_agreed_windows,
        inconvenient_rule="US-INCONV" if pack.has("US-INCONV") else (hours_rule or "POL-HOURS"),
        caps=caps,
        conversation_cooldown_days=cooldown,
        stop_rules=_stop_rules(pack),
        dispute_rule=dispute_rule,
        validation_notice_days=(
            pack.int_parameter("US-VAL", "notice_within_days") if pack.has("US-VAL") else None
        ),
        third_party_rule=third_party_rule,
        third_party_min_failed=min_failed,
        third_party_lookback=timedelta(days=lookback_days),
        third_party_max_contacts=max_contacts,
        automated_rule="US-TCPA" if pack.has("US-TCPA") else None,
        automated_channels=(
            _channels(pack.names_parameter("US-TCPA", "automated_channels"))
            if pack.has("US-TCPA")
            else frozenset()
        ),
        workplace_rule="US-WORK" if pack.has("US-WORK") else None,
        recording_rule="CN-REC" if pack.has("CN-REC") else None,
        holiday_suppression=policy.holiday_suppression,
        blackout_dates=policy.blackout_dates,
        calendar=working_day_calendar(pack.holiday_country),
        # Every hours rule of a channel must pass, so one range (their intersection) decides.
        hour_ranges={
            channel: (
                (
                    max(rule.start_second for rule in rules),
                    min(rule.end_second for rule in rules),
                )
                if rules
                else None
            )
            for channel, rules in hours.items()
        },
        cap_positions={
            channel: tuple(position for position, cap in enumerate(caps) if channel in cap.channels)
            for channel in Channel
        },
        checks_days=(
            policy.holiday_suppression is not HolidaySuppression.OFF or bool(policy.blackout_dates)
        ),
        hour_seconds={
            channel: tuple((rule, rule.start_second, rule.end_second) for rule in rules)
            for channel, rules in hours.items()
        },
        messages={
            (rule.id, code): message
            for rule in pack.rules
            for code, message in rule.messages.items()
        },
        channel_values={
            channel: {
                "channel": CHANNEL_NAMES_EN[channel],
                "channel_plural": CHANNEL_PLURALS_EN[channel],
                "channel_zh": CHANNEL_NAMES_ZH[channel],
                "channel_verb_zh": CHANNEL_VERBS_ZH[channel],
            }
            for channel in Channel
        },
    )


_GATES: dict[tuple[int, Policy | None], Gate] = {}


def _cached_gate(pack: RulePack, policy: Policy | None) -> Gate:
    key = (id(pack), policy)
    gate = _GATES.get(key)
    if gate is None or gate.pack is not pack:
        gate = compile_gate(pack, policy)
        _GATES[key] = gate
    return gate


def _zone_names(gate: Gate, attempt: PlannedContact, facts: DebtorFacts) -> tuple[str, ...]:
    """Return the zones the contact must be fine in: address zones and the contact point's."""
    if attempt.party is Party.THIRD_PARTY and attempt.contact_point_timezone:
        return (attempt.contact_point_timezone,)
    names = facts.timezones or (gate.default_timezone,)
    if attempt.contact_point_timezone and attempt.contact_point_timezone not in names:
        names = (*names, attempt.contact_point_timezone)
    return names


def _standing_blocks(gate: Gate, attempt: PlannedContact, facts: DebtorFacts) -> list[_Block]:
    """Return the blocks no later time can lift."""
    blocks: list[_Block] = []
    channel = attempt.channel
    if channel in gate.policy.disabled_channels:
        blocks.append(_Block("POL-CHANNEL", "channel_disabled", {}, None))
    if facts.cease_contact or facts.deceased or facts.bankruptcy or facts.attorney_represented:
        for status, flag in (
            ("cease_contact", facts.cease_contact),
            ("deceased", facts.deceased),
            ("bankruptcy", facts.bankruptcy),
            ("attorney", facts.attorney_represented),
        ):
            if flag and status in gate.stop_rules:
                blocks.append(_Block(gate.stop_rules[status], status, {}, None))
    if (
        channel in facts.opted_out_channels
        and attempt.party is Party.DEBTOR
        and "channel_opt_out" in gate.stop_rules
    ):
        blocks.append(_Block(gate.stop_rules["channel_opt_out"], "channel_opt_out", {}, None))
    if facts.dispute_open and gate.dispute_rule is not None:
        blocks.append(_Block(gate.dispute_rule, "dispute_open", {}, None))
    if (
        gate.automated_rule is not None
        and attempt.to_mobile
        and (
            channel in gate.automated_channels or (attempt.automated and channel in VOICE_CHANNELS)
        )
        and channel not in facts.automated_consent
    ):
        blocks.append(_Block(gate.automated_rule, "no_consent", {}, None))
    if attempt.at_workplace and facts.work_contact_forbidden and gate.workplace_rule is not None:
        blocks.append(_Block(gate.workplace_rule, "workplace", {}, None))
    if channel is Channel.VISIT and not attempt.recorded and gate.recording_rule is not None:
        blocks.append(_Block(gate.recording_rule, "recording_required", {}, None))
    approved = gate.policy.approved_agencies
    if attempt.agency_id is not None and approved is not None and attempt.agency_id not in approved:
        rule_id = "CN-OUT" if gate.pack.has("CN-OUT") else "POL-CHANNEL"
        blocks.append(_Block(rule_id, "agency_not_approved", {"agency": attempt.agency_id}, None))
    return blocks


class _ZoneIndex:
    """A debtor's attempts counted per local day in one zone, for each cap of a gate."""

    __slots__ = ("cap_counts", "tz")

    def __init__(self, tz: ZoneInfo, caps: int) -> None:
        self.tz = tz
        self.cap_counts: list[dict[object, int]] = [{} for _ in range(caps)]


_ZONE_LISTS: dict[tuple[str, ...], tuple[tuple[str, ZoneInfo], ...]] = {}


def _zone_list(names: tuple[str, ...]) -> tuple[tuple[str, ZoneInfo], ...]:
    found = _ZONE_LISTS.get(names)
    if found is None:
        found = tuple((name, zone(name)) for name in names)
        _ZONE_LISTS[names] = found
    return found


class _DebtorState:
    """A debtor's attempts, counted per cap; per-zone day counts are built only when needed."""

    __slots__ = (
        "attempts",
        "cap_totals",
        "conversation_days",
        "conversations",
        "gate",
        "indexes",
    )

    def __init__(self, gate: Gate, attempts: Iterable[PastContact]) -> None:
        self.gate = gate
        self.attempts: list[PastContact] = list(attempts)
        self.indexes: dict[str, _ZoneIndex] = {}
        # Totals do not depend on the zone, so most debtors never need local dates at all.
        self.cap_totals: list[dict[str | None, int]] = [{} for _ in gate.caps]
        self.conversations: dict[str | None, list[datetime]] = {}
        self.conversation_days: dict[tuple[str, str | None], list[tuple[datetime, int]]] = {}
        for past in self.attempts:
            if past.party is _DEBTOR:
                self._total(past)

    def index(self, name: str, tz: ZoneInfo) -> _ZoneIndex:
        """Return the per-day counts in one zone, building them on first use."""
        index = self.indexes.get(name)
        if index is None:
            index = _ZoneIndex(tz, len(self.gate.caps))
            for past in self.attempts:
                self._count(index, past)
            self.indexes[name] = index
        return index

    def full_caps(self, channel: Channel, account_id: str | None) -> list[int]:
        """Return the positions of the caps on the channel whose totals reach their limit."""
        caps = self.gate.caps
        full: list[int] = []
        for position in self.gate.cap_positions[channel]:
            cap = caps[position]
            scope = account_id if cap.per_debt else None
            if self.cap_totals[position].get(scope, 0) >= cap.limit:
                full.append(position)
        return full

    def conversations_in(
        self, zone_name: str, tz: ZoneInfo, account_id: str | None
    ) -> list[tuple[datetime, int]]:
        """Return the debt's conversations with their local day numbers in one zone."""
        key = (zone_name, account_id)
        found = self.conversation_days.get(key)
        if found is None:
            found = [
                (moment, moment.astimezone(tz).toordinal())
                for moment in self.conversations.get(account_id, ())
            ]
            self.conversation_days[key] = found
        return found

    def add(self, past: PastContact) -> None:
        """Record one more attempt, such as a reserved slot."""
        self.attempts.append(past)
        if past.party is not _DEBTOR:
            return
        self._total(past)
        for index in self.indexes.values():
            self._count(index, past)

    def _total(self, past: PastContact) -> None:
        caps = self.gate.caps
        for position in self.gate.cap_positions[past.channel]:
            cap = caps[position]
            if past.effective or not cap.effective_only:
                scope = past.account_id if cap.per_debt else None
                totals = self.cap_totals[position]
                totals[scope] = totals.get(scope, 0) + 1
        if past.outcome is _CONVERSATION and past.channel in VOICE_CHANNELS:
            self.conversations.setdefault(past.account_id, []).append(past.at)
            self.conversation_days.clear()

    def _count(self, index: _ZoneIndex, past: PastContact) -> None:
        if past.party is not _DEBTOR:
            return
        caps = self.gate.caps
        day: int | None = None
        for position in self.gate.cap_positions[past.channel]:
            cap = caps[position]
            if cap.effective_only and not past.effective:
                continue
            if day is None:
                day = past.at.astimezone(index.tz).toordinal()
            key: object = (past.account_id, day) if cap.per_debt else day
            counts = index.cap_counts[position]
            counts[key] = counts.get(key, 0) + 1


def _local_values(zone_name: str, local: datetime, start: time, end: time) -> dict[str, object]:
    return {
        "zone": zone_name,
        "local_time": f"{local:%Y-%m-%d %H:%M}",
        "start": f"{start:%H:%M}",
        "end": f"{end:%H:%M}",
    }


def _hours_blocks(
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    instant: datetime,
    zone_name: str,
    tz: ZoneInfo,
    local: datetime,
) -> list[_Block]:
    blocks: list[_Block] = []
    rules = gate.hour_seconds[attempt.channel]
    if rules:
        second = local.hour * 3600 + local.minute * 60 + local.second
        failing: list[_Hours] = []
        for hours, start, end in rules:
            if not start <= second < end:
                failing.append(hours)
        if failing and not (
            gate.honour_agreed_windows
            and facts.agreed_windows
            and any(window.covers(local) for window in facts.agreed_windows)
        ):
            # The pack's reason is shown when it applies; the latest opening wins.
            wall = local.time().replace(tzinfo=None)
            retry = max(
                instant_at_wall(
                    local.date() if wall < hours.start else local.date() + timedelta(days=1),
                    hours.start,
                    tz,
                )
                for hours in failing
            )
            if gate.honour_agreed_windows:
                for window in facts.agreed_windows:
                    opening = window.next_start(instant, tz)
                    if opening is not None and opening < retry:
                        retry = opening
            shown = failing[0]
            blocks.append(
                _Block(
                    shown.rule_id,
                    shown.code,
                    lambda: _local_values(zone_name, local, shown.start, shown.end),
                    retry,
                )
            )
    for window in facts.inconvenient_windows:
        started = window.containing_start_date(local)
        if started is not None:
            blocks.append(
                _Block(
                    gate.inconvenient_rule,
                    "inconvenient",
                    partial(_local_values, zone_name, local, window.start, window.end),
                    window.end_after(started, tz),
                )
            )
    return blocks


def _day_kind(gate: Gate, day: date) -> tuple[str, str] | None:
    """Return (English, Chinese) names of why a date is closed, or None if it is open."""
    ordinal = day.toordinal()
    if ordinal in gate.day_kinds:
        return gate.day_kinds[ordinal]
    kind: tuple[str, str] | None = None
    if day in gate.blackout_dates:
        kind = ("no-contact day set by your institution", "机构设定的停催日")
    elif gate.holiday_suppression is HolidaySuppression.PUBLIC_HOLIDAYS:
        name = gate.calendar.holiday_name(day)
        if name is not None:
            kind = (f"public holiday ({name})", f"法定节假日（{name}）")
    elif (
        gate.holiday_suppression is HolidaySuppression.NON_WORKING_DAYS
        and not gate.calendar.is_working_day(day)
    ):
        name = gate.calendar.holiday_name(day)
        kind = (
            "non-working day" + (f" ({name})" if name else ""),
            "非工作日" + (f"（{name}）" if name else ""),
        )
    gate.day_kinds[ordinal] = kind
    return kind


def _holiday_values(zone_name: str, day: date, kind: tuple[str, str]) -> dict[str, object]:
    return {"zone": zone_name, "local_date": f"{day}", "day_kind": kind[0], "day_kind_zh": kind[1]}


def _holiday_block(gate: Gate, zone_name: str, tz: ZoneInfo, local: datetime) -> _Block | None:
    day = local.date()
    kind = _day_kind(gate, day)
    if kind is None:
        return None
    return _Block(
        "POL-HOLIDAY",
        "holiday",
        partial(_holiday_values, zone_name, day, kind),
        local_date_start(day + timedelta(days=1), tz),
    )


def _cap_values(
    cap: _Cap, zone_name: str, day: int, window_start: date, count: int
) -> dict[str, object]:
    channel_names = sorted(cap.channels)
    return {
        "zone": zone_name,
        "local_date": f"{date.fromordinal(day)}",
        "window_start": f"{window_start}",
        "window_end": f"{window_start + timedelta(days=cap.days - 1)}",
        "days": cap.days,
        "count": count,
        "limit": cap.limit,
        "channels": "/".join(CHANNEL_NAMES_EN[c] for c in channel_names),
        "channels_zh": "/".join(CHANNEL_NAMES_ZH[c] for c in channel_names),
        "period": "one local day" if cap.days == 1 else f"{cap.days} local days",
        "period_zh": "当地当日" if cap.days == 1 else f"当地连续 {cap.days} 天",
    }


def _cap_blocks(
    gate: Gate,
    attempt: PlannedContact,
    state: _DebtorState,
    full_caps: Sequence[int],
    zone_name: str,
    tz: ZoneInfo,
    day: int,
) -> list[_Block]:
    blocks: list[_Block] = []
    index = state.index(zone_name, tz)
    for position in full_caps:
        cap = gate.caps[position]
        scope = attempt.account_id if cap.per_debt else None
        counts = index.cap_counts[position]
        days = cap.days
        if cap.per_debt:
            daily = [counts.get((scope, day + offset), 0) for offset in range(1 - days, days)]
        else:
            daily = [counts.get(day + offset, 0) for offset in range(1 - days, days)]
        # Every window of `days` consecutive local days that holds this day must have room.
        running = sum(daily[:days])
        full_start = -1
        full_count = 0
        for start in range(days):
            if start:
                running += daily[start + days - 1] - daily[start - 1]
            if running >= cap.limit:
                full_start, full_count = start, running
        if full_start < 0:
            continue
        window_start = date.fromordinal(day - days + 1 + full_start)
        blocks.append(
            _Block(
                cap.rule_id,
                cap.code,
                partial(_cap_values, cap, zone_name, day, window_start, full_count),
                local_date_start(window_start + timedelta(days=days), tz),
            )
        )
    return blocks


def _cooldown_block(
    days: int,
    attempt: PlannedContact,
    state: _DebtorState,
    earliest: datetime,
    instant: datetime,
    zone_name: str,
    tz: ZoneInfo,
    day: int,
) -> _Block | None:
    # The conversation day counts as the first of the cooldown days; earliest is days + 1
    # days before the instant.
    latest: int | None = None
    for moment, conversation_day in state.conversations_in(zone_name, tz, attempt.account_id):
        if (
            conversation_day <= day < conversation_day + days
            and (latest is None or conversation_day > latest)
            and earliest < moment <= instant
        ):
            latest = conversation_day
    if latest is None:
        return None
    return _Block(
        "US-7IN7",
        "after_conversation",
        partial(_cooldown_values, latest, days, zone_name),
        local_date_start(date.fromordinal(latest + days), tz),
    )


def _cooldown_values(latest: int, days: int, zone_name: str) -> dict[str, object]:
    return {"conversation_date": f"{date.fromordinal(latest)}", "days": days, "zone": zone_name}


def _third_party_blocks(
    gate: Gate, attempt: PlannedContact, state: _DebtorState, instant: datetime
) -> list[_Block]:
    rule_id = gate.third_party_rule
    if rule_id is None or attempt.party is not Party.THIRD_PARTY:
        return []
    blocks: list[_Block] = []
    contacted = 0
    refused_at: datetime | None = None
    failed = 0
    reached = False
    since = instant - gate.third_party_lookback
    for past in state.attempts:
        if past.party is Party.THIRD_PARTY:
            if past.third_party_id == attempt.third_party_id and past.at <= instant:
                contacted += 1
                if past.outcome is Outcome.REFUSED:
                    refused_at = past.at
        elif since < past.at <= instant:
            if past.outcome in FAILED_TO_REACH:
                failed += 1
            elif past.outcome is Outcome.CONVERSATION:
                reached = True
    if refused_at is not None:
        blocks.append(
            _Block(rule_id, "third_party_refused", {"refused_at": f"{refused_at:%Y-%m-%d}"}, None)
        )
    limit = gate.third_party_max_contacts
    if limit is not None and contacted >= limit:
        blocks.append(
            _Block(rule_id, "third_party_limit", {"count": contacted, "limit": limit}, None)
        )
    if reached or failed < gate.third_party_min_failed:
        blocks.append(
            _Block(
                rule_id,
                "debtor_reachable",
                {
                    "failed": failed,
                    "required": gate.third_party_min_failed,
                    "days": gate.third_party_lookback.days,
                },
                None,
            )
        )
    return blocks


def _validation_block(
    gate: Gate, attempt: PlannedContact, facts: DebtorFacts, local: datetime
) -> _Block | None:
    days = gate.validation_notice_days
    first = facts.initial_communication_on
    if (
        days is None
        or first is None
        or facts.validation_notice_sent_on is not None
        or attempt.channel is _LETTER
        or local.date() <= first + timedelta(days=days)
    ):
        return None
    return _Block("US-VAL", "notice_overdue", {"first_contact": f"{first}", "days": days}, None)


def _timed_blocks(
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    state: _DebtorState,
    zones: Sequence[tuple[str, ZoneInfo]],
    instant: datetime,
    full_caps: Sequence[int],
) -> list[_Block]:
    """Return the blocks at one instant; each says when it could lift, if ever.

    full_caps are the positions of the caps whose totals reach their limit (_full_caps).
    """
    party = attempt.party
    channel = attempt.channel
    blocks = _third_party_blocks(gate, attempt, state, instant) if party is _THIRD_PARTY else []
    # Caps and the cooldown depend on the zone only through the local day, so whether they
    # can bite at all is settled once, before the per-zone work.
    cooldown_days: int | None = None
    earliest = instant
    days = gate.conversation_cooldown_days
    if party is _DEBTOR and days is not None:
        conversations = state.conversations.get(attempt.account_id)
        if conversations and channel in VOICE_CHANNELS:
            # Only a conversation in the last days + 1 days can start a cooldown in any zone.
            earliest = instant - timedelta(days=days + 1)
            for moment in conversations:
                if earliest < moment <= instant:
                    cooldown_days = days
                    break
    validating = (
        gate.validation_notice_days is not None
        and facts.initial_communication_on is not None
        and facts.validation_notice_sent_on is None
        and channel is not _LETTER
    )
    hour_range = gate.hour_ranges[channel]
    inconvenient = bool(facts.inconvenient_windows)
    checks_days = gate.checks_days
    for zone_name, tz in zones:
        local = instant.astimezone(tz)
        if inconvenient:
            blocks += _hours_blocks(gate, attempt, facts, instant, zone_name, tz, local)
        elif hour_range is not None:
            second = local.hour * 3600 + local.minute * 60 + local.second
            if not hour_range[0] <= second < hour_range[1]:
                blocks += _hours_blocks(gate, attempt, facts, instant, zone_name, tz, local)
        if checks_days:
            holiday = _holiday_block(gate, zone_name, tz, local)
            if holiday is not None:
                blocks.append(holiday)
        if full_caps or cooldown_days is not None:
            day = local.toordinal()
            if full_caps:
                blocks += _cap_blocks(gate, attempt, state, full_caps, zone_name, tz, day)
            if cooldown_days is not None:
                cooldown = _cooldown_block(
                    cooldown_days, attempt, state, earliest, instant, zone_name, tz, day
                )
                if cooldown is not None:
                    blocks.append(cooldown)
        if validating:
            validation = _validation_block(gate, attempt, facts, local)
            if validation is not None:
                blocks.append(validation)
    return blocks


def _full_caps(gate: Gate, attempt: PlannedContact, state: _DebtorState) -> list[int]:
    """Return the positions of the caps on the attempt that its debtor's totals already fill."""
    if attempt.party is not _DEBTOR or not gate.cap_positions[attempt.channel]:
        return []
    return state.full_caps(attempt.channel, attempt.account_id)


def _next_allowed(
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    state: _DebtorState,
    zones: Sequence[tuple[str, ZoneInfo]],
    blocks: list[_Block],
    full_caps: Sequence[int],
) -> datetime | None:
    candidate = attempt.at
    for _ in range(MAX_RESCHEDULE_STEPS):
        if not blocks:
            return candidate
        later = candidate
        for block in blocks:
            if block.retry_at is None:
                return None
            if block.retry_at > later:
                later = block.retry_at
        candidate = later if later > candidate else candidate + timedelta(seconds=1)
        blocks = _timed_blocks(gate, attempt, facts, state, zones, candidate, full_caps)
    return None


def _message_values(
    common: Mapping[str, object],
    values: Mapping[str, object] | Callable[[], Mapping[str, object]],
) -> dict[str, object]:
    return {**common, **(values() if callable(values) else values)}


def _reasons(gate: Gate, attempt: PlannedContact, blocks: list[_Block]) -> tuple[Reason, ...]:
    """Turn blocks into reasons with messages, one per rule and message kind."""
    reasons: list[Reason] = []
    seen: set[tuple[str, str]] = set()
    common = gate.channel_values[attempt.channel]
    for block in blocks:
        key = (block.rule_id, block.code)
        if key in seen:
            continue
        seen.add(key)
        template = gate.messages.get(key)
        if template is None:
            raise KeyError(
                f"rule pack {gate.pack.code} has no message {block.code} for {block.rule_id}"
            )
        reasons.append(
            Reason(
                block.rule_id, block.code, template, partial(_message_values, common, block.values)
            )
        )
    return tuple(reasons)


def _decide(
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    state: _DebtorState,
) -> Decision:
    instant = attempt.at
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise NaiveDatetime(
            f"the planned contact time must carry a timezone offset, got {instant.isoformat()}"
        )
    names = _zone_names(gate, attempt, facts)
    zones = _zone_list(names)
    standing = _standing_blocks(gate, attempt, facts)
    # Totals do not change while one attempt is decided, so the full caps hold for every
    # instant _next_allowed tries.
    full_caps = _full_caps(gate, attempt, state)
    timed = _timed_blocks(gate, attempt, facts, state, zones, instant, full_caps)
    if not standing and not timed:
        # Positional: keyword arguments cost a third of this path's constructor time.
        return Decision(
            True,
            (),
            None,
            instant,
            names,
            gate.pack.code,
            gate.pack.version,
            gate.policy.name,
            gate.policy.version,
        )
    next_allowed_at: datetime | None = None
    if not standing:
        next_allowed_at = _next_allowed(gate, attempt, facts, state, zones, timed, full_caps)
        if next_allowed_at is not None:
            next_allowed_at = next_allowed_at.astimezone(zones[0][1])
    return Decision(
        allowed=False,
        reasons=_reasons(gate, attempt, standing + timed),
        next_allowed_at=next_allowed_at,
        at=instant,
        timezones=names,
        pack_code=gate.pack.code,
        pack_version=gate.pack.version,
        policy_name=gate.policy.name,
        policy_version=gate.policy.version,
    )


def decide_contact(
    attempt: PlannedContact,
    *,
    facts: DebtorFacts,
    history: ContactHistory,
    pack: RulePack,
    policy: Policy | None = None,
) -> Decision:
    """Decide whether a planned contact may happen, why not, and when it next could."""
    gate = _cached_gate(pack, policy)
    return _decide(gate, attempt, facts, _DebtorState(gate, history.attempts))


# The slots of PastContact in field order, set directly by reservation_for.
_PAST_CONTACT_SETTERS: tuple[Callable[[PastContact, object], None], ...] = tuple(
    getattr(PastContact, past_field.name).__set__ for past_field in fields(PastContact)
)


def reservation_for(attempt: PlannedContact) -> PastContact:
    """Return the history entry an allowed attempt occupies until it is made or expires."""
    # Every allowed contact of a batch makes one, and a frozen dataclass's __init__ costs
    # several times more than setting its slots; the values follow PastContact's field order.
    values = (
        attempt.at,
        attempt.channel,
        attempt.party,
        _PLANNED,
        True,
        attempt.account_id,
        attempt.third_party_id,
        attempt.agency_id,
    )
    reservation = object.__new__(PastContact)
    for setter, value in zip(_PAST_CONTACT_SETTERS, values, strict=True):
        setter(reservation, value)
    return reservation


def decide_batch(
    attempts: Sequence[PlannedContact],
    *,
    facts: Mapping[str, DebtorFacts],
    histories: Mapping[str, ContactHistory],
    gate: Gate,
    reserve: bool = True,
) -> list[Decision]:
    """Decide many planned contacts in order; allowed ones count against later ones' caps."""
    # A batch allocates many small objects and no reference cycles, so reference counting
    # frees everything; without this pause the cyclic collector rescans the caller's whole
    # heap again and again, which cost about as much as the decisions themselves.
    collecting = gc.isenabled()
    gc.disable()
    try:
        states: dict[str, _DebtorState] = {}
        decisions: list[Decision] = []
        for attempt in attempts:
            debtor_id = attempt.debtor_id
            state = states.get(debtor_id)
            if state is None:
                history = histories.get(debtor_id)
                state = _DebtorState(gate, history.attempts if history is not None else ())
                states[debtor_id] = state
            debtor_facts = facts.get(debtor_id)
            if debtor_facts is None:
                raise KeyError(f"no debtor facts for {debtor_id!r}; the gate never guesses them")
            decision = _decide(gate, attempt, debtor_facts, state)
            if decision.allowed and reserve:
                state.add(reservation_for(attempt))
            decisions.append(decision)
        return decisions
    finally:
        if collecting:
            gc.enable()


def reschedule(attempt: PlannedContact, decision: Decision) -> PlannedContact | None:
    """Return the attempt moved to the decision's next allowed time, or None if none helps."""
    if decision.allowed:
        return attempt
    if decision.next_allowed_at is None:
        return None
    return replace(attempt, at=decision.next_allowed_at)


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """A family of numbered cap slots (prefix + 1..limit) one allowed contact must claim."""

    prefix: str
    limit: int
    effective_only: bool


def cap_slots(gate: Gate, attempt: PlannedContact, facts: DebtorFacts) -> list[SlotSpec]:
    """Return the cap slots an allowed contact occupies, one family per cap, zone and window."""
    if attempt.party is not Party.DEBTOR:
        return []
    specs: list[SlotSpec] = []
    zones = _zone_list(_zone_names(gate, attempt, facts))
    for cap in gate.caps:
        if attempt.channel not in cap.channels:
            continue
        counted = "effective" if cap.effective_only else "all"
        channels = ",".join(sorted(channel.value for channel in cap.channels))
        scope = (attempt.account_id or "-") if cap.per_debt else "*"
        for zone_name, tz in zones:
            day = attempt.at.astimezone(tz).date()
            for offset in range(cap.days):
                window_start = day - timedelta(days=offset)
                specs.append(
                    SlotSpec(
                        prefix=f"{cap.rule_id}/{counted}/{channels}/{scope}/{zone_name}/"
                        f"{window_start}/",
                        limit=cap.limit,
                        effective_only=cap.effective_only,
                    )
                )
    return specs


class TemplateTransitionRefused(ValueError):
    """A template cannot move to the requested status."""


TEMPLATE_TRANSITIONS = {
    "submit": ({"draft", "rejected"}, "submitted"),
    "approve": ({"submitted"}, "approved"),
    "reject": ({"submitted", "approved"}, "rejected"),
}


def template_transition(
    *,
    action: str,
    status: str,
    author_id: int | None,
    reviewer_id: int | None,
    review_passed: bool,
) -> str:
    """Return the template's next status, or refuse: four eyes, and only clean texts approved."""
    if action not in TEMPLATE_TRANSITIONS:
        raise TemplateTransitionRefused(f"unknown action {action!r}")
    sources, target = TEMPLATE_TRANSITIONS[action]
    if status not in sources:
        raise TemplateTransitionRefused(
            f"a {status} template cannot be {target}; it must be {' or '.join(sorted(sources))}"
        )
    if action in {"approve", "reject"} and author_id is not None and author_id == reviewer_id:
        raise TemplateTransitionRefused(
            "the author cannot review their own template; another compliance officer must"
        )
    if action == "approve" and not review_passed:
        raise TemplateTransitionRefused(
            "the template still has review findings; fix them and submit it again"
        )
    return target


def with_block(
    decision: Decision,
    *,
    gate: Gate,
    rule_id: str,
    code: str,
    values: Mapping[str, object],
) -> Decision:
    """Return the decision blocked by one more rule that no later time lifts."""
    template = gate.messages[(rule_id, code)]
    reason = Reason(
        rule_id=rule_id,
        code=code,
        template=template,
        values=partial(_message_values, {}, dict(values)),
    )
    return replace(
        decision, allowed=False, reasons=(*decision.reasons, reason), next_allowed_at=None
    )
