"""``recoup worker`` and ``recoup jobs``: run background jobs, see and retry failed ones."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from recoup.audit import service as audit
from recoup.config import get_settings
from recoup.db import unit_of_work
from recoup.kit import jobs
from recoup.kit.cli import console, error_console
from recoup.models.jobs import Job, JobStatus

app = typer.Typer(help="Background jobs: list, retry, run what is due.", no_args_is_help=True)
CLI_ACTOR = "cli"


def worker_command(
    threads: int = typer.Option(
        0, "--threads", help="Worker threads (default: RECOUP_WORKER_THREADS)", min=0
    ),
) -> None:
    """Run background jobs until stopped (SIGINT or SIGTERM); start as many as you like."""
    settings = get_settings()
    count = threads or settings.worker_threads
    console.print(
        f"Recoup worker: {count} thread(s) on {settings.jobs_url or 'the SQLite job store'}"
    )
    jobs.Worker(threads=count).run()


@app.command("list")
def list_jobs(
    status: str | None = typer.Option(
        None, "--status", help="pending, queued, retrying, done or dead"
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="One JSON object"),
) -> None:
    """List jobs, the newest first (``--status dead``: the ones that need a person)."""
    if status is not None and status not in set(JobStatus):
        error_console.print(
            f"[red]error:[/] --status {status!r} is not a job status; "
            f"use one of {', '.join(JobStatus)}"
        )
        raise typer.Exit(code=2)
    with unit_of_work(write=False) as session:
        rows, total = jobs.list_jobs(session, status=status, limit=limit)
        items = [_job_dict(job) for job in rows]
    if as_json:
        console.print_json(json.dumps({"total": total, "jobs": items}))
        return
    if not items:
        console.print("No jobs" + (f" with status {status}." if status else "."))
        return
    table = Table("id", "job", "status", "tries", "enqueued", "last error")
    for item in items:
        table.add_row(
            str(item["id"]),
            str(item["name"]),
            str(item["status"]),
            f"{item['attempts']}/{item['max_attempts']}",
            str(item["created_at"])[:19],
            str(item["last_error"] or "")[:80],
        )
    console.print(table)
    console.print(f"{len(items)} of {total}")


@app.command("retry")
def retry(job_id: int = typer.Argument(..., help="The id of a dead job")) -> None:
    """Give a dead job a fresh set of tries (audited)."""
    with unit_of_work() as session:
        job = session.get(Job, job_id)
        if job is None:
            error_console.print(f"[red]error:[/] no job {job_id}; see `recoup jobs list`")
            raise typer.Exit(code=1)
        try:
            jobs.retry(job)
        except jobs.JobNotRetryable as error:
            error_console.print(f"[red]error:[/] {error}")
            raise typer.Exit(code=1) from None
        audit.record(
            session,
            actor=CLI_ACTOR,
            action="job.retry",
            object_type="job",
            object_id=job.id,
            institution_id=job.institution_id,
            details={"name": job.name},
        )
    console.print(f"Job {job_id} ({job.name}) will run again.")


@app.command("run-due")
def run_due() -> None:
    """Relay and run every due job in this process, then exit (no worker needed)."""
    ran = jobs.drain()
    console.print(f"Ran {ran} job(s).")


def _job_dict(job: Job) -> dict[str, object]:
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "institution_id": job.institution_id,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "available_at": job.available_at.isoformat() if job.available_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "last_error": job.last_error,
    }
