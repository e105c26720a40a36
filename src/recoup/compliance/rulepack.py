"""Versioned jurisdiction rule packs loaded from data files into frozen dataclasses.

Each file in ``packs/`` is one pack; its rules declare their kind (``kinds.py``) and typed
parameters, checked on load. A pack may extend another (``"extends": "CN"``): it keeps the base
pack's rules and presets, replaces those it repeats by id and adds its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from recoup.compliance.kinds import (
    CHANNEL_CODES,
    MESSAGES,
    PARAMETERS,
    SINGLE,
    STOP_STATUSES,
    ParameterType,
    RuleKind,
)

ParameterValue = str | int | bool | float | None | tuple[str, ...]

_PACKS = resources.files("recoup.compliance").joinpath("packs")
# Every pack shipped: a pack is its file, ``packs/<code in lower case>.json``.
PACK_CODES = tuple(
    sorted(
        entry.name.removesuffix(".json").upper()
        for entry in _PACKS.iterdir()
        if entry.name.endswith(".json")
    )
)
SOURCES = ("law", "policy")


class RulePackError(ValueError):
    """A rule pack is missing, malformed or lacks a parameter the gate needs."""


@dataclass(frozen=True, slots=True)
class LocalisedText:
    """A text in Chinese and English."""

    zh: str
    en: str

    def format(self, **values: object) -> LocalisedText:
        """Fill the placeholders of both languages."""
        return LocalisedText(zh=self.zh.format(**values), en=self.en.format(**values))


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a pack: id, kind, parameters, citation and its messages.

    ``source`` says whether the law (``law``) or the institution's policy (``policy``) sets it.
    """

    id: str
    kind: RuleKind
    title: LocalisedText
    citation: str
    parameters: Mapping[str, ParameterValue]
    messages: Mapping[str, LocalisedText]
    source: str = "law"

    def message(self, key: str) -> LocalisedText:
        """Return the message template named key."""
        try:
            return self.messages[key]
        except KeyError:
            raise RulePackError(f"rule {self.id} has no message {key!r}") from None


@dataclass(frozen=True, slots=True)
class RulePack:
    """A jurisdiction's legal bounds for contact and content, at one version."""

    code: str
    version: str
    jurisdiction: str
    default_timezone: str
    holiday_country: str
    title: LocalisedText
    rules: tuple[Rule, ...] = field(repr=False)
    # Starting policy documents by institution preset (consumer_finance, commercial_bank).
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    def rules_of(self, kind: RuleKind) -> tuple[Rule, ...]:
        """Return the pack's rules of one kind, in pack order."""
        return tuple(rule for rule in self.rules if rule.kind is kind)

    def rule_of(self, kind: RuleKind) -> Rule | None:
        """Return the first rule of one kind, or None when the pack has none."""
        return next((rule for rule in self.rules if rule.kind is kind), None)

    def has(self, rule_id: str) -> bool:
        """Tell whether the pack contains the rule."""
        return any(rule.id == rule_id for rule in self.rules)

    def rule(self, rule_id: str) -> Rule:
        """Return the rule with this id."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise RulePackError(f"pack {self.code} {self.version} has no rule {rule_id}")

    def parameter(self, rule_id: str, name: str) -> ParameterValue:
        """Return one parameter of a rule."""
        parameters = self.rule(rule_id).parameters
        if name not in parameters:
            raise RulePackError(f"rule {rule_id} has no parameter {name!r}")
        return parameters[name]

    def int_parameter(self, rule_id: str, name: str) -> int:
        """Return an integer parameter of a rule."""
        value = self.parameter(rule_id, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RulePackError(f"{rule_id}.{name} must be an integer, not {value!r}")
        return value

    def optional_int_parameter(self, rule_id: str, name: str) -> int | None:
        """Return an integer parameter of a rule that may be null."""
        if self.parameter(rule_id, name) is None:
            return None
        return self.int_parameter(rule_id, name)

    def bool_parameter(self, rule_id: str, name: str) -> bool:
        """Return a boolean parameter of a rule."""
        value = self.parameter(rule_id, name)
        if not isinstance(value, bool):
            raise RulePackError(f"{rule_id}.{name} must be true or false, not {value!r}")
        return value

    def time_parameter(self, rule_id: str, name: str) -> time:
        """Return a HH:MM parameter of a rule as a time of day."""
        value = self.parameter(rule_id, name)
        if not isinstance(value, str):
            raise RulePackError(f"{rule_id}.{name} must be a HH:MM string, not {value!r}")
        return time.fromisoformat(value)

    def names_parameter(self, rule_id: str, name: str) -> tuple[str, ...]:
        """Return a list-of-names parameter of a rule."""
        value = self.parameter(rule_id, name)
        if not isinstance(value, tuple):
            raise RulePackError(f"{rule_id}.{name} must be a list, not {value!r}")
        return value


def _text(raw: Any, where: str) -> LocalisedText:
    if not isinstance(raw, dict) or not isinstance(raw.get("zh"), str):
        raise RulePackError(f"{where} needs zh and en texts")
    if not isinstance(raw.get("en"), str):
        raise RulePackError(f"{where} needs zh and en texts")
    return LocalisedText(zh=raw["zh"], en=raw["en"])


def _names(raw: Any, where: str, allowed: frozenset[str] | None, what: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise RulePackError(f"{where} must be a list of {what}, not {raw!r}")
    if allowed is not None:
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise RulePackError(
                f"{where} names unknown {what} {', '.join(unknown)}; "
                f"use {', '.join(sorted(allowed))}"
            )
    return tuple(raw)


def _parameter(raw: Any, where: str, kind: ParameterType) -> ParameterValue:
    """Check one parameter's value against the type its rule's kind declares."""
    if kind is ParameterType.TIME:
        if isinstance(raw, str):
            try:
                time.fromisoformat(raw)
            except ValueError:
                pass
            else:
                return raw
        raise RulePackError(f"{where} must be a time of day as HH:MM, not {raw!r}")
    if kind is ParameterType.OPTIONAL_COUNT and raw is None:
        return None
    if kind in (ParameterType.COUNT, ParameterType.OPTIONAL_COUNT):
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            return raw
        allowed = "a whole number of 0 or more" + (
            " or null" if kind is ParameterType.OPTIONAL_COUNT else ""
        )
        raise RulePackError(f"{where} must be {allowed}, not {raw!r}")
    if kind is ParameterType.FLAG:
        if isinstance(raw, bool):
            return raw
        raise RulePackError(f"{where} must be true or false, not {raw!r}")
    if kind is ParameterType.CHANNELS:
        return _names(raw, where, CHANNEL_CODES, "channels")
    if kind is ParameterType.STATUSES:
        return _names(raw, where, STOP_STATUSES, "statuses")
    return _names(raw, where, None, "words")


def _rule(raw: Any, pack: str) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise RulePackError(f"pack {pack}: a rule needs an id: {raw!r}")
    rule_id: str = raw["id"]
    where = f"pack {pack} rule {rule_id}"
    try:
        kind = RuleKind(str(raw.get("kind")))
    except ValueError:
        raise RulePackError(
            f"{where}: kind {raw.get('kind')!r} is not one the code knows; "
            f"use one of {', '.join(RuleKind)}"
        ) from None
    source = raw.get("source", "law")
    if source not in SOURCES:
        raise RulePackError(f"{where}: source must be law or policy, not {source!r}")
    declared = PARAMETERS[kind]
    given = dict(raw.get("parameters", {}))
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise RulePackError(
            f"{where}: a {kind} rule takes no parameter {', '.join(unknown)}; "
            f"it takes {', '.join(declared) or 'none'}"
        )
    missing = sorted(name for name, spec in declared.items() if spec.required and name not in given)
    if missing:
        raise RulePackError(f"{where}: a {kind} rule needs the parameter {', '.join(missing)}")
    parameters = {
        name: _parameter(value, f"{where} parameter {name}", declared[name].type)
        for name, value in given.items()
    }
    messages = {
        key: _text(value, f"{where} message {key}")
        for key, value in dict(raw.get("messages", {})).items()
    }
    needed = set(MESSAGES.get(kind, ()))
    statuses = parameters.get("statuses")
    if isinstance(statuses, tuple):
        needed |= set(statuses)
    lacking = sorted(needed - set(messages))
    if lacking:
        raise RulePackError(f"{where}: a {kind} rule needs the message {', '.join(lacking)}")
    return Rule(
        id=rule_id,
        kind=kind,
        title=_text(raw.get("title"), f"{where} title"),
        citation=str(raw.get("citation", "")),
        parameters=MappingProxyType(parameters),
        messages=MappingProxyType(messages),
        source=source,
    )


def _check_kinds(code: str, rules: tuple[Rule, ...]) -> None:
    """Refuse a pack the code could read two ways: two rules of a single kind, or one stop twice."""
    for kind in SINGLE:
        found = [rule.id for rule in rules if rule.kind is kind]
        if len(found) > 1:
            raise RulePackError(
                f"pack {code}: {' and '.join(found)} are both {kind} rules; a pack has one"
            )
    stopped: dict[str, str] = {}
    stops = [rule for rule in rules if rule.kind is RuleKind.STOP_STATUS]
    for rule in stops:
        statuses = rule.parameters["statuses"]
        for status in statuses if isinstance(statuses, tuple) else ():
            if status in stopped:
                raise RulePackError(
                    f"pack {code}: {stopped[status]} and {rule.id} both stop contact on {status}"
                )
            stopped[str(status)] = rule.id
    opt_out = [rule.id for rule in rules if rule.kind is RuleKind.CHANNEL_OPT_OUT]
    if opt_out and "channel_opt_out" in stopped:
        raise RulePackError(
            f"pack {code}: {stopped['channel_opt_out']} and {opt_out[0]} both stop contact on "
            "channel_opt_out"
        )


def _presets(raw: Any, code: str) -> dict[str, Mapping[str, Any]]:
    if not isinstance(raw, dict) or not all(isinstance(item, dict) for item in raw.values()):
        raise RulePackError(f"pack {code}: presets must map a preset name to a policy document")
    return {str(name): MappingProxyType(dict(document)) for name, document in raw.items()}


def parse_pack(raw: Mapping[str, Any], base: RulePack | None = None) -> RulePack:
    """Build a rule pack from its decoded JSON document, on top of the pack it extends."""
    code = str(raw.get("code"))
    own = tuple(_rule(item, code) for item in raw.get("rules", []))
    ids = [rule.id for rule in own]
    if len(ids) != len(set(ids)):
        raise RulePackError(f"pack {code} repeats a rule id")
    rules = own
    presets = _presets(raw.get("presets", {}), code)
    if base is not None:
        replaced = {rule.id: rule for rule in own}
        kept = [replaced.pop(rule.id, rule) for rule in base.rules]
        # Added rules go after the base pack's law and before its policy rules.
        law = [rule for rule in kept if rule.source == "law"]
        rules = (*law, *replaced.values(), *(rule for rule in kept if rule.source != "law"))
        presets = {**base.presets, **presets}
    _check_kinds(code, rules)
    inherited = (
        {}
        if base is None
        else {
            "jurisdiction": base.jurisdiction,
            "default_timezone": base.default_timezone,
            "holiday_country": base.holiday_country,
        }
    )
    fields = {**inherited, **raw}
    try:
        return RulePack(
            code=str(fields["code"]),
            version=str(fields["version"]),
            jurisdiction=str(fields["jurisdiction"]),
            default_timezone=str(fields["default_timezone"]),
            holiday_country=str(fields["holiday_country"]),
            title=_text(fields.get("title"), f"pack {code} title"),
            rules=rules,
            presets=MappingProxyType(presets),
        )
    except KeyError as missing:
        raise RulePackError(f"rule pack {code} lacks {missing}") from None


def load_pack(code: str) -> RulePack:
    """Load a shipped rule pack by its code (see ``PACK_CODES``)."""
    return _load_pack(code.upper())


@cache
def _load_pack(code: str) -> RulePack:
    if code not in PACK_CODES:
        raise RulePackError(f"no rule pack {code!r}; known packs: {', '.join(PACK_CODES)}")
    raw = json.loads(_PACKS.joinpath(f"{code.lower()}.json").read_text(encoding="utf-8"))
    if raw.get("code") != code:
        raise RulePackError(f"packs/{code.lower()}.json says it is pack {raw.get('code')!r}")
    extends = raw.get("extends")
    if extends is not None and (not isinstance(extends, str) or extends.upper() == code):
        raise RulePackError(f"pack {code}: extends must name another pack, not {extends!r}")
    return parse_pack(raw, _load_pack(extends.upper()) if extends else None)
