"""Pure rules of the scheduled file drop: which files are ready, what they hold, their names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from recoup.enums import ImportKind

# Imported in this order within one scan: accounts need their debtors, payments their accounts.
DROP_ORDER: tuple[ImportKind, ...] = (
    ImportKind.debtors,
    ImportKind.contacts,
    ImportKind.accounts,
    ImportKind.payments,
)
DROP_FORMATS = (".csv", ".xlsx", ".jsonl")
# Names an uploading client gives a file while it is still writing it.
PARTIAL_SUFFIXES = (".part", ".partial", ".filepart", ".tmp", ".crdownload", ".upload")
_KIND = re.compile(r"^(debtors|contacts|accounts|payments)(?:[-_. ][^/]*)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DropFile:
    """A file seen in a drop folder: its name, size and when it last changed (epoch seconds)."""

    name: str
    size: int
    changed_at: float


@dataclass(frozen=True, slots=True)
class DropPlan:
    """What one scan does with a folder's files."""

    ready: list[tuple[DropFile, ImportKind]]
    waiting: list[DropFile]
    unknown: list[DropFile]


def is_partial(name: str) -> bool:
    """Tell whether a name marks a file still being written, or one to leave alone."""
    lowered = name.lower()
    return name.startswith((".", "~$")) or lowered.endswith(PARTIAL_SUFFIXES)


def kind_of(name: str) -> ImportKind | None:
    """The import kind a file name announces (``accounts-2026-12-07.csv``), or None."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or f".{suffix.lower()}" not in DROP_FORMATS:
        return None
    match = _KIND.match(stem)
    return ImportKind(match.group(1).lower()) if match else None


def unknown_reason(name: str) -> str:
    """Why a file cannot be imported from its name, and how to name it."""
    kinds = ", ".join(str(kind) for kind in DROP_ORDER)
    formats = ", ".join(DROP_FORMATS)
    return (
        f"{name}: the name must start with the import kind ({kinds}) and end in one of "
        f"{formats}, e.g. accounts-2026-12-07.csv; rename it and drop it again"
    )


def is_settled(file: DropFile, *, now: float, settle_seconds: int) -> bool:
    """Tell whether a file has stopped changing for ``settle_seconds`` (done being written)."""
    return now - file.changed_at >= settle_seconds


def plan(files: Iterable[DropFile], *, now: float, settle_seconds: int) -> DropPlan:
    """Sort a folder's files into ready (in import order), still being written and unknown."""
    ready: list[tuple[DropFile, ImportKind]] = []
    waiting: list[DropFile] = []
    unknown: list[DropFile] = []
    for file in files:
        if is_partial(file.name) or not is_settled(file, now=now, settle_seconds=settle_seconds):
            waiting.append(file)
            continue
        kind = kind_of(file.name)
        if kind is None:
            unknown.append(file)
        else:
            ready.append((file, kind))
    ready.sort(key=lambda item: (DROP_ORDER.index(item[1]), item[0].name))
    return DropPlan(ready=ready, waiting=waiting, unknown=sorted(unknown, key=lambda f: f.name))


def archived_name(name: str, at: datetime) -> str:
    """The name a file keeps in processed/ or rejected/: the scan's UTC time, then its own."""
    return f"{at:%Y%m%dT%H%M%SZ}-{name}"
