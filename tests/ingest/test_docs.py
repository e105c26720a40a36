"""The documented column schemas match the ones the importer uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recoup.ingest.rules import columns_for, required_columns

DOC = Path(__file__).resolve().parents[2] / "docs" / "import-formats.md"


def documented(kind: str) -> dict[str, bool]:
    section = DOC.read_text(encoding="utf-8").split(f"\n## {kind}\n", 1)[1].split("\n## ", 1)[0]
    columns: dict[str, bool] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([a-z_]+)`", cells[0]):
            columns[name] = cells[1] == "yes"
    return columns


@pytest.mark.parametrize("kind", ["debtors", "contacts", "accounts", "payments"])
def test_every_column_is_documented(kind: str) -> None:
    columns = documented(kind)
    assert set(columns) == {column.name for column in columns_for(kind)}
    assert {name for name, required in columns.items() if required} == set(required_columns(kind))


@pytest.mark.parametrize("kind", ["debtors", "contacts", "accounts", "payments"])
def test_examples_start_with_the_external_id(kind: str) -> None:
    header = (DOC.parent / "examples" / f"{kind}.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[0] == "external_id"
