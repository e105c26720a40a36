"""Where each domain adds its Typer sub-commands to the root ``recoup`` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach every domain's commands to ``app``; one import and one line per domain."""
    from recoup.ingest.cli import app as import_app
    from recoup.ingest.cli import dq_app

    app.add_typer(import_app, name="import")
    app.add_typer(dq_app, name="dq")
    from recoup.identity.cli import apikeys_app, keys_app, users_app

    app.add_typer(users_app, name="users")
    app.add_typer(apikeys_app, name="apikeys")
    app.add_typer(keys_app, name="keys")
    from recoup.audit.cli import app as audit_app

    app.add_typer(audit_app, name="audit")
    from recoup.demo.cli import demo_command, seed_demo_command

    app.command("seed-demo")(seed_demo_command)
    app.command("demo")(demo_command)
    from recoup.scoring.cli import app as model_app

    app.add_typer(model_app, name="model")
    from recoup.compliance.cli import app as compliance_app

    app.add_typer(compliance_app, name="compliance")
    from recoup.portfolio.cli import app as accounts_app

    app.add_typer(accounts_app, name="accounts")
    from recoup.workbench.cli import app as promises_app

    app.add_typer(promises_app, name="promises")
    from recoup.jobs_cli import app as jobs_app
    from recoup.jobs_cli import worker_command

    app.add_typer(jobs_app, name="jobs")
    app.command("worker")(worker_command)
