"""An institution's settings: one typed section per domain, validated when written.

The settings are stored as JSON on the institution, one object per section::

    {"portfolio": {"waterfall": [...]}, "scoring": {...}, "workbench": {...}, "analytics": {...}}

Each domain reads its own section through ``settings_of(institution)`` and never looks into
the raw document. ``validate_settings`` refuses a document with a message per field
(``scoring.grade_thresholds: …``). Documents written before the sections existed kept every
setting at the top level; they are read as if sectioned (a setting no longer used is dropped).
"""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recoup.kit.errors import ValidationFailed
from recoup.scoring import rules as scoring_rules

BalancePart = Literal["penalty", "fees", "interest", "principal"]
BALANCE_PARTS: tuple[BalancePart, ...] = ("penalty", "fees", "interest", "principal")
MAX_SETTING_DAYS = 366
NonNegativeMinor = Annotated[int, Field(ge=0)]


Stage = Literal["early", "mid"]
Propensity = Literal["high", "medium", "low"]


def _stage_buckets() -> dict[Stage, list[str]]:
    defaults = scoring_rules.DEFAULT_STAGE_BUCKETS
    return {"early": list(defaults["early"]), "mid": list(defaults["mid"])}


def _propensity_grades() -> dict[Propensity, list[str]]:
    defaults = scoring_rules.DEFAULT_PROPENSITY_GRADES
    return {
        "high": list(defaults["high"]),
        "medium": list(defaults["medium"]),
        "low": list(defaults["low"]),
    }


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortfolioSettings(_Section):
    """How payments pay down an account's balance parts."""

    waterfall: tuple[BalancePart, ...] = BALANCE_PARTS

    @field_validator("waterfall")
    @classmethod
    def _each_part_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if sorted(value) != sorted(BALANCE_PARTS):
            raise ValueError(f"name each of {', '.join(BALANCE_PARTS)} exactly once")
        return value


class ScoringSettings(_Section):
    """Risk grades, balance bands, segments and contact costs for priority."""

    # Probability-to-pay thresholds of grades A to D (E is the rest), best first.
    grade_thresholds: tuple[float, float, float, float] | None = None
    small_balance_minor: NonNegativeMinor = scoring_rules.DEFAULT_SMALL_BALANCE
    large_balance_minor: NonNegativeMinor = scoring_rules.DEFAULT_LARGE_BALANCE
    contact_cost_minor: dict[str, NonNegativeMinor] = Field(
        default_factory=lambda: dict(scoring_rules.DEFAULT_CONTACT_COSTS)
    )
    segment_stage_buckets: dict[Stage, list[str]] = Field(default_factory=_stage_buckets)
    segment_propensity_grades: dict[Propensity, list[str]] = Field(
        default_factory=_propensity_grades
    )
    segment_channels: dict[str, str] = Field(
        default_factory=lambda: dict(scoring_rules.DEFAULT_CHANNELS)
    )

    @field_validator("grade_thresholds")
    @classmethod
    def _falling_probabilities(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if value is None:
            return None
        if not all(0 < item < 1 for item in value):
            raise ValueError("each threshold is a probability between 0 and 1")
        if any(later >= earlier for earlier, later in pairwise(value)):
            raise ValueError("thresholds fall from grade A to grade D, e.g. [0.6, 0.4, 0.25, 0.1]")
        return value

    @model_validator(mode="after")
    def _bands_in_order(self) -> ScoringSettings:
        if self.large_balance_minor <= self.small_balance_minor:
            raise ValueError("large_balance_minor must be above small_balance_minor")
        return self


class WorkbenchSettings(_Section):
    """Promises to pay: how far ahead one may be due, how late a payment still keeps it."""

    promise_horizon_days: int = Field(default=30, ge=0, le=MAX_SETTING_DAYS)
    promise_grace_days: int = Field(default=3, ge=0, le=MAX_SETTING_DAYS)


class PlanSettings(_Section):
    """Payment plans: how many instalments, how much discount, and above what it needs approval."""

    max_instalments: int = Field(default=24, ge=1, le=120)
    # Discounts in basis points of the balance (1,000 = 10 %).
    max_discount_bp: int = Field(default=3_000, ge=0, le=9_999)
    approval_above_bp: int = Field(default=1_000, ge=0, le=9_999)
    grace_days: int = Field(default=5, ge=0, le=MAX_SETTING_DAYS)

    @model_validator(mode="after")
    def _approval_within_limit(self) -> PlanSettings:
        if self.approval_above_bp > self.max_discount_bp:
            raise ValueError(
                "approval_above_bp cannot exceed max_discount_bp (approval would never be needed)"
            )
        return self


# What one contact costs the institution, in its currency's major units (1.50 a call).
DEFAULT_CONTACT_COST: dict[str, Decimal] = {
    "call": Decimal("1.50"),
    "ai_call": Decimal("0.30"),
    "sms": Decimal("0.05"),
    "email": Decimal("0.01"),
    "letter": Decimal("5.00"),
    "visit": Decimal("80.00"),
}
UnitCost = Annotated[Decimal, Field(ge=0, le=1_000_000, decimal_places=4, allow_inf_nan=False)]


class AnalyticsSettings(_Section):
    """KPIs: contact costs per channel, and the promise history P(kept) is estimated from."""

    # Channel → cost of one contact; like every setting, a new map replaces the whole map.
    contact_cost: dict[str, UnitCost] = Field(default_factory=lambda: dict(DEFAULT_CONTACT_COST))
    # P(kept) of the promise forecast: promises decided over this many days before as_of,
    # by bucket once a bucket has this many of them (else the institution's overall rate).
    kept_rate_days: int = Field(default=90, ge=1, le=MAX_SETTING_DAYS)
    min_promises_per_bucket: int = Field(default=30, ge=1, le=100_000)

    @field_validator("contact_cost")
    @classmethod
    def _channel_names(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        if any(not channel.strip() or len(channel) > 32 for channel in value):
            raise ValueError("a channel name is 1–32 characters, e.g. call")
        return value


# "sandbox" (demo only) accepts every message and answers with delivery receipts of its own.
SmsProvider = Literal["log", "gateway", "twilio", "sandbox"]
EmailProvider = Literal["log", "smtp", "sandbox"]
MessageChannel = Literal["sms", "email", "letter"]
_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class ChannelSettings(_Section):
    """Messages: the channels in use, their providers (secrets come from the environment), the
    sender ids, the rate limits, the institution's own quiet hours and what a missed window does.

    What a message costs is ``analytics.contact_cost`` (one price per channel for every use).
    """

    enabled: tuple[MessageChannel, ...] = ("sms", "email", "letter")
    # "log" records each message in a local file and delivers nothing (tests); "sandbox"
    # pretends to deliver and sends receipts back (the demo; never for real debtors).
    sms_provider: SmsProvider = "log"
    sms_gateway_url: str | None = Field(default=None, max_length=512)
    twilio_account_sid: str | None = Field(default=None, max_length=64)
    twilio_base_url: str = Field(default="https://api.twilio.com", max_length=512)
    # The sender of texts: a number, a short code or an approved signature (【某某金融】).
    sms_sender: str | None = Field(default=None, max_length=64)
    sms_per_second: float = Field(default=50.0, gt=0, le=10_000)
    email_provider: EmailProvider = "log"
    smtp_host: str = Field(default="localhost", max_length=255)
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    smtp_starttls: bool = False
    smtp_username: str | None = Field(default=None, max_length=255)
    email_from: str = Field(default="collections@example.invalid", max_length=255)
    email_per_second: float = Field(default=20.0, gt=0, le=10_000)
    # Where providers send delivery receipts (this server's public address).
    callback_base_url: str | None = Field(default=None, max_length=512)
    # Local hours (the debtor's zone) with no messages at all, stricter than the pack.
    quiet_start: str | None = Field(default=None, pattern=_CLOCK)
    quiet_end: str | None = Field(default=None, pattern=_CLOCK)
    # A message the gate holds back at send time waits for its next allowed time, or expires.
    on_missed_window: Literal["reschedule", "expire"] = "reschedule"
    # A message not sent this long after it was first due expires.
    expire_after_hours: int = Field(default=48, ge=1, le=24 * 30)
    max_attempts: int = Field(default=6, ge=1, le=50)

    @model_validator(mode="after")
    def _quiet_both_or_neither(self) -> ChannelSettings:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("set quiet_start and quiet_end together, e.g. 20:00 and 09:00")
        if self.sms_provider == "gateway" and not self.sms_gateway_url:
            raise ValueError("sms_provider gateway needs sms_gateway_url")
        if self.sms_provider == "twilio" and not self.twilio_account_sid:
            raise ValueError("sms_provider twilio needs twilio_account_sid")
        return self


_TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_SIP_TEMPLATE = re.compile(r"^sips?:[^\s{}]*\{number\}[^\s{}]*$")


class OutreachSettings(_Section):
    """Dialer links, field visit hours and route start, and the sender printed on letters."""

    # Click-to-call through the institution's PBX, e.g. sip:{number}@pbx.example.com.
    sip_uri_template: str | None = Field(default=None, max_length=200)
    # The field team's working hours (institution time); the gate's visit hours still apply.
    visit_start: str = "09:00"
    visit_end: str = "18:00"
    # Minutes one visit takes, travel included: how the day's visits are spaced.
    visit_minutes: int = Field(default=45, ge=5, le=480)
    # Where routes start, "city/district" as debtors' addresses name them (None: the first stop).
    route_start: str | None = Field(default=None, max_length=130)
    letter_sender_name: str = Field(default="", max_length=128)
    letter_sender_address: str = Field(default="", max_length=255)
    letter_sender_phone: str = Field(default="", max_length=64)

    @field_validator("sip_uri_template")
    @classmethod
    def _sip_template(cls, value: str | None) -> str | None:
        if value is not None and not _SIP_TEMPLATE.match(value):
            raise ValueError(
                "a SIP URI template starts with sip: or sips: and holds {number} once, "
                "e.g. sip:{number}@pbx.example.com"
            )
        return value

    @field_validator("visit_start", "visit_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _TIME_OF_DAY.match(value):
            raise ValueError("a time of day is HH:MM on a 24-hour clock, e.g. 09:00")
        return value

    @field_validator("route_start")
    @classmethod
    def _place(cls, value: str | None) -> str | None:
        if value is not None and value.count("/") != 1:
            raise ValueError("name the route's start as city/district, e.g. 上海市/黄浦区")
        return value

    @model_validator(mode="after")
    def _hours_in_order(self) -> OutreachSettings:
        if self.visit_end <= self.visit_start:
            raise ValueError("visit_end must be later than visit_start")
        return self


class CycleSettings(_Section):
    """The daily cycle: when it runs by itself, in the institution's local time."""

    # None: only when someone runs it (``recoup cycle run``); else every day from this time.
    run_at: time | None = None


class IntegrationSettings(_Section):
    """Other systems' access: how long idempotency keys are kept, how webhooks are delivered."""

    # An ``Idempotency-Key`` replays its first answer for this many days, then may be reused.
    idempotency_key_days: int = Field(default=7, ge=1, le=MAX_SETTING_DAYS)
    # Webhook deliveries: tries before a delivery is a dead letter, and each try's time limit.
    webhook_max_attempts: int = Field(default=12, ge=1, le=30)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Requests a minute each of the institution's API keys may send; empty: the platform's
    # ``RECOUP_API_KEY_REQUESTS_PER_MINUTE``.
    api_requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    # The scheduled file drop (docs/integrations.md): when on, CSV/XLSX files put in the drop
    # folder are imported every minute. The folder is a path inside RECOUP_DROP_ROOT (empty:
    # the institution's code); a file changed less than ``drop_settle_seconds`` ago waits.
    drop_enabled: bool = False
    drop_folder: str | None = Field(default=None, max_length=200)
    drop_settle_seconds: int = Field(default=60, ge=0, le=3600)

    @field_validator("drop_folder")
    @classmethod
    def _inside_the_drop_root(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = value.strip().replace("\\", "/").split("/")
        if value.startswith(("/", "~")) or any(part in {"", ".", ".."} for part in parts):
            raise ValueError(
                "a folder inside RECOUP_DROP_ROOT, e.g. bank1 or sftp/bank1 "
                "(no leading /, no . or .. parts)"
            )
        return "/".join(parts)


PriorityBasis = Literal["propensity", "uplift"]


class AllocationSettings(_Section):
    """What a case's priority (and the agents' allocation) is worth.

    ``propensity``: expected recovery, P(pay) × overdue amount. ``uplift``: the extra recovery a
    contact buys, (P(pay | contacted) − P(pay | not)) × overdue amount, from the institution's
    latest uplift model (``recoup simulate uplift-train``); without one, or on a channel the model
    has not learnt, priority stays on propensity and says why.
    """

    priority: PriorityBasis = "propensity"


class InstitutionSettings(_Section):
    """Every section of an institution's settings."""

    portfolio: PortfolioSettings = Field(default_factory=PortfolioSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    workbench: WorkbenchSettings = Field(default_factory=WorkbenchSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    plans: PlanSettings = Field(default_factory=PlanSettings)
    channels: ChannelSettings = Field(default_factory=ChannelSettings)
    cycle: CycleSettings = Field(default_factory=CycleSettings)
    integration: IntegrationSettings = Field(default_factory=IntegrationSettings)
    outreach: OutreachSettings = Field(default_factory=OutreachSettings)
    allocation: AllocationSettings = Field(default_factory=AllocationSettings)

    @model_validator(mode="before")
    @classmethod
    def _sectioned(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(key in _LEGACY for key in data):
            return data
        sectioned: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if key in SECTIONS:
                sectioned.setdefault(key, {}).update(value if isinstance(value, dict) else {})
            elif key in _LEGACY:
                sectioned.setdefault(_LEGACY[key], {})[key] = value
            elif key not in _RETIRED:
                sectioned[key] = value  # refused below as an unknown section
        return sectioned


SECTIONS: dict[str, type[_Section]] = {
    "portfolio": PortfolioSettings,
    "scoring": ScoringSettings,
    "workbench": WorkbenchSettings,
    "analytics": AnalyticsSettings,
    "plans": PlanSettings,
    "channels": ChannelSettings,
    "cycle": CycleSettings,
    "integration": IntegrationSettings,
    "outreach": OutreachSettings,
    "allocation": AllocationSettings,
}
_LEGACY = {field: section for section, model in SECTIONS.items() for field in model.model_fields}
_RETIRED = frozenset({"call_window_end"})


def validate_settings(document: Any) -> InstitutionSettings:
    """Return the typed settings of ``document`` or refuse it with a message per field."""
    try:
        return InstitutionSettings.model_validate(document or {})
    except ValidationError as error:
        errors = [
            {
                "field": ".".join(str(part) for part in item["loc"]) or "settings",
                "message": item["msg"].removeprefix("Value error, "),
            }
            for item in error.errors()
        ]
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
        raise ValidationFailed(f"the settings are not valid: {detail}", errors=errors) from None


def settings_of(institution: Any) -> InstitutionSettings:
    """Return an institution's typed settings (refusing stored settings that are not valid)."""
    raw = getattr(institution, "settings", None) or {}
    try:
        return validate_settings(raw)
    except ValidationFailed as error:
        raise ValidationFailed(
            f"institution {institution.code}: {error.message}", errors=error.extra.get("errors")
        ) from None


def merged(document: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return ``document`` with ``changes`` applied section by section (for partial updates)."""
    result: dict[str, Any] = {key: dict(value) for key, value in document.items()}
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(result.get(section), dict):
            result[section] = {**result[section], **values}
        else:
            result[section] = values
    return result
