"""The ``recoup`` command line starts fast: its commands load their domains when they run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from recoup.cli import RecoupCommands, app

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY_LIBRARIES = ("sklearn", "optbinning", "lightgbm", "pandas", "scipy", "matplotlib")


def modules_after(code: str) -> list[str]:
    """Return which heavy libraries a fresh interpreter has imported after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([name for name in {HEAVY_LIBRARIES!r} if name in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(result.stdout.splitlines()[-1]))


class TestStartUp:
    def test_importing_the_cli_and_every_registered_command_loads_no_heavy_library(self) -> None:
        loaded = modules_after(
            "import typer.main\n"
            "from recoup.cli import app\n"
            "group = typer.main.get_command(app)\n"
            "context = group.make_context('recoup', ['serve'])\n"
            "for name in group.list_commands(context):\n"
            "    assert group.get_command(context, name) is not None, name\n"
        )
        assert loaded == []

    def test_help_imports_no_domain(self) -> None:
        loaded = modules_after(
            "import sys\n"
            "from recoup.cli import app\n"
            "try:\n"
            "    app(['--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "assert 'sqlalchemy' not in sys.modules, 'recoup --help imported the database layer'\n"
        )
        assert loaded == []

    def test_serve_builds_the_app_without_the_training_libraries(self) -> None:
        loaded = modules_after("from recoup.app import create_app\ncreate_app()")
        # pandas stays: the portfolio tables of the scoring pages are data frames.
        assert [name for name in loaded if name != "pandas"] == []


class TestRegistry:
    @pytest.mark.parametrize("name", list(RecoupCommands.lazy_subcommands))
    def test_the_listed_help_is_the_commands_own(self, name: str) -> None:
        group = typer.main.get_command(app)
        context = group.make_context("recoup", ["serve"])
        command = group.get_command(context, name)
        assert command is not None
        assert command.help is not None
        own = command.help.strip().splitlines()[0]
        assert RecoupCommands.lazy_subcommands[name].help == own
