"""Quality of both model families on the UCI Taiwan data: all metrics, mean of seeds, floors."""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import pandas as pd
from _data import DatasetUnavailable, running_in_ci, taiwan_sample

from recoup.scoring.spec import Evaluation, Family, TrainedModel
from recoup.scoring.training import train_model

FLOORS: dict[Family, dict[str, float]] = {
    "scorecard": {"auc": 0.76, "ks": 0.40},
    "gbm": {"auc": 0.775},
}
TRAINING_SECONDS_LIMIT = 30.0
METRICS = ("auc", "ks", "gini", "brier")


def print_deciles(evaluation: Evaluation) -> None:
    """Print calibration and gains by decile, highest predicted probability first."""
    print("    decile  count  events  mean_p  event_rate  gains  lift  cum_lift")
    for row in evaluation.deciles:
        print(
            f"    {row.decile:>6} {row.count:>6} {row.events:>7} {row.mean_probability:>7.3f}"
            f" {row.event_rate:>11.3f} {row.cumulative_event_share:>6.3f} {row.lift:>5.2f}"
            f" {row.cumulative_lift:>9.2f}"
        )


def run_population(
    name: str, frame: pd.DataFrame, *, seeds: list[int], show_deciles: bool
) -> dict[Family, dict[str, float]]:
    """Train both families on every seed and print per-seed and mean metrics."""
    print(f"\n== {name}: {len(frame)} rows, event rate {frame['target'].mean():.3f}")
    means: dict[Family, dict[str, float]] = {}
    families: tuple[Family, ...] = ("scorecard", "gbm")
    for family in families:
        runs: list[TrainedModel] = []
        for seed in seeds:
            started = time.perf_counter()
            model = train_model(frame, target="target", id_column="ID", family=family, seed=seed)
            elapsed = time.perf_counter() - started
            runs.append(model)
            evaluation = model.evaluation
            print(
                f"  {family:<9} seed {seed}: auc {evaluation.auc:.4f} ks {evaluation.ks:.4f}"
                f" gini {evaluation.gini:.4f} brier {evaluation.brier:.4f}"
                f" ece {evaluation.ece or 0.0:.4f}"
                f" n_train {model.summary.n_train} n_test {model.summary.n_test}"
                f" features {len(model.feature_names)} train {elapsed:.2f}s"
            )
        mean = {
            metric: statistics.fmean(getattr(run.evaluation, metric) for run in runs)
            for metric in METRICS
        }
        mean["training_seconds"] = max(run.summary.training_seconds for run in runs)
        means[family] = mean
        print(
            f"  {family:<9} mean of {len(seeds)}: auc {mean['auc']:.4f} ks {mean['ks']:.4f}"
            f" gini {mean['gini']:.4f} brier {mean['brier']:.4f}"
            f" slowest training {mean['training_seconds']:.2f}s"
        )
        if show_deciles:
            print(f"  {family} calibration and gains (seed {seeds[0]}):")
            print_deciles(runs[0].evaluation)
    return means


def main() -> int:
    """Run the benchmark and return a non-zero exit code when a floor is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds to average")
    parser.add_argument("--rows", type=int, default=None, help="use a stratified sample this big")
    parser.add_argument("--small", action="store_true", help="one seed on 6,000 rows, no floors")
    arguments = parser.parse_args()
    rows = 6000 if arguments.small and arguments.rows is None else arguments.rows
    try:
        frame = taiwan_sample(rows)
    except DatasetUnavailable as error:
        print(f"Taiwan data unavailable: {error}")
        return 1 if running_in_ci() else 0
    seeds = list(range(1 if arguments.small else arguments.seeds))
    full_size = rows is None
    means = run_population("all accounts", frame, seeds=seeds, show_deciles=True)
    late = frame[frame["PAY_0"] >= 1]
    run_population("already late (PAY_0 >= 1)", late, seeds=seeds, show_deciles=False)

    failures: list[str] = []
    for family, floors in FLOORS.items():
        for metric, floor in floors.items():
            if means[family][metric] < floor:
                failures.append(f"{family} {metric} {means[family][metric]:.4f} < {floor}")
        if means[family]["training_seconds"] >= TRAINING_SECONDS_LIMIT:
            failures.append(f"{family} training took {means[family]['training_seconds']:.1f}s")
    if not full_size:
        print("\nfloors not checked on a sample (run without --small/--rows)")
        return 0
    if failures:
        print("\nFLOORS MISSED: " + "; ".join(failures))
        return 1
    print("\nall floors met: scorecard AUC >= 0.76, KS >= 0.40; GBM AUC >= 0.775; training < 30 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
