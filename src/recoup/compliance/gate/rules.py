"""The contact gate: pure decisions on whether a planned contact may happen, and when."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from math import floor
from zoneinfo import ZoneInfo

from recoup.compliance.enums import HolidaySuppression
from recoup.compliance.facts.rules import PLACE_NAMES, InconvenientPlace
from recoup.compliance.gate.localtime import (
    EPOCH_ORDINAL,
    ONE_SECOND,
    WorkingDayCalendar,
    ZoneOffsets,
    instant_at_wall,
    local_date_start,
    working_day_calendar,
    zone,
    zone_offsets,
)
from recoup.compliance.kinds import RuleKind
from recoup.compliance.policy.rules import POLICY_HOURS_RULE, Policy, ensure_policy_allowed
from recoup.compliance.rulepack import LocalisedText, RulePack, RulePackError
from recoup.contact.channels import (
    CHANNEL_NAMES_EN,
    CHANNEL_NAMES_ZH,
    CHANNEL_PLURALS_EN,
    CHANNEL_VERBS_ZH,
    VOICE_CHANNELS,
    Channel,
)
from recoup.contact.rules import CONVERSATIONS, FAILED_TO_REACH, REFUSALS, OutcomeCode, Party
from recoup.kit import collector

# How many later instants next_allowed_at may try; a month of daily blocks fits easily.
MAX_RESCHEDULE_STEPS = 400
ONE_DAY = timedelta(days=1)

# Enum members bound once: looking them up on the class costs more than the check itself.
_DEBTOR = Party.DEBTOR
_THIRD_PARTY = Party.THIRD_PARTY
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
    inconvenient_places: frozenset[InconvenientPlace] = field(default_factory=frozenset)
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
    """One earlier (or reserved) contact attempt about the debtor, by anyone.

    Its outcome is a code of the contact log (what it means is ``contact.rules.OUTCOMES``);
    None while the contact is planned and unreported, or made with no outcome known. A
    contact that was not made is no past contact at all.
    """

    at: datetime
    channel: Channel
    party: Party = Party.DEBTOR
    outcome: OutcomeCode | None = OutcomeCode.NO_ANSWER
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
    cooldown_rule: str | None
    stop_rules: Mapping[str, str]
    dispute_rule: str | None
    validation_rule: str | None
    validation_notice_days: int | None
    third_party_rule: str | None
    third_party_min_failed: int
    third_party_lookback: timedelta
    third_party_max_contacts: int | None
    automated_rule: str | None
    automated_channels: frozenset[Channel]
    workplace_rule: str | None
    recording_rule: str | None
    channel_rule: str
    agency_rule: str
    holiday_rule: str
    certification_rule: str
    race_rule: str
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
    hours_rules = pack.rules_of(RuleKind.CONTACT_HOURS)
    for rule in hours_rules:
        pack_hours = _Hours(
            rule.id,
            "quiet_hours",
            pack.time_parameter(rule.id, "start"),
            pack.time_parameter(rule.id, "end"),
        )
        for channel in _channels(pack.names_parameter(rule.id, "channels")):
            hours[channel].append(pack_hours)
    # The institution's own hours are told against the pack's first hours rule.
    policy_rule = hours_rules[0].id if hours_rules else POLICY_HOURS_RULE
    for channel_hours in policy.hours:
        for channel in channel_hours.channels:
            hours[channel].append(
                _Hours(policy_rule, "policy_hours", channel_hours.start, channel_hours.end)
            )
    return {channel: tuple(rules) for channel, rules in hours.items()}


def _compile_caps(pack: RulePack, policy: Policy) -> tuple[_Cap, ...]:
    caps: list[_Cap] = []
    daily = pack.rule_of(RuleKind.DAILY_EFFECTIVE_CAP)
    if daily is not None:
        limit = pack.int_parameter(daily.id, "max_effective_calls_per_day")
        if policy.max_effective_voice_calls_per_day is not None:
            limit = min(limit, policy.max_effective_voice_calls_per_day)
        caps.append(
            _Cap(
                daily.id,
                "daily_cap",
                _channels(pack.names_parameter(daily.id, "channels")),
                limit,
                1,
                effective_only=True,
                per_debt=False,
            )
        )
    rolling = pack.rule_of(RuleKind.ROLLING_CALL_CAP)
    if rolling is not None:
        limit = pack.int_parameter(rolling.id, "max_calls")
        if policy.max_calls_per_debt_in_window is not None:
            limit = min(limit, policy.max_calls_per_debt_in_window)
        caps.append(
            _Cap(
                rolling.id,
                "call_cap",
                _channels(pack.names_parameter(rolling.id, "channels")),
                limit,
                pack.int_parameter(rolling.id, "days"),
                effective_only=False,
                per_debt=True,
            )
        )
    policy_cap = _rule_id(pack, RuleKind.POLICY_CAP)
    for cap in policy.channel_caps:
        caps.append(
            _Cap(
                policy_cap,
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
    rules = {
        str(status): rule.id
        for rule in pack.rules_of(RuleKind.STOP_STATUS)
        for status in pack.names_parameter(rule.id, "statuses")
    }
    for rule in pack.rules_of(RuleKind.CHANNEL_OPT_OUT):
        rules["channel_opt_out"] = rule.id
    return rules


def _rule_id(pack: RulePack, kind: RuleKind) -> str:
    """Return the id of the pack's rule of a kind the gate cannot do without."""
    rule = pack.rule_of(kind)
    if rule is None:
        raise RulePackError(f"pack {pack.code} has no {kind} rule; the gate cites one")
    return rule.id


def _optional_rule_id(pack: RulePack, kind: RuleKind) -> str | None:
    rule = pack.rule_of(kind)
    return None if rule is None else rule.id


def compile_gate(pack: RulePack, policy: Policy | None = None) -> Gate:
    """Check the policy against the pack and precompute everything decisions need."""
    policy = policy or Policy()
    ensure_policy_allowed(policy, pack)
    third_party = pack.rule_of(RuleKind.THIRD_PARTY_LIMIT)
    min_failed = 0
    lookback_days = 0
    max_contacts: int | None = None
    if third_party is not None:
        min_failed = pack.int_parameter(third_party.id, "min_failed_attempts")
        lookback_days = pack.int_parameter(third_party.id, "max_lookback_days")
        max_contacts = pack.optional_int_parameter(third_party.id, "max_contacts_per_third_party")
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
    validation = pack.rule_of(RuleKind.VALIDATION_NOTICE)
    dispute_rule: str | None = None
    if validation is not None and pack.bool_parameter(validation.id, "pause_on_dispute"):
        dispute_rule = validation.id
    elif policy.pause_on_dispute:
        dispute_rule = _rule_id(pack, RuleKind.DISPUTE_PAUSE)
    rolling = pack.rule_of(RuleKind.ROLLING_CALL_CAP)
    cooldown: int | None = None
    if rolling is not None:
        cooldown = pack.int_parameter(rolling.id, "conversation_cooldown_days")
        if policy.conversation_cooldown_days is not None:
            cooldown = max(cooldown, policy.conversation_cooldown_days)
    hours_rules = pack.rules_of(RuleKind.CONTACT_HOURS)
    automated = pack.rule_of(RuleKind.AUTOMATED_CONSENT)
    hours = _compile_hours(pack, policy)
    caps = _compile_caps(pack, policy)
    return Gate(
        pack=pack,
        policy=policy,
        default_timezone=pack.default_timezone,
        hours=hours,
        honour_agreed_windows=policy.honour_agreed_windows,
        inconvenient_rule=_optional_rule_id(pack, RuleKind.INCONVENIENT_TIME)
        or (hours_rules[0].id if hours_rules else POLICY_HOURS_RULE),
        caps=caps,
        conversation_cooldown_days=cooldown,
        cooldown_rule=None if rolling is None else rolling.id,
        stop_rules=_stop_rules(pack),
        dispute_rule=dispute_rule,
        validation_rule=None if validation is None else validation.id,
        validation_notice_days=(
            None if validation is None else pack.int_parameter(validation.id, "notice_within_days")
        ),
        third_party_rule=None if third_party is None else third_party.id,
        third_party_min_failed=min_failed,
        third_party_lookback=timedelta(days=lookback_days),
        third_party_max_contacts=max_contacts,
        automated_rule=None if automated is None else automated.id,
        automated_channels=(
            frozenset()
            if automated is None
            else _channels(pack.names_parameter(automated.id, "automated_channels"))
        ),
        workplace_rule=_optional_rule_id(pack, RuleKind.WORKPLACE),
        recording_rule=_optional_rule_id(pack, RuleKind.RECORDING),
        channel_rule=_rule_id(pack, RuleKind.CHANNEL_DISABLED),
        agency_rule=_optional_rule_id(pack, RuleKind.OUTSOURCING)
        or _rule_id(pack, RuleKind.CHANNEL_DISABLED),
        holiday_rule=_rule_id(pack, RuleKind.HOLIDAY),
        certification_rule=_rule_id(pack, RuleKind.CERTIFICATION),
        race_rule=_rule_id(pack, RuleKind.SLOT_RACE),
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
        blocks.append(_Block(gate.channel_rule, "channel_disabled", {}, None))
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
    if facts.inconvenient_places:
        place = _contact_place(attempt)
        if place is not None and place in facts.inconvenient_places:
            english, chinese = PLACE_NAMES[place]
            blocks.append(
                _Block(
                    gate.inconvenient_rule,
                    "inconvenient_place",
                    {"place": english, "place_zh": chinese},
                    None,
                )
            )
    if attempt.at_workplace and facts.work_contact_forbidden and gate.workplace_rule is not None:
        blocks.append(_Block(gate.workplace_rule, "workplace", {}, None))
    if channel is Channel.VISIT and not attempt.recorded and gate.recording_rule is not None:
        blocks.append(_Block(gate.recording_rule, "recording_required", {}, None))
    approved = gate.policy.approved_agencies
    if attempt.agency_id is not None and approved is not None and attempt.agency_id not in approved:
        blocks.append(
            _Block(gate.agency_rule, "agency_not_approved", {"agency": attempt.agency_id}, None)
        )
    return blocks


def _contact_place(attempt: PlannedContact) -> InconvenientPlace | None:
    """Return where a contact reaches the debtor, when the plan says so."""
    if attempt.at_workplace:
        return InconvenientPlace.WORKPLACE
    if attempt.channel is Channel.VISIT and attempt.party is Party.DEBTOR:
        # A field visit that is not at work is a visit at home.
        return InconvenientPlace.HOME
    return None


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


# A zone as the per-zone loop uses it: name, zone, its hour -> offset cache, and the cache.
_ZoneClock = tuple[str, ZoneInfo, dict[int, int], ZoneOffsets]
_ZONE_CLOCKS: dict[tuple[str, ...], tuple[_ZoneClock, ...]] = {}


def _zone_clocks(names: tuple[str, ...]) -> tuple[_ZoneClock, ...]:
    found = _ZONE_CLOCKS.get(names)
    if found is None:
        found = tuple(
            (name, tz, zone_offsets(tz).by_hour, zone_offsets(tz)) for name, tz in _zone_list(names)
        )
        _ZONE_CLOCKS[names] = found
    return found


class _Reserved:
    """The slot an allowed attempt of a batch occupies: reservation_for(attempt)'s values.

    A batch reserves for every allowed attempt, and this plain object costs a third of a
    frozen PastContact to make; the rules read both alike.
    """

    __slots__ = (
        "account_id",
        "agency_id",
        "at",
        "channel",
        "effective",
        "outcome",
        "party",
        "third_party_id",
    )

    def __init__(self, attempt: PlannedContact) -> None:
        self.at = attempt.at
        self.channel = attempt.channel
        self.party = attempt.party
        self.outcome = None
        self.effective = True
        self.account_id = attempt.account_id
        self.third_party_id = attempt.third_party_id
        self.agency_id = attempt.agency_id


# An attempt the rules count: from the history, or reserved earlier in the same batch.
_Attempt = PastContact | _Reserved


# The gate last asked about and whether one of its caps has limit 0: a batch asks once per
# debtor, always about the same gate.
_ZERO_LIMIT: list[tuple[Gate, bool]] = []


def _has_zero_limit(gate: Gate) -> bool:
    # One read of the entry, so a thread replacing it cannot pair one gate with another's answer.
    for last_gate, found in _ZERO_LIMIT:
        if last_gate is gate:
            return found
    found = any(cap.limit <= 0 for cap in gate.caps)
    _ZERO_LIMIT[:] = [(gate, found)]
    return found


class _DebtorState:
    """A debtor's attempts, counted per cap; per-zone day counts are built only when needed.

    A state serves one debtor's facts for its whole life, so it also keeps the zones those
    facts and the gate settle for every attempt without a contact point zone of its own.
    """

    __slots__ = (
        "any_full",
        "attempts",
        "cap_totals",
        "conversations",
        "gate",
        "indexes",
        "names",
        "zones",
    )

    def __init__(self, gate: Gate, attempts: Iterable[PastContact]) -> None:
        self.gate = gate
        self.attempts: list[_Attempt] = list(attempts)
        self.indexes: dict[str, _ZoneIndex] = {}
        # The zones of an attempt without its own contact point zone (_zone_names).
        self.names: tuple[str, ...] = ()
        self.zones: tuple[_ZoneClock, ...] | None = None
        # Totals do not depend on the zone, so most debtors never need local dates at all.
        self.cap_totals: list[dict[str | None, int]] = [{} for _ in gate.caps]
        # Whether any total has reached its cap's limit; until then no cap can be full
        # (a cap of limit 0 is full from the start).
        self.any_full = _has_zero_limit(gate)
        # Per debt, its voice conversations: the instant in UTC and in whole epoch seconds.
        self.conversations: dict[str | None, list[tuple[datetime, int]]] = {}
        self._total(self.attempts)

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

    def add(self, past: _Attempt) -> None:
        """Record one more attempt, such as a reserved slot."""
        self.attempts.append(past)
        if past.party is not _DEBTOR:
            return
        self._total((past,))
        for index in self.indexes.values():
            self._count(index, past)

    def _total(self, attempts: Iterable[_Attempt]) -> None:
        """Count the debtor's own attempts into the cap totals and note their conversations."""
        caps = self.gate.caps
        cap_positions = self.gate.cap_positions
        cap_totals = self.cap_totals
        # Conversations matter only to a cooldown (_timed_blocks).
        cooldown = bool(self.gate.conversation_cooldown_days)
        for past in attempts:
            if past.party is not _DEBTOR:
                continue
            channel = past.channel
            for position in cap_positions[channel]:
                cap = caps[position]
                if past.effective or not cap.effective_only:
                    scope = past.account_id if cap.per_debt else None
                    totals = cap_totals[position]
                    total = totals[scope] = totals.get(scope, 0) + 1
                    if total >= cap.limit:
                        self.any_full = True
            if cooldown and past.outcome in CONVERSATIONS and channel in VOICE_CHANNELS:
                # In UTC: comparing datetimes of one fixed zone skips two offset lookups each.
                moment = past.at.astimezone(UTC)
                self.conversations.setdefault(past.account_id, []).append(
                    (moment, floor(moment.timestamp()))
                )

    def _count(self, index: _ZoneIndex, past: _Attempt) -> None:
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
    second: int,
) -> list[_Block]:
    """Return the hours and inconvenient-window blocks at a local time (second of its day)."""
    blocks: list[_Block] = []
    rules = gate.hour_seconds[attempt.channel]
    if rules:
        failing: list[tuple[_Hours, int]] = []
        for hours, start, end in rules:
            if not start <= second < end:
                failing.append((hours, start))
        if failing and not (
            gate.honour_agreed_windows
            and facts.agreed_windows
            and any(window.covers(local) for window in facts.agreed_windows)
        ):
            # The pack's reason is shown when it applies; the latest opening wins. Hours are
            # whole seconds, so comparing the second of the day compares the wall times.
            today = local.date()
            retry = instant_at_wall(
                today if second < failing[0][1] else today + ONE_DAY, failing[0][0].start, tz
            )
            for hours, start in failing[1:]:
                later = instant_at_wall(
                    today if second < start else today + ONE_DAY, hours.start, tz
                )
                if later > retry:
                    retry = later
            if gate.honour_agreed_windows:
                for window in facts.agreed_windows:
                    opening = window.next_start(instant, tz)
                    if opening is not None and opening < retry:
                        retry = opening
            shown = failing[0][0]
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


def _holiday_block(gate: Gate, zone_name: str, tz: ZoneInfo, ordinal: int) -> _Block | None:
    kinds = gate.day_kinds
    if ordinal in kinds and kinds[ordinal] is None:
        return None
    day = date.fromordinal(ordinal)
    kind = _day_kind(gate, day)
    if kind is None:
        return None
    return _Block(
        gate.holiday_rule,
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
        if days == 1:
            # A daily cap has one window: the day itself.
            full_count = counts.get((scope, day) if cap.per_debt else day, 0)
            if full_count < cap.limit:
                continue
            full_start = 0
        else:
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


def _cooldown_block(rule_id: str, days: int, latest: int, zone_name: str, tz: ZoneInfo) -> _Block:
    """Block until the cooldown after the conversation on local day ordinal latest ends."""
    # The conversation day counts as the first of the cooldown days.
    return _Block(
        rule_id,
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
                if past.outcome in REFUSALS:
                    refused_at = past.at
        elif since < past.at <= instant:
            if past.outcome in FAILED_TO_REACH:
                failed += 1
            elif past.outcome in CONVERSATIONS:
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
    gate: Gate, attempt: PlannedContact, facts: DebtorFacts, ordinal: int
) -> _Block | None:
    """Block when the validation notice is overdue on the local day with that ordinal."""
    days = gate.validation_notice_days
    first = facts.initial_communication_on
    if (
        days is None
        or first is None
        or facts.validation_notice_sent_on is not None
        or attempt.channel is _LETTER
        or ordinal <= first.toordinal() + days
    ):
        return None
    assert gate.validation_rule is not None
    return _Block(
        gate.validation_rule, "notice_overdue", {"first_contact": f"{first}", "days": days}, None
    )


# The span before an instant in which a conversation can still start a cooldown, per length.
_COOLDOWN_SPANS: dict[int, timedelta] = {}


def _timed_blocks(
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    state: _DebtorState,
    zones: Sequence[_ZoneClock],
    instant: datetime,
    full_caps: Sequence[int],
    utc: datetime,
) -> list[_Block]:
    """Return the blocks at one instant (also given in UTC); each says when it could lift.

    full_caps are the positions of the caps whose totals reach their limit (_full_caps).
    Datetimes in UTC compare without offset lookups, so everything but the third-party
    look-back (which counts days on the instant's own clock) works on utc.
    """
    party = attempt.party
    channel = attempt.channel
    blocks = _third_party_blocks(gate, attempt, state, instant) if party is _THIRD_PARTY else []
    # Caps and the cooldown depend on the zone only through the local day, so whether they
    # can bite at all is settled once, before the per-zone work.
    recent: list[int] = []
    # A cooldown of no days never holds any day, as if there were none.
    days = gate.conversation_cooldown_days or 0
    if party is _DEBTOR and days:
        conversations = state.conversations.get(attempt.account_id)
        if conversations and channel in VOICE_CHANNELS:
            # Only a conversation in the last days + 1 days can start a cooldown in any zone.
            span = _COOLDOWN_SPANS.get(days)
            if span is None:
                span = _COOLDOWN_SPANS[days] = timedelta(days=days + 1)
            earliest = utc - span
            for moment, moment_epoch in conversations:
                if earliest < moment <= utc:
                    recent.append(moment_epoch)
    validating = (
        gate.validation_notice_days is not None
        and facts.initial_communication_on is not None
        and facts.validation_notice_sent_on is None
        and channel is not _LETTER
    )
    inconvenient = bool(facts.inconvenient_windows)
    checks_days = gate.checks_days
    # Without an hours rule every second of the day is open.
    opens, closes = gate.hour_ranges[channel] or (0, 86400)
    # The local day and second come from the zone's cached offset at this UTC hour; a local
    # datetime is made only for the zones that block, to word the reason.
    epoch = floor(utc.timestamp())
    hour = epoch // 3600
    for zone_name, tz, offsets_by_hour, offsets in zones:
        offset = offsets_by_hour.get(hour)
        if offset is None:
            offset = offsets.at(epoch)
        local_seconds = epoch + offset
        second = local_seconds % 86400
        if inconvenient or not opens <= second < closes:
            blocks += _hours_blocks(
                gate, attempt, facts, utc, zone_name, tz, utc.astimezone(tz), second
            )
        if not (checks_days or full_caps or recent or validating):
            continue
        day = local_seconds // 86400 + EPOCH_ORDINAL
        if checks_days:
            holiday = _holiday_block(gate, zone_name, tz, day)
            if holiday is not None:
                blocks.append(holiday)
        if full_caps:
            blocks += _cap_blocks(gate, attempt, state, full_caps, zone_name, tz, day)
        if recent:
            # The latest conversation whose local day starts a cooldown holding this day.
            latest = 0
            for moment_epoch in recent:
                moment_offset = offsets_by_hour.get(moment_epoch // 3600)
                if moment_offset is None:
                    moment_offset = offsets.at(moment_epoch)
                conversation_day = (moment_epoch + moment_offset) // 86400 + EPOCH_ORDINAL
                if conversation_day <= day < conversation_day + days and conversation_day > latest:
                    latest = conversation_day
            if latest:
                assert gate.cooldown_rule is not None
                blocks.append(_cooldown_block(gate.cooldown_rule, days, latest, zone_name, tz))
        if validating:
            validation = _validation_block(gate, attempt, facts, day)
            if validation is not None:
                blocks.append(validation)
    return blocks


def _full_caps(gate: Gate, attempt: PlannedContact, state: _DebtorState) -> Sequence[int]:
    """Return the positions of the caps on the attempt that its debtor's totals already fill."""
    if (
        not state.any_full
        or attempt.party is not _DEBTOR
        or not gate.cap_positions[attempt.channel]
    ):
        return ()
    return state.full_caps(attempt.channel, attempt.account_id)


def _next_allowed(
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    state: _DebtorState,
    zones: Sequence[_ZoneClock],
    blocks: list[_Block],
    full_caps: Sequence[int],
) -> datetime | None:
    """Return the first instant no timed block holds, stepping from block to block.

    Every block's retry_at is an instant before which it certainly holds, so jumping to the
    latest of them never passes an allowed instant. The channel's hours are such a bound on
    their own: when one hours rule decides them and no agreed window can lift them, the
    candidate first moves to the next opening in every zone, which spares the evaluation
    that would only find the hours closed (a cooldown or cap ending at local midnight).
    """
    rules = gate.hour_seconds[attempt.channel]
    hours = (
        rules[0]
        if len(rules) == 1
        and attempt.party is _DEBTOR
        and not (gate.honour_agreed_windows and facts.agreed_windows)
        else None
    )
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
        candidate = later if later > candidate else candidate + ONE_SECOND
        utc = candidate if candidate.tzinfo is UTC else candidate.astimezone(UTC)
        if hours is not None:
            utc = _open_hours(hours, zones, utc)
            candidate = utc
        blocks = _timed_blocks(gate, attempt, facts, state, zones, candidate, full_caps, utc)
    return None


def _open_hours(
    hours: tuple[_Hours, int, int], zones: Sequence[_ZoneClock], utc: datetime
) -> datetime:
    """Return the first instant from utc (UTC) at which the hours are open in every zone.

    Gives up after a few rounds (zones whose hours never overlap) and returns the latest
    instant reached, which is still one before which the hours are closed somewhere.
    """
    rule, start, end = hours
    for _ in range(4):
        moved = False
        for _name, tz, offsets_by_hour, offsets in zones:
            epoch = floor(utc.timestamp())
            offset = offsets_by_hour.get(epoch // 3600)
            if offset is None:
                offset = offsets.at(epoch)
            local_seconds = epoch + offset
            second = local_seconds % 86400
            if start <= second < end:
                continue
            day = local_seconds // 86400 + EPOCH_ORDINAL
            opening = instant_at_wall(
                date.fromordinal(day if second < start else day + 1), rule.start, tz
            )
            if opening > utc:
                utc = opening
                moved = True
        if not moved:
            break
    return utc


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
        reason: Reason = _new(Reason)
        _set_rule_id(reason, block.rule_id)
        _set_code(reason, block.code)
        _set_template(reason, template)
        _set_values(reason, partial(_message_values, common, block.values))
        reasons.append(reason)
    return tuple(reasons)


def _decide(
    gate: Gate,
    attempt: PlannedContact,
    facts: DebtorFacts,
    state: _DebtorState,
) -> Decision:
    instant = attempt.at
    tzinfo = instant.tzinfo
    if tzinfo is UTC:
        utc = instant
    elif tzinfo is None or (type(tzinfo) is not ZoneInfo and instant.utcoffset() is None):
        raise NaiveDatetime(
            f"the planned contact time must carry a timezone offset, got {instant.isoformat()}"
        )
    else:
        utc = instant.astimezone(UTC)
    if attempt.contact_point_timezone:
        names = _zone_names(gate, attempt, facts)
        zones = _zone_clocks(names)
    else:
        found = state.zones
        if found is None:
            state.names = _zone_names(gate, attempt, facts)
            found = state.zones = _zone_clocks(state.names)
        names = state.names
        zones = found
    standing = _standing_blocks(gate, attempt, facts)
    # Totals do not change while one attempt is decided, so the full caps hold for every
    # instant _next_allowed tries.
    full_caps = _full_caps(gate, attempt, state) if state.any_full else ()
    timed = _timed_blocks(gate, attempt, facts, state, zones, instant, full_caps, utc)
    if not standing and not timed:
        return _decision(gate, True, (), None, instant, names)
    next_allowed_at: datetime | None = None
    if not standing:
        next_allowed_at = _next_allowed(gate, attempt, facts, state, zones, timed, full_caps)
        if next_allowed_at is not None:
            next_allowed_at = next_allowed_at.astimezone(zones[0][1])
    return _decision(
        gate,
        False,
        _reasons(gate, attempt, standing + timed),
        next_allowed_at,
        instant,
        names,
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


def _slot_setters(cls: type, names: Sequence[str]) -> tuple[Callable[[object, object], None], ...]:
    """Return the slot setters of a frozen dataclass's fields, checking they are all of them."""
    if tuple(names) != tuple(each.name for each in fields(cls)):
        raise TypeError(f"{cls.__name__} fields changed; update the fast constructor")
    return tuple(getattr(cls, name).__set__ for name in names)


# Every allowed contact of a batch makes a PastContact and a Decision, and a frozen
# dataclass's __init__ costs several times more than setting its slots directly.
(
    _set_past_at,
    _set_past_channel,
    _set_past_party,
    _set_past_outcome,
    _set_past_effective,
    _set_past_account_id,
    _set_past_third_party_id,
    _set_past_agency_id,
) = _slot_setters(
    PastContact,
    (
        "at",
        "channel",
        "party",
        "outcome",
        "effective",
        "account_id",
        "third_party_id",
        "agency_id",
    ),
)
(
    _set_allowed,
    _set_reasons,
    _set_next_allowed_at,
    _set_at,
    _set_timezones,
    _set_pack_code,
    _set_pack_version,
    _set_policy_name,
    _set_policy_version,
) = _slot_setters(
    Decision,
    (
        "allowed",
        "reasons",
        "next_allowed_at",
        "at",
        "timezones",
        "pack_code",
        "pack_version",
        "policy_name",
        "policy_version",
    ),
)
(_set_rule_id, _set_code, _set_template, _set_values) = _slot_setters(
    Reason, ("rule_id", "code", "template", "values")
)
(
    _set_facts_debtor_id,
    _set_facts_timezones,
    _set_facts_agreed_windows,
    _set_facts_inconvenient_windows,
    _set_facts_inconvenient_places,
    _set_facts_cease_contact,
    _set_facts_opted_out_channels,
    _set_facts_attorney_represented,
    _set_facts_dispute_open,
    _set_facts_deceased,
    _set_facts_bankruptcy,
    _set_facts_automated_consent,
    _set_facts_work_contact_forbidden,
    _set_facts_initial_communication_on,
    _set_facts_validation_notice_sent_on,
) = _slot_setters(
    DebtorFacts,
    (
        "debtor_id",
        "timezones",
        "agreed_windows",
        "inconvenient_windows",
        "inconvenient_places",
        "cease_contact",
        "opted_out_channels",
        "attorney_represented",
        "dispute_open",
        "deceased",
        "bankruptcy",
        "automated_consent",
        "work_contact_forbidden",
        "initial_communication_on",
        "validation_notice_sent_on",
    ),
)
(
    _set_planned_debtor_id,
    _set_planned_channel,
    _set_planned_at,
    _set_planned_party,
    _set_planned_account_id,
    _set_planned_contact_point_timezone,
    _set_planned_third_party_id,
    _set_planned_agency_id,
    _set_planned_automated,
    _set_planned_to_mobile,
    _set_planned_at_workplace,
    _set_planned_recorded,
) = _slot_setters(
    PlannedContact,
    (
        "debtor_id",
        "channel",
        "at",
        "party",
        "account_id",
        "contact_point_timezone",
        "third_party_id",
        "agency_id",
        "automated",
        "to_mobile",
        "at_workplace",
        "recorded",
    ),
)
_new = object.__new__
_NO_CHANNELS: frozenset[Channel] = frozenset()
_NO_PLACES: frozenset[InconvenientPlace] = frozenset()


def batch_planned_contact(
    *,
    debtor_id: str,
    channel: Channel,
    at: datetime,
    account_id: str | None,
    contact_point_timezone: str | None,
    automated: bool,
    to_mobile: bool,
) -> PlannedContact:
    """Return PlannedContact(...) of a contact with the debtor themself (no third party or
    agency, not at work, recorded), as its constructor would build it, several times faster
    (a daily plan builds one per action)."""
    attempt: PlannedContact = _new(PlannedContact)
    _set_planned_debtor_id(attempt, debtor_id)
    _set_planned_channel(attempt, channel)
    _set_planned_at(attempt, at)
    _set_planned_party(attempt, _DEBTOR)
    _set_planned_account_id(attempt, account_id)
    _set_planned_contact_point_timezone(attempt, contact_point_timezone)
    _set_planned_third_party_id(attempt, None)
    _set_planned_agency_id(attempt, None)
    _set_planned_automated(attempt, automated)
    _set_planned_to_mobile(attempt, to_mobile)
    _set_planned_at_workplace(attempt, False)
    _set_planned_recorded(attempt, True)
    return attempt


def batch_debtor_facts(
    *,
    debtor_id: str,
    timezones: tuple[str, ...],
    agreed_windows: tuple[DailyWindow, ...] = (),
    inconvenient_windows: tuple[DailyWindow, ...] = (),
    inconvenient_places: frozenset[InconvenientPlace] = _NO_PLACES,
    cease_contact: bool = False,
    attorney_represented: bool = False,
    dispute_open: bool = False,
    deceased: bool = False,
    bankruptcy: bool = False,
    work_contact_forbidden: bool = False,
    initial_communication_on: date | None = None,
    validation_notice_sent_on: date | None = None,
) -> DebtorFacts:
    """Return DebtorFacts(...) of a debtor contacted at no particular point (no opt-outs or
    consents), as its constructor would build them, several times faster (a batch builds
    one per debtor)."""
    facts: DebtorFacts = _new(DebtorFacts)
    _set_facts_debtor_id(facts, debtor_id)
    _set_facts_timezones(facts, timezones)
    _set_facts_agreed_windows(facts, agreed_windows)
    _set_facts_inconvenient_windows(facts, inconvenient_windows)
    _set_facts_inconvenient_places(facts, inconvenient_places)
    _set_facts_cease_contact(facts, cease_contact)
    _set_facts_opted_out_channels(facts, _NO_CHANNELS)
    _set_facts_attorney_represented(facts, attorney_represented)
    _set_facts_dispute_open(facts, dispute_open)
    _set_facts_deceased(facts, deceased)
    _set_facts_bankruptcy(facts, bankruptcy)
    _set_facts_automated_consent(facts, _NO_CHANNELS)
    _set_facts_work_contact_forbidden(facts, work_contact_forbidden)
    _set_facts_initial_communication_on(facts, initial_communication_on)
    _set_facts_validation_notice_sent_on(facts, validation_notice_sent_on)
    return facts


def _decision(
    gate: Gate,
    allowed: bool,
    reasons: tuple[Reason, ...],
    next_allowed_at: datetime | None,
    instant: datetime,
    names: tuple[str, ...],
) -> Decision:
    """Return the Decision the gate's pack and policy sign, as Decision(...) would build it."""
    decision: Decision = _new(Decision)
    _set_allowed(decision, allowed)
    _set_reasons(decision, reasons)
    _set_next_allowed_at(decision, next_allowed_at)
    _set_at(decision, instant)
    _set_timezones(decision, names)
    pack = gate.pack
    policy = gate.policy
    _set_pack_code(decision, pack.code)
    _set_pack_version(decision, pack.version)
    _set_policy_name(decision, policy.name)
    _set_policy_version(decision, policy.version)
    return decision


def reservation_for(attempt: PlannedContact) -> PastContact:
    """Return the history entry an allowed attempt occupies until it is made or expires."""
    reservation: PastContact = _new(PastContact)
    _set_past_at(reservation, attempt.at)
    _set_past_channel(reservation, attempt.channel)
    _set_past_party(reservation, attempt.party)
    _set_past_outcome(reservation, None)
    _set_past_effective(reservation, True)
    _set_past_account_id(reservation, attempt.account_id)
    _set_past_third_party_id(reservation, attempt.third_party_id)
    _set_past_agency_id(reservation, attempt.agency_id)
    return reservation


def in_local_day(
    gate: Gate, attempt: PlannedContact, facts: DebtorFacts, local: time
) -> PlannedContact:
    """Move a planned contact to when it is at least ``local`` in every zone of the debtor.

    A plan made in the institution's clock ("the morning after the run") means the debtor's
    morning: a debtor three hours west, or in Xinjiang's own time, is in their quiet hours at
    the institution's 09:30. Each zone the gate checks the contact in (the debtor's, and the
    contact point's) is read on its own local date of the planned moment; the latest of those
    local mornings wins, and a plan already later stays where it is.
    """
    names = _zone_names(gate, attempt, facts)
    at = attempt.at
    for _name, tz in _zone_list(names):
        day = at.astimezone(tz).date()
        at = max(at, datetime.combine(day, local, tzinfo=tz))
    return attempt if at == attempt.at else replace(attempt, at=at)


def in_local_days(
    gate: Gate,
    attempts: Sequence[PlannedContact],
    facts: Mapping[str, DebtorFacts],
    local_times: Sequence[time | None],
) -> list[PlannedContact]:
    """Move each planned contact as ``in_local_day`` does (one local time per attempt; None,
    or a debtor without facts, leaves it as it is), working out each distinct instant,
    local time and set of zones once: a daily plan holds a few of each for many debtors."""
    # Per key, the later instant the attempt moves to, or None when it stays.
    moved: dict[tuple[object, ...], datetime | None] = {}
    out: list[PlannedContact] = []
    for attempt, local in zip(attempts, local_times, strict=True):
        known = facts.get(attempt.debtor_id) if local is not None else None
        if known is None or local is None:
            out.append(attempt)
            continue
        instant = attempt.at
        key = (
            _zone_names(gate, attempt, known),
            instant,
            instant.tzinfo,
            instant.fold,
            local,
        )
        if key in moved:
            at = moved[key]
        else:
            later = in_local_day(gate, attempt, known, local)
            at = moved[key] = None if later is attempt else later.at
        out.append(attempt if at is None else replace(attempt, at=at))
    return out


def _facts_key(facts: DebtorFacts) -> tuple[object, ...]:
    """Return everything of a debtor's facts the rules read (all but the debtor's id)."""
    return (
        facts.timezones,
        facts.agreed_windows,
        facts.inconvenient_windows,
        facts.inconvenient_places,
        facts.cease_contact,
        facts.opted_out_channels,
        facts.attorney_represented,
        facts.dispute_open,
        facts.deceased,
        facts.bankruptcy,
        facts.automated_consent,
        facts.work_contact_forbidden,
        facts.initial_communication_on,
        facts.validation_notice_sent_on,
    )


def _fresh_key(attempt: PlannedContact, facts: DebtorFacts) -> tuple[object, ...]:
    """Return what a contact's decision depends on when its debtor has no contact counted
    yet: the facts and every part of the attempt but the debtor and the debt (with nothing
    counted, the debt scopes no count). The instant's zone and fold are part of it: equal
    instants in other zones are other wall times."""
    at = attempt.at
    return (
        _facts_key(facts),
        attempt.channel,
        at,
        at.tzinfo,
        at.fold,
        attempt.party,
        attempt.contact_point_timezone,
        attempt.third_party_id,
        attempt.agency_id,
        attempt.automated,
        attempt.to_mobile,
        attempt.at_workplace,
        attempt.recorded,
    )


def decide_batch(
    attempts: Sequence[PlannedContact],
    *,
    facts: Mapping[str, DebtorFacts],
    histories: Mapping[str, ContactHistory],
    gate: Gate,
    reserve: bool = True,
) -> list[Decision]:
    """Decide many planned contacts in order; allowed ones count against later ones' caps.

    A debtor with one contact in the batch and no history is decided like any other debtor
    with the same facts and the same contact: such contacts are decided once and share
    their (immutable) decision, so a daily plan of a million actions decides each distinct
    case once rather than once per debtor.
    """
    # A batch allocates many small objects and no reference cycles, so reference counting
    # frees everything; without this pause the cyclic collector rescans the caller's whole
    # heap again and again, which cost about as much as the decisions themselves.
    with collector.paused():
        # How many contacts each debtor has in the batch: a debtor's only contact leaves
        # nothing counted for a later one.
        contacts = Counter(attempt.debtor_id for attempt in attempts)
        # Each debtor's facts and state, looked up once per batch.
        debtors: dict[str, tuple[DebtorFacts, _DebtorState]] = {}
        shared: dict[tuple[object, ...], Decision] = {}
        decisions: list[Decision] = []
        decided = decisions.append
        for attempt in attempts:
            debtor_id = attempt.debtor_id
            known = debtors.get(debtor_id)
            if known is None:
                history = histories.get(debtor_id)
                debtor_facts = facts.get(debtor_id)
                if debtor_facts is None:
                    raise KeyError(
                        f"no debtor facts for {debtor_id!r}; the gate never guesses them"
                    )
                if contacts[debtor_id] == 1 and (history is None or not history.attempts):
                    key = _fresh_key(attempt, debtor_facts)
                    decision = shared.get(key)
                    if decision is None:
                        decision = shared[key] = _decide(
                            gate, attempt, debtor_facts, _DebtorState(gate, ())
                        )
                    decided(decision)
                    continue
                state = _DebtorState(gate, history.attempts if history is not None else ())
                debtors[debtor_id] = (debtor_facts, state)
            else:
                debtor_facts, state = known
            decision = _decide(gate, attempt, debtor_facts, state)
            if decision.allowed and reserve:
                state.add(_Reserved(attempt))
            decided(decision)
        return decisions


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
