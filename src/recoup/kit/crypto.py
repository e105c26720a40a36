"""The key ring: PII encryption at rest, keyed-hash lookup, and the audit chain's keys.

A ciphertext is stored as ``<key id>:<base64(nonce || ciphertext+tag)>``; the column
name is bound in as associated data, so a value moved to another column fails to
decrypt. Exact-match search uses an HMAC-SHA256 "blind index" over a normalised value.
The audit chain is keyed with its own HMAC keys (``audit_keys``), never a PII key, so
whoever can write the database but not read this file cannot recompute the chain.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from recoup.config import get_settings


class KeyRingError(RuntimeError):
    """The key ring is missing, malformed or lacks a key a ciphertext needs."""


# Short enough that ``<key id>:<43 base64 characters>`` fits the 64-character hash columns.
_AUDIT_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_AUDIT_KEY_NUMBER = re.compile(r"^a(\d+)$")


@dataclass
class KeyRing:
    """Encryption keys by id, the active one, and the blind-index key."""

    keys: dict[str, bytes]
    active: str
    index_key: bytes
    retired: set[str] = field(default_factory=set)
    # HMAC keys of the audit chain by id; every id ever used stays, so old events verify.
    audit_keys: dict[str, bytes] = field(default_factory=dict)
    audit_active: str | None = None

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise KeyRingError(f"active key {self.active!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if len(key) != 32:
                raise KeyRingError(f"key {key_id!r} must be 32 bytes (AES-256)")
            if ":" in key_id:
                raise KeyRingError(f"key id {key_id!r} may not contain ':'")
        self._check_audit_keys()
        self._ciphers = {key_id: AESGCM(key) for key_id, key in self.keys.items()}

    def _check_audit_keys(self) -> None:
        if self.audit_active is None and self.audit_keys:
            raise KeyRingError("the key ring has audit keys but names no active one")
        if self.audit_active is not None and self.audit_active not in self.audit_keys:
            raise KeyRingError(f"active audit key {self.audit_active!r} is not in the key ring")
        others = {*self.keys.values(), self.index_key}
        for key_id, key in self.audit_keys.items():
            if not _AUDIT_KEY_ID.match(key_id):
                raise KeyRingError(
                    f"audit key id {key_id!r} must be 1-16 letters, digits, '-' or '_'"
                )
            if len(key) != 32:
                raise KeyRingError(f"audit key {key_id!r} must be 32 bytes")
            if key in others:
                raise KeyRingError(f"audit key {key_id!r} must not reuse a PII or index key")

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        """Create a fresh key ring with one random PII key and one random audit key."""
        return cls(
            keys={key_id: AESGCM.generate_key(256)},
            active=key_id,
            index_key=secrets.token_bytes(32),
            audit_keys={"a1": secrets.token_bytes(32)},
            audit_active="a1",
        )

    def active_audit_key(self) -> tuple[str, bytes]:
        """Return the id and bytes of the key new audit events are signed with."""
        if self.audit_active is None:
            raise KeyRingError(
                "the key ring has no audit key: run `recoup audit rotate-key` to add one"
            )
        return self.audit_active, self.audit_keys[self.audit_active]

    def with_new_audit_key(self) -> KeyRing:
        """Return a key ring with a fresh audit key ``a<n>`` made active (older ones kept)."""
        numbers = [
            int(match.group(1))
            for key_id in self.audit_keys
            if (match := _AUDIT_KEY_NUMBER.match(key_id))
        ]
        key_id = f"a{max(numbers, default=0) + 1}"
        return self._replace(
            audit_keys={**self.audit_keys, key_id: secrets.token_bytes(32)}, audit_active=key_id
        )

    def _replace(self, **changes: Any) -> KeyRing:
        fields: dict[str, Any] = {
            "keys": dict(self.keys),
            "active": self.active,
            "index_key": self.index_key,
            "retired": set(self.retired),
            "audit_keys": dict(self.audit_keys),
            "audit_active": self.audit_active,
        }
        return KeyRing(**{**fields, **changes})

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext`` under the active key, bound to ``context``."""
        nonce = os.urandom(12)
        sealed = self._ciphers[self.active].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self.active}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str) -> str:
        """Decrypt a stored ciphertext with whichever key it names."""
        key_id, _, body = token.partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyRingError(f"ciphertext uses key {key_id!r}, which is not in the key ring")
        raw = base64.b64decode(body)
        try:
            return cipher.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as error:
            raise KeyRingError(f"ciphertext for {context} failed authentication") from error

    def key_id_of(self, token: str) -> str:
        """Return the key id a stored ciphertext was written with."""
        return token.partition(":")[0]

    def blind_index(self, normalised: str, *, context: str) -> str:
        """Return the keyed hash used to find ``normalised`` without decrypting."""
        message = f"{context}\x00{normalised}".encode()
        return hmac.digest(self.index_key, message, "sha256").hex()

    def with_new_active_key(self, key_id: str) -> KeyRing:
        """Return a key ring with a fresh key ``key_id`` made active."""
        if key_id in self.keys:
            raise KeyRingError(f"key id {key_id!r} already exists")
        return self._replace(keys={**self.keys, key_id: AESGCM.generate_key(256)}, active=key_id)

    def without_key(self, key_id: str) -> KeyRing:
        """Return a key ring with ``key_id`` retired (removed)."""
        if key_id == self.active:
            raise KeyRingError("cannot retire the active key")
        keys = {k: v for k, v in self.keys.items() if k != key_id}
        return self._replace(keys=keys, retired=self.retired | {key_id})

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            "index_key": base64.b64encode(self.index_key).decode(),
            "retired": sorted(self.retired),
            "audit_keys": {k: base64.b64encode(v).decode() for k, v in self.audit_keys.items()},
            "audit_active": self.audit_active,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRing:
        try:
            return cls(
                keys={k: base64.b64decode(v) for k, v in data["keys"].items()},
                active=data["active"],
                index_key=base64.b64decode(data["index_key"]),
                retired=set(data.get("retired", [])),
                audit_keys={k: base64.b64decode(v) for k, v in data.get("audit_keys", {}).items()},
                audit_active=data.get("audit_active"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise KeyRingError(f"malformed key ring: {error}") from error


def save_keyring(ring: KeyRing, path: Path) -> None:
    """Write the key ring atomically with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(ring.to_json(), indent=2))
    temporary.chmod(0o600)
    temporary.replace(path)


def load_keyring(path: Path, *, create: bool) -> KeyRing:
    """Read the key ring at ``path``; create one there if allowed and absent."""
    if not path.exists():
        if not create:
            raise KeyRingError(
                f"no key ring at {path}: set RECOUP_KEYRING_FILE to your key ring "
                "(production never generates keys by itself)"
            )
        ring = KeyRing.generate()
        save_keyring(ring, path)
        return ring
    try:
        ring = KeyRing.from_json(json.loads(path.read_text()))
    except json.JSONDecodeError as error:
        raise KeyRingError(f"key ring {path} is not valid JSON: {error}") from error
    if create and ring.audit_active is None:
        # A development ring from before the audit chain was keyed gains its audit key.
        ring = ring.with_new_audit_key()
        save_keyring(ring, path)
    return ring


_lock = threading.Lock()
_current: KeyRing | None = None


def get_keyring() -> KeyRing:
    """Return the process key ring, loading (in development, creating) it on first use."""
    global _current
    with _lock:
        if _current is None:
            settings = get_settings()
            assert settings.keyring_file is not None
            _current = load_keyring(settings.keyring_file, create=settings.is_development)
        return _current


def set_keyring(ring: KeyRing | None) -> None:
    """Replace the process key ring (after rotation, and in tests)."""
    global _current
    with _lock:
        _current = ring


def normalise_for_index(value: str) -> str:
    """Normalise a value before hashing so equal things hash equal."""
    return "".join(value.split()).upper()


def blind_index(value: str, *, context: str) -> str:
    """Return the keyed lookup hash of ``value`` with the process key ring."""
    return get_keyring().blind_index(normalise_for_index(value), context=context)


class Encrypted(TypeDecorator[str]):
    """A text column encrypted at rest with the process key ring."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:  # noqa: ARG002
        if value is None:
            return None
        return get_keyring().encrypt(value, context=self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:  # noqa: ARG002
        if value is None:
            return None
        return get_keyring().decrypt(value, context=self.context)


class BlindIndex(TypeDecorator[str]):
    """A fixed-width column for keyed hashes (64 hex characters)."""

    impl = String(64)
    cache_ok = True
