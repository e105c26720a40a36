"""Experiment results, pure: each arm's rates with confidence intervals, and whether a
challenger (or the control) differs from the champion yet.

Rates use Wilson score intervals; the difference in recovery rate against the champion uses a
two-proportion z-test, and while it is not significant the result says so together with the
sample size per arm still needed to tell the observed difference at 80% power. The amount
collected per account gets a bootstrap interval (fixed seed, so a page shows the same figures
on every load).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

CONFIDENCE = 0.95
POWER = 0.80
BOOTSTRAP_SAMPLES = 1000
_NORMAL = NormalDist()


class Significance(StrEnum):
    BASELINE = "baseline"  # the champion itself
    SIGNIFICANT = "significant"
    NOT_YET = "not_yet_significant"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmOutcome:
    """What one arm's accounts did since they entered the experiment."""

    arm: str
    accounts: int
    # Accounts that paid anything / that returned to current.
    recovered: int
    cured: int
    # Minor units collected, in total and (if known) per account for the bootstrap.
    collected: int
    collected_per_account: Sequence[int] | None = None
    contacts: int = 0
    # Minor units the contacts cost.
    cost: int = 0
    complaints: int = 0
    gate_blocks: int = 0


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmResult:
    arm: str
    accounts: int
    recovery_rate: Interval
    cure_rate: Interval
    collected_per_account: Interval
    contacts_per_account: float
    # Cost per unit collected (cost ÷ collected), None when nothing was collected.
    cost_per_collected: float | None
    complaints: int
    gate_blocks: int
    # Recovery rate minus the champion's, its interval, the test's p-value.
    difference: Interval | None = None
    p_value: float | None = None
    significance: Significance = Significance.NO_DATA
    # Accounts per arm still needed to tell the observed difference (None: none observed).
    still_needed: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _z(confidence: float = CONFIDENCE) -> float:
    return _NORMAL.inv_cdf(1 - (1 - confidence) / 2)


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval:
    """The share successes/trials and its Wilson score interval."""
    if trials <= 0:
        return Interval(0.0, 0.0, 1.0)
    z = _z(confidence)
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    spread /= denominator
    low = 0.0 if successes == 0 else max(0.0, centre - spread)
    high = 1.0 if successes == trials else min(1.0, centre + spread)
    return Interval(share, low, high)


def two_proportion_test(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int
) -> tuple[Interval, float]:
    """Share b minus share a with its (unpooled) interval, and the pooled test's p-value."""
    share_a, share_b = successes_a / trials_a, successes_b / trials_b
    difference = share_b - share_a
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    pooled_error = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    p_value = 1.0 if pooled_error == 0 else 2 * (1 - _NORMAL.cdf(abs(difference) / pooled_error))
    error = math.sqrt(share_a * (1 - share_a) / trials_a + share_b * (1 - share_b) / trials_b)
    z = _z()
    return Interval(difference, difference - z * error, difference + z * error), p_value


def sample_size_per_arm(
    share_a: float, share_b: float, confidence: float = CONFIDENCE, power: float = POWER
) -> int | None:
    """Accounts per arm a two-sided test needs to tell share_a from share_b (None if equal)."""
    if share_a == share_b:
        return None
    z_alpha, z_beta = _z(confidence), _NORMAL.inv_cdf(power)
    mean = (share_a + share_b) / 2
    numerator = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        share_a * (1 - share_a) + share_b * (1 - share_b)
    )
    return math.ceil(numerator**2 / (share_a - share_b) ** 2)


def bootstrap_mean(
    values: npt.ArrayLike, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> Interval:
    """The mean and its percentile bootstrap interval (fixed seed: the same on every call)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return Interval(0.0, 0.0, 0.0)
    generator = np.random.default_rng(seed)
    # Resample in chunks so a large arm does not hold samples × accounts in memory.
    means = np.empty(samples)
    chunk = max(1, 5_000_000 // max(data.size, 1))
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        picks = generator.integers(0, data.size, size=(stop - start, data.size))
        means[start:stop] = data[picks].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(data.mean()), float(low), float(high))


def _mean_interval(outcome: ArmOutcome) -> Interval:
    if outcome.accounts == 0:
        return Interval(0.0, 0.0, 0.0)
    if outcome.collected_per_account is not None and len(outcome.collected_per_account):
        return bootstrap_mean(outcome.collected_per_account)
    mean = outcome.collected / outcome.accounts
    return Interval(mean, mean, mean)


def arm_results(outcomes: Sequence[ArmOutcome], *, champion: str = "champion") -> list[ArmResult]:
    """Each arm's figures, and each non-champion arm's recovery rate against the champion's."""
    baseline = next((o for o in outcomes if o.arm == champion), None)
    results: list[ArmResult] = []
    for outcome in outcomes:
        accounts = outcome.accounts
        result = ArmResult(
            arm=outcome.arm,
            accounts=accounts,
            recovery_rate=wilson(outcome.recovered, accounts),
            cure_rate=wilson(outcome.cured, accounts),
            collected_per_account=_mean_interval(outcome),
            contacts_per_account=outcome.contacts / accounts if accounts else 0.0,
            cost_per_collected=outcome.cost / outcome.collected if outcome.collected else None,
            complaints=outcome.complaints,
            gate_blocks=outcome.gate_blocks,
        )
        if outcome.arm == champion:
            result = replace(result, significance=Significance.BASELINE)
        elif baseline is not None and baseline.accounts > 0 and accounts > 0:
            difference, p_value = two_proportion_test(
                baseline.recovered, baseline.accounts, outcome.recovered, accounts
            )
            if p_value < 1 - CONFIDENCE:
                result = replace(
                    result,
                    difference=difference,
                    p_value=p_value,
                    significance=Significance.SIGNIFICANT,
                    still_needed=0,
                )
            else:
                needed = sample_size_per_arm(
                    baseline.recovered / baseline.accounts, outcome.recovered / accounts
                )
                result = replace(
                    result,
                    difference=difference,
                    p_value=p_value,
                    significance=Significance.NOT_YET,
                    still_needed=(
                        None
                        if needed is None
                        else max(0, needed - min(accounts, baseline.accounts))
                    ),
                )
        results.append(result)
    return results
