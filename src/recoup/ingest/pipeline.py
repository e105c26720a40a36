"""Read and check a large import file in a second process while the first one writes.

Reading and the row rules are pure Python and need no database, so on a machine with
two cores they run beside the writes instead of before them. The reader process opens
the file itself with the same arguments (so it detects the same format and encoding),
checks it chunk by chunk with the same rules, and hands each checked chunk over a
queue of at most two chunks, which keeps memory flat whatever the file's size. Records
travel as plain tuples: pickling frozen dataclasses was slower than checking the rows;
account rows stay tuples in the writing process too (``CheckedChunk.account_rows``).
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import fields
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Any, Final

from recoup.enums import ImportKind
from recoup.ingest.readers import UnusableFile, open_source
from recoup.ingest.rules import (
    AccountRecord,
    ContactRecord,
    DebtorRecord,
    PaymentRecord,
    Problem,
    Record,
    RowContext,
    SeenKeys,
)
from recoup.ingest.service import CheckedChunk, check_rows
from recoup.kit import collector, processes

QUEUED_CHUNKS: Final = 2
_RECORD_TYPES: Final[tuple[type[Any], ...]] = (
    DebtorRecord,
    ContactRecord,
    AccountRecord,
    PaymentRecord,
)
_FIELD_VALUES: Final = {kind: attrgetter(*(f.name for f in fields(kind))) for kind in _RECORD_TYPES}
# How often the reader is checked for having died without a word (seconds).
_POLL_SECONDS: Final = 1.0

# The reader process holds only one chunk at a time and makes no reference cycles; the
# collector's full passes over its imported modules cost more than a tenth of its time.
_COLLECT_EVERY_CHUNKS: Final = 50

Packed = tuple[
    int,
    list[tuple[int, tuple[Any, ...]]],
    list[tuple[int, tuple[str, str, str, str]]],
    list[tuple[Any, ...]],
]


def _pack(chunk: CheckedChunk) -> Packed:
    records: list[tuple[int, tuple[Any, ...]]] = []
    if chunk.records:
        values = _FIELD_VALUES[type(chunk.records[0][1])]
        records = [(number, values(record)) for number, record in chunk.records]
    problems = [
        (number, (problem.field, problem.value, problem.code, problem.reason))
        for number, problem in chunk.problems
    ]
    return chunk.rows_read, records, problems, chunk.account_rows


def _unpack(packed: Packed, record_type: type[Any]) -> CheckedChunk:
    rows_read, records, problems, account_rows = packed
    return CheckedChunk(
        rows_read=rows_read,
        records=[(number, record_type(*values)) for number, values in records],
        problems=[(number, Problem(*values)) for number, values in problems],
        account_rows=account_rows,
    )


def _record_type(kind: ImportKind) -> type[Record]:
    return {
        ImportKind.debtors: DebtorRecord,
        ImportKind.contacts: ContactRecord,
        ImportKind.accounts: AccountRecord,
        ImportKind.payments: PaymentRecord,
    }[kind]


def _check_file(
    outbox: Any,
    path: Path,
    kind: ImportKind,
    file_format: str | None,
    encoding: str | None,
    context: RowContext,
    chunk_size: int,
) -> None:
    """Read and check ``path`` in the reader process, sending each checked chunk to ``outbox``."""
    processes.exit_with_parent("recoup-import-parent-watch")
    try:
        with (
            collector.paused(),
            open_source(path, kind=kind, file_format=file_format, encoding=encoding) as source,
        ):
            seen = SeenKeys()
            chunks = 0
            while chunk := list(islice(source.rows, chunk_size)):
                checked = check_rows(kind=kind, context=context, seen=seen, rows=chunk)
                outbox.put(("chunk", _pack(checked), source.position()))
                chunks += 1
                if chunks % _COLLECT_EVERY_CHUNKS == 0:
                    gc.collect()
            outbox.put(("done", list(source.ignored_columns)))
    except UnusableFile as error:
        outbox.put(("unusable", error.message))
    except Exception as error:  # handed to the writing process, which raises it
        try:
            outbox.put(("error", error))
        except Exception:
            outbox.put(("error", RuntimeError(f"the import reader failed: {error!r}")))


def checked_chunks(
    *,
    path: Path,
    kind: ImportKind,
    file_format: str | None,
    encoding: str | None,
    context: RowContext,
    chunk_size: int,
    ignored_columns: list[str],
) -> Generator[tuple[CheckedChunk, int]]:
    """Yield ``(checked chunk, file position)`` as the reader process produces them.

    Raises ``UnusableFile`` where the file breaks, after the chunks before it; fills
    ``ignored_columns`` at the end (JSON Lines files only discover them while read).
    """
    spawn = multiprocessing.get_context("spawn")
    outbox: Any = spawn.Queue(maxsize=QUEUED_CHUNKS)
    reader = spawn.Process(
        target=_check_file,
        args=(outbox, path, kind, file_format, encoding, context, chunk_size),
        name="recoup-import-reader",
        daemon=True,
    )
    with _main_module_hidden():
        reader.start()
    record_type = _record_type(kind)
    try:
        while True:
            message = _receive(outbox, reader)
            tag = message[0]
            if tag == "chunk":
                yield _unpack(message[1], record_type), message[2]
            elif tag == "done":
                ignored_columns[:] = message[1]
                return
            elif tag == "unusable":
                raise UnusableFile(message[1])
            else:
                raise message[1]
    finally:
        if reader.is_alive():
            reader.terminate()
        reader.join()
        outbox.close()
        outbox.cancel_join_thread()


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start a process without running the program's main module again inside it.

    A spawned process first imports the parent's ``__main__`` (by path or by module
    name); for the ``recoup`` command that is every CLI command with its libraries
    (LightGBM, pandas), seconds before the reader reads a row. The reader needs nothing
    from it: its function and arguments are importable from ``recoup.ingest``.
    Multiprocessing reads these attributes only while ``start()`` prepares the process.
    """
    main = sys.modules["__main__"]
    saved = {name: getattr(main, name) for name in ("__file__", "__spec__") if hasattr(main, name)}
    for name in saved:
        setattr(main, name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


def _receive(outbox: Any, reader: Any) -> tuple[Any, ...]:
    while True:
        try:
            message: tuple[Any, ...] = outbox.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if not reader.is_alive():
                try:
                    return tuple(outbox.get(timeout=_POLL_SECONDS))
                except queue.Empty:
                    raise RuntimeError(
                        f"the import reader process stopped (exit code {reader.exitcode})"
                    ) from None
            continue
        return message
