"""Held-out evaluation: AUC, KS, Gini, Brier, calibration and gains by decile."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from recoup.scoring.spec import DecileRow, Evaluation, FloatArray

DECILES = 10


def kolmogorov_smirnov(labels: npt.NDArray[np.int8], probabilities: FloatArray) -> float:
    """Return the largest gap between the event and non-event cumulative distributions."""
    # scikit-learn is imported where it is used: a second of start-up for every importer.
    from sklearn.metrics import roc_curve

    false_positive_rate, true_positive_rate, _ = roc_curve(labels, probabilities)
    return float(np.max(true_positive_rate - false_positive_rate))


def decile_table(labels: npt.NDArray[np.int8], probabilities: FloatArray) -> tuple[DecileRow, ...]:
    """Split rows into ten equal groups by predicted probability and compare with outcomes."""
    order = np.argsort(-probabilities, kind="stable")
    groups = np.array_split(order, DECILES)
    total_events = int(labels.sum())
    overall_rate = total_events / len(labels)
    rows: list[DecileRow] = []
    cumulative_events = 0
    cumulative_count = 0
    for index, group in enumerate(groups, start=1):
        if len(group) == 0:
            continue
        events = int(labels[group].sum())
        cumulative_events += events
        cumulative_count += len(group)
        event_rate = events / len(group)
        cumulative_rate = cumulative_events / cumulative_count
        rows.append(
            DecileRow(
                decile=index,
                count=len(group),
                events=events,
                mean_probability=float(probabilities[group].mean()),
                event_rate=event_rate,
                cumulative_event_share=cumulative_events / total_events if total_events else 0.0,
                lift=event_rate / overall_rate if overall_rate else 0.0,
                cumulative_lift=cumulative_rate / overall_rate if overall_rate else 0.0,
            )
        )
    return tuple(rows)


def expected_calibration_error(deciles: tuple[DecileRow, ...]) -> float:
    """Return the row-weighted mean gap between predicted and observed event rates by decile."""
    total = sum(row.count for row in deciles)
    if not total:
        return 0.0
    return sum(row.count * abs(row.mean_probability - row.event_rate) for row in deciles) / total


def evaluate(
    labels: npt.NDArray[np.int8],
    probabilities: FloatArray,
    *,
    ranking: FloatArray | None = None,
) -> Evaluation:
    """Measure how well event probabilities rank and match held-out outcomes.

    ``ranking`` scores the rows for AUC and KS when the probabilities were calibrated per fold
    and so are not one monotone function of the served score.
    """
    from sklearn.metrics import roc_auc_score

    ranked = probabilities if ranking is None else ranking
    auc = float(roc_auc_score(labels, ranked))
    deciles = decile_table(labels, probabilities)
    return Evaluation(
        auc=auc,
        ks=kolmogorov_smirnov(labels, ranked),
        gini=2.0 * auc - 1.0,
        brier=float(np.mean((probabilities - labels) ** 2)),
        count=len(labels),
        event_rate=float(labels.mean()),
        deciles=deciles,
        ece=expected_calibration_error(deciles),
    )
