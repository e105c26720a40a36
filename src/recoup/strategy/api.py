"""The strategy API: strategies and versions, checks with findings, activation, experiments,
and a case's current step."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.institutions import repository as institutions
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated
from recoup.models.cases import Case
from recoup.models.institution import Institution
from recoup.models.strategy import Strategy, StrategyVersion
from recoup.strategy import repository, service
from recoup.strategy.experiments import Interval
from recoup.strategy.schemas import (
    ArmResultRead,
    CaseStepRead,
    CaseStrategyRead,
    CheckRead,
    DocumentCheck,
    DraftUpdate,
    ExperimentRead,
    FindingRead,
    IntervalRead,
    PreviewRead,
    ProblemRead,
    PromoteRequest,
    SegmentPreviewRead,
    StrategyCreate,
    StrategyDetail,
    StrategyRead,
    VersionDetail,
    VersionRead,
)

router = APIRouter(prefix="/api/v1", tags=["strategies"])

READ = "strategy:read"
MANAGE = "strategy:manage"
CASES_READ = "cases:read"
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]


def _institution(session: SessionDep, principal: Principal) -> Institution:
    return institutions.require_callers(session, principal.institution_id, what="strategies")


def version_read(version: StrategyVersion) -> VersionRead:
    return VersionRead(
        id=version.id,
        version=version.version,
        status=version.status,
        sha256=version.sha256,
        author=version.author,
        note=version.note,
        created_at=version.created_at,
        activated_at=version.activated_at,
        activated_by=version.activated_by,
    )


def _strategy_read(session: SessionDep, strategy: Strategy) -> StrategyRead:
    versions = repository.versions(session, strategy_id=strategy.id)
    active = next((v for v in versions if v.status == service.ACTIVE), None)
    return StrategyRead(
        id=strategy.id,
        code=strategy.code,
        name=strategy.name,
        preset=strategy.preset,
        created_by=strategy.created_by,
        latest=version_read(versions[0]) if versions else None,
        active=version_read(active) if active else None,
    )


def _detail(session: SessionDep, strategy: Strategy) -> StrategyDetail:
    summary = _strategy_read(session, strategy)
    return StrategyDetail(
        **summary.model_dump(),
        versions=[version_read(v) for v in repository.versions(session, strategy_id=strategy.id)],
    )


def check_read(check: service.Check) -> CheckRead:
    """The API shape of a document check (also what the editor page shows)."""
    preview = check.preview
    return CheckRead(
        can_activate=check.can_activate,
        problems=[
            ProblemRead(line=p.line, field=p.field or "document", message=p.message)
            for p in check.problems
        ],
        findings=[
            FindingRead(
                severity=f.severity.value,
                code=f.code,
                line=f.line,
                field=f.field,
                message=f.message,
                params=dict(f.params),
            )
            for f in check.findings
        ],
        preview=(
            PreviewRead(
                accounts=preview.accounts,
                unsegmented=preview.unsegmented,
                segments=[
                    SegmentPreviewRead(
                        code=s.code,
                        name=s.name,
                        matching=s.matching,
                        assigned=s.assigned,
                        arms=dict(s.arms),
                    )
                    for s in preview.segments
                ],
            )
            if preview
            else None
        ),
    )


def _interval(interval: Interval) -> IntervalRead:
    return IntervalRead(value=interval.value, low=interval.low, high=interval.high)


def experiment_read(report: service.ExperimentReport) -> ExperimentRead:
    arms = []
    for arm in report.arms:
        arms.append(
            ArmResultRead(
                arm=arm.arm,
                share=report.shares.get(arm.arm, 0.0),
                accounts=arm.accounts,
                recovery_rate=_interval(arm.recovery_rate),
                cure_rate=_interval(arm.cure_rate),
                collected_per_account=_interval(arm.collected_per_account),
                contacts_per_account=arm.contacts_per_account,
                cost_per_collected=arm.cost_per_collected,
                complaints=arm.complaints,
                gate_blocks=arm.gate_blocks,
                difference=_interval(arm.difference) if arm.difference else None,
                p_value=arm.p_value,
                significance=arm.significance.value,
                still_needed=arm.still_needed,
            )
        )
    return ExperimentRead(segment=report.segment, experiment=report.experiment, arms=arms)


@router.get(
    "/strategies",
    response_model=Paginated[StrategyRead],
    dependencies=[Depends(authorize(READ))],
)
def list_strategies(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageNumber = 1,
    size: PageSize = 50,
) -> Paginated[StrategyRead]:
    """The institution's strategies, each with its newest and its active version."""
    institution = _institution(session, principal)
    result = service.list_strategies(
        session, institution_id=institution.id, page=PageRequest(page, size)
    )
    return Paginated[StrategyRead].of(result, lambda row: _strategy_read(session, row))


@router.post(
    "/strategies",
    response_model=StrategyDetail,
    status_code=201,
    dependencies=[Depends(authorize(MANAGE))],
)
def create_strategy(
    body: StrategyCreate, principal: CurrentPrincipal, session: SessionDep
) -> StrategyDetail:
    """Start a strategy from a preset (``consumer_finance``, ``commercial_bank``) or a document."""
    institution = _institution(session, principal)
    strategy, _ = service.create_strategy(
        session,
        institution=institution,
        code=body.code,
        name=body.name,
        preset=body.preset,
        document=body.document,
        actor=principal.actor,
    )
    return _detail(session, strategy)


@router.post("/strategies/check", response_model=CheckRead, dependencies=[Depends(authorize(READ))])
def check_document(
    body: DocumentCheck, principal: CurrentPrincipal, session: SessionDep
) -> CheckRead:
    """Check a document without saving it: problems by line, findings, today's segment counts."""
    institution = _institution(session, principal)
    return check_read(
        service.check_document(session, institution=institution, document=body.document)
    )


@router.get(
    "/strategies/{strategy_id}",
    response_model=StrategyDetail,
    dependencies=[Depends(authorize(READ))],
)
def get_strategy(
    strategy_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> StrategyDetail:
    """One strategy and its versions, newest first."""
    return _detail(session, get_scoped(session, Strategy, strategy_id, principal))


@router.get(
    "/strategies/{strategy_id}/versions/{version}",
    response_model=VersionDetail,
    dependencies=[Depends(authorize(READ))],
)
def get_version(
    strategy_id: RowId, version: VersionNumber, principal: CurrentPrincipal, session: SessionDep
) -> VersionDetail:
    """One version with its document."""
    strategy = get_scoped(session, Strategy, strategy_id, principal)
    row = service.get_version(session, strategy=strategy, number=version)
    return VersionDetail(**version_read(row).model_dump(), document=row.document)


@router.put(
    "/strategies/{strategy_id}/draft",
    response_model=VersionDetail,
    dependencies=[Depends(authorize(MANAGE))],
)
def save_draft(
    strategy_id: RowId, body: DraftUpdate, principal: CurrentPrincipal, session: SessionDep
) -> VersionDetail:
    """Save the edited document as the draft (a new draft follows an active version)."""
    strategy = get_scoped(session, Strategy, strategy_id, principal)
    institution = _institution(session, principal)
    row = service.save_draft(
        session,
        institution=institution,
        strategy=strategy,
        document=body.document,
        note=body.note,
        actor=principal.actor,
    )
    return VersionDetail(**version_read(row).model_dump(), document=row.document)


@router.post(
    "/strategies/{strategy_id}/versions/{version}/activate",
    response_model=VersionRead,
    dependencies=[Depends(authorize(MANAGE))],
)
def activate(
    strategy_id: RowId, version: VersionNumber, principal: CurrentPrincipal, session: SessionDep
) -> VersionRead:
    """Put a version in force (audited); refused with the findings that stop it."""
    strategy = get_scoped(session, Strategy, strategy_id, principal)
    institution = _institution(session, principal)
    row = service.activate(
        session,
        institution=institution,
        strategy=strategy,
        number=version,
        actor=principal.actor,
    )
    return version_read(row)


@router.get(
    "/strategies/{strategy_id}/versions/{version}/experiments",
    response_model=list[ExperimentRead],
    dependencies=[Depends(authorize(READ))],
)
def experiments(
    strategy_id: RowId, version: VersionNumber, principal: CurrentPrincipal, session: SessionDep
) -> list[ExperimentRead]:
    """Each experiment's arms: rates with 95% intervals, against the champion."""
    strategy = get_scoped(session, Strategy, strategy_id, principal)
    institution = _institution(session, principal)
    row = service.get_version(session, strategy=strategy, number=version)
    return [
        experiment_read(report)
        for report in service.experiment_results(session, institution=institution, version=row)
    ]


@router.post(
    "/strategies/{strategy_id}/promote",
    response_model=VersionRead,
    dependencies=[Depends(authorize(MANAGE))],
)
def promote(
    strategy_id: RowId, body: PromoteRequest, principal: CurrentPrincipal, session: SessionDep
) -> VersionRead:
    """Make a challenger its segment's champion in a new draft (audited)."""
    strategy = get_scoped(session, Strategy, strategy_id, principal)
    institution = _institution(session, principal)
    row = service.promote_challenger(
        session,
        institution=institution,
        strategy=strategy,
        segment=body.segment,
        arm=body.arm,
        actor=principal.actor,
    )
    return version_read(row)


@router.get(
    "/cases/{case_id}/strategy",
    response_model=CaseStrategyRead,
    dependencies=[Depends(authorize(CASES_READ))],
)
def case_strategy(
    case_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> CaseStrategyRead:
    """The strategy step a case is on, why, and its step history."""
    case = get_scoped(session, Case, case_id, principal)
    view = service.case_strategy(session, institution_id=case.institution_id, case_id=case.id)
    state = view.state
    return CaseStrategyRead(
        case_id=case.id,
        strategy_version_id=state.strategy_version_id if state else None,
        segment=state.segment if state else None,
        arm=state.arm if state else None,
        step=state.step if state else None,
        reason=state.reason if state else None,
        reason_code=state.reason_code if state else None,
        reason_params=dict(state.reason_params or {}) if state else None,
        paused_until=state.paused_until.isoformat() if state and state.paused_until else None,
        contact_stopped=state.contact_stopped if state else False,
        history=[
            CaseStepRead(
                segment=row.segment,
                arm=row.arm,
                step=row.step,
                reason=row.reason,
                reason_code=row.reason_code,
                reason_params=dict(row.reason_params or {}),
                source=row.source,
                at=row.at,
            )
            for row in view.history
        ],
    )
