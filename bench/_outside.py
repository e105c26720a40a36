"""Rewrite a clean credit table the way files arrive from outside: '$35,000', '13.99%', dates.

Used by the file-training bench and its tests; nothing here is written to the repository.
"""

from __future__ import annotations

import numpy as np
import pandas

JOB_WORDS = [
    "senior",
    "junior",
    "lead",
    "chief",
    "assistant",
    "regional",
    "night",
    "head",
    "deputy",
    "principal",
    "field",
    "retail",
    "branch",
    "sales",
    "store",
    "account",
    "office",
    "project",
    "service",
    "care",
    "floor",
    "shift",
    "plant",
]
JOB_ROLES = [
    "manager",
    "clerk",
    "driver",
    "teacher",
    "nurse",
    "engineer",
    "cashier",
    "analyst",
    "technician",
    "supervisor",
    "officer",
    "consultant",
    "mechanic",
    "operator",
    "planner",
    "agent",
    "designer",
    "editor",
]


def job_titles(rows: int, *, distinct: int, seed: int) -> list[str]:
    """Return free-text job titles, uninformative about risk, with about `distinct` values."""
    rng = np.random.default_rng(seed)
    vocabulary = [
        f"{rng.choice(JOB_WORDS)} {rng.choice(JOB_ROLES)} {number}" for number in range(distinct)
    ]
    return [vocabulary[index] for index in rng.integers(0, distinct, rows)]


def with_utilisation(frame: pandas.DataFrame) -> pandas.DataFrame:
    """Add the share of the limit used, in percent, as the clean twin of the '%' column."""
    clean = frame.copy()
    clean["utilisation"] = (100 * clean["BILL_AMT1"] / clean["LIMIT_BAL"]).round(2)
    return clean


def outside_style(
    frame: pandas.DataFrame, *, seed: int = 0, leaky: bool = False
) -> pandas.DataFrame:
    """Return a Taiwan-shaped table as people export it: formatted numbers, dates, free text."""
    rng = np.random.default_rng(seed)
    clean = with_utilisation(frame).reset_index(drop=True)
    rows = len(clean)
    messy = pandas.DataFrame({"rownames": np.arange(1, rows + 1)})
    for name in clean.columns:
        messy[name] = clean[name]
    messy["LIMIT_BAL"] = clean["LIMIT_BAL"].map(lambda value: f"${value:,.0f}")
    for name in ("BILL_AMT1", "BILL_AMT2", "PAY_AMT1"):
        messy[name] = clean[name].map(lambda value: f"{value:,.2f}")
    messy["utilisation"] = clean["utilisation"].map(lambda value: f"{value:.2f}%")
    start = np.datetime64("2015-01-01")
    offsets = rng.integers(0, 730, rows)
    messy["issue_d"] = [str(start + np.timedelta64(int(days), "D")) for days in offsets]
    messy["emp_title"] = job_titles(rows, distinct=min(4700, max(rows // 6, 60)), seed=seed)
    if leaky:
        recovered = rng.uniform(50, 5000, rows).round(2)
        messy["recoveries"] = np.where(clean["target"] == 1, recovered, 0.0)
    return messy.drop(columns=["ID"])
