"""Benchmark ``recoup seed-demo`` on a fresh SQLite file and print accounts per second.

Run: python bench/bench_seed.py [--accounts N] [--seed S] [--small]
(target: 100,000 accounts in under 60 s on 2 cores)

The seeding is the same call the command makes (one transaction through ``unit_of_work``),
without the progress bar. Figures: wall time in total and per stage, process CPU time (the
machine may be shared), accounts/s and rows/s, and the database file size.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 60.0
FULL_ACCOUNTS = 100_000
SMALL_ACCOUNTS = 5_000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--accounts", type=int, default=FULL_ACCOUNTS, help="accounts to seed (both institutions)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--small", action="store_true", help=f"seed {SMALL_ACCOUNTS:,} accounts (CI size)"
    )
    arguments = parser.parse_args()
    accounts = SMALL_ACCOUNTS if arguments.small else arguments.accounts

    with tempfile.TemporaryDirectory(prefix="recoup-bench-seed-") as folder:
        # Settings are read on first use: point them at the scratch folder before importing Recoup.
        os.environ["RECOUP_DATA_DIR"] = folder
        os.environ["RECOUP_DATABASE_URL"] = f"sqlite:///{folder}/bench.db"
        os.environ.pop("RECOUP_KEYRING_FILE", None)

        from recoup.db import get_engine, unit_of_work
        from recoup.demo.cli import prepare_schema
        from recoup.demo.service import seed_demo

        prepare_schema()
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        with unit_of_work() as session:
            result = seed_demo(session, accounts=accounts, seed=arguments.seed)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        get_engine().dispose()
        size = sum(path.stat().st_size for path in Path(folder).glob("bench.db*"))

    print(
        f"seed-demo --accounts {accounts:,} on SQLite "
        f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )
    print(f"  total          {elapsed:8.1f} s wall, {cpu:.1f} s CPU (incl. commit)")
    print(f"  accounts/s     {accounts / elapsed:8,.0f}")
    print(f"  peak RSS       {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8,.0f} MiB")
    print(
        f"  rows/s         {result.rows / elapsed:8,.0f}   "
        f"({result.rows:,} rows, database {size / 2**20:,.0f} MiB)"
    )
    for stage, seconds in result.seconds.items():
        print(f"    {stage:<20} {seconds:6.1f} s")
    for institution in result.institutions:
        counts = ", ".join(f"{name} {count:,}" for name, count in institution.counts.items())
        print(f"  {institution.code:<10} {counts}")
    if accounts == FULL_ACCOUNTS:
        verdict = "met" if elapsed < TARGET_SECONDS else "MISSED"
        print(f"  target < {TARGET_SECONDS:.0f} s: {verdict}")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
