"""Benchmark ``recoup serve`` under many clients at once: throughput and latency per endpoint.

Run: python bench/bench_server.py [--clients N] [--seconds S] [--backend sqlite|postgresql|both]
     [--small]

Each backend gets a fresh database with two managers and 60 debtors; the clients mix reads,
promise writes and gate checks (the mix of ``tests/load.py``) while one more client times
``/healthz``. Printed per endpoint: count, p50 and p99, and p50 as a multiple of the
``/healthz`` p50 measured in the same run; then 5xx and transport errors (targets: none),
the ``/healthz`` p99 (target: under 1 s under any load), the server's start-up time and its
exit time after SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

POSTGRES_URL = os.environ.get(
    "RECOUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def run(backend: str, clients: int, seconds: float) -> None:
    """Serve a fresh database of ``backend`` and load it; print the figures."""
    from sqlalchemy import text
    from tests import load

    from recoup.db import make_engine
    from recoup.models import Base

    folder = Path(tempfile.mkdtemp(prefix="recoup-bench-server-"))
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
    else:
        schema = f"recoup_bench_{uuid.uuid4().hex[:12]}"
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
        portfolio = load.seed(engine)
        with load.serving(url, folder / "data") as server:
            result = load.run_load(server.base_url, portfolio, clients=clients, seconds=seconds)
            exit_seconds = server.stop(grace_seconds=30)
        facts = load.integrity(engine, portfolio)
        health_p99 = load.percentile(result.healthz, 0.99)
        print(f"\n== {backend}: {clients} clients for {seconds:.0f} s")
        print(load.summary(result))
        print(
            f"  healthz p99 {health_p99 * 1000:.0f} ms "
            f"({'meets' if health_p99 < 1 else 'ABOVE'} target 1 s); "
            f"5xx {sum(result.server_errors().values())} and transport errors "
            f"{len(result.transport_errors)} (target 0); ready in {server.ready_seconds:.1f} s; "
            f"exit after SIGTERM {exit_seconds:.1f} s"
        )
        print(
            f"  after: {facts.promises} promises ({facts.promise_audits} audited), "
            f"{facts.decisions} gate decisions, at most {facts.most_allowed_calls_in_a_day} "
            f"allowed calls for one debtor in the day (cap {load.DAILY_VOICE_CAP})"
        )
    finally:
        engine.dispose()
        if schema is not None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--small", action="store_true", help="a quick run: 8 clients for 5 s")
    arguments = parser.parse_args()
    if arguments.small:
        arguments.clients, arguments.seconds = 8, 5
    from recoup.kit import crypto

    crypto.set_keyring(crypto.KeyRing.generate())
    os.environ.setdefault("RECOUP_DATA_DIR", tempfile.mkdtemp(prefix="recoup-bench-data-"))
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    backends = ["sqlite", "postgresql"] if arguments.backend == "both" else [arguments.backend]
    for backend in backends:
        run(backend, arguments.clients, arguments.seconds)


if __name__ == "__main__":
    main()
