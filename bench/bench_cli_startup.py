"""Benchmark how fast the ``recoup`` command answers: CPU seconds per start, and serve readiness.

    .venv/bin/python bench/bench_cli_startup.py [--runs N] [--no-serve]

Each figure is the median CPU time (user + system, of the child process) over ``--runs``
starts of a fresh interpreter, printed beside ``python -c pass`` measured in the same run,
so a loaded machine shows as a slow baseline rather than a slow Recoup. CPU time is the
target's measure because the machine is shared; wall time also measures the neighbours.

Targets: ``recoup --help`` and ``recoup compliance check …`` at most 0.4 s CPU;
``recoup serve`` answering ``/healthz`` within 3 s of its start (wall time; its CPU time
is printed too, as wall time on a shared machine also measures the neighbours).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
RECOUP = [sys.executable, "-c", "from recoup.cli import main; main()"]
HELP_TARGET = 0.4
CHECK_TARGET = 0.4
SERVE_TARGET = 3.0


def cpu_seconds(command: list[str], environment: dict[str, str]) -> float:
    """Run ``command`` to its end and return the CPU time it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=environment, stdout=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_cpu(command: list[str], environment: dict[str, str], runs: int) -> float:
    return statistics.median(cpu_seconds(command, environment) for _ in range(runs))


def prepare_database(folder: Path, environment: dict[str, str]) -> None:
    """Create a database with one institution and one debtor for ``compliance check``."""
    debtors = folder / "debtors.csv"
    debtors.write_text("external_id,name,province,city\nD1,张伟,北京市,北京市\n", encoding="utf-8")
    for arguments in (
        ["db", "upgrade"],
        ["institutions", "create", "BENCH", "--name", "基准消费金融"],
        ["import", "debtors", str(debtors), "--institution", "BENCH"],
    ):
        subprocess.run(RECOUP + arguments, env=environment, check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """Return the CPU time a running process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_ready_seconds(environment: dict[str, str]) -> tuple[float, float]:
    """Start ``recoup serve``; return wall and CPU seconds until ``/healthz`` answers."""
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [*RECOUP, "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return time.perf_counter() - started, process_cpu_seconds(server.pid)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.02)
        raise RuntimeError("recoup serve did not answer within 60 s")
    finally:
        server.terminate()
        server.wait()


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER TARGET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="Starts per figure (median)")
    parser.add_argument("--no-serve", action="store_true", help="Skip the serve readiness figure")
    options = parser.parse_args()
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="recoup-bench-cli-") as scratch:
        folder = Path(scratch)
        environment = {
            **os.environ,
            "PYTHONPATH": str(SRC),
            "RECOUP_DATA_DIR": str(folder),
            "RECOUP_DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
        }
        prepare_database(folder, environment)
        baseline = median_cpu([sys.executable, "-c", "pass"], environment, options.runs)
        help_cpu = median_cpu([*RECOUP, "--help"], environment, options.runs)
        check = [
            *RECOUP,
            *("compliance", "check", "--institution", "BENCH", "--debtor", "1"),
            *("--channel", "call", "--at", "2026-12-07T10:00:00+08:00"),
        ]
        # 0 allowed, 3 blocked: either way the gate decided; anything else is a broken setup.
        answered = subprocess.run(check, env=environment, capture_output=True, check=False)
        if answered.returncode not in (0, 3):
            raise RuntimeError(f"compliance check failed: {answered.stderr.decode()}")
        check_cpu = median_cpu(check, environment, options.runs)
        print(f"python -c pass           {baseline:6.3f} s CPU (baseline)")
        print(
            f"recoup --help            {help_cpu:6.3f} s CPU "
            f"(+{help_cpu - baseline:.3f}; target <= {HELP_TARGET}: "
            f"{verdict(help_cpu, HELP_TARGET)})"
        )
        print(
            f"recoup compliance check  {check_cpu:6.3f} s CPU "
            f"(+{check_cpu - baseline:.3f}; target <= {CHECK_TARGET}: "
            f"{verdict(check_cpu, CHECK_TARGET)})"
        )
        if not options.no_serve:
            ready, ready_cpu = serve_ready_seconds(environment)
            print(
                f"recoup serve ready       {ready:6.3f} s wall, {ready_cpu:.3f} s CPU "
                f"(target <= {SERVE_TARGET} wall: {verdict(ready, SERVE_TARGET)}; "
                "on an idle machine the wall time is about the CPU time)"
            )


if __name__ == "__main__":
    main()
