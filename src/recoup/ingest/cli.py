"""``recoup import …`` and ``recoup dq report``.

An import commits once per chunk of rows (see ``runner``), not once per command: that is
this command's transaction boundary. It exits non-zero only when the file itself cannot
be used; rejected rows are reported and the exit code stays 0.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from recoup.db import session_factory, unit_of_work
from recoup.ingest import service
from recoup.ingest.runner import CHUNK_SIZE, ImportSummary, run_import
from recoup.institutions.repository import require_by_code
from recoup.kit.cli import console, error_console, fail_on_domain_error

app = typer.Typer(
    help="Import debtors, contacts, accounts or payments from CSV, XLSX or JSON Lines.",
    no_args_is_help=True,
)
dq_app = typer.Typer(help="Data-quality reports.", no_args_is_help=True)

FILE = typer.Argument(..., help="CSV (UTF-8 or GBK/GB18030), XLSX or JSON Lines file")
INSTITUTION = typer.Option(..., "--institution", help="Institution code, e.g. DEMO-CF")
REJECT_REPORT = typer.Option(
    None, "--reject-report", help="Where to write rejected rows (default: FILE.rejects.csv)"
)
ENCODING = typer.Option(
    None, "--encoding", help="Text encoding of a CSV (default: detect UTF-8 or GB18030)"
)
FORMAT = typer.Option(None, "--format", help="csv, xlsx or jsonl (default: from the file name)")
CHUNK = typer.Option(
    CHUNK_SIZE, "--chunk-size", min=1, max=100_000, help="Rows validated and committed together"
)


def _import(
    kind: str,
    path: Path,
    institution: str,
    reject_report: Path | None,
    encoding: str | None,
    file_format: str | None,
    chunk_size: int,
) -> None:
    with fail_on_domain_error(), _terminate_as_exit() as stop_signal, _progress() as bar:
        task = bar.add_task(f"Importing {kind} from {path.name}", total=None, rows=0)

        def advance(position: int, size: int, rows: int) -> None:
            bar.update(task, completed=position, total=size or None, rows=rows)
            if stop_signal:  # the signal's own exit was swallowed (see _terminate_as_exit)
                raise SystemExit(128 + stop_signal[0])

        session = session_factory()()
        try:
            summary = run_import(
                session,
                institution_code=institution,
                kind=kind,
                path=path,
                file_format=file_format,
                encoding=encoding,
                reject_report=reject_report,
                chunk_size=chunk_size,
                actor="cli",
                on_progress=advance,
            )
        finally:
            session.close()
    _print_summary(summary)


def _progress() -> Progress:
    """The import's bar: how far through the file (its bytes), and how many rows so far."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=error_console,
    )


@contextmanager
def _terminate_as_exit() -> Iterator[list[int]]:
    """Let SIGTERM end an import like Ctrl-C does, so its run records that it was stopped.

    Yields the signals received. Python drops an exception raised while it runs a finaliser
    or a weak-reference callback, so the import also checks after each chunk.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def stop(signal_number: int, frame: FrameType | None) -> None:  # noqa: ARG001
        received.append(signal_number)
        raise SystemExit(128 + signal_number)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_summary(summary: ImportSummary) -> None:
    table = Table(title=f"Import of {summary.kind} from {summary.file_name}", show_header=False)
    table.add_row(
        "format", f"{summary.file_format}" + (f" ({summary.encoding})" if summary.encoding else "")
    )
    table.add_row("rows read", str(summary.rows_read))
    table.add_row("inserted", str(summary.inserted))
    table.add_row("updated", str(summary.updated))
    table.add_row("unchanged", str(summary.unchanged))
    table.add_row("rejected", f"[red]{summary.rejected}[/]" if summary.rejected else "0")
    for code, count in summary.reject_counts.most_common():
        table.add_row(f"  rejected: {code}", str(count))
    table.add_row("seconds", f"{summary.seconds:.1f} ({summary.rows_per_second:,.0f} rows/s)")
    console.print(table)
    if summary.ignored_columns:
        console.print(
            f"[yellow]ignored columns[/] (not part of the {summary.kind} format): "
            + ", ".join(summary.ignored_columns)
        )
    if summary.reject_report is not None:
        console.print(f"Rejected rows and reasons: {summary.reject_report}")
    if summary.rows_read == 0:
        console.print("[yellow]The file has a header but no rows: nothing was imported.[/]")


def _register(kind: str, help_text: str) -> None:
    def command(
        path: Path = FILE,
        institution: str = INSTITUTION,
        reject_report: Path | None = REJECT_REPORT,
        encoding: str | None = ENCODING,
        file_format: str | None = FORMAT,
        chunk_size: int = CHUNK,
    ) -> None:
        _import(kind, path, institution, reject_report, encoding, file_format, chunk_size)

    app.command(kind, help=help_text)(command)


_register("debtors", "Import debtors (people and businesses); first column external_id.")
_register("contacts", "Import contact points (phones, emails, addresses) of imported debtors.")
_register("accounts", "Import accounts with balances and days past due; buckets are derived.")
_register(
    "payments",
    "Import payments; each is applied by the institution's waterfall "
    "(a row with reversed_at and reversal_reason reverses its payment).",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@dq_app.command("report")
def dq_report(
    institution: str = INSTITUTION,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables"),
) -> None:
    """Show the data-quality report of an institution's portfolio."""
    with fail_on_domain_error(), unit_of_work() as session:
        report = service.data_quality_report(
            session, institution=require_by_code(session, institution)
        )
    if as_json:
        typer.echo(
            json.dumps(dataclasses.asdict(report), default=_jsonable, ensure_ascii=False, indent=2)
        )
        return
    _print_report(report)


def _print_report(report: service.DataQualityReport) -> None:
    overview = Table(title=f"Data quality of {report.institution}", show_header=False)
    overview.add_row("debtors", str(report.debtors))
    overview.add_row(
        "with a valid own contact",
        f"{report.debtors_with_valid_self_contact} ({report.valid_self_contact_share:.1%})",
    )
    overview.add_row("contact points", str(report.contact_points))
    overview.add_row("never verified", str(report.contacts_never_verified))
    overview.add_row("verified 180+ days ago", str(report.contacts_verified_over_180_days_ago))
    overview.add_row("phone numbers on several debtors", str(report.shared_phone_numbers))
    overview.add_row("debtors sharing a phone", str(report.debtors_sharing_a_phone))
    console.print(overview)
    if report.top_shared_phones:
        shared = Table("phone (masked)", "debtors", title="Most shared phone numbers")
        for item in report.top_shared_phones:
            shared.add_row(item.phone, str(item.debtors))
        console.print(shared)
    missing = Table("table", "column", "empty", title="Missing fields")
    for table_name, columns in report.missing_fields.items():
        for column, count in columns.items():
            missing.add_row(table_name, column, str(count))
    console.print(missing)
    if report.latest_imports:
        runs = Table("kind", "file", "status", "rows", "rejected", title="Latest imports")
        for run in report.latest_imports:
            runs.add_row(run.kind, run.file_name, run.status, str(run.rows_read), str(run.rejected))
        console.print(runs)
    if report.rejects_by_reason:
        rejects = Table(
            "kind", "code", "problems", "example", title="Rejects by reason (latest imports)"
        )
        for reason in report.rejects_by_reason:
            rejects.add_row(reason.kind, reason.code, str(reason.count), reason.example)
        console.print(rejects)
