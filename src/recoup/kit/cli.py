"""Shared pieces for command-line modules: the console, domain-error exits, lazy commands."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Typer carries its own copy of click: its groups, commands and contexts are these classes.
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

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


@dataclass(frozen=True)
class LazySubcommand:
    """A sub-command known by name and help text, imported from ``target`` only when it runs.

    ``target`` is ``"package.module:attribute"``: a ``typer.Typer`` sub-app or a command
    function.
    """

    name: str
    target: str
    help: str

    def load(self) -> click.Command:
        """Import the sub-command and return it as a click command named ``name``."""
        module_name, attribute = self.target.split(":")
        found = getattr(importlib.import_module(module_name), attribute)
        command: click.Command
        if isinstance(found, typer.Typer):
            # A group even with one command, as ``add_typer`` makes it: ``recoup audit verify``.
            command = typer.main.get_group(found)
        else:
            single = typer.Typer(add_completion=False)
            single.command(self.name)(found)
            command = typer.main.get_command(single)
        command.name = self.name
        return command


class LazyGroup(TyperGroup):
    """A Typer group whose lazy sub-commands import their modules only when they run.

    ``recoup --help`` lists every command from its help text alone, and ``recoup
    compliance check`` imports the compliance commands but not the scoring libraries.
    """

    lazy_subcommands: ClassVar[dict[str, LazySubcommand]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = self.lazy_subcommands
        return [*lazy, *(name for name in super().list_commands(ctx) if name not in lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_subcommands.get(cmd_name)
        if lazy is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        if self._listing:
            return TyperCommand(lazy.name, help=lazy.help, short_help=lazy.help)
        self.commands[cmd_name] = lazy.load()
        return self.commands[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def add_lazy(app: typer.Typer, name: str, target: str, help_text: str) -> None:
    """Register ``target`` as the sub-command ``name`` of ``app``, imported when it runs.

    ``help_text`` is what ``--help`` lists; ``app`` is made with ``cls=`` a ``LazyGroup``
    subclass of its own.
    """
    group = app.info.cls
    if not (isinstance(group, type) and issubclass(group, LazyGroup)):
        raise TypeError(f"{name}: lazy sub-commands need typer.Typer(cls=<a LazyGroup subclass>)")
    group.lazy_subcommands[name] = LazySubcommand(name, target, help_text)
