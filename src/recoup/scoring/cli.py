"""``recoup model train|list|promote|score``: the model registry and scoring runs.

Each command imports the scoring service itself: it brings LightGBM, optbinning,
scikit-learn and pandas, seconds of start-up that every other ``recoup`` command
(and ``--help``) would otherwise pay.
"""

from __future__ import annotations

import getpass
import json
from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.clock import local_today
from recoup.kit.errors import ValidationFailed
from recoup.models import Institution
from recoup.scoring.spec import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_PAYMENT_SHARE,
    FAMILIES,
    Family,
    TrainedModel,
)

app = typer.Typer(help="Train, list, promote and run scoring models.", no_args_is_help=True)

CLI_ACTOR = "cli"


def _family(value: str) -> Family:
    if value == "scorecard":
        return "scorecard"
    if value == "gbm":
        return "gbm"
    raise ValidationFailed(f"--family must be one of {', '.join(FAMILIES)}; got {value!r}")


def _as_of(value: str | None, institution: Institution) -> date:
    """The date given, else today in the institution's time zone (not the server's)."""
    if value is None:
        return local_today(institution.timezone)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"--as-of must be a date like 2025-06-30; got {value!r}") from None


@app.command("train")
def train(
    data: Path | None = typer.Option(
        None, "--data", help="Train on this CSV instead of the portfolio"
    ),
    target: str | None = typer.Option(None, "--target", help="Binary target column of --data"),
    id_column: str | None = typer.Option(None, "--id-column", help="Id column to ignore"),
    date_column: str | None = typer.Option(
        None, "--date-column", help="Date column: hold out the latest rows instead of a random 30%"
    ),
    positive: str | None = typer.Option(
        None, "--positive", help="Target value that is the event (default: the minority class)"
    ),
    family: str = typer.Option("scorecard", "--family", help="scorecard or gbm"),
    seed: int = typer.Option(0, "--seed", help="Random seed of the split and the booster"),
    institution: str | None = typer.Option(
        None, "--institution", help="Institution code (required without --data)"
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Portfolio training date (default today)"
    ),
    horizon_days: int = typer.Option(
        DEFAULT_HORIZON_DAYS, "--horizon-days", help="Days after a snapshot to pay"
    ),
    payment_share: float = typer.Option(
        DEFAULT_PAYMENT_SHARE,
        "--payment-share",
        help="Share of overdue that counts as paying",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object"),
) -> None:
    """Train a model on an external CSV or on an institution's own history, as a candidate."""
    from recoup.scoring import service

    with fail_on_domain_error(), unit_of_work() as session:
        chosen_family = _family(family)
        owner = institutions.require_by_code(session, institution) if institution else None
        if data is not None:
            if target is None:
                raise ValidationFailed("--data needs --target COLUMN naming the binary target")
            outcome = service.train_from_file(
                session,
                path=data,
                target=target,
                family=chosen_family,
                seed=seed,
                positive=positive,
                id_column=id_column,
                date_column=date_column,
                institution_id=owner.id if owner else None,
                actor=CLI_ACTOR,
            )
        else:
            if owner is None:
                raise ValidationFailed("give --data FILE --target COLUMN, or --institution CODE")
            outcome = service.train_from_portfolio(
                session,
                institution=owner,
                as_of=_as_of(as_of, owner),
                family=chosen_family,
                seed=seed,
                horizon_days=horizon_days,
                payment_share=payment_share,
                actor=CLI_ACTOR,
            )
        evaluation = outcome.model.evaluation
        summary = outcome.model.summary
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "auc": evaluation.auc,
                        "ks": evaluation.ks,
                        "gini": evaluation.gini,
                        "brier": evaluation.brier,
                        "ece": evaluation.ece,
                        "n_train": summary.n_train,
                        "n_test": summary.n_test,
                        "family": outcome.model.family,
                        "model_version": outcome.model_version.version,
                        "sha256": outcome.model_version.artifact_sha256,
                        "positive_label": summary.positive_label,
                        "training_seconds": summary.training_seconds,
                        "seed": summary.seed,
                        "calibration": summary.calibration,
                        "notes": list(summary.notes),
                        "warnings": list(summary.warnings),
                        "dropped_columns": {
                            dropped.name: dropped.reason for dropped in summary.dropped_columns
                        },
                    }
                )
            )
            return
        ece = f"{evaluation.ece:.4f}" if evaluation.ece is not None else "—"
        console.print(
            f"trained [bold]{outcome.model_version.version}[/] "
            f"({outcome.model.family}, candidate): "
            f"AUC {evaluation.auc:.4f}  KS {evaluation.ks:.4f}  Gini {evaluation.gini:.4f}  "
            f"Brier {evaluation.brier:.4f}  ECE {ece}  on {summary.n_test:,} held-out rows "
            f"({summary.n_train:,} trained, {summary.training_seconds:.1f}s)"
        )
        print_training_report(outcome.model)
        if outcome.model.scorecard is not None:
            table = Table("feature", "bin", "count", "event rate", "WOE", "points")
            for row in outcome.model.scorecard.table():
                table.add_row(
                    row.feature,
                    row.bin,
                    f"{row.count:,}",
                    f"{row.event_rate:.3f}",
                    f"{row.woe:+.3f}",
                    f"{row.points:.1f}",
                )
            console.print(table)


def print_training_report(model: TrainedModel) -> None:
    """Print what training made of the columns, any warnings, and calibration by decile."""
    summary = model.summary
    for dropped in summary.dropped_columns:
        console.print(f"left out {dropped.name}: {dropped.reason}", markup=False, soft_wrap=True)
    for note in summary.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    for warning in summary.warnings:
        console.print(f"warning: {warning}", markup=False, style="yellow", soft_wrap=True)
    calibration = Table(
        "decile",
        "rows",
        "events",
        "predicted",
        "actual",
        "predicted ÷ actual",
        title="held-out calibration (highest predicted probability first)",
    )
    for row in model.evaluation.deciles:
        ratio = row.mean_probability / row.event_rate if row.event_rate else float("nan")
        calibration.add_row(
            str(row.decile),
            f"{row.count:,}",
            f"{row.events:,}",
            f"{row.mean_probability:.1%}",
            f"{row.event_rate:.1%}",
            f"{ratio:.2f}",
        )
    console.print(calibration)


@app.command("list")
def list_models(
    institution: str | None = typer.Option(None, "--institution", help="Only this institution"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line"),
) -> None:
    """List registered model versions, newest first."""
    from recoup.scoring import service

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution) if institution else None
        versions = service.list_models(session, institution_id=owner.id if owner else None)
        codes = {item.id: item.code for item in institutions.list_all(session)}
        if as_json:
            for item in versions:
                typer.echo(
                    json.dumps(
                        {
                            "model_version": item.version,
                            "state": item.state,
                            "family": item.family,
                            "target": item.target,
                            "seed": item.metrics.get("seed"),
                            "institution": codes.get(item.institution_id or -1),
                            "auc": item.metrics.get("auc"),
                            "ks": item.metrics.get("ks"),
                            "trained_at": item.trained_at.isoformat(),
                            "trained_by": item.trained_by,
                            "source": item.source,
                        }
                    )
                )
            return
        table = Table(
            "version",
            "state",
            "family",
            "target",
            "seed",
            "institution",
            "AUC",
            "KS",
            "trained",
            "source",
        )
        for item in versions:
            seed = item.metrics.get("seed")
            table.add_row(
                item.version,
                str(item.state),
                item.family,
                item.target,
                str(seed) if seed is not None else "—",
                codes.get(item.institution_id or -1, "—"),
                f"{item.metrics.get('auc', float('nan')):.4f}",
                f"{item.metrics.get('ks', float('nan')):.4f}",
                item.trained_at.strftime("%Y-%m-%d %H:%M"),
                item.source,
            )
        console.print(table if versions else "no models yet: run `recoup model train`")


@app.command("promote")
def promote(
    version: str = typer.Argument(..., help="Model version to make champion"),
    actor: str | None = typer.Option(
        None,
        "--actor",
        help="Username of the manager or data scientist promoting it; checked for "
        "models:promote and named in the audit trail (default: the CLI operator)",
    ),
) -> None:
    """Make a model version the champion of its institution (audited)."""
    from recoup.scoring import service

    with fail_on_domain_error(), unit_of_work() as session:
        if actor is None:
            promoted = service.promote_model(session, version=version, actor=_operator())
        else:
            promoted = service.promote_by_user(session, username=actor, version=version)
        console.print(
            f"{promoted.version} is now the champion (promoted by {promoted.promoted_by})"
        )


def _operator() -> str:
    # Someone with shell access to the server; named by their OS account in the audit trail.
    return f"cli:{getpass.getuser()}"


@app.command("realised")
def realised(
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    as_of: str = typer.Option(..., "--as-of", help="Date the scores were made"),
    version: str = typer.Option(..., "--version", help="Model version that made them"),
    horizon_days: int = typer.Option(
        DEFAULT_HORIZON_DAYS, "--horizon-days", help="Days after scoring to pay"
    ),
    payment_share: float = typer.Option(
        DEFAULT_PAYMENT_SHARE, "--payment-share", help="Share of overdue that counts"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
) -> None:
    """Measure realised AUC/KS of past scores once their outcome window has passed."""
    from recoup.scoring import service

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        result = service.realised_performance(
            session,
            institution=owner,
            as_of=_as_of(as_of, owner),
            version=version,
            horizon_days=horizon_days,
            payment_share=payment_share,
        )
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "model_version": result.model_version,
                        "as_of": result.as_of.isoformat(),
                        "horizon_days": result.horizon_days,
                        "payment_share": result.payment_share,
                        "count": result.count,
                        "events": result.events,
                        "auc": result.auc,
                        "ks": result.ks,
                    }
                )
            )
            return
        measured = (
            f"AUC {result.auc:.4f}  KS {result.ks:.4f}"
            if result.auc is not None and result.ks is not None
            else "AUC/KS undefined (every account had the same outcome)"
        )
        console.print(
            f"{result.model_version} as of {result.as_of}: {measured} on {result.count:,} "
            f"accounts, {result.events:,} paid within {result.horizon_days} days"
        )


@app.command("score")
def score(
    institution: str | None = typer.Option(None, "--institution", help="Institution code"),
    as_of: str | None = typer.Option(None, "--as-of", help="Scoring date (default today)"),
    version: str | None = typer.Option(None, "--version", help="Model version (default champion)"),
    data: Path | None = typer.Option(
        None, "--data", help="Score the rows of this CSV instead (needs --version and --out)"
    ),
    out: Path | None = typer.Option(None, "--out", help="CSV to write the scores of --data to"),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON"),
) -> None:
    """Score an institution's delinquent accounts, or any CSV with --data, --version and --out."""
    from recoup.scoring import service

    with fail_on_domain_error(), unit_of_work() as session:
        if data is not None:
            if version is None or out is None:
                raise ValidationFailed("--data needs --version VERSION and --out FILE")
            scored = service.score_file(session, path=data, version=version, out=out)
            if as_json:
                typer.echo(
                    json.dumps(
                        {
                            "model_version": scored.model_version,
                            "rows": scored.rows,
                            "out": str(scored.out),
                            "grades": scored.grades,
                        }
                    )
                )
                return
            console.print(
                f"scored {scored.rows:,} rows of {data.name} with {scored.model_version}; "
                f"grades {scored.grades}; written to {scored.out}",
                markup=False,
            )
            return
        if institution is None:
            raise ValidationFailed(
                "give --institution CODE, or --data FILE --version VERSION --out FILE"
            )
        owner = institutions.require_by_code(session, institution)
        run = service.score_delinquent_accounts(
            session, institution=owner, as_of=_as_of(as_of, owner), version=version
        )
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "model_version": run.model_version,
                        "as_of": run.as_of.isoformat(),
                        "accounts_scored": run.accounts_scored,
                        "grades": run.grades,
                        "expected_recovery": run.expected_recovery,
                        "drift": str(run.drift),
                        "segments": run.segments,
                    }
                )
            )
            return
        console.print(
            f"scored {run.accounts_scored:,} delinquent accounts of {owner.code} as of {run.as_of} "
            f"with {run.model_version}; grades {run.grades}; drift {run.drift}"
        )
