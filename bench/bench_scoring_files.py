"""Training on an outside-style file ('$35,000', '13.99%', dates, job titles, row numbers).

Prints held-out AUC, KS and calibration on the clean Taiwan table and on the same rows written
the way files arrive, plus what the training report says about the messy columns.
"""

from __future__ import annotations

import argparse
import sys

from _data import DatasetUnavailable, running_in_ci, taiwan_sample
from _outside import outside_style, with_utilisation

from recoup.scoring.spec import Family, TrainedModel
from recoup.scoring.training import train_model

# The messy file may lose at most this much AUC against the clean one.
AUC_TOLERANCE = 0.01


def describe(name: str, model: TrainedModel) -> None:
    """Print one model's held-out figures and its calibration by decile."""
    evaluation = model.evaluation
    ece = getattr(evaluation, "ece", None)
    print(
        f"  {name:<28} auc {evaluation.auc:.4f} ks {evaluation.ks:.4f} brier {evaluation.brier:.4f}"
        f" ece {ece if ece is None else format(ece, '.4f')} features {len(model.feature_names)}"
    )
    ratios = [
        f"{row.mean_probability / row.event_rate:.2f}" if row.event_rate else "—"
        for row in evaluation.deciles
    ]
    print(f"    predicted/actual by decile: {' '.join(ratios)}")


def main() -> int:
    """Train both families on the clean and the messy table and compare."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=None, help="use a stratified sample this big")
    parser.add_argument("--small", action="store_true", help="6,000 rows, scorecard only")
    arguments = parser.parse_args()
    rows = 6000 if arguments.small and arguments.rows is None else arguments.rows
    try:
        frame = taiwan_sample(rows)
    except DatasetUnavailable as error:
        print(f"Taiwan data unavailable: {error}")
        return 1 if running_in_ci() else 0
    frame = frame.reset_index(drop=True)
    clean = with_utilisation(frame)
    messy = outside_style(frame, seed=0)
    families: tuple[Family, ...] = ("scorecard",) if arguments.small else ("scorecard", "gbm")
    failures: list[str] = []
    print(f"== {len(frame):,} rows; messy columns: {', '.join(messy.columns[:4])} …")
    for family in families:
        on_clean = train_model(clean, target="target", id_column="ID", family=family, seed=0)
        on_messy = train_model(messy, target="target", family=family, seed=0)
        print(f"{family}:")
        describe("clean table", on_clean)
        describe("outside-style file", on_messy)
        for dropped in on_messy.summary.dropped_columns:
            print(f"    left out {dropped.name}: {dropped.reason}")
        for note in getattr(on_messy.summary, "notes", ()):
            print(f"    note: {note}")
        if on_messy.evaluation.auc < on_clean.evaluation.auc - AUC_TOLERANCE:
            failures.append(
                f"{family} AUC {on_messy.evaluation.auc:.4f} on the messy file vs "
                f"{on_clean.evaluation.auc:.4f} clean"
            )
    leaky = train_model(outside_style(frame, seed=0, leaky=True), target="target", seed=0)
    for warning in getattr(leaky.summary, "warnings", ()):
        print(f"  with a 'recoveries' column: warning: {warning}")
    if failures:
        print("\nQUALITY LOST: " + "; ".join(failures))
        return 1
    print(f"\nthe outside-style file trains within {AUC_TOLERANCE} AUC of the clean table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
