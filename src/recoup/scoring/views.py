"""Model pages: the registry, one model's report, comparing two, promoting one, and drift."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse

from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.kit.errors import NotFound
from recoup.models.scoring import AccountScore, ModelState, ModelVersion, ScoringRun
from recoup.scoring import service
from recoup.scoring.monitoring import StabilityThresholds
from recoup.scoring.reasons import Locale, reason_text
from recoup.scoring.spec import RARE_LABEL, ScorecardSpec
from recoup.web import labels
from recoup.web.localization import money
from recoup.web.templating import Flash, Viewer, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

Version = Annotated[str, Path(min_length=1, max_length=64)]
ReadModels = Annotated[Viewer, viewer_with("models:read")]
PromoteModels = Annotated[Viewer, viewer_with("models:promote")]
THRESHOLDS = StabilityThresholds()
RUNS_SHOWN = 30
FEATURE_RUNS_SHOWN = 5
STATE_BADGES = {
    ModelState.champion: "badge-success",
    ModelState.candidate: "badge-warning",
    ModelState.retired: "",
}
TRAIN_COMMAND = "recoup model train --institution CODE --family scorecard"
SCORE_COMMAND = "recoup model score --institution CODE"


def _model_row(model_version: ModelVersion) -> dict[str, Any]:
    metrics = model_version.metrics or {}
    return {
        "version": model_version.version,
        "state": str(model_version.state),
        "state_badge": STATE_BADGES.get(ModelState(model_version.state), ""),
        "family": model_version.family,
        "institution_id": model_version.institution_id,
        "source": model_version.source,
        "target": model_version.target,
        "positive_label": model_version.positive_label,
        "event_is_favourable": model_version.event_is_favourable,
        "auc": metrics.get("auc"),
        "ks": metrics.get("ks"),
        "gini": metrics.get("gini"),
        "brier": metrics.get("brier"),
        "ece": metrics.get("ece"),
        "n_train": metrics.get("n_train"),
        "n_test": metrics.get("n_test"),
        "trained_by": model_version.trained_by,
        "trained_at": model_version.trained_at,
        "promoted_by": model_version.promoted_by,
        "promoted_at": model_version.promoted_at,
        "sha256": model_version.artifact_sha256,
        "data_fingerprint": model_version.data_fingerprint,
    }


def _percent(values: list[float]) -> list[float]:
    return [round(100 * value, 2) for value in values]


def _gains_series(name: str, deciles: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "type": "line", "data": [0.0, *_percent(_cumulative(deciles))]}


def _cumulative(deciles: list[dict[str, Any]]) -> list[float]:
    return [float(row["cumulative_event_share"]) for row in deciles]


def _gains_chart(viewer: Viewer, curves: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """A cumulative gains chart: share of events captured by the top share of the scored rows."""
    points = len(curves[0][1]) if curves else 10
    population = [round(100 * step / points, 1) for step in range(points + 1)]
    return {
        "x": [f"{share:g}%" for share in population],
        "x_name": viewer.text("models.chart.population"),
        "y_name": viewer.text("models.chart.events_captured"),
        "percent": True,
        "series": [
            *(_gains_series(name, deciles) for name, deciles in curves),
            {
                "name": viewer.text("models.chart.random"),
                "type": "line",
                "dashed": True,
                "data": population,
            },
        ],
    }


def _calibration_chart(viewer: Viewer, deciles: list[dict[str, Any]]) -> dict[str, Any]:
    """Predicted against observed event rate per decile."""
    return {
        "x": [str(row["decile"]) for row in deciles],
        "x_name": viewer.text("models.chart.decile"),
        "y_name": viewer.text("models.chart.event_rate"),
        "percent": True,
        "series": [
            {
                "name": viewer.text("models.chart.predicted"),
                "type": "line",
                "data": _percent([float(row["mean_probability"]) for row in deciles]),
            },
            {
                "name": viewer.text("models.chart.observed"),
                "type": "bar",
                "data": _percent([float(row["event_rate"]) for row in deciles]),
            },
        ],
    }


def _lift_chart(viewer: Viewer, deciles: list[dict[str, Any]]) -> dict[str, Any]:
    """Lift per decile and cumulative lift."""
    return {
        "x": [str(row["decile"]) for row in deciles],
        "x_name": viewer.text("models.chart.decile"),
        "y_name": viewer.text("models.chart.lift"),
        "percent": False,
        "series": [
            {
                "name": viewer.text("models.chart.lift"),
                "type": "bar",
                "data": [round(float(row["lift"]), 3) for row in deciles],
            },
            {
                "name": viewer.text("models.chart.cumulative_lift"),
                "type": "line",
                "data": [
                    round(float(row.get("cumulative_lift", row["lift"])), 3) for row in deciles
                ],
            },
        ],
    }


def _can_promote(viewer: Viewer, model_version: ModelVersion) -> bool:
    return (
        viewer.allows("models:promote")
        and viewer.principal is not None
        and model_version.institution_id is not None
        and model_version.institution_id == viewer.principal.institution_id
        and model_version.state != ModelState.champion
    )


def _psi_status(psi: float | None) -> str:
    return "" if psi is None else str(THRESHOLDS.status(psi))


@router.get("/models", response_class=HTMLResponse)
def model_list(viewer: ReadModels, session: SessionDep) -> HTMLResponse:
    """List the registered models with their state and held-out metrics."""
    assert viewer.principal is not None
    versions = service.visible_models(session, principal=viewer.principal)
    context = {"models": [_model_row(item) for item in versions], "train_command": TRAIN_COMMAND}
    return render(viewer, "models/list.html", context, active_nav="models")


@router.get("/models/compare", response_class=HTMLResponse)
def compare_models(
    viewer: ReadModels,
    session: SessionDep,
    a: Annotated[str, Query(max_length=64)] = "",
    b: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """Compare two models: metrics side by side and both gains curves."""
    assert viewer.principal is not None
    versions = service.visible_models(session, principal=viewer.principal)
    compared: list[service.ModelReport] = []
    missing: list[str] = []
    for version in (a, b):
        if not version:
            continue
        try:
            compared.append(
                service.model_report(session, principal=viewer.principal, version=version)
            )
        except NotFound:
            missing.append(version)
    chart = None
    if len(compared) == 2:
        chart = _gains_chart(
            viewer, [(report.model_version.version, report.deciles) for report in compared]
        )
    context = {
        "choices": [item.version for item in versions],
        "a": a,
        "b": b,
        "missing": missing,
        "compared": [_model_row(report.model_version) for report in compared]
        if len(compared) == 2
        else [],
        "gains_chart": chart,
    }
    return render(viewer, "models/compare.html", context, active_nav="models")


@router.get("/models/drift", response_class=HTMLResponse)
def drift(viewer: ReadModels, session: SessionDep) -> HTMLResponse:
    """Show the latest scoring runs, PSI per feature, and the score's PSI over time."""
    assert viewer.principal is not None
    runs = service.scoring_runs(session, principal=viewer.principal, limit=RUNS_SHOWN)
    recent = runs[:FEATURE_RUNS_SHOWN]
    features = sorted({name for run in recent for name in run.feature_psi})
    context = {
        "runs": [_run_row(run) for run in runs],
        "recent": [_run_row(run) for run in recent],
        "features": [
            {
                "name": name,
                "cells": [
                    {
                        "psi": run.feature_psi.get(name),
                        "status": _psi_status(run.feature_psi.get(name)),
                    }
                    for run in recent
                ],
            }
            for name in features
        ],
        "thresholds": THRESHOLDS,
        "psi_chart": _psi_chart(viewer, runs) if runs else None,
        "score_command": SCORE_COMMAND,
    }
    return render(viewer, "models/drift.html", context, active_nav="models")


def _run_row(run: ScoringRun) -> dict[str, Any]:
    return {
        "model_version": run.model_version,
        "as_of": run.as_of,
        "scored_at": run.scored_at,
        "accounts_scored": run.accounts_scored,
        "score_psi": run.score_psi,
        "score_status": _psi_status(run.score_psi),
        "status": run.status,
        "realised_auc": run.realised_auc,
        "realised_ks": run.realised_ks,
    }


def _psi_chart(viewer: Viewer, runs: list[ScoringRun]) -> dict[str, Any]:
    """Score PSI per run date, one line per model version, with the warn and alert levels."""
    ordered = sorted(runs, key=lambda run: (run.as_of, run.scored_at))
    dates = sorted({run.as_of.isoformat() for run in ordered})
    series = []
    for version in dict.fromkeys(run.model_version for run in ordered):
        by_date = {
            run.as_of.isoformat(): run.score_psi for run in ordered if run.model_version == version
        }
        series.append(
            {
                "name": version,
                "type": "line",
                "data": [round(by_date[day], 4) if day in by_date else None for day in dates],
            }
        )
    return {
        "x": dates,
        "x_name": viewer.text("models.drift.as_of"),
        "y_name": "PSI",
        "percent": False,
        "series": series,
        "thresholds": [
            {"name": viewer.text("models.drift.warn"), "value": THRESHOLDS.warn},
            {"name": viewer.text("models.drift.alert"), "value": THRESHOLDS.alert},
        ],
    }


def _bin_words(scorecard: ScorecardSpec | None, locale: str) -> dict[str, list[str]]:
    """Name each scorecard bin from its cut points or categories, in the reader's words."""
    if scorecard is None:
        return {}
    named: dict[str, list[str]] = {}
    for feature in scorecard.features:
        if feature.kind == "numeric":
            edges: list[float | None] = [None, *feature.splits, None]
            regular = [labels.interval(low, high, locale) for low, high in pairwise(edges)]
        else:
            rare = labels.bin_word("rare", locale)
            regular = [
                labels.categories(
                    feature.name,
                    [rare if value == RARE_LABEL else value for value in group],
                    locale,
                )
                for group in feature.groups
            ]
        named[feature.name] = [
            regular[index] if index < len(regular) else labels.bin_word(scorecard_bin.label, locale)
            for index, scorecard_bin in enumerate(feature.bins)
        ]
    return named


@router.get("/models/{version}", response_class=HTMLResponse)
def model_detail(viewer: ReadModels, session: SessionDep, version: Version) -> HTMLResponse:
    """Show one model: metrics, scorecard table, calibration, gains and lift; promote it."""
    assert viewer.principal is not None
    report = service.model_report(session, principal=viewer.principal, version=version)
    summary = report.model.summary
    features: dict[str, list[dict[str, Any]]] = {}
    bin_words = _bin_words(report.model.scorecard, viewer.locale)
    for row in report.scorecard:
        shown = features.setdefault(row.feature, [])
        words = bin_words.get(row.feature, [])
        shown.append(
            {
                "bin": words[len(shown)] if len(shown) < len(words) else row.bin,
                "label": row.bin,
                "count": row.count,
                "event_rate": row.event_rate,
                "woe": row.woe,
                "points": row.points,
            }
        )
    context = {
        "model": _model_row(report.model_version),
        "feature_names": [
            labels.field_name(name, viewer.locale) for name in report.model.feature_names
        ],
        "split": summary.split,
        "training_seconds": summary.training_seconds,
        "scorecard": features,
        "calibration_chart": _calibration_chart(viewer, report.deciles),
        "gains_chart": _gains_chart(viewer, [(report.model_version.version, report.deciles)]),
        "lift_chart": _lift_chart(viewer, report.deciles),
        "can_promote": _can_promote(viewer, report.model_version),
        "compare_choices": [
            item.version
            for item in service.visible_models(session, principal=viewer.principal)
            if item.version != report.model_version.version
        ],
    }
    return render(viewer, "models/detail.html", context, active_nav="models")


@router.post(
    "/models/{version}/promote",
    response_class=HTMLResponse,
    dependencies=[Depends(csrf_protect)],
)
def promote(viewer: PromoteModels, session: SessionDep, version: Version) -> RedirectResponse:
    """Promote a candidate to champion after the browser's confirmation (audited)."""
    assert viewer.principal is not None
    promoted = service.promote_as(session, principal=viewer.principal, version=version)
    return redirect(
        f"/models/{promoted.version}",
        request=viewer.request,
        message=Flash(key="flash.model_promoted", params={"version": promoted.version}),
    )


def account_score_panel(
    viewer: Viewer, session: SessionDep, *, account_id: int
) -> dict[str, Any] | None:
    """Return the account page's score panel in the viewer's language, or None when unscored."""
    assert viewer.principal is not None
    score = service.latest_account_score(session, principal=viewer.principal, account_id=account_id)
    if score is None:
        return None
    return _score_panel(viewer, score, contact_cost=service.contact_cost(session, score=score))


def _priority_formula(viewer: Viewer, score: AccountScore, contact_cost: int | None) -> str | None:
    """Spell out how the priority was computed, for the hover text."""
    if score.priority is None or not contact_cost or not score.channel:
        return None
    channel = viewer.text(f"score.channel.{score.channel}")
    on_uplift = score.priority_basis == "uplift" and score.uplift_recovery is not None
    formula = viewer.text(
        "score.priority_formula_uplift" if on_uplift else "score.priority_formula",
        recovery=money(
            score.uplift_recovery
            if on_uplift and score.uplift_recovery is not None
            else score.expected_recovery,
            score.currency,
            viewer.locale,
        ),
        channel=channel,
        cost=money(contact_cost, score.currency, viewer.locale),
        priority=f"{score.priority:,.1f}",
    )
    if score.priority_basis in {"no_uplift_model", "channel_not_learnt"}:
        why = viewer.text(f"score.priority_basis.{score.priority_basis}", channel=channel)
        return f"{formula} ({why})"
    return formula


def segment_label(viewer: Viewer, segment: str | None) -> str | None:
    """Return a segment name (``early-high-small``) in the viewer's words."""
    parts = segment.split("-") if segment else []
    if len(parts) != 3:
        return segment
    stage, propensity, band = parts
    return " · ".join(
        (
            viewer.text(f"score.stage.{stage}"),
            viewer.text(f"score.propensity.{propensity}"),
            viewer.text(f"score.band.{band}"),
        )
    )


def _score_panel(
    viewer: Viewer, score: AccountScore, *, contact_cost: int | None
) -> dict[str, Any]:
    locale: Locale = "zh" if viewer.locale.startswith("zh") else "en"
    return {
        "probability": score.probability,
        "points": score.points,
        "grade": score.grade,
        "segment": score.segment,
        "segment_label": segment_label(viewer, score.segment),
        "channel": score.channel,
        "priority": score.priority,
        "priority_formula": _priority_formula(viewer, score, contact_cost),
        "expected_recovery": score.expected_recovery,
        "currency": score.currency,
        "model_version": score.model_version,
        "as_of": score.as_of,
        "reasons": [reason_text(code, locale=locale) for code in score.reasons[:3]],
    }
