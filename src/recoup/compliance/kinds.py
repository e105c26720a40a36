"""What a rule of a pack does: its kind, the parameters that kind takes, the messages it needs.

Code finds rules by kind (the gate's hours, caps and stops, the policy bounds, the rule pages),
never by id; a rule id is data that reasons cite. A new jurisdiction pack is a JSON file whose
rules use these kinds; a new kind of rule is a member here plus the code that enforces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from recoup.contact.channels import OUTBOUND_CHANNELS


class RuleKind(StrEnum):
    """What a rule does, as the code that enforces or shows it knows it."""

    # The contact gate
    CONTACT_HOURS = "contact_hours"
    DAILY_EFFECTIVE_CAP = "daily_effective_cap"
    ROLLING_CALL_CAP = "rolling_call_cap"
    THIRD_PARTY_LIMIT = "third_party_limit"
    STOP_STATUS = "stop_status"
    CHANNEL_OPT_OUT = "channel_opt_out"
    VALIDATION_NOTICE = "validation_notice"
    INCONVENIENT_TIME = "inconvenient_time"
    AUTOMATED_CONSENT = "automated_consent"
    WORKPLACE = "workplace"
    RECORDING = "recording"
    OUTSOURCING = "outsourcing"
    # Content and records (the template review reads the lexicon; these are shown and cited)
    CONDUCT = "conduct"
    REQUIRED_ELEMENTS = "required_elements"
    TIME_BARRED = "time_barred"
    CREDIT_REPORTING = "credit_reporting"
    RECORD_RETENTION = "record_retention"
    PERSONAL_INFORMATION = "personal_information"
    # The institution's policy, cited when the policy (not the law) blocks a contact
    POLICY_CAP = "policy_cap"
    HOLIDAY = "holiday"
    DISPUTE_PAUSE = "dispute_pause"
    CHANNEL_DISABLED = "channel_disabled"
    CERTIFICATION = "certification"
    SLOT_RACE = "slot_race"


class ParameterType(StrEnum):
    """The shape of a rule parameter's value in the pack file."""

    TIME = "time"  # "HH:MM"
    COUNT = "count"  # a whole number, 0 or more
    OPTIONAL_COUNT = "optional_count"  # a whole number, or null for "no limit"
    FLAG = "flag"  # true or false
    CHANNELS = "channels"  # a list of channel codes
    STATUSES = "statuses"  # a list of debtor statuses that stop contact
    NAMES = "names"  # a list of words


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter a kind takes."""

    type: ParameterType
    required: bool = True


# The debtor statuses a stop rule can name (each is also the code of its message).
STOP_STATUSES = frozenset(
    {"cease_contact", "deceased", "bankruptcy", "attorney", "channel_opt_out"}
)
# A pack names the channels contacts are made on (the gate never decides on inbound ones).
CHANNEL_CODES = frozenset(channel.value for channel in OUTBOUND_CHANNELS)

_T = ParameterType
PARAMETERS: Mapping[RuleKind, Mapping[str, Parameter]] = {
    RuleKind.CONTACT_HOURS: {
        "start": Parameter(_T.TIME),
        "end": Parameter(_T.TIME),
        "channels": Parameter(_T.CHANNELS),
        "agreed_windows_allowed": Parameter(_T.FLAG),
    },
    RuleKind.DAILY_EFFECTIVE_CAP: {
        "max_effective_calls_per_day": Parameter(_T.COUNT),
        "channels": Parameter(_T.CHANNELS),
    },
    RuleKind.ROLLING_CALL_CAP: {
        "max_calls": Parameter(_T.COUNT),
        "days": Parameter(_T.COUNT),
        "conversation_cooldown_days": Parameter(_T.COUNT),
        "channels": Parameter(_T.CHANNELS),
    },
    RuleKind.THIRD_PARTY_LIMIT: {
        "min_failed_attempts": Parameter(_T.COUNT),
        "max_lookback_days": Parameter(_T.COUNT),
        "max_contacts_per_third_party": Parameter(_T.OPTIONAL_COUNT),
    },
    RuleKind.STOP_STATUS: {"statuses": Parameter(_T.STATUSES)},
    RuleKind.CHANNEL_OPT_OUT: {"opt_out_required_channels": Parameter(_T.CHANNELS)},
    RuleKind.VALIDATION_NOTICE: {
        "notice_within_days": Parameter(_T.COUNT),
        "pause_on_dispute": Parameter(_T.FLAG),
    },
    RuleKind.INCONVENIENT_TIME: {},
    RuleKind.AUTOMATED_CONSENT: {
        "automated_channels": Parameter(_T.CHANNELS),
        "revocation_business_days": Parameter(_T.COUNT, required=False),
        "revocation_keywords": Parameter(_T.NAMES, required=False),
    },
    RuleKind.WORKPLACE: {},
    RuleKind.RECORDING: {
        "retention_years_credit_card": Parameter(_T.COUNT, required=False),
        "retention_years_internet_finance": Parameter(_T.COUNT, required=False),
        "visits_recorded": Parameter(_T.FLAG, required=False),
    },
    RuleKind.OUTSOURCING: {
        "agency_review_months": Parameter(_T.COUNT, required=False),
        "notify_debtor_before_outsourcing": Parameter(_T.FLAG, required=False),
    },
    RuleKind.CONDUCT: {},
    RuleKind.REQUIRED_ELEMENTS: {
        "channels": Parameter(_T.CHANNELS),
        "elements": Parameter(_T.NAMES),
    },
    RuleKind.TIME_BARRED: {},
    RuleKind.CREDIT_REPORTING: {"days_after_notice": Parameter(_T.COUNT)},
    RuleKind.RECORD_RETENTION: {"retention_years": Parameter(_T.COUNT)},
    RuleKind.PERSONAL_INFORMATION: {
        "impact_assessment_retention_years": Parameter(_T.COUNT, required=False),
        "address_book_harvesting": Parameter(_T.FLAG, required=False),
    },
    RuleKind.POLICY_CAP: {},
    RuleKind.HOLIDAY: {},
    RuleKind.DISPUTE_PAUSE: {},
    RuleKind.CHANNEL_DISABLED: {},
    RuleKind.CERTIFICATION: {},
    RuleKind.SLOT_RACE: {},
}

# The message codes the gate and the services write for a rule of each kind.
MESSAGES: Mapping[RuleKind, frozenset[str]] = {
    RuleKind.CONTACT_HOURS: frozenset({"quiet_hours"}),
    RuleKind.DAILY_EFFECTIVE_CAP: frozenset({"daily_cap"}),
    RuleKind.ROLLING_CALL_CAP: frozenset({"call_cap", "after_conversation"}),
    RuleKind.THIRD_PARTY_LIMIT: frozenset(
        {"debtor_reachable", "third_party_limit", "third_party_refused"}
    ),
    RuleKind.CHANNEL_OPT_OUT: frozenset({"channel_opt_out"}),
    RuleKind.VALIDATION_NOTICE: frozenset({"notice_overdue", "dispute_open"}),
    RuleKind.INCONVENIENT_TIME: frozenset({"inconvenient", "inconvenient_place"}),
    RuleKind.AUTOMATED_CONSENT: frozenset({"no_consent"}),
    RuleKind.WORKPLACE: frozenset({"workplace"}),
    RuleKind.RECORDING: frozenset({"recording_required"}),
    RuleKind.OUTSOURCING: frozenset({"agency_not_approved"}),
    RuleKind.TIME_BARRED: frozenset({"time_barred_threat"}),
    RuleKind.POLICY_CAP: frozenset({"channel_cap"}),
    RuleKind.HOLIDAY: frozenset({"holiday"}),
    RuleKind.DISPUTE_PAUSE: frozenset({"dispute_open"}),
    RuleKind.CHANNEL_DISABLED: frozenset({"channel_disabled"}),
    RuleKind.CERTIFICATION: frozenset({"no_certificate"}),
    RuleKind.SLOT_RACE: frozenset({"slot_taken"}),
}
# The kinds a pack has at most one rule of: the gate and the policy read a single one.
SINGLE = frozenset(
    {
        RuleKind.DAILY_EFFECTIVE_CAP,
        RuleKind.ROLLING_CALL_CAP,
        RuleKind.THIRD_PARTY_LIMIT,
        RuleKind.CHANNEL_OPT_OUT,
        RuleKind.VALIDATION_NOTICE,
        RuleKind.INCONVENIENT_TIME,
        RuleKind.AUTOMATED_CONSENT,
        RuleKind.WORKPLACE,
        RuleKind.RECORDING,
        RuleKind.OUTSOURCING,
        RuleKind.TIME_BARRED,
        RuleKind.POLICY_CAP,
        RuleKind.HOLIDAY,
        RuleKind.DISPUTE_PAUSE,
        RuleKind.CHANNEL_DISABLED,
        RuleKind.CERTIFICATION,
        RuleKind.SLOT_RACE,
    }
)
