import json

import pytest

from recoup.kit.crypto import KeyRing, KeyRingError, load_keyring, save_keyring


class TestKeyRing:
    def test_round_trip_and_key_id_tag(self) -> None:
        ring = KeyRing.generate("k1")
        token = ring.encrypt("13812345678", context="contact_points.value")
        assert token.startswith("k1:")
        assert "13812345678" not in token
        assert ring.decrypt(token, context="contact_points.value") == "13812345678"

    def test_ciphertext_is_bound_to_its_column(self) -> None:
        ring = KeyRing.generate()
        token = ring.encrypt("张伟", context="debtors.name")
        with pytest.raises(KeyRingError, match="failed authentication"):
            ring.decrypt(token, context="debtors.employer")

    def test_rotation_keeps_old_data_readable_until_retired(self) -> None:
        ring = KeyRing.generate("k1")
        old = ring.encrypt("secret", context="c")
        rotated = ring.with_new_active_key("k2")
        assert rotated.decrypt(old, context="c") == "secret"
        new = rotated.encrypt("secret", context="c")
        assert rotated.key_id_of(new) == "k2"
        retired = rotated.without_key("k1")
        with pytest.raises(KeyRingError, match="not in the key ring"):
            retired.decrypt(old, context="c")
        assert retired.decrypt(new, context="c") == "secret"

    def test_blind_index_is_stable_and_keyed(self) -> None:
        ring = KeyRing.generate()
        other = KeyRing.generate()
        assert ring.blind_index("x", context="c") == ring.blind_index("x", context="c")
        assert ring.blind_index("x", context="c") != other.blind_index("x", context="c")

    def test_cannot_retire_active_key(self) -> None:
        with pytest.raises(KeyRingError):
            KeyRing.generate("k1").without_key("k1")

    def test_file_round_trip_and_refusal_to_invent_keys(self, tmp_path) -> None:
        path = tmp_path / "ring.json"
        with pytest.raises(KeyRingError, match="RECOUP_KEYRING_FILE"):
            load_keyring(path, create=False)
        created = load_keyring(path, create=True)
        assert oct(path.stat().st_mode)[-3:] == "600"
        assert load_keyring(path, create=False).index_key == created.index_key
        save_keyring(created.with_new_active_key("k2"), path)
        assert load_keyring(path, create=False).active == "k2"


class TestAuditKeys:
    def test_audit_keys_are_their_own_and_survive_pii_rotation(self, tmp_path) -> None:
        ring = KeyRing.generate("k1")
        audit_id, audit_key = ring.active_audit_key()
        assert audit_key not in ring.keys.values()
        assert audit_key != ring.index_key
        rotated = ring.with_new_active_key("k2").without_key("k1")
        assert rotated.active_audit_key() == (audit_id, audit_key)
        path = tmp_path / "ring.json"
        save_keyring(rotated.with_new_audit_key(), path)
        loaded = load_keyring(path, create=False)
        assert loaded.audit_keys[audit_id] == audit_key
        assert loaded.active_audit_key()[0] != audit_id

    def test_a_pii_key_cannot_double_as_the_audit_key(self) -> None:
        ring = KeyRing.generate("k1")
        with pytest.raises(KeyRingError, match="must not reuse a PII or index key"):
            ring._replace(audit_keys={"a1": ring.keys["k1"]}, audit_active="a1")

    def test_an_older_ring_file_gains_an_audit_key_only_in_development(self, tmp_path) -> None:
        path = tmp_path / "ring.json"
        document = KeyRing.generate("k1").to_json()
        del document["audit_keys"], document["audit_active"]
        path.write_text(json.dumps(document))
        production = load_keyring(path, create=False)
        with pytest.raises(KeyRingError, match="recoup audit rotate-key"):
            production.active_audit_key()
        development = load_keyring(path, create=True)
        assert development.active_audit_key()[0] == "a1"
        assert load_keyring(path, create=False).audit_keys == development.audit_keys
