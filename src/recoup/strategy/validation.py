"""Checks before a strategy is activated (pure): what would make it wrong or unworkable.

Each finding names its line and field, a code the pages translate (``strategy.finding.<code>``)
with its parameters, and an English message. Errors stop activation; warnings are shown.

- unreachable segments: after a catch-all, a condition nothing can meet, or a condition an
  earlier segment already covers (first match wins); with today's accounts, a segment whose
  accounts all go to earlier ones;
- overlapping segments: an earlier segment may take some of a later one's accounts (warning);
- templates: a named template that is not approved for the step's channel;
- channels: a channel the institution has not enabled, or that its policy always blocks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from recoup.strategy.document import (
    CONTACT_CHANNELS,
    FIELDS,
    AllOf,
    Condition,
    FieldKind,
    NotOf,
    Predicate,
)
from recoup.strategy.rules import CompiledStrategy, Step


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing to fix or to know before activation."""

    severity: Severity
    code: str
    line: int | None
    field: str
    message: str
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationContext:
    """What the institution has: approved templates, channels on, channels always blocked."""

    # Approved templates by name → their channel; None when templates are not checked.
    approved_templates: Mapping[str, str] | None = None
    # Templates that exist but are not approved, by name → status.
    other_templates: Mapping[str, str] = field(default_factory=dict)
    disabled_channels: frozenset[str] = frozenset()
    # Channel → why the institution's policy blocks it whatever the case.
    always_blocked: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """Today's accounts for one segment: its own condition, and those it gets (first match)."""

    matching: int
    assigned: int


# -- static analysis of conditions -----------------------------------------------------------


@dataclass(slots=True)
class _Interval:
    low: float = -math.inf
    low_open: bool = False
    high: float = math.inf
    high_open: bool = False

    def empty(self) -> bool:
        if self.low > self.high:
            return True
        return self.low == self.high and (self.low_open or self.high_open)

    def narrow(self, other: _Interval) -> None:
        if other.low > self.low or (other.low == self.low and other.low_open):
            self.low, self.low_open = other.low, other.low_open
        if other.high < self.high or (other.high == self.high and other.high_open):
            self.high, self.high_open = other.high, other.high_open

    def within(self, other: _Interval) -> bool:
        low_ok = self.low > other.low or (
            self.low == other.low and (self.low_open or not other.low_open)
        )
        high_ok = self.high < other.high or (
            self.high == other.high and (self.high_open or not other.high_open)
        )
        return low_ok and high_ok


@dataclass(slots=True)
class _Region:
    """A conjunction of predicates as per-field sets: exact when nothing was approximated."""

    numbers: dict[str, _Interval] = field(default_factory=dict)
    texts: dict[str, set[str]] = field(default_factory=dict)
    # Text fields with no known domain: values excluded by ``ne``.
    excluded: dict[str, set[str]] = field(default_factory=dict)
    exact: bool = True

    def empty(self) -> bool:
        return any(i.empty() for i in self.numbers.values()) or any(
            not values for values in self.texts.values()
        )


def _predicate_interval(predicate: Predicate) -> tuple[_Interval, bool]:
    value = predicate.value
    if predicate.op == "between":
        assert isinstance(value, list)
        return _Interval(float(value[0]), False, float(value[1]), False), True
    if predicate.op == "in":
        assert isinstance(value, list)
        numbers = [float(v) for v in value]
        return _Interval(min(numbers), False, max(numbers), False), len(set(numbers)) == 1
    number = float(value)  # type: ignore[arg-type]
    spec = FIELDS[predicate.field]
    bounds = _Interval(
        spec.minimum if spec.minimum is not None else -math.inf,
        False,
        spec.maximum if spec.maximum is not None else math.inf,
        False,
    )
    interval = {
        "eq": _Interval(number, False, number, False),
        "lt": _Interval(high=number, high_open=True),
        "le": _Interval(high=number),
        "gt": _Interval(low=number, low_open=True),
        "ge": _Interval(low=number),
        "ne": _Interval(),
    }[predicate.op]
    interval.narrow(bounds)
    return interval, predicate.op != "ne"


def _region(condition: Condition | None) -> _Region | None:
    """The region a condition covers, or None when it is not a plain conjunction."""
    region = _Region()
    if condition is None:
        return region
    parts: list[Condition] = [condition]
    predicates: list[Predicate] = []
    while parts:
        part = parts.pop()
        if isinstance(part, Predicate):
            predicates.append(part)
        elif isinstance(part, AllOf):
            parts.extend(part.all)
        elif isinstance(part, NotOf) and isinstance(part.not_, Predicate):
            negated = _negate(part.not_)
            if negated is None:
                region.exact = False
            else:
                predicates.append(negated)
        else:
            return None
    for predicate in predicates:
        spec = FIELDS[predicate.field]
        if spec.kind is FieldKind.NUMBER:
            interval, exact = _predicate_interval(predicate)
            region.numbers.setdefault(predicate.field, _Interval()).narrow(interval)
            region.exact &= exact
            continue
        values = (
            {str(v) for v in predicate.value}
            if isinstance(predicate.value, list)
            else {str(predicate.value)}
        )
        if predicate.op == "ne":
            if spec.values is None:
                region.excluded.setdefault(predicate.field, set()).update(values)
                continue
            values = set(spec.values) - values
        current = region.texts.get(predicate.field)
        region.texts[predicate.field] = values if current is None else current & values
    return region


def _negate(predicate: Predicate) -> Predicate | None:
    opposite = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le"}
    spec = FIELDS[predicate.field]
    if predicate.op in opposite:
        return Predicate(field=predicate.field, op=opposite[predicate.op], value=predicate.value)
    if predicate.op == "in" and spec.kind is FieldKind.TEXT and spec.values is not None:
        assert isinstance(predicate.value, list)
        rest = sorted(set(spec.values) - {str(v) for v in predicate.value})
        if rest:
            return Predicate(field=predicate.field, op="in", value=list(rest))
        return Predicate(field=predicate.field, op="in", value=[])  # meets nothing
    return None


def _intersects(first: _Region, second: _Region) -> bool:
    for name in set(first.numbers) & set(second.numbers):
        interval = replace(first.numbers[name])
        interval.narrow(second.numbers[name])
        if interval.empty():
            return False
    for name in set(first.texts) & set(second.texts):
        if not first.texts[name] & second.texts[name]:
            return False
    return True


def _covers(earlier: _Region, later: _Region) -> bool:
    """Every account of ``later`` also meets ``earlier`` (only claimed when both are exact)."""
    if not (earlier.exact and later.exact) or earlier.excluded or later.excluded:
        return False
    for name, interval in earlier.numbers.items():
        if name not in later.numbers or not later.numbers[name].within(interval):
            return False
    for name, values in earlier.texts.items():
        if name not in later.texts or not later.texts[name] <= values:
            return False
    return True


# -- findings --------------------------------------------------------------------------------


def _line(compiled: CompiledStrategy, *path: int | str) -> int | None:
    while path:
        if path in compiled.lines:
            return compiled.lines[path]
        path = path[:-1]
    return None


def _segment_findings(compiled: CompiledStrategy) -> list[Finding]:
    findings: list[Finding] = []
    regions: list[tuple[int, str, _Region | None]] = []
    catch_all: str | None = None
    for index, segment in enumerate(compiled.document.segments):
        line = _line(compiled, "segments", index, "when") or _line(compiled, "segments", index)
        where = f"segments[{index}]"
        params = {"segment": segment.code}
        if catch_all is not None:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "after_catch_all",
                    line,
                    where,
                    f"segment {segment.code} comes after {catch_all}, which takes every "
                    "account: move it up or give the catch-all a condition",
                    {**params, "catch_all": catch_all},
                )
            )
            continue
        region = _region(segment.when)
        if region is not None and region.empty():
            findings.append(
                Finding(
                    Severity.ERROR,
                    "never_matches",
                    line,
                    f"{where}.when",
                    f"segment {segment.code}: no account can meet this condition",
                    params,
                )
            )
            continue
        overlapping: list[str] = []
        covered = False
        for _, earlier_code, earlier in regions:
            if earlier is None or region is None:
                continue
            if _covers(earlier, region):
                findings.append(
                    Finding(
                        Severity.ERROR,
                        "covered",
                        line,
                        f"{where}.when",
                        f"segment {segment.code} is unreachable: every account it would take "
                        f"goes to {earlier_code} first",
                        {**params, "earlier": earlier_code},
                    )
                )
                covered = True
                break
            if _intersects(earlier, region):
                overlapping.append(earlier_code)
        if covered:
            # Unreachable: it takes no account from the segments after it either.
            continue
        if overlapping and segment.when is not None:
            earlier_codes = ", ".join(overlapping)
            findings.append(
                Finding(
                    Severity.WARNING,
                    "overlap",
                    line,
                    f"{where}.when",
                    f"segment {segment.code} overlaps {earlier_codes}: accounts meeting both "
                    "go to the earlier segment (first match wins)",
                    {**params, "earlier": earlier_codes},
                )
            )
        regions.append((index, segment.code, region))
        if segment.when is None:
            catch_all = segment.code
    if catch_all is None:
        findings.append(
            Finding(
                Severity.WARNING,
                "no_catch_all",
                _line(compiled, "segments"),
                "segments",
                "no segment without a condition: accounts that meet none get no step "
                "(add a last segment with no when)",
            )
        )
    return findings


def _step_location(compiled: CompiledStrategy, step: Step) -> tuple[int | None, str]:
    """The line and field path of a step in the document."""
    for index, segment in enumerate(compiled.document.segments):
        if segment.code != step.segment:
            continue
        if step.arm == "champion":
            for position, spec in enumerate(segment.steps):
                if spec.code == step.code:
                    path: tuple[int | str, ...] = ("segments", index, "steps", position)
                    return _line(compiled, *path), f"segments[{index}].steps[{position}]"
            return _line(compiled, "segments", index), f"segments[{index}]"
        experiment = segment.experiment
        assert experiment is not None
        arms = [("control", experiment.control)] + [
            (f"challengers[{n}]", arm) for n, arm in enumerate(experiment.challengers)
        ]
        for label, arm in arms:
            if arm.code != step.arm:
                continue
            for position, spec in enumerate(arm.steps):
                if spec.code == step.code:
                    keys: list[int | str] = ["segments", index, "experiment"]
                    if label == "control":
                        keys.append("control")
                    else:
                        keys.extend(["challengers", int(label[12:-1])])
                    keys.extend(["steps", position])
                    return (
                        _line(compiled, *keys),
                        f"segments[{index}].experiment.{label}.steps[{position}]",
                    )
    return None, step.segment


def _step_findings(compiled: CompiledStrategy, context: ValidationContext) -> list[Finding]:
    findings: list[Finding] = []
    contact = {channel.value for channel in CONTACT_CHANNELS}
    for step in compiled.steps:
        if step.is_exit or step.channel is None:
            continue
        line, where = _step_location(compiled, step)
        params = {"segment": step.segment, "step": step.code, "channel": step.channel}
        if step.channel in context.disabled_channels:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "channel_disabled",
                    line,
                    f"{where}.channel",
                    f"step {step.code}: the institution has not enabled {step.channel}",
                    params,
                )
            )
        elif step.channel in context.always_blocked:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "always_blocked",
                    line,
                    f"{where}.channel",
                    f"step {step.code}: policy always blocks {step.channel} "
                    f"({context.always_blocked[step.channel]})",
                    {**params, "why": context.always_blocked[step.channel]},
                )
            )
        if context.approved_templates is None or step.channel not in contact:
            continue
        if step.template is None:
            continue
        approved_channel = context.approved_templates.get(step.template)
        if approved_channel is None:
            status = context.other_templates.get(step.template)
            findings.append(
                Finding(
                    Severity.ERROR,
                    "template_not_approved" if status else "template_unknown",
                    line,
                    f"{where}.template",
                    f"step {step.code}: template '{step.template}' is "
                    + (f"{status}, not approved" if status else "not among the templates"),
                    {**params, "template": step.template, "status": status or ""},
                )
            )
        elif approved_channel != step.channel:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "template_channel",
                    line,
                    f"{where}.template",
                    f"step {step.code}: template '{step.template}' is approved for "
                    f"{approved_channel}, not {step.channel}",
                    {**params, "template": step.template, "template_channel": approved_channel},
                )
            )
    return findings


def _count_findings(compiled: CompiledStrategy, counts: Sequence[SegmentCount]) -> list[Finding]:
    findings: list[Finding] = []
    for index, (segment, count) in enumerate(zip(compiled.segments, counts, strict=True)):
        if count.matching > 0 and count.assigned == 0:
            findings.append(
                Finding(
                    Severity.WARNING,
                    "shadowed_today",
                    _line(compiled, "segments", index, "when")
                    or _line(compiled, "segments", index),
                    f"segments[{index}].when",
                    f"segment {segment.code}: its {count.matching} accounts today all go to "
                    "earlier segments",
                    {"segment": segment.code, "count": str(count.matching)},
                )
            )
    return findings


def validate(
    compiled: CompiledStrategy,
    context: ValidationContext,
    counts: Sequence[SegmentCount] | None = None,
) -> list[Finding]:
    """Every finding about a strategy, errors first, then by line."""
    findings = _segment_findings(compiled) + _step_findings(compiled, context)
    if counts is not None:
        findings += _count_findings(compiled, counts)
    order = {Severity.ERROR: 0, Severity.WARNING: 1}
    return sorted(findings, key=lambda f: (order[f.severity], f.line or 0, f.field))


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    """The findings that stop activation."""
    return [finding for finding in findings if finding.severity is Severity.ERROR]
