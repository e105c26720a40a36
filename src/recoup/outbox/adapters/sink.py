"""A local sink: records each message in a file instead of sending it (demo and tests)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from recoup.db import create_owner_only
from recoup.outbox.adapters.base import Accepted, OutgoingMessage


class LogSink:
    """Deliver by appending one JSON line per message to ``path``, once per key.

    The file stands in for a provider, so it holds what a provider would get (the text and
    the address); it is created readable by its owner only.
    """

    def __init__(self, path: Path, *, name: str) -> None:
        self.name = name
        self.path = path
        self._lock = threading.Lock()
        self._keys: set[str] | None = None

    def _known(self) -> set[str]:
        if self._keys is None:
            keys: set[str] = set()
            if self.path.exists():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        keys.add(json.loads(line)["key"])
            self._keys = keys
        return self._keys

    def send(self, message: OutgoingMessage) -> Accepted:
        """Record the message (a key already recorded is not recorded again)."""
        with self._lock:
            known = self._known()
            if message.key not in known:
                if not self.path.exists():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    create_owner_only(self.path)
                line = json.dumps(
                    {
                        "key": message.key,
                        "to": message.to,
                        "subject": message.subject,
                        "text": message.text,
                    },
                    ensure_ascii=False,
                )
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(descriptor, (line + "\n").encode())
                finally:
                    os.close(descriptor)
                known.add(message.key)
        return Accepted(f"log-{message.key[:24]}", "delivered")

    def lookup(self, message: OutgoingMessage) -> Accepted | None:
        """Return the record of the message's key, if it was recorded."""
        with self._lock:
            self._keys = None
            if message.key in self._known():
                return Accepted(f"log-{message.key[:24]}", "delivered")
        return None

    def close(self) -> None:
        """Nothing to release."""
