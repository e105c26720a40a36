"""The daily cycle split into shards: jobs on the workers give the same day as one process.

Ageing splits by account and the gate by debtor; each shard is a ``cycle.stage_shard`` job
with its own ledger row. The in-process checks use Huey's memory store; the worker check runs
two ``recoup worker`` processes on Redis against PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from recoup.cycle import runner, service
from recoup.cycle.rules import STAGE_SHARD, Shard, Stage, merge_counts, shards_of
from recoup.db import unit_of_work
from recoup.kit import crypto, jobs
from recoup.kit.clock import utcnow
from recoup.models import Institution
from recoup.models.account import DelinquencyEvent
from recoup.models.compliance import ContactDecision
from recoup.models.cycle import CycleAction, CycleRun, CycleStage
from recoup.models.jobs import Job, JobStatus
from tests.conftest import REDIS_URL
from tests.cycle.helpers import today_of
from tests.factories import make_account, make_debtor, make_institution


def book(code: str, *, debtors: int = 24) -> Institution:
    """An institution of ``debtors`` debtors, some with two overdue accounts of different ages,
    every fifth asking for no more contact; no cycle time, so no scheduler starts its day."""
    with unit_of_work() as session:
        institution = make_institution(session, code=code)
        institution.settings = {**institution.settings, "cycle": {"run_at": None}}
        today = today_of(institution)
        for number in range(debtors):
            debtor = make_debtor(session, institution, external_id=f"{code}-D{number}")
            debtor.cease_contact = number % 5 == 4
            for second in range(1 + number % 2):
                make_account(
                    session,
                    debtor,
                    external_id=f"{code}-A{number}-{second}",
                    principal=150_000 * (number + 1) + 10_000 * second,
                    days_past_due=10 + number,
                    due_date=today - timedelta(days=20 + 3 * number + 40 * second),
                    status="current" if number % 7 == 3 else "delinquent",
                )
        return institution


def outcome(code: str) -> dict[str, Any]:
    """What a day did to an institution, without ids or timings: the report's figures and each
    debtor's action in debtor order."""
    with unit_of_work(write=False) as session:
        institution = session.scalar(select(Institution).where(Institution.code == code))
        assert institution is not None
        run = session.scalar(select(CycleRun).where(CycleRun.institution_id == institution.id))
        assert run is not None
        report = service.report_of(session, institution=institution, run=run).to_json()
        actions = session.execute(
            select(
                CycleAction.status,
                CycleAction.kind,
                CycleAction.channel,
                CycleAction.segment,
                CycleAction.step,
                CycleAction.rule_ids,
            )
            .where(CycleAction.run_id == run.id)
            .order_by(CycleAction.debtor_id, CycleAction.id)
        ).all()
        counted = {
            model.__name__: session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.institution_id == institution.id)
            )
            for model in (DelinquencyEvent, ContactDecision, CycleAction)
        }
    for stage in report["stages"].values():
        stage.pop("seconds")
    for volatile in ("seconds", "resumed_stages_skipped", "institution"):
        report.pop(volatile)
    return {
        "report": report,
        "actions": [(*row[:5], sorted(row[5] or [])) for row in actions],
        "rows": counted,
    }


def ledger_names(code: str) -> list[str]:
    with unit_of_work(write=False) as session:
        return sorted(
            session.scalars(
                select(CycleStage.stage)
                .join(Institution, Institution.id == CycleStage.institution_id)
                .where(Institution.code == code)
            )
        )


class TestShardRules:
    def test_a_shard_is_one_of_its_stage_s_parts(self) -> None:
        assert [shard.label for shard in shards_of(Stage.GATE, 3)] == [
            "gate#0/3",
            "gate#1/3",
            "gate#2/3",
        ]
        with pytest.raises(ValueError, match="does not split"):
            Shard(Stage.SCORING, 0, 2)
        with pytest.raises(ValueError, match=r"0\.\.1"):
            Shard(Stage.GATE, 2, 2)
        with pytest.raises(ValueError, match="1 to 256"):
            Shard(Stage.DELINQUENCY, 0, 0)

    def test_counts_add_up_across_shards(self) -> None:
        merged = merge_counts(
            [{"aged": 2, "events": 1, "by": {"x": 1}}, {"aged": 3, "by": {"y": 2}}]
        )
        assert merged == {"aged": 5, "by": {"x": 1, "y": 2}, "events": 1}


def test_a_sharded_day_equals_the_in_process_day(memory_jobs: str) -> None:
    day = today_of(book("ONE"))
    book("SHD")
    whole = runner.run_cycle(institution_code="ONE", as_of=day, actor="test", shards=0)
    assert whole.stages["delinquency"].counts["aged"] > 0
    assert whole.stages["gate"].counts["blocked"] > 0

    report = None
    for attempt in range(10):
        report = runner.advance_cycle(
            institution_code="SHD", as_of=day, actor="test", shards=3, first=attempt == 0
        )
        if report is not None:
            break
        jobs.drain()  # what the workers do
    assert report is not None
    assert report.status == "completed"

    assert outcome("SHD") == outcome("ONE")
    shards = [f"{stage}#{index}/3" for stage in ("delinquency", "gate") for index in range(3)]
    assert set(ledger_names("SHD")) == {str(stage) for stage in Stage} | set(shards)
    with unit_of_work(write=False) as session:
        ran = session.execute(
            select(Job.status, func.count()).where(Job.name == STAGE_SHARD).group_by(Job.status)
        ).all()
    assert ran == [(JobStatus.done, 6)]
    # The day is done: running it again asks for nothing.
    again = runner.run_cycle(institution_code="SHD", as_of=day, actor="test", shards=3)
    assert again.to_json() == {**report.to_json(), "resumed_stages_skipped": []}


def test_a_failing_shard_stops_the_run_and_a_rerun_retries_it(
    memory_jobs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = today_of(book("BAD", debtors=6))
    real = service.SHARD_FUNCTIONS[Stage.GATE]
    broken = {"on": True}

    def gate_shard(session: Any, context: Any, shard: Shard) -> dict[str, Any]:
        if broken["on"] and shard.index == 1:
            raise RuntimeError("the gate's database went away")
        return real(session, context, shard)

    monkeypatch.setitem(service.SHARD_FUNCTIONS, Stage.GATE, gate_shard)

    def until_it_fails() -> None:
        for attempt in range(40):
            report = runner.advance_cycle(
                institution_code="BAD", as_of=day, actor="t", shards=2, first=attempt == 0
            )
            assert report is None
            jobs.drain(now=utcnow() + timedelta(hours=3))

    with pytest.raises(runner.ShardsFailed, match=r"gate#1/2.*went away"):
        until_it_fails()
    broken["on"] = False
    # Running the day again (a person, or the job's next try) retries the dead shard.
    report = None
    for attempt in range(10):
        report = runner.advance_cycle(
            institution_code="BAD", as_of=day, actor="t", shards=2, first=attempt == 0
        )
        if report is not None:
            break
        jobs.drain()
    assert report is not None
    assert report.status == "completed"
    assert report.attempts == 2
    assert "gate#1/2" in ledger_names("BAD")


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "recoup", "worker", "--threads", "2"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.usefixtures("redis_client")
def test_two_workers_on_redis_give_the_in_process_day(live_database: str, tmp_path: Path) -> None:
    if not live_database.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database")
    day = today_of(book("ONE", debtors=40))
    book("SHD", debtors=40)
    keyring = tmp_path / "keyring.json"
    crypto.save_keyring(crypto.get_keyring(), keyring)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "RECOUP_DATABASE_URL": live_database,
        "RECOUP_JOBS_URL": REDIS_URL,
        "RECOUP_JOBS_QUEUE": f"recoup-test-{uuid.uuid4().hex[:8]}",
        "RECOUP_DATA_DIR": str(tmp_path),
        "RECOUP_KEYRING_FILE": str(keyring),
    }
    workers = [_worker(env, tmp_path / f"worker{n}.log") for n in range(2)]
    try:
        runner.run_cycle(institution_code="ONE", as_of=day, actor="test", shards=0)
        started = time.monotonic()
        report = runner.run_cycle(
            institution_code="SHD", as_of=day, actor="test", shards=4, shard_timeout=90
        )
        assert report.status == "completed", time.monotonic() - started
        assert outcome("SHD") == outcome("ONE")
        with unit_of_work(write=False) as session:
            statuses = session.scalars(select(Job.status).where(Job.name == STAGE_SHARD)).all()
        assert statuses == [JobStatus.done] * 8
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("worker*.log")))
        assert "Traceback" not in logs, logs
