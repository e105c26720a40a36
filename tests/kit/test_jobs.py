"""Background jobs: the outbox, retries and dead letters, schedules, and real workers.

The database is real (SQLite and PostgreSQL); the job store is Huey's memory store for the
in-process tests, and a SQLite file and a real Redis for the worker tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import REDIS_URL
from typer.testing import CliRunner

from recoup import config
from recoup.audit import service as audit
from recoup.cli import app as cli
from recoup.db import unit_of_work
from recoup.kit import jobs
from recoup.kit.clock import utcnow
from recoup.models import AuditEvent
from recoup.models.identity import LoginAttempt
from recoup.models.jobs import Job, JobStatus

failures = {"left": 0}


@jobs.handler("test.touch", max_attempts=3, retry_delay=timedelta(seconds=1))
def touch(session: Session, payload: dict[str, Any]) -> None:
    """Write one audit event (the job's visible effect); fail while told to."""
    if failures["left"] > 0:
        failures["left"] -= 1
        raise RuntimeError("the provider is down")
    audit.record(
        session,
        actor="job",
        action="test.touched",
        object_type="test",
        object_id=str(payload.get("n", 0)),
    )


def _touched() -> int:
    with unit_of_work(write=False) as session:
        query = select(func.count()).select_from(AuditEvent)
        return session.scalar(query.where(AuditEvent.action == "test.touched")) or 0


def _jobs(name: str = "test.touch") -> list[Job]:
    with unit_of_work(write=False) as session:
        return list(session.scalars(select(Job).where(Job.name == name).order_by(Job.id)))


@pytest.fixture
def database(live_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database every unit of work (so every job) uses, with jobs kept in memory."""
    monkeypatch.setenv("RECOUP_JOBS_URL", "memory")
    config.get_settings.cache_clear()
    jobs.reset()
    failures["left"] = 0
    yield live_database
    jobs.reset()


class TestOutbox:
    def test_a_job_exists_only_if_its_transaction_committed(self, database: str) -> None:
        def failing_request() -> None:
            with unit_of_work() as session:
                jobs.enqueue(session, "test.touch", {"n": 1})
                raise RuntimeError("the request failed after asking for the job")

        with pytest.raises(RuntimeError):
            failing_request()
        with unit_of_work() as session:
            jobs.enqueue(session, "test.touch", {"n": 2})
        assert [job.payload for job in _jobs()] == [{"n": 2}]
        assert jobs.drain() == 1
        assert _touched() == 1

    def test_the_same_key_is_one_job(self, database: str) -> None:
        for _ in range(3):
            with unit_of_work() as session:
                jobs.enqueue(session, "test.touch", {"n": 1}, idempotency_key="payment-77")
        assert len(_jobs()) == 1
        jobs.drain()
        assert _touched() == 1

    def test_a_job_handed_over_twice_takes_effect_once(self, database: str) -> None:
        with unit_of_work() as session:
            job = jobs.enqueue(session, "test.touch", {"n": 1})
        huey = jobs.get_huey()
        task = jobs._queue().run_task
        huey.enqueue(task.s(job.id))  # a relay that crashed after handing it over
        jobs.drain()
        assert _touched() == 1
        assert _jobs()[0].status == JobStatus.done
        assert _jobs()[0].attempts == 1

    def test_unknown_job_names_are_refused_when_enqueued(self, database: str) -> None:
        with pytest.raises(jobs.UnknownJob), unit_of_work() as session:
            jobs.enqueue(session, "nobody.listens", {})

    def test_a_delayed_job_waits(self, database: str) -> None:
        with unit_of_work() as session:
            jobs.enqueue(session, "test.touch", {"n": 1}, delay=timedelta(hours=1))
        assert jobs.drain() == 0
        assert jobs.drain(now=utcnow() + timedelta(hours=2)) == 1
        assert _touched() == 1


class TestRetries:
    def test_a_failing_job_is_retried_with_backoff_and_then_succeeds(self, database: str) -> None:
        failures["left"] = 2
        with unit_of_work() as session:
            jobs.enqueue(session, "test.touch", {"n": 1})
        jobs.drain()
        (job,) = _jobs()
        assert job.status == JobStatus.done
        assert job.attempts == 3
        assert _touched() == 1  # the failed tries left nothing behind

    def test_backoff_doubles(self) -> None:
        registered = jobs.job_type("test.touch")
        waits = [jobs.backoff(registered, attempt) for attempt in (1, 2, 3, 20)]
        assert waits == [
            timedelta(seconds=1),
            timedelta(seconds=2),
            timedelta(seconds=4),
            jobs.MAX_BACKOFF,
        ]

    def test_after_the_last_try_a_job_is_dead_and_an_admin_can_retry_it(
        self, database: str
    ) -> None:
        failures["left"] = 10
        with unit_of_work() as session:
            jobs.enqueue(session, "test.touch", {"n": 1})
        jobs.drain()
        (job,) = _jobs()
        assert job.status == JobStatus.dead
        assert job.attempts == 3
        assert job.last_error == "RuntimeError: the provider is down"
        assert _touched() == 0

        runner = CliRunner()
        listed = runner.invoke(cli, ["jobs", "list", "--status", "dead", "--json"])
        assert listed.exit_code == 0, listed.output
        assert '"status": "dead"' in listed.output

        failures["left"] = 0
        retried = runner.invoke(cli, ["jobs", "retry", str(job.id)])
        assert retried.exit_code == 0, retried.output
        again = runner.invoke(cli, ["jobs", "retry", str(job.id)])
        assert again.exit_code == 1
        assert "only dead jobs can be retried" in again.output
        jobs.drain()
        assert _jobs()[0].status == JobStatus.done
        assert _touched() == 1
        with unit_of_work(write=False) as session:
            retries = session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "job.retry")
            )
        assert retries == 1

    def test_list_refuses_an_unknown_status(self, database: str) -> None:
        result = CliRunner().invoke(cli, ["jobs", "list", "--status", "stuck"])
        assert result.exit_code == 2
        assert "is not a job status" in result.output


def _login_attempts(*ages_in_days: int) -> None:
    with unit_of_work() as session:
        for age in ages_in_days:
            session.add(
                LoginAttempt(
                    username="someone",
                    ip="127.0.0.1",
                    succeeded=False,
                    attempted_at=utcnow() - timedelta(days=age),
                )
            )


def _attempts_left() -> int:
    with unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(LoginAttempt)) or 0


class TestScheduledPrune:
    def test_the_prune_runs_at_its_time_and_keeps_recent_attempts(self, database: str) -> None:
        _login_attempts(90, 45, 2, 0)
        huey = jobs.get_huey()
        prune = "schedule:identity.prune_login_attempts"
        # Jobs that run every few minutes (the outbox dispatcher) are due then too.
        due = [
            task for task in huey.read_periodic(datetime(2026, 12, 7, 3, 17)) if task.name == prune
        ]
        assert len(due) == 1
        later = huey.read_periodic(datetime(2026, 12, 7, 4, 17))
        assert prune not in [task.name for task in later]
        for task in due:
            huey.execute(task)  # what the scheduler does at 03:17 UTC
        jobs.drain()
        assert _attempts_left() == 2
        (job,) = _jobs("identity.prune_login_attempts")
        assert job.status == JobStatus.done


def _wait_until(condition: Any, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def redis_url(redis_client: redis.Redis) -> Iterator[str]:
    redis_client.flushdb()
    yield REDIS_URL
    redis_client.flushdb()


class TestWorkers:
    @pytest.mark.parametrize("store", ["sqlite", "redis"])
    def test_a_background_worker_runs_committed_jobs(
        self,
        database: str,
        store: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest,
    ) -> None:
        url = (
            f"sqlite:///{tmp_path / 'queue.db'}"
            if store == "sqlite"
            else request.getfixturevalue("redis_url")
        )
        monkeypatch.setenv("RECOUP_JOBS_URL", url)
        config.get_settings.cache_clear()
        jobs.reset()
        worker = jobs.Worker(threads=2, relay_seconds=0.1)
        worker.start()
        try:
            with unit_of_work() as session:
                for number in range(5):
                    jobs.enqueue(session, "test.touch", {"n": number})
            assert _wait_until(lambda: _touched() == 5)
            assert _wait_until(lambda: all(job.status == JobStatus.done for job in _jobs()))
            if store == "sqlite":
                assert (tmp_path / "queue.db").stat().st_mode & 0o777 == 0o600
        finally:
            worker.stop(timeout=5)

    def test_recoup_worker_is_another_process(
        self, database: str, redis_url: str, tmp_path: Path
    ) -> None:
        _login_attempts(60, 1)
        env = {
            **os.environ,
            "RECOUP_DATABASE_URL": database,
            "RECOUP_JOBS_URL": redis_url,
            "RECOUP_DATA_DIR": str(tmp_path),
        }
        log = (tmp_path / "worker.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "recoup", "worker", "--threads", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            jobs.reset()
            os.environ["RECOUP_JOBS_URL"] = redis_url
            config.get_settings.cache_clear()
            with unit_of_work() as session:
                jobs.enqueue(session, "identity.prune_login_attempts", {})
            done = _wait_until(
                lambda: (
                    [job.status for job in _jobs("identity.prune_login_attempts")]
                    == [JobStatus.done]
                ),
                seconds=60,
            )
            assert done, (tmp_path / "worker.log").read_text()
            assert _attempts_left() == 1
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail("recoup worker did not stop on SIGTERM")
            log.close()
