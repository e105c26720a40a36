"""Benchmark the daily cycle: 1M delinquent accounts with 12 months of payments, end to end.

    .venv/bin/python bench/bench_cycle.py [--accounts N] [--small] [--postgres | --postgres-only]
                                          [--seed S]
                                          [--keep DIR | --reuse DIR [--steady-only]]

Builds a portfolio on a fresh SQLite file (untimed): debtors, delinquent accounts owing for
1–360 days, about four payments a year per account and the delinquency history, yesterday's
cases, a scorecard champion trained on a sample of it through the real feature pipeline, and
yesterday's scores by it.
Then, timed, in child processes so each has its own peak RSS, two days of a lender's cycle:

1. the **first run**: ``recoup cycle run --json`` for the build day on the fresh portfolio —
   its `aggregates` stage is a *first* refresh (a year of daily facts, a whole KPI snapshot);
2. a day's new payments are added (untimed: about one account in 90 pays), and the cycle runs
   for the next day — **a day in steady state** (the accounts age a day; the aggregates are
   refreshed from the previous day's refresh, the KPI snapshot brought forward a day). The
   targets are judged on this day;
3. one bare pass over the same rows: read the accounts and their history as of the second
   day, score them with the champion and write one score per account (no cases, no gate, no
   ledger).

Each cycle runs with the clock at 06:00 of its day in the institution's zone (the preset's
``cycle.run_at``), as a scheduled run would, whatever the bench's own date.

Prints each day's per-stage timings (with the cycle's peak RSS so far as each stage ends, and
the peaks of its private memory and of the files it maps), its seconds and peak RSS against
the targets (≤ 60 s, ≤ 2 GB on 2 cores), its ratio to the bare pass, and the load average
(the machine may be shared). ``--postgres`` repeats it all on PostgreSQL
(``RECOUP_BENCH_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
in a scratch schema; ``--postgres-only`` runs it there alone.
``--small`` is the 100,000-account smoke run. ``--keep DIR`` copies the freshly built SQLite data
folder (database, keyring, model files; before the first run) to DIR, and the folder as the
steady-state day finds it (after the first run and the day's payments) to DIR/steady;
``--reuse DIR`` times a copy of DIR instead of building one, so a 1M portfolio is built once
and measured many times (it keeps DIR/steady too when missing); ``--reuse DIR --steady-only``
times only the steady-state day, from a copy of DIR/steady.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

TARGET_SECONDS = 60.0
# CPU seconds of the last child run (``_child``).
LAST_CHILD_CPU = 0.0
TARGET_RSS_MB = 2048
FULL_ACCOUNTS = 1_000_000
SMALL_ACCOUNTS = 100_000
CODE = "BENCH"
PROVINCES = ("北京市", "上海市", "广东省", "四川省", "浙江省", "湖北省", "河南省", "江苏省")
ZONE = "Asia/Shanghai"
# The hour (local) the cycle runs at: the consumer finance preset's ``cycle.run_at``.
RUN_HOUR = 6
POSTGRES_URL = os.environ.get(
    "RECOUP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# The cycle command, noting on stderr as each stage function returns the process's peak RSS so
# far and, sampled every 0.1 s, the peaks of its private memory (RssAnon) and of the file pages
# it maps (RssFile: SQLite reads the database through a memory map, libraries): the stage where
# a figure jumps is the one that needs the memory.
# It runs with the clock at ``now`` (ISO, UTC) plus the time elapsed since it started.
CYCLE_CHILD = """
import resource, sys, threading, time
from datetime import datetime, timedelta
sys.path.insert(0, {src!r})
from recoup.kit import clock
started, now = time.perf_counter(), datetime.fromisoformat({now!r})
clock.utcnow = lambda: now + timedelta(seconds=time.perf_counter() - started)
peaks = {{"RssAnon": 0, "RssFile": 0}}
def sample():
    while True:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in peaks:
                    peaks[key] = max(peaks[key], int(value.split()[0]) // 1024)
        time.sleep(0.1)
threading.Thread(target=sample, daemon=True).start()
from recoup.cycle import service
def watched(name, function):
    def run(session, context):
        try:
            return function(session, context)
        finally:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak-rss {{name}} {{peak:.0f}} {{peaks['RssAnon']}} {{peaks['RssFile']}}",
                  file=sys.stderr, flush=True)
    return run
for stage, function in list(service.STAGE_FUNCTIONS.items()):
    service.STAGE_FUNCTIONS[stage] = watched(stage.value, function)
from recoup.cli import main
sys.argv = ["recoup", *sys.argv[1:]]
main()
"""
BARE_PASS = """
import sys, time
from datetime import date
sys.path.insert(0, {src!r})
from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.scoring import repository, service
from recoup.scoring.features import compute_features, end_of_day
from recoup.scoring.scorer import compile_scorer
from recoup.demo.repository import execute_insert, prepare_insert
from sqlalchemy import Column, Float, Integer, MetaData, Table
as_of = date.fromisoformat({as_of!r})
started = time.perf_counter()
with unit_of_work() as session:
    institution = institutions.require_by_code(session, {code!r})
    champion = service.repository.champions(session, institution_id=institution.id)[0]
    model = service.load_registered_model(champion)
    tables = repository.load_portfolio_tables(
        session, institution_id=institution.id, until=end_of_day(as_of),
        account_ids=repository.delinquent_accounts(institution_id=institution.id),
    )
    batch = compile_scorer(model).score(compute_features(tables, as_of=as_of))
    scratch = Table("bench_bare_scores", MetaData(), Column("account_id", Integer),
                    Column("probability", Float), Column("points", Float))
    connection = session.connection()
    scratch.drop(connection, checkfirst=True)
    scratch.create(connection)
    prepared = prepare_insert(connection.dialect, scratch, {{
        "account_id": tables.accounts["account_id"].to_numpy(),
        "probability": batch.probability, "points": batch.points}})
    execute_insert(connection, prepared)
print(time.perf_counter() - started)
"""


def _columns(rng: np.random.Generator, accounts: int, as_of: date) -> dict[str, Any]:
    """Return the bench portfolio as numpy columns (debtors, accounts, payments, events)."""
    debtors = max(1, int(accounts * 0.8))
    debtor_of = np.concatenate(
        [np.arange(debtors), rng.integers(0, debtors, accounts - debtors)]
    ).astype(np.int64)
    today = np.datetime64(as_of, "D")
    days = rng.integers(1, 361, accounts)
    principal = np.rint(rng.lognormal(9.5, 1.0, accounts) * 100).astype(np.int64)
    interest = principal // 20
    fees = np.where(days > 30, 5_000, 0).astype(np.int64)
    penalty = (principal * np.minimum(days, 180) // 3650).astype(np.int64)
    overdue = np.minimum(principal // 6 * (1 + days // 30), principal) + fees + penalty
    per_account = rng.poisson(4, accounts)
    payment_account = np.repeat(np.arange(accounts), per_account)
    payments = len(payment_account)
    paid_day = today - rng.integers(1, 366, payments).astype("timedelta64[D]")
    paid_at = paid_day.astype("datetime64[us]") + rng.integers(
        8 * 3600, 20 * 3600, payments
    ).astype("timedelta64[s]")
    amount = np.maximum(np.rint(principal[payment_account] * rng.uniform(0.02, 0.1, payments)), 100)
    buckets = np.array(["M1", "M2", "M3", "M4", "M5", "M6", "M6+"])
    bucket = buckets[np.minimum((days - 2) // 30, 6).clip(min=0)]
    return {
        "debtors": debtors,
        "debtor_of": debtor_of,
        "days": days,
        "due_date": today - (days + 1).astype("timedelta64[D]"),
        "principal": principal,
        "interest": interest,
        "fees": fees,
        "penalty": penalty,
        "overdue": overdue,
        "bucket": bucket,
        "provinces": np.array(PROVINCES)[rng.integers(0, len(PROVINCES), debtors)],
        "cease": rng.random(debtors) < 0.01,
        "payment_account": payment_account,
        "paid_at": paid_at,
        "amount": amount.astype(np.int64),
        "opened_on": today - rng.integers(400, 2000, accounts).astype("timedelta64[D]"),
        "event_at": (today - (days - 1).astype("timedelta64[D]")).astype("datetime64[us]"),
    }


def build(url: str, accounts: int, seed: int, as_of: date) -> float:
    """Write the bench portfolio and a champion into a fresh schema; return the seconds."""
    os.environ["RECOUP_DATABASE_URL"] = url
    from recoup import config
    from recoup.db import get_engine, unit_of_work
    from recoup.demo.repository import chunked, execute_insert, prepare_insert
    from recoup.institutions.service import create_institution
    from recoup.kit.crypto import blind_index
    from recoup.models import Base
    from recoup.models.account import Account, DelinquencyEvent, Payment
    from recoup.models.cases import Case, CaseAccount
    from recoup.models.debtor import Debtor

    config.get_settings.cache_clear()
    get_engine.cache_clear()
    started = time.perf_counter()
    Base.metadata.create_all(get_engine())
    rng = np.random.default_rng(seed)
    data = _columns(rng, accounts, as_of)
    now = run_clock(as_of) - timedelta(hours=1)  # built before the day's run
    with unit_of_work() as session:
        institution = create_institution(
            session,
            code=CODE,
            name="Bench Lender",
            jurisdiction="CN",
            timezone="Asia/Shanghai",
            currency="CNY",
            preset="consumer_finance",
        )
        institution_id = institution.id
    engine = get_engine()

    def load(table: Any, columns: dict[str, Any], *, stamps: bool = True) -> None:
        size = len(next(value for value in columns.values() if isinstance(value, np.ndarray)))
        constants: dict[str, Any] = {"institution_id": institution_id}
        if stamps:
            constants |= {"created_at": now, "updated_at": now}
        with engine.begin() as connection:
            for part in chunked(size, 200_000):
                sliced = {
                    name: values[part] if isinstance(values, np.ndarray) else values
                    for name, values in columns.items()
                }
                execute_insert(
                    connection, prepare_insert(connection.dialect, table, sliced | constants)
                )

    debtors = data["debtors"]
    name = "张伟"
    load(
        Debtor.__table__,
        {
            "external_id": np.char.add("BD", np.arange(debtors).astype(str)).astype(object),
            "kind": "individual",
            "name": name,
            "name_index": blind_index(name, context="debtors.name"),
            "province": data["provinces"].astype(object),
            "timezone": "Asia/Shanghai",
            "timezone_source": "column",
            "language": "zh-CN",
            "deceased": False,
            "bankrupt": False,
            "disputed": False,
            "cease_contact": data["cease"],
            "attorney_represented": False,
            "hardship": False,
            "work_contact_forbidden": False,
        },
    )
    with engine.connect() as connection:
        debtor_ids = np.fromiter(
            connection.exec_driver_sql(
                f"SELECT id FROM debtors WHERE institution_id = {institution_id} ORDER BY id"
            ).scalars(),
            dtype=np.int64,
        )
    load(
        Account.__table__,
        {
            "external_id": np.char.add("BA", np.arange(accounts).astype(str)).astype(object),
            "debtor_id": debtor_ids[data["debtor_of"]],
            "product": "consumer_loan",
            "currency": "CNY",
            "principal": data["principal"],
            "interest": data["interest"],
            "fees": data["fees"],
            "penalty": data["penalty"],
            "minimum_due": data["overdue"],
            "overdue_amount": data["overdue"],
            "due_date": data["due_date"],
            "days_past_due": data["days"],
            "bucket": data["bucket"].astype(object),
            "status": "delinquent",
            "opened_on": data["opened_on"],
        },
    )
    with engine.connect() as connection:
        account_ids = np.fromiter(
            connection.exec_driver_sql(
                f"SELECT id FROM accounts WHERE institution_id = {institution_id} ORDER BY id"
            ).scalars(),
            dtype=np.int64,
        )
    payments = len(data["payment_account"])
    load(
        Payment.__table__,
        {
            "external_id": np.char.add("BP", np.arange(payments).astype(str)).astype(object),
            "account_id": account_ids[data["payment_account"]],
            "amount": data["amount"],
            "currency": "CNY",
            "paid_at": data["paid_at"],
            "channel": "bank_transfer",
            "applied_penalty": 0,
            "applied_fees": 0,
            "applied_interest": 0,
            "applied_principal": data["amount"],
            "unapplied": 0,
        },
    )
    load(
        DelinquencyEvent.__table__,
        {
            "account_id": account_ids,
            "effective_at": data["event_at"],
            "recorded_at": now,
            "days_past_due": data["days"],
            "bucket": data["bucket"].astype(object),
            "status": "delinquent",
            "balance": data["principal"] + data["interest"] + data["fees"] + data["penalty"],
            "cause": "import",
            "superseded": False,
        },
        stamps=False,
    )
    # Yesterday's cases (the steady state a daily run finds): one per debtor, bulk-loaded.
    load(
        Case.__table__,
        {
            "debtor_id": debtor_ids,
            "live_debtor_id": debtor_ids,
            "state": "open",
            "opened_at": now - timedelta(days=1),
            "expected_recovery": 0,
            "priority": 0,
            "refusals": 0,
        },
    )
    with engine.connect() as connection:
        case_ids = np.fromiter(
            connection.exec_driver_sql(
                f"SELECT id FROM cases WHERE institution_id = {institution_id} ORDER BY debtor_id"
            ).scalars(),
            dtype=np.int64,
        )
    load(
        CaseAccount.__table__,
        {
            "case_id": case_ids[data["debtor_of"]],
            "account_id": account_ids,
            "added_at": now - timedelta(days=1),
        },
        stamps=False,
    )
    if engine.dialect.name == "postgresql":
        # Training reads the loaded tables: without statistics (autovacuum has not run yet, or
        # is off) PostgreSQL planned that read badly enough that a 1M build had not finished
        # after 45 minutes.
        with engine.begin() as connection:
            for table in Base.metadata.sorted_tables:
                connection.exec_driver_sql(f'ANALYZE "{table.name}"')
    _champion(institution_id, account_ids, as_of)
    _scored(institution_id, as_of - timedelta(days=1))
    engine.dispose()
    return time.perf_counter() - started


def _champion(institution_id: int, account_ids: np.ndarray[Any, Any], as_of: date) -> None:
    """Train a scorecard on a sample through the feature pipeline; make it the champion."""
    from recoup.db import unit_of_work
    from recoup.scoring import repository, service
    from recoup.scoring.features import end_of_day, training_snapshots
    from recoup.scoring.service import PORTFOLIO_TARGET
    from recoup.scoring.training import train_model

    sample = np.random.default_rng(1).choice(
        account_ids, size=min(20_000, len(account_ids)), replace=False
    )
    with unit_of_work() as session:
        tables = repository.load_portfolio_tables(
            session,
            institution_id=institution_id,
            until=end_of_day(as_of),
            account_ids=sorted(int(a) for a in sample),
        )
        frame = training_snapshots(
            tables, as_of=as_of, horizon_days=30, payment_share=0.05, snapshots=6
        )
        model = train_model(
            frame,
            target=PORTFOLIO_TARGET,
            family="scorecard",
            positive="1",
            event_is_favourable=True,
            id_column="account_id",
            date_column="snapshot",
            seed=0,
            trained_by="bench",
        )
        version = service.register_model(
            session, model=model, institution_id=institution_id, source="bench", actor="bench"
        )
        service.promote_model(session, version=version.version, actor="bench")


def _scored(institution_id: int, day: date) -> None:
    """Score the portfolio as of ``day`` with the champion: yesterday's scores and segments.

    What the day before's cycle left, as the cases are: without them the first two days'
    scores would all be firsts, every account's segment new.
    """
    from recoup.db import unit_of_work
    from recoup.institutions import repository as institutions
    from recoup.scoring import service

    with unit_of_work() as session:
        institution = institutions.require_by_id(session, institution_id)
        service.score_delinquent_accounts(session, institution=institution, as_of=day)


def _child(arguments: list[str], env: dict[str, str]) -> tuple[str, str, float, float]:
    """Run a child; return its stdout, stderr, wall seconds and peak RSS in MB.

    ``LAST_CHILD_CPU`` holds the CPU seconds (user + system) it and its own children used.
    """
    global LAST_CHILD_CPU
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        arguments, env=env, capture_output=True, text=True, check=False, cwd=ROOT
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CHILD_CPU = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments[:4])}… failed:\n{result.stderr[-4000:]}")
    # ru_maxrss of the children is the largest child's; each child runs alone, in turn.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result.stdout, result.stderr, seconds, peak


def run_clock(day: date) -> datetime:
    """Return when a scheduled cycle for ``day`` starts: ``RUN_HOUR`` local, in UTC."""
    from recoup.kit.clock import start_of_day

    return start_of_day(day, ZONE) + timedelta(hours=RUN_HOUR)


def run_cycle(label: str, url: str, as_of: date) -> dict[str, Any]:
    """Run the day's cycle as a child at the day's run time; print its stages and figures."""
    env = {**os.environ, "RECOUP_DATABASE_URL": url, "PYTHONPATH": str(ROOT / "src")}
    load_before = os.getloadavg()
    command = ["cycle", "run", "--institution", CODE, "--as-of", as_of.isoformat(), "--json"]
    cycle_script = CYCLE_CHILD.format(src=str(ROOT / "src"), now=run_clock(as_of).isoformat())
    output, errors, wall, cycle_peak = _child([sys.executable, "-c", cycle_script, *command], env)
    load_after = os.getloadavg()
    report = json.loads(output)
    peaks = {
        line.split()[1]: [int(value) for value in line.split()[2:5]]
        for line in errors.splitlines()
        if line.startswith("peak-rss ")
    }
    print(f"\n{label}: cycle of {as_of} (load {load_before[0]:.2f} → {load_after[0]:.2f}, 1 min)")
    for name, stage in report["stages"].items():
        counts = ", ".join(
            f"{key} {value:,}" if isinstance(value, int) else f"{key} {value}"
            for key, value in stage["counts"].items()
            if not isinstance(value, dict)
        )
        peak = ("{:6,} MB ({:,} + {:,})".format(*peaks[name]) if name in peaks else "").ljust(26)
        print(f"  {name:<15}{stage['seconds']:8.2f} s  {peak}  {counts}")
    seconds = report["seconds"]
    print(
        f"  cycle: {seconds:.1f} s in its stages, {wall:.1f} s for the whole command "
        f"(target ≤ {TARGET_SECONDS:.0f} s), {LAST_CHILD_CPU:.1f} s of CPU (its worker "
        f"processes included); peak RSS {cycle_peak:,.0f} MB "
        f"(target ≤ {TARGET_RSS_MB:,} MB); {report['tasks_created']:,} tasks, "
        f"{report['messages_queued']:,} messages, blocked {report['blocked_by_rule']}"
    )
    if peaks:
        _, private, mapped = list(peaks.values())[-1]
        print(
            f"  sampled peaks: private memory {private:,} MB, mapped files {mapped:,} MB (the "
            "database read through SQLite's memory map, libraries); per stage: peak RSS so far "
            "(private + mapped peaks so far)"
        )
    return {"seconds": seconds, "wall": wall, "peak_mb": cycle_peak, "report": report}


def bare_pass(url: str, as_of: date) -> float:
    """Time one bare read+score+write pass over the portfolio as of ``as_of`` (a child)."""
    env = {**os.environ, "RECOUP_DATABASE_URL": url, "PYTHONPATH": str(ROOT / "src")}
    script = BARE_PASS.format(src=str(ROOT / "src"), as_of=as_of.isoformat(), code=CODE)
    output, _errors, _wall, _peak = _child([sys.executable, "-c", script], env)
    return float(output.strip().splitlines()[-1])


def add_day(url: str, day: date, seed: int) -> int:
    """Add the payments of ``day`` after its cycle ran (about one account in 90); return them.

    Untimed: what a day of the lender's payment files brings before the next day's cycle.
    """
    from sqlalchemy import text

    from recoup.db import make_engine
    from recoup.demo.repository import execute_insert, prepare_insert
    from recoup.models.account import Payment

    engine = make_engine(url)
    with engine.begin() as connection:
        institution_id, currency = connection.execute(
            text("SELECT id, currency FROM institutions WHERE code = :code"), {"code": CODE}
        ).one()
        accounts = np.fromiter(
            connection.execute(
                text("SELECT id FROM accounts WHERE institution_id = :id ORDER BY id"),
                {"id": institution_id},
            ).scalars(),
            dtype=np.int64,
        )
        rng = np.random.default_rng([seed, day.toordinal()])
        paying = np.sort(rng.choice(accounts, size=max(1, len(accounts) * 4 // 365), replace=False))
        count = len(paying)
        # Paid from the run (06:00 local) to the day's end, stored as naive UTC like the rest.
        opened = np.datetime64(run_clock(day).replace(tzinfo=None), "us")
        paid_at = opened + rng.integers(0, (24 - RUN_HOUR) * 3600, count).astype("timedelta64[s]")
        amount = rng.integers(100, 200_000, count).astype(np.int64)
        stamp = run_clock(day + timedelta(days=1)) - timedelta(hours=1)
        execute_insert(
            connection,
            prepare_insert(
                connection.dialect,
                Payment.__table__,
                {
                    "institution_id": institution_id,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "external_id": np.char.add(
                        f"BP{day:%Y%m%d}-", np.arange(count).astype(str)
                    ).astype(object),
                    "account_id": paying,
                    "amount": amount,
                    "currency": currency,
                    "paid_at": paid_at,
                    "channel": "bank_transfer",
                    "applied_penalty": 0,
                    "applied_fees": 0,
                    "applied_interest": 0,
                    "applied_principal": amount,
                    "unapplied": 0,
                },
            ),
        )
    engine.dispose()
    return count


def measure(
    engine_label: str,
    url: str,
    as_of: date,
    *,
    seed: int,
    first: bool = True,
    keep_steady: Path | None = None,
    folder: Path | None = None,
) -> None:
    """Time the first run for ``as_of``, then a day in steady state, then the bare pass."""
    runs: dict[str, dict[str, Any]] = {}
    day = as_of + timedelta(days=1)
    if first:
        runs["first run"] = run_cycle(f"{engine_label}, first run", url, as_of)
        added = add_day(url, as_of, seed)
        print(f"  then {added:,} payments of {as_of} added (not timed)")
        if keep_steady is not None and folder is not None:
            _keep(folder, keep_steady, day, None)
    runs["a day in steady state"] = run_cycle(f"{engine_label}, a day in steady state", url, day)
    load_before = os.getloadavg()
    bare = bare_pass(url, day)
    load_after = os.getloadavg()
    print(
        f"\n{engine_label}: bare read+score+write pass as of {day}: {bare:.1f} s "
        f"(load {load_before[0]:.2f} → {load_after[0]:.2f})"
    )
    for label, run in runs.items():
        verdict = (
            "targets met"
            if run["wall"] <= TARGET_SECONDS and run["peak_mb"] <= TARGET_RSS_MB
            else "targets missed"
        )
        judged = " — judged" if label == "a day in steady state" else ""
        print(
            f"  {label + ':':<23}{run['seconds']:7.1f} s in the stages, {run['wall']:7.1f} s "
            f"whole, peak RSS {run['peak_mb']:,.0f} MB, cycle / bare = "
            f"{run['seconds'] / bare:.1f}× ({verdict}{judged})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=FULL_ACCOUNTS)
    parser.add_argument("--small", action="store_true", help=f"{SMALL_ACCOUNTS:,} accounts")
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    parser.add_argument(
        "--postgres-only", action="store_true", help="run on PostgreSQL only (not SQLite)"
    )
    parser.add_argument("--seed", type=int, default=7)
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--keep", type=Path, help="copy the built SQLite data folder here")
    kept.add_argument("--reuse", type=Path, help="time a copy of a folder kept with --keep")
    parser.add_argument(
        "--steady-only",
        action="store_true",
        help="with --reuse: time only the steady-state day, from the copy kept in DIR/steady",
    )
    arguments = parser.parse_args()
    if arguments.steady_only and not arguments.reuse:
        parser.error("--steady-only: give --reuse DIR (the steady-state copy is DIR/steady)")
    if arguments.postgres_only and (arguments.keep or arguments.reuse):
        parser.error("--postgres-only builds its own PostgreSQL schema: no --keep or --reuse")
    accounts = SMALL_ACCOUNTS if arguments.small else arguments.accounts
    with tempfile.TemporaryDirectory(prefix="recoup-bench-cycle-") as name:
        folder = Path(name)
        os.environ["RECOUP_DATA_DIR"] = name
        os.environ.pop("RECOUP_KEYRING_FILE", None)
        from recoup.kit import clock

        url = f"sqlite:///{folder}/bench.db"
        keep_steady: Path | None = None
        if arguments.reuse:
            source = arguments.reuse / "steady" if arguments.steady_only else arguments.reuse
            as_of, accounts = _reuse(source, folder)
            if arguments.steady_only:
                as_of -= timedelta(days=1)
            elif not (arguments.reuse / "steady" / "bench.json").exists():
                keep_steady = arguments.reuse / "steady"
        else:
            as_of = clock.local_today(ZONE)
        print(f"bench_cycle: {accounts:,} delinquent accounts, {os.cpu_count()} CPUs visible")
        if arguments.postgres_only:
            _postgres(accounts, arguments.seed, as_of)
            return
        if not arguments.reuse:
            built = build(url, accounts, arguments.seed, as_of)
            print(f"SQLite portfolio and champion built in {built:.0f} s (not timed below)")
            if arguments.keep:
                _keep(folder, arguments.keep, as_of, accounts)
                keep_steady = arguments.keep / "steady"
        measure(
            "SQLite",
            url,
            as_of,
            seed=arguments.seed,
            first=not arguments.steady_only,
            keep_steady=keep_steady,
            folder=folder,
        )
        if arguments.postgres:
            _postgres(accounts, arguments.seed, as_of)


def _keep(folder: Path, target: Path, as_of: date, accounts: int | None) -> None:
    """Copy the data folder (database, keyring, model files) to the folder ``target``."""
    shutil.copytree(folder, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("steady"))
    if accounts is None:
        accounts = json.loads((target.parent / "bench.json").read_text())["accounts"]
    meta = {"as_of": as_of.isoformat(), "accounts": accounts}
    (target / "bench.json").write_text(json.dumps(meta))
    print(f"portfolio as of {as_of} kept in {target}")


def _reuse(kept: Path, folder: Path) -> tuple[date, int]:
    """Copy a kept data folder into ``folder``; return the day it was kept for and its size."""
    meta_file = kept / "bench.json"
    if not meta_file.exists():
        raise SystemExit(f"--reuse {kept}: no portfolio there; build one with --keep")
    meta = json.loads(meta_file.read_text())
    shutil.copytree(kept, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("steady"))
    _add_new_columns(f"sqlite:///{folder}/bench.db")
    return date.fromisoformat(meta["as_of"]), int(meta["accounts"])


def _add_new_columns(url: str) -> None:
    """Add the nullable columns and the indexes the models gained since a kept portfolio was
    built."""
    from sqlalchemy import inspect

    from recoup.db import make_engine
    from recoup.models import Base

    engine = make_engine(url)
    with engine.begin() as connection:
        present = inspect(connection)
        for table in Base.metadata.sorted_tables:
            if not present.has_table(table.name):
                continue
            known = {column["name"] for column in present.get_columns(table.name)}
            for column in table.columns:
                if column.name not in known and column.nullable:
                    kind = column.type.compile(dialect=connection.dialect)
                    connection.exec_driver_sql(
                        f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'
                    )
        Base.metadata.create_all(connection)
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                index.create(connection, checkfirst=True)
    engine.dispose()


def _postgres(accounts: int, seed: int, as_of: date) -> None:
    from sqlalchemy import text

    from recoup.db import make_engine

    schema = f"bench_cycle_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        built = build(url, accounts, seed, as_of)
        print(f"PostgreSQL portfolio and champion built in {built:.0f} s (not timed below)")
        analysed = _analyse(admin, schema)
        print(f"PostgreSQL statistics gathered in {analysed:.1f} s (not timed below)")
        measure("PostgreSQL", url, as_of, seed=seed)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _analyse(admin: Any, schema: str) -> float:
    """Gather the scratch schema's table statistics, as autovacuum would after a bulk load.

    The cycle relies on PostgreSQL's own statistics; a portfolio loaded and measured at once
    has none yet (nor any where autovacuum is off), and without them the planner reads each
    account's payments through a scan of the institution's whole payments index.
    """
    from sqlalchemy import text

    from recoup.models import Base

    started = time.perf_counter()
    with admin.begin() as connection:
        for table in Base.metadata.sorted_tables:
            connection.execute(text(f'ANALYZE "{schema}"."{table.name}"'))
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
