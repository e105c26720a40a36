"""``recoup cycle run``: the daily cycle for one institution and day."""

from __future__ import annotations

import json
from datetime import date

import typer

from recoup.cycle.rules import MAX_SHARDS
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.errors import ValidationFailed

app = typer.Typer(
    help="The daily cycle: ageing, reconciliation, scoring, cases, actions, gate, hand-off."
)

CLI_ACTOR = "cli"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"--as-of must be a date like 2027-03-01; got {text!r}") from None


@app.command("run")
def run_command(
    as_of: str | None = typer.Option(
        None, "--as-of", help="The day to run (YYYY-MM-DD); the institution's today"
    ),
    institution: str = typer.Option(..., "--institution", help="Institution code"),
    as_json: bool = typer.Option(False, "--json", help="Print the run report as one JSON object"),
    gate_batch: int = typer.Option(
        50_000, "--gate-batch", min=1, help="Actions the gate decides per transaction"
    ),
    shards: int | None = typer.Option(
        None,
        "--shards",
        min=0,
        max=MAX_SHARDS,
        help=(
            "Split ageing and the gate into this many jobs for `recoup worker` processes "
            "(default: RECOUP_CYCLE_SHARDS when jobs run on Redis and the database is "
            "PostgreSQL; 0 runs every stage here)"
        ),
    ),
) -> None:
    """Run the day's cycle (or resume an interrupted one); a finished day creates nothing new."""
    from recoup.cycle import runner

    with fail_on_domain_error():
        report = runner.run_cycle(
            institution_code=institution,
            as_of=_day(as_of) if as_of else runner.today_of(institution),
            actor=CLI_ACTOR,
            gate_batch=gate_batch,
            shards=shards,
        )
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False))
        return
    console.print(
        f"{report.institution} {report.as_of.isoformat()}: {report.status} in "
        f"{report.seconds:.1f} s — {report.tasks_created:,} tasks, "
        f"{report.messages_queued:,} messages"
    )
    for name, stage in report.stages.items():
        figures = ", ".join(
            f"{key} {value:,}" if isinstance(value, int) else f"{key} {value}"
            for key, value in stage.counts.items()
            if not isinstance(value, dict)
        )
        console.print(f"  {name:<15} {stage.seconds:7.2f} s  {figures}")
    if report.blocked_by_rule:
        blocked = ", ".join(f"{rule} {count:,}" for rule, count in report.blocked_by_rule.items())
        console.print(f"  blocked by rule: {blocked}")
