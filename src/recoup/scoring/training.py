"""Training on any tabular data with a binary target: a WOE scorecard or a LightGBM challenger."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt
import pandas as pd
from optbinning import BinningProcess, Scorecard
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from recoup.scoring.errors import (
    NoUsableFeatures,
    PositiveLabelUnknown,
    TargetColumnMissing,
    TargetNotBinary,
    TooFewRows,
    TrainingDataInvalid,
)
from recoup.scoring.metrics import evaluate
from recoup.scoring.scorer import (
    CompiledScorecard,
    GbmScorer,
    IndexArray,
    category_codes,
    gbm_matrix,
    numeric_values,
)
from recoup.scoring.spec import (
    MISSING_LABEL,
    DroppedColumn,
    Family,
    FeatureKind,
    FloatArray,
    GbmFeature,
    GbmSpec,
    ModelSummary,
    PointsScale,
    ReferenceDistribution,
    ScorecardBin,
    ScorecardFeature,
    ScorecardSpec,
    SplitMethod,
    TrainedModel,
    interval_labels,
)

LabelArray = npt.NDArray[np.int8]

TRUE_WORDS = frozenset({"1", "true", "yes", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "f"})
ID_COLUMN_NAMES = frozenset({"id"})
MOST_CATEGORIES_TRACKED = 20
LIBRARIES = ("optbinning", "lightgbm", "scikit-learn", "numpy", "pandas")


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """Tunable choices of a training run; the defaults suit credit and collection data."""

    test_share: float = 0.3
    min_rows: int = 200
    min_class_rows: int = 20
    scale: PointsScale = field(default_factory=PointsScale)
    monotonic_trend: str = "auto_asc_desc"
    enforce_coefficient_signs: bool = True
    regularisation: float = 1.0
    gbm_learning_rate: float = 0.03
    gbm_num_leaves: int = 15
    gbm_min_data_in_leaf: int = 80
    gbm_max_rounds: int = 2000
    gbm_early_stopping_rounds: int = 100
    gbm_validation_share: float = 0.2
    # One thread: on tables this small OpenMP threads mostly wait on each other, and on a busy
    # two-core machine their spinning made training several times slower than a single thread.
    gbm_threads: int = 1
    gbm_monotone_constraints: bool = True
    reference_bins: int = 10


@dataclass(frozen=True, slots=True)
class PreparedData:
    """Training rows reduced to usable feature columns and a 0/1 label."""

    features: pd.DataFrame
    labels: LabelArray
    kinds: dict[str, FeatureKind]
    target: str
    positive_label: str
    id_column: str | None
    date_column: str | None
    dates: pd.Series | None
    dropped: tuple[DroppedColumn, ...]
    rows_without_target: int


@dataclass(frozen=True, slots=True)
class RowSplit:
    """Positions of the training and held-out rows."""

    train: IndexArray
    test: IndexArray
    method: SplitMethod


def _label_text(value: Any) -> str:
    """Spell a target value the way a person would type it on the command line."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _choose_positive(
    values: list[Any], counts: dict[Any, int], positive: str | None, target: str
) -> Any:
    """Pick the target value that stands for the event."""
    texts = {value: _label_text(value) for value in values}
    if positive is not None:
        wanted = positive.strip()
        for matcher in (str.__eq__, lambda left, right: left.lower() == right.lower()):
            matches = [value for value, text in texts.items() if matcher(text, wanted)]
            if len(matches) == 1:
                return matches[0]
        raise PositiveLabelUnknown(
            f"--positive {positive!r} is not a value of target column '{target}'; "
            f"its values are {', '.join(repr(text) for text in texts.values())}"
        )
    lowered = {value: text.lower() for value, text in texts.items()}
    truthy = [value for value, text in lowered.items() if text in TRUE_WORDS]
    falsy = [value for value, text in lowered.items() if text in FALSE_WORDS]
    if len(truthy) == 1 and len(falsy) == 1:
        return truthy[0]
    # Two free-text labels: the rarer one is the event, the usual convention for credit data.
    return min(values, key=lambda value: (counts[value], texts[value]))


def _encode_labels(
    frame: pd.DataFrame, *, target: str, positive: str | None
) -> tuple[LabelArray, str, npt.NDArray[np.bool_]]:
    """Return 0/1 labels for rows with a target, the positive label and which rows have one."""
    if target not in frame.columns:
        raise TargetColumnMissing(
            f"target column '{target}' is not in the data; the columns are: "
            + ", ".join(map(str, frame.columns))
        )
    column = frame[target]
    present = column.notna().to_numpy()
    observed = column[present]
    counts = observed.value_counts(dropna=True)
    values = list(counts.index)
    if len(values) != 2:
        shown = ", ".join(repr(_label_text(value)) for value in values[:6])
        more = " …" if len(values) > 6 else ""
        raise TargetNotBinary(
            f"target column '{target}' must hold exactly two distinct values (0/1, true/false "
            f"or two labels); it holds {len(values)}: {shown}{more}"
        )
    positive_value = _choose_positive(
        values, {value: int(counts[value]) for value in values}, positive, target
    )
    labels = (observed == positive_value).to_numpy(dtype=np.int8)
    return labels, _label_text(positive_value), present


def _categorical_strings(column: pd.Series) -> pd.Series:
    """Return a text column as Python strings with missing values as NaN."""
    return (
        column.astype(object)
        .where(column.notna(), np.nan)
        .map(
            lambda value: (
                value if isinstance(value, float) and math.isnan(value) else str(value).strip()
            )
        )
    )


def _column_kind(column: pd.Series) -> FeatureKind:
    """Decide whether a column is read as numbers or as categories."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return "numeric"
    parsed = pd.to_numeric(column, errors="coerce")
    return "numeric" if int(parsed.notna().sum()) == int(column.notna().sum()) else "categorical"


def prepare_training_data(
    frame: pd.DataFrame,
    *,
    target: str,
    positive: str | None = None,
    id_column: str | None = None,
    date_column: str | None = None,
    settings: TrainingSettings | None = None,
) -> PreparedData:
    """Validate the target, encode labels and keep the columns a model can learn from."""
    settings = settings or TrainingSettings()
    labels, positive_label, present = _encode_labels(frame, target=target, positive=positive)
    for role, name in (("id", id_column), ("date", date_column)):
        if name is not None and name not in frame.columns:
            raise TrainingDataInvalid(f"{role} column '{name}' is not in the data")
    if id_column is None:
        id_column = next(
            (
                str(name)
                for name in frame.columns
                if str(name).lower() in ID_COLUMN_NAMES and name != target
            ),
            None,
        )
    rows = frame.loc[present].reset_index(drop=True)
    dates: pd.Series | None = None
    if date_column is not None:
        dates = pd.to_datetime(rows[date_column], errors="coerce", utc=True)
        if dates.isna().any():
            raise TrainingDataInvalid(
                f"date column '{date_column}' has {int(dates.isna().sum())} missing or "
                "unreadable dates"
            )
    _check_row_counts(labels, positive_label=positive_label, settings=settings, where="the data")

    excluded = {target, id_column, date_column}
    columns: dict[str, pd.Series] = {}
    kinds: dict[str, FeatureKind] = {}
    dropped: list[DroppedColumn] = []
    for name in rows.columns:
        if name in excluded:
            continue
        column = rows[name]
        if int(column.notna().sum()) == 0:
            dropped.append(DroppedColumn(name=str(name), reason="every value is missing"))
            continue
        kind = _column_kind(column)
        prepared = (
            pd.Series(numeric_values(column)) if kind == "numeric" else _categorical_strings(column)
        )
        distinct = int(prepared.nunique(dropna=True))
        if distinct <= 1:
            dropped.append(DroppedColumn(name=str(name), reason="a single value throughout"))
            continue
        if kind == "categorical" and distinct > 50 and distinct > 0.9 * int(prepared.notna().sum()):
            dropped.append(
                DroppedColumn(
                    name=str(name),
                    reason=f"nearly every value is distinct ({distinct}); looks like an identifier",
                )
            )
            continue
        columns[str(name)] = prepared
        kinds[str(name)] = kind
    if not columns:
        raise NoUsableFeatures(
            f"no usable feature column besides target '{target}'"
            + (f" and id column '{id_column}'" if id_column else "")
            + (
                f"; left out: {', '.join(f'{d.name} ({d.reason})' for d in dropped)}"
                if dropped
                else ""
            )
        )
    return PreparedData(
        features=pd.DataFrame(columns),
        labels=labels,
        kinds=kinds,
        target=target,
        positive_label=positive_label,
        id_column=id_column,
        date_column=date_column,
        dates=dates,
        dropped=tuple(dropped),
        rows_without_target=int((~present).sum()),
    )


def _check_row_counts(
    labels: LabelArray, *, positive_label: str, settings: TrainingSettings, where: str
) -> None:
    """Refuse data too small to train on and still evaluate."""
    events = int(labels.sum())
    non_events = len(labels) - events
    if len(labels) < settings.min_rows:
        raise TooFewRows(
            f"training needs at least {settings.min_rows} rows with a target; "
            f"{where} has {len(labels)}"
        )
    if min(events, non_events) < settings.min_class_rows:
        raise TooFewRows(
            f"training needs at least {settings.min_class_rows} rows of each class; {where} has "
            f"{events} with target '{positive_label}' and {non_events} without"
        )


def split_rows(
    prepared: PreparedData, *, seed: int, settings: TrainingSettings | None = None
) -> RowSplit:
    """Hold out the latest rows when dates are given, else a stratified random share."""
    settings = settings or TrainingSettings()
    positions = np.arange(len(prepared.labels), dtype=np.intp)
    if prepared.dates is None:
        train, test = train_test_split(
            positions, test_size=settings.test_share, stratify=prepared.labels, random_state=seed
        )
        return RowSplit(train=np.sort(train), test=np.sort(test), method="stratified")
    timestamps = prepared.dates.to_numpy()
    # Training rows stay in time order so the booster's early-stopping tail is the latest period.
    order = np.argsort(timestamps, kind="stable").astype(np.intp)
    ordered = timestamps[order]
    # Cut between whole dates: the last date whose rows stay within the training share, and
    # never the last date, so rows of one day are not split and a later period always remains.
    distinct, first_position = np.unique(ordered, return_index=True)
    train_shares = np.append(first_position[1:], len(ordered)) / len(ordered)
    within = np.flatnonzero(train_shares[:-1] <= 1 - settings.test_share)
    cutoff = distinct[within[-1] if len(within) else 0]
    train = order[ordered <= cutoff]
    test = order[ordered > cutoff]
    if len(test) == 0 or int(prepared.labels[test].sum()) in {0, len(test)}:
        raise TooFewRows(
            f"a time-based split on '{prepared.date_column}' leaves no later period with both "
            f"outcomes to test on (cut-off {pd.Timestamp(cutoff).date()})"
        )
    return RowSplit(train=train, test=test, method="time")


def _binning_process(kinds: dict[str, FeatureKind], settings: TrainingSettings) -> BinningProcess:
    """Build the optbinning process the scorecard and its optbinning twin both use."""
    names = list(kinds)
    return BinningProcess(
        variable_names=names,
        categorical_variables=[name for name in names if kinds[name] == "categorical"],
        binning_fit_params={
            name: {"monotonic_trend": settings.monotonic_trend}
            for name in names
            if kinds[name] == "numeric"
        },
    )


def _logistic_regression(settings: TrainingSettings) -> LogisticRegression:
    """The estimator on WOE columns."""
    return LogisticRegression(C=settings.regularisation, max_iter=1000)


def _bin_weights_of_evidence(events: FloatArray, non_events: FloatArray) -> FloatArray:
    """Return WOE per bin as optbinning transforms it: 0 where a class is absent."""
    woe = np.zeros(len(events), dtype=np.float64)
    usable = (events > 0) & (non_events > 0)
    total_events, total_non_events = events.sum(), non_events.sum()
    woe[usable] = np.log((non_events[usable] / total_non_events) / (events[usable] / total_events))
    return woe


def fit_scorecard(
    features: pd.DataFrame,
    labels: LabelArray,
    *,
    kinds: dict[str, FeatureKind],
    event_is_favourable: bool = False,
    settings: TrainingSettings | None = None,
) -> ScorecardSpec:
    """Fit monotonic WOE binning and a logistic regression, then scale to points."""
    settings = settings or TrainingSettings()
    process = _binning_process(kinds, settings)
    woe = pd.DataFrame(
        process.fit_transform(features[list(kinds)], labels, metric_missing="empirical"),
        columns=list(kinds),
    )
    selected = [name for name in kinds if len(process.get_binned_variable(name).splits) > 0]
    if not selected:
        raise NoUsableFeatures(
            "no feature separates the two outcomes: every binning came out as a single bin"
        )
    while True:
        model = _logistic_regression(settings).fit(woe[selected], labels)
        coefficients = model.coef_[0]
        # WOE grows as the event gets rarer, so a positive weight would reverse a bin's story.
        if (
            not settings.enforce_coefficient_signs
            or (coefficients <= 0).all()
            or len(selected) == 1
        ):
            break
        selected.pop(int(np.argmax(coefficients)))
    intercept = float(model.intercept_[0])
    scale = settings.scale
    sense = 1.0 if event_is_favourable else -1.0
    share = 1.0 / len(selected)
    scorecard_features: list[ScorecardFeature] = []
    for name, coefficient in zip(selected, coefficients, strict=True):
        binned = process.get_binned_variable(name)
        table = binned.binning_table
        events = np.asarray(table.n_event, dtype=np.float64)
        non_events = np.asarray(table.n_nonevent, dtype=np.float64)
        # optbinning keeps regular bins, then a special-codes bin (unused here), then missing.
        keep = [*range(len(events) - 2), len(events) - 1]
        events, non_events = events[keep], non_events[keep]
        woe_values = _bin_weights_of_evidence(events, non_events)
        points = scale.offset * share + scale.factor * sense * (
            float(coefficient) * woe_values + intercept * share
        )
        if kinds[name] == "numeric":
            splits = tuple(float(split) for split in binned.splits)
            groups: tuple[tuple[str, ...], ...] = ()
            labels_text = (*interval_labels(splits), MISSING_LABEL)
        else:
            splits = ()
            groups = tuple(tuple(str(category) for category in group) for group in binned.splits)
            labels_text = (*(", ".join(group) for group in groups), MISSING_LABEL)
        counts = events + non_events
        event_share = events / events.sum()
        non_event_share = non_events / non_events.sum()
        scorecard_features.append(
            ScorecardFeature(
                name=name,
                kind=kinds[name],
                splits=splits,
                groups=groups,
                coefficient=float(coefficient),
                information_value=float(np.sum((non_event_share - event_share) * woe_values)),
                bins=tuple(
                    ScorecardBin(
                        label=label,
                        count=int(count),
                        event_count=int(event_count),
                        event_rate=float(event_count / count) if count else 0.0,
                        woe=float(bin_woe),
                        points=float(bin_points),
                    )
                    for label, count, event_count, bin_woe, bin_points in zip(
                        labels_text, counts, events, woe_values, points, strict=True
                    )
                ),
            )
        )
    return ScorecardSpec(
        features=tuple(scorecard_features),
        intercept=intercept,
        scale=scale,
        event_is_favourable=event_is_favourable,
    )


def fit_reference_scorecard(
    features: pd.DataFrame,
    labels: LabelArray,
    *,
    spec: ScorecardSpec,
    settings: TrainingSettings | None = None,
) -> Scorecard:
    """Fit optbinning's own Scorecard on the spec's features, to check our scorer against."""
    settings = settings or TrainingSettings()
    kinds = {feature.name: feature.kind for feature in spec.features}
    scale = settings.scale
    scorecard = Scorecard(
        binning_process=_binning_process(kinds, settings),
        estimator=_logistic_regression(settings),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": scale.points_to_double_odds,
            "odds": scale.base_odds,
            "scorecard_points": scale.base_points,
        },
    )
    return scorecard.fit(features[list(kinds)], labels, metric_missing="empirical")


def _monotone_direction(values: FloatArray, labels: LabelArray, *, base_rate: float) -> int:
    """Return +1/-1 when the event rate rises/falls steadily with the value, else 0."""
    present = ~np.isnan(values)
    if present.sum() < 100:
        return 0
    series = pd.Series(values[present])
    outcome = pd.Series(labels[present].astype(np.float64))
    correlation = series.corr(outcome, method="spearman")
    if not np.isfinite(correlation) or abs(correlation) < 0.03:
        return 0
    deciles = pd.qcut(series, 10, labels=False, duplicates="drop")
    rates = outcome.groupby(deciles).mean().to_numpy()
    if len(rates) < 3:
        return 0
    steps = np.diff(rates)
    tolerance = 0.025 * base_rate
    if correlation > 0 and (steps >= -tolerance).all():
        return 1
    if correlation < 0 and (steps <= tolerance).all():
        return -1
    return 0


def fit_gbm(
    features: pd.DataFrame,
    labels: LabelArray,
    *,
    kinds: dict[str, FeatureKind],
    seed: int,
    event_is_favourable: bool = False,
    ordered_by_time: bool = False,
    settings: TrainingSettings | None = None,
) -> GbmSpec:
    """Fit a LightGBM booster with monotone constraints where the data shows a steady trend."""
    settings = settings or TrainingSettings()
    gbm_features: list[GbmFeature] = []
    base_rate = float(labels.mean())
    for name, kind in kinds.items():
        if kind == "numeric":
            direction = (
                _monotone_direction(numeric_values(features[name]), labels, base_rate=base_rate)
                if settings.gbm_monotone_constraints
                else 0
            )
            gbm_features.append(GbmFeature(name=name, kind=kind, categories=(), monotone=direction))
        else:
            categories = tuple(sorted(str(value) for value in features[name].dropna().unique()))
            gbm_features.append(GbmFeature(name=name, kind=kind, categories=categories, monotone=0))
    matrix = gbm_matrix(tuple(gbm_features), features)
    positions = np.arange(len(labels))
    if ordered_by_time:
        cut = int(len(positions) * (1 - settings.gbm_validation_share))
        fit_rows, validation_rows = positions[:cut], positions[cut:]
    else:
        fit_rows, validation_rows = train_test_split(
            positions, test_size=settings.gbm_validation_share, stratify=labels, random_state=seed
        )
    parameters: dict[str, str | int | float | bool] = {
        "objective": "binary",
        "learning_rate": settings.gbm_learning_rate,
        "num_leaves": settings.gbm_num_leaves,
        "min_data_in_leaf": settings.gbm_min_data_in_leaf,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 5.0,
        "num_threads": settings.gbm_threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
        "monotone_constraints": ",".join(str(feature.monotone) for feature in gbm_features),
        "monotone_constraints_method": "advanced",
    }
    categorical = [
        index for index, feature in enumerate(gbm_features) if feature.kind == "categorical"
    ]
    fit_set = lightgbm.Dataset(
        matrix[fit_rows],
        labels[fit_rows],
        feature_name=[f"f{index}" for index in range(len(gbm_features))],
        categorical_feature=categorical or "auto",
        free_raw_data=True,
    )
    validation_set = lightgbm.Dataset(
        matrix[validation_rows], labels[validation_rows], reference=fit_set
    )
    booster = lightgbm.train(
        parameters,
        fit_set,
        num_boost_round=settings.gbm_max_rounds,
        valid_sets=[validation_set],
        callbacks=[lightgbm.early_stopping(settings.gbm_early_stopping_rounds, verbose=False)],
    )
    best_iteration = int(booster.best_iteration) or int(booster.current_iteration())
    return GbmSpec(
        booster=booster.model_to_string(num_iteration=best_iteration),
        features=tuple(gbm_features),
        scale=settings.scale,
        event_is_favourable=event_is_favourable,
        best_iteration=best_iteration,
        parameters=parameters,
    )


def reference_distribution(
    name: str, values: Any, *, kind: FeatureKind, bins: int = 10
) -> ReferenceDistribution:
    """Bin a reference sample by quantiles or frequent categories for stability checks."""
    if kind == "numeric":
        numbers = numeric_values(values)
        present = numbers[~np.isnan(numbers)]
        quantiles = (
            np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
            if len(present)
            else np.array([])
        )
        edges = tuple(float(edge) for edge in np.unique(quantiles))
        bin_index = np.searchsorted(np.append(np.asarray(edges), np.nan), numbers, side="right")
        counts = np.bincount(bin_index, minlength=len(edges) + 2)
        return ReferenceDistribution(
            name=name,
            kind=kind,
            edges=edges,
            categories=(),
            shares=tuple(float(share) for share in counts / max(len(numbers), 1)),
        )
    texts = _categorical_strings(values if isinstance(values, pd.Series) else pd.Series(values))
    frequent = tuple(
        str(category) for category in texts.value_counts().index[:MOST_CATEGORIES_TRACKED]
    )
    codes = category_codes(texts, frequent)
    missing = texts.isna().to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(frequent)).astype(np.float64)
    other = float(((codes < 0) & ~missing).sum())
    shares = np.append(counts, [other, float(missing.sum())]) / max(len(texts), 1)
    return ReferenceDistribution(
        name=name,
        kind=kind,
        edges=(),
        categories=frequent,
        shares=tuple(float(share) for share in shares),
    )


def data_fingerprint(prepared: PreparedData) -> str:
    """Return a sha256 that changes whenever the training rows, columns or labels change."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {
                "target": prepared.target,
                "positive": prepared.positive_label,
                "kinds": prepared.kinds,
            },
            sort_keys=True,
        ).encode()
    )
    digest.update(pd.util.hash_pandas_object(prepared.features, index=False).to_numpy().tobytes())
    digest.update(prepared.labels.tobytes())
    return digest.hexdigest()


def _library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a trained model."""
    return {name: package_version(name) for name in LIBRARIES}


def train_model(
    frame: pd.DataFrame,
    *,
    target: str,
    family: Family = "scorecard",
    positive: str | None = None,
    event_is_favourable: bool = False,
    id_column: str | None = None,
    date_column: str | None = None,
    seed: int = 0,
    trained_by: str | None = None,
    settings: TrainingSettings | None = None,
) -> TrainedModel:
    """Train one model family on a table with a binary target and evaluate it on held-out rows."""
    if family not in ("scorecard", "gbm"):
        raise TrainingDataInvalid(f"unknown model family '{family}'; choose scorecard or gbm")
    settings = settings or TrainingSettings()
    started = time.perf_counter()
    prepared = prepare_training_data(
        frame,
        target=target,
        positive=positive,
        id_column=id_column,
        date_column=date_column,
        settings=settings,
    )
    split = split_rows(prepared, seed=seed, settings=settings)
    train_features = prepared.features.iloc[split.train].reset_index(drop=True)
    test_features = prepared.features.iloc[split.test].reset_index(drop=True)
    train_labels = prepared.labels[split.train]
    test_labels = prepared.labels[split.test]

    scorecard: ScorecardSpec | None = None
    gbm: GbmSpec | None = None
    if family == "scorecard":
        scorecard = fit_scorecard(
            train_features,
            train_labels,
            kinds=prepared.kinds,
            event_is_favourable=event_is_favourable,
            settings=settings,
        )
        scorer: CompiledScorecard | GbmScorer = CompiledScorecard(scorecard)
    else:
        gbm = fit_gbm(
            train_features,
            train_labels,
            kinds=prepared.kinds,
            seed=seed,
            event_is_favourable=event_is_favourable,
            ordered_by_time=split.method == "time",
            settings=settings,
        )
        scorer = GbmScorer(gbm)
    held_out = scorer.score(test_features, reasons=False)
    evaluation = evaluate(test_labels, held_out.probability)
    train_points = scorer.score(train_features, reasons=False).points
    summary = ModelSummary(
        family=family,
        target=target,
        positive_label=prepared.positive_label,
        event_is_favourable=event_is_favourable,
        id_column=prepared.id_column,
        date_column=prepared.date_column,
        input_columns=tuple(prepared.kinds),
        input_kinds=tuple(prepared.kinds.values()),
        dropped_columns=prepared.dropped,
        split=split.method,
        seed=seed,
        n_train=len(split.train),
        n_test=len(split.test),
        train_event_rate=float(train_labels.mean()),
        data_fingerprint=data_fingerprint(prepared),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        trained_by=trained_by,
        training_seconds=round(time.perf_counter() - started, 3),
        library_versions=_library_versions(),
    )
    return TrainedModel(
        summary=summary,
        evaluation=evaluation,
        references=tuple(
            reference_distribution(
                name, train_features[name], kind=kind, bins=settings.reference_bins
            )
            for name, kind in prepared.kinds.items()
        ),
        score_reference=reference_distribution(
            "score", train_points, kind="numeric", bins=settings.reference_bins
        ),
        scorecard=scorecard,
        gbm=gbm,
    )
