"""Key rotation: data under key 1 stays readable after rotating to key 2, and key 1 is retired."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Text, select, type_coerce
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from recoup import config
from recoup.cli import app as cli
from recoup.db import unit_of_work
from recoup.identity import rotation
from recoup.kit import crypto
from recoup.kit.crypto import KeyRing, KeyRingError, blind_index
from recoup.models import AuditEvent, ContactPoint, Debtor
from tests.factories import make_contact_point, make_debtor, make_institution

NAME, NATIONAL_ID, PHONE = "司马懿", "110101199003074477", "13812345678"


@pytest.fixture
def restore_keyring() -> Iterator[KeyRing]:
    original = crypto.get_keyring()
    yield original
    crypto.set_keyring(original)


def _raw_key_ids(session: Session) -> set[str]:
    raw = [
        *session.scalars(select(type_coerce(Debtor.name, Text()))),
        *session.scalars(select(type_coerce(Debtor.national_id, Text()))),
        *session.scalars(select(type_coerce(ContactPoint.value, Text()))),
    ]
    return {value.partition(":")[0] for value in raw if value}


class TestRotationService:
    def test_rotate_reencrypt_retire(self, session: Session, restore_keyring: KeyRing) -> None:
        institution = make_institution(session)
        for number in range(5):
            debtor = make_debtor(
                session, institution, name=f"{NAME}{number}", national_id=NATIONAL_ID
            )
            make_contact_point(session, debtor, value=PHONE)
        first = restore_keyring
        assert _raw_key_ids(session) == {first.active}

        target, started = rotation.start_rotation(first)
        assert started
        assert target.active != first.active
        crypto.set_keyring(target)
        # Nothing re-encrypted yet: the old key is still needed.
        assert rotation.retire_unused(session, ring=target)[1] == []

        assert rotation.reencrypt_batch(session, ring=target, batch=2) == 2
        # An interrupted rotation resumes with the same target key.
        resumed, started_again = rotation.start_rotation(target)
        assert resumed is target
        assert not started_again
        total = 2
        while done := rotation.reencrypt_batch(session, ring=target, batch=2):
            total += done
        assert total == 10  # 5 debtors + 5 contact points
        assert _raw_key_ids(session) == {target.active}

        final, retired = rotation.retire_unused(session, ring=target)
        assert retired == [first.active]
        assert first.active not in final.keys
        assert first.active in final.retired
        crypto.set_keyring(final)
        session.expire_all()
        names = sorted(session.scalars(select(Debtor.name)))
        assert names == [f"{NAME}{n}" for n in range(5)]
        assert {c.value for c in session.scalars(select(ContactPoint))} == {PHONE}
        found = session.scalars(
            select(Debtor).where(
                Debtor.national_id_index == blind_index(NATIONAL_ID, context="debtors.national_id")
            )
        ).all()
        assert len(found) == 5
        with pytest.raises(KeyRingError, match="not in the key ring"):
            first.decrypt(final.encrypt("x", context="c"), context="c")

    def test_next_key_ids_skip_retired_ones(self) -> None:
        ring = KeyRing.generate("k1").with_new_active_key("k2").without_key("k1")
        assert rotation.next_key_id(ring) == "k3"

    def test_every_encrypted_column_is_found(self) -> None:
        found = {
            (item.table.name, column)
            for item in rotation.encrypted_tables()
            for column in item.columns
        }
        assert {
            ("debtors", "name"),
            ("debtors", "national_id"),
            ("contact_points", "value"),
        } <= found


def test_keys_rotate_command(
    cli_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_keyring: KeyRing
) -> None:
    ring_file = tmp_path / "keyring.json"
    crypto.save_keyring(restore_keyring, ring_file)
    monkeypatch.setenv("RECOUP_KEYRING_FILE", str(ring_file))
    config.get_settings.cache_clear()
    with unit_of_work() as session:
        institution = make_institution(session)
        for number in range(3):
            make_contact_point(
                session, make_debtor(session, institution, name=f"{NAME}{number}"), value=PHONE
            )

    result = CliRunner().invoke(cli, ["keys", "rotate", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 6 rows under key k2; retired: k1." in result.output
    stored = json.loads(ring_file.read_text())
    assert stored["active"] == "k2"
    assert list(stored["keys"]) == ["k2"]
    assert stored["retired"] == ["k1"]

    crypto.set_keyring(crypto.load_keyring(ring_file, create=False))
    with unit_of_work() as session:
        assert _raw_key_ids(session) == {"k2"}
        assert sorted(session.scalars(select(Debtor.name))) == [f"{NAME}{n}" for n in range(3)]
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.sequence)))
    assert actions[-2:] == ["keys.rotate_start", "keys.rotate"]

    again = CliRunner().invoke(cli, ["keys", "rotate"])
    assert again.exit_code == 0, again.output
    assert "retired: k2" in again.output
    monkeypatch.delenv("RECOUP_KEYRING_FILE")
    config.get_settings.cache_clear()
