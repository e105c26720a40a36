"""The chain is keyed: rewriting it without the audit key, or behind a checkpoint, is found."""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup import config
from recoup.audit import service as audit
from recoup.audit.rules import GENESIS_HASH, checkpoint_from_json, checkpoint_to_json, event_hash
from recoup.cli import app as cli
from recoup.db import unit_of_work
from recoup.kit import crypto
from recoup.kit.clock import utcnow
from recoup.kit.errors import ValidationFailed
from recoup.models import AuditEvent
from recoup.models.audit import AuditChainHead

Rehash = Callable[..., str]


@pytest.fixture
def restore_keyring() -> Iterator[crypto.KeyRing]:
    original = crypto.get_keyring()
    yield original
    crypto.set_keyring(original)


def _events(session: Session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.sequence)))


def _reveal_trail(session: Session) -> list[AuditEvent]:
    """Six events; the third is a PII reveal by ``agent7``."""
    events = []
    for n in range(1, 7):
        if n == 3:
            events.append(
                audit.record(
                    session,
                    actor="agent7",
                    action="pii.reveal",
                    object_type="debtor",
                    object_id=42,
                    institution_id=1,
                    details={"reason": "browsing out of curiosity", "fields": ["name"]},
                )
            )
        else:
            events.append(
                audit.record(
                    session,
                    actor="alice",
                    action="payment.record",
                    object_type="payment",
                    object_id=n,
                    details={"amount": n * 100},
                )
            )
    session.flush()
    return events


def _sha256(**fields: object) -> str:
    return event_hash(**fields)  # type: ignore[arg-type]


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _rewrite_from(
    session: Session,
    sequence: int,
    rehash: Rehash,
    *,
    through: int | None = None,
    **changes: object,
) -> None:
    """What an attacker with database write access does: edit one row, recompute the rest.

    With ``through`` only the events up to it are recomputed and the head is left alone.
    """
    previous = GENESIS_HASH
    for event in _events(session):
        if event.sequence < sequence:
            previous = event.hash
            continue
        if through is not None and event.sequence > through:
            break
        values = {
            "sequence": event.sequence,
            "institution_id": event.institution_id,
            "actor": event.actor,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "occurred_at": _aware(event.occurred_at),
            "details": event.details,
        }
        if event.sequence == sequence:
            values.update(changes)
        digest = rehash(**values, previous_hash=previous)
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == event.id)
            .values(
                actor=values["actor"],
                details=values["details"],
                previous_hash=previous,
                hash=digest,
            )
        )
        previous = digest
    if through is None:
        session.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(hash=previous))
    session.expire_all()


def _legacy_chain(session: Session, length: int) -> None:
    """Write a chain as versions before the keyed chain did: plain SHA-256, no key."""
    previous = GENESIS_HASH
    moment = utcnow()
    for sequence in range(1, length + 1):
        fields = {
            "sequence": sequence,
            "institution_id": None,
            "actor": "bob",
            "action": "payment.record",
            "object_type": "payment",
            "object_id": str(sequence),
            "occurred_at": moment,
            "details": {"amount": sequence},
        }
        digest = event_hash(**fields, previous_hash=previous)  # type: ignore[arg-type]
        session.add(AuditEvent(**fields, previous_hash=previous, hash=digest))
        previous = digest
    session.add(AuditChainHead(id=1, sequence=length, hash=previous))
    session.flush()


class TestRewritingWithoutTheKey:
    def test_a_reveal_rewritten_with_plain_sha256_and_a_new_head_is_found(
        self, session: Session
    ) -> None:
        events = _reveal_trail(session)
        _rewrite_from(
            session,
            3,
            _sha256,
            actor="manager1",
            details={"reason": "customer asked for a statement", "fields": ["name"]},
        )
        _checked, broken = audit.verify(session)
        assert broken is not None
        assert (broken.row_id, broken.sequence) == (events[2].id, 3)
        assert "without the audit key" in broken.reason

    def test_a_reveal_rewritten_with_a_guessed_key_is_found(self, session: Session) -> None:
        events = _reveal_trail(session)
        key_id = crypto.get_keyring().active_audit_key()[0]
        guessed = b"\x01" * 32

        def forged(**fields: object) -> str:
            return event_hash(**fields, key_id=key_id, key=guessed)  # type: ignore[arg-type]

        _rewrite_from(session, 3, forged, actor="manager1")
        broken = audit.verify(session)[1]
        assert broken is not None
        assert (broken.row_id, broken.sequence) == (events[2].id, 3)
        assert "altered" in broken.reason

    def test_every_event_is_signed_with_the_named_audit_key(self, session: Session) -> None:
        events = _reveal_trail(session)
        key_id = crypto.get_keyring().active_audit_key()[0]
        assert all(event.hash.startswith(f"{key_id}:") for event in events)
        assert audit.verify(session) == (6, None)


class TestAnExistingUnkeyedChain:
    def test_is_reported_until_sealed(self, session: Session) -> None:
        _legacy_chain(session, 3)
        broken = audit.verify(session)[1]
        assert broken is not None
        assert "not keyed" in broken.reason

    def test_the_next_event_seals_it_and_the_seal_is_audited(self, session: Session) -> None:
        _legacy_chain(session, 3)
        legacy_head = session.get(AuditChainHead, 1)
        assert legacy_head is not None
        unkeyed_head = legacy_head.hash
        audit.record(session, actor="carol", action="user.create", object_type="user", object_id=9)
        trail = _events(session)
        assert [event.action for event in trail[3:]] == ["audit.chain_keyed", "user.create"]
        assert trail[3].details == {"unkeyed_events": 3, "unkeyed_head": unkeyed_head}
        assert audit.verify(session) == (5, None)

    def test_sealed_unkeyed_events_can_no_longer_be_rewritten(self, session: Session) -> None:
        _legacy_chain(session, 3)
        audit.seal_unkeyed_chain(session)
        session.flush()
        _rewrite_from(session, 2, _sha256, through=3, actor="mallory")
        broken = audit.verify(session)[1]
        assert broken is not None
        assert broken.sequence == 4
        assert "previous-hash" in broken.reason


class TestKeyRotation:
    def test_events_of_every_audit_key_verify_and_a_missing_key_is_named(
        self, session: Session, restore_keyring: crypto.KeyRing
    ) -> None:
        first = restore_keyring
        audit.record(session, actor="a", action="x.y", object_type="t", object_id=1)
        rotated = first.with_new_audit_key()
        crypto.set_keyring(rotated)
        later = audit.record(session, actor="a", action="x.y", object_type="t", object_id=2)
        assert later.hash.startswith(f"{rotated.audit_active}:")
        assert rotated.audit_active != first.audit_active
        assert audit.verify(session) == (2, None)

        without_old = rotated._replace(
            audit_keys={
                key_id: key
                for key_id, key in rotated.audit_keys.items()
                if key_id != first.audit_active
            }
        )
        crypto.set_keyring(without_old)
        broken = audit.verify(session)[1]
        assert broken is not None
        assert broken.sequence == 1
        assert f"audit key {first.audit_active!r}, which is not in the key ring" in broken.reason


class TestCheckpoints:
    def test_a_cut_off_tail_passes_plain_verify_but_not_the_checkpoint(
        self, session: Session
    ) -> None:
        events = _reveal_trail(session)
        checkpoint = audit.checkpoint(session)
        assert checkpoint.sequence == 6
        # Drop the last two events and point the head at the fourth: consistent, but rolled back.
        session.execute(delete(AuditEvent).where(AuditEvent.sequence > 4))
        session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == 1)
            .values(sequence=4, hash=events[3].hash)
        )
        session.expire_all()
        assert audit.verify(session) == (4, None)
        broken = audit.verify(session, checkpoint=checkpoint)[1]
        assert broken is not None
        assert "checkpoint" in broken.reason
        assert "records event 6" in broken.reason

    def test_a_rewrite_with_the_key_is_caught_by_an_earlier_checkpoint(
        self, session: Session
    ) -> None:
        events = _reveal_trail(session)
        checkpoint = audit.checkpoint(session)
        key_id, key = crypto.get_keyring().active_audit_key()

        def insider(**fields: object) -> str:
            return event_hash(**fields, key_id=key_id, key=key)  # type: ignore[arg-type]

        _rewrite_from(session, 3, insider, actor="manager1")
        assert audit.verify(session)[1] is None
        broken = audit.verify(session, checkpoint=checkpoint)[1]
        assert broken is not None
        assert (broken.row_id, broken.sequence) == (events[5].id, 6)
        assert "differs from the checkpoint" in broken.reason

    def test_later_events_keep_an_old_checkpoint_valid(self, session: Session) -> None:
        _reveal_trail(session)
        checkpoint = audit.checkpoint(session)
        audit.record(session, actor="a", action="x.y", object_type="t", object_id=1)
        assert audit.verify(session, checkpoint=checkpoint) == (7, None)

    def test_a_forged_checkpoint_is_refused(self, session: Session) -> None:
        _reveal_trail(session)
        document = checkpoint_to_json(audit.checkpoint(session))
        document["sequence"] = 2
        broken = audit.verify(session, checkpoint=checkpoint_from_json(document))[1]
        assert broken is not None
        assert "signature does not match" in broken.reason

    def test_no_checkpoint_of_a_broken_chain(self, session: Session) -> None:
        events = _reveal_trail(session)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[1].id).values(actor="mallory")
        )
        session.expire_all()
        with pytest.raises(ValidationFailed, match="broken at event 2"):
            audit.checkpoint(session)


class TestCommands:
    def test_checkpoint_then_verify_against_it(self, cli_db: str, tmp_path: Path) -> None:
        with unit_of_work() as session:
            _reveal_trail(session)
        saved = tmp_path / "checkpoint.json"
        made = CliRunner().invoke(cli, ["audit", "checkpoint", "--output", str(saved)])
        assert made.exit_code == 0, made.output
        assert json.loads(saved.read_text())["sequence"] == 6
        printed = CliRunner().invoke(cli, ["audit", "checkpoint"])
        assert printed.exit_code == 0, printed.output
        assert json.loads(printed.stdout)["signature"]

        ok = CliRunner().invoke(cli, ["audit", "verify", "--checkpoint", str(saved)])
        assert ok.exit_code == 0, ok.output
        assert "events 1 to 6 are unchanged" in ok.output

        with unit_of_work() as session:
            session.execute(delete(AuditEvent).where(AuditEvent.sequence == 6))
            fifth = session.scalars(select(AuditEvent).where(AuditEvent.sequence == 5)).one()
            session.execute(
                update(AuditChainHead)
                .where(AuditChainHead.id == 1)
                .values(sequence=5, hash=fifth.hash)
            )
        assert CliRunner().invoke(cli, ["audit", "verify"]).exit_code == 0
        rolled_back = CliRunner().invoke(cli, ["audit", "verify", "--checkpoint", str(saved)])
        assert rolled_back.exit_code == 1
        assert "BROKEN at event 6" in rolled_back.output
        assert "checkpoint" in rolled_back.output

    def test_an_unreadable_checkpoint_file(self, cli_db: str, tmp_path: Path) -> None:
        bogus = tmp_path / "bogus.json"
        bogus.write_text('{"sequence": 1}')
        result = CliRunner().invoke(cli, ["audit", "verify", "--checkpoint", str(bogus)])
        assert result.exit_code == 1
        assert "not a Recoup audit checkpoint" in result.output

    def test_checkpoint_seals_an_unkeyed_chain(self, cli_db: str) -> None:
        with unit_of_work() as session:
            _legacy_chain(session, 2)
        assert CliRunner().invoke(cli, ["audit", "verify"]).exit_code == 1
        made = CliRunner().invoke(cli, ["audit", "checkpoint"])
        assert made.exit_code == 0, made.output
        assert "Sealed 2 unkeyed events" in made.output
        assert CliRunner().invoke(cli, ["audit", "verify"]).exit_code == 0

    def test_rotate_key(
        self,
        cli_db: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        restore_keyring: crypto.KeyRing,
    ) -> None:
        ring_file = tmp_path / "keyring.json"
        crypto.save_keyring(restore_keyring, ring_file)
        monkeypatch.setenv("RECOUP_KEYRING_FILE", str(ring_file))
        config.get_settings.cache_clear()
        with unit_of_work() as session:
            audit.record(session, actor="a", action="x.y", object_type="t", object_id=1)
        result = CliRunner().invoke(cli, ["audit", "rotate-key"])
        assert result.exit_code == 0, result.output
        saved = crypto.load_keyring(ring_file, create=False)
        assert saved.audit_active != restore_keyring.audit_active
        assert set(saved.audit_keys) == {restore_keyring.audit_active, saved.audit_active}
        assert saved.keys == restore_keyring.keys
        with unit_of_work() as session:
            assert _events(session)[-1].action == "audit.key_rotate"
            assert _events(session)[-1].hash.startswith(f"{saved.audit_active}:")
        assert CliRunner().invoke(cli, ["audit", "verify"]).exit_code == 0
