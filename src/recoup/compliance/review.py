"""Script and template review: banned language and required elements, with exact spans."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import ahocorasick

from recoup.compliance.enums import Channel, Party
from recoup.compliance.normalise import NormalisedText, normalise, normalise_term

LEXICON_LANGUAGES = ("zh", "en")
MISSING_ELEMENT = "missing_element"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)")


class ReviewInputError(ValueError):
    """A review request names an unknown locale, audience or channel."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in a text: what, which rule, where in the original text, and advice."""

    category: str
    rule_id: str
    start: int
    end: int
    text: str
    message_en: str
    message_zh: str


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """The verdict on a text: passed only when nothing was found."""

    passed: bool
    findings: tuple[Finding, ...]

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Return the rule ids of the findings."""
        return tuple(finding.rule_id for finding in self.findings)

    @property
    def categories(self) -> frozenset[str]:
        """Return the categories found."""
        return frozenset(finding.category for finding in self.findings)


@dataclass(frozen=True, slots=True)
class Category:
    """A banned-language category with its names, audiences, rules and advice."""

    id: str
    name_zh: str
    name_en: str
    audiences: frozenset[Party]
    rules: dict[str, str]
    advice_zh: str
    advice_en: str


@dataclass(frozen=True, slots=True)
class _Term:
    category: str
    term: str
    word_start: bool
    word_end: bool


@dataclass(frozen=True, slots=True)
class _ElementGroup:
    placeholders: frozenset[str]
    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Element:
    id: str
    name_zh: str
    name_en: str
    groups: tuple[_ElementGroup, ...]


@dataclass(frozen=True, slots=True)
class _RequiredCheck:
    rule_id: str
    jurisdiction: str
    channels: frozenset[Channel]
    audiences: frozenset[Party]
    kinds: frozenset[str] | None
    elements: tuple[_Element, ...]


def _read(name: str) -> Any:
    source = resources.files("recoup.compliance").joinpath("lexicon", name)
    return json.loads(source.read_text(encoding="utf-8"))


def _is_word_character(character: str) -> bool:
    folded = unicodedata.normalize("NFKC", character)
    return folded.isascii() and folded.isalnum()


class Reviewer:
    """The lexicons and required-element checks compiled once for fast review."""

    def __init__(self) -> None:
        raw_categories = _read("categories.json")["categories"]
        self.categories: dict[str, Category] = {
            key: Category(
                id=key,
                name_zh=value["zh"],
                name_en=value["en"],
                audiences=frozenset(Party(a) for a in value["audiences"]),
                rules=dict(value["rules"]),
                advice_zh=value["advice"]["zh"],
                advice_en=value["advice"]["en"],
            )
            for key, value in raw_categories.items()
        }
        self.versions: dict[str, str] = {"categories": _read("categories.json")["version"]}
        self._automaton: Any = ahocorasick.Automaton()
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        terms: dict[str, list[_Term]] = {}
        for language in LEXICON_LANGUAGES:
            lexicon = _read(f"{language}.json")
            self.versions[language] = lexicon["version"]
            for category, entries in lexicon["categories"].items():
                if category not in self.categories:
                    raise ValueError(f"lexicon {language} uses unknown category {category}")
                for term in entries["terms"]:
                    prefix = term.endswith("*")
                    key = normalise_term(term.rstrip("*"))
                    if not key:
                        continue
                    terms.setdefault(key, []).append(
                        _Term(
                            category=category,
                            term=term,
                            word_start=_is_word_character(key[0]),
                            word_end=_is_word_character(key[-1]) and not prefix,
                        )
                    )
                for pattern in entries["patterns"]:
                    self._patterns.append((category, re.compile(pattern)))
        for key, entries in terms.items():
            self._automaton.add_word(key, (len(key), tuple(entries)))
        self._automaton.make_automaton()
        required = _read("required_elements.json")
        self.versions["required_elements"] = required["version"]
        self._required = tuple(self._required_check(check) for check in required["checks"])

    @staticmethod
    def _required_check(raw: Any) -> _RequiredCheck:
        return _RequiredCheck(
            rule_id=raw["rule_id"],
            jurisdiction=raw["jurisdiction"],
            channels=frozenset(Channel(c) for c in raw["channels"]),
            audiences=frozenset(Party(a) for a in raw["audiences"]),
            kinds=None if raw["kinds"] is None else frozenset(raw["kinds"]),
            elements=tuple(
                _Element(
                    id=element["id"],
                    name_zh=element["zh"],
                    name_en=element["en"],
                    groups=tuple(
                        _ElementGroup(
                            placeholders=frozenset(group["placeholders"]),
                            phrases=tuple(normalise_term(p) for p in group["phrases"]),
                        )
                        for group in element["groups"]
                    ),
                )
                for element in raw["elements"]
            ),
        )

    def _finding(
        self, category_id: str, jurisdiction: str, span: tuple[int, int], original: str
    ) -> Finding:
        category = self.categories[category_id]
        start, end = span
        matched = original[start:end]
        rule_id = category.rules[jurisdiction]
        return Finding(
            category=category_id,
            rule_id=rule_id,
            start=start,
            end=end,
            text=matched,
            message_en=f"{rule_id} {category.name_en}: “{matched}”. {category.advice_en}",
            message_zh=f"{rule_id} {category.name_zh}：“{matched}”。{category.advice_zh}",
        )

    def banned_language(
        self, normalised: NormalisedText, *, audience: Party, jurisdiction: str
    ) -> list[Finding]:
        """Find banned terms and patterns, reported on the original text."""
        original = normalised.original
        spans: set[tuple[str, int, int]] = set()
        if normalised.text:
            for last, (length, entries) in self._automaton.iter(normalised.text):
                first = last - length + 1
                start, end = normalised.original_span(first, last + 1)
                for entry in entries:
                    if audience not in self.categories[entry.category].audiences:
                        continue
                    if entry.word_start and start > 0 and _is_word_character(original[start - 1]):
                        continue
                    if entry.word_end and end < len(original) and _is_word_character(original[end]):
                        continue
                    spans.add((entry.category, start, end))
        for category, pattern in self._patterns:
            if audience not in self.categories[category].audiences:
                continue
            for match in pattern.finditer(normalised.text):
                if match.end() > match.start():
                    start, end = normalised.original_span(match.start(), match.end())
                    spans.add((category, start, end))
        kept = [
            span
            for span in spans
            if not any(
                other != span
                and other[0] == span[0]
                and other[1] <= span[1]
                and span[2] <= other[2]
                for other in spans
            )
        ]
        kept.sort(key=lambda span: (span[1], span[2], span[0]))
        return [self._finding(category, jurisdiction, (s, e), original) for category, s, e in kept]

    def missing_elements(
        self,
        normalised: NormalisedText,
        *,
        audience: Party,
        channel: Channel,
        jurisdiction: str,
        kind: str | None,
    ) -> list[Finding]:
        """Report each required element the template does not declare."""
        placeholders: set[str] = set()
        for match in _PLACEHOLDER.finditer(normalised.original):
            path = match.group(1)
            placeholders.update({path, path.rsplit(".", 1)[-1], path.replace(".", "_")})
        findings: list[Finding] = []
        category = self.categories[MISSING_ELEMENT]
        for check in self._required:
            if (
                check.jurisdiction != jurisdiction
                or channel not in check.channels
                or audience not in check.audiences
                or (check.kinds is not None and kind not in check.kinds)
            ):
                continue
            for element in check.elements:
                if all(
                    group.placeholders & placeholders
                    or any(phrase and phrase in normalised.text for phrase in group.phrases)
                    for group in element.groups
                ):
                    continue
                findings.append(
                    Finding(
                        category=MISSING_ELEMENT,
                        rule_id=check.rule_id,
                        start=0,
                        end=0,
                        text=element.id,
                        message_en=f"{check.rule_id}: missing {element.name_en}. "
                        f"{category.advice_en}",
                        message_zh=f"{check.rule_id}：缺少{element.name_zh}。{category.advice_zh}",
                    )
                )
        return findings


@cache
def default_reviewer() -> Reviewer:
    """Return the reviewer built from the shipped lexicons."""
    return Reviewer()


def jurisdiction_for_locale(locale: str) -> str:
    """Return the rule pack a locale's texts are reviewed under (zh → CN, en → US)."""
    language = locale.replace("_", "-").split("-")[0].lower()
    if language == "zh":
        return "CN"
    if language == "en":
        return "US"
    raise ReviewInputError(f"unsupported locale {locale!r}; use zh-CN or en-US")


def review(
    text: str,
    *,
    locale: str,
    audience: Party | str,
    channel: Channel | str,
    jurisdiction: str | None = None,
    kind: str | None = None,
    reviewer: Reviewer | None = None,
) -> ReviewResult:
    """Review a template or script: banned language in any language plus required elements."""
    try:
        party = Party(audience)
        medium = Channel(channel)
    except ValueError as error:
        raise ReviewInputError(
            f"{error}; audience is debtor or third_party, channel one of "
            + ", ".join(c.value for c in Channel)
        ) from None
    jurisdiction = (jurisdiction or jurisdiction_for_locale(locale)).upper()
    if jurisdiction not in {"CN", "US"}:
        raise ReviewInputError(f"unsupported jurisdiction {jurisdiction!r}; use CN or US")
    engine = reviewer or default_reviewer()
    normalised = normalise(text)
    findings = engine.banned_language(normalised, audience=party, jurisdiction=jurisdiction)
    findings += engine.missing_elements(
        normalised, audience=party, channel=medium, jurisdiction=jurisdiction, kind=kind
    )
    return ReviewResult(passed=not findings, findings=tuple(findings))


# US-SOL (12 CFR 1006.26(b)): no suit and no threat of suit on a time-barred debt. Chinese
# terms are matched on the normalised text (traditional characters and inserted filler
# fold away); "诉讼时效" (the limitation period itself) is a disclosure, not a threat.
TIME_BARRED_RULE_ID = "US-SOL"
TIME_BARRED_CATEGORY = "time_barred_threat"
_LAWSUIT_ZH = re.compile(
    r"提起诉讼|起诉|诉讼(?!时效)|法院传票|传票|法院|立案|打官司|法律行动|法律程序|律师函|强制执行"
)
_LAWSUIT_EN = re.compile(
    r"\b(?:su(?:e|es|ed|ing)|lawsuits?|legal\s+(?:action|proceedings?)|litigat\w*"
    r"|courts?|summons(?:es)?|judg(?:e)?ments?|garnish\w*)\b",
    re.IGNORECASE,
)


def time_barred_threats(text: str) -> tuple[Finding, ...]:
    """Find lawsuit-threat language, which must not be sent about a time-barred debt."""
    normalised = normalise(text)
    spans = {
        normalised.original_span(match.start(), match.end())
        for match in _LAWSUIT_ZH.finditer(normalised.text)
    }
    spans |= {(match.start(), match.end()) for match in _LAWSUIT_EN.finditer(text)}
    return tuple(
        Finding(
            category=TIME_BARRED_CATEGORY,
            rule_id=TIME_BARRED_RULE_ID,
            start=start,
            end=end,
            text=text[start:end],
            message_en=f"{TIME_BARRED_RULE_ID} lawsuit threat on a time-barred debt: "
            f"“{text[start:end]}”. Do not sue or threaten to sue once the limitation "
            "period has run out.",
            message_zh=f"{TIME_BARRED_RULE_ID} 对已过诉讼时效的债务威胁起诉：“{text[start:end]}”。"
            "诉讼时效届满后不得起诉或威胁起诉。",
        )
        for start, end in sorted(spans)
    )


def with_time_barred_check(result: ReviewResult, text: str) -> ReviewResult:
    """Return the review with the US-SOL findings of a text about a time-barred debt added."""
    threats = time_barred_threats(text)
    if not threats:
        return result
    findings = tuple(sorted((*result.findings, *threats), key=lambda f: (f.start, f.end)))
    return ReviewResult(passed=False, findings=findings)
