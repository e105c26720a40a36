"""The ``recoup`` command line. Each domain contributes its own sub-commands."""

from __future__ import annotations

from typing import ClassVar

import typer

from recoup.kit.cli import LazyGroup, LazySubcommand, console


class RecoupCommands(LazyGroup):
    """The root command group, whose domain commands load when they run."""

    lazy_subcommands: ClassVar[dict[str, LazySubcommand]] = {}


app = typer.Typer(
    name="recoup",
    help="Recoup — collections platform. Run `recoup demo` to try it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=RecoupCommands,
)


@app.callback()
def root() -> None:
    # A callback keeps ``recoup`` a group of commands even before its lazy ones load.
    pass


# Domain command registrations: one line each (see CONVENTIONS.md).
from recoup import cli_registry  # noqa: E402

cli_registry.register(app)


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on"),
    port: int = typer.Option(8000, "--port", help="Port to listen on"),
    reload: bool = typer.Option(False, "--reload", help="Restart on code changes (development)"),
    worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Run background jobs in this process too"
    ),
) -> None:
    """Run the web app and API (with a background-job worker unless --no-worker)."""
    import os

    import uvicorn

    from recoup.config import get_settings

    os.environ["RECOUP_EMBEDDED_WORKER"] = "true" if worker else "false"
    get_settings.cache_clear()
    console.print(f"Recoup is serving on http://{host}:{port} (API docs at /docs)")
    uvicorn.run(
        "recoup.app:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        timeout_graceful_shutdown=get_settings().shutdown_seconds,
    )


def main() -> None:
    """Entry point of the ``recoup`` script."""
    app()
