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

from recoup.compliance.templates.normalise import (
    NormalisedText,
    normalise,
    normalise_term,
    normalise_words,
    simplified,
)
from recoup.contact.channels import Channel
from recoup.contact.rules import Party

LEXICON_LANGUAGES = ("zh", "en")
MISSING_ELEMENT = "missing_element"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)")
_MACRO = re.compile(r"<([A-Z][A-Z0-9_]*)>")
# A denial or a warning right before a phrase ("we will never post your photo online",
# "请勿以贷养贷") makes it a promise to the debtor, not a threat. Strong words count
# anywhere earlier in the clause, weak ones only just before the phrase.
_CLAUSE_BREAK = re.compile(r"[。！？；!?;\n]|[，,.](?!\d)")
_NEGATION_ZH_STRONG = re.compile(
    r"请勿|切勿|严禁|禁止|杜绝|谨防|警惕|防范|决不|绝不|从不|从未|并不会|绝对不"
    r"|不会(?:以任何|要求|让|强迫|诱导|建议|向|将|把|对)|不要求|不鼓励|不提倡"
)
_NEGATION_ZH_WEAK = re.compile(
    r"(?<!你)不会|不得|(?<!要)不要|(?<!就)不能|不可|不再|不应|不用|无需|不必|没有|拒绝|避免|未经"
)
_NEGATION_EN_STRONG = re.compile(
    r"\b(?:never(?! know)|prohibited|forbidden|beware|refrain|avoid|nor|neither)\b"
)
_NOT_DENIALS = frozenset({"make", "let", "force", "want", "your", "you", "we", "they", "he", "she"})
_NEGATION_EN_WEAK = frozenset(
    {"not", "no", "dont", "wont", "cannot", "cant", "doesnt", "didnt", "isnt", "arent",
     "shouldnt", "mustnt", "wouldnt", "without"}
)  # fmt: skip


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
    # Which text of the template it is in: its body, or a script's guidance.
    field: str = "body"


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
    negatable: bool = False


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
    patterns: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Element:
    id: str
    name_zh: str
    name_en: str
    groups: tuple[_ElementGroup, ...]
    placeholder: str | None = None


@dataclass(frozen=True, slots=True)
class _RequiredCheck:
    rule_id: str
    jurisdiction: str
    channels: frozenset[Channel]
    audiences: frozenset[Party]
    kinds: frozenset[str] | None
    elements: tuple[_Element, ...]


def _read(name: str) -> Any:
    source = resources.files("recoup.compliance.templates").joinpath("lexicon", name)
    return json.loads(source.read_text(encoding="utf-8"))


def _is_word_character(character: str) -> bool:
    folded = unicodedata.normalize("NFKC", character)
    return folded.isascii() and folded.isalnum()


def _expand(pattern: str, macros: dict[str, str]) -> str:
    """Replace ``<NAME>`` with the lexicon's macro of that name, recursively.

    ``<GAP12>`` is up to twelve ``<GAP>`` characters: a gap that cannot cross a denial.
    """

    def macro(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in macros:
            return f"(?:{macros[name]})"
        gap = re.fullmatch(r"GAP(\d+)", name)
        if gap and "GAP" in macros:
            return f"(?:{macros['GAP']}){{0,{gap.group(1)}}}"
        raise ValueError(f"lexicon pattern uses unknown macro <{name}>: {pattern!r}")

    for _ in range(8):
        expanded = _MACRO.sub(macro, pattern)
        if expanded == pattern:
            return expanded
        pattern = expanded
    raise ValueError(f"lexicon macros nest too deeply in {pattern!r}")


def _merge_overlapping(spans: set[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Join overlapping spans of one category, so one phrase is one finding."""
    merged: list[tuple[str, int, int]] = []
    for category, start, end in sorted(spans):
        if merged and merged[-1][0] == category and start < merged[-1][2]:
            merged[-1] = (category, merged[-1][1], max(end, merged[-1][2]))
        else:
            merged.append((category, start, end))
    return sorted(merged, key=lambda span: (span[1], span[2], span[0]))


def _denied(original: str, start: int) -> bool:
    """Say whether the clause before ``start`` denies or warns against what follows."""
    before = original[max(0, start - 40) : start]
    clause = _CLAUSE_BREAK.split(before)[-1]
    folded = simplified(unicodedata.normalize("NFKC", clause)).lower()
    chinese = "".join(c for c in folded if not c.isspace())
    near = max(0, len(chinese) - 4)
    if _NEGATION_ZH_STRONG.search(chinese[-12:]) or _NEGATION_ZH_WEAK.search(chinese, near):
        return True
    words = re.findall(r"[a-z]+", folded.replace("'", "").replace("\u2019", ""))
    if _NEGATION_EN_STRONG.search(" ".join(words[-6:])):
        return True
    # "not be arrested or jailed": the denial carries over a list joined by "or".
    reach = 6 if {"or", "nor"} & set(words[-2:]) else 3
    count = len(words)
    words += re.findall(r"[a-z]+", original[start : start + 24].lower())[:2]
    return any(
        words[index] in _NEGATION_EN_WEAK
        and not _rhetorical(words[index + 1 : index + 3])
        and (index == 0 or words[index - 1] != "why")
        for index in range(max(0, count - reach), count)
    )


def _rhetorical(following: list[str]) -> bool:
    """Say whether a negation is part of a dare or question rather than a denial.

    "Not paying is theft" negates the paying; "don't make us come", "can't your
    parents lend you", "wouldn't want your family involved" are pressure phrased
    with a negation.
    """
    if not following:
        return False
    word, after = following[0], following[1:2]
    if word == "want":
        return bool(after) and after[0] in {"your", "anything", "something", "us"}
    return word in _NOT_DENIALS or (word.endswith("ing") and word not in {"being", "going"})


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
                negatable=bool(value.get("negatable", False)),
            )
            for key, value in raw_categories.items()
        }
        self.versions: dict[str, str] = {"categories": _read("categories.json")["version"]}
        self._automaton: Any = ahocorasick.Automaton()
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        self._word_patterns: list[tuple[str, re.Pattern[str]]] = []
        terms: dict[str, list[_Term]] = {}
        for language in LEXICON_LANGUAGES:
            lexicon = _read(f"{language}.json")
            self.versions[language] = lexicon["version"]
            macros: dict[str, str] = lexicon.get("macros", {})
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
                    self._patterns.append((category, re.compile(_expand(pattern, macros))))
                for pattern in entries.get("word_patterns", []):
                    self._word_patterns.append((category, re.compile(_expand(pattern, macros))))
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
                            patterns=tuple(re.compile(p) for p in group.get("patterns", [])),
                        )
                        for group in element["groups"]
                    ),
                    placeholder=next(
                        (g["placeholders"][0] for g in element["groups"] if g["placeholders"]),
                        None,
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
        words = normalise_words(original)
        for texts, patterns in ((normalised, self._patterns), (words, self._word_patterns)):
            for category, pattern in patterns:
                if audience not in self.categories[category].audiences:
                    continue
                for match in pattern.finditer(texts.text):
                    if match.end() > match.start():
                        start, end = texts.original_span(match.start(), match.end())
                        spans.add((category, start, end))
        spans = {
            span
            for span in spans
            if not (self.categories[span[0]].negatable and _denied(original, span[1]))
        }
        kept = _merge_overlapping(spans)
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
        plain = simplified(unicodedata.normalize("NFKC", normalised.original))
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
                    or any(pattern.search(plain) for pattern in group.patterns)
                    for group in element.groups
                ):
                    continue
                if element.placeholder:
                    how_en = (
                        f"Write it out in the text, or put the placeholder "
                        f"{{{{ {element.placeholder} }}}} where it belongs."
                    )
                    how_zh = (
                        f"请在正文中写明，或在相应位置使用占位符 {{{{ {element.placeholder} }}}}。"
                    )
                else:
                    how_en, how_zh = "", ""
                findings.append(
                    Finding(
                        category=MISSING_ELEMENT,
                        rule_id=check.rule_id,
                        start=0,
                        end=0,
                        text=element.id,
                        message_en=f"{check.rule_id}: missing {element.name_en}. "
                        f"{how_en or category.advice_en}",
                        message_zh=f"{check.rule_id}：缺少{element.name_zh}。"
                        f"{how_zh or category.advice_zh}",
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
    # The locale is checked even when the institution's jurisdiction is given: it says
    # which language the text is in; the rules are those of whoever sends it.
    locale_jurisdiction = jurisdiction_for_locale(locale)
    jurisdiction = (jurisdiction or locale_jurisdiction).upper()
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
