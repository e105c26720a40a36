"""The scoring API: model registry, promotion, account scores and drift of scoring runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from recoup.deps import SessionDep
from recoup.identity.dependencies import Principal, authorize
from recoup.kit.errors import NotFound
from recoup.models import scoring as models
from recoup.scoring import schemas, service
from recoup.scoring.reasons import reason_text

router = APIRouter(prefix="/api/v1", tags=["scoring"])

Version = Annotated[str, Path(min_length=1, max_length=64)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ReadModels = Annotated[Principal, Depends(authorize("models:read"))]
PromoteModels = Annotated[Principal, Depends(authorize("models:promote"))]
ReadAccounts = Annotated[Principal, Depends(authorize("accounts:read"))]


def model_version_schema(model_version: models.ModelVersion) -> schemas.ModelVersion:
    """Return the API form of a registered model."""
    metrics = model_version.metrics or {}
    return schemas.ModelVersion(
        version=model_version.version,
        state=str(model_version.state),
        family=model_version.family,
        institution_id=model_version.institution_id,
        source=model_version.source,
        target=model_version.target,
        positive_label=model_version.positive_label,
        event_is_favourable=model_version.event_is_favourable,
        auc=metrics.get("auc"),
        ks=metrics.get("ks"),
        gini=metrics.get("gini"),
        brier=metrics.get("brier"),
        ece=metrics.get("ece"),
        n_train=metrics.get("n_train"),
        n_test=metrics.get("n_test"),
        trained_by=model_version.trained_by,
        trained_at=model_version.trained_at,
        promoted_by=model_version.promoted_by,
        promoted_at=model_version.promoted_at,
        sha256=model_version.artifact_sha256,
    )


def account_score_schema(score: models.AccountScore) -> schemas.AccountScore:
    """Return the API form of an account's score, its reasons worded in both languages."""
    return schemas.AccountScore(
        account_id=score.account_id,
        model_version=score.model_version,
        as_of=score.as_of,
        scored_at=score.scored_at,
        probability=score.probability,
        points=score.points,
        grade=score.grade,
        segment=score.segment,
        channel=score.channel,
        priority=score.priority,
        expected_recovery=score.expected_recovery,
        currency=score.currency,
        reasons=[
            schemas.Reason(
                code=code, zh=reason_text(code, locale="zh"), en=reason_text(code, locale="en")
            )
            for code in score.reasons
        ],
    )


@router.get("/models", response_model=list[schemas.ModelVersion])
def list_models(principal: ReadModels, session: SessionDep) -> list[schemas.ModelVersion]:
    """List the models of the caller's institution and shared ones, newest first."""
    return [
        model_version_schema(item) for item in service.visible_models(session, principal=principal)
    ]


@router.get("/models/{version}", response_model=schemas.ModelVersionDetail)
def model_detail(
    principal: ReadModels, session: SessionDep, version: Version
) -> schemas.ModelVersionDetail:
    """Show one model: metrics, scorecard table, calibration and gains by decile."""
    report = service.model_report(session, principal=principal, version=version)
    summary = report.model.summary
    return schemas.ModelVersionDetail(
        **model_version_schema(report.model_version).model_dump(),
        features=list(report.model.feature_names),
        data_fingerprint=report.model_version.data_fingerprint,
        split=summary.split,
        training_seconds=summary.training_seconds,
        scorecard=[
            schemas.ScorecardRow(
                feature=row.feature,
                bin=row.bin,
                count=row.count,
                event_rate=row.event_rate,
                woe=row.woe,
                points=row.points,
            )
            for row in report.scorecard
        ],
        deciles=[schemas.DecileRow(**row) for row in report.deciles],
    )


@router.post("/models/{version}/promote", response_model=schemas.ModelVersion)
def promote_model(
    principal: PromoteModels, session: SessionDep, version: Version
) -> schemas.ModelVersion:
    """Make a model of the caller's institution its champion (audited)."""
    return model_version_schema(service.promote_as(session, principal=principal, version=version))


@router.get("/accounts/{account_id}/score", response_model=schemas.AccountScore)
def account_score(
    principal: ReadAccounts, session: SessionDep, account_id: RowId
) -> schemas.AccountScore:
    """Show an account's latest score with its reasons (agents: their assigned accounts)."""
    score = service.latest_account_score(session, principal=principal, account_id=account_id)
    if score is None:
        raise NotFound(f"account {account_id} has not been scored yet")
    return account_score_schema(score)


@router.get("/scoring/runs", response_model=list[schemas.ScoringRun])
def scoring_runs(
    principal: ReadModels,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[schemas.ScoringRun]:
    """List the institution's scoring runs with score and feature PSI, newest first."""
    return [
        schemas.ScoringRun(
            model_version=run.model_version,
            as_of=run.as_of,
            scored_at=run.scored_at,
            accounts_scored=run.accounts_scored,
            score_psi=run.score_psi,
            feature_psi=run.feature_psi,
            characteristic_shift=run.characteristic_shift,
            status=run.status,
            realised_auc=run.realised_auc,
            realised_ks=run.realised_ks,
            realised_count=run.realised_count,
            realised_horizon_days=run.realised_horizon_days,
        )
        for run in service.scoring_runs(session, principal=principal, limit=limit)
    ]
