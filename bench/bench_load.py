"""Load test with locust: the compliance check, payments and KPIs against a bare FastAPI endpoint.

Run: python bench/bench_load.py [--users 16] [--seconds 20] [--backend sqlite|postgresql|both]
     [--small]

For each backend a fresh database (a SQLite file; a new database on the PostgreSQL server of
``RECOUP_TEST_POSTGRES_URL``, dropped afterwards) gets the load test's institution
(``tests/load.py``: two managers, 60 debtors with an account each) and an API key with the
scopes the three endpoints need, and ``recoup serve`` runs against it on loopback. A bare
FastAPI app with one trivial endpoint runs under the same uvicorn settings
(``bench/_bare_app.py``). Locust (``bench/locustfile.py``) runs headless, ``--users`` users
for ``--seconds`` each, once on the bare endpoint and once on each of: ``POST
/api/v1/compliance/check``, ``POST /api/v1/payments`` (a fresh ``Idempotency-Key`` each, one in
ten retried with the same key; one task in twenty reverses the user's newest payment through
``POST /api/v1/payments/reversals``) and ``GET /api/v1/kpis``. Printed per endpoint: requests,
failures, throughput, p50 and p99, and throughput and p50 as ratios against the bare endpoint
measured just before on the same machine (load from other processes moves both); then what
the database holds afterwards (payments written against payments acknowledged).

Locust runs on the same two cores as the server, so the bare figure is a ceiling of the
client as much as of the server: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

POSTGRES_URL = os.environ.get(
    "RECOUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LOCUSTFILE = ROOT / "bench" / "locustfile.py"
# The endpoints measured, in order: locust's target name and the request names it reports.
TARGETS = ("check", "payments", "kpis")
SCOPES = ["compliance:check", "payments:write", "kpis:read"]


@dataclass(frozen=True)
class Figures:
    """What locust measured for one request name."""

    name: str
    requests: int
    failures: int
    per_second: float
    p50_ms: float
    p99_ms: float


def run_locust(
    base_url: str, target: str, *, users: int, seconds: float, folder: Path, env: dict[str, str]
) -> list[Figures]:
    """Run locust headless on ``target`` and return its figures per request name."""
    prefix = folder / f"locust-{target}-{uuid.uuid4().hex[:6]}"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{seconds:.0f}s",
        "--stop-timeout",
        "10",
        "--host",
        base_url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    environment = {**os.environ, **env, "RECOUP_LOAD_TARGET": target}
    finished = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=seconds + 120
    )
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        raise RuntimeError(f"locust wrote no figures:\n{finished.stdout}\n{finished.stderr}")
    figures = []
    with stats.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                continue
            figures.append(
                Figures(
                    name=row["Name"],
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    per_second=float(row["Requests/s"]),
                    p50_ms=float(row["50%"]),
                    p99_ms=float(row["99%"]),
                )
            )
    failures = Path(f"{prefix}_failures.csv")
    if failures.exists():
        # Locust keeps a row per distinct message; the sum per status is what reads well.
        by_status: Counter[tuple[str, str]] = Counter()
        example: dict[tuple[str, str], str] = {}
        with failures.open(newline="") as handle:
            for row in csv.DictReader(handle):
                found = re.search(r"status (\d+)", row["Error"])
                key = (row["Name"], found.group(1) if found else row["Error"][:80])
                by_status[key] += int(row["Occurrences"])
                example.setdefault(key, row["Error"][:160])
        for (name, status), count in sorted(by_status.items()):
            print(f"    failed {count}× {name} ({status}), e.g. {example[(name, status)]}")
    return figures


@contextmanager
def bare_serving(folder: Path) -> Iterator[str]:
    """Run the bare app (``bench/_bare_app.py``) on a free loopback port until the block ends."""
    from tests.load import free_port

    port = free_port()
    log = folder / "bare.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_bare_app.py"), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the bare app exited at start:\n{log.read_text()}")
            try:
                if httpx.get(f"{base_url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - started > 60:
                raise RuntimeError("the bare app did not start in 60 s")
            time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """A new empty database on ``backend``; its URL (a PostgreSQL one is dropped afterwards)."""
    from sqlalchemy import make_url, text

    from recoup.db import make_engine

    if backend == "sqlite":
        yield f"sqlite:///{folder / 'load.db'}"
        return
    name = f"recoup_load_{uuid.uuid4().hex[:12]}"
    server = make_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def warm_up(base_url: str, api_key: str, debtor_id: int, ledger: Path) -> None:
    """Call each measured endpoint once before the clock starts (a route's first call in a
    process imports its modules); a failure here stops the bench with the server's answer."""
    from tests.load import CHECK_DAY as day

    check = {
        "debtor_id": debtor_id,
        "channel": "call",
        "party": "debtor",
        "at": f"{day}T10:00:00+08:00",
    }
    payment = {
        "external_id": f"WARM-{uuid.uuid4().hex}",
        "account_external_id": "LA0",
        "amount": "1.00",
        "currency": "CNY",
        "paid_at": "2026-01-02T03:04:05+00:00",
        "channel": "bank_transfer",
    }
    with httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=120) as client:
        client.post("/api/v1/compliance/check", json=check).raise_for_status()
        client.post("/api/v1/payments", json=payment).raise_for_status()
        ledger.write_text(f"{payment['external_id']}\n")
        client.get("/api/v1/kpis", params={"as_of": date.today().isoformat()}).raise_for_status()


def print_figures(label: str, figures: list[Figures], bare: Figures) -> None:
    """Print one run's figures, with throughput and p50 against the bare endpoint."""
    if not figures:
        print(f"  {label:10} no request was answered in the run")
    for item in figures:
        speed = item.per_second / bare.per_second if bare.per_second else float("nan")
        slower = item.p50_ms / bare.p50_ms if bare.p50_ms else float("nan")
        print(
            f"  {label:10} {item.name:38} n={item.requests:6d} fail={item.failures:4d} "
            f"{item.per_second:7.1f} req/s  p50 {item.p50_ms:6.0f} ms  p99 {item.p99_ms:6.0f} ms"
            f"  | {speed:5.3f}× bare req/s, p50 {slower:5.1f}× bare"
        )


def run(backend: str, *, users: int, seconds: float) -> None:
    """Measure the bare endpoint, then the three endpoints of ``recoup serve`` on ``backend``."""
    from sqlalchemy import func, select
    from tests import load

    from recoup.db import make_engine, unit_of_work
    from recoup.identity import service as identity
    from recoup.models import Base, Institution, Payment

    folder = Path(tempfile.mkdtemp(prefix=f"recoup-bench-load-{backend}-"))
    print(
        f"\n== {backend}: {users} users, {seconds:.0f} s per endpoint "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    with bare_serving(folder) as bare_url:
        bare_figures = run_locust(
            bare_url, "bare", users=users, seconds=seconds, folder=folder, env={}
        )
    bare = bare_figures[0]
    print_figures("bare", bare_figures, bare)
    with fresh_database(backend, folder) as url:
        engine = make_engine(url)
        try:
            Base.metadata.create_all(engine)
            portfolio = load.seed(engine, webhooks_to=None)  # no failing receiver to retry
            with unit_of_work(engine) as session:
                institution = session.scalars(select(Institution)).one()
                api_key, _row = identity.create_api_key(
                    session,
                    institution_id=institution.id,
                    name="load bench",
                    scopes=SCOPES,
                    actor="bench",
                )
            env = {
                "RECOUP_LOAD_API_KEY": api_key,
                "RECOUP_LOAD_DEBTORS": ",".join(map(str, portfolio.debtor_ids)),
                "RECOUP_LOAD_ACCOUNTS": ",".join(
                    f"LA{n}" for n in range(len(portfolio.account_ids))
                ),
                "RECOUP_LOAD_CHECK_DAY": load.CHECK_DAY,
            }
            ledger = folder / "acknowledged-payments.txt"
            env["RECOUP_LOAD_LEDGER"] = str(ledger)
            # The endpoints are measured, not the per-key rate limit (docs/api.md).
            unlimited = {
                "RECOUP_API_KEY_REQUESTS_PER_MINUTE": "1000000",
                "RECOUP_USER_REQUESTS_PER_MINUTE": "1000000",
            }
            with load.serving(url, folder / "data", extra_env=unlimited) as server:
                print(f"  recoup serve ready in {server.ready_seconds:.1f} s")
                warm_up(server.base_url, api_key, portfolio.debtor_ids[0], ledger)
                for target in TARGETS:
                    figures = run_locust(
                        server.base_url,
                        target,
                        users=users,
                        seconds=seconds,
                        folder=folder,
                        env=env,
                    )
                    print_figures(backend, figures, bare)
                server.stop(grace_seconds=30)
            acknowledged = ledger.read_text().split() if ledger.exists() else []
            with unit_of_work(engine, write=False) as session:
                written = set(session.scalars(select(Payment.external_id)))
                rows = session.scalar(select(func.count()).select_from(Payment)) or 0
                reversed_rows = (
                    session.scalar(
                        select(func.count())
                        .select_from(Payment)
                        .where(Payment.reversed_at.is_not(None))
                    )
                    or 0
                )
            lost = [item for item in acknowledged if item not in written]
            print(
                f"  after: {rows} payments in the database ({len(written)} external ids, "
                f"{reversed_rows} reversed); "
                f"{len(acknowledged)} acknowledged with 201, {len(lost)} of them missing; "
                f"{rows - len(acknowledged)} more were still in flight when locust stopped"
            )
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--small", action="store_true", help="a quick run: 4 users for 5 s")
    arguments = parser.parse_args()
    if arguments.small:
        arguments.users, arguments.seconds = 4, 5
    from recoup.kit import crypto

    crypto.set_keyring(crypto.KeyRing.generate())
    os.environ.setdefault("RECOUP_DATA_DIR", tempfile.mkdtemp(prefix="recoup-bench-data-"))
    backends = ["sqlite", "postgresql"] if arguments.backend == "both" else [arguments.backend]
    for backend in backends:
        run(backend, users=arguments.users, seconds=arguments.seconds)


if __name__ == "__main__":
    main()
