"""Background jobs: a transactional outbox in front of the Huey job library.

A domain registers a handler for a job named ``domain.verb`` in its ``tasks.py``::

    @jobs.handler("identity.prune_login_attempts")
    def prune_login_attempts(session: Session, payload: dict[str, Any]) -> None: ...

and asks for it inside its own transaction::

    jobs.enqueue(session, "identity.prune_login_attempts", {}, idempotency_key="…")

``enqueue`` only adds a row to ``jobs``, so a job exists if and only if the transaction that
asked for it committed. The relay (a thread of every worker) hands committed rows to Huey;
a worker runs the handler in a unit of work of its own, which also marks the row done, so a
job's effects happen once even when the relay hands it over twice. A failure rolls the
handler's work back and is retried with exponential backoff; after its last try the job is
``dead``, listed by ``recoup jobs list --status dead`` and retried by ``recoup jobs retry``.

Huey stores its queue in a SQLite file beside the database (the embedded default, with a
worker inside ``recoup serve``) or in Redis (``RECOUP_JOBS_URL=redis://…``, with
``recoup worker`` processes on any machine); ``memory`` keeps it in the process (tests).
Periodic jobs (``jobs.periodic``) use Huey's scheduler: it enqueues the job through the
outbox at the set times, once per time even with several workers.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab
from huey.api import TaskWrapper
from huey.consumer import Consumer
from huey.exceptions import RetryTask
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recoup.config import get_settings
from recoup.db import create_owner_only, unit_of_work
from recoup.kit.clock import utcnow
from recoup.models.jobs import Job, JobStatus

logger = logging.getLogger("recoup.jobs")

Handler = Callable[[Session, dict[str, Any]], None]

# A row handed to Huey but neither done nor retried this long after is handed over again
# (Huey's own queue was lost, e.g. a Redis restart, or the worker running it was killed);
# handlers are idempotent by the row. ``RECOUP_JOBS_REQUEUE_SECONDS`` changes it.
REQUEUE_AFTER = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)
RUN_JOB = "recoup.run_job"


@dataclass(frozen=True, slots=True)
class JobType:
    """A registered job: its handler and how often and how patiently it is retried."""

    name: str
    run: Handler
    max_attempts: int
    retry_delay: timedelta


@dataclass(frozen=True, slots=True)
class Schedule:
    """A job enqueued at the times of a cron-like schedule (in UTC)."""

    name: str
    minute: str = "0"
    hour: str = "*"
    day: str = "*"
    month: str = "*"
    day_of_week: str = "*"


_types: dict[str, JobType] = {}
_schedules: dict[str, Schedule] = {}


class UnknownJob(LookupError):
    """No handler is registered under a job's name."""


def handler(
    name: str, *, max_attempts: int = 5, retry_delay: timedelta = timedelta(seconds=10)
) -> Callable[[Handler], Handler]:
    """Register the function as the handler of job ``name`` (``domain.verb``)."""
    if "." not in name:
        raise ValueError(f"job names read domain.verb; got {name!r}")

    def register(run: Handler) -> Handler:
        _types[name] = JobType(name, run, max_attempts, retry_delay)
        return run

    return register


def periodic(schedule: Schedule) -> None:
    """Enqueue job ``schedule.name`` at the schedule's times (the worker's scheduler does)."""
    _schedules[schedule.name] = schedule


def job_type(name: str) -> JobType:
    """Return the registered job ``name`` (every domain's ``tasks.py`` is loaded first)."""
    _load_tasks()
    try:
        return _types[name]
    except KeyError:
        raise UnknownJob(f"no handler is registered for job {name!r}") from None


def schedules() -> dict[str, Schedule]:
    """Return the periodic jobs by name."""
    _load_tasks()
    return dict(_schedules)


@lru_cache
def _load_tasks() -> None:
    from recoup import tasks_registry

    tasks_registry.register()


def backoff(job_type: JobType, attempts: int) -> timedelta:
    """Return the wait before try ``attempts + 1``: the retry delay, doubled each time."""
    wait: timedelta = job_type.retry_delay * (2 ** max(attempts - 1, 0))
    return min(wait, MAX_BACKOFF)


def enqueue(
    session: Session,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    institution_id: int | None = None,
    delay: timedelta | None = None,
    at: datetime | None = None,
) -> Job:
    """Add job ``name`` to the caller's transaction; the same key returns the existing job.

    It runs as soon as a worker is free, or after ``delay``, or from ``at``.
    """
    registered = job_type(name)
    key = idempotency_key or uuid.uuid4().hex
    existing = _existing(session, name, key)
    if existing is not None:
        return existing
    job = Job(
        institution_id=institution_id,
        name=name,
        payload=dict(payload or {}),
        idempotency_key=key,
        status=JobStatus.pending,
        attempts=0,
        max_attempts=registered.max_attempts,
        available_at=at or utcnow() + (delay or timedelta()),
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        # Another transaction enqueued the same key first.
        found = _existing(session, name, key)
        if found is None:
            raise
        return found
    return job


def enqueue_soon(
    session: Session,
    name: str,
    payload: dict[str, Any],
    *,
    coalesce: str,
    institution_id: int | None = None,
    window: timedelta = timedelta(minutes=1),
    now: datetime | None = None,
) -> Job:
    """Enqueue ``name`` once per window for ``coalesce``, to run after the window ends.

    However many transactions ask within one window (payments arriving one by one), they
    share one job that runs after the window, so it sees all of them; a later ask gets the
    next window's job.
    """
    now = now or utcnow()
    step = window.total_seconds()
    start = datetime.fromtimestamp(now.timestamp() // step * step, tz=now.tzinfo)
    end = start + window
    return enqueue(
        session,
        name,
        payload,
        idempotency_key=f"{coalesce}@{end.isoformat()}",
        institution_id=institution_id,
        at=end,
    )


def _existing(session: Session, name: str, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.name == name, Job.idempotency_key == key))


def run_job(job_id: int) -> str:
    """Run one job's handler in its own unit of work; retry or bury it when it fails."""
    try:
        with unit_of_work() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None or job.status in {JobStatus.done, JobStatus.dead}:
                return "skipped"
            registered = job_type(job.name)
            registered.run(session, dict(job.payload))
            job.attempts += 1
            job.status = JobStatus.done
            job.finished_at = utcnow()
            job.last_error = None
            return "done"
    except Exception as error:
        logger.exception("job %s failed", job_id)
        delay = _record_failure(job_id, error)
        if delay is None:
            return "dead"
        raise RetryTask(f"job {job_id} will be retried", delay=delay.total_seconds()) from error


def _record_failure(job_id: int, error: Exception) -> timedelta | None:
    """Count a failed try; return the wait before the next, or None when the job is dead."""
    with unit_of_work() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            return None
        job.attempts += 1
        job.last_error = f"{type(error).__name__}: {error}"[:4000]
        now = utcnow()
        if isinstance(error, UnknownJob) or job.attempts >= job.max_attempts:
            job.status = JobStatus.dead
            job.finished_at = now
            return None
        wait = backoff(job_type(job.name), job.attempts)
        job.status = JobStatus.retrying
        job.available_at = now + wait
        return wait


def requeue_after() -> timedelta:
    """How long a handed-over job may go unfinished before the relay hands it over again."""
    seconds = get_settings().jobs_requeue_seconds
    return timedelta(seconds=seconds) if seconds else REQUEUE_AFTER


def _handover_filter(now: datetime) -> Any:
    lost = now - requeue_after()
    return or_(
        (Job.status == JobStatus.pending) & (Job.available_at <= now),
        (Job.status == JobStatus.queued) & (Job.queued_at < lost),
        (Job.status == JobStatus.retrying) & (Job.available_at < lost),
    )


def relay(*, limit: int = 200, now: datetime | None = None) -> int:
    """Hand committed jobs that are due (and lost ones) to the job library; return how many."""
    now = now or utcnow()
    # A reading look first: an idle relay never takes SQLite's write lock.
    with unit_of_work(write=False) as session:
        if session.scalar(select(Job.id).where(_handover_filter(now)).limit(1)) is None:
            return 0
    huey = get_huey()
    with unit_of_work() as session:
        due = session.scalars(
            select(Job)
            .where(_handover_filter(now))
            .order_by(Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        run_task = _queue().run_task
        for job in due:
            # Handed over before the commit: a crash in between sends it again, and the
            # handler's unit of work finds it done. Never lost, never applied twice.
            huey.enqueue(run_task.s(job.id))
            job.status = JobStatus.queued
            job.queued_at = now
        return len(due)


def _enqueue_scheduled(name: str) -> None:
    moment = utcnow().replace(second=0, microsecond=0)
    with unit_of_work() as session:
        enqueue(session, name, {}, idempotency_key=f"schedule@{moment.isoformat()}")


@dataclass(frozen=True)
class _Queue:
    huey: Huey
    run_task: TaskWrapper


def _make_queue() -> _Queue:
    settings = get_settings()
    url = settings.jobs_url or f"sqlite:///{(settings.data_dir / 'jobs.db').as_posix()}"
    huey: Huey
    if url == "memory":
        huey = MemoryHuey(settings.jobs_queue, utc=True)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        huey = RedisHuey(settings.jobs_queue, url=url, utc=True)
    elif url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        create_owner_only(path)  # queued payloads may name debtors' accounts
        huey = SqliteHuey(settings.jobs_queue, filename=str(path), utc=True)
    else:
        raise ValueError(
            f"RECOUP_JOBS_URL {url!r} is not a job store: use sqlite:///PATH, redis://… or memory"
        )
    run_task = huey.task(name=RUN_JOB)(run_job)
    for schedule in schedules().values():
        cron = crontab(
            minute=schedule.minute,
            hour=schedule.hour,
            day=schedule.day,
            month=schedule.month,
            day_of_week=schedule.day_of_week,
        )
        huey.periodic_task(cron, name=f"schedule:{schedule.name}")(
            partial(_enqueue_scheduled, schedule.name)
        )
    return _Queue(huey, run_task)


@lru_cache
def _queue() -> _Queue:
    return _make_queue()


def get_huey() -> Huey:
    """Return the process's job library instance for the configured store."""
    return _queue().huey


def uses_broker() -> bool:
    """Tell whether jobs queue on a shared broker (Redis) rather than in this machine."""
    url = get_settings().jobs_url
    return url.startswith(("redis://", "rediss://", "unix://"))


def ping_broker() -> bool:
    """Ping the job broker; False when there is none (the embedded store), raise when down."""
    if not uses_broker():
        return False
    storage: Any = get_huey().storage
    return bool(storage.conn.ping())


def reset() -> None:
    """Forget the job library instance (after settings change, e.g. in tests)."""
    _queue.cache_clear()


def drain(*, now: datetime | None = None, rounds: int = 20) -> int:
    """Relay and run every due job in this process, retries included; return how many ran.

    For tests and for ``recoup jobs run-due``: no worker needed, the same code paths.
    """
    huey = get_huey()
    # Huey keeps naive UTC times; looking this far ahead pulls scheduled retries in now.
    horizon = ((now or utcnow()) + MAX_BACKOFF * 2).astimezone(UTC).replace(tzinfo=None)
    ran = 0
    for _ in range(rounds):
        relay(now=now)
        for scheduled in huey.read_schedule(horizon):
            huey.enqueue(scheduled)
        task = huey.dequeue()
        if task is None:
            if not _has_due(now):
                break
            continue
        while task is not None:
            huey.execute(task, horizon)
            ran += 1
            task = huey.dequeue()
    return ran


def _has_due(now: datetime | None) -> bool:
    moment = now or utcnow()
    with unit_of_work(write=False) as session:
        return (
            session.scalar(
                select(Job.id)
                .where(Job.status == JobStatus.pending, Job.available_at <= moment)
                .limit(1)
            )
            is not None
        )


class _QuietConsumer(Consumer):  # type: ignore[misc]
    """Huey's consumer without its signal handlers (the web server keeps its own)."""

    def _set_signal_handlers(self) -> None:
        return None


class Worker:
    """Huey's worker threads and scheduler plus the outbox relay, in this process."""

    def __init__(self, *, threads: int = 2, relay_seconds: float = 0.5) -> None:
        self.threads = threads
        self.relay_seconds = relay_seconds
        self._stop = threading.Event()
        self._relay: threading.Thread | None = None
        self.consumer: Consumer | None = None

    def _relay_loop(self) -> None:
        while not self._stop.is_set():
            try:
                relay()
            except Exception:
                logger.exception("the job relay failed; trying again")
            self._stop.wait(self.relay_seconds)

    def _start_relay(self) -> None:
        self._relay = threading.Thread(target=self._relay_loop, name="recoup-relay", daemon=True)
        self._relay.start()

    def start(self) -> None:
        """Start in the background (inside ``recoup serve``)."""
        self.consumer = _QuietConsumer(get_huey(), workers=self.threads, worker_type="thread")
        self.consumer.start()
        self._start_relay()

    def stop(self, *, timeout: float = 10) -> None:
        """Stop the relay and let running jobs finish (up to ``timeout`` seconds)."""
        self._stop.set()
        if self.consumer is not None:
            self.consumer.shutdown_timeout = timeout
            self.consumer.stop(graceful=True)
        if self._relay is not None:
            self._relay.join(timeout)

    def run(self) -> None:
        """Run in the foreground until SIGINT/SIGTERM (``recoup worker``)."""
        self.consumer = get_huey().create_consumer(workers=self.threads, worker_type="thread")
        self._start_relay()
        try:
            self.consumer.run()
        finally:
            self._stop.set()


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    institution_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """Return one page of jobs, the newest first, and how many match."""
    query = select(Job)
    if status is not None:
        query = query.where(Job.status == status)
    if institution_id is not None:
        query = query.where(Job.institution_id == institution_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


class JobNotRetryable(ValueError):
    """Only a dead job can be retried by hand."""


def retry(job: Job) -> Job:
    """Give a dead job a fresh set of tries; the relay sends it on."""
    if job.status != JobStatus.dead:
        raise JobNotRetryable(f"job {job.id} is {job.status}; only dead jobs can be retried")
    job.status = JobStatus.pending
    job.attempts = 0
    job.available_at = utcnow()
    job.finished_at = None
    return job
