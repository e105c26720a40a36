"""Benchmark uplift suppression: do the presets spend fewer contacts for the same recovery?

    .venv/bin/python bench/bench_uplift_suppression.py [--institution CODE] [--small]

Seeds the demo on a scratch SQLite file, trains the X-learner on simulated experiments (a random
50 % control arm per channel, 60,000 resampled cases × 30 days), and picks call thresholds on
those training cases only: predicted uplift ≤ 0 and the bottom 20 % and 40 % of the training
cases' predictions. It then runs, on the same seeds and capacity, the preset (propensity
priority), the preset with the calls of predicted uplift at or below each threshold skipped or
replaced by an SMS on the step's first day, and the baseline (escalation by days past due):
recovered, contacts, cost, complaints, violations; then the 20 perturbations of
bench_simulation.py (behavioural parameters × U[0.7, 1.3]) for each variant against the
preset. The model is trained once under the default parameters (a perturbed world is one the
model was not trained on). The load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import time

import _simulation_setup
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _simulation_setup.add_arguments(parser, small="2 seeds, 4 perturbations")
    parser.add_argument("--perturbations", type=int, default=20)
    arguments = parser.parse_args()
    seeds = _simulation_setup.seeds(arguments.small)
    perturbations = 4 if arguments.small else arguments.perturbations

    setup, default, baseline = _simulation_setup.seeded_setup(
        accounts=arguments.accounts,
        institution=arguments.institution,
        prefix="recoup-bench-suppress-",
    )
    from recoup.simulation import service, uplift
    from recoup.simulation.engine import Result
    from recoup.simulation.params import Params, default_params, perturbed

    print(
        f"Uplift suppression bench: {arguments.institution}, {setup.portfolio.size:,} live "
        f"cases, {arguments.days} days ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )
    started = time.perf_counter()
    model, data = uplift.train(setup, days=30, seed=7)
    training = model.predict(data["call"].features, "call")
    thresholds = {
        "≤ 0": 0.0,
        "bottom 20 %": float(np.quantile(training, 0.20)),
        "bottom 40 %": float(np.quantile(training, 0.40)),
    }
    print(
        f"  model trained ({time.perf_counter() - started:.0f} s); training cases' call uplift "
        f"mean {training.mean():.3f} sd {training.std():.3f}, ≤ 0: {np.mean(training <= 0):.1%}; "
        + ", ".join(f"{name} → {value:.4f}" for name, value in thresholds.items())
    )
    # Variant → (call threshold, mode); the preset suppresses nothing.
    variants: dict[str, tuple[float, str] | None] = {"preset": None}
    for name, value in thresholds.items():
        variants[f"skip {name}"] = (value, "skip")
    for name in ("≤ 0", "bottom 40 %"):
        variants[f"sms {name}"] = (thresholds[name], "sms")

    def run(name: str, seed: int, params: Params | None = None) -> Result:
        options = variants[name]
        if options is None:
            return service.run(setup, default, days=arguments.days, seed=seed, params=params)
        return service.run(
            setup,
            default,
            days=arguments.days,
            seed=seed,
            params=params,
            uplift_scorer=model.score,
            priority="expected",
            suppress_below={"call": options[0]},
            suppress_mode=options[1],
        )

    print(f"\n1. Same seeds {seeds}, same capacity (mean ± sd; ratio to preset by seed)")
    started = time.perf_counter()
    runs = {name: [run(name, seed) for seed in seeds] for name in variants}
    runs["baseline"] = [
        service.run(setup, baseline, days=arguments.days, seed=seed) for seed in seeds
    ]
    for name, results in runs.items():
        recovered = np.array([r.recovered for r in results]) / 100
        contacts = np.array([r.total_contacts for r in results])
        calls = np.array([r.contacts.get("call", 0) for r in results])
        sms = np.array([r.contacts.get("sms", 0) for r in results])
        cost = np.array([r.cost for r in results]) / 100
        complaints = np.array([r.complaints for r in results])
        violations = sum(r.violations for r in results)
        ratios = [
            mine.recovered / theirs.recovered
            for mine, theirs in zip(results, runs["preset"], strict=True)
        ]
        print(
            f"  {name:<16} recovered {recovered.mean():>12,.0f} ± {recovered.std(ddof=1):>9,.0f}"
            f"  contacts {contacts.mean():>7,.0f} (calls {calls.mean():,.0f}, SMS "
            f"{sms.mean():,.0f})  cost {cost.mean():>8,.0f}  complaints {complaints.mean():.1f}"
            f"  violations {violations}  / preset {np.mean(ratios):.3f} ("
            + ", ".join(f"{value:.3f}" for value in ratios)
            + ")"
        )
    print(f"  ({time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f})")

    print(f"\n2. {perturbations} perturbations (one seed each): variant / preset")
    rng = np.random.default_rng(2026)
    worlds = [perturbed(default_params(), rng) for _ in range(perturbations)]
    started = time.perf_counter()
    table: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for number, params in enumerate(worlds):
        reference = run("preset", 100 + number, params)
        for name in variants:
            # Under ≤ 0 nothing is suppressed (no case's estimate is ≤ 0): the preset's own run.
            if name == "preset" or "≤ 0" in name:
                continue
            mine = run(name, 100 + number, params)
            table[name].append(
                (
                    mine.recovered / reference.recovered,
                    mine.total_contacts / max(reference.total_contacts, 1),
                    mine.complaints - reference.complaints,
                )
            )
    for name, rows in table.items():
        if not rows:
            continue
        recovered = np.array([row[0] for row in rows])
        contacts = np.array([row[1] for row in rows])
        complaints = np.array([row[2] for row in rows])
        quartiles = np.quantile(recovered, [0.0, 0.25, 0.5, 0.75, 1.0])
        print(
            f"  {name:<16} recovered × min {quartiles[0]:.3f} q1 {quartiles[1]:.3f} median "
            f"{quartiles[2]:.3f} q3 {quartiles[3]:.3f} max {quartiles[4]:.3f}; ≥ preset in "
            f"{int((recovered >= 1).sum())}/{len(rows)}; contacts × median "
            f"{np.median(contacts):.3f}; complaints Δ mean {complaints.mean():+.2f}"
        )
    print(f"  ({time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
