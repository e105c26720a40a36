"""Shared pieces for command-line modules: the console and domain-error exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recoup.kit.errors import RecoupError

console = Console()
error_console = Console(stderr=True)


@contextmanager
def fail_on_domain_error() -> Iterator[None]:
    """Turn a domain error into a one-line message and exit code 1, not a traceback."""
    try:
        yield
    except RecoupError as error:
        error_console.print(f"[red]error:[/] {error.message}")
        raise typer.Exit(code=1) from None


def progress() -> Progress:
    """Return the progress bar used by long commands (on stderr)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=error_console,
        transient=False,
    )
