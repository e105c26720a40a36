"""Versioned jurisdiction rule packs loaded from data files into frozen dataclasses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

ParameterValue = str | int | bool | float | None | tuple[str, ...]

PACK_CODES = ("CN", "US")


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
    """One rule of a pack: id, parameters, citation and its messages."""

    id: str
    title: LocalisedText
    citation: str
    parameters: Mapping[str, ParameterValue]
    messages: Mapping[str, LocalisedText]
    kind: str = "law"

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


def _parameter(raw: Any, where: str) -> ParameterValue:
    if isinstance(raw, list):
        if not all(isinstance(item, str) for item in raw):
            raise RulePackError(f"{where} may only list strings")
        return tuple(raw)
    if raw is None or isinstance(raw, str | int | float | bool):
        return raw
    raise RulePackError(f"{where} has an unsupported value {raw!r}")


def _rule(raw: Any) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise RulePackError(f"a rule needs an id: {raw!r}")
    rule_id: str = raw["id"]
    parameters = {
        name: _parameter(value, f"{rule_id}.{name}")
        for name, value in dict(raw.get("parameters", {})).items()
    }
    messages = {
        key: _text(value, f"{rule_id} message {key}")
        for key, value in dict(raw.get("messages", {})).items()
    }
    return Rule(
        id=rule_id,
        title=_text(raw.get("title"), f"{rule_id} title"),
        citation=str(raw.get("citation", "")),
        parameters=MappingProxyType(parameters),
        messages=MappingProxyType(messages),
        kind=str(raw.get("kind", "law")),
    )


def parse_pack(raw: Mapping[str, Any]) -> RulePack:
    """Build a rule pack from its decoded JSON document."""
    rules = tuple(_rule(item) for item in raw.get("rules", []))
    ids = [rule.id for rule in rules]
    if len(ids) != len(set(ids)):
        raise RulePackError(f"pack {raw.get('code')} repeats a rule id")
    try:
        return RulePack(
            code=str(raw["code"]),
            version=str(raw["version"]),
            jurisdiction=str(raw["jurisdiction"]),
            default_timezone=str(raw["default_timezone"]),
            holiday_country=str(raw["holiday_country"]),
            title=_text(raw.get("title"), "pack title"),
            rules=rules,
        )
    except KeyError as missing:
        raise RulePackError(f"rule pack lacks {missing}") from None


def load_pack(code: str) -> RulePack:
    """Load the shipped rule pack for a jurisdiction code (CN or US)."""
    return _load_pack(code.upper())


@cache
def _load_pack(code: str) -> RulePack:
    if code not in PACK_CODES:
        raise RulePackError(f"no rule pack {code!r}; known packs: {', '.join(PACK_CODES)}")
    source = resources.files("recoup.compliance").joinpath("packs", f"{code.lower()}.json")
    return parse_pack(json.loads(source.read_text(encoding="utf-8")))
