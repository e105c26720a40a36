"""``recoup promises reconcile``: match payments to pending promises (a daily cycle step)."""

from __future__ import annotations

import json
from datetime import date

import typer

from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.errors import ValidationFailed
from recoup.workbench import service

app = typer.Typer(help="Promises to pay.", no_args_is_help=True)

CLI_ACTOR = "cli"


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"--as-of must be a date like 2025-06-30; got {value!r}") from None


@app.command("reconcile")
def reconcile(
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Reconcile as of this date (YYYY-MM-DD); the institution's today"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as one JSON object"),
) -> None:
    """Mark pending promises kept, partially kept or broken from the payments received."""
    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        day = _as_of(as_of) or service.local_today(owner)
        result = service.reconcile_promises(session, institution=owner, as_of=day, actor=CLI_ACTOR)
        counts = result.counts()
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "institution": owner.code,
                        "as_of": day.isoformat(),
                        **counts,
                        "escalated_account_ids": list(result.escalated_account_ids),
                    }
                )
            )
            return
        console.print(
            f"{owner.code} as of {day.isoformat()}: {counts['examined']} pending promises "
            f"examined — {counts['kept']} kept, {counts['partially_kept']} partially kept, "
            f"{counts['broken']} broken, {counts['pending']} still pending; "
            f"{counts['escalated']} accounts escalated (two broken promises in a row)."
        )
