"""``recoup audit verify|checkpoint|rotate-key``: check, pin and re-key the audit chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy import Engine

from recoup.audit import service
from recoup.audit.rules import (
    Checkpoint,
    CheckpointUnreadable,
    checkpoint_from_json,
    checkpoint_to_json,
)
from recoup.config import get_settings
from recoup.db import get_engine, unit_of_work
from recoup.kit import crypto
from recoup.kit.cli import console, error_console, fail_on_domain_error
from recoup.kit.errors import ValidationFailed

app = typer.Typer(help="The audit trail.", no_args_is_help=True)

CLI_ACTOR = "cli"


@contextmanager
def _key_ring_refusals() -> Iterator[None]:
    """Turn a missing or unusable key ring into a one-line error, not a traceback."""
    try:
        yield
    except crypto.KeyRingError as error:
        raise ValidationFailed(str(error)) from None


def _snapshot_engine() -> Engine:
    """The configured engine, each transaction reading one consistent snapshot.

    The head and the events are read by separate queries; under PostgreSQL's default
    READ COMMITTED an event appended in between would look like a broken chain. SQLite's
    WAL read transactions (deferred, so writers are not held up) are snapshots already.
    """
    engine = get_engine()
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return engine


def _read_checkpoint(path: Path) -> Checkpoint:
    try:
        return checkpoint_from_json(json.loads(path.read_text()))
    except OSError as error:
        raise ValidationFailed(f"cannot read the checkpoint {path}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, CheckpointUnreadable) as error:
        raise ValidationFailed(f"{path} is not a Recoup audit checkpoint: {error}") from None


@app.command("verify")
def verify(
    checkpoint_file: Path | None = typer.Option(
        None,
        "--checkpoint",
        metavar="FILE",
        help="A checkpoint from `recoup audit checkpoint`: also prove nothing up to it changed",
    ),
) -> None:
    """Walk the audit chain; print OK with the count, or the first broken event and exit 1."""
    with fail_on_domain_error(), _key_ring_refusals():
        checkpoint = _read_checkpoint(checkpoint_file) if checkpoint_file else None
        with unit_of_work(_snapshot_engine(), write=False) as session:
            checked, broken = service.verify(session, checkpoint=checkpoint)
    if broken is None:
        console.print(f"OK: {checked} audit events verified; the chain is intact.")
        if checkpoint is not None:
            console.print(
                f"The checkpoint of {checkpoint.created_at.isoformat(timespec='seconds')} "
                f"holds: events 1 to {checkpoint.sequence} are unchanged."
            )
        return
    where = f"row id {broken.row_id}" if broken.row_id is not None else "the chain head"
    error_console.print(
        f"BROKEN at event {broken.sequence} ({where}): {broken.reason}. {checked} events were read."
    )
    raise typer.Exit(code=1)


@app.command("checkpoint")
def checkpoint(
    output: Path | None = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Write the checkpoint here (default: print)"
    ),
) -> None:
    """Verify the chain and print (or write) its head, signed, to keep outside the database."""
    with fail_on_domain_error(), _key_ring_refusals():
        with unit_of_work() as session:
            sealed = service.seal_unkeyed_chain(session)
        with unit_of_work(_snapshot_engine(), write=False) as session:
            made = service.checkpoint(session)
    document = json.dumps(checkpoint_to_json(made), indent=2)
    if sealed is not None:
        error_console.print(
            f"Sealed {sealed.details['unkeyed_events']} unkeyed events under audit key "
            f"{made.key_id} (event {sealed.sequence})."
        )
    if output is None:
        typer.echo(document)
        return
    output.write_text(document + "\n")
    console.print(
        f"Checkpoint of event {made.sequence} written to {output}; store it outside the "
        "database (write-once storage, a ticket, a printout) and verify with "
        f"`recoup audit verify --checkpoint {output}`."
    )


@app.command("rotate-key")
def rotate_key() -> None:
    """Make a new audit key active; older audit keys stay so earlier events still verify.

    Also adds the first audit key to a key ring made before the chain was keyed.
    Restart app processes afterwards so they sign with the new key.
    """
    settings = get_settings()
    path = settings.keyring_file
    assert path is not None
    with fail_on_domain_error(), _key_ring_refusals():
        ring = crypto.load_keyring(path, create=settings.is_development)
        previous = ring.audit_active
        rotated = ring.with_new_audit_key()
        # Saved before any event uses the new key, so no event is ever without its key.
        crypto.save_keyring(rotated, path)
        crypto.set_keyring(rotated)
        with unit_of_work() as session:
            service.record(
                session,
                actor=CLI_ACTOR,
                action="audit.key_rotate",
                object_type="key_ring",
                object_id=str(rotated.audit_active),
                details={"active": rotated.audit_active, "previous": previous},
            )
    console.print(
        f"Audit events are now signed with key {rotated.audit_active}"
        + (f" (was {previous})." if previous else ".")
    )
