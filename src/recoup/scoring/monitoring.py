"""Drift monitoring: population stability of inputs and of the score, characteristic stability."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from recoup.scoring.scorer import (
    CompiledScorecard,
    Frame,
    category_codes,
    compile_scorer,
    numeric_values,
)
from recoup.scoring.spec import FloatArray, ReferenceDistribution, ScorecardFeature, TrainedModel

# An empty bin would make the logarithm infinite; this floor is the usual convention.
SHARE_FLOOR = 1e-4


class DriftStatus(StrEnum):
    """How far a distribution has moved from its reference."""

    STABLE = "stable"
    WARN = "warn"
    ALERT = "alert"


@dataclass(frozen=True, slots=True)
class StabilityThresholds:
    """PSI levels above which a shift is worth a warning or an alert."""

    warn: float = 0.1
    alert: float = 0.25

    def status(self, psi: float) -> DriftStatus:
        """Classify a PSI value."""
        if psi > self.alert:
            return DriftStatus.ALERT
        if psi > self.warn:
            return DriftStatus.WARN
        return DriftStatus.STABLE


@dataclass(frozen=True, slots=True)
class BinShift:
    """One bin's share in the reference and now, and its part of the PSI."""

    label: str
    reference_share: float
    current_share: float
    contribution: float


@dataclass(frozen=True, slots=True)
class Stability:
    """The population stability of one input or of the score."""

    name: str
    psi: float
    status: DriftStatus
    bins: tuple[BinShift, ...]


@dataclass(frozen=True, slots=True)
class CharacteristicShift:
    """How much a scorecard characteristic moves the average score between reference and now."""

    feature: str
    points_shift: float
    psi: float
    status: DriftStatus


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Stability of a scoring run against the model's training data."""

    score: Stability
    features: tuple[Stability, ...]
    characteristics: tuple[CharacteristicShift, ...]

    @property
    def status(self) -> DriftStatus:
        """The worst status of the score and any input."""
        statuses = [self.score.status, *(feature.status for feature in self.features)]
        order = list(DriftStatus)
        return max(statuses, key=order.index)


def population_stability_index(
    reference_shares: npt.ArrayLike, current_shares: npt.ArrayLike
) -> float:
    """Return PSI = Σ (current − reference) · ln(current / reference) over matching bins."""
    reference = np.maximum(np.asarray(reference_shares, dtype=np.float64), SHARE_FLOOR)
    current = np.maximum(np.asarray(current_shares, dtype=np.float64), SHARE_FLOOR)
    if reference.shape != current.shape:
        raise ValueError(
            f"bin counts differ: {reference.shape[0]} reference, {current.shape[0]} current"
        )
    return float(np.sum((current - reference) * np.log(current / reference)))


def current_shares(reference: ReferenceDistribution, values: Any) -> FloatArray:
    """Bin current values the way the reference was binned and return each bin's share."""
    return _shares(bin_counts(reference, values))


def bin_counts(reference: ReferenceDistribution, values: Any) -> FloatArray:
    """Bin current values the way the reference was binned and return each bin's count."""
    if reference.kind == "numeric":
        numbers = numeric_values(values)
        bins = np.searchsorted(
            np.append(np.asarray(reference.edges, dtype=np.float64), np.nan), numbers, side="right"
        )
        return np.bincount(bins, minlength=len(reference.edges) + 2).astype(np.float64)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    codes = category_codes(series, reference.categories)
    missing = series.isna().to_numpy(dtype=bool)
    counts = np.bincount(codes[codes >= 0], minlength=len(reference.categories)).astype(np.float64)
    return np.append(counts, [float(((codes < 0) & ~missing).sum()), float(missing.sum())])


def _shares(counts: FloatArray) -> FloatArray:
    total = counts.sum()
    shares: FloatArray = counts / total if total else counts
    return shares


def stability(
    reference: ReferenceDistribution, values: Any, *, thresholds: StabilityThresholds | None = None
) -> Stability:
    """Compare current values with a reference distribution."""
    return stability_of_counts(reference, bin_counts(reference, values), thresholds=thresholds)


def stability_of_counts(
    reference: ReferenceDistribution,
    counts: FloatArray,
    *,
    thresholds: StabilityThresholds | None = None,
) -> Stability:
    """Compare current bin counts (``bin_counts``) with a reference distribution."""
    thresholds = thresholds or StabilityThresholds()
    now = _shares(counts)
    before = np.asarray(reference.shares, dtype=np.float64)
    floored_now, floored_before = np.maximum(now, SHARE_FLOOR), np.maximum(before, SHARE_FLOOR)
    contributions = (floored_now - floored_before) * np.log(floored_now / floored_before)
    psi = float(contributions.sum())
    return Stability(
        name=reference.name,
        psi=psi,
        status=thresholds.status(psi),
        bins=tuple(
            BinShift(
                label=label,
                reference_share=float(old),
                current_share=float(new),
                contribution=float(part),
            )
            for label, old, new, part in zip(
                reference.labels, before, now, contributions, strict=True
            )
        ),
    )


def characteristic_shift(
    feature: ScorecardFeature,
    bin_indices: Any,
    *,
    thresholds: StabilityThresholds | None = None,
) -> CharacteristicShift:
    """Return Σ (current share − training share) · points for one scorecard characteristic."""
    return characteristic_shift_of_counts(
        feature,
        np.bincount(np.asarray(bin_indices), minlength=len(feature.bins)).astype(np.float64),
        thresholds=thresholds,
    )


def characteristic_shift_of_counts(
    feature: ScorecardFeature,
    counts: FloatArray,
    *,
    thresholds: StabilityThresholds | None = None,
) -> CharacteristicShift:
    """``characteristic_shift`` from the current rows' count per bin."""
    thresholds = thresholds or StabilityThresholds()
    trained = np.asarray([scorecard_bin.count for scorecard_bin in feature.bins], dtype=np.float64)
    before = trained / trained.sum()
    now = _shares(counts)
    points = np.asarray(feature.points, dtype=np.float64)
    psi = population_stability_index(before, now)
    return CharacteristicShift(
        feature=feature.name,
        points_shift=float(np.sum((now - before) * points)),
        psi=psi,
        status=thresholds.status(psi),
    )


def drift_report(
    model: TrainedModel, frame: Frame, *, thresholds: StabilityThresholds | None = None
) -> DriftReport:
    """Measure how far a scoring population has moved from the model's training data."""
    counts = DriftCounts(model)
    counts.add(frame)
    return counts.report(thresholds=thresholds)


class DriftCounts:
    """The bin counts a drift report is made of, added up over a population read in parts.

    A report over the parts' counts is the report over the whole population: shares are
    taken of the summed counts.
    """

    def __init__(self, model: TrainedModel) -> None:
        self.model = model
        self.scorer = compile_scorer(model)
        self.references = tuple(
            reference for reference in model.references if reference.name in model.feature_names
        )
        self.score = np.zeros(0, dtype=np.float64)
        self.features = [np.zeros(0, dtype=np.float64) for _ in self.references]
        self.characteristics = [
            np.zeros(0, dtype=np.float64)
            for _ in (model.scorecard.features if model.scorecard is not None else ())
        ]

    def add(self, frame: Frame, *, points: FloatArray | None = None) -> None:
        """Count one part of the population (``points``: its scores, when already known)."""
        if points is None:
            points = self.scorer.score(frame, reasons=False).points
        self.score = _summed(self.score, bin_counts(self.model.score_reference, points))
        for index, reference in enumerate(self.references):
            self.features[index] = _summed(
                self.features[index], bin_counts(reference, frame[reference.name])
            )
        if self.model.scorecard is not None:
            assert isinstance(self.scorer, CompiledScorecard)
            indices = self.scorer.bin_indices(frame)
            for index, feature in enumerate(self.model.scorecard.features):
                self.characteristics[index] = _summed(
                    self.characteristics[index],
                    np.bincount(
                        np.asarray(indices[feature.name]), minlength=len(feature.bins)
                    ).astype(np.float64),
                )

    def counts(self) -> tuple[FloatArray, list[FloatArray], list[FloatArray]]:
        """Return the bin counts added so far (score, features, characteristics): what a
        part counted in another process, for ``add_counts`` there."""
        return self.score, list(self.features), list(self.characteristics)

    def add_counts(self, counts: tuple[FloatArray, list[FloatArray], list[FloatArray]]) -> None:
        """Add bin counts another ``DriftCounts`` of the same model counted (``counts()``)."""
        score, features, characteristics = counts
        if len(score):
            self.score = _summed(self.score, score)
        for index, feature in enumerate(features):
            if len(feature):
                self.features[index] = _summed(self.features[index], feature)
        for index, characteristic in enumerate(characteristics):
            if len(characteristic):
                self.characteristics[index] = _summed(self.characteristics[index], characteristic)

    def report(self, *, thresholds: StabilityThresholds | None = None) -> DriftReport:
        """Return the drift report of everything added."""
        thresholds = thresholds or StabilityThresholds()
        characteristics: tuple[CharacteristicShift, ...] = ()
        if self.model.scorecard is not None:
            characteristics = tuple(
                characteristic_shift_of_counts(feature, counts, thresholds=thresholds)
                for feature, counts in zip(
                    self.model.scorecard.features, self.characteristics, strict=True
                )
            )
        return DriftReport(
            score=stability_of_counts(
                self.model.score_reference, self.score, thresholds=thresholds
            ),
            features=tuple(
                stability_of_counts(reference, counts, thresholds=thresholds)
                for reference, counts in zip(self.references, self.features, strict=True)
            ),
            characteristics=characteristics,
        )


def _summed(total: FloatArray, counts: FloatArray) -> FloatArray:
    return counts if not len(total) else total + counts
