"""The README's "Using it" block runs as written, in order, on a fresh data folder.

Each command runs through the project's own ``recoup``; it must exit 0 unless its comment
announces another exit code ("exit 3: …"). ``recoup serve`` is started, must answer
``/healthz``, and is stopped (on a free port instead of the README's, which may be taken).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.load import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def readme_commands() -> list[tuple[str, int]]:
    """Return the "Using it" block's commands with the exit code each announces."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using it") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the README's Using it section has no bash block"
    commands: list[tuple[str, int]] = []
    pending = ""
    for line in block.group(1).splitlines():
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        command, _, comment = pending.partition("  #")
        announced = re.search(r"\bexit (\d+)", comment)
        commands.append((" ".join(command.split()), int(announced.group(1)) if announced else 0))
        pending = ""
    return [(command, code) for command, code in commands if command]


def test_the_block_is_found() -> None:
    commands = readme_commands()
    assert commands[0][0] == "source .venv/bin/activate"
    assert any(code == 3 for _command, code in commands)
    assert commands[-1][0].startswith("recoup serve")


def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RECOUP_DATA_DIR": str(tmp_path / "var"),
        "COLUMNS": "120",
    }
    env.pop("RECOUP_DATABASE_URL", None)
    env.pop("RECOUP_KEYRING_FILE", None)
    recoup = [sys.executable, "-m", "recoup"]
    for command, expected in readme_commands():
        words = shlex.split(command)
        if words[0] == "source":
            continue
        assert words[0] == "recoup", f"the README runs something other than recoup: {command}"
        if words[1] == "serve":
            _serve(recoup + words[1:], env)
            continue
        result = subprocess.run(
            recoup + words[1:],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == expected, (
            f"`{command}` exited {result.returncode}, the README says {expected}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def _serve(arguments: list[str], env: dict[str, str]) -> None:
    port = free_port()
    if "--port" in arguments:
        arguments[arguments.index("--port") + 1] = str(port)
    else:
        arguments += ["--port", str(port)]
    process = subprocess.Popen(
        arguments, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("recoup serve did not answer /healthz within 90 s")
        docs = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=10)
        assert docs.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
