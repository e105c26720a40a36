"""A real local HTTP receiver (a thread server) that verifies webhook signatures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from recoup.webhooks import rules


@dataclass
class Receiver:
    """What the receiver got, and the answers it gives (status codes, in order)."""

    secret: str = ""
    answers: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    url: str = ""
    # Where a 3xx answer points.
    location: str = ""

    def answer(self) -> int:
        return self.answers.pop(0) if self.answers else 200


@contextmanager
def receiver() -> Iterator[Receiver]:
    """Serve on 127.0.0.1 in a thread; verify each delivery like an integrator would."""
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            authentic = rules.verify(
                state.secret,
                timestamp=self.headers.get("Recoup-Timestamp", ""),
                body=body,
                signature_header=self.headers.get("Recoup-Signature", ""),
                now=time.time(),
            )
            with lock:
                if not authentic:
                    state.refused += 1
                    status = 401
                else:
                    status = state.answer()
                    state.received.append(
                        {
                            "status": status,
                            "event_id": self.headers["Recoup-Event-Id"],
                            "attempt": int(self.headers["Recoup-Delivery-Attempt"]),
                            "body": json.loads(body),
                        }
                    )
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
