"""Benchmark ``GET /api/v1/kpis`` on a demo portfolio against ``GET /healthz`` in the same run.

Run: python bench/bench_kpis.py [--accounts N] [--repeat R] [--small]

Seeds a fresh SQLite file with ``seed-demo`` (both institutions), then calls the app
in-process as a manager of the first institution: ``/healthz`` and the KPIs for the month to
the seeding date, in total and cut by product, by bucket, and by province and city. Printed
per request: median and slowest wall time, and the median as a multiple of ``/healthz``'s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

FULL_ACCOUNTS = 50_000
SMALL_ACCOUNTS = 2_000


def _timed(call: Callable[[], int], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        status = call()
        seconds.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"request failed with {status}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=FULL_ACCOUNTS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--small", action="store_true", help=f"{SMALL_ACCOUNTS:,} accounts (CI size)"
    )
    arguments = parser.parse_args()
    accounts = SMALL_ACCOUNTS if arguments.small else arguments.accounts

    with tempfile.TemporaryDirectory(prefix="recoup-bench-kpis-") as folder:
        # Settings are read on first use: point them at the scratch folder before importing.
        os.environ["RECOUP_DATA_DIR"] = folder
        os.environ["RECOUP_DATABASE_URL"] = f"sqlite:///{folder}/bench.db"
        os.environ.pop("RECOUP_KEYRING_FILE", None)

        from fastapi.testclient import TestClient

        from recoup.app import create_app
        from recoup.db import get_engine, unit_of_work
        from recoup.demo.cli import prepare_schema
        from recoup.demo.service import seed_demo
        from recoup.identity import service as identity
        from recoup.institutions import repository as institutions
        from recoup.kit.clock import local_today

        prepare_schema()
        day = local_today("Asia/Shanghai")
        started = time.perf_counter()
        with unit_of_work() as session:
            seeded = seed_demo(session, accounts=accounts, seed=arguments.seed, as_of=day)
        seed_seconds = time.perf_counter() - started
        code = seeded.institutions[0].code
        with unit_of_work() as session:
            institution = institutions.require_by_code(session, code)
            manager = identity.create_user(
                session,
                username="bench.kpis",
                role="manager",
                institution_id=institution.id,
                password="Bench-kpis-42-long",
                actor="bench",
            )
            token, _expires = identity.issue_access_token(manager)
        headers = {"Authorization": f"Bearer {token}"}

        as_of = day.isoformat()
        requests: list[tuple[str, str, dict[str, str]]] = [
            ("healthz", "/healthz", {}),
            ("kpis", "/api/v1/kpis", {"as_of": as_of}),
            ("kpis by product", "/api/v1/kpis", {"as_of": as_of, "group_by": "product"}),
            ("kpis by bucket", "/api/v1/kpis", {"as_of": as_of, "group_by": "bucket"}),
            (
                "kpis by province,city",
                "/api/v1/kpis",
                {"as_of": as_of, "group_by": "province,city"},
            ),
        ]
        results: dict[str, list[float]] = {}
        with TestClient(create_app()) as client:
            for label, path, params in requests:
                client.get(path, params=params, headers=headers)  # warm up
                results[label] = _timed(
                    lambda path=path, params=params: (
                        client.get(path, params=params, headers=headers).status_code
                    ),
                    arguments.repeat,
                )
            sample = client.get("/api/v1/kpis", params={"as_of": as_of}, headers=headers).json()[
                "total"
            ]
        get_engine().dispose()

    health = statistics.median(results["healthz"])
    print(
        f"GET /api/v1/kpis on a seed-demo portfolio of {accounts:,} accounts, SQLite "
        f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}); seeded in {seed_seconds:.1f} s"
    )
    print(
        f"  {code}: {sample['portfolio']['accounts']:,} accounts in the portfolio as of {as_of}, "
        f"{sample['collected']['payments']:,} payments this month"
    )
    for label, seconds in results.items():
        median = statistics.median(seconds)
        print(
            f"  {label:<24} median {median * 1000:8.1f} ms   max {max(seconds) * 1000:8.1f} ms"
            f"   {median / health:8.0f} × healthz"
        )


if __name__ == "__main__":
    main()
