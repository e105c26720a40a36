"""``recoup institutions …``"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from recoup.db import unit_of_work
from recoup.institutions import repository, service
from recoup.institutions.settings import settings_of
from recoup.kit.cli import console, error_console, fail_on_domain_error
from recoup.models.institution import Jurisdiction

app = typer.Typer(help="Manage institutions (tenants).", no_args_is_help=True)


@app.command("create")
def create(
    code: str = typer.Argument(..., help="Short unique code, e.g. DEMO-CF"),
    name: str = typer.Option(..., "--name", help="Display name"),
    jurisdiction: str = typer.Option(
        "CN", "--jurisdiction", help=f"Rule pack: {', '.join(Jurisdiction)}"
    ),
    timezone: str = typer.Option("Asia/Shanghai", "--timezone", help="IANA time zone"),
    currency: str = typer.Option("CNY", "--currency", help="ISO 4217 code"),
    preset: str = typer.Option(
        "consumer_finance", "--preset", help="consumer_finance or commercial_bank"
    ),
) -> None:
    """Add an institution with its preset settings."""
    with fail_on_domain_error(), unit_of_work() as session:
        institution = service.create_institution(
            session,
            code=code,
            name=name,
            jurisdiction=jurisdiction,
            timezone=timezone,
            currency=currency,
            preset=preset,
            actor="cli",
        )
        console.print(f"Created institution [bold]{institution.code}[/] ({institution.name}).")


@app.command("list")
def list_institutions() -> None:
    """Show every institution."""
    with unit_of_work() as session:
        table = Table("code", "name", "jurisdiction", "timezone", "currency", "preset")
        for item in repository.list_all(session):
            table.add_row(
                item.code, item.name, item.jurisdiction, item.timezone, item.currency, item.preset
            )
        console.print(table)


@app.command("settings")
def settings(
    code: str = typer.Argument(..., help="The institution's code"),
    set_values: list[str] = typer.Option(
        [],
        "--set",
        help="SECTION.NAME=VALUE, e.g. workbench.promise_grace_days=5 (JSON values); repeatable",
    ),
) -> None:
    """Show an institution's settings by section, or change some (validated, audited)."""
    changes: dict[str, dict[str, Any]] = {}
    for item in set_values:
        key, separator, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not separator or not dot or not section or not name:
            error_console.print(
                f"[red]error:[/] --set {item!r}: write SECTION.NAME=VALUE, "
                "e.g. workbench.promise_grace_days=5"
            )
            raise typer.Exit(code=2)
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            value = text
        changes.setdefault(section, {})[name] = value
    with fail_on_domain_error(), unit_of_work() as session:
        institution = repository.get_by_code(session, code)
        if institution is None:
            error_console.print(
                f"[red]error:[/] no institution {code!r}; see `recoup institutions list`"
            )
            raise typer.Exit(code=1)
        if changes:
            current = service.update_settings(
                session, institution=institution, changes=changes, actor="cli"
            )
        else:
            current = settings_of(institution)
        console.print_json(json.dumps(current.model_dump(mode="json"), ensure_ascii=False))
