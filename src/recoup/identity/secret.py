"""The signing secret for tokens, cookies and CSRF; the start-up refusal of weak secrets."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

from recoup.config import Settings, get_settings
from recoup.identity.rules import secret_problem
from recoup.kit import crypto

MIN_SECRET_LENGTH = 32
# Values people paste from examples; never accepted outside development.
KNOWN_DEFAULT_SECRETS = frozenset(
    {"", "change-me", "changeme", "change_me", "secret", "dev", "development", "insecure", "recoup"}
)
SECRET_FILE_NAME = "secret_key"


class InsecureConfiguration(RuntimeError):
    """Recoup refuses to run outside development with a missing or default secret or key ring."""


_lock = threading.Lock()
_cache: dict[tuple[str, str, str], str] = {}


def _weak(value: str) -> bool:
    if value.strip().lower() in KNOWN_DEFAULT_SECRETS:
        return True
    return secret_problem(value, min_length=MIN_SECRET_LENGTH) is not None


def _development_secret(data_dir: Path) -> str:
    """Read, or create once, the secret kept under the data folder in development."""
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        stored = path.read_text().strip()
        if not _weak(stored):
            return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(value)
    temporary.chmod(0o600)
    temporary.replace(path)
    return value


def secret_key(settings: Settings | None = None) -> str:
    """Return RECOUP_SECRET_KEY, or in development a secret generated under RECOUP_DATA_DIR."""
    settings = settings or get_settings()
    cache_key = (settings.env.value, settings.secret_key, str(settings.data_dir))
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None:
            return cached
        if not _weak(settings.secret_key):
            value = settings.secret_key
        elif settings.is_development:
            value = _development_secret(settings.data_dir)
        else:
            problem = secret_problem(settings.secret_key, min_length=MIN_SECRET_LENGTH)
            raise InsecureConfiguration(
                f"RECOUP_SECRET_KEY is {problem or 'missing or a known default'}"
                "; set it to a long random value, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        _cache[cache_key] = value
        return value


def check_startup(settings: Settings | None = None) -> None:
    """Refuse to start outside development without a strong secret and a key ring."""
    settings = settings or get_settings()
    secret_key(settings)
    if settings.is_development:
        return
    assert settings.keyring_file is not None
    try:
        # The file itself, not a ring already in memory: a restart must find it too.
        ring = crypto.load_keyring(settings.keyring_file, create=False)
        ring.active_audit_key()
    except crypto.KeyRingError as error:
        raise InsecureConfiguration(str(error)) from error
