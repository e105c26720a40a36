"""``recoup strategy``: list, create from a preset, check a document, activate a version."""

from __future__ import annotations

from pathlib import Path

import typer

from recoup.db import unit_of_work
from recoup.institutions import repository as institutions
from recoup.kit.cli import console, fail_on_domain_error
from recoup.kit.errors import NotFound
from recoup.kit.pagination import PageRequest

app = typer.Typer(help="Collection strategies: presets, checks, activation.", no_args_is_help=True)
CLI_ACTOR = "cli"
Institution = typer.Option(..., "--institution", help="Institution code")


@app.command("list")
def list_command(institution: str = Institution) -> None:
    """List the institution's strategies and the version in force."""
    from recoup.strategy import service

    with fail_on_domain_error(), unit_of_work(write=False) as session:
        owner = institutions.require_by_code(session, institution)
        page = service.list_strategies(session, institution_id=owner.id, page=PageRequest(1, 200))
        if not page.items:
            console.print(f"{owner.code} has no strategy yet: recoup strategy create CODE ...")
        for strategy in page.items:
            versions = service.versions_of(session, strategy=strategy)
            active = next((v.version for v in versions if v.status == service.ACTIVE), None)
            console.print(
                f"{strategy.code}\t{strategy.name}\tnewest v{versions[0].version} "
                f"({versions[0].status})\tin force: {f'v{active}' if active else '-'}"
            )


@app.command("create")
def create_command(
    code: str = typer.Argument(..., help="Strategy code: lower-case letters, digits, _"),
    institution: str = Institution,
    name: str = typer.Option(..., "--name", help="The strategy's name"),
    preset: str | None = typer.Option(
        None, "--preset", help="consumer_finance or commercial_bank (the institution's own)"
    ),
    document: Path | None = typer.Option(
        None, "--file", help="Start from this YAML or JSON document instead of a preset"
    ),
) -> None:
    """Copy a preset (or a document) into a new strategy's first draft."""
    from recoup.strategy import service

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        strategy, version = service.create_strategy(
            session,
            institution=owner,
            code=code,
            name=name,
            preset=preset,
            document=document.read_text(encoding="utf-8") if document else None,
            actor=CLI_ACTOR,
        )
        console.print(f"Created {strategy.code} v{version.version} (draft).")


@app.command("check")
def check_command(
    path: Path = typer.Argument(..., help="A strategy document (YAML or JSON)"),
    institution: str = Institution,
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object"),
) -> None:
    """Check a document against the institution: problems and findings by line, today's counts.

    Exits 3 when the document has problems or errors that would stop its activation.
    """
    from recoup.strategy import service
    from recoup.strategy.api import check_read

    if not path.is_file():
        raise typer.BadParameter(f"no file {path}")
    with fail_on_domain_error(), unit_of_work(write=False) as session:
        owner = institutions.require_by_code(session, institution)
        check = service.check_document(
            session, institution=owner, document=path.read_text(encoding="utf-8")
        )
        if as_json:
            typer.echo(check_read(check).model_dump_json())
        else:
            for problem in check.problems:
                console.print(f"problem  {problem}")
            for finding in check.findings:
                where = f"line {finding.line}: " if finding.line else ""
                console.print(f"{finding.severity.value:8} {where}{finding.message}")
            if check.preview:
                for item in check.preview.segments:
                    console.print(f"segment  {item.code}: {item.assigned} accounts today")
                console.print(f"segment  (none): {check.preview.unsegmented} accounts today")
    if not check.can_activate:
        raise typer.Exit(3)


@app.command("activate")
def activate_command(
    code: str = typer.Argument(..., help="Strategy code"),
    institution: str = Institution,
    version: int = typer.Option(..., "--version", min=1, help="The version to put in force"),
    actor: str = typer.Option(CLI_ACTOR, "--actor", help="Who activates (kept in the audit)"),
) -> None:
    """Put a version in force (audited); refused while it has errors."""
    from recoup.strategy import repository, service

    with fail_on_domain_error(), unit_of_work() as session:
        owner = institutions.require_by_code(session, institution)
        strategy = repository.strategy_by_code(session, institution_id=owner.id, code=code)
        if strategy is None:
            raise NotFound(f"no strategy {code} at {owner.code}")
        row = service.activate(
            session, institution=owner, strategy=strategy, number=version, actor=actor
        )
        console.print(f"{strategy.code} v{row.version} is in force at {owner.code}.")


@app.command("show")
def show_command(
    code: str = typer.Argument(..., help="Strategy code"),
    institution: str = Institution,
    version: int | None = typer.Option(None, "--version", min=1, help="Default: the newest"),
) -> None:
    """Print a version's document."""
    from recoup.strategy import repository, service

    with fail_on_domain_error(), unit_of_work(write=False) as session:
        owner = institutions.require_by_code(session, institution)
        strategy = repository.strategy_by_code(session, institution_id=owner.id, code=code)
        if strategy is None:
            raise NotFound(f"no strategy {code} at {owner.code}")
        typer.echo(service.get_version(session, strategy=strategy, number=version).document)
