"""Benchmark the security costs: sign-in latency (Argon2id) and PII encryption per 100k rows.

    .venv/bin/python bench/bench_crypto.py [--rows N] [--logins N] [--small]

Prints:
- Argon2id verify p50/p95 with the parameters Recoup uses, and the p50 of a whole
  ``POST /api/v1/auth/token`` (lockout checks, attempt row, audit event, JWT) on SQLite;
- the cost of encrypting (AES-256-GCM) and blind-indexing (HMAC-SHA256) the PII of a debtor
  row — name, national id, phone — scaled to 100,000 rows, and of decrypting it again;
- inserting N debtor rows through the ORM with the ``Encrypted`` columns versus the same
  rows into an identical table with plain text columns, as overhead per 100,000 rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bench_argon2(logins: int) -> None:
    from recoup.identity.service import password_hasher

    parameters = password_hasher
    hashed = password_hasher.hash("Correct-horse-42")
    samples, cpu = [], []
    for _ in range(logins):
        started, started_cpu = time.perf_counter(), time.process_time()
        password_hasher.verify(hashed, "Correct-horse-42")
        samples.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    # CPU time is printed too: on a busy shared machine wall time mostly measures the queue.
    print(
        f"argon2id verify (m={parameters.memory_cost} KiB, t={parameters.time_cost}, "
        f"p={parameters.parallelism}): p50 {statistics.median(samples) * 1000:.1f} ms, "
        f"p95 {_percentile(samples, 0.95) * 1000:.1f} ms over {logins} "
        f"(CPU p50 {statistics.median(cpu) * 1000:.1f} ms)"
    )


def bench_login_endpoint(logins: int) -> None:
    from fastapi.testclient import TestClient

    from recoup.app import create_app
    from recoup.db import get_engine, unit_of_work
    from recoup.identity import service
    from recoup.institutions.service import create_institution
    from recoup.models import Base

    Base.metadata.create_all(get_engine())
    with unit_of_work() as session:
        institution = create_institution(
            session,
            code="BENCH",
            name="Bench",
            jurisdiction="CN",
            timezone="Asia/Shanghai",
            currency="CNY",
            preset="consumer_finance",
        )
        service.create_user(
            session,
            username="bench.user",
            role="agent",
            institution_id=institution.id,
            password="Correct-horse-42",
            actor="bench",
        )
    samples = []
    with TestClient(create_app()) as client:
        for _ in range(logins):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/auth/token",
                data={"username": "bench.user", "password": "Correct-horse-42"},
            )
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    print(
        f"POST /api/v1/auth/token (SQLite): p50 {statistics.median(samples) * 1000:.1f} ms, "
        f"p95 {_percentile(samples, 0.95) * 1000:.1f} ms over {logins}"
    )


def bench_field_crypto(rows: int) -> None:
    from recoup.kit.crypto import KeyRing, normalise_for_index

    ring = KeyRing.generate()
    values = [(f"张{n:05d}", f"1101011990{n:08d}", f"138{n:08d}") for n in range(rows)]
    contexts = ("debtors.name", "debtors.national_id", "contact_points.value")
    started, started_cpu = time.perf_counter(), time.process_time()
    sealed = []
    for row in values:
        sealed.append(
            tuple(
                ring.encrypt(value, context=context)
                for value, context in zip(row, contexts, strict=True)
            )
        )
        for value, context in zip(row, contexts, strict=True):
            ring.blind_index(normalise_for_index(value), context=context)
    encrypt_seconds = time.perf_counter() - started
    encrypt_cpu = time.process_time() - started_cpu
    started = time.perf_counter()
    for row in sealed:
        for token, context in zip(row, contexts, strict=True):
            ring.decrypt(token, context=context)
    decrypt_seconds = time.perf_counter() - started
    scale = 100_000 / rows
    print(
        f"encrypt + blind-index 3 PII fields: {encrypt_seconds * scale:.2f} s per 100k rows "
        f"({encrypt_seconds / rows / 3 * 1e6:.1f} µs per field, CPU {encrypt_cpu * scale:.2f} s); "
        f"decrypt: {decrypt_seconds * scale:.2f} s per 100k rows"
    )


def bench_insert(rows: int) -> None:
    from sqlalchemy import (
        Column,
        DateTime,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        UniqueConstraint,
        insert,
    )

    from recoup.db import make_engine, unit_of_work
    from recoup.kit.clock import utcnow
    from recoup.kit.crypto import blind_index
    from recoup.models import Base, Debtor, Institution

    with tempfile.TemporaryDirectory(prefix="recoup-bench-crypto-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        Base.metadata.create_all(engine)
        # The same debtor table with its PII in plain text, searched on those columns directly.
        plain_metadata = MetaData()
        plain = Table(
            "plain_debtors",
            plain_metadata,
            Column("id", Integer, primary_key=True),
            Column("institution_id", Integer, index=True),
            Column("external_id", String(64)),
            Column("kind", String(16)),
            Column("name", Text, index=True),
            Column("national_id", Text, index=True),
            Column("timezone", String(64)),
            Column("language", String(16)),
            Column("created_at", DateTime(timezone=True)),
            Column("updated_at", DateTime(timezone=True)),
            UniqueConstraint("institution_id", "external_id"),
        )
        plain_metadata.create_all(engine)
        with unit_of_work(engine) as session:
            institution = Institution(
                code="B", name="B", jurisdiction="CN", timezone="Asia/Shanghai", currency="CNY",
                preset="consumer_finance", settings={},
            )  # fmt: skip
            session.add(institution)
            session.flush()
            institution_id = institution.id
        now = utcnow()
        started = time.perf_counter()
        with unit_of_work(engine) as session:
            session.execute(
                insert(plain),
                [
                    {
                        "institution_id": institution_id,
                        "external_id": f"P{n}",
                        "name": f"张{n:05d}",
                        "national_id": f"1101011990{n:08d}",
                        "timezone": "Asia/Shanghai",
                        "kind": "individual",
                        "language": "zh-CN",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(rows)
                ],
            )
        plain_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with unit_of_work(engine) as session:
            session.execute(
                insert(Debtor),
                [
                    {
                        "institution_id": institution_id,
                        "external_id": f"E{n}",
                        "name": f"张{n:05d}",
                        "name_index": blind_index(f"张{n:05d}", context="debtors.name"),
                        "national_id": f"1101011990{n:08d}",
                        "national_id_index": blind_index(
                            f"1101011990{n:08d}", context="debtors.national_id"
                        ),
                        "timezone": "Asia/Shanghai",
                        "kind": "individual",
                        "language": "zh-CN",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(rows)
                ],
            )
        encrypted_seconds = time.perf_counter() - started
        engine.dispose()
    scale = 100_000 / rows
    print(
        f"insert {rows} debtors (SQLite, bulk ORM insert): plain {plain_seconds * scale:.2f} s, "
        f"encrypted + indexed {encrypted_seconds * scale:.2f} s per 100k rows → overhead "
        f"{(encrypted_seconds - plain_seconds) * scale:.2f} s per 100k rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the crypto figures")
    parser.add_argument("--logins", type=int, default=30, help="sign-ins to time")
    parser.add_argument(
        "--small", action="store_true", help="a quick run for CI (10k rows, 8 logins)"
    )
    arguments = parser.parse_args()
    rows, logins = (10_000, 8) if arguments.small else (arguments.rows, arguments.logins)

    with tempfile.TemporaryDirectory(prefix="recoup-bench-data-") as data_dir:
        os.environ["RECOUP_DATA_DIR"] = data_dir
        os.environ.pop("RECOUP_DATABASE_URL", None)
        from recoup import config

        config.get_settings.cache_clear()
        bench_argon2(logins)
        bench_login_endpoint(logins)
        bench_field_crypto(rows)
        bench_insert(rows)


if __name__ == "__main__":
    main()
