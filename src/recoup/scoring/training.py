"""Training on any tabular data with a binary target: a WOE scorecard or a LightGBM challenger."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt
import pandas as pd
from optbinning import BinningProcess, Scorecard
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from recoup.kit.clock import utcnow
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
    formatted_numbers,
    gbm_matrix,
    numeric_values,
)
from recoup.scoring.spec import (
    MISSING_LABEL,
    RARE_LABEL,
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
# Names spreadsheets and R give the row numbers they write in front of a table.
ROW_NUMBER_NAMES = frozenset({"", "rownames", "row.names", "row_names", "index", "unnamed: 0"})
MOST_CATEGORIES_TRACKED = 20
# A column read as numbers when nearly all its values parse; the rest become missing.
NUMERIC_SHARE = 0.95
# Text columns with many values and few rows per value are free text, not categories.
MOST_TEXT_CATEGORIES = 50
FEWEST_ROWS_PER_CATEGORY = 30
# Categories with fewer rows than this are pooled, so a rare value is not binned on noise.
RARE_CATEGORY_ROWS = 30
DATE_SHARE = 0.95
DATE_SAMPLE = 200
DATE_TEXT = re.compile(
    r"\d{4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"
    r"|[A-Za-z]{3}[- ]\d{2}(?:\d{2})?"
    r"|\d{4}年\d{1,2}月(?:\d{1,2}日)?"
)
# A feature that alone ranks the outcome this well is almost surely recorded after it.
LEAKAGE_AUC = 0.95
AFTER_OUTCOME_NAME = re.compile(
    r"recover|total_?rec|total_?pymnt|last_?pymnt|out_?prncp|settle|charge_?off|charged_?off"
    r"|write_?off|written_?off|paid_?off|payoff|collected|(?:^|_)(?:after|post)(?:_|$)"
)
CALIBRATION_FOLDS = 5
# Fewer held-out rows of either class than this leave the calibration to chance.
FEWEST_CALIBRATION_ROWS = 10
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
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # Category columns as written, before rare values were pooled: what scoring will meet.
    unpooled: dict[str, pd.Series] = field(default_factory=dict)


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
        names = [str(name) for name in frame.columns]
        by_lower = {name.lower(): name for name in names}
        close = difflib.get_close_matches(target.lower(), list(by_lower), n=1, cutoff=0.6)
        hint = f"did you mean '{by_lower[close[0]]}'? " if close else ""
        raise TargetColumnMissing(
            f"target column '{target}' is not in the data; {hint}the columns are: "
            + ", ".join(names)
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
    present = int(column.notna().sum())
    parsed = int(pd.Series(numeric_values(column)).notna().sum())
    return "numeric" if present and parsed >= NUMERIC_SHARE * present else "categorical"


def _formatted_example(column: pd.Series) -> tuple[str, float] | None:
    """Return a value written for people ('$35,000') and its number, if the column has one."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return None
    texts = column.dropna()
    plain = pd.to_numeric(texts, errors="coerce")
    formatted = texts[plain.isna()]
    if formatted.empty:
        return None
    numbers = formatted_numbers(formatted.head(50))
    readable = numbers.notna().to_numpy(dtype=bool)
    if not readable.any():
        return None
    position = int(np.argmax(readable))
    return str(formatted.iloc[position]), float(numbers.iloc[position])


def looks_like_dates(column: pd.Series) -> bool:
    """Tell whether a text column holds dates, judged on a sample of its distinct values."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    sample = pd.Series(column.dropna().astype(str).str.strip().unique()[:DATE_SAMPLE])
    if sample.empty:
        return False
    matches = sample.map(lambda text: DATE_TEXT.fullmatch(text) is not None)
    return bool(matches.mean() >= DATE_SHARE)


def parse_dates(column: pd.Series) -> pd.Series:
    """Read a column of dates in any common spelling as UTC timestamps; unreadable ones NaT."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.to_datetime(column, utc=True)
    return pd.to_datetime(
        column.astype("string").str.strip(), errors="coerce", utc=True, format="mixed"
    )


def _is_row_number(name: str, numbers: FloatArray) -> bool:
    """Tell whether a numeric column only counts rows: distinct integers in file order."""
    present = numbers[~np.isnan(numbers)]
    if len(present) < len(numbers) or len(present) < 2:
        return False
    if not np.all(np.equal(np.mod(present, 1), 0)):
        return False
    steps = np.diff(present)
    monotone = bool((steps > 0).all() or (steps < 0).all())
    return monotone and (len(present) >= 50 or name.strip().lower() in ROW_NUMBER_NAMES)


def _pool_rare(texts: pd.Series) -> tuple[pd.Series, int]:
    """Pool categories seen on fewer than RARE_CATEGORY_ROWS rows; return the column and count."""
    counts = texts.value_counts(dropna=True)
    rare = counts.index[counts < RARE_CATEGORY_ROWS]
    if len(rare) < 1 or len(rare) == len(counts):
        return texts, 0
    pooled = texts.where(~texts.isin(set(rare)), RARE_LABEL)
    return pooled, len(rare)


def _single_feature_auc(values: pd.Series, kind: FeatureKind, labels: LabelArray) -> float | None:
    """Return how well one column alone ranks the outcome (AUC, 0.5 = not at all)."""
    if kind == "numeric":
        numbers = np.asarray(values, dtype=np.float64)
        present = ~np.isnan(numbers)
        if not present.any():
            return None
        # Missing values rank below every present one, as their own group.
        ranked = np.where(present, numbers, np.nanmin(numbers) - 1.0)
    else:
        texts = values.fillna(MISSING_LABEL).astype(str)
        if texts.nunique() > MOST_TEXT_CATEGORIES:
            return None
        ranked = texts.map(pd.Series(labels, index=texts.index).groupby(texts).mean()).to_numpy(
            dtype=np.float64
        )
    auc = float(roc_auc_score(labels, ranked))
    return max(auc, 1.0 - auc)


def leakage_warnings(
    features: pd.DataFrame, kinds: dict[str, FeatureKind], labels: LabelArray
) -> list[str]:
    """Warn about features that may be recorded after the outcome they are to predict."""
    warnings: list[str] = []
    for name, kind in kinds.items():
        worded = AFTER_OUTCOME_NAME.search(re.sub(r"[^a-z0-9]+", "_", name.lower()))
        if worded:
            warnings.append(
                f"'{name}' sounds like something known only after the outcome "
                f"('{worded.group(0).strip('_')}'); keep it only if it is known when scoring"
            )
            continue
        auc = _single_feature_auc(features[name], kind, labels)
        if auc is not None and auc >= LEAKAGE_AUC:
            warnings.append(
                f"'{name}' alone separates the target almost perfectly (AUC {auc:.3f}); "
                "check that it is not recorded after the outcome"
            )
    return warnings


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
        dates = parse_dates(rows[date_column])
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
    notes: list[str] = []
    unpooled: dict[str, pd.Series] = {}
    for name in rows.columns:
        if name in excluded:
            continue
        column = rows[name]
        if int(column.notna().sum()) == 0:
            dropped.append(DroppedColumn(name=str(name), reason="every value is missing"))
            continue
        kind = _column_kind(column)
        if kind == "categorical" and looks_like_dates(column):
            dropped.append(
                DroppedColumn(
                    name=str(name),
                    reason="dates; pass --date-column to hold out the latest rows by them",
                )
            )
            continue
        if kind == "numeric":
            prepared = pd.Series(numeric_values(column))
            example = _formatted_example(column)
            if example is not None:
                unread = int(column.notna().sum()) - int(prepared.notna().sum())
                notes.append(
                    f"'{name}' read as numbers ('{example[0]}' → {example[1]:g})"
                    + (f"; {unread} unreadable value(s) taken as missing" if unread else "")
                )
            if _is_row_number(str(name), prepared.to_numpy(dtype=np.float64)):
                dropped.append(
                    DroppedColumn(
                        name=str(name),
                        reason="row numbers (distinct integers in file order); "
                        "name it with --id-column if it is an id",
                    )
                )
                continue
        else:
            prepared = _categorical_strings(column)
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
        if kind == "categorical":
            per_category = int(prepared.notna().sum()) / distinct
            if distinct > MOST_TEXT_CATEGORIES and per_category < FEWEST_ROWS_PER_CATEGORY:
                dropped.append(
                    DroppedColumn(
                        name=str(name),
                        reason=f"free text with {distinct:,} distinct values "
                        f"({per_category:.1f} rows per value); group it into at most "
                        f"{MOST_TEXT_CATEGORIES} categories to use it",
                    )
                )
                continue
            written = prepared
            prepared, pooled = _pool_rare(prepared)
            if pooled:
                unpooled[str(name)] = written
                notes.append(
                    f"'{name}': {pooled} categor{'y' if pooled == 1 else 'ies'} with fewer than "
                    f"{RARE_CATEGORY_ROWS} rows pooled as '{RARE_LABEL}'"
                )
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
    features = pd.DataFrame(columns)
    return PreparedData(
        features=features,
        labels=labels,
        kinds=kinds,
        target=target,
        positive_label=positive_label,
        id_column=id_column,
        date_column=date_column,
        dates=dates,
        dropped=tuple(dropped),
        rows_without_target=int((~present).sum()),
        notes=tuple(notes),
        warnings=tuple(leakage_warnings(features, kinds, labels)),
        unpooled=unpooled,
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
    # A feature with no value in the training rows tells nothing (and cannot be binned).
    kinds = {name: kind for name, kind in kinds.items() if features[name].notna().any()}
    if not kinds:
        raise NoUsableFeatures("no feature has a value in the training rows")
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
    if series.nunique() < 2 or outcome.nunique() < 2:
        return 0  # a single value (where present) has no trend; its rank correlation is undefined
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


def expit(log_odds: FloatArray) -> FloatArray:
    """Return probabilities of log-odds without overflow at the extremes."""
    probability: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700.0, 700.0)))
    return probability


def _shift_to_rate(log_odds: FloatArray, rate: float) -> float:
    """Return the shift of log-odds whose mean probability is the given rate (bisection)."""
    low, high = -60.0, 60.0
    for _ in range(100):
        middle = (low + high) / 2.0
        if float(np.mean(expit(log_odds + middle))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


@dataclass(frozen=True, slots=True)
class Calibration:
    """Platt scaling of event log-odds: calibrated = slope · raw + intercept."""

    slope: float
    intercept: float

    def probabilities(self, log_odds: FloatArray) -> FloatArray:
        """Return calibrated event probabilities."""
        calibrated: FloatArray = expit(self.slope * log_odds + self.intercept)
        return calibrated


def event_log_odds(probability: FloatArray) -> FloatArray:
    """Return the log-odds of event probabilities, clipped away from 0 and 1."""
    clipped = np.clip(probability, 1e-12, 1.0 - 1e-12)
    log_odds: FloatArray = np.log(clipped / (1.0 - clipped))
    return log_odds


def fit_calibration(log_odds: FloatArray, labels: LabelArray) -> Calibration:
    """Fit Platt scaling to outcomes; only re-base the intercept if the slope comes out flat."""
    model = LogisticRegression(C=1e6, max_iter=1000).fit(log_odds[:, None], labels)
    slope = float(model.coef_[0, 0])
    if slope > 0.0:
        return Calibration(slope=slope, intercept=float(model.intercept_[0]))
    # A window where the score does not rank at all: keep the ranking, match the event rate.
    rate = float(labels.mean())
    return Calibration(slope=1.0, intercept=_shift_to_rate(log_odds, rate))


def cross_fitted_probabilities(
    log_odds: FloatArray, labels: LabelArray, *, seed: int
) -> FloatArray:
    """Calibrate each fold on the other folds, so no row is judged by a fit it was part of."""
    calibrated = np.empty(len(labels), dtype=np.float64)
    folds = StratifiedKFold(CALIBRATION_FOLDS, shuffle=True, random_state=seed)
    for fit_rows, judged_rows in folds.split(log_odds, labels):
        calibration = fit_calibration(log_odds[fit_rows], labels[fit_rows])
        calibrated[judged_rows] = calibration.probabilities(log_odds[judged_rows])
    return calibrated


def can_calibrate(labels: LabelArray) -> bool:
    """Tell whether held-out rows hold enough of both outcomes to calibrate on."""
    events = int(labels.sum())
    fewest = max(FEWEST_CALIBRATION_ROWS, CALIBRATION_FOLDS)
    return min(events, len(labels) - events) >= fewest


def calibrated_scorecard(spec: ScorecardSpec, calibration: Calibration) -> ScorecardSpec:
    """Fold a calibration into the scorecard's points, so points and probability still agree."""
    scale = spec.scale
    share = 1.0 / len(spec.features)
    sense = 1.0 if spec.event_is_favourable else -1.0
    base = scale.offset * share
    shift = scale.factor * sense * calibration.intercept * share
    features = tuple(
        dataclasses.replace(
            feature,
            coefficient=calibration.slope * feature.coefficient,
            bins=tuple(
                dataclasses.replace(
                    scorecard_bin,
                    points=base + calibration.slope * (scorecard_bin.points - base) + shift,
                )
                for scorecard_bin in feature.bins
            ),
        )
        for feature in spec.features
    )
    return dataclasses.replace(
        spec,
        features=features,
        intercept=calibration.slope * spec.intercept + calibration.intercept,
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
    raw_probability = scorer.score(test_features, reasons=False).probability
    notes = list(prepared.notes)
    window = (
        f"from {pd.Timestamp(prepared.dates.iloc[split.test].min()).date()} to "
        f"{pd.Timestamp(prepared.dates.iloc[split.test].max()).date()}"
        if prepared.dates is not None and split.method == "time"
        else "(a random share)"
    )
    calibration_method = "none"
    if can_calibrate(test_labels):
        # Calibrate on the held-out window, the most recent period when the split is by date;
        # its figures are cross-fitted, and the served model uses the fit on the whole window.
        log_odds = event_log_odds(raw_probability)
        calibration = fit_calibration(log_odds, test_labels)
        evaluation = evaluate(
            test_labels,
            cross_fitted_probabilities(log_odds, test_labels, seed=seed),
            ranking=raw_probability,
        )
        if scorecard is not None:
            scorecard = calibrated_scorecard(scorecard, calibration)
            scorer = CompiledScorecard(scorecard)
        else:
            assert gbm is not None
            gbm = dataclasses.replace(
                gbm,
                calibration_slope=calibration.slope,
                calibration_intercept=calibration.intercept,
            )
            scorer = GbmScorer(gbm)
        calibration_method = "platt"
        notes.append(
            f"probabilities calibrated (Platt) on the {len(split.test):,} held-out rows {window}: "
            f"slope {calibration.slope:.3f}, intercept {calibration.intercept:+.3f}; held-out "
            f"calibration figures are {CALIBRATION_FOLDS}-fold cross-fitted"
        )
    else:
        evaluation = evaluate(test_labels, raw_probability)
        notes.append(
            f"probabilities not calibrated: the held-out rows hold fewer than "
            f"{max(FEWEST_CALIBRATION_ROWS, CALIBRATION_FOLDS)} rows of one outcome"
        )
    # Drift is judged against the population the model will next meet: the latest window when
    # the split is by date, else every row.
    reference_rows = (
        split.test if split.method == "time" else np.arange(len(prepared.labels), dtype=np.intp)
    )
    reference_features = prepared.features.iloc[reference_rows].reset_index(drop=True)
    reference_points = scorer.score(reference_features, reasons=False).points
    # Input drift compares categories as written, the way scoring runs will see them.
    reference_inputs = reference_features.assign(
        **{
            name: column.iloc[reference_rows].reset_index(drop=True)
            for name, column in prepared.unpooled.items()
        }
    )
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
        trained_at=utcnow().isoformat(timespec="seconds"),
        trained_by=trained_by,
        training_seconds=round(time.perf_counter() - started, 3),
        library_versions=_library_versions(),
        calibration=calibration_method,
        calibration_rows=len(split.test) if calibration_method != "none" else 0,
        notes=tuple(notes),
        warnings=prepared.warnings,
    )
    return TrainedModel(
        summary=summary,
        evaluation=evaluation,
        references=tuple(
            reference_distribution(
                name, reference_inputs[name], kind=kind, bins=settings.reference_bins
            )
            for name, kind in prepared.kinds.items()
        ),
        score_reference=reference_distribution(
            "score", reference_points, kind="numeric", bins=settings.reference_bins
        ),
        scorecard=scorecard,
        gbm=gbm,
    )
