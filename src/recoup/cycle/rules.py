"""The daily cycle's pure parts: its stages in order, what an action is, and the run report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from recoup.contact.channels import CHANNELS, OUTBOUND_CHANNELS, Channel


class Stage(StrEnum):
    """A stage of the daily cycle, in the order they run."""

    DELINQUENCY = "delinquency"
    RECONCILIATION = "reconciliation"
    SCORING = "scoring"
    CASES = "cases"
    SEGMENTATION = "segmentation"
    STRATEGY = "strategy"
    NEXT_ACTIONS = "next_actions"
    GATE = "gate"
    HANDOFF = "handoff"
    AGGREGATES = "aggregates"


STAGES: tuple[Stage, ...] = tuple(Stage)


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ActionStatus(StrEnum):
    """Where a case's action for the day is: each stage moves the rows it finished."""

    SEGMENTED = "segmented"
    STEPPED = "stepped"
    PLANNED = "planned"
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    # The strategy has nothing for the case today (a pause, a stop, the end of a path).
    NONE = "none"
    HANDED_OFF = "handed_off"


class ActionKind(StrEnum):
    """Who carries an action out: an agent (a task in a queue) or a machine (a message)."""

    TASK = "task"
    MESSAGE = "message"


def kind_of(channel: Channel) -> ActionKind:
    """Return whether a channel's contact is an agent's task or a machine's message."""
    return ActionKind.MESSAGE if CHANNELS[channel].automated else ActionKind.TASK


# When in the debtor's day the cycle plans its contacts: the morning after the run, local time.
# Messages go out a little later than the first calls.
PLANNED_TIME: Mapping[ActionKind, time] = {
    ActionKind.TASK: time(9, 30),
    ActionKind.MESSAGE: time(10, 0),
}


def message_key(run_id: int, action_id: int) -> str:
    """Return the outbox idempotency key of a run's message action (queued once, ever)."""
    return f"cycle:{run_id}:{action_id}"


def planned_channel(value: str | None) -> Channel | None:
    """Return the outbound channel a segment or step names, or None for no contact."""
    if not value:
        return None
    try:
        channel = Channel(value)
    except ValueError:
        return None
    return channel if channel in OUTBOUND_CHANNELS else None


def due_day(run_at: time | None, local_now: datetime) -> date | None:
    """Return the local day whose cycle is due at ``local_now``, or None (not yet, or never)."""
    if run_at is None or local_now.time() < run_at:
        return None
    return local_now.date()


def planned_day(as_of: date) -> date:
    """Return the day the cycle of ``as_of`` plans contacts for: that day itself."""
    return as_of


@dataclass(frozen=True, slots=True)
class StageReport:
    """What one stage did: counts by name and its seconds."""

    counts: Mapping[str, Any]
    seconds: float


@dataclass(frozen=True, slots=True)
class RunReport:
    """A cycle run as users and scripts read it (``recoup cycle run --json``)."""

    institution: str
    as_of: date
    status: str
    stages: Mapping[str, StageReport]
    tasks_created: int
    messages_queued: int
    blocked_by_rule: Mapping[str, int]
    seconds: float
    attempts: int = 1
    started_at: datetime | None = None
    finished_at: datetime | None = None
    skipped: Sequence[str] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """Return the report as one JSON object (stable keys: see CONTRACT)."""
        return {
            "institution": self.institution,
            "as_of": self.as_of.isoformat(),
            "status": self.status,
            "stages": {
                name: {"counts": dict(stage.counts), "seconds": round(stage.seconds, 3)}
                for name, stage in self.stages.items()
            },
            "tasks_created": self.tasks_created,
            "messages_queued": self.messages_queued,
            "blocked_by_rule": dict(sorted(self.blocked_by_rule.items())),
            "seconds": round(self.seconds, 3),
            "attempts": self.attempts,
            "resumed_stages_skipped": list(self.skipped),
        }


def blocked_counts(rule_ids: Iterable[Sequence[str]]) -> dict[str, int]:
    """Count blocked actions per rule they cite (an action citing two rules counts for both)."""
    counts: Counter[str] = Counter()
    for ids in rule_ids:
        counts.update(set(ids))
    return dict(sorted(counts.items()))


class FaultPlan:
    """Where a test asks the cycle to die (``RECOUP_CYCLE_KILL=stage[:point]``).

    A point is ``before_commit`` (the default: the stage's work is done and not committed),
    ``after_commit``, or ``batch<N>`` (inside a batched stage, after its N-th batch committed).
    """

    def __init__(self, text: str | None) -> None:
        self.stage: str | None = None
        self.point = "before_commit"
        if text:
            stage, _, point = text.partition(":")
            self.stage = stage.strip()
            self.point = point.strip() or "before_commit"

    def hits(self, stage: str, point: str) -> bool:
        """Tell whether the cycle should die at this stage and point."""
        return self.stage == stage and self.point == point


class ShardKey(StrEnum):
    """What a sharded stage splits by: the rows one shard owns (id modulo the shard count)."""

    ACCOUNT = "account"
    # The gate counts each debtor's contacts against the debtor's caps: a debtor's actions
    # must be decided together, in order, so the gate splits by debtor.
    DEBTOR = "debtor"


# The stages that fan out as jobs when a broker is configured, and what they split by.
# The others read or write across accounts (scoring's drift, case routing, strategy arms,
# promise and plan reconciliation) or are single statements over the day's actions.
SHARDED_STAGES: Mapping[Stage, ShardKey] = {
    Stage.DELINQUENCY: ShardKey.ACCOUNT,
    Stage.GATE: ShardKey.DEBTOR,
}
MAX_SHARDS = 256


@dataclass(frozen=True, slots=True)
class Shard:
    """One of ``count`` parts of a stage: the rows whose key modulo ``count`` is ``index``."""

    stage: Stage
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.stage not in SHARDED_STAGES:
            raise ValueError(f"stage {self.stage.value!r} does not split into shards")
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"a stage splits into 1 to {MAX_SHARDS} shards; got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} is not one of 0..{self.count - 1}")

    @property
    def label(self) -> str:
        """The shard's ledger name (``gate#2/4``): written when the shard is done."""
        return f"{self.stage.value}#{self.index}/{self.count}"

    @property
    def key(self) -> ShardKey:
        return SHARDED_STAGES[self.stage]


def shards_of(stage: Stage, count: int) -> tuple[Shard, ...]:
    """Return the shards a stage splits into."""
    return tuple(Shard(stage, index, count) for index in range(count))


def merge_counts(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Add the shards' counts up (numbers add; nested counts add key by key)."""
    total: dict[str, Any] = {}
    for part in parts:
        for name, value in part.items():
            if isinstance(value, Mapping):
                total[name] = merge_counts([total.get(name) or {}, value])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                total[name] = total.get(name, 0) + value
            else:
                total.setdefault(name, value)
    return dict(sorted(total.items()))


# The job that does one shard of a sharded stage (``recoup.cycle.tasks``).
STAGE_SHARD = "cycle.stage_shard"
