"""Segments and priority of scored accounts (pure rules over plain values).

A segment is ``stage-propensity-band``:

- **stage** from the delinquency bucket: ``early`` (M0–M1 by default), ``mid`` (M2–M3), ``late``;
- **propensity** from the risk grade: ``high`` (A, B), ``medium`` (C), ``low`` (D, E);
- **band** from the outstanding balance: ``small`` below ``small_balance_minor``, ``large`` from
  ``large_balance_minor``, ``medium`` between.

Priority is expected recovery per unit of effort: the expected recovery (probability to pay ×
overdue amount, in minor units) divided by the cost of one contact on the channel the segment
is worked through (``contact_cost_minor`` of the institution). The channel comes from
``segment_channels``, the most specific key winning: ``stage-propensity-band``,
``stage-propensity``, ``stage-band``, ``stage``, then ``default``. Every threshold is an
institution setting with a preset (``institutions.rules.PRESETS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STAGES = ("early", "mid", "late")
PROPENSITIES = ("high", "medium", "low")
BANDS = ("small", "medium", "large")
KNOWN_BUCKETS = ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+")

DEFAULT_STAGE_BUCKETS: Mapping[str, tuple[str, ...]] = {
    "early": ("M0", "M1"),
    "mid": ("M2", "M3"),
}
DEFAULT_PROPENSITY_GRADES: Mapping[str, tuple[str, ...]] = {
    "high": ("A", "B"),
    "medium": ("C",),
    "low": ("D", "E"),
}
DEFAULT_CHANNELS: Mapping[str, str] = {
    "early-high": "sms",
    "early": "ai_call",
    "mid": "call",
    "late-large": "visit",
    "late": "call",
    "default": "call",
}
DEFAULT_CONTACT_COSTS: Mapping[str, int] = {
    "sms": 5,
    "email": 1,
    "call": 300,
    "ai_call": 30,
    "visit": 8000,
    "letter": 1000,
}
DEFAULT_SMALL_BALANCE = 100_000
DEFAULT_LARGE_BALANCE = 2_000_000


class SegmentSettingsInvalid(ValueError):
    """An institution's segmentation settings cannot be used as they are."""


@dataclass(frozen=True, slots=True)
class SegmentPolicy:
    """An institution's segmentation thresholds and contact costs."""

    small_balance_minor: int = DEFAULT_SMALL_BALANCE
    large_balance_minor: int = DEFAULT_LARGE_BALANCE
    stage_buckets: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_STAGE_BUCKETS)
    )
    propensity_grades: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PROPENSITY_GRADES)
    )
    channels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    contact_costs: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CONTACT_COSTS))

    def __post_init__(self) -> None:
        if not 0 <= self.small_balance_minor <= self.large_balance_minor:
            raise SegmentSettingsInvalid(
                "small_balance_minor must be at most large_balance_minor and not negative; got "
                f"{self.small_balance_minor} and {self.large_balance_minor}"
            )
        for channel in self.channels.values():
            if self.contact_costs.get(channel, 0) <= 0:
                raise SegmentSettingsInvalid(
                    f"segment channel {channel!r} needs a positive cost in contact_cost_minor"
                )
        if "default" not in self.channels:
            raise SegmentSettingsInvalid("segment_channels needs a 'default' channel")


@dataclass(frozen=True, slots=True)
class Segment:
    """Where an account falls: its stage, propensity, balance band and working channel."""

    stage: str
    propensity: str
    band: str
    channel: str

    @property
    def name(self) -> str:
        """The segment's name, e.g. ``early-high-small``."""
        return f"{self.stage}-{self.propensity}-{self.band}"


def _strings(value: Any, setting: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise SegmentSettingsInvalid(f"{setting} must map names to lists of text")
    return tuple(value)


def _whole(value: Any, setting: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise SegmentSettingsInvalid(f"{setting} must be a whole number of minor units")
    return int(value)


def policy_from_settings(settings: Mapping[str, Any] | None) -> SegmentPolicy:
    """Read an institution's settings into a segment policy; missing keys take the defaults."""
    settings = settings or {}
    stage_buckets = settings.get("segment_stage_buckets", DEFAULT_STAGE_BUCKETS)
    propensity_grades = settings.get("segment_propensity_grades", DEFAULT_PROPENSITY_GRADES)
    channels = settings.get("segment_channels", DEFAULT_CHANNELS)
    costs = settings.get("contact_cost_minor", DEFAULT_CONTACT_COSTS)
    for setting, value in (
        ("segment_stage_buckets", stage_buckets),
        ("segment_propensity_grades", propensity_grades),
        ("segment_channels", channels),
        ("contact_cost_minor", costs),
    ):
        if not isinstance(value, Mapping):
            raise SegmentSettingsInvalid(f"{setting} must be a mapping")
    unknown_stages = set(stage_buckets) - {"early", "mid"}
    if unknown_stages:
        raise SegmentSettingsInvalid(
            f"segment_stage_buckets names early and mid (late is the rest); "
            f"found {', '.join(sorted(unknown_stages))}"
        )
    unknown_propensities = set(propensity_grades) - set(PROPENSITIES)
    if unknown_propensities:
        raise SegmentSettingsInvalid(
            f"segment_propensity_grades names high, medium and low; "
            f"found {', '.join(sorted(unknown_propensities))}"
        )
    return SegmentPolicy(
        small_balance_minor=_whole(
            settings.get("small_balance_minor", DEFAULT_SMALL_BALANCE), "small_balance_minor"
        ),
        large_balance_minor=_whole(
            settings.get("large_balance_minor", DEFAULT_LARGE_BALANCE), "large_balance_minor"
        ),
        stage_buckets={
            name: _strings(value, "segment_stage_buckets") for name, value in stage_buckets.items()
        },
        propensity_grades={
            name: _strings(value, "segment_propensity_grades")
            for name, value in propensity_grades.items()
        },
        channels={str(key): str(value) for key, value in channels.items()},
        contact_costs={
            str(channel): _whole(cost, "contact_cost_minor") for channel, cost in costs.items()
        },
    )


def stage_of(bucket: str, policy: SegmentPolicy) -> str:
    """Return the collection stage of a delinquency bucket."""
    for stage in ("early", "mid"):
        if bucket in policy.stage_buckets.get(stage, ()):
            return stage
    return "late"


def propensity_of(grade: str, policy: SegmentPolicy) -> str:
    """Return the propensity tier of a risk grade (A best); an unlisted grade counts as low."""
    for propensity in ("high", "medium"):
        if grade in policy.propensity_grades.get(propensity, ()):
            return propensity
    return "low"


def band_of(balance_minor: int, policy: SegmentPolicy) -> str:
    """Return the balance band of an outstanding balance."""
    if balance_minor < policy.small_balance_minor:
        return "small"
    if balance_minor >= policy.large_balance_minor:
        return "large"
    return "medium"


def channel_for(stage: str, propensity: str, band: str, policy: SegmentPolicy) -> str:
    """Return the channel a segment is worked through: the most specific configured key."""
    for key in (
        f"{stage}-{propensity}-{band}",
        f"{stage}-{propensity}",
        f"{stage}-{band}",
        stage,
        "default",
    ):
        if key in policy.channels:
            return policy.channels[key]
    raise SegmentSettingsInvalid("segment_channels needs a 'default' channel")


def segment_of(*, grade: str, bucket: str, balance_minor: int, policy: SegmentPolicy) -> Segment:
    """Place an account in its segment from grade × bucket × balance band."""
    stage = stage_of(bucket, policy)
    propensity = propensity_of(grade, policy)
    band = band_of(balance_minor, policy)
    return Segment(
        stage=stage,
        propensity=propensity,
        band=band,
        channel=channel_for(stage, propensity, band, policy),
    )


def expected_recovery(*, probability: float, overdue_minor: int) -> int:
    """Return the expected recovery in minor units: probability to pay × overdue amount."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"a probability lies in [0, 1]; got {probability}")
    return round(probability * max(overdue_minor, 0))


def priority(*, expected_recovery_minor: int, channel: str, policy: SegmentPolicy) -> float:
    """Return expected recovery per unit of contact cost on the segment's channel."""
    return max(expected_recovery_minor, 0) / contact_cost(channel, policy)


def contact_cost(channel: str, policy: SegmentPolicy) -> int:
    """Return the cost of one contact on a channel, refusing a channel without one."""
    cost = policy.contact_costs.get(channel, 0)
    if cost <= 0:
        raise SegmentSettingsInvalid(f"channel {channel!r} has no positive contact_cost_minor")
    return cost


# What a priority is worth (``allocation.priority`` and whether an uplift model can answer).
BASIS_PROPENSITY = "propensity"
BASIS_UPLIFT = "uplift"
BASIS_NO_UPLIFT_MODEL = "no_uplift_model"
BASIS_CHANNEL_NOT_LEARNT = "channel_not_learnt"


def priority_basis(*, asked: str, has_model: bool, channel_learnt: bool) -> str:
    """Return what a case's priority is worth: uplift when asked for and known, else why not.

    Uplift needs the institution's setting, a registered uplift model and that model to have
    learnt the segment's channel (from an experiment on it); otherwise the priority stays on
    propensity and the basis names what was missing.
    """
    if asked != BASIS_UPLIFT:
        return BASIS_PROPENSITY
    if not has_model:
        return BASIS_NO_UPLIFT_MODEL
    if not channel_learnt:
        return BASIS_CHANNEL_NOT_LEARNT
    return BASIS_UPLIFT


def uplift_recovery(*, uplift: float, overdue_minor: int) -> int:
    """Return the extra recovery a contact buys: the uplift (never below 0) × overdue amount."""
    if not -1.0 <= uplift <= 1.0:
        raise ValueError(f"an uplift is a difference of probabilities in [-1, 1]; got {uplift}")
    return round(max(uplift, 0.0) * max(overdue_minor, 0))
