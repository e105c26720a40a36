"""Scoring orchestration: train and register models, promote a champion, score accounts.

Training (LightGBM, optbinning, scikit-learn) is imported by the functions that train:
the web app and every CLI command import this module, and those libraries cost seconds.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Select
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.audit import service as audit
from recoup.db import worker_url
from recoup.identity import repository as identity_repository
from recoup.identity.principal import Principal, principal_for_user
from recoup.identity.scoping import get_scoped
from recoup.institutions.settings import settings_of
from recoup.kit import events, processes
from recoup.kit.clock import utcnow
from recoup.kit.errors import NotFound, PermissionDenied, ValidationFailed
from recoup.models.account import Account
from recoup.models.institution import Institution
from recoup.models.scoring import AccountScore, ModelState, ModelVersion, ScoringRun
from recoup.scoring import repository, rules
from recoup.scoring.artifacts import content_sha256, dump_model, load_model
from recoup.scoring.artifacts import model_version as version_id
from recoup.scoring.errors import ArtifactHashMismatch, TooFewRows
from recoup.scoring.features import (
    FEATURE_NAMES,
    collection_labels,
    compute_features,
    end_of_day,
    training_snapshots,
)
from recoup.scoring.files import read_table
from recoup.scoring.metrics import kolmogorov_smirnov
from recoup.scoring.monitoring import DriftCounts, DriftReport, DriftStatus
from recoup.scoring.scorer import ScoreBatch, compile_scorer
from recoup.scoring.spec import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_PAYMENT_SHARE,
    Family,
    GradeScale,
    ScorecardRow,
    TrainedModel,
)
from recoup.scoring.uplift import UpliftModel

DEFAULT_SNAPSHOTS = 6
PORTFOLIO_TARGET = "pays"


@dataclass(frozen=True, slots=True)
class TrainingOutcome:
    """A registered model version and the trained model behind it."""

    model_version: ModelVersion
    model: TrainedModel


@dataclass(frozen=True, slots=True)
class ScoringRunSummary:
    """What a batch scoring run wrote."""

    institution_id: int
    as_of: date
    model_version: str
    accounts_scored: int
    grades: dict[str, int]
    expected_recovery: int
    drift: DriftStatus
    segments: dict[str, int] = field(default_factory=dict)


def metrics_document(model: TrainedModel) -> dict[str, Any]:
    """Return a model's held-out metrics as stored with its version and printed by the CLI."""
    evaluation = model.evaluation
    return {
        "auc": evaluation.auc,
        "ks": evaluation.ks,
        "gini": evaluation.gini,
        "brier": evaluation.brier,
        "ece": evaluation.ece,
        "n_train": model.summary.n_train,
        "n_test": model.summary.n_test,
        "family": model.family,
        "seed": model.summary.seed,
        "event_rate": evaluation.event_rate,
        "training_seconds": model.summary.training_seconds,
        "calibration": model.summary.calibration,
        "deciles": decile_rows(model),
        "notes": list(model.summary.notes),
        "warnings": list(model.summary.warnings),
        "dropped_columns": [
            {"name": dropped.name, "reason": dropped.reason}
            for dropped in model.summary.dropped_columns
        ],
    }


def decile_rows(model: TrainedModel) -> list[dict[str, Any]]:
    """Return the held-out calibration and gains table, one plain row per decile."""
    return [dataclasses.asdict(row) for row in model.evaluation.deciles]


def register_model(
    session: Session, *, model: TrainedModel, institution_id: int | None, source: str, actor: str
) -> ModelVersion:
    """Store a trained model as a hashed candidate version and audit it (once per content)."""
    artifact = dump_model(model)
    existing = repository.get_model_version(session, version=artifact.version)
    if existing is not None:
        return existing
    summary = model.summary
    model_version = repository.add_model_version(
        session,
        ModelVersion(
            version=artifact.version,
            institution_id=institution_id,
            family=model.family,
            state=ModelState.candidate,
            source=source[:255],
            target=summary.target[:128],
            positive_label=summary.positive_label[:128],
            event_is_favourable=summary.event_is_favourable,
            features=list(model.feature_names),
            metrics=metrics_document(model),
            data_fingerprint=summary.data_fingerprint,
            trained_by=(summary.trained_by or actor)[:128],
            trained_at=datetime.fromisoformat(summary.trained_at),
            artifact_sha256=artifact.sha256,
            artifact_size=len(artifact.content),
            artifact=artifact.content,
        ),
    )
    audit.record(
        session,
        actor=actor,
        action="models.train",
        object_type="model_version",
        object_id=model_version.version,
        institution_id=institution_id,
        details={
            "family": model.family,
            "source": model_version.source,
            "sha256": artifact.sha256,
            "auc": round(model.evaluation.auc, 6),
            "data_fingerprint": summary.data_fingerprint,
        },
    )
    return model_version


def train_from_file(
    session: Session,
    *,
    path: Path,
    target: str,
    family: Family = "scorecard",
    seed: int = 0,
    positive: str | None = None,
    id_column: str | None = None,
    date_column: str | None = None,
    institution_id: int | None = None,
    actor: str,
) -> TrainingOutcome:
    """Train on an external CSV with a binary target and register the result."""
    from recoup.scoring.training import train_model

    frame = read_table(path)
    model = train_model(
        frame,
        target=target,
        family=family,
        positive=positive,
        id_column=id_column,
        date_column=date_column,
        seed=seed,
        trained_by=actor,
    )
    model_version = register_model(
        session, model=model, institution_id=institution_id, source=f"file:{path.name}", actor=actor
    )
    return TrainingOutcome(model_version=model_version, model=model)


def train_from_portfolio(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    family: Family = "scorecard",
    seed: int = 0,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    payment_share: float = DEFAULT_PAYMENT_SHARE,
    snapshots: int = DEFAULT_SNAPSHOTS,
    actor: str,
) -> TrainingOutcome:
    """Train a propensity-to-pay model on the institution's own past snapshots."""
    from recoup.scoring.training import train_model

    tables = repository.load_portfolio_tables(
        session, institution_id=institution.id, until=end_of_day(as_of)
    )
    frame = training_snapshots(
        tables,
        as_of=as_of,
        horizon_days=horizon_days,
        payment_share=payment_share,
        snapshots=snapshots,
    )
    if frame.empty:
        raise TooFewRows(
            f"institution {institution.code} has no delinquent accounts in the {snapshots} "
            f"monthly snapshots before {as_of}; load history or seed the demo first"
        )
    model = train_model(
        frame,
        target=PORTFOLIO_TARGET,
        family=family,
        positive="1",
        event_is_favourable=True,
        id_column="account_id",
        date_column="snapshot",
        seed=seed,
        trained_by=actor,
    )
    source = (
        f"portfolio:{institution.code}:as_of={as_of}:horizon={horizon_days}d:"
        f"share={payment_share}:snapshots={snapshots}"
    )
    model_version = register_model(
        session, model=model, institution_id=institution.id, source=source, actor=actor
    )
    return TrainingOutcome(model_version=model_version, model=model)


def require_model_version(session: Session, *, version: str) -> ModelVersion:
    """Return a model version or raise NotFound naming it."""
    model_version = repository.get_model_version(session, version=version)
    if model_version is None:
        raise NotFound(f"no model version {version!r}; `recoup model list` shows the versions")
    return model_version


def load_registered_model(model_version: ModelVersion) -> TrainedModel:
    """Load a registered model's artifact after checking its hash and version id."""
    if model_version.artifact is not None:
        content = model_version.artifact
    elif model_version.artifact_path is not None:
        content = Path(model_version.artifact_path).read_bytes()
    else:
        raise ArtifactHashMismatch(f"model version {model_version.version} has no artifact")
    return load_model(content, sha256=model_version.artifact_sha256, version=model_version.version)


def promote_model(session: Session, *, version: str, actor: str) -> ModelVersion:
    """Make a version the champion of its institution, retiring the previous champion."""
    model_version = require_model_version(session, version=version)
    if model_version.family == UPLIFT_FAMILY:
        raise ValidationFailed(
            f"{version} is an uplift model: it is not promoted; the institution's newest uplift "
            "model is used when its setting allocation.priority is uplift"
        )
    if model_version.state == ModelState.champion:
        return model_version
    # A promoted model must load: a tampered artifact never becomes champion.
    model = load_registered_model(model_version)
    if model_version.institution_id is not None:
        require_portfolio_features(model, version=model_version.version)
    now = utcnow()
    previous = repository.champions(session, institution_id=model_version.institution_id)
    for champion in previous:
        champion.state = ModelState.retired
        champion.retired_at = now
    model_version.state = ModelState.champion
    model_version.promoted_at = now
    model_version.promoted_by = actor[:128]
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="models.promote",
        object_type="model_version",
        object_id=model_version.version,
        institution_id=model_version.institution_id,
        details={
            "family": model_version.family,
            "sha256": model_version.artifact_sha256,
            "retired": [champion.version for champion in previous],
        },
    )
    if model_version.institution_id is not None:
        events.emit(
            session,
            institution_id=model_version.institution_id,
            type="model.promoted",
            data={"model_version": model_version.version, "family": str(model_version.family)},
        )
    return model_version


def require_portfolio_features(model: TrainedModel, *, version: str) -> None:
    """Refuse a champion that reads columns the portfolio's features do not have."""
    missing = [name for name in model.feature_names if name not in FEATURE_NAMES]
    if missing:
        raise ValidationFailed(
            f"{version} reads {len(missing)} column(s) the portfolio does not have "
            f"({', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}), so it cannot score "
            "the institution's accounts; train a champion with `recoup model train --institution "
            "CODE`, and score files with `recoup model score --data FILE --version VERSION`"
        )


@dataclass(frozen=True, slots=True)
class FileScoringSummary:
    """What scoring a file wrote."""

    model_version: str
    rows: int
    out: Path
    grades: dict[str, int]


def score_file(session: Session, *, path: Path, version: str, out: Path) -> FileScoringSummary:
    """Score every row of a CSV with a registered model and write the scores to another CSV."""
    model_version = require_model_version(session, version=version)
    model = load_registered_model(model_version)
    frame = read_table(path)
    batch = compile_scorer(model).score(frame)
    scores = pd.DataFrame(
        {
            "probability": np.round(batch.probability, 6),
            "points": np.round(batch.points, 1),
            "grade": batch.grades,
            "reasons_en": ["; ".join(batch.reasons(row, locale="en")) for row in range(len(batch))],
            "reasons_zh": ["；".join(batch.reasons(row, locale="zh")) for row in range(len(batch))],
        }
    )
    id_column = model.summary.id_column
    if id_column is not None and id_column in frame.columns:
        scores.insert(0, id_column, frame[id_column].to_numpy())
    scores.to_csv(out, index=False, encoding="utf-8")
    return FileScoringSummary(
        model_version=model_version.version,
        rows=len(scores),
        out=out,
        grades=dict(sorted(Counter(str(grade) for grade in batch.grades).items())),
    )


def grade_scale(institution: Institution) -> GradeScale:
    """Return the institution's grades, configured as probability-to-pay thresholds (A best)."""
    thresholds = settings_of(institution).scoring.grade_thresholds
    if thresholds is None:
        return GradeScale()
    cutoffs = tuple(1.0 - value for value in thresholds)
    return GradeScale(cutoffs=(cutoffs[0], cutoffs[1], cutoffs[2], cutoffs[3]))


def _champion(session: Session, institution: Institution) -> ModelVersion:
    found = repository.champions(session, institution_id=institution.id)
    if not found:
        raise NotFound(
            f"institution {institution.code} has no champion model: train one with "
            f"`recoup model train --institution {institution.code}` and promote it"
        )
    return found[0]


# Accounts scored per part of a whole-portfolio run: the portfolio is read, scored and
# written a part at a time, so the memory a run needs does not grow with the portfolio.
SCORING_PART_ACCOUNTS = 100_000
# Fewer delinquent accounts than this are scored in the process even when workers are
# offered: starting them would cost more than they save.
PARALLEL_MIN_ACCOUNTS = 20_000


def score_delinquent_accounts(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    version: str | None = None,
    account_ids: list[int] | None = None,
    workers: int = 0,
) -> ScoringRunSummary:
    """Score every delinquent account (or the given ones) and store the scores.

    A whole portfolio is read, scored and written in parts of consecutive account ids
    (``SCORING_PART_ACCOUNTS``); each part is vectorised, and its scores go to the database
    column by column. Every feature is the account's own (or its debtor's), so the parts
    score exactly as one pass would; the drift report adds up the parts' bin counts.

    ``workers`` > 0 reads and scores the parts in that many worker processes while this one
    writes (``_computed_parts``): only for a caller whose reads may come from another
    connection, i.e. nothing the scores depend on is uncommitted in ``session``.
    """
    model_version = (
        require_model_version(session, version=version)
        if version is not None
        else _champion(session, institution)
    )
    if model_version.institution_id not in (None, institution.id):
        raise NotFound(f"no model version {model_version.version!r} for {institution.code}")
    model = load_registered_model(model_version)
    whole_portfolio = account_ids is None
    scorer = compile_scorer(model)
    scale = grade_scale(institution)
    policy = segment_policy(institution)
    scored_at = utcnow()
    repository.delete_scores(
        session, institution_id=institution.id, model_version_id=model_version.id, as_of=as_of
    )
    drift_counts = DriftCounts(model)
    written = 0
    grade_counts: Counter[str] = Counter()
    segment_counts: Counter[str] = Counter()
    expected_total = 0
    parts = (
        _computed_parts(
            session,
            institution_id=institution.id,
            as_of=as_of,
            model=model,
            scale=scale,
            workers=workers,
        )
        if account_ids is None
        else [_compute_part(session, institution.id, account_ids, as_of, scorer, scale, model)]
    )
    try:
        for accounts, batch, counts in parts:
            drift_counts.add_counts(counts)
            scored = _score_rows(
                session,
                institution=institution,
                model_version=model_version,
                event_is_favourable=model.summary.event_is_favourable,
                accounts=accounts,
                batch=batch,
                policy=policy,
                as_of=as_of,
                scored_at=scored_at,
            )
            written += scored.written
            grade_counts.update(scored.grades)
            segment_counts.update(scored.segments)
            expected_total += scored.expected_recovery
    finally:
        # Workers still reading parts ahead stop here, even when a write failed.
        close = getattr(parts, "close", None)
        if close is not None:
            close()
    drift = DriftStatus.STABLE
    if written:
        report = drift_counts.report()
        drift = report.status
        # A run over a handful of accounts (a real-time rescore) says nothing about drift.
        if whole_portfolio:
            record_scoring_run(
                session,
                institution_id=institution.id,
                model_version=model_version,
                as_of=as_of,
                scored_at=scored_at,
                accounts_scored=written,
                report=report,
            )
    return ScoringRunSummary(
        institution_id=institution.id,
        as_of=as_of,
        model_version=model_version.version,
        accounts_scored=written,
        grades=dict(sorted(grade_counts.items())),
        expected_recovery=expected_total,
        drift=drift,
        segments=dict(sorted(segment_counts.items())),
    )


def _part_bounds(ids: np.ndarray[Any, Any], size: int) -> list[tuple[int, int]]:
    """Return ordered account ids as (first, last) ranges of ``size`` consecutive ids each
    (a part is named by a query, not a bound list of ids)."""
    return [
        (int(ids[start]), int(ids[min(start + size, len(ids)) - 1]))
        for start in range(0, len(ids), size)
    ]


def _part_query(institution_id: int, first: int, last: int) -> Select[int]:
    return repository.delinquent_accounts(institution_id=institution_id).where(
        Account.id.between(first, last)
    )


# One part read and scored: its accounts, its scores and its drift bin counts.
_Part = tuple[pd.DataFrame, ScoreBatch, tuple[Any, list[Any], list[Any]]]


def _compute_part(
    session: Session,
    institution_id: int,
    account_ids: Sequence[int] | Select[int],
    as_of: date,
    scorer: Any,
    scale: GradeScale,
    model: TrainedModel,
) -> _Part:
    """Read one part of the portfolio and score it (no writes)."""
    tables = repository.load_portfolio_tables(
        session, institution_id=institution_id, until=end_of_day(as_of), account_ids=account_ids
    )
    features = compute_features(tables, as_of=as_of)
    batch = scorer.score(features, grades=scale)
    counts = DriftCounts(model)
    if len(features):
        counts.add(features, points=batch.points)
    return tables.accounts, batch, counts.counts()


def _computed_parts(
    session: Session,
    *,
    institution_id: int,
    as_of: date,
    model: TrainedModel,
    scale: GradeScale,
    workers: int,
) -> Iterator[_Part]:
    """Yield the portfolio's parts read and scored, in account order.

    With ``workers`` (and a database another process can open, and ``fork``), the parts are
    read and scored in worker processes, each with its own connection, a few parts ahead of
    the caller, which writes each part's scores as it comes: the reading and scoring (most of
    the stage's CPU) run beside the writes, on as many cores as there are workers. SQLite
    lets them read while this process holds the write lock (WAL). Without, one part at a
    time in this process.
    """
    ids = repository.delinquent_account_ids(session, institution_id=institution_id)
    url = worker_url(session) if workers > 0 and len(ids) >= PARALLEL_MIN_ACCOUNTS else None
    size = SCORING_PART_ACCOUNTS
    if url is not None:
        # Enough parts to keep every worker busy, never larger than a part.
        size = max(1, min(size, -(-len(ids) // (2 * workers))))
    bounds = _part_bounds(ids, size)
    del ids
    if url is None or len(bounds) < 2:
        scorer = compile_scorer(model)
        for first, last in bounds:
            yield _compute_part(
                session,
                institution_id,
                _part_query(institution_id, first, last),
                as_of,
                scorer,
                scale,
                model,
            )
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    # fork: the workers start with the model and libraries already loaded (no re-import).
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(url, model, scale),
    )
    try:
        pending: deque[Future[_Part]] = deque()
        queued = iter(bounds)
        # At most two parts per worker ahead of the writes: memory stays bounded.
        for first, last in queued:
            pending.append(pool.submit(_worker_part, institution_id, first, last, as_of))
            if len(pending) >= 2 * workers:
                break
        while pending:
            part = pending.popleft().result()
            for first, last in queued:
                pending.append(pool.submit(_worker_part, institution_id, first, last, as_of))
                break
            yield part
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# A scoring worker's state, set once as the process starts (``_start_worker``).
_WORKER: dict[str, Any] = {}


def _start_worker(url: str, model: TrainedModel, scale: GradeScale) -> None:
    from recoup.db import make_engine, session_factory

    processes.exit_with_parent("recoup-scoring-parent-watch")
    # A fresh engine: connections inherited from the parent are never used here.
    _WORKER.update(
        sessions=session_factory(make_engine(url, pool_size=1), write=False),
        model=model,
        scorer=compile_scorer(model),
        scale=scale,
    )


def _worker_part(institution_id: int, first: int, last: int, as_of: date) -> _Part:
    with _WORKER["sessions"]() as session:
        return _compute_part(
            session,
            institution_id,
            _part_query(institution_id, first, last),
            as_of,
            _WORKER["scorer"],
            _WORKER["scale"],
            _WORKER["model"],
        )


@dataclass(frozen=True, slots=True)
class _ScoredPart:
    written: int
    grades: Counter[str]
    segments: Counter[str]
    expected_recovery: int


def _score_rows(
    session: Session,
    *,
    institution: Institution,
    model_version: ModelVersion,
    event_is_favourable: bool,
    accounts: pd.DataFrame,
    batch: ScoreBatch,
    policy: rules.SegmentPolicy,
    as_of: date,
    scored_at: datetime,
) -> _ScoredPart:
    """Segment and prioritise one part's scored accounts and write their scores, by column."""
    size = len(accounts)
    pay_probability = batch.probability if event_is_favourable else 1 - batch.probability
    overdue = accounts["overdue_amount"].to_numpy(dtype=np.int64)
    balances = accounts["balance"].to_numpy(dtype=np.int64)
    expected = np.rint(pay_probability * np.maximum(overdue, 0)).astype(np.int64)
    grades = batch.grades
    buckets = accounts["bucket"].astype(str).to_numpy()
    # A segment depends on grade × bucket × balance band only: each distinct one is worked
    # out once (from a row that has it), not once per account.
    bands = np.where(
        balances < policy.small_balance_minor,
        0,
        np.where(balances >= policy.large_balance_minor, 2, 1),
    )
    bucket_codes, bucket_names = pd.factorize(buckets)
    keys = (batch.grade_index.astype(np.int64) * (len(bucket_names) + 1) + bucket_codes) * 3 + bands
    distinct, first_row, segment_index = np.unique(keys, return_index=True, return_inverse=True)
    segment_index = segment_index.reshape(-1)
    segments = [
        rules.segment_of(
            grade=str(grades[row]),
            bucket=str(buckets[row]),
            balance_minor=int(balances[row]),
            policy=policy,
        )
        for row in first_row.tolist()
    ]
    channels = np.asarray([segment.channel for segment in segments], dtype=object)
    costs = np.asarray([rules.contact_cost(segment.channel, policy) for segment in segments])
    worth = priority_worth(
        session,
        institution=institution,
        accounts=accounts,
        as_of=as_of,
        pay_probability=pay_probability,
        channels=channels[segment_index].tolist() if len(distinct) else [],
    )
    on_uplift = np.asarray(worth.basis, dtype=object) == rules.BASIS_UPLIFT
    # rules.uplift_recovery and rules.priority, on columns.
    extra = np.where(
        on_uplift, np.rint(np.maximum(worth.uplift, 0.0) * np.maximum(overdue, 0)), 0
    ).astype(np.int64)
    valued = np.where(on_uplift, extra, expected)
    priority = np.maximum(valued, 0) / costs[segment_index] if size else np.zeros(0)
    uplift_recovery: list[int | None] = [None] * size
    for row in np.flatnonzero(on_uplift).tolist():
        uplift_recovery[row] = int(extra[row])
    # Reason lists: one per distinct row of reason codes.
    reason_rows, reason_index = distinct_rows(batch.reason_codes)
    reason_lists = [
        [batch.feature_names[code] for code in codes if code >= 0] for codes in reason_rows.tolist()
    ]
    basis_index, basis_names = pd.factorize(np.asarray(worth.basis, dtype=object))
    written = repository.insert_scores(
        session,
        {
            "account_id": accounts["account_id"].tolist(),
            "probability": pay_probability.tolist(),
            "points": batch.points.tolist(),
            "grade": grades.tolist(),
            "expected_recovery": expected.tolist(),
            "currency": accounts["currency"].tolist(),
            "reasons": bulk.Coded(reason_lists, reason_index.reshape(-1).tolist()),
            "segment": bulk.Coded([s.name for s in segments], segment_index.tolist()),
            "channel": bulk.Coded(channels.tolist(), segment_index.tolist()),
            "priority": priority.tolist(),
            "priority_basis": bulk.Coded(basis_names.tolist(), basis_index.tolist()),
            "uplift_recovery": uplift_recovery,
        },
        size=size,
        constants={
            "institution_id": institution.id,
            "model_version_id": model_version.id,
            "model_version": model_version.version,
            "as_of": as_of,
            "scored_at": scored_at,
        },
    )
    per_segment = np.bincount(segment_index, minlength=len(segments)).tolist()
    segment_counts: Counter[str] = Counter()
    for segment, count in zip(segments, per_segment, strict=True):
        segment_counts[segment.name] += int(count)
    grade_names, grade_totals = np.unique(grades, return_counts=True)
    return _ScoredPart(
        written=written,
        grades=Counter(
            {str(grade): int(count) for grade, count in zip(grade_names, grade_totals, strict=True)}
        ),
        segments=segment_counts,
        expected_recovery=int(expected.sum()),
    )


def distinct_rows(
    codes: npt.NDArray[np.int16],
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int64]]:
    """Return ``np.unique(codes, axis=0, return_inverse=True)``: the distinct rows of reason
    codes, in order, and each row's place among them.

    Up to three codes a row (``scorer.REASON_COUNT``), each row is packed into one integer
    (each code plus one in 16 bits: codes run from -1, none, to 32,766, and the packed order is
    the rows' order), whose ``np.unique`` is about ten times faster than comparing rows (2.1 →
    0.2 s of CPU for a million rows): it ran in the scoring writer's process, part by part.
    """
    if not len(codes):
        return codes, np.zeros(0, dtype=np.int64)
    if codes.shape[1] > 3:
        rows, inverse = np.unique(codes, axis=0, return_inverse=True)
        return rows, inverse.reshape(-1).astype(np.int64)
    packed = np.zeros(len(codes), dtype=np.int64)
    for column in range(codes.shape[1]):
        packed = (packed << 16) | (codes[:, column].astype(np.int64) + 1)
    _distinct, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
    return codes[first], inverse.reshape(-1).astype(np.int64)


UPLIFT_FAMILY = "uplift"


@dataclass(frozen=True, slots=True)
class PriorityWorth:
    """Per account: what its priority is worth (``rules.priority_basis``) and its uplift."""

    basis: list[str]
    uplift: np.ndarray[Any, np.dtype[np.float64]]
    model_version: str | None


def priority_worth(
    session: Session,
    *,
    institution: Institution,
    accounts: pd.DataFrame,
    as_of: date,
    pay_probability: np.ndarray[Any, Any],
    channels: list[str],
) -> PriorityWorth:
    """Decide each account's priority basis and, where it is uplift, the model's estimate."""
    size = len(channels)
    asked = settings_of(institution).allocation.priority
    found = (
        repository.latest_uplift_version(
            session, institution_id=institution.id, family=UPLIFT_FAMILY
        )
        if asked == rules.BASIS_UPLIFT
        else None
    )
    uplift = np.full(size, np.nan)
    model = load_uplift_model(found) if found is not None else None
    if model is not None and size:
        columns = {
            "days_past_due": accounts["days_past_due"].to_numpy(dtype=np.float64),
            "balance": accounts["balance"].to_numpy(dtype=np.float64),
            "customer_type": accounts["debtor_kind"].astype(str).to_numpy(dtype=object),
            "age": _age_years(accounts["birth_date"], as_of),
            "propensity": np.asarray(pay_probability, dtype=np.float64),
        }
        wanted = np.asarray(channels, dtype=object)
        for channel in sorted(set(channels)):
            here = wanted == channel
            uplift[here] = model.score({k: v[here] for k, v in columns.items()}, channel)
        uplift = np.clip(uplift, -1.0, 1.0)
    # rules.priority_basis per account: only whether the channel was learnt varies.
    learnt, not_learnt = (
        rules.priority_basis(asked=asked, has_model=model is not None, channel_learnt=known)
        for known in (True, False)
    )
    basis = np.where(np.isnan(uplift), not_learnt, learnt).astype(object).tolist()
    return PriorityWorth(
        basis=basis, uplift=uplift, model_version=found.version if found is not None else None
    )


def _age_years(birth_dates: pd.Series, as_of: date) -> np.ndarray[Any, np.dtype[np.float64]]:
    born = pd.to_datetime(birth_dates, errors="coerce")
    years = (pd.Timestamp(as_of) - born).dt.days / 365.25
    return np.asarray(years.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def load_uplift_model(model_version: ModelVersion) -> UpliftModel:
    """Load a registered uplift model, refusing an artifact whose hash does not match."""
    content = model_version.artifact or b""
    if content_sha256(content) != model_version.artifact_sha256:
        raise ArtifactHashMismatch(
            f"the artifact of {model_version.version} does not match its recorded sha256"
        )
    return UpliftModel.from_bytes(content)


def register_uplift_model(
    session: Session,
    *,
    institution: Institution,
    model: UpliftModel,
    metrics: dict[str, Any],
    data_fingerprint: str,
    source: str,
    actor: str,
) -> ModelVersion:
    """Store a trained uplift model as a hashed version of the institution and audit it."""
    content = model.to_bytes()
    sha256 = content_sha256(content)
    trained_at = utcnow()
    version = version_id(family=UPLIFT_FAMILY, trained_at=trained_at.isoformat(), sha256=sha256)
    existing = repository.get_model_version(session, version=version)
    if existing is not None:
        return existing
    model_version = repository.add_model_version(
        session,
        ModelVersion(
            version=version,
            institution_id=institution.id,
            family=UPLIFT_FAMILY,
            state=ModelState.candidate,
            source=source[:255],
            target="paid_after_contact",
            positive_label="paid",
            event_is_favourable=True,
            features=list(model.feature_names),
            metrics=metrics,
            data_fingerprint=data_fingerprint,
            trained_by=actor[:128],
            trained_at=trained_at,
            artifact_sha256=sha256,
            artifact_size=len(content),
            artifact=content,
        ),
    )
    audit.record(
        session,
        actor=actor,
        action="models.train",
        object_type="model_version",
        object_id=version,
        institution_id=institution.id,
        details={
            "family": UPLIFT_FAMILY,
            "source": model_version.source,
            "sha256": sha256,
            "channels": sorted(model.channels),
            "data_fingerprint": data_fingerprint,
        },
    )
    return model_version


def segment_policy(institution: Institution) -> rules.SegmentPolicy:
    """Return the institution's segmentation thresholds, refusing unusable settings."""
    try:
        return rules.policy_from_settings(settings_of(institution).scoring.model_dump())
    except rules.SegmentSettingsInvalid as error:
        raise ValidationFailed(f"institution {institution.code}: {error}") from error


def record_scoring_run(
    session: Session,
    *,
    institution_id: int,
    model_version: ModelVersion,
    as_of: date,
    scored_at: datetime,
    accounts_scored: int,
    report: DriftReport,
) -> ScoringRun:
    """Store a batch run's drift report, replacing an earlier run of the same model and date."""
    return repository.upsert_scoring_run(
        session,
        ScoringRun(
            institution_id=institution_id,
            model_version_id=model_version.id,
            model_version=model_version.version,
            as_of=as_of,
            scored_at=scored_at,
            accounts_scored=accounts_scored,
            score_psi=round(report.score.psi, 6),
            feature_psi={item.name: round(item.psi, 6) for item in report.features},
            characteristic_shift={
                item.feature: round(item.points_shift, 4) for item in report.characteristics
            },
            status=str(report.status),
        ),
    )


def score_account(
    session: Session, *, institution: Institution, account_id: int, as_of: date
) -> ScoringRunSummary:
    """Re-score one account with the champion, e.g. right after a payment or a contact."""
    return score_delinquent_accounts(
        session, institution=institution, as_of=as_of, account_ids=[account_id]
    )


def list_models(session: Session, *, institution_id: int | None = None) -> list[ModelVersion]:
    """Return registered model versions, newest first."""
    return repository.list_model_versions(session, institution_id=institution_id)


@dataclass(frozen=True, slots=True)
class RealisedPerformance:
    """How well a run's scores ranked the outcomes observed in the window after its date."""

    model_version: str
    as_of: date
    horizon_days: int
    payment_share: float
    count: int
    events: int
    auc: float | None
    ks: float | None


def realised_performance(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    version: str,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    payment_share: float = DEFAULT_PAYMENT_SHARE,
    today: date | None = None,
) -> RealisedPerformance:
    """Measure realised AUC/KS of the scores made on a date against what happened after it.

    The outcome is the training label: the account paid at least ``payment_share`` of its
    overdue amount, or cured, within ``horizon_days`` after ``as_of``. The result is stored on
    the run's record when there is one.
    """
    from sklearn.metrics import roc_auc_score

    model_version = require_model_version(session, version=version)
    known_on = as_of + timedelta(days=horizon_days)
    today = today or utcnow().date()
    if known_on > today:
        raise ValidationFailed(
            f"outcomes of the {as_of} scores are known from {known_on}, "
            f"{horizon_days} days after scoring; it is {today}"
        )
    scores = repository.run_scores(
        session,
        institution_id=institution.id,
        model_version_id=model_version.id,
        as_of=as_of,
    )
    if not scores:
        raise NotFound(
            f"{institution.code} has no scores from {version} as of {as_of}; "
            f"run `recoup model score --institution {institution.code} --as-of {as_of}` first"
        )
    probability_by_account = dict(scores)
    tables = repository.load_portfolio_tables(
        session,
        institution_id=institution.id,
        until=end_of_day(known_on),
        account_ids=sorted(probability_by_account),
    )
    labels = collection_labels(
        tables, as_of=as_of, horizon_days=horizon_days, payment_share=payment_share
    )
    probabilities = np.asarray(
        [probability_by_account[int(account)] for account in tables.accounts["account_id"]],
        dtype=np.float64,
    )
    events = int(labels.sum())
    auc: float | None = None
    ks: float | None = None
    if 0 < events < len(labels):
        auc = float(roc_auc_score(labels, probabilities))
        ks = kolmogorov_smirnov(labels, probabilities)
    run = repository.get_scoring_run(
        session, institution_id=institution.id, model_version_id=model_version.id, as_of=as_of
    )
    if run is not None:
        run.realised_at = utcnow()
        run.realised_horizon_days = horizon_days
        run.realised_payment_share = payment_share
        run.realised_count = len(labels)
        run.realised_events = events
        run.realised_auc = auc
        run.realised_ks = ks
        session.flush()
    return RealisedPerformance(
        model_version=model_version.version,
        as_of=as_of,
        horizon_days=horizon_days,
        payment_share=payment_share,
        count=len(labels),
        events=events,
        auc=auc,
        ks=ks,
    )


def visible_models(session: Session, *, principal: Principal) -> list[ModelVersion]:
    """Return the model versions a caller may see (its institution's and shared ones)."""
    return repository.visible_model_versions(session, principal=principal)


def require_visible_model(session: Session, *, principal: Principal, version: str) -> ModelVersion:
    """Return a model version the caller may see; another institution's is simply not found."""
    model_version = repository.get_model_version(session, version=version)
    if model_version is None or model_version.institution_id not in (
        None,
        principal.institution_id,
    ):
        raise NotFound(f"no model version {version!r}")
    return model_version


def promote_as(session: Session, *, principal: Principal, version: str) -> ModelVersion:
    """Promote a model of the caller's own institution to champion on the caller's behalf."""
    if not principal.can("models:promote"):
        raise PermissionDenied(f"{principal.actor} may not promote models (needs models:promote)")
    model_version = require_visible_model(session, principal=principal, version=version)
    if model_version.institution_id is None or principal.institution_id is None:
        raise PermissionDenied(
            f"{version} was trained outside any institution; retrain it with --institution to "
            "make it an institution's champion"
        )
    return promote_model(session, version=version, actor=principal.actor)


def promoter(session: Session, *, username: str) -> Principal:
    """Return the principal of an active user who may promote models (for the CLI's --actor)."""
    user = identity_repository.get_user_by_username(session, username)
    if user is None or not user.active:
        raise NotFound(f"no active user {username!r}; `recoup users create` adds one")
    principal = principal_for_user(user)
    if not principal.can("models:promote"):
        raise PermissionDenied(
            f"user {username} ({principal.role}) may not promote models; "
            "a manager or a data scientist may"
        )
    return principal


def promote_by_user(session: Session, *, username: str, version: str) -> ModelVersion:
    """Promote a model on behalf of a named user who holds models:promote (the CLI path)."""
    principal = promoter(session, username=username)
    if principal.institution_id is not None:
        # Another institution's model is "not found" to this user, as on the web.
        require_visible_model(session, principal=principal, version=version)
    return promote_model(session, version=version, actor=principal.actor)


def scoring_runs(session: Session, *, principal: Principal, limit: int = 50) -> list[ScoringRun]:
    """Return the caller's institution's scoring runs with their drift, newest first."""
    return repository.scoring_runs(session, principal=principal, limit=limit)


def latest_account_score(
    session: Session, *, principal: Principal, account_id: int
) -> AccountScore | None:
    """Return the latest score of an account the caller may see (NotFound for any other)."""
    get_scoped(session, Account, account_id, principal)
    return repository.latest_account_score(session, principal=principal, account_id=account_id)


def contact_cost(session: Session, *, score: AccountScore) -> int | None:
    """Return the cost of one contact on a score's channel, the divisor of its priority."""
    institution = repository.get_institution(session, institution_id=score.institution_id)
    if institution is None or not score.channel:
        return None
    try:
        cost = segment_policy(institution).contact_costs.get(score.channel)
    except ValidationFailed:
        return None
    return cost if cost else None


@dataclass(frozen=True, slots=True)
class ModelReport:
    """What a model's page and API show: the registry row and its readable evaluation."""

    model_version: ModelVersion
    model: TrainedModel
    scorecard: list[ScorecardRow]
    deciles: list[dict[str, Any]]


def model_report(session: Session, *, principal: Principal, version: str) -> ModelReport:
    """Load a visible model's artifact and lay out its scorecard, calibration and gains."""
    model_version = require_visible_model(session, principal=principal, version=version)
    model = load_registered_model(model_version)
    return ModelReport(
        model_version=model_version,
        model=model,
        scorecard=model.scorecard.table() if model.scorecard is not None else [],
        deciles=decile_rows(model),
    )
