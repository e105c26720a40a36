"""``recoup seed-demo`` and ``recoup demo``: a ready-to-explore installation in one command."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.progress import TaskID
from rich.table import Table

from recoup.db import unit_of_work
from recoup.db_cli import upgrade
from recoup.kit.cli import console, fail_on_domain_error, progress

if TYPE_CHECKING:
    from recoup.demo.service import DemoSeed, SeededInstitution

DEFAULT_DEMO_ACCOUNTS = 5_000
DEFAULT_SEED = 42
MODELS_HELP = "Train demo models, promote the scorecard and score delinquent accounts"


def seed_demo_command(
    accounts: int = typer.Option(
        DEFAULT_DEMO_ACCOUNTS, "--accounts", min=1, help="Accounts across both demo institutions"
    ),
    seed: int = typer.Option(
        DEFAULT_SEED, "--seed", help="Random seed: the same seed gives the same portfolio"
    ),
    # Off by default here: seed-demo is the fast data generator (100k accounts in under a
    # minute); `recoup demo` turns models on for a ready-to-explore installation.
    models: bool = typer.Option(False, "--models/--no-models", help=MODELS_HELP),
) -> None:
    """Create the demo institutions, users and a portfolio (skipping seeded ones)."""
    result = run_seed(accounts=accounts, seed=seed, models=models)
    print_summary(result)


def demo_command(
    accounts: int = typer.Option(
        DEFAULT_DEMO_ACCOUNTS, "--accounts", min=1, help="Accounts to seed if the demo is empty"
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Random seed of the demo portfolio"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on"),
    port: int = typer.Option(8000, "--port", help="Port to listen on"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the web app after seeding"),
    models: bool = typer.Option(True, "--models/--no-models", help=MODELS_HELP),
) -> None:
    """Migrate the database, seed the demo if it is empty, and serve it on http://127.0.0.1:8000."""
    console.print(prepare_schema())
    print_summary(run_seed(accounts=accounts, seed=seed, models=models))
    if serve:
        # Imported here: recoup.cli imports this module while it registers commands.
        from recoup.cli import serve as serve_command

        serve_command(host=host, port=port, reload=False, worker=True)


def prepare_schema() -> str:
    """Bring the database schema up to date and say so."""
    upgrade()
    return "Database is up to date."


def run_seed(*, accounts: int, seed: int, models: bool = True) -> DemoSeed:
    """Seed the demo (and its models) in one transaction, drawing progress bars per institution."""
    # Imported here: the demo trains models (LightGBM, optbinning, pandas), seconds of
    # start-up that every other command and ``recoup --help`` would pay.
    from recoup.demo.service import seed_demo

    with fail_on_domain_error(), progress() as bar:
        tasks: dict[str, TaskID] = {}
        model_tasks: dict[str, TaskID] = {}

        def advance(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"Seeding {label}", total=total)
            bar.update(tasks[label], completed=done, total=total)

        def advance_models(label: str, step: str, done: int, total: int) -> None:
            if label not in model_tasks:
                model_tasks[label] = bar.add_task("", total=total)
            description = f"Models {label}" if done == total else f"Models {label}: {step}"
            bar.update(model_tasks[label], description=description, completed=done, total=total)

        with unit_of_work() as session:
            return seed_demo(
                session,
                accounts=accounts,
                seed=seed,
                progress=advance,
                train_models=models,
                model_progress=advance_models,
            )


def print_summary(result: DemoSeed) -> None:
    """Print what was seeded and, once, the new demo users' passwords."""
    summary = Table(title="Demo institutions")
    summary.add_column("institution", overflow="fold")
    summary.add_column("result", overflow="fold")
    counted = (
        ("accounts", "accounts"),
        ("debtors", "debtors"),
        ("contacts", "contact_points"),
        ("payments", "payments"),
        ("history", "delinquency_events"),
    )
    for heading, _ in counted:
        summary.add_column(heading, justify="right")
    for institution in result.institutions:
        counts = institution.counts
        summary.add_row(
            f"{institution.code} {institution.name}",
            institution.message,
            *(f"{counts[name]:,}" if name in counts else "-" for _, name in counted),
        )
    console.print(summary)
    if result.accounts:
        seconds = sum(result.seconds.values())
        console.print(
            f"Seeded {result.accounts:,} accounts ({result.rows:,} rows) in {seconds:.1f} s."
        )
    for institution in result.institutions:
        counts = institution.counts
        if "templates" in counts:
            console.print(
                f"{institution.code}: {counts['templates']} message templates in every review "
                f"state, {counts.get('scripts', 0)} approved call scripts, "
                f"{counts['gate_decisions']} gate decisions, {counts['violations']} "
                f"violations to review, an import run with {counts['import_rejects']} rejected "
                "rows, agents' certificates."
            )
            console.print(
                f"{institution.code}: texts and emails go to the sandbox provider (nothing leaves "
                "this machine); with `recoup serve` running, a campaign sent from Outbox is "
                "dispatched within a minute and its delivery receipts arrive a minute later."
            )
    print_models(result.institutions)

    new_users = [credential for credential in result.credentials if credential.password is not None]
    if not new_users:
        return
    users = Table(title="Demo users: passwords are shown this once and stored only as hashes")
    users.add_column("username", no_wrap=True)
    users.add_column("role", overflow="fold")
    users.add_column("password", no_wrap=True, min_width=20)
    for credential in new_users:
        users.add_row(credential.username, credential.role, credential.password)
    console.print(users)
    console.print("[bold]Write these passwords down now; they cannot be shown again.[/]")


def print_models(institutions: list[SeededInstitution]) -> None:
    """Print the models trained for the demo, how many accounts they scored, and any notes."""
    prepared = [(item.code, item.models) for item in institutions if item.models is not None]
    table = Table(title="Demo models (AUC and KS on held-out snapshots)")
    for heading in ("institution", "version", "family", "state"):
        table.add_column(heading, overflow="fold")
    for heading in ("AUC", "KS", "seconds"):
        table.add_column(heading, justify="right")
    for code, models in prepared:
        for model in models.models:
            table.add_row(
                code,
                model.version,
                model.family,
                "champion" if model.champion else "candidate",
                f"{model.auc:.4f}",
                f"{model.ks:.4f}",
                f"{model.seconds:.1f}",
            )
    if table.row_count:
        console.print(table)
    for code, models in prepared:
        if models.accounts_scored:
            console.print(
                f"{code}: scored {models.accounts_scored:,} delinquent accounts with the champion; "
                f"models and scores took {models.seconds:.1f} s."
            )
        if models.uplift is not None:
            console.print(
                f"{code}: uplift model {models.uplift.version} trained on simulated experiments "
                f"in {models.uplift.seconds:.1f} s (calls: held-out Qini "
                f"{models.uplift.call_qini:+.3f}); agents take cases by uplift × balance, as the "
                "preset's allocation.priority asks."
            )
        for note in models.notes:
            console.print(f"[yellow]note:[/] {code}: {note}")
