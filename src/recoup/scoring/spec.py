"""Plain, serialisable descriptions of a trained model: scale, scorecard, booster, metrics."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Family = Literal["scorecard", "gbm"]
FeatureKind = Literal["numeric", "categorical"]
SplitMethod = Literal["stratified", "time"]

FAMILIES: tuple[Family, ...] = ("scorecard", "gbm")
# What counts as paying: this share of the overdue amount within this many days.
DEFAULT_HORIZON_DAYS = 30
DEFAULT_PAYMENT_SHARE = 0.5
GRADES: tuple[str, ...] = ("A", "B", "C", "D", "E")
MISSING_LABEL = "Missing"
# Categories too rare to learn from alone are pooled under this label in training and scoring.
RARE_LABEL = "(rare)"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PointsScale:
    """Maps favourable log-odds to points: base points at base odds, PDO more per doubling."""

    base_points: float = 600.0
    base_odds: float = 50.0
    points_to_double_odds: float = 20.0

    @property
    def factor(self) -> float:
        """Points per unit of natural log-odds."""
        return self.points_to_double_odds / math.log(2.0)

    @property
    def offset(self) -> float:
        """Points at even odds."""
        return self.base_points - self.factor * math.log(self.base_odds)

    def points_from_log_odds(self, favourable_log_odds: FloatArray) -> FloatArray:
        """Convert log-odds of the favourable outcome to points."""
        return self.offset + self.factor * favourable_log_odds

    def favourable_log_odds(self, points: FloatArray) -> FloatArray:
        """Convert points back to log-odds of the favourable outcome."""
        return (points - self.offset) / self.factor


@dataclass(frozen=True, slots=True)
class GradeScale:
    """Risk grades A–E from the probability of the unfavourable outcome; cut-offs ascend."""

    cutoffs: tuple[float, float, float, float] = (0.05, 0.10, 0.20, 0.40)

    def __post_init__(self) -> None:
        if list(self.cutoffs) != sorted(self.cutoffs) or not all(0 < c < 1 for c in self.cutoffs):
            raise ValueError(f"grade cut-offs must ascend within (0, 1); got {self.cutoffs}")


@dataclass(frozen=True, slots=True)
class ScorecardBin:
    """One row of a scorecard: a bin of one feature with its evidence and points."""

    label: str
    count: int
    event_count: int
    event_rate: float
    woe: float
    points: float


@dataclass(frozen=True, slots=True)
class ScorecardFeature:
    """A scorecard characteristic: its bins (regular ones, then the missing bin) and weight."""

    name: str
    kind: FeatureKind
    splits: tuple[float, ...]
    groups: tuple[tuple[str, ...], ...]
    coefficient: float
    information_value: float
    bins: tuple[ScorecardBin, ...]

    @property
    def points(self) -> tuple[float, ...]:
        """Points per bin, the missing bin last."""
        return tuple(scorecard_bin.points for scorecard_bin in self.bins)


@dataclass(frozen=True, slots=True)
class ScorecardRow:
    """A flat row of the readable scorecard table."""

    feature: str
    bin: str
    count: int
    event_rate: float
    woe: float
    points: float


@dataclass(frozen=True, slots=True)
class ScorecardSpec:
    """A WOE-logistic scorecard: everything needed to score, nothing tied to a library."""

    features: tuple[ScorecardFeature, ...]
    intercept: float
    scale: PointsScale
    event_is_favourable: bool

    def table(self) -> list[ScorecardRow]:
        """Return the scorecard as readable rows: feature, bin, WOE, points."""
        return [
            ScorecardRow(
                feature=feature.name,
                bin=scorecard_bin.label,
                count=scorecard_bin.count,
                event_rate=scorecard_bin.event_rate,
                woe=scorecard_bin.woe,
                points=scorecard_bin.points,
            )
            for feature in self.features
            for scorecard_bin in feature.bins
        ]


@dataclass(frozen=True, slots=True)
class GbmFeature:
    """A booster input column: categorical ones keep the category order used as codes."""

    name: str
    kind: FeatureKind
    categories: tuple[str, ...]
    monotone: int


@dataclass(frozen=True, slots=True)
class GbmSpec:
    """A LightGBM model as its text dump plus the column contract around it."""

    booster: str
    features: tuple[GbmFeature, ...]
    scale: PointsScale
    event_is_favourable: bool
    best_iteration: int
    parameters: dict[str, str | int | float | bool]
    # Platt calibration of the booster's raw log-odds: slope · raw + intercept.
    calibration_slope: float = 1.0
    calibration_intercept: float = 0.0


@dataclass(frozen=True, slots=True)
class DecileRow:
    """One tenth of the held-out rows, highest predicted probability first."""

    decile: int
    count: int
    events: int
    mean_probability: float
    event_rate: float
    cumulative_event_share: float
    lift: float
    cumulative_lift: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Held-out quality of a model: ranking, calibration, gains."""

    auc: float
    ks: float
    gini: float
    brier: float
    count: int
    event_rate: float
    deciles: tuple[DecileRow, ...]
    # Expected calibration error: row-weighted mean |predicted − actual| over the deciles.
    ece: float | None = None


@dataclass(frozen=True, slots=True)
class ReferenceDistribution:
    """The training distribution of one input or of the score, binned for stability checks."""

    name: str
    kind: FeatureKind
    edges: tuple[float, ...]
    categories: tuple[str, ...]
    shares: tuple[float, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """Readable bin labels in the order of `shares`."""
        if self.kind == "numeric":
            return (*interval_labels(self.edges), MISSING_LABEL)
        return (*self.categories, "Other", MISSING_LABEL)


@dataclass(frozen=True, slots=True)
class DroppedColumn:
    """A column left out of training, and why."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """What a model was trained on, how, and by whom."""

    family: Family
    target: str
    positive_label: str
    event_is_favourable: bool
    id_column: str | None
    date_column: str | None
    input_columns: tuple[str, ...]
    input_kinds: tuple[FeatureKind, ...]
    dropped_columns: tuple[DroppedColumn, ...]
    split: SplitMethod
    seed: int
    n_train: int
    n_test: int
    train_event_rate: float
    data_fingerprint: str
    trained_at: str
    trained_by: str | None
    training_seconds: float
    library_versions: dict[str, str] = field(default_factory=dict)
    calibration: str = "none"
    calibration_rows: int = 0
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A trained model with its metrics and training reference, ready to store or serve."""

    summary: ModelSummary
    evaluation: Evaluation
    references: tuple[ReferenceDistribution, ...]
    score_reference: ReferenceDistribution
    scorecard: ScorecardSpec | None = None
    gbm: GbmSpec | None = None

    def __post_init__(self) -> None:
        if (self.scorecard is None) == (self.gbm is None):
            raise ValueError("a trained model holds exactly one of a scorecard or a booster")

    @property
    def family(self) -> Family:
        """The model family."""
        return self.summary.family

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The input columns the model reads when scoring."""
        if self.scorecard is not None:
            return tuple(feature.name for feature in self.scorecard.features)
        assert self.gbm is not None
        return tuple(feature.name for feature in self.gbm.features)


def format_number(value: float) -> str:
    """Format a cut point compactly for people."""
    return format(value, ".6g")


def interval_labels(splits: tuple[float, ...]) -> tuple[str, ...]:
    """Label the half-open intervals cut by ascending split points."""
    bounds = ["-inf", *(format_number(split) for split in splits), "inf"]
    return tuple(
        f"[{low}, {high})" if low != "-inf" else f"(-inf, {high})"
        for low, high in itertools.pairwise(bounds)
    )
