"""Strategies, pure: which segment an account is in, which step it is on, where an event sends it.

A ``StrategyDocument`` (see ``document.py``) is compiled once into a ``CompiledStrategy``; the
daily cycle then works on columns (numpy arrays or pandas columns of the facts in
``document.FIELDS``), never row by row:

- ``segment_of(compiled, rows)`` → the index of each row's segment (first match wins; -1: none);
- ``step_indexes(compiled, segments, rows)`` → the index of each row's step in ``compiled.steps``;
- ``step_for(compiled, segment, facts)`` is the same decision for one case, with its reason;
- ``assign_arm(account_id, experiment)`` / ``assign_arms`` put an account in an experiment arm
  by a stable hash of (account, experiment): a re-run never reshuffles;
- ``route_event(compiled, event, facts)`` re-routes a case at once when something happens.

A fact that is unknown (None, NaN) matches no predicate, ``ne`` included: an account whose
grade is unknown is not "not grade A".
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from recoup.strategy.document import (
    AGE_BANDS,
    CONTACT_CHANNELS,
    FIELDS,
    AllOf,
    AnyOf,
    BalanceBands,
    Condition,
    EventAction,
    EventRule,
    ExitAction,
    Experiment,
    FieldKind,
    NotOf,
    Predicate,
    StepChannel,
    StepSpec,
    StrategyDocument,
    StrategyEvent,
    read_document,
)

CHAMPION = "champion"
NO_SEGMENT = -1
NO_STEP = -1

# What each event does unless the document says otherwise (``events:``).
DEFAULT_EVENT_RULES: Mapping[StrategyEvent, EventRule] = MappingProxyType(
    {
        StrategyEvent.PAYMENT_RECEIVED: EventRule(action=EventAction.REEVALUATE),
        StrategyEvent.PAYMENT_REVERSED: EventRule(action=EventAction.REEVALUATE),
        StrategyEvent.PROMISE_MADE: EventRule(action=EventAction.PAUSE, grace_days=3),
        StrategyEvent.PROMISE_BROKEN: EventRule(action=EventAction.ESCALATE, in_a_row=2),
        StrategyEvent.DISPUTE: EventRule(action=EventAction.HOLD, queue="dispute"),
        StrategyEvent.WRONG_NUMBER: EventRule(action=EventAction.SKIP_TRACE, queue="skip_trace"),
        StrategyEvent.UNREACHABLE: EventRule(action=EventAction.SKIP_TRACE, queue="skip_trace"),
        StrategyEvent.HARDSHIP: EventRule(action=EventAction.OFFER_PLAN, queue="hardship"),
        StrategyEvent.CEASE_REQUEST: EventRule(action=EventAction.STOP),
        StrategyEvent.COMPLAINT: EventRule(action=EventAction.REVIEW, queue="complaint_review"),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """A step a case is on: what to do, on which channel, by whom, and why."""

    index: int
    segment: str
    arm: str
    code: str
    # A contact or hand-over step (``StepChannel``); None for exits that only move the case.
    channel: str | None
    template: str | None = None
    queue: str | None = None
    skill: str | None = None
    day: int | None = None
    trigger: str | None = None
    # ``contact`` for a path step, else the exit action (skip_trace, legal_review …).
    action: str = "contact"
    reason: str = ""
    # The reason as a code and its values, shown in the reader's language
    # (``strategy.reason.<code>`` in the catalogs).
    reason_code: str = ""
    reason_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_exit(self) -> bool:
        return self.action != "contact"


@dataclass(frozen=True, slots=True)
class ArmPath:
    """One arm's path in a segment: its day steps in day order (indexes into ``steps``)."""

    arm: str
    days: tuple[int, ...]
    step_indexes: tuple[int, ...]
    trigger_steps: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class CompiledSegment:
    index: int
    code: str
    name: str
    when: Condition | None
    paths: Mapping[str, ArmPath]
    # (condition, index of the exit's step), in document order.
    exits: tuple[tuple[Condition, int], ...]
    experiment: Experiment | None


@dataclass(frozen=True, slots=True)
class CompiledStrategy:
    """A checked strategy ready to run: segments in order, every step numbered."""

    document: StrategyDocument
    segments: tuple[CompiledSegment, ...]
    steps: tuple[Step, ...]
    events: Mapping[StrategyEvent, EventRule]
    balance_bands: BalanceBands
    # The line of each field path of the source text (for findings); empty if built from a model.
    lines: Mapping[tuple[int | str, ...], int] = field(default_factory=dict)

    def segment(self, code: str) -> CompiledSegment:
        for segment in self.segments:
            if segment.code == code:
                return segment
        raise KeyError(f"no segment '{code}' in strategy '{self.document.name}'")

    @property
    def segment_codes(self) -> tuple[str, ...]:
        return tuple(segment.code for segment in self.segments)

    @property
    def fields_used(self) -> frozenset[str]:
        """The facts the strategy reads (the columns ``segment_of`` needs)."""
        names: set[str] = set()
        for segment in self.segments:
            if segment.when is not None:
                names |= _fields_of(segment.when)
            for condition, _ in segment.exits:
                names |= _fields_of(condition)
        return frozenset(names)


def _fields_of(condition: Condition) -> set[str]:
    if isinstance(condition, Predicate):
        return {condition.field}
    if isinstance(condition, AllOf):
        return set().union(*(_fields_of(c) for c in condition.all))
    if isinstance(condition, AnyOf):
        return set().union(*(_fields_of(c) for c in condition.any))
    return _fields_of(condition.not_)


def _step(spec: StepSpec, *, index: int, segment: str, arm: str) -> Step:
    return Step(
        index=index,
        segment=segment,
        arm=arm,
        code=spec.code,
        channel=spec.channel.value,
        template=spec.template,
        queue=spec.queue,
        skill=spec.skill,
        day=spec.day,
        trigger=spec.trigger.value if spec.trigger else None,
    )


def compile_strategy(document: StrategyDocument | str) -> CompiledStrategy:
    """Number every step and gather each segment's paths, so the cycle can run on columns."""
    lines: Mapping[tuple[int | str, ...], int] = {}
    if isinstance(document, str):
        document, lines = read_document(document)
    steps: list[Step] = []
    segments: list[CompiledSegment] = []
    for segment_index, spec in enumerate(document.segments):
        arms: list[tuple[str, list[StepSpec]]] = [(CHAMPION, spec.steps)]
        if spec.experiment is not None:
            arms.append((spec.experiment.control.code, spec.experiment.control.steps))
            arms.extend((arm.code, arm.steps) for arm in spec.experiment.challengers)
        paths: dict[str, ArmPath] = {}
        for arm, arm_steps in arms:
            day_steps: list[tuple[int, int]] = []
            triggers: dict[str, int] = {}
            for step_spec in arm_steps:
                step = _step(step_spec, index=len(steps), segment=spec.code, arm=arm)
                steps.append(step)
                if step_spec.day is not None:
                    day_steps.append((step_spec.day, step.index))
                elif step_spec.trigger is not None:
                    triggers.setdefault(step_spec.trigger.value, step.index)
            # A stable sort keeps document order among steps of the same day; the last wins.
            day_steps.sort(key=lambda pair: pair[0])
            paths[arm] = ArmPath(
                arm=arm,
                days=tuple(day for day, _ in day_steps),
                step_indexes=tuple(index for _, index in day_steps),
                trigger_steps=MappingProxyType(triggers),
            )
        exits: list[tuple[Condition, int]] = []
        for exit_index, exit_spec in enumerate(spec.exits):
            step = Step(
                index=len(steps),
                segment=spec.code,
                arm=CHAMPION,
                code=f"exit_{exit_index + 1}_{exit_spec.action.value}",
                channel=_EXIT_CHANNELS.get(exit_spec.action),
                queue=exit_spec.queue or _EXIT_QUEUES.get(exit_spec.action),
                action=exit_spec.action.value,
            )
            steps.append(step)
            exits.append((exit_spec.when, step.index))
        segments.append(
            CompiledSegment(
                index=segment_index,
                code=spec.code,
                name=spec.name,
                when=spec.when,
                paths=MappingProxyType(paths),
                exits=tuple(exits),
                experiment=spec.experiment,
            )
        )
    events = dict(DEFAULT_EVENT_RULES)
    events.update(document.events)
    return CompiledStrategy(
        document=document,
        segments=tuple(segments),
        steps=tuple(steps),
        events=MappingProxyType(events),
        balance_bands=document.balance_bands,
        lines=lines,
    )


_EXIT_CHANNELS: Mapping[ExitAction, str] = MappingProxyType(
    {ExitAction.LEGAL_REVIEW: StepChannel.LEGAL.value, ExitAction.AGENCY: StepChannel.AGENCY.value}
)
_EXIT_QUEUES: Mapping[ExitAction, str] = MappingProxyType(
    {
        ExitAction.SKIP_TRACE: "skip_trace",
        ExitAction.LEGAL_REVIEW: "legal_review",
        ExitAction.AGENCY: "agency",
    }
)


# -- facts: columns and single values --------------------------------------------------------

Columns = Mapping[str, npt.NDArray[Any]]


def age_band(age: float | None) -> str | None:
    """The age band of an age in years (``18-24`` … ``65+``), None if unknown."""
    if age is None or age != age:  # NaN
        return None
    for band, upper in zip(AGE_BANDS, (25, 35, 45, 55, 65), strict=False):
        if age < upper:
            return band
    return AGE_BANDS[-1]


def balance_band(balance: float | None, bands: BalanceBands) -> str | None:
    """``small`` / ``medium`` / ``large`` by the document's thresholds, None if unknown."""
    if balance is None or balance != balance:
        return None
    if balance < bands.small_below:
        return "small"
    return "large" if balance >= bands.large_from else "medium"


def _length(rows: Any) -> int:
    if hasattr(rows, "__len__") and hasattr(rows, "columns"):
        return len(rows)
    for name in rows:
        return len(rows[name])
    return 0


class FactColumns(dict[str, npt.NDArray[Any]]):
    """Columns already normalised by ``columns_of``: pass them on to skip the work again."""

    size: int = 0


def columns_of(compiled: CompiledStrategy, rows: Any) -> tuple[FactColumns, int]:
    """Normalise the facts a strategy reads: numbers as float (NaN unknown), text as objects.

    ``rows`` is a mapping of column name → sequence (a dict of arrays or a pandas DataFrame).
    A missing column is an unknown fact on every row; ``balance_band`` and ``age_band`` are
    derived from ``balance`` and ``age`` when not given. The result can be given to
    ``segment_of`` and ``step_indexes`` in place of ``rows`` (normalising 1M rows takes about
    half a second).
    """
    if isinstance(rows, FactColumns):
        return rows, rows.size
    size = _length(rows)
    used = set(compiled.fields_used)
    derived = {"balance_band": "balance", "age_band": "age"}
    names = {name for name in used if not (name in derived and name not in rows)}
    names |= {derived[name] for name in used if name in derived and name not in rows}
    columns = FactColumns()
    columns.size = size
    for name in names:
        spec = FIELDS[name]
        if name in rows:
            raw = np.asarray(rows[name])
        elif spec.kind is FieldKind.NUMBER:
            raw = np.full(size, np.nan)
        else:
            raw = np.full(size, None, dtype=object)
        if spec.kind is FieldKind.NUMBER:
            columns[name] = _numbers(raw)
        else:
            columns[name] = _texts(raw)
    if "balance_band" in used and "balance_band" not in rows:
        columns["balance_band"] = _bands_of_balance(columns["balance"], compiled.balance_bands)
    if "age_band" in used and "age_band" not in rows:
        columns["age_band"] = _bands_of_age(columns["age"])
    if "days_on_path" in rows and "days_on_path" not in columns:
        columns["days_on_path"] = _numbers(np.asarray(rows["days_on_path"]))
    return columns, size


def _numbers(raw: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    if raw.dtype.kind in "iufb":
        return raw.astype(np.float64, copy=False)
    out = np.full(len(raw), np.nan)
    for position, value in enumerate(raw):
        if value is not None and not (isinstance(value, float) and value != value):
            try:
                out[position] = float(value)
            except (TypeError, ValueError):
                continue
    return out


def _texts(raw: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if raw.dtype != object:
        return raw.astype(str).astype(object)
    # pandas gives NaN (or pd.NA) for missing text: make every unknown None.
    try:
        unknown = np.asarray(raw != raw, dtype=bool)
    except TypeError:
        unknown = ~np.frompyfunc(lambda v: isinstance(v, str), 1, 1)(raw).astype(bool)
    if not unknown.any():
        return raw
    out = raw.copy()
    out[unknown] = None
    return out


def _bands_of_balance(balance: npt.NDArray[np.float64], bands: BalanceBands) -> npt.NDArray[Any]:
    out = np.full(len(balance), None, dtype=object)
    known = ~np.isnan(balance)
    out[known & (balance < bands.small_below)] = "small"
    out[known & (balance >= bands.small_below) & (balance < bands.large_from)] = "medium"
    out[known & (balance >= bands.large_from)] = "large"
    return out


def _bands_of_age(age: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    out = np.full(len(age), None, dtype=object)
    known = ~np.isnan(age)
    lower = -np.inf
    for band, upper in zip(AGE_BANDS, (25, 35, 45, 55, 65, np.inf), strict=True):
        out[known & (age >= lower) & (age < upper)] = band
        lower = upper
    return out


def facts_of(compiled: CompiledStrategy, values: Mapping[str, Any]) -> dict[str, Any]:
    """One case's facts with the derived bands filled in."""
    facts = dict(values)
    if "balance_band" not in facts:
        facts["balance_band"] = balance_band(facts.get("balance"), compiled.balance_bands)
    if "age_band" not in facts:
        facts["age_band"] = age_band(facts.get("age"))
    return facts


# -- conditions ------------------------------------------------------------------------------


def _predicate_mask(predicate: Predicate, columns: Columns, size: int) -> npt.NDArray[np.bool_]:
    column = columns.get(predicate.field)
    if column is None:
        return np.zeros(size, dtype=bool)
    spec = FIELDS[predicate.field]
    value = predicate.value
    if spec.kind is FieldKind.NUMBER:
        known = ~np.isnan(column)
        with np.errstate(invalid="ignore"):
            if predicate.op == "in":
                assert isinstance(value, list)
                mask = np.isin(column, [float(v) for v in value])
            elif predicate.op == "between":
                assert isinstance(value, list)
                low, high = float(value[0]), float(value[1])
                mask = (column >= low) & (column <= high)
            else:
                mask = _compare(column, predicate.op, float(value))  # type: ignore[arg-type]
        return mask & known
    known = column != None  # noqa: E711 (elementwise on an object array)
    if predicate.op == "in":
        assert isinstance(value, list)
        mask = np.isin(column, np.array([str(v) for v in value], dtype=object))
    elif predicate.op == "eq":
        mask = column == str(value)
    else:
        mask = column != str(value)
    return np.asarray(mask & known, dtype=bool)


def _compare(column: npt.NDArray[Any], op: str, value: Any) -> npt.NDArray[np.bool_]:
    if op == "eq":
        return np.asarray(column == value)
    if op == "ne":
        return np.asarray(column != value)
    if op == "lt":
        return np.asarray(column < value)
    if op == "le":
        return np.asarray(column <= value)
    if op == "gt":
        return np.asarray(column > value)
    return np.asarray(column >= value)


def condition_mask(condition: Condition, columns: Columns, size: int) -> npt.NDArray[np.bool_]:
    """Which rows meet a condition, over normalised columns (``columns_of``)."""
    if isinstance(condition, Predicate):
        return _predicate_mask(condition, columns, size)
    if isinstance(condition, AllOf):
        mask = np.ones(size, dtype=bool)
        for part in condition.all:
            mask &= condition_mask(part, columns, size)
        return mask
    if isinstance(condition, AnyOf):
        mask = np.zeros(size, dtype=bool)
        for part in condition.any:
            mask |= condition_mask(part, columns, size)
        return mask
    return ~condition_mask(condition.not_, columns, size)


def _unknown(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def matches(condition: Condition, facts: Mapping[str, Any]) -> bool:
    """Tell whether one case's facts meet a condition (the scalar twin of ``condition_mask``)."""
    if isinstance(condition, AllOf):
        return all(matches(part, facts) for part in condition.all)
    if isinstance(condition, AnyOf):
        return any(matches(part, facts) for part in condition.any)
    if isinstance(condition, NotOf):
        return not matches(condition.not_, facts)
    actual = facts.get(condition.field)
    if _unknown(actual):
        return False
    value = condition.value
    if FIELDS[condition.field].kind is FieldKind.TEXT:
        text = str(actual)
        if condition.op == "in":
            assert isinstance(value, list)
            return text in {str(v) for v in value}
        return (text == str(value)) == (condition.op == "eq")
    number = float(actual)  # type: ignore[arg-type]
    if condition.op == "in":
        assert isinstance(value, list)
        return number in {float(v) for v in value}
    if condition.op == "between":
        assert isinstance(value, list)
        return float(value[0]) <= number <= float(value[1])
    return bool(_compare(np.asarray(number), condition.op, float(value)))  # type: ignore[arg-type]


# -- segments --------------------------------------------------------------------------------


def segment_masks(compiled: CompiledStrategy, rows: Any) -> list[npt.NDArray[np.bool_]]:
    """Each segment's own condition over the rows, before first-match-wins (for previews)."""
    columns, size = columns_of(compiled, rows)
    return [
        np.ones(size, dtype=bool)
        if segment.when is None
        else condition_mask(segment.when, columns, size)
        for segment in compiled.segments
    ]


def segment_of(compiled: CompiledStrategy, rows: Any) -> npt.NDArray[np.int64]:
    """The index of each row's segment (the first whose condition it meets), -1 for none."""
    columns, size = columns_of(compiled, rows)
    return _segments(compiled, columns, size)


def _segments(compiled: CompiledStrategy, columns: Columns, size: int) -> npt.NDArray[np.int64]:
    result = np.full(size, NO_SEGMENT, dtype=np.int64)
    open_rows = np.ones(size, dtype=bool)
    for segment in compiled.segments:
        if segment.when is None:
            mask = open_rows.copy()
        else:
            mask = condition_mask(segment.when, columns, size) & open_rows
        result[mask] = segment.index
        open_rows &= ~mask
        if not open_rows.any():
            break
    return result


def segment_for(compiled: CompiledStrategy, values: Mapping[str, Any]) -> CompiledSegment | None:
    """One case's segment (the scalar twin of ``segment_of``)."""
    facts = facts_of(compiled, values)
    for segment in compiled.segments:
        if segment.when is None or matches(segment.when, facts):
            return segment
    return None


# -- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseFacts:
    """What picks a case's step: how long it has been on its path, its arm, its facts."""

    days_on_path: int
    values: Mapping[str, Any] = field(default_factory=dict)
    arm: str = CHAMPION
    # The step the case is on now (from ``case_strategy_states``), to tell a new step.
    current_step: str | None = None
    # A pause (promise due + grace, hardship …) holds every step until this day.
    paused_until: date | None = None
    as_of: date | None = None


def _path(segment: CompiledSegment, arm: str) -> ArmPath:
    return segment.paths.get(arm) or segment.paths[CHAMPION]


def step_for(
    compiled: CompiledStrategy, segment: CompiledSegment | str | int, facts: CaseFacts
) -> Step | None:
    """The step a case is on today, with why; None while paused or before its first step.

    An exit condition that holds wins over the path (in document order); otherwise the case
    is on the last step whose day has come (``day ≤ days_on_path``) in its arm's path.
    """
    if isinstance(segment, str):
        segment = compiled.segment(segment)
    elif isinstance(segment, int):
        segment = compiled.segments[segment]
    if (
        facts.paused_until is not None
        and facts.as_of is not None
        and facts.as_of < facts.paused_until
    ):
        return None
    values = facts_of(compiled, facts.values)
    values.setdefault("days_on_path", facts.days_on_path)
    for number, (condition, index) in enumerate(segment.exits, start=1):
        if matches(condition, values):
            step = compiled.steps[index]
            return _with_reason(
                step,
                f"segment {segment.code}: exit {number} ({step.action})",
                "exit",
                {"segment": segment.code, "number": number, "action": step.action},
            )
    path = _path(segment, facts.arm)
    position = int(np.searchsorted(np.asarray(path.days), facts.days_on_path, side="right")) - 1
    if position < 0:
        return None
    step = compiled.steps[path.step_indexes[position]]
    return _with_reason(
        step,
        f"segment {segment.code}, arm {path.arm}: day {facts.days_on_path} on the path, "
        f"step {step.code} from day {step.day}",
        "path",
        path_params(segment.code, path.arm, facts.days_on_path, step),
    )


def path_params(segment: str, arm: str, days: int, step: Step) -> dict[str, Any]:
    """The values of a path step's reason (code ``path``)."""
    return {"segment": segment, "arm": arm, "day": days, "step": step.code, "from_day": step.day}


def _with_reason(step: Step, reason: str, code: str, params: Mapping[str, Any]) -> Step:
    return replace(step, reason=reason, reason_code=code, reason_params=dict(params))


def step_indexes(
    compiled: CompiledStrategy,
    segments: npt.NDArray[np.int64],
    rows: Any,
    *,
    days_on_path: npt.NDArray[Any] | None = None,
    arms: npt.NDArray[Any] | None = None,
) -> npt.NDArray[np.int64]:
    """Each row's step as an index into ``compiled.steps`` (-1: none yet), on columns.

    ``days_on_path`` defaults to the ``days_on_path`` column of ``rows``; ``arms`` (arm codes)
    to the champion. Pauses are the caller's to apply (a paused case takes no step).
    """
    normalised, size = columns_of(compiled, rows)
    columns = dict(normalised)
    if days_on_path is not None:
        columns["days_on_path"] = np.asarray(days_on_path, dtype=np.float64)
    days = columns.get("days_on_path")
    if days is None:
        raise KeyError("step_indexes needs days_on_path: a column of rows or the argument")
    result = np.full(size, NO_STEP, dtype=np.int64)
    for segment in compiled.segments:
        in_segment = segments == segment.index
        if not in_segment.any():
            continue
        rows_here = np.flatnonzero(in_segment)
        decided = np.zeros(len(rows_here), dtype=bool)
        if segment.exits:
            sliced = {name: column[rows_here] for name, column in columns.items()}
            for condition, index in segment.exits:
                hit = condition_mask(condition, sliced, len(rows_here)) & ~decided
                result[rows_here[hit]] = index
                decided |= hit
        for arm, path in segment.paths.items():
            if arms is None:
                if arm != CHAMPION:
                    continue
                on_arm = ~decided
            else:
                arm_of_rows = arms[rows_here]
                on_arm = ~decided & (arm_of_rows == arm)
                if arm == CHAMPION:
                    on_arm |= ~decided & ~np.isin(arm_of_rows, list(segment.paths))
            if not on_arm.any() or not path.days:
                continue
            picked = rows_here[on_arm]
            positions = np.searchsorted(np.asarray(path.days), days[picked], side="right") - 1
            indexes = np.asarray(path.step_indexes, dtype=np.int64)
            chosen = np.where(positions >= 0, indexes[np.maximum(positions, 0)], NO_STEP)
            # An unknown day count takes no step.
            chosen[np.isnan(days[picked])] = NO_STEP
            result[picked] = chosen
    return result


def step_for_event(
    compiled: CompiledStrategy, segment: CompiledSegment | str, event: StrategyEvent, arm: str
) -> Step | None:
    """The step a path runs when an event happens (a step with ``trigger: <event>``), if any."""
    if isinstance(segment, str):
        segment = compiled.segment(segment)
    index = _path(segment, arm).trigger_steps.get(event.value)
    if index is None:
        return None
    step = compiled.steps[index]
    return _with_reason(
        step,
        f"segment {segment.code}: {event.value} triggers {step.code}",
        "event_step",
        {"segment": segment.code, "event": event.value, "step": step.code},
    )


# -- experiments -----------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1
BASIS_POINTS = 10_000


def _seed(experiment_code: str) -> int:
    return zlib.crc32(experiment_code.encode("utf-8")) * 0x9E3779B97F4A7C15 & _MASK64


def _mix(value: int) -> int:
    """SplitMix64's finaliser: spreads neighbouring ids over the whole 64-bit range."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _mix_array(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        values = values + np.uint64(0x9E3779B97F4A7C15)
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


def arm_shares(experiment: Experiment) -> tuple[tuple[str, int], ...]:
    """Each arm's share in basis points: control, challengers, then the champion's rest."""
    shares = [(experiment.control.code, round(experiment.control.percent * 100))]
    shares.extend((arm.code, round(arm.percent * 100)) for arm in experiment.challengers)
    shares.append((CHAMPION, BASIS_POINTS - sum(share for _, share in shares)))
    return tuple(shares)


def _arm_of_slot(experiment: Experiment, slot: int) -> str:
    upper = 0
    for code, share in arm_shares(experiment):
        upper += share
        if slot < upper:
            return code
    return CHAMPION


def assign_arm(account_id: int, experiment: Experiment) -> str:
    """The arm an account is in: a stable hash of (account, experiment), never reshuffled."""
    slot = _mix((account_id & _MASK64) ^ _seed(experiment.code)) % BASIS_POINTS
    return _arm_of_slot(experiment, slot)


def assign_arms(account_ids: npt.ArrayLike, experiment: Experiment) -> npt.NDArray[Any]:
    """``assign_arm`` on a column of account ids (arm codes as an object array)."""
    ids = np.asarray(account_ids).astype(np.int64).view(np.uint64)
    slots = (_mix_array(ids ^ np.uint64(_seed(experiment.code))) % np.uint64(BASIS_POINTS)).astype(
        np.int64
    )
    codes = np.full(len(slots), CHAMPION, dtype=object)
    lower = 0
    for code, share in arm_shares(experiment):
        codes[(slots >= lower) & (slots < lower + share)] = code
        lower += share
    return codes


def arms_of(
    compiled: CompiledStrategy, segments: npt.NDArray[np.int64], account_ids: npt.ArrayLike
) -> npt.NDArray[Any]:
    """Each row's arm in its segment's experiment (the champion where there is none)."""
    ids = np.asarray(account_ids)
    arms = np.full(len(segments), CHAMPION, dtype=object)
    for segment in compiled.segments:
        if segment.experiment is None:
            continue
        rows = segments == segment.index
        if rows.any():
            arms[rows] = assign_arms(ids[rows], segment.experiment)
    return arms


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFacts:
    """What an event rule looks at."""

    as_of: date
    # Payment received: nothing is past due any more.
    cured: bool = False
    # Promise made: its due date.
    promise_due: date | None = None
    # Promise broken: how many in a row, this one included.
    broken_in_a_row: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Reroute:
    """Where an event sends a case's path at once."""

    event: str
    action: str
    # The step code the case is on afterwards (a triggered step, an exit, or a state word).
    step: str
    queue: str | None = None
    paused_until: date | None = None
    # Every channel stops until someone decides otherwise (cease, dispute, complaint).
    stop_contact: bool = False
    # Go one level further (two broken promises in a row).
    next_level: bool = False
    reason: str = ""
    reason_code: str = ""
    reason_params: Mapping[str, Any] = field(default_factory=dict)


# The steps an event puts a case on that are not on any path: they name no compiled step.
EVENT_STEP_WORDS = frozenset({"escalated", "next_level", EventAction.SKIP_TRACE.value})


def event_step_codes(compiled: CompiledStrategy) -> frozenset[tuple[str, str]]:
    """The (segment, step) pairs only an event puts a case on: each segment's triggered steps
    and the escalation and skip-trace words. The daily cycle keeps a case on one of these."""
    pairs = {(step.segment, step.code) for step in compiled.steps if step.trigger}
    for segment in compiled.segment_codes:
        pairs.update((segment, word) for word in EVENT_STEP_WORDS)
    return frozenset(pairs)


def route_event(compiled: CompiledStrategy, event: StrategyEvent, facts: EventFacts) -> Reroute:
    """What an event does to a case's path, by the strategy's event rules."""
    rule = compiled.events[event]
    action = rule.action
    name = event.value
    if action is EventAction.REEVALUATE:
        if facts.cured:
            return Reroute(
                event=name,
                action=EventAction.STOP.value,
                step="cured",
                reason="paid: cured",
                reason_code="cured",
            )
        if event is StrategyEvent.PAYMENT_REVERSED:
            return Reroute(
                event=name,
                action=action.value,
                step="reevaluate",
                reason="payment reversed: segment again",
                reason_code="reversed",
            )
        return Reroute(
            event=name,
            action=action.value,
            step="reevaluate",
            reason="paid: segment again",
            reason_code="reevaluate",
        )
    if action is EventAction.PAUSE:
        due = facts.promise_due or facts.as_of
        until = due + timedelta(days=rule.grace_days)
        return Reroute(
            event=name,
            action=action.value,
            step="paused",
            paused_until=until,
            reason=f"{name}: paused until {until.isoformat()} (due + {rule.grace_days} days)",
            reason_code="paused",
            reason_params={"event": name, "until": until.isoformat(), "grace": rule.grace_days},
        )
    if action is EventAction.ESCALATE:
        further = facts.broken_in_a_row >= rule.in_a_row
        return Reroute(
            event=name,
            action=action.value,
            step="next_level" if further else "escalated",
            queue=rule.queue,
            next_level=further,
            reason=(
                f"{name}: {facts.broken_in_a_row} in a row"
                + (f" (≥ {rule.in_a_row}): next level" if further else ": escalate")
            ),
            reason_code="next_level" if further else "escalated",
            reason_params={
                "event": name,
                "count": facts.broken_in_a_row,
                "in_a_row": rule.in_a_row,
            },
        )
    # Skip-trace looks for a new way to reach the debtor; the other rules hold every channel
    # until a person decides (a dispute resolved, a plan agreed, a complaint reviewed).
    return Reroute(
        event=name,
        action=action.value,
        step=action.value,
        queue=rule.queue,
        stop_contact=action is not EventAction.SKIP_TRACE,
        reason=f"{name}: {action.value}" + (f" → queue {rule.queue}" if rule.queue else ""),
        reason_code="event_queue" if rule.queue else "event_action",
        reason_params={
            "event": name,
            "action": action.value,
            **({"queue": rule.queue} if rule.queue else {}),
        },
    )


# -- what a path's channels need -------------------------------------------------------------


def contact_steps(compiled: CompiledStrategy) -> Sequence[Step]:
    """The steps that contact the debtor (they pass the compliance gate)."""
    contact = {channel.value for channel in CONTACT_CHANNELS}
    return [step for step in compiled.steps if step.channel in contact]
