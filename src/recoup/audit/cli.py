"""``recoup audit verify``: check the hash chain."""

from __future__ import annotations

import typer

from recoup.audit import service
from recoup.db import unit_of_work
from recoup.kit.cli import console, error_console

app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@app.command("verify")
def verify() -> None:
    """Walk the audit chain; print OK with the count, or the first broken event and exit 1."""
    with unit_of_work() as session:
        checked, broken = service.verify(session)
    if broken is None:
        console.print(f"OK: {checked} audit events verified; the chain is intact.")
        return
    where = f"row id {broken.row_id}" if broken.row_id is not None else "the chain head"
    error_console.print(
        f"BROKEN at event {broken.sequence} ({where}): {broken.reason}. {checked} events were read."
    )
    raise typer.Exit(code=1)
