"""``recoup outbox``: run the dispatcher by hand, see the outbox, retry dead messages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import typer

from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.pagination import PageRequest

app = typer.Typer(help="The outbox: messages queued, sent and dead.", no_args_is_help=True)
CLI_ACTOR = "cli"


@app.command("dispatch")
def dispatch_command(
    institution: str | None = typer.Option(
        None, "--institution", help="Only this institution's messages (all by default)"
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Send at most this many"),
    reconcile_after: int = typer.Option(
        120,
        "--reconcile-after",
        min=0,
        help="Reconcile messages left sending longer than this many seconds (a dead dispatcher's)",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object"),
    now: str | None = typer.Option(
        None, "--now", hidden=True, help="Dispatch as of this moment (ISO 8601 with offset; tests)"
    ),
) -> None:
    """Send the due messages now: the gate is asked again, each message leaves once."""
    from recoup.outbox import dispatch

    moment = None
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            console.print(
                f"--now must be a moment with an offset, e.g. 2025-03-04T02:00:00Z; got {now!r}"
            )
            raise typer.Exit(2)

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution) if institution else None
        report = dispatch.dispatch(
            session,
            institution_id=owner.id if owner else None,
            limit=limit,
            reconcile_after=timedelta(seconds=reconcile_after),
            now=moment,
        )
    figures = {
        "sent": report.sent,
        "held": report.held,
        "reconciled": report.reconciled,
        "statuses": report.counts,
        "seconds": round(report.seconds, 3),
    }
    if as_json:
        typer.echo(json.dumps(figures))
        return
    console.print(
        f"{report.sent} sent, {report.held} held back by the gate or the institution's hours, "
        f"{report.reconciled} reconciled after a restart ({report.seconds:.2f} s)."
    )


@app.command("list")
def list_command(
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    status: str | None = typer.Option(None, "--status", help="queued, sending, sent, dead …"),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
) -> None:
    """List the latest messages (no personal data: ids, channels, statuses, errors)."""
    from recoup.identity.scoping import institution_scope
    from recoup.outbox import service

    with fail_on_domain_error(), unit_of_work(write=False) as session:
        owner = institutions.require_by_code(session, institution)
        page = service.messages_page(
            session,
            principal=institution_scope(owner.id),
            institution_id=owner.id,
            page=PageRequest(page=1, size=limit),
            status=status,
        )
        for message in page.items:
            console.print(
                f"{message.id}\t{message.channel}\t{message.status}\t"
                f"{message.scheduled_at:%Y-%m-%d %H:%M}Z\t{message.attempts}\t"
                f"{message.last_error or ''}"
            )
        console.print(f"{page.total} messages")


@app.command("retry")
def retry_command(
    message_id: int = typer.Argument(..., help="The dead message's id"),
    institution: str = typer.Option(..., "--institution", help="Institution code"),
) -> None:
    """Give a dead message another set of tries (audited)."""
    from recoup.identity.scoping import institution_scope
    from recoup.outbox import service

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        service.retry_message(
            session,
            principal=institution_scope(owner.id, actor=CLI_ACTOR),
            institution_id=owner.id,
            message_id=message_id,
        )
    console.print(f"message {message_id} queued again")
