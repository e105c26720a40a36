"""The serving path: vectorised scoring with probabilities, points, grades and reasons."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from recoup.scoring.errors import FeatureColumnsMissing
from recoup.scoring.reasons import Locale, reason_text
from recoup.scoring.spec import (
    GRADES,
    RARE_LABEL,
    FloatArray,
    GbmFeature,
    GbmSpec,
    GradeScale,
    PointsScale,
    ScorecardFeature,
    ScorecardSpec,
    TrainedModel,
)

REASON_COUNT = 3
GBM_THREADS = 2
# Below this many rows a second prediction thread costs more in start-up and waiting than it saves.
GBM_PARALLEL_ROWS = 100_000

# A pandas DataFrame or a mapping of column name to values; pandas carries no type stubs here.
Frame: TypeAlias = Mapping[str, Any]
IndexArray = npt.NDArray[np.intp]


def require_columns(frame: Frame, names: tuple[str, ...]) -> None:
    """Raise when the frame lacks any column the model reads."""
    present = set(frame.columns) if isinstance(frame, pd.DataFrame) else set(frame)
    missing = [name for name in names if name not in present]
    if missing:
        raise FeatureColumnsMissing(
            f"the data to score lacks {len(missing)} column(s) the model needs: "
            + ", ".join(missing)
        )


CURRENCY_PREFIX = re.compile(r"^([-+]?)\s*[$¥￥€£]\s*")
GROUPED_DIGITS = r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"


def formatted_numbers(texts: pd.Series) -> pd.Series:
    """Read numbers written for people — '13.99%', '$35,000', '1,234.50' — as floats, else NaN."""
    cleaned = (
        texts.astype("string")
        .str.strip()
        .str.replace(CURRENCY_PREFIX, r"\1", regex=True)
        .str.replace(r"\s*%$", "", regex=True)
    )
    grouped = cleaned.str.fullmatch(GROUPED_DIGITS).fillna(False).astype(bool)
    cleaned = cleaned.where(~grouped, cleaned.str.replace(",", "", regex=False))
    return pd.to_numeric(cleaned, errors="coerce")


def numeric_values(values: Any) -> FloatArray:
    """Return a column as float64, reading '13.99%' or '$35,000' as numbers; else NaN."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        parsed = pd.to_numeric(series, errors="coerce")
        failed = (parsed.isna() & series.notna()).to_numpy(dtype=bool)
        if failed.any():
            parsed = parsed.astype(np.float64)
            parsed[failed] = formatted_numbers(series[failed]).to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        series = parsed
    numbers: FloatArray = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return numbers


def category_codes(values: Any, categories: tuple[str, ...]) -> IndexArray:
    """Return each value's position in `categories`; -1 for missing or unseen values."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if not (pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)):
        series = (
            series.astype(object)
            .where(series.notna(), None)
            .map(lambda value: value if value is None else str(value))
        )
    return np.asarray(pd.Index(list(categories), dtype=object).get_indexer(series), dtype=np.intp)


def model_category_codes(values: Any, categories: tuple[str, ...]) -> IndexArray:
    """Return category codes as a model reads them: values unseen in training join the rare pool.

    A model whose training pooled rare categories lists the pool among its categories; any other
    value (rare in training or never seen) goes there too. Without a pool, unseen is -1.
    """
    codes = category_codes(values, categories)
    if RARE_LABEL in categories:
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        unseen = (codes < 0) & series.notna().to_numpy(dtype=bool)
        codes[unseen] = categories.index(RARE_LABEL)
    return codes


def probability_from_points(
    points: FloatArray, *, scale: PointsScale, event_is_favourable: bool
) -> FloatArray:
    """Return the event probability that a number of points stands for."""
    favourable_log_odds = scale.favourable_log_odds(points)
    event_log_odds = favourable_log_odds if event_is_favourable else -favourable_log_odds
    return 1.0 / (1.0 + np.exp(-event_log_odds))


def grade_indices(
    unfavourable_probability: FloatArray, grades: GradeScale
) -> npt.NDArray[np.uint8]:
    """Return 0 for grade A through 4 for grade E."""
    grade = np.zeros(len(unfavourable_probability), dtype=np.uint8)
    for cutoff in grades.cutoffs:
        grade += unfavourable_probability >= cutoff
    return grade


def top_reasons(harm: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    """Return, per row, the three columns of largest positive harm, largest first; -1 pads."""
    rows, columns = harm.shape
    picked = min(REASON_COUNT, columns)
    if columns > picked:
        candidates = np.argpartition(-harm, picked - 1, axis=1)[:, :picked]
    else:
        candidates = np.broadcast_to(np.arange(columns, dtype=np.intp), (rows, columns))
    values = np.take_along_axis(harm, candidates, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    codes = np.take_along_axis(candidates, order, axis=1).astype(np.int16)
    codes[np.take_along_axis(values, order, axis=1) <= 0] = -1
    if picked < REASON_COUNT:
        padding = np.full((rows, REASON_COUNT - picked), -1, dtype=np.int16)
        codes = np.hstack([codes, padding])
    return codes


@dataclass(frozen=True, slots=True)
class ScoreBatch:
    """Scores for a batch of rows; reasons index into `feature_names`."""

    probability: FloatArray
    points: FloatArray
    grade_index: npt.NDArray[np.uint8]
    reason_codes: npt.NDArray[np.int16]
    feature_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.points)

    @property
    def grades(self) -> npt.NDArray[np.str_]:
        """Risk grade letters A–E per row."""
        return np.asarray(GRADES)[self.grade_index]

    def reason_features(self, row: int) -> list[str]:
        """Return the features pulling this row's score down, worst first."""
        return [self.feature_names[code] for code in self.reason_codes[row] if code >= 0]

    def reasons(self, row: int, *, locale: Locale = "en") -> list[str]:
        """Return this row's reasons worded for an agent."""
        return [reason_text(feature, locale=locale) for feature in self.reason_features(row)]


class _CompiledFeature:
    """Lookup tables for one scorecard feature."""

    __slots__ = ("categories", "category_bins", "kind", "name", "points", "reason_keys", "splits")

    def __init__(self, feature: ScorecardFeature) -> None:
        self.name = feature.name
        self.kind = feature.kind
        self.points = np.asarray(feature.points, dtype=np.float64)
        self.reason_keys = np.zeros(len(self.points), dtype=np.uint16)
        # A trailing NaN sends NaN past every split (numpy sorts NaN last) while +inf stays
        # in the top regular bin: the same assignment as optbinning's np.digitize.
        self.splits = np.append(np.asarray(feature.splits, dtype=np.float64), np.nan)
        categories: list[str] = []
        category_bins: list[int] = []
        for bin_index, group in enumerate(feature.groups):
            categories.extend(group)
            category_bins.extend([bin_index] * len(group))
        self.categories = tuple(categories)
        # Code -1 (missing or unseen) reads the last entry, the missing bin, as optbinning does.
        self.category_bins = np.asarray([*category_bins, len(feature.groups)], dtype=np.intp)

    def bin_indices(self, values: Any) -> IndexArray:
        """Return each value's bin; the missing bin is the last."""
        if self.kind == "numeric":
            return np.searchsorted(self.splits, numeric_values(values), side="right")
        return self.category_bins[model_category_codes(values, self.categories)]


class CompiledScorecard:
    """A scorecard compiled to numpy lookups for fast batch scoring."""

    def __init__(self, spec: ScorecardSpec) -> None:
        self.spec = spec
        self.features = tuple(_CompiledFeature(feature) for feature in spec.features)
        self.feature_names = tuple(feature.name for feature in spec.features)
        self.key_features = self._rank_reason_keys()

    def _rank_reason_keys(self) -> npt.NDArray[np.int16]:
        """Give every (feature, bin) with a points deficit a unique rank; return rank → feature."""
        deficits = [
            (float(feature.points.max() - points), -column, column, bin_index)
            for column, feature in enumerate(self.features)
            for bin_index, points in enumerate(feature.points)
            if feature.points.max() - points > 1e-9
        ]
        if len(deficits) >= np.iinfo(np.uint16).max:
            raise ValueError(f"a scorecard with {len(deficits)} bins is too large to rank reasons")
        key_features = np.full(len(deficits) + 1, -1, dtype=np.int16)
        # Rows compare ranks, not points: each row holds one key per feature and keys are unique,
        # so the three largest keys name the three features furthest below their best bin.
        for rank, (_, _, column, bin_index) in enumerate(sorted(deficits), start=1):
            self.features[column].reason_keys[bin_index] = rank
            key_features[rank] = column
        return key_features

    def bin_indices(self, frame: Frame) -> dict[str, IndexArray]:
        """Return the bin of every row for every feature."""
        require_columns(frame, self.feature_names)
        return {feature.name: feature.bin_indices(frame[feature.name]) for feature in self.features}

    def points(self, frame: Frame) -> FloatArray:
        """Return total points per row."""
        return self._score_points(frame, with_reasons=False)[0]

    def _score_points(
        self, frame: Frame, *, with_reasons: bool
    ) -> tuple[FloatArray, npt.NDArray[np.int16] | None]:
        require_columns(frame, self.feature_names)
        rows = len(frame[self.feature_names[0]]) if self.feature_names else 0
        total = np.zeros(rows, dtype=np.float64)
        # The three largest reason keys per row, kept sorted as each feature streams past.
        top = [np.zeros(rows, dtype=np.uint16) for _ in range(REASON_COUNT)]
        carried = np.empty(rows, dtype=np.uint16)
        for feature in self.features:
            bins = feature.bin_indices(frame[feature.name])
            total += feature.points[bins]
            if with_reasons:
                key = feature.reason_keys[bins]
                for slot in top[:-1]:
                    np.minimum(slot, key, out=carried)
                    np.maximum(slot, key, out=slot)
                    key, carried = carried, key
                np.maximum(top[-1], key, out=top[-1])
        if not with_reasons:
            return total, None
        return total, np.column_stack([self.key_features[slot] for slot in top])

    def score(
        self, frame: Frame, *, grades: GradeScale | None = None, reasons: bool = True
    ) -> ScoreBatch:
        """Score rows: event probability, points, grade and the top three reasons."""
        points, reason_codes = self._score_points(frame, with_reasons=reasons)
        probability = probability_from_points(
            points, scale=self.spec.scale, event_is_favourable=self.spec.event_is_favourable
        )
        unfavourable = 1.0 - probability if self.spec.event_is_favourable else probability
        if reason_codes is None:
            reason_codes = np.full((len(points), REASON_COUNT), -1, dtype=np.int16)
        return ScoreBatch(
            probability=probability,
            points=points,
            grade_index=grade_indices(unfavourable, grades or GradeScale()),
            reason_codes=reason_codes,
            feature_names=self.feature_names,
        )


def gbm_matrix(features: tuple[GbmFeature, ...], frame: Frame) -> FloatArray:
    """Return a booster input matrix; categories become their training codes, unseen ones NaN."""
    require_columns(frame, tuple(feature.name for feature in features))
    columns: list[FloatArray] = []
    for feature in features:
        if feature.kind == "numeric":
            columns.append(numeric_values(frame[feature.name]))
        else:
            codes = model_category_codes(frame[feature.name], feature.categories).astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
    if not columns:
        return np.zeros((0, 0), dtype=np.float64)
    return np.column_stack(columns)


def _threads(matrix: FloatArray) -> int:
    """Return the prediction thread count for a batch of this size."""
    return GBM_THREADS if matrix.shape[0] >= GBM_PARALLEL_ROWS else 1


class GbmScorer:
    """Scores rows with a LightGBM booster; reasons come from its SHAP contributions."""

    def __init__(self, spec: GbmSpec) -> None:
        # Imported here: LightGBM (with scikit-learn) costs a second and a half of start-up
        # that the web app and the CLI would pay before any model is scored.
        import lightgbm

        self.spec = spec
        self.booster = lightgbm.Booster(model_str=spec.booster)
        self.feature_names = tuple(feature.name for feature in spec.features)

    def matrix(self, frame: Frame) -> FloatArray:
        """Return the booster's input matrix; categories become their training codes."""
        return gbm_matrix(self.spec.features, frame)

    def event_log_odds(self, frame: Frame) -> FloatArray:
        """Return the calibrated log-odds of the event per row."""
        matrix = self.matrix(frame)
        raw = self.booster.predict(matrix, raw_score=True, num_threads=_threads(matrix))
        return self._calibrated(np.asarray(raw, dtype=np.float64))

    def _calibrated(self, raw: FloatArray) -> FloatArray:
        calibrated: FloatArray = self.spec.calibration_slope * raw + self.spec.calibration_intercept
        return calibrated

    def score(
        self, frame: Frame, *, grades: GradeScale | None = None, reasons: bool = True
    ) -> ScoreBatch:
        """Score rows: event probability, points, grade and the top three SHAP reasons."""
        matrix = self.matrix(frame)
        event_log_odds = self._calibrated(
            np.asarray(
                self.booster.predict(matrix, raw_score=True, num_threads=_threads(matrix)),
                dtype=np.float64,
            )
        )
        favourable_sign = 1.0 if self.spec.event_is_favourable else -1.0
        points = self.spec.scale.points_from_log_odds(favourable_sign * event_log_odds)
        probability = 1.0 / (1.0 + np.exp(-event_log_odds))
        unfavourable = 1.0 - probability if self.spec.event_is_favourable else probability
        if reasons:
            contributions = (
                np.asarray(
                    self.booster.predict(matrix, pred_contrib=True, num_threads=_threads(matrix)),
                    dtype=np.float64,
                )[:, : len(self.feature_names)]
                * self.spec.calibration_slope
            )
            # A contribution harms the standing when it pushes away from the favourable outcome.
            harm = (-favourable_sign * contributions).astype(np.float32)
            reason_codes = top_reasons(harm)
        else:
            reason_codes = np.full((len(points), REASON_COUNT), -1, dtype=np.int16)
        return ScoreBatch(
            probability=probability,
            points=points,
            grade_index=grade_indices(unfavourable, grades or GradeScale()),
            reason_codes=reason_codes,
            feature_names=self.feature_names,
        )


Scorer = CompiledScorecard | GbmScorer


def compile_scorer(model: TrainedModel) -> Scorer:
    """Build the serving scorer of a trained model."""
    if model.scorecard is not None:
        return CompiledScorecard(model.scorecard)
    assert model.gbm is not None
    return GbmScorer(model.gbm)
