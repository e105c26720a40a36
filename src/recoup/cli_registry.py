"""Where each domain adds its Typer sub-commands to the root ``recoup`` command.

Sub-commands are registered lazily, by ``module:attribute`` and the help line that
``recoup --help`` lists: a command imports its domain (and that domain's libraries) only
when it runs. ``tests/test_cli.py`` checks each help line against its command.
"""

from __future__ import annotations

import typer

from recoup.kit.cli import add_lazy


def register(app: typer.Typer) -> None:
    """Attach every domain's commands to ``app``; one line per command."""
    add_lazy(app, "db", "recoup.db_cli:app", "Database schema.")
    add_lazy(app, "institutions", "recoup.institutions.cli:app", "Manage institutions (tenants).")
    add_lazy(
        app,
        "import",
        "recoup.ingest.cli:app",
        "Import debtors, contacts, accounts or payments from CSV, XLSX or JSON Lines.",
    )
    add_lazy(app, "dq", "recoup.ingest.cli:dq_app", "Data-quality reports.")
    add_lazy(app, "users", "recoup.identity.cli:users_app", "Manage users.")
    add_lazy(
        app,
        "integrate",
        "recoup.integration.cli:app",
        "Bring in data from core banking systems (Apache Fineract).",
    )
    add_lazy(
        app, "apikeys", "recoup.identity.cli:apikeys_app", "Manage API keys of integrating systems."
    )
    add_lazy(app, "keys", "recoup.identity.cli:keys_app", "PII encryption keys.")
    add_lazy(app, "audit", "recoup.audit.cli:app", "The audit trail.")
    add_lazy(
        app,
        "seed-demo",
        "recoup.demo.cli:seed_demo_command",
        "Create the demo institutions, users and a portfolio (skipping seeded ones).",
    )
    add_lazy(
        app,
        "demo",
        "recoup.demo.cli:demo_command",
        "Migrate the database, seed the demo if it is empty, and serve it on "
        "http://127.0.0.1:8000.",
    )
    add_lazy(app, "model", "recoup.scoring.cli:app", "Train, list, promote and run scoring models.")
    add_lazy(
        app,
        "compliance",
        "recoup.compliance.cli:app",
        "Compliance rule packs, the contact gate, its decisions and script review.",
    )
    add_lazy(app, "accounts", "recoup.portfolio.cli:app", "Work with accounts.")
    add_lazy(app, "promises", "recoup.workbench.cli:app", "Promises to pay.")
    add_lazy(app, "scripts", "recoup.scripts.cli:app", "Call scripts: defaults and outcomes.")
    add_lazy(
        app,
        "allocate",
        "recoup.allocation.cli:allocate_command",
        "Allocate open cases to agents within capacity, skills, queues, regions and certificates.",
    )
    add_lazy(app, "outbox", "recoup.outbox.cli:app", "The outbox: messages queued, sent and dead.")
    add_lazy(
        app,
        "cycle",
        "recoup.cycle.cli:app",
        "The daily cycle: ageing, reconciliation, scoring, cases, actions, gate, hand-off.",
    )
    add_lazy(
        app,
        "strategy",
        "recoup.strategy.cli:app",
        "Collection strategies: presets, checks, activation.",
    )
    add_lazy(
        app,
        "simulate",
        "recoup.simulation.cli:app",
        "Simulate strategies offline on the institution's portfolio (what-if, compare).",
    )
    add_lazy(app, "jobs", "recoup.jobs_cli:app", "Background jobs: list, retry, run what is due.")
    add_lazy(
        app,
        "worker",
        "recoup.jobs_cli:worker_command",
        "Run background jobs until stopped (SIGINT or SIGTERM); start as many as you like.",
    )
