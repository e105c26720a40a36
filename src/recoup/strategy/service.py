"""Strategies: copy a preset, edit drafts, check, preview, activate; experiment results;
events that re-route a case at once.

A strategy's content lives in versions: the newest draft is edited in place, an activated
version never changes again (editing it starts the next draft), and one version at a time is
active at an institution. Activation and a challenger's promotion are audited.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.compliance.policy import service as policy_service
from recoup.institutions.settings import settings_of
from recoup.kit.clock import local_today, utcnow
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.kit.money import minor_digits
from recoup.kit.pagination import Page, PageRequest
from recoup.models.institution import Institution
from recoup.models.strategy import CaseStrategyState, CaseStrategyStep, Strategy, StrategyVersion
from recoup.strategy import repository, rules
from recoup.strategy.document import (
    CODE_PATTERN,
    DocumentInvalid,
    Problem,
    StrategyDocument,
    StrategyEvent,
    dump_document,
    read_document,
)
from recoup.strategy.experiments import ArmOutcome, ArmResult, arm_results
from recoup.strategy.presets import PRESETS, UnknownPreset, preset_text
from recoup.strategy.validation import (
    Finding,
    SegmentCount,
    ValidationContext,
    blocking,
    validate,
)

DRAFT, ACTIVE, RETIRED = "draft", "active", "retired"


class StrategyRefused(ValidationFailed):
    """A strategy change that cannot be made as asked; the message says what would work."""


def _problems_error(problems: Sequence[Problem]) -> StrategyRefused:
    return StrategyRefused(
        "; ".join(str(problem) for problem in problems),
        errors=[
            {"line": problem.line, "field": problem.field or "document", "message": problem.message}
            for problem in problems
        ],
    )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- strategies and versions -----------------------------------------------------------------


def list_strategies(session: Session, *, institution_id: int, page: PageRequest) -> Page[Strategy]:
    """The institution's strategies."""
    return repository.strategies_page(session, institution_id=institution_id, page=page)


def create_strategy(
    session: Session,
    *,
    institution: Institution,
    code: str,
    name: str,
    actor: str,
    preset: str | None = None,
    document: str | None = None,
) -> tuple[Strategy, StrategyVersion]:
    """Start a strategy from a preset (or a document): version 1, a draft."""
    code = code.strip()
    if not re.fullmatch(CODE_PATTERN, code):
        raise StrategyRefused(
            "code: 1–32 lower-case letters, digits or _, starting with a letter (e.g. cf_2026)",
            errors=[{"field": "code", "message": "lower-case letters, digits, _"}],
        )
    if not name.strip():
        raise StrategyRefused(
            "name: give the strategy a name",
            errors=[{"field": "name", "message": "give the strategy a name"}],
        )
    if repository.strategy_by_code(session, institution_id=institution.id, code=code):
        raise Conflict(f"a strategy '{code}' exists already: choose another code")
    if document is None:
        chosen = preset or default_preset(institution)
        try:
            document = preset_text(chosen)
        except UnknownPreset as error:
            raise StrategyRefused(
                str(error), errors=[{"field": "preset", "message": str(error)}]
            ) from None
    try:
        read_document(document)
    except DocumentInvalid as invalid:
        raise _problems_error(invalid.problems) from None
    strategy = Strategy(
        institution_id=institution.id,
        code=code,
        name=name.strip()[:128],
        preset=preset,
        created_by=actor,
    )
    session.add(strategy)
    session.flush()
    version = StrategyVersion(
        institution_id=institution.id,
        strategy_id=strategy.id,
        version=1,
        document=document,
        sha256=_sha(document),
        status=DRAFT,
        author=actor,
    )
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="strategy.create",
        object_type="strategy",
        object_id=strategy.id,
        institution_id=institution.id,
        details={"code": code, "preset": preset},
    )
    return strategy, version


def default_preset(institution: Institution) -> str:
    preset = str(institution.preset)
    return preset if preset in PRESETS else PRESETS[0]


def get_strategy(session: Session, *, institution_id: int, strategy_id: int) -> Strategy:
    """One strategy of the institution (another institution's is not found)."""
    strategy = session.get(Strategy, strategy_id)
    if strategy is None or strategy.institution_id != institution_id:
        raise NotFound(f"no strategy {strategy_id}")
    return strategy


def get_version(
    session: Session, *, strategy: Strategy, number: int | None = None
) -> StrategyVersion:
    """A version of a strategy (the newest when no number is given)."""
    found = (
        repository.latest_version(session, strategy_id=strategy.id)
        if number is None
        else repository.version(session, strategy_id=strategy.id, number=number)
    )
    if found is None:
        raise NotFound(f"no version {number} of strategy {strategy.code}")
    return found


def versions_of(session: Session, *, strategy: Strategy) -> list[StrategyVersion]:
    return repository.versions(session, strategy_id=strategy.id)


def save_draft(
    session: Session,
    *,
    institution: Institution,
    strategy: Strategy,
    document: str,
    actor: str,
    note: str | None = None,
) -> StrategyVersion:
    """Save an edited document: the newest draft changes, or a new draft follows an active one.

    A document that does not read is refused with its problems by line; findings (templates,
    channels, overlaps) do not stop a draft, only activation.
    """
    try:
        read_document(document)
    except DocumentInvalid as invalid:
        raise _problems_error(invalid.problems) from None
    latest = repository.latest_version(session, strategy_id=strategy.id)
    if latest is not None and latest.status == DRAFT:
        latest.document = document
        latest.sha256 = _sha(document)
        latest.author = actor
        latest.note = note
        session.flush()
        return latest
    draft = StrategyVersion(
        institution_id=institution.id,
        strategy_id=strategy.id,
        version=(latest.version + 1) if latest else 1,
        document=document,
        sha256=_sha(document),
        status=DRAFT,
        author=actor,
        note=note,
    )
    session.add(draft)
    session.flush()
    return draft


# -- checks and preview ----------------------------------------------------------------------


def validation_context(session: Session, *, institution: Institution) -> ValidationContext:
    """What the institution has: approved templates, disabled and always-blocked channels."""
    approved: dict[str, str] = {}
    others: dict[str, str] = {}
    for name, channel, status in repository.templates_by_status(
        session, institution_id=institution.id
    ):
        if status == "approved":
            approved.setdefault(name, channel)
        else:
            others.setdefault(name, status)
    policy = policy_service.institution_policy(session, institution=institution)
    blocked: dict[str, str] = {}
    for cap in policy.channel_caps:
        if cap.limit == 0:
            for channel in cap.channels:
                blocked[channel.value] = f"a cap of 0 per {cap.days} days"
    for hours in policy.hours:
        if hours.start >= hours.end:
            for channel in hours.channels:
                blocked.setdefault(channel.value, "no contact hours")
    return ValidationContext(
        approved_templates=approved,
        other_templates={name: status for name, status in others.items() if name not in approved},
        disabled_channels=frozenset(channel.value for channel in policy.disabled_channels),
        always_blocked=blocked,
    )


@dataclass(frozen=True, slots=True)
class SegmentPreview:
    code: str
    name: str
    matching: int
    assigned: int
    arms: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Preview:
    """How many of today's accounts (of live cases) fall in each segment."""

    accounts: int
    segments: list[SegmentPreview]
    unsegmented: int


def _ages(birth_dates: Sequence[date | None], today: date) -> np.ndarray[Any, Any]:
    ages = np.full(len(birth_dates), np.nan)
    for position, born in enumerate(birth_dates):
        if born is not None:
            years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
            ages[position] = years
    return ages


def facts_columns(raw: Mapping[str, list[Any]], *, today: date) -> dict[str, Any]:
    """Turn the repository's fact lists into the columns ``rules.segment_of`` reads."""
    size = len(raw["account_id"])

    def text(name: str) -> np.ndarray[Any, Any]:
        return np.array([None if v is None else str(v) for v in raw[name]], dtype=object)

    def number(name: str) -> np.ndarray[Any, Any]:
        return np.array([np.nan if v is None else float(v) for v in raw[name]], dtype=float)

    promise = [
        "none" if v is None else ("kept" if v == "partially_kept" else str(v))
        for v in raw["promise_state"]
    ]
    plan = [
        "none" if v is None else ("active" if v == "pending_approval" else str(v))
        for v in raw["plan_state"]
    ]
    return {
        "account_id": np.array(raw["account_id"], dtype=np.int64),
        "case_id": np.array(raw["case_id"], dtype=np.int64),
        "bucket": text("bucket"),
        "days_past_due": number("days_past_due"),
        "balance": number("balance"),
        "product": text("product"),
        "customer_type": text("customer_type"),
        "age": _ages(raw["birth_date"], today) if size else np.array([], dtype=float),
        "region": text("region"),
        "case_state": text("case_state"),
        "grade": text("grade"),
        "propensity": number("propensity"),
        "promise_state": np.array(
            [v if v in {"none", "pending", "kept", "broken"} else None for v in promise],
            dtype=object,
        ),
        "plan_state": np.array(
            [v if v in {"none", "active", "broken", "completed"} else None for v in plan],
            dtype=object,
        ),
    }


def case_facts(
    session: Session,
    *,
    institution_id: int,
    today: date,
    fields: Collection[str],
    case_id: int | None = None,
) -> dict[str, Any]:
    """The fact columns of live cases' accounts, with the contact-log and outbox facts the
    strategy reads (``fields``) filled in per case (zero for a case with none)."""
    columns = facts_columns(
        repository.account_facts(session, institution_id=institution_id, case_id=case_id),
        today=today,
    )
    names = [name for name in repository.CONTACT_FACTS if name in fields]
    if names:
        found = repository.contact_facts(
            session, institution_id=institution_id, names=names, case_id=case_id
        )
        cases = columns["case_id"].tolist()
        for name in names:
            by_case = found.get(name, {})
            columns[name] = np.fromiter(
                (by_case.get(case, 0) for case in cases), dtype=np.float64, count=len(cases)
            )
    return columns


def preview(
    session: Session, *, institution: Institution, compiled: rules.CompiledStrategy
) -> Preview:
    """Segment today's accounts of live cases with a strategy (nothing is written)."""
    today = local_today(institution.timezone)
    columns = case_facts(
        session, institution_id=institution.id, today=today, fields=compiled.fields_used
    )
    size = len(columns["account_id"])
    masks = rules.segment_masks(compiled, columns)
    segments = rules.segment_of(compiled, columns)
    arms = rules.arms_of(compiled, segments, columns["account_id"])
    items: list[SegmentPreview] = []
    for segment, mask in zip(compiled.segments, masks, strict=True):
        assigned = segments == segment.index
        arm_counts: dict[str, int] = {}
        if segment.experiment is not None and assigned.any():
            values, counts = np.unique(arms[assigned].astype(str), return_counts=True)
            arm_counts = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
        items.append(
            SegmentPreview(
                code=segment.code,
                name=segment.name,
                matching=int(mask.sum()),
                assigned=int(assigned.sum()),
                arms=arm_counts,
            )
        )
    return Preview(
        accounts=size,
        segments=items,
        unsegmented=int((segments == rules.NO_SEGMENT).sum()),
    )


@dataclass(frozen=True, slots=True)
class Check:
    """What the editor shows: problems that stop reading, or findings and today's preview."""

    problems: list[Problem]
    findings: list[Finding]
    preview: Preview | None
    compiled: rules.CompiledStrategy | None

    @property
    def can_activate(self) -> bool:
        return not self.problems and not blocking(self.findings)


def check_document(session: Session, *, institution: Institution, document: str) -> Check:
    """Read a document, check it against the institution and preview it on today's accounts."""
    try:
        compiled = rules.compile_strategy(document)
    except DocumentInvalid as invalid:
        return Check(problems=invalid.problems, findings=[], preview=None, compiled=None)
    result = preview(session, institution=institution, compiled=compiled)
    counts = [SegmentCount(item.matching, item.assigned) for item in result.segments]
    findings = validate(compiled, validation_context(session, institution=institution), counts)
    return Check(problems=[], findings=findings, preview=result, compiled=compiled)


# -- activation and promotion ----------------------------------------------------------------


def activate(
    session: Session,
    *,
    institution: Institution,
    strategy: Strategy,
    number: int,
    actor: str,
) -> StrategyVersion:
    """Put a version in force (audited); the one before retires. Refused while errors remain."""
    version = get_version(session, strategy=strategy, number=number)
    if version.status == ACTIVE:
        return version
    if version.status == RETIRED:
        raise StrategyRefused(
            f"version {number} was retired: save it as a new draft to use it again"
        )
    result = check_document(session, institution=institution, document=version.document)
    if not result.can_activate:
        messages = [str(p) for p in result.problems] + [
            (f"line {f.line}: " if f.line else "") + f.message for f in blocking(result.findings)
        ]
        raise StrategyRefused(
            "fix these before activating: " + "; ".join(messages),
            errors=[
                {
                    "line": f.line,
                    "field": f.field or "document",
                    "code": f.code,
                    "message": f.message,
                }
                for f in blocking(result.findings)
            ],
        )
    now = utcnow()
    previous = repository.active_versions(session, institution_id=institution.id)
    for row in previous:
        row.status = RETIRED
        row.retired_at = now
    version.status = ACTIVE
    version.activated_at = now
    version.activated_by = actor
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="strategy.activate",
        object_type="strategy_version",
        object_id=version.id,
        institution_id=institution.id,
        details={
            "strategy": strategy.code,
            "version": version.version,
            "sha256": version.sha256,
            "retired": [row.id for row in previous],
            "warnings": len(result.findings),
        },
    )
    return version


def promote_challenger(
    session: Session,
    *,
    institution: Institution,
    strategy: Strategy,
    segment: str,
    arm: str,
    actor: str,
) -> StrategyVersion:
    """Make a challenger the segment's champion in a new draft (audited); the control stays."""
    base = get_version(session, strategy=strategy)
    document, _ = read_document(base.document)
    promoted = _promoted(document, segment=segment, arm=arm)
    text = dump_document(promoted)
    draft = save_draft(
        session,
        institution=institution,
        strategy=strategy,
        document=text,
        actor=actor,
        note=f"promoted {arm} in {segment}",
    )
    audit.record(
        session,
        actor=actor,
        action="strategy.promote",
        object_type="strategy_version",
        object_id=draft.id,
        institution_id=institution.id,
        details={
            "strategy": strategy.code,
            "from_version": base.version,
            "version": draft.version,
            "segment": segment,
            "arm": arm,
        },
    )
    return draft


def _promoted(document: StrategyDocument, *, segment: str, arm: str) -> StrategyDocument:
    segments = []
    found = False
    for item in document.segments:
        if item.code != segment:
            segments.append(item)
            continue
        experiment = item.experiment
        challenger = next(
            (c for c in (experiment.challengers if experiment else []) if c.code == arm), None
        )
        if experiment is None or challenger is None:
            raise StrategyRefused(
                f"segment {segment} has no challenger '{arm}' to promote",
                errors=[{"field": "arm", "message": "not a challenger of the segment"}],
            )
        found = True
        rest = [c for c in experiment.challengers if c.code != arm]
        segments.append(
            item.model_copy(
                update={
                    "steps": challenger.steps,
                    "experiment": experiment.model_copy(update={"challengers": rest}),
                }
            )
        )
    if not found:
        raise StrategyRefused(
            f"no segment '{segment}'",
            errors=[{"field": "segment", "message": "not a segment of the strategy"}],
        )
    return document.model_copy(update={"segments": segments})


# -- experiment results ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExperimentReport:
    segment: str
    experiment: str
    control: str
    shares: Mapping[str, float]
    arms: list[ArmResult]


def costs_minor(institution: Institution) -> dict[str, int]:
    factor = Decimal(10) ** minor_digits(str(institution.currency))
    return {
        channel: int(cost * factor)
        for channel, cost in settings_of(institution).analytics.contact_cost.items()
    }


def experiment_results(
    session: Session, *, institution: Institution, version: StrategyVersion
) -> list[ExperimentReport]:
    """Each experiment of a version: its arms' figures with intervals, against the champion."""
    compiled = rules.compile_strategy(version.document)
    outcomes = repository.arm_outcomes(
        session,
        institution_id=institution.id,
        version_id=version.id,
        costs=costs_minor(institution),
    )
    by_segment: dict[str, dict[str, tuple[int, ...]]] = {}
    for segment_code, arm_code, *figures in outcomes:
        by_segment.setdefault(segment_code, {})[arm_code] = tuple(figures)
    reports: list[ExperimentReport] = []
    for segment in compiled.segments:
        if segment.experiment is None:
            continue
        shares = {
            code: share / rules.BASIS_POINTS for code, share in rules.arm_shares(segment.experiment)
        }
        arm_rows: list[ArmOutcome] = []
        for arm in (rules.CHAMPION, *(code for code in shares if code != rules.CHAMPION)):
            totals = by_segment.get(segment.code, {}).get(arm, (0,) * 8)
            accounts, recovered, cured, collected, contacts, cost, complaints, blocks = totals
            per_case = (
                repository.collected_per_case(
                    session,
                    institution_id=institution.id,
                    version_id=version.id,
                    segment=segment.code,
                    arm=arm,
                )
                if accounts and accounts <= 200_000
                else None
            )
            arm_rows.append(
                ArmOutcome(
                    arm=arm,
                    accounts=accounts,
                    recovered=recovered,
                    cured=cured,
                    collected=collected,
                    collected_per_account=per_case,
                    contacts=contacts,
                    cost=cost,
                    complaints=complaints,
                    gate_blocks=blocks,
                )
            )
        reports.append(
            ExperimentReport(
                segment=segment.code,
                experiment=segment.experiment.code,
                control=segment.experiment.control.code,
                shares=shares,
                arms=arm_results(arm_rows),
            )
        )
    return reports


# -- events ----------------------------------------------------------------------------------

# Case events (``cases.rules.CaseEvent`` values) and what they are to a strategy.
CASE_EVENTS: Mapping[str, StrategyEvent] = {
    "promise_made": StrategyEvent.PROMISE_MADE,
    "promise_broken": StrategyEvent.PROMISE_BROKEN,
    "promise_kept": StrategyEvent.PAYMENT_RECEIVED,
    "plan_broken": StrategyEvent.PROMISE_BROKEN,
    "dispute_raised": StrategyEvent.DISPUTE,
    "hardship": StrategyEvent.HARDSHIP,
    "complaint": StrategyEvent.COMPLAINT,
    "cease_requested": StrategyEvent.CEASE_REQUEST,
    "delinquency_cleared": StrategyEvent.PAYMENT_RECEIVED,
    "paid_off": StrategyEvent.PAYMENT_RECEIVED,
    "payment_reversed": StrategyEvent.PAYMENT_REVERSED,
}
CURED_CASE_EVENTS = frozenset({"delinquency_cleared", "paid_off"})


@dataclass(frozen=True, slots=True)
class EventApplied:
    state: CaseStrategyState
    reroute: rules.Reroute


def _worst_row(columns: Mapping[str, Any]) -> dict[str, Any]:
    """One case's facts from its accounts: the most delinquent account speaks for the case."""
    size = len(columns["account_id"])
    if size == 0:
        return {}
    days = np.nan_to_num(columns["days_past_due"], nan=-1)
    worst = int(np.argmax(days))
    facts = {
        name: (None if isinstance(v, float) and v != v else v)
        for name, v in ((name, column[worst]) for name, column in columns.items())
    }
    facts["balance"] = float(np.nansum(columns["balance"]))
    return facts


def _segment_case(
    session: Session,
    *,
    institution: Institution,
    compiled: rules.CompiledStrategy,
    case_id: int,
    today: date,
) -> tuple[rules.CompiledSegment | None, str, dict[str, Any]]:
    columns = case_facts(
        session,
        institution_id=institution.id,
        today=today,
        fields=compiled.fields_used,
        case_id=case_id,
    )
    facts = _worst_row(columns)
    if not facts:
        return None, rules.CHAMPION, facts
    segment = rules.segment_for(compiled, facts)
    arm = rules.CHAMPION
    if segment is not None and segment.experiment is not None:
        arm = rules.assign_arm(int(facts["account_id"]), segment.experiment)
    return segment, arm, facts


def apply_event(
    session: Session,
    *,
    institution: Institution,
    case_id: int,
    event: StrategyEvent,
    cured: bool = False,
    now: datetime | None = None,
) -> EventApplied | None:
    """Re-route a case at once by the active strategy's event rules, and record its new step."""
    version = repository.active_version(session, institution_id=institution.id)
    if version is None:
        return None
    case = repository.live_case(session, institution_id=institution.id, case_id=case_id)
    if case is None:
        return None
    now = now or utcnow()
    today = local_today(institution.timezone, now=now)
    compiled = rules.compile_strategy(version.document)
    state = repository.case_state(session, institution_id=institution.id, case_id=case_id)
    broken = (state.broken_promises if state else 0) + (
        1 if event is StrategyEvent.PROMISE_BROKEN else 0
    )
    if event is StrategyEvent.PAYMENT_RECEIVED and not cured:
        broken = 0
    reroute = rules.route_event(
        compiled,
        event,
        rules.EventFacts(
            as_of=today,
            cured=cured,
            promise_due=(
                repository.pending_promise_due(
                    session, institution_id=institution.id, case_id=case_id
                )
                if event is StrategyEvent.PROMISE_MADE
                else None
            ),
            broken_in_a_row=broken,
        ),
    )
    segment_code = state.segment if state else None
    arm = state.arm if state else rules.CHAMPION
    step_code: str | None = reroute.step
    reason = reroute.reason
    reason_code = reroute.reason_code
    reason_params: dict[str, Any] = dict(reroute.reason_params)
    entered_on = state.entered_on if state else today
    # A state written under another version names segments this one may not have.
    stale = state is not None and state.strategy_version_id != version.id
    if state is None or stale or reroute.action == "reevaluate":
        segment, arm, _ = _segment_case(
            session, institution=institution, compiled=compiled, case_id=case_id, today=today
        )
        if segment is None:
            return None
        if segment.code != segment_code or stale:
            entered_on = today
        segment_code = segment.code
        if reroute.action == "reevaluate":
            step = rules.step_for(
                compiled,
                segment,
                rules.CaseFacts(days_on_path=(today - entered_on).days, arm=arm),
            )
            step_code = step.code if step else None
            reason = f"{reroute.reason}; {step.reason}" if step else reroute.reason
            if step is not None:
                reason_params["then"] = {
                    "code": step.reason_code,
                    "params": dict(step.reason_params),
                }
    if event is StrategyEvent.PROMISE_BROKEN and not reroute.next_level:
        triggered = rules.step_for_event(compiled, segment_code or "", event, arm)
        if triggered is not None:
            step_code = triggered.code
            reason = f"{reroute.reason}; {triggered.reason}"
            reason_params["then"] = {
                "code": triggered.reason_code,
                "params": dict(triggered.reason_params),
            }
    assert segment_code is not None
    if state is None:
        state = CaseStrategyState(
            institution_id=institution.id,
            case_id=case_id,
            strategy_version_id=version.id,
            segment=segment_code,
            arm=arm,
            entered_on=entered_on,
            reason="",
            as_of=today,
            updated_at=now,
        )
        session.add(state)
    state.strategy_version_id = version.id
    state.segment = segment_code
    state.arm = arm
    state.entered_on = entered_on
    state.step = step_code
    state.step_on = today
    state.paused_until = reroute.paused_until
    state.contact_stopped = reroute.stop_contact
    state.broken_promises = broken
    state.reason = reason[:255]
    state.reason_code = reason_code
    state.reason_params = reason_params
    state.source = event.value
    state.as_of = today
    state.updated_at = now
    session.add(
        CaseStrategyStep(
            institution_id=institution.id,
            case_id=case_id,
            strategy_version_id=version.id,
            segment=segment_code,
            arm=arm,
            step=step_code,
            reason=reason[:255],
            reason_code=reason_code,
            reason_params=reason_params,
            source=event.value,
            as_of=today,
            at=now,
        )
    )
    session.flush()
    return EventApplied(state=state, reroute=reroute)


def apply_case_event(
    session: Session, *, institution: Institution, case_id: int, case_event: str
) -> EventApplied | None:
    """Re-route a case for a case event (``cases.rules.CaseEvent`` value) if it is one."""
    event = CASE_EVENTS.get(case_event)
    if event is None:
        return None
    return apply_event(
        session,
        institution=institution,
        case_id=case_id,
        event=event,
        cured=case_event in CURED_CASE_EVENTS,
    )


def reevaluate_paid(session: Session, *, institution: Institution) -> int:
    """Re-route every live case paid since its state was written (payment received)."""
    case_ids = repository.cases_paid_since_their_state(session, institution_id=institution.id)
    for case_id in case_ids:
        apply_event(
            session,
            institution=institution,
            case_id=case_id,
            event=StrategyEvent.PAYMENT_RECEIVED,
        )
    return len(case_ids)


@dataclass(frozen=True, slots=True)
class CaseStrategyView:
    state: CaseStrategyState | None
    version: StrategyVersion | None
    history: list[CaseStrategyStep]


def case_strategy(session: Session, *, institution_id: int, case_id: int) -> CaseStrategyView:
    """Where a case stands on its strategy, and its step history."""
    state = repository.case_state(session, institution_id=institution_id, case_id=case_id)
    version = session.get(StrategyVersion, state.strategy_version_id) if state else None
    return CaseStrategyView(
        state=state,
        version=version,
        history=repository.case_steps(session, institution_id=institution_id, case_id=case_id),
    )


def reasons_on(
    session: Session, *, institution_id: int, case_ids: Collection[int], as_of: date
) -> dict[int, tuple[str, dict[str, Any]]]:
    """Why each case was on its step on a day: the reason code and values of its step then."""
    return repository.reasons_on(
        session, institution_id=institution_id, case_ids=case_ids, as_of=as_of
    )


# -- the daily cycle -------------------------------------------------------------------------

NO_SEGMENT_REASON = "no segment"
# The fields of a case state the cycle decides (a row is rewritten only when one differs).
STATE_FIELDS = (
    "strategy_version_id",
    "segment",
    "arm",
    "step",
    "entered_on",
    "paused_until",
    "contact_stopped",
    "reason",
    "reason_code",
    "reason_params",
)


@dataclass(frozen=True, slots=True)
class ActiveStrategy:
    """The institution's version in force, compiled once."""

    version: StrategyVersion
    label: str
    compiled: rules.CompiledStrategy


def active_strategy(session: Session, *, institution_id: int) -> ActiveStrategy | None:
    """The active version, compiled (None when the institution has none in force)."""
    version = repository.active_version(session, institution_id=institution_id)
    if version is None:
        return None
    strategy = session.get(Strategy, version.strategy_id)
    label = f"{strategy.code if strategy else version.strategy_id} v{version.version}"
    return ActiveStrategy(
        version=version, label=label, compiled=rules.compile_strategy(version.document)
    )


@dataclass(frozen=True, slots=True)
class CycleAssignment:
    """What the day's bulk assignment did: each live case's segment, and the counts."""

    strategy: ActiveStrategy
    segment_by_case: Mapping[int, str]
    counts: Mapping[str, Any]


def case_columns(columns: Mapping[str, Any]) -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    """One row per case from its accounts' rows: the most delinquent account (then the lowest
    id) speaks for the case, its balance is the sum of the case's balances."""
    case_ids = columns["case_id"]
    if len(case_ids) == 0:
        return dict(columns), case_ids
    days = np.nan_to_num(columns["days_past_due"], nan=-1.0)
    order = np.lexsort((columns["account_id"], -days, case_ids))
    ordered = case_ids[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    lead = order[first]
    _, inverse = np.unique(case_ids, return_inverse=True)
    balance = np.bincount(inverse, weights=np.nan_to_num(columns["balance"], nan=0.0))
    rows = {name: column[lead] for name, column in columns.items()}
    rows["balance"] = balance
    return rows, rows["case_id"]


def _days_on_path(entered: Sequence[date], as_of: date) -> np.ndarray[Any, Any]:
    ordinals = np.fromiter((day.toordinal() for day in entered), dtype=np.int64, count=len(entered))
    return (as_of.toordinal() - ordinals).astype(np.float64)


def _path_reason(
    step: rules.Step | None, segment: str, arm: str, days: int
) -> tuple[str, str, dict[str, Any]]:
    """The reason of a case's place on its path: English text, code and values."""
    if step is None:
        return (
            f"segment {segment}, arm {arm}: day {days} on the path, before its first step",
            "before_path",
            {"segment": segment, "arm": arm, "day": days},
        )
    if step.is_exit:
        return step.reason, step.reason_code, dict(step.reason_params)
    return (
        f"segment {segment}, arm {arm}: day {days} on the path, "
        f"step {step.code} from day {step.day}",
        "path",
        rules.path_params(segment, arm, days, step),
    )


def assign_cases(
    session: Session, *, institution: Institution, as_of: date, now: datetime
) -> CycleAssignment | None:
    """Put every live case on the active strategy for a day, in bulk (None without one).

    Segments, experiment arms and steps are computed on columns; ``case_strategy_states``
    gets one insert for new cases and one update for the cases whose placement changed, and
    each step change a history row. A case held by an event (contact stopped, or paused until
    a later day) keeps its step and reason. Running the same day again writes nothing.
    """
    active = active_strategy(session, institution_id=institution.id)
    if active is None:
        return None
    compiled = active.compiled
    version_id = active.version.id
    columns, case_ids = case_columns(
        case_facts(session, institution_id=institution.id, today=as_of, fields=compiled.fields_used)
    )
    size = len(case_ids)
    segments = rules.segment_of(compiled, columns) if size else np.array([], dtype=np.int64)
    arms = (
        rules.arms_of(compiled, segments, columns["account_id"])
        if size
        else np.array([], dtype=object)
    )
    codes = [compiled.segments[index].code if index >= 0 else "" for index in segments.tolist()]
    existing = repository.case_states(session, institution_id=institution.id)
    # Days on the path count from the day the case entered its segment (under this version).
    entered: list[date] = []
    for case_id, code in zip(case_ids.tolist(), codes, strict=True):
        old = existing.get(case_id)
        if old is not None and old[2] == version_id and old[3] == code:
            entered.append(old[6])
        else:
            entered.append(as_of)
    days = _days_on_path(entered, as_of)
    steps = (
        rules.step_indexes(compiled, segments, columns, days_on_path=days, arms=arms)
        if size
        else np.array([], dtype=np.int64)
    )
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    counts: dict[str, int] = {"held": 0, "event_steps_kept": 0, "no_segment": 0, "no_step": 0}
    event_steps = rules.event_step_codes(compiled)
    for position, case_id in enumerate(case_ids.tolist()):
        code = codes[position]
        arm = str(arms[position])
        old = existing.get(case_id)
        held = old is not None and (bool(old[9]) or (old[8] is not None and old[8] > as_of))
        index = int(steps[position]) if code else -1
        step = compiled.steps[index] if index >= 0 else None
        # A step an event chose (an escalation, a skip-trace) stays until the segment's exit
        # condition takes the case, it leaves the segment, or the next event moves it.
        kept = (
            old is not None
            and not held
            and old[12] != "cycle"
            and old[2] == version_id
            and old[3] == code
            and (code, old[5]) in event_steps
            and not (step is not None and step.is_exit)
        )
        if not code:
            counts["no_segment"] += 1
            step_code, arm = None, rules.CHAMPION
            reason, reason_code, reason_params = NO_SEGMENT_REASON, "no_segment", {}
        elif held or kept:
            assert old is not None
            counts["held" if held else "event_steps_kept"] += 1
            step_code, reason, reason_code, reason_params = old[5], old[11], old[13], old[14]
        else:
            if step is None:
                counts["no_step"] += 1
            step_code = step.code if step else None
            reason, reason_code, reason_params = _path_reason(step, code, arm, int(days[position]))
        values = {
            "strategy_version_id": version_id,
            "segment": code,
            "arm": arm,
            "step": step_code,
            "entered_on": entered[position],
            "paused_until": old[8] if held and old is not None else None,
            "contact_stopped": bool(old[9]) if held and old is not None else False,
            "reason": reason[:255],
            "reason_code": reason_code or "",
            "reason_params": dict(reason_params or {}),
        }
        if old is None:
            inserts.append(
                {
                    **values,
                    "institution_id": institution.id,
                    "case_id": case_id,
                    "step_on": as_of if step_code else None,
                    "broken_promises": 0,
                    "source": "cycle",
                    "as_of": as_of,
                    "updated_at": now,
                }
            )
        else:
            before = dict(
                zip(
                    STATE_FIELDS,
                    (
                        old[2],
                        old[3],
                        old[4],
                        old[5],
                        old[6],
                        old[8],
                        bool(old[9]),
                        old[11],
                        old[13] or "",
                        dict(old[14] or {}),
                    ),
                    strict=True,
                )
            )
            if before == values:
                continue
            changed_step = old[5] != step_code
            updates.append(
                {
                    **values,
                    "id": old[1],
                    "step_on": as_of if changed_step else old[7],
                    "source": old[12] if held or kept else "cycle",
                    "as_of": as_of,
                    "updated_at": now,
                }
            )
            if not changed_step:
                continue
        history.append(
            {
                "institution_id": institution.id,
                "case_id": case_id,
                "strategy_version_id": version_id,
                "segment": code,
                "arm": arm,
                "step": step_code,
                "reason": reason[:255],
                "reason_code": reason_code or "",
                "reason_params": dict(reason_params or {}),
                "source": "cycle",
                "as_of": as_of,
                "at": now,
            }
        )
    repository.add_case_states(session, inserts)
    repository.update_case_states(session, updates)
    repository.add_case_steps(session, history)
    segment_counts: dict[str, int] = {}
    for code in codes:
        segment_counts[code or NO_SEGMENT_REASON] = (
            segment_counts.get(code or NO_SEGMENT_REASON, 0) + 1
        )
    return CycleAssignment(
        strategy=active,
        segment_by_case=dict(zip(case_ids.tolist(), codes, strict=True)),
        counts={
            "strategy": active.label,
            "states_new": len(inserts),
            "states_changed": len(updates),
            "step_changes": len(history),
            **counts,
            "segments": dict(sorted(segment_counts.items())),
        },
    )
