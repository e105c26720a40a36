"""Benchmark the account import: rows/s and peak memory, against a bare sqlite3 bulk insert.

    .venv/bin/python bench/bench_import.py [--rows N] [--small] [--chunk-size N] [--no-postgres]
                                           [--reader auto|process|here]

Generates an accounts CSV (its debtors are created first, outside the timing), imports it
into a fresh SQLite file through the real import path (``recoup.ingest.runner.run_import``:
reading, validation, upsert, delinquency events, commits per chunk), then inserts the
same rows with plain ``sqlite3`` ``executemany`` into an equivalent table and prints the
ratio. When PostgreSQL is reachable the import also runs there, in a throwaway schema.
Files of 8 MiB or more are read and checked in a second process (``--reader auto``);
the CPU figures count both processes.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from recoup.db import make_engine, session_factory
from recoup.ingest.runner import run_import
from recoup.institutions.service import create_institution
from recoup.kit import crypto
from recoup.models import Base, Debtor
from recoup.portfolio.rules import bucket_for

TARGET_ROWS_PER_SECOND = 50_000
PRODUCTS = ("credit_card", "consumer_loan", "cash_loan", "auto_loan")
HEADER = (
    "external_id,debtor_external_id,product,currency,credit_limit,principal,interest,fees,"
    "penalty,minimum_due,overdue_amount,due_date,days_past_due,status,opened_on,charged_off_on"
)


def write_accounts_csv(path: Path, *, rows: int, debtors: int, seed: int = 7) -> None:
    """Write ``rows`` realistic account rows, streaming."""
    generator = random.Random(seed)
    today = date(2025, 11, 28)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER + "\n")
        lines = []
        for index in range(rows):
            principal = int(generator.lognormvariate(9.5, 1.0) * 100)
            interest = principal * generator.randint(0, 12) // 100
            fees = generator.choice((0, 0, 5000, 15000))
            penalty = generator.choice((0, 0, 0, 3200, 8800))
            balance = principal + interest + fees + penalty
            days = generator.choice((0, 0, 0, 5, 12, 28, 35, 47, 66, 95, 130, 200))
            overdue = balance // 10 if days else 0
            product = PRODUCTS[index % 4]
            limit = f"{principal * 2 // 100}.00" if product == "credit_card" else ""
            due = (today - timedelta(days=days or -15)).isoformat()
            opened = (today - timedelta(days=400 + index % 2000)).isoformat()
            status = "delinquent" if days else "current"
            lines.append(
                f"A{index:08d},D{index % debtors:08d},{product},CNY,{limit},"
                f"{principal // 100}.{principal % 100:02d},{interest // 100}.{interest % 100:02d},"
                f"{fees // 100}.{fees % 100:02d},{penalty // 100}.{penalty % 100:02d},"
                f"{overdue // 100}.{overdue % 100:02d},{overdue // 100}.{overdue % 100:02d},"
                f"{due},{days},{status},{opened},\n"
            )
            if len(lines) == 10_000:
                handle.writelines(lines)
                lines.clear()
        handle.writelines(lines)


def create_debtors(engine: Engine, institution_id: int, count: int) -> None:
    """Insert ``count`` debtors with Core (outside the timing)."""
    table = Debtor.__table__
    now = datetime.now(UTC)
    name_index = crypto.blind_index("张伟", context="debtors.name")
    with engine.begin() as connection:
        batch = []
        for index in range(count):
            batch.append(
                {
                    "institution_id": institution_id,
                    "external_id": f"D{index:08d}",
                    "kind": "individual",
                    "name": "张伟",
                    "name_index": name_index,
                    "timezone": "Asia/Shanghai",
                    "language": "zh-CN",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if len(batch) == 20_000:
                connection.execute(table.insert(), batch)  # type: ignore[attr-defined]
                batch.clear()
        if batch:
            connection.execute(table.insert(), batch)  # type: ignore[attr-defined]


class RssSampler:
    """Samples this process's resident memory while the import runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.process.memory_info().rss)
            self._stop.wait(0.25)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def describe(self) -> str:
        if not self.samples:
            return "n/a"
        mb = [sample / 2**20 for sample in self.samples]
        quarter = max(1, len(mb) // 4)
        return (
            f"peak {max(mb):.0f} MiB; at 25% / 50% / 75% / end of the run: "
            f"{mb[quarter - 1]:.0f} / {mb[len(mb) // 2]:.0f} / {mb[-quarter]:.0f} / "
            f"{mb[-1]:.0f} MiB"
        )


def run_recoup_import(
    engine: Engine,
    csv_path: Path,
    *,
    rows: int,
    chunk_size: int,
    label: str,
    pipeline: bool | None = None,
) -> float:
    """Prepare an institution and its debtors on ``engine``, import the CSV, print figures."""
    Base.metadata.create_all(engine)
    factory = session_factory(engine)
    with factory() as session:
        institution = create_institution(
            session,
            code="BENCH",
            name="Bench Lender",
            jurisdiction="CN",
            timezone="Asia/Shanghai",
            currency="CNY",
            preset="consumer_finance",
        )
        session.commit()
        institution_id = institution.id
    create_debtors(engine, institution_id, max(1, rows // 2))
    cpu_started = time.process_time()
    children_started = _children_cpu()
    with factory() as session, RssSampler() as sampler:
        summary = run_import(
            session,
            institution_code="BENCH",
            kind="accounts",
            path=csv_path,
            chunk_size=chunk_size,
            actor="bench",
            reject_report=csv_path.with_suffix(".rejects.csv"),
            pipeline=pipeline,
        )
    cpu = time.process_time() - cpu_started
    reader_cpu = _children_cpu() - children_started
    rate = summary.rows_read / summary.seconds
    print(
        f"[{label}] recoup import: {summary.rows_read:,} rows in {summary.seconds:.1f} s = "
        f"{rate:,.0f} rows/s wall (inserted {summary.inserted:,}, rejected {summary.rejected:,})"
    )
    print(
        f"[{label}] CPU: writing process {cpu:.1f} s = {summary.rows_read / cpu:,.0f} rows per "
        f"CPU-second; reader process {reader_cpu:.1f} s; together "
        f"{summary.rows_read / (cpu + reader_cpu):,.0f} rows per CPU-second"
    )
    print(f"[{label}] memory of the writing process: {sampler.describe()}")
    if summary.rejected:
        print(f"[{label}] WARNING: {summary.rejected} rows rejected: {dict(summary.reject_counts)}")
    return rate


def _children_cpu() -> float:
    """Return the CPU seconds of finished child processes (the import's reader process)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bare_sqlite_insert(csv_path: Path, database: Path, *, chunk_size: int) -> float:
    """Read the same CSV and insert its rows with plain sqlite3 executemany; return rows/s.

    No validation, no look-ups, no delinquency events: the floor an import cannot beat.
    """
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, institution_id INTEGER NOT NULL, "
        "external_id TEXT NOT NULL, debtor_id INTEGER NOT NULL, product TEXT, currency TEXT, "
        "credit_limit INTEGER, principal INTEGER, interest INTEGER, fees INTEGER, penalty INTEGER, "
        "minimum_due INTEGER, overdue_amount INTEGER, due_date TEXT, days_past_due INTEGER, "
        "bucket TEXT, status TEXT, opened_on TEXT, charged_off_on TEXT, created_at TEXT, "
        "updated_at TEXT, assigned_agent_id INTEGER, UNIQUE (institution_id, external_id))"
    )
    # The same secondary indexes as the real accounts table, so the comparison is fair.
    for columns in ("institution_id", "debtor_id", "institution_id, bucket", "assigned_agent_id"):
        name = "ix_" + columns.replace(", ", "_")
        connection.execute(f"CREATE INDEX {name} ON accounts ({columns})")

    def minor(value: str) -> int | None:
        if not value:
            return None
        whole, _, cents = value.partition(".")
        return int(whole) * 100 + int(cents.ljust(2, "0"))

    started = time.perf_counter()
    cpu_started = time.process_time()
    now = datetime.now(UTC).isoformat()
    count = 0
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        while True:
            batch = []
            for row in reader:
                days = int(row[12])
                batch.append(
                    (1, row[0], int(row[1][1:]), row[2], row[3], minor(row[4]), minor(row[5]),
                     minor(row[6]), minor(row[7]), minor(row[8]), minor(row[9]), minor(row[10]),
                     row[11], days, bucket_for(days), row[13], row[14], row[15] or None, now, now)
                )  # fmt: skip
                if len(batch) == chunk_size:
                    break
            if not batch:
                break
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO accounts (institution_id, external_id, debtor_id, product, currency, "
                "credit_limit, principal, interest, fees, penalty, minimum_due, overdue_amount, "
                "due_date, days_past_due, bucket, status, opened_on, charged_off_on, created_at, "
                "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                batch,
            )
            connection.execute("COMMIT")
            count += len(batch)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    connection.close()
    rate = count / seconds
    print(
        f"[sqlite3 bare] executemany of the same rows: {count:,} rows in {seconds:.1f} s = "
        f"{rate:,.0f} rows/s; process CPU {cpu:.1f} s = {count / cpu:,.0f} rows per CPU-second"
    )
    return rate


def postgres_engine(url: str) -> tuple[Engine, Engine, str] | None:
    """Return (engine in a fresh schema, admin engine, schema) or ``None`` if unreachable."""
    admin = make_engine(url)
    schema = f"recoup_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        print(f"[postgresql] skipped: not reachable at {url} ({type(error).__name__})")
        admin.dispose()
        return None
    separator = "&" if "?" in url else "?"
    return make_engine(f"{url}{separator}options=-csearch_path%3D{schema}"), admin, schema


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_true", help="20,000 rows (for CI)")
    parser.add_argument("--chunk-size", type=int, default=5_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--reader",
        choices=("auto", "process", "here"),
        default="auto",
        help="read and check the file in a second process, in this one, or by file size",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "RECOUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    arguments = parser.parse_args()
    rows = 20_000 if arguments.small else arguments.rows
    pipeline = {"auto": None, "process": True, "here": False}[arguments.reader]
    crypto.set_keyring(crypto.KeyRing.generate())
    print(
        f"Import benchmark: {rows:,} account rows, chunks of {arguments.chunk_size:,}, "
        f"{os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="recoup-bench-") as scratch:
        folder = Path(scratch)
        csv_path = folder / "accounts.csv"
        started = time.perf_counter()
        write_accounts_csv(csv_path, rows=rows, debtors=max(1, rows // 2))
        size = csv_path.stat().st_size / 2**20
        print(f"generated {csv_path.name}: {size:.0f} MiB in {time.perf_counter() - started:.1f} s")

        engine = make_engine(f"sqlite:///{folder / 'recoup.db'}")
        recoup_rate = run_recoup_import(
            engine,
            csv_path,
            rows=rows,
            chunk_size=arguments.chunk_size,
            label="sqlite",
            pipeline=pipeline,
        )
        engine.dispose()
        bare_rate = bare_sqlite_insert(
            csv_path, folder / "bare.db", chunk_size=arguments.chunk_size
        )
        print(f"[sqlite] ratio bare sqlite3 / recoup import (wall): {bare_rate / recoup_rate:.1f}x")
        verdict = "met" if recoup_rate >= TARGET_ROWS_PER_SECOND else "NOT met"
        print(
            f"[sqlite] target {TARGET_ROWS_PER_SECOND:,} rows/s wall: {verdict} "
            f"({recoup_rate:,.0f} rows/s)"
        )

        if (
            not arguments.no_postgres
            and (found := postgres_engine(arguments.postgres_url)) is not None
        ):
            pg_engine, admin, schema = found
            try:
                run_recoup_import(
                    pg_engine,
                    csv_path,
                    rows=rows,
                    chunk_size=arguments.chunk_size,
                    label="postgresql",
                    pipeline=pipeline,
                )
            finally:
                pg_engine.dispose()
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reader_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"process peak RSS (whole run, ru_maxrss): {peak:.0f} MiB")
    print(f"largest reader process peak RSS (ru_maxrss of children): {reader_peak:.0f} MiB")


if __name__ == "__main__":
    main()
