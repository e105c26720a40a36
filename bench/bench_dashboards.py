"""Benchmark the dashboards on a large history: the manager's home and the KPI API against a bare
``GET /healthz`` in the same run, and the daily aggregates' refresh.

Run: python bench/bench_dashboards.py [--accounts N] [--repeat R] [--small]
       [--keep DIR [--generate-only]] [--reuse DIR [--requests-only]]
(target: manager home and KPI API p95 ≤ 300 ms warm with 1,000,000 accounts on SQLite)

``--keep DIR`` builds the database in DIR and leaves it there (with ``--generate-only`` it stops
once the history is generated); ``--reuse DIR`` skips the seed and the generation and runs the
refreshes and the requests on the database kept in DIR (the first refresh rewrites a year);
with ``--requests-only`` it skips the refreshes too and times the requests on the aggregates and
KPI snapshot the last run stored.

A small ``seed-demo`` gives the institution, its users, queues and certificates; then the bench
adds N accounts (one debtor each) and a year of history set-based in SQL (``INSERT … SELECT``
over a recursive counter, no Python loop per row): two delinquency states per account, about
1.5 payments and 3 outbound contact attempts per account spread over the year, and each
delinquent account in its debtor's case, owned by one of the agents. It refreshes the
daily aggregates twice — the first refresh (a year back) and an incremental one the next day —
and times them (the first stores the KPI snapshot of the month to yesterday, the second brings
it forward from what changed); then calls, as a manager, in-process: ``/healthz``, the home page
(``/``), the agents and regions pages and ``GET /api/v1/kpis`` for the month and cut by four
cuts (from the daily aggregates and the snapshot, today's changes counted live), and from nine
days back (the month's snapshot moved to that start: the accounts touched between counted
again). Printed per request: p50, p95 and max wall time, p50 as a multiple of ``/healthz``'s,
and the p50 and p95 of the CPU time the process spent on it (``time.process_time``: on a shared
machine the wall time also counts the other work's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

FULL_ACCOUNTS = 1_000_000
SMALL_ACCOUNTS = 5_000
TARGET_MS = 300.0
PROVINCES = (
    "广东省",
    "浙江省",
    "江苏省",
    "四川省",
    "山东省",
    "河南省",
    "湖北省",
    "上海市",
    "北京市",
    "福建省",
)
OUTCOMES = (
    "no_answer",
    "no_answer",
    "busy",
    "right_party",
    "promise_made",
    "third_party",
    "switched_off",
    "message_delivered",
)


def _case(column: str, values: tuple[str, ...]) -> str:
    """An SQL CASE choosing ``values[column % len(values)]``."""
    whens = " ".join(f"WHEN {index} THEN '{value}'" for index, value in enumerate(values))
    return f"(CASE ({column}) % {len(values)} {whens} END)"


def _moment(days_ago: str, seconds: str = "0") -> str:
    """SQL text of a moment ``days_ago`` days before today 02:00 UTC (10:00 Beijing) + seconds.

    Today is the institution's (``:today``, Beijing), not UTC's: from 16:00 UTC they differ, and
    a history ending on UTC's today would leave the institution's today without changes.
    """
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', :today, '+2 hours', "
        f"'-' || ({days_ago}) || ' days', '+' || ({seconds}) || ' seconds') || '.000000'"
    )


def generate(
    engine: object, *, institution_id: int, agents: list[int], accounts: int, today: date
) -> dict:
    """Add ``accounts`` accounts with a year of history to ``today``, set-based; return row
    counts."""
    from sqlalchemy import text

    counter = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)"
    agent_case = _case("i", tuple(str(agent) for agent in agents))
    dpd = "((i * 37) % 220)"
    bucket = (
        f"(CASE WHEN {dpd} = 0 THEN 'M0' WHEN {dpd} <= 30 THEN 'M1' WHEN {dpd} <= 60 THEN 'M2' "
        f"WHEN {dpd} <= 90 THEN 'M3' WHEN {dpd} <= 120 THEN 'M4' WHEN {dpd} <= 150 THEN 'M5' "
        f"WHEN {dpd} <= 180 THEN 'M6' ELSE 'M6+' END)"
    )
    balance = "(100000 + (i * 7919) % 900000)"
    statements = {
        "debtors": f"""
            {counter}
            INSERT INTO debtors (external_id, kind, name, name_index, timezone, language,
                deceased, bankrupt, disputed, cease_contact, attorney_represented, hardship,
                work_contact_forbidden, province, city, institution_id, created_at, updated_at)
            SELECT 'BENCH-D' || i, 'person', 'bench', 'bench' || i, 'Asia/Shanghai', 'zh-CN',
                0, 0, 0, 0, 0, 0, 0, {_case("i", PROVINCES)}, NULL, :institution,
                CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
            FROM n""",
        "accounts": f"""
            {counter}
            INSERT INTO accounts (external_id, debtor_id, product, currency, principal, interest,
                fees, penalty, minimum_due, overdue_amount, days_past_due, bucket, status,
                institution_id, created_at, updated_at)
            SELECT 'BENCH-A' || i, :first_debtor + i - 1,
                {_case("i", ("credit_card", "consumer_loan", "cash_loan"))}, 'CNY',
                {balance}, 0, 0, 0, {balance} / 10, {balance} / 10, {dpd}, {bucket},
                CASE WHEN {dpd} = 0 THEN 'current' ELSE 'delinquent' END,
                :institution, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
            FROM n""",
        # Each delinquent account in its debtor's case, owned by one of the agents.
        "cases": f"""
            {counter}
            INSERT INTO cases (debtor_id, live_debtor_id, state, opened_at, owner_id,
                expected_recovery, priority, refusals, institution_id, created_at, updated_at)
            SELECT :first_debtor + i - 1, :first_debtor + i - 1, 'open', {_moment("30")},
                {agent_case}, 0, 0, 0, :institution, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
            FROM n WHERE {dpd} > 0""",
        "case_accounts": """
            INSERT INTO case_accounts (case_id, account_id, added_at, institution_id)
            SELECT cases.id, accounts.id, cases.opened_at, :institution
            FROM cases JOIN accounts ON accounts.debtor_id = cases.debtor_id
            WHERE cases.institution_id = :institution AND cases.id >= :first_case""",
        # Current a year and a half ago, then the bucket it is in now since a day of the year.
        "delinquency_events": f"""
            {counter}
            INSERT INTO delinquency_events (account_id, effective_at, recorded_at, days_past_due,
                bucket, status, balance, cause, superseded, institution_id)
            SELECT :first_account + i - 1, {_moment("540")}, {_moment("540")}, 0, 'M0',
                'current', {balance}, 'import', 0, :institution FROM n
            UNION ALL
            SELECT :first_account + i - 1, {_moment("(i * 13) % 365")},
                {_moment("(i * 13) % 365")}, {dpd}, {bucket},
                CASE WHEN {dpd} = 0 THEN 'current' ELSE 'delinquent' END, {balance}, 'import', 0,
                :institution FROM n""",
        "payments": f"""
            {counter}
            INSERT INTO payments (external_id, account_id, amount, currency, paid_at, channel,
                applied_penalty, applied_fees, applied_interest, applied_principal, unapplied,
                institution_id, created_at, updated_at)
            SELECT 'BENCH-P' || i || '-1', :first_account + i - 1, {balance} / 20, 'CNY',
                {_moment("(i * 7) % 365", "(i % 36000)")}, 'bank_transfer', 0, 0, 0,
                {balance} / 20, 0, :institution, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
            FROM n WHERE i % 2 = 0
            UNION ALL
            SELECT 'BENCH-P' || i || '-2', :first_account + i - 1, {balance} / 50, 'CNY',
                {_moment("(i * 11) % 365", "(i % 30000)")}, 'bank_transfer', 0, 0, 0,
                {balance} / 50, 0, :institution, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
            FROM n WHERE i % 1 = 0 AND i % 4 <> 1""",
        "contact_attempts": f"""
            {counter}, k(j) AS (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3)
            INSERT INTO contact_attempts (debtor_id, account_id, channel, party, direction,
                status, planned_at, started_at, ended_at, duration_seconds, outcome, effective,
                agent_id, actor, institution_id, created_at, updated_at)
            SELECT :first_debtor + i - 1, :first_account + i - 1,
                CASE WHEN (i + j) % 5 = 0 THEN 'sms' ELSE 'call' END, 'debtor', 'outbound',
                'made', {_moment("(i * j * 17) % 365", "(i % 28800)")},
                {_moment("(i * j * 17) % 365", "(i % 28800)")},
                {_moment("(i * j * 17) % 365", "(i % 28800) + 90")}, 90,
                CASE WHEN (i + j) % 5 = 0 THEN 'message_delivered'
                     ELSE {_case("i * 3 + j", OUTCOMES)} END,
                1, {_case("i + j", tuple(str(agent) for agent in agents))}, 'bench',
                :institution, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
            FROM n CROSS JOIN k""",
    }
    counts: dict[str, int] = {}
    with engine.begin() as connection:  # type: ignore[attr-defined]
        first_debtor = connection.execute(
            text("SELECT COALESCE(MAX(id), 0) + 1 FROM debtors")
        ).scalar_one()
        first_account = connection.execute(
            text("SELECT COALESCE(MAX(id), 0) + 1 FROM accounts")
        ).scalar_one()
        first_case = connection.execute(
            text("SELECT COALESCE(MAX(id), 0) + 1 FROM cases")
        ).scalar_one()
        for table, sql in statements.items():
            started = time.perf_counter()
            before = connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            connection.execute(
                text(sql),
                {
                    "count": accounts,
                    "today": today.isoformat(),
                    "institution": institution_id,
                    "first_debtor": first_debtor,
                    "first_account": first_account,
                    "first_case": first_case,
                },
            )
            took = time.perf_counter() - started
            after = connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            counts[table] = int(after) - int(before)
            print(f"  {table:<20} {counts[table]:>10,} rows in {took:6.1f} s")
        connection.execute(text("ANALYZE"))
    return counts


def _snapshot_seconds(session: Any, institution_id: int) -> float:
    """How long the institution's stored KPI snapshots took to write, together."""
    from sqlalchemy import select

    from recoup.models.analytics import KpiSnapshot

    return float(
        sum(
            session.scalars(
                select(KpiSnapshot.seconds).where(KpiSnapshot.institution_id == institution_id)
            )
        )
    )


def _timed(call: Callable[[], int], repeat: int) -> tuple[list[float], list[float]]:
    """Call ``repeat`` times; return the wall seconds and the process's CPU seconds of each."""
    seconds, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        status = call()
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        if status != 200:
            raise SystemExit(f"request failed with {status}")
    return seconds, cpu


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _refresh(code: str, day: Any) -> tuple[Any, float, Any, float]:
    """Refresh as a first refresh (a year), then as the daily cycle does today.

    Return both refreshes and the seconds their KPI snapshots took to write.
    """
    from recoup.analytics.daily import service as daily
    from recoup.db import unit_of_work
    from recoup.institutions import repository as institutions

    with unit_of_work() as session:
        institution = institutions.require_by_code(session, code)
        # A first refresh fills a year up to the day before yesterday (the demo seed
        # refreshed only its last quarter); the next, as the daily cycle does today, brings
        # the KPI snapshot forward a day from what changed.
        first = daily.refresh_aggregates(
            session,
            institution=institution,
            as_of=day - timedelta(days=2),
            first=day - timedelta(days=367),
        )
        first_kpi_seconds = _snapshot_seconds(session, institution.id)
    with unit_of_work() as session:
        institution = institutions.require_by_code(session, code)
        incremental = daily.refresh_aggregates(session, institution=institution, as_of=day)
        kpi_seconds = _snapshot_seconds(session, institution.id)
    return first, first_kpi_seconds, incremental, kpi_seconds


@contextmanager
def _folder(kept: str | None) -> Iterator[str]:
    """The bench's data folder: ``kept`` (created if missing, never removed) or a temporary one."""
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        yield str(Path(kept).resolve())
        return
    with tempfile.TemporaryDirectory(prefix="recoup-bench-dashboards-") as folder:
        yield folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=FULL_ACCOUNTS)
    parser.add_argument("--repeat", type=int, default=20, help="calls per page (after a warm-up)")
    parser.add_argument(
        "--small", action="store_true", help=f"{SMALL_ACCOUNTS:,} accounts (CI size)"
    )
    parser.add_argument("--keep", metavar="DIR", help="build the database in DIR and keep it")
    parser.add_argument("--reuse", metavar="DIR", help="run on the database kept in DIR")
    parser.add_argument(
        "--generate-only", action="store_true", help="with --keep: stop after generating"
    )
    parser.add_argument(
        "--requests-only",
        action="store_true",
        help="with --reuse: skip the refreshes (time the requests on what is stored)",
    )
    arguments = parser.parse_args()
    accounts = SMALL_ACCOUNTS if arguments.small else arguments.accounts
    if arguments.keep and arguments.reuse:
        parser.error("--keep builds a database and --reuse runs on one: give one of them")
    if arguments.generate_only and not arguments.keep:
        parser.error("--generate-only needs --keep DIR (where the database is kept)")
    if arguments.requests_only and not arguments.reuse:
        parser.error("--requests-only needs --reuse DIR (a database refreshed before)")
    if arguments.reuse and not (Path(arguments.reuse) / "bench.json").is_file():
        parser.error(f"--reuse {arguments.reuse}: no bench.json there; build it with --keep")

    with _folder(arguments.keep or arguments.reuse) as folder:
        os.environ["RECOUP_DATA_DIR"] = folder
        os.environ["RECOUP_DATABASE_URL"] = f"sqlite:///{folder}/bench.db"
        os.environ.pop("RECOUP_KEYRING_FILE", None)

        from fastapi import Response
        from fastapi.testclient import TestClient
        from sqlalchemy import inspect, select

        from recoup.app import create_app
        from recoup.db import get_engine, unit_of_work
        from recoup.demo.cli import prepare_schema
        from recoup.demo.service import seed_demo
        from recoup.identity import service as identity
        from recoup.identity.dependencies import SESSION_COOKIE, login_session
        from recoup.institutions import repository as institutions
        from recoup.kit.clock import local_today
        from recoup.models import Base, User

        prepare_schema()
        # Tables, nullable columns and indexes the models have and a kept database's revision
        # may not yet.
        Base.metadata.create_all(get_engine(), checkfirst=True)
        with get_engine().begin() as connection:
            present = inspect(connection)
            for table in Base.metadata.sorted_tables:
                known = {column["name"] for column in present.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in known and column.nullable:
                        kind = column.type.compile(dialect=connection.dialect)
                        connection.exec_driver_sql(
                            f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'
                        )
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                index.create(get_engine(), checkfirst=True)
        day = local_today("Asia/Shanghai")
        record = Path(folder) / "bench.json"
        if arguments.reuse:
            kept = json.loads(record.read_text(encoding="utf-8"))
            code, accounts = kept["institution"], kept["accounts"]
            counts, generate_seconds = kept["counts"], kept["generate_seconds"]
            with unit_of_work() as session:
                manager = session.scalars(
                    select(User).where(User.username == "bench.dashboards")
                ).one()
                token, _expires = identity.issue_access_token(manager)
            print(f"Reusing {accounts:,} accounts kept in {folder}")
        else:
            with unit_of_work() as session:
                seeded = seed_demo(session, accounts=400, seed=7, as_of=day)
            code = seeded.institutions[0].code
            with unit_of_work() as session:
                institution = institutions.require_by_code(session, code)
                institution_id = institution.id
                agents = list(
                    session.scalars(
                        select(User.id).where(
                            User.institution_id == institution_id, User.role == "agent"
                        )
                    )
                )
                manager = identity.create_user(
                    session,
                    username="bench.dashboards",
                    role="manager",
                    institution_id=institution_id,
                    password="Bench-dashboards-42-long",
                    actor="bench",
                )
                token, _expires = identity.issue_access_token(manager)
            print(f"Generating {accounts:,} accounts with a year of history (SQLite, set-based):")
            started = time.perf_counter()
            counts = generate(
                get_engine(),
                institution_id=institution_id,
                agents=agents,
                accounts=accounts,
                today=day,
            )
            generate_seconds = time.perf_counter() - started
            if arguments.keep:
                record.write_text(
                    json.dumps(
                        {
                            "institution": code,
                            "accounts": accounts,
                            "counts": counts,
                            "generate_seconds": generate_seconds,
                            "generated_on": day.isoformat(),
                        }
                    ),
                    encoding="utf-8",
                )
            if arguments.generate_only:
                get_engine().dispose()
                print(f"Kept in {folder}: {generate_seconds:.1f} s")
                return

        first = incremental = None
        first_kpi_seconds = kpi_seconds = 0.0
        with unit_of_work() as session:
            institution = institutions.require_by_code(session, code)
            if arguments.requests_only:
                kpi_seconds = _snapshot_seconds(session, institution.id)
        if not arguments.requests_only:
            first, first_kpi_seconds, incremental, kpi_seconds = _refresh(code, day)

        headers = {"Authorization": f"Bearer {token}"}
        # Pages read the signed-in session's cookie; the API reads the bearer token.
        cookie_response = Response()
        login_session(cookie_response, manager)
        cookie = cookie_response.headers["set-cookie"].split(f"{SESSION_COOKIE}=")[1].split(";")[0]
        as_of = day.isoformat()
        # A period no snapshot starts on (not a month's first day): the nearest one, moved.
        other_from = day - timedelta(days=9)
        if other_from.day == 1:
            other_from -= timedelta(days=1)
        requests: list[tuple[str, str, dict[str, str], int]] = [
            ("GET /healthz", "/healthz", {}, arguments.repeat),
            ("manager home /", "/", {}, arguments.repeat),
            (
                "home, last 90 days",
                "/",
                {"from": (day - timedelta(days=89)).isoformat()},
                arguments.repeat,
            ),
            ("agents page", "/analytics/agents", {}, arguments.repeat),
            ("regions page", "/analytics/regions", {}, arguments.repeat),
            ("GET /api/v1/kpis", "/api/v1/kpis", {"as_of": as_of}, arguments.repeat),
            (
                "GET /api/v1/kpis by cuts",
                "/api/v1/kpis",
                {"as_of": as_of, "group_by": "product,bucket,province,channel"},
                arguments.repeat,
            ),
            (
                "GET /api/v1/kpis, other from",
                "/api/v1/kpis",
                {"as_of": as_of, "from": other_from.isoformat()},
                arguments.repeat,
            ),
        ]
        results: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        load_before = os.getloadavg()[0]
        with TestClient(create_app(), follow_redirects=False) as client:
            client.cookies.set(SESSION_COOKIE, cookie)
            for label, path, params, repeat in requests:
                client.get(path, params=params, headers=headers)  # warm up
                results[label], cpu[label] = _timed(
                    lambda path=path, params=params: (
                        client.get(path, params=params, headers=headers).status_code
                    ),
                    repeat,
                )
        get_engine().dispose()

    health = statistics.median(results["GET /healthz"])
    print(
        f"\nDashboards on {accounts:,} accounts, SQLite ({os.cpu_count()} CPUs, load "
        f"{load_before:.1f} before the requests, {os.getloadavg()[0]:.1f} after); history "
        f"generated in {generate_seconds:.1f} s ({sum(counts.values()):,} rows)"
    )
    if first is not None and incremental is not None:
        print(
            f"  aggregate refresh, first (a year, {len(first.snapshots)} snapshots): "
            f"{first.seconds:.1f} s, {first.rows:,} rows"
        )
        print(
            f"  aggregate refresh, incremental "
            f"({(incremental.last - incremental.first).days + 1} days, KPI snapshot brought "
            f"forward a day): {incremental.seconds:.1f} s, {incremental.rows:,} rows"
        )
        print(
            f"  of which the KPI snapshot of the month: first {first_kpi_seconds:.1f} s, "
            f"brought forward {kpi_seconds:.1f} s (the API adds what changed since, live)"
        )
    else:
        print("  refreshes skipped (--requests-only): the requests read what the last run stored")
    print(
        f"  {'':<26} {'wall p50':>12} {'p95':>10} {'max':>10} {'× healthz':>10}"
        f"   {'CPU p50':>10} {'p95':>10}"
    )
    for label, seconds in results.items():
        median, p95 = statistics.median(seconds), _p95(seconds)
        verdict = ""
        targeted = ("manager home", "home,", "GET /api/v1/kpis", "agents", "regions")
        if label.startswith(targeted):
            verdict = "  ok" if p95 * 1000 <= TARGET_MS else f"  over {TARGET_MS:.0f} ms"
        print(
            f"  {label:<26} {median * 1000:9.1f} ms {p95 * 1000:7.1f} ms"
            f" {max(seconds) * 1000:7.1f} ms"
            f" {median / health:10.0f}   {statistics.median(cpu[label]) * 1000:7.1f} ms"
            f" {_p95(cpu[label]) * 1000:7.1f} ms{verdict}"
        )


if __name__ == "__main__":
    main()
