"""A strategy document: its schema, and a loader whose errors name the line and the field.

A strategy is written as YAML (or JSON, which YAML reads too) and checked against the models
below. Segments are structured conditions (``all`` / ``any`` / ``not`` over ``field op value``),
never code: nothing in a document is evaluated. ``load_document`` turns text into a
``StrategyDocument`` or raises ``DocumentInvalid`` whose problems each carry the line, the
field path (``segments[2].steps[0].channel``) and what to write instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from recoup.scoring.rules import DEFAULT_LARGE_BALANCE, DEFAULT_SMALL_BALANCE

MAX_DOCUMENT_CHARS = 200_000
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class FieldKind(StrEnum):
    NUMBER = "number"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A fact a condition may test: its kind and, for text, the values it can take."""

    kind: FieldKind
    values: frozenset[str] | None = None
    # Bounds of a number (inclusive) when it has natural ones.
    minimum: float | None = None
    maximum: float | None = None


AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
BALANCE_BANDS = ("small", "medium", "large")
BUCKETS = ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+")

# The facts segments, exits and experiments read. The cycle gives them as columns; the names
# are the collectors' words.
FIELDS: Mapping[str, FieldSpec] = {
    "bucket": FieldSpec(FieldKind.TEXT, frozenset(BUCKETS)),
    "days_past_due": FieldSpec(FieldKind.NUMBER, minimum=0),
    # Outstanding balance in minor units (分 / cents).
    "balance": FieldSpec(FieldKind.NUMBER, minimum=0),
    "balance_band": FieldSpec(FieldKind.TEXT, frozenset(BALANCE_BANDS)),
    "grade": FieldSpec(FieldKind.TEXT, frozenset({"A", "B", "C", "D", "E"})),
    # Probability to pay from the champion model, 0–1.
    "propensity": FieldSpec(FieldKind.NUMBER, minimum=0, maximum=1),
    "customer_type": FieldSpec(FieldKind.TEXT, frozenset({"individual", "business"})),
    "age": FieldSpec(FieldKind.NUMBER, minimum=0, maximum=130),
    "age_band": FieldSpec(FieldKind.TEXT, frozenset(AGE_BANDS)),
    "product": FieldSpec(
        FieldKind.TEXT,
        frozenset(
            {
                "credit_card",
                "consumer_loan",
                "cash_loan",
                "auto_loan",
                "mortgage",
                "sme_loan",
                "other",
            }
        ),
    ),
    # Province (省) of the debtor's address.
    "region": FieldSpec(FieldKind.TEXT),
    "promise_state": FieldSpec(FieldKind.TEXT, frozenset({"none", "pending", "kept", "broken"})),
    "plan_state": FieldSpec(FieldKind.TEXT, frozenset({"none", "active", "broken", "completed"})),
    "case_state": FieldSpec(
        FieldKind.TEXT,
        frozenset({"open", "promised", "on_plan", "disputed", "paused", "escalated"}),
    ),
    # Contacts made on the current path (since the case entered its segment) that reached nobody.
    "failed_attempts": FieldSpec(FieldKind.NUMBER, minimum=0),
    # Messages (SMS, email) sent since the debtor last answered (a right-party contact or one
    # they started) or paid.
    "unanswered_messages": FieldSpec(FieldKind.NUMBER, minimum=0),
    # Promises broken in a row (a kept promise resets it).
    "broken_promises": FieldSpec(FieldKind.NUMBER, minimum=0),
    "days_on_path": FieldSpec(FieldKind.NUMBER, minimum=0),
}

NUMBER_OPS = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "between", "in"})
TEXT_OPS = frozenset({"eq", "ne", "in"})


class StepChannel(StrEnum):
    """What a step does: a contact on a channel, or a hand-over (legal, agency)."""

    SMS = "sms"
    EMAIL = "email"
    CALL = "call"
    AI_CALL = "ai_call"
    VISIT = "visit"
    LETTER = "letter"
    LEGAL = "legal"
    AGENCY = "agency"


# Steps on these channels reach the debtor and pass the compliance gate.
CONTACT_CHANNELS = frozenset(
    {
        StepChannel.SMS,
        StepChannel.EMAIL,
        StepChannel.CALL,
        StepChannel.AI_CALL,
        StepChannel.VISIT,
        StepChannel.LETTER,
    }
)
# Steps a person works (a task on a queue) rather than a message sent by a machine.
WORKED_CHANNELS = frozenset(
    {StepChannel.CALL, StepChannel.VISIT, StepChannel.LEGAL, StepChannel.AGENCY}
)


class StrategyEvent(StrEnum):
    """What happens to a case between cycles and re-routes it at once."""

    PAYMENT_RECEIVED = "payment_received"
    # The core system reversed a payment (bounced, charged back): the money never came.
    PAYMENT_REVERSED = "payment_reversed"
    PROMISE_MADE = "promise_made"
    PROMISE_BROKEN = "promise_broken"
    DISPUTE = "dispute"
    WRONG_NUMBER = "wrong_number"
    UNREACHABLE = "unreachable"
    HARDSHIP = "hardship"
    CEASE_REQUEST = "cease_request"
    COMPLAINT = "complaint"


class EventAction(StrEnum):
    """What an event rule does to the case's path."""

    REEVALUATE = "reevaluate"  # cured → stop; otherwise the segment is worked out again
    PAUSE = "pause"  # until a date (promise due + grace) or until someone resumes
    ESCALATE = "escalate"  # the path's next level (escalation step), two in a row → further
    HOLD = "hold"  # wait on a queue (dispute) until resolved
    SKIP_TRACE = "skip_trace"  # find a new way to reach the debtor
    OFFER_PLAN = "offer_plan"  # offer a payment plan and pause
    STOP = "stop"  # stop every channel
    REVIEW = "review"  # pause and put before a reviewer


class ExitAction(StrEnum):
    """Where an exit condition sends a case off its path."""

    SKIP_TRACE = "skip_trace"
    LEGAL_REVIEW = "legal_review"
    AGENCY = "agency"
    STOP = "stop"
    NEXT_LEVEL = "next_level"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Scalar = int | float | str


class Predicate(_Model):
    """``field op value``: one test of one fact."""

    field: str
    op: Literal["eq", "ne", "in", "lt", "le", "gt", "ge", "between"]
    value: Scalar | list[Scalar]

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in FIELDS:
            known = ", ".join(sorted(FIELDS))
            raise ValueError(f"unknown field '{value}'; use one of {known}")
        return value

    @model_validator(mode="after")
    def _value_fits(self) -> Predicate:
        spec = FIELDS[self.field]
        ops = NUMBER_OPS if spec.kind is FieldKind.NUMBER else TEXT_OPS
        if self.op not in ops:
            raise ValueError(
                f"'{self.field}' is {spec.kind.value}: use one of {', '.join(sorted(ops))}"
            )
        values = self.value if isinstance(self.value, list) else [self.value]
        if self.op == "between" and len(values) != 2:
            raise ValueError("between takes two values [low, high]")
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError("in takes a list of values, e.g. [M1, M2]")
        if self.op not in {"in", "between"} and isinstance(self.value, list):
            raise ValueError(f"{self.op} takes one value, not a list")
        for item in values:
            if spec.kind is FieldKind.NUMBER and (
                isinstance(item, str) or isinstance(item, bool)  # noqa: SIM101
            ):
                raise ValueError(f"'{self.field}' is a number: write {item!r} without quotes")
            if spec.kind is FieldKind.TEXT:
                text = str(item)
                if spec.values is not None and text not in spec.values:
                    known = ", ".join(sorted(spec.values))
                    raise ValueError(f"'{text}' is not a {self.field}; use one of {known}")
        if self.op == "between" and float(values[0]) > float(values[1]):
            raise ValueError("between [low, high] needs low ≤ high")
        return self


class AllOf(_Model):
    all: list[Condition] = Field(min_length=1)


class AnyOf(_Model):
    any: list[Condition] = Field(min_length=1)


class NotOf(_Model):
    not_: Condition = Field(alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _condition_form(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    for key, form in (("all", "AllOf"), ("any", "AnyOf"), ("not", "NotOf")):
        if key in value:
            return form
    return "Predicate"


Condition = Annotated[
    Annotated[Predicate, Tag("Predicate")]
    | Annotated[AllOf, Tag("AllOf")]
    | Annotated[AnyOf, Tag("AnyOf")]
    | Annotated[NotOf, Tag("NotOf")],
    Discriminator(
        _condition_form,
        custom_error_type="condition",
        custom_error_message="a condition is {field, op, value}, {all: [...]}, {any: [...]} "
        "or {not: ...}",
    ),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()

Code = Annotated[str, Field(pattern=CODE_PATTERN)]


class StepSpec(_Model):
    """One step of a treatment path: when, on which channel, with what, by whom."""

    code: Code
    # Days after the case entered the path; or a trigger (an event) instead.
    day: int | None = Field(default=None, ge=0, le=3650)
    trigger: StrategyEvent | None = None
    channel: StepChannel
    # The approved template (messages, letters) or script (calls, visits), by name.
    template: str | None = Field(default=None, max_length=128)
    queue: str | None = Field(default=None, max_length=32)
    skill: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _when(self) -> StepSpec:
        if (self.day is None) == (self.trigger is None):
            raise ValueError("give a step either day (days after entering the path) or trigger")
        return self


class ExitSpec(_Model):
    """Leave the path when a condition holds (no contact after N attempts → skip-trace …)."""

    when: Condition
    action: ExitAction
    queue: str | None = Field(default=None, max_length=32)


class Arm(_Model):
    """An experiment arm: a share of the segment's accounts and the path they get."""

    code: Code
    percent: float = Field(gt=0, lt=100)
    steps: list[StepSpec] = Field(min_length=1)


class Experiment(_Model):
    """Champion (the segment's own path), challengers and a permanent random control."""

    code: Code
    control: Arm
    challengers: list[Arm] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shares(self) -> Experiment:
        codes = [self.control.code, *(arm.code for arm in self.challengers)]
        if "champion" in codes:
            raise ValueError("'champion' names the segment's own path: choose another arm code")
        if len(set(codes)) != len(codes):
            raise ValueError("each arm needs its own code")
        if self.control.percent + sum(arm.percent for arm in self.challengers) >= 100:
            raise ValueError("control and challengers must leave the champion a share (< 100%)")
        return self


class Segment(_Model):
    """Accounts matching a condition (first matching segment wins) and their path."""

    code: Code
    name: str = Field(min_length=1, max_length=128)
    # No condition: every account not taken by an earlier segment (a catch-all, put it last).
    when: Condition | None = None
    steps: list[StepSpec] = Field(min_length=1)
    exits: list[ExitSpec] = Field(default_factory=list)
    experiment: Experiment | None = None

    @model_validator(mode="after")
    def _unique_steps(self) -> Segment:
        codes = [step.code for step in self.steps]
        if len(set(codes)) != len(codes):
            raise ValueError("each step of a segment needs its own code")
        return self


class EventRule(_Model):
    """What an event does to a case's path."""

    action: EventAction
    queue: str | None = Field(default=None, max_length=32)
    # Promise made: pause until the due date plus this many days.
    grace_days: int = Field(default=0, ge=0, le=60)
    # Promise broken: this many in a row go one level further.
    in_a_row: int = Field(default=2, ge=1, le=10)


class BalanceBands(_Model):
    """Where ``balance_band`` changes: small below, large from (minor units)."""

    small_below: int = Field(default=DEFAULT_SMALL_BALANCE, ge=0)
    large_from: int = Field(default=DEFAULT_LARGE_BALANCE, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> BalanceBands:
        if self.small_below > self.large_from:
            raise ValueError("small_below must not exceed large_from")
        return self


class StrategyDocument(_Model):
    """A whole strategy: segments in order, each with its path, and event rules."""

    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=2000)
    balance_bands: BalanceBands = Field(default_factory=BalanceBands)
    segments: list[Segment] = Field(min_length=1, max_length=200)
    events: dict[StrategyEvent, EventRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_segments(self) -> StrategyDocument:
        codes = [segment.code for segment in self.segments]
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        if duplicates:
            raise ValueError(f"segment codes must differ: {', '.join(duplicates)} repeated")
        experiments = [s.experiment.code for s in self.segments if s.experiment is not None]
        if len(set(experiments)) != len(experiments):
            raise ValueError("each experiment needs its own code")
        return self


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a document: where (line, field) and what to do."""

    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.field or 'document'}: {self.message}"


class DocumentInvalid(ValueError):
    """A strategy document that cannot be read or does not fit the schema."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(problem) for problem in problems))


def _field_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


MAX_NODES = 50_000


def _plain(node: yaml.Node, lines: dict[tuple[int | str, ...], int], path: tuple[Any, ...]) -> Any:
    """Build plain Python values from a YAML node, noting the line of every path."""
    # Aliases can make a short text expand without end ("billion laughs"): count the nodes.
    if len(lines) > MAX_NODES:
        raise DocumentInvalid(
            [Problem(node.start_mark.line + 1, _field_path(path), "the document is too large")]
        )
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node)) if key_node.tag else key_node.value
            if not isinstance(key, str):
                raise DocumentInvalid(
                    [Problem(key_node.start_mark.line + 1, _field_path(path), "keys are words")]
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _plain(value_node, lines, (*path, key))
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, lines, (*path, index)) for index, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def parse_text(text: str) -> tuple[Any, dict[tuple[int | str, ...], int]]:
    """Read YAML or JSON into plain values and the line of each field path."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise DocumentInvalid(
            [Problem(None, "", f"the document is over {MAX_DOCUMENT_CHARS:,} characters")]
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        raise DocumentInvalid(
            [Problem(line, "", f"not valid YAML or JSON: {error.problem or error}")]
        ) from None
    except yaml.YAMLError as error:
        raise DocumentInvalid([Problem(None, "", f"not valid YAML or JSON: {error}")]) from None
    if node is None:
        raise DocumentInvalid([Problem(1, "", "the document is empty: start with name:")])
    lines: dict[tuple[int | str, ...], int] = {}
    return _plain(node, lines, ()), lines


def _line_of(loc: tuple[int | str, ...], lines: Mapping[tuple[int | str, ...], int]) -> int | None:
    path = tuple(part for part in loc if not (isinstance(part, str) and "[" in part))
    # Pydantic names union members in the location ("Predicate", "AllOf"): skip them.
    path = tuple(part for part in path if not (isinstance(part, str) and part[:1].isupper()))
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    cleaned: list[int | str] = []
    for part in loc:
        if isinstance(part, str) and (part[:1].isupper() or "[" in part):
            continue
        cleaned.append("not" if part == "not_" else part)
    return tuple(cleaned)


def _problems(error: ValidationError, lines: Mapping[tuple[int | str, ...], int]) -> list[Problem]:
    seen: dict[tuple[int | str, ...], Problem] = {}
    for item in error.errors():
        loc = _clean_loc(tuple(item["loc"]))
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field: check its spelling or remove it"
        elif item["type"] == "missing":
            message = "required: add it"
        # A condition that fits no form gives one error per form; keep the most specific.
        current = seen.get(loc)
        if current is None or len(message) < len(current.message):
            seen[loc] = Problem(_line_of(loc, lines), _field_path(loc), message)
    return sorted(seen.values(), key=lambda p: (p.line or 0, p.field))


def load_document(text: str) -> StrategyDocument:
    """Read and check a strategy document, or raise ``DocumentInvalid`` naming line and field."""
    return read_document(text)[0]


def read_document(text: str) -> tuple[StrategyDocument, dict[tuple[int | str, ...], int]]:
    """``load_document`` that also gives the line of each field path (for later findings)."""
    values, lines = parse_text(text)
    if not isinstance(values, dict):
        raise DocumentInvalid([Problem(1, "", "a strategy is a mapping: start with name:")])
    try:
        return StrategyDocument.model_validate(values), lines
    except ValidationError as error:
        raise DocumentInvalid(_problems(error, lines)) from None


def dump_document(document: StrategyDocument) -> str:
    """Write a document back as YAML (fields in schema order, defaults left out)."""
    data = document.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100))
