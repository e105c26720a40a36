"""Local providers the tests start: an SMS gateway / Twilio look-alike and an SMTP server.

Each counts what it delivered, so a test can prove a message left exactly once.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class SmsProvider:
    """What the local SMS server received and delivered."""

    deliveries: Counter[str] = field(default_factory=Counter)
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    twilio: list[dict[str, str]] = field(default_factory=list)
    fail_next: int = 0
    # Take the next messages, then answer 500 as if the answer were lost.
    accept_then_fail: int = 0
    refuse_with: tuple[int, dict[str, Any]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self.deliveries.values())


def _handler(provider: SmsProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one write, without Nagle: a keep-alive client otherwise waits
        # for the delayed ACK (about 40 ms) on every request.
        disable_nagle_algorithm = True
        wbufsize = 1 << 16

        def log_message(self, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: dict[str, Any] | None) -> None:
            data = json.dumps(body or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            body = self._body()
            with provider.lock:
                if provider.fail_next > 0:
                    provider.fail_next -= 1
                    self._answer(503, {"error": "busy"})
                    return
                if provider.refuse_with is not None:
                    self._answer(*provider.refuse_with)
                    return
                if self.path == "/messages":
                    payload = json.loads(body)
                    key = self.headers.get("Idempotency-Key") or payload["reference"]
                    found = provider.by_key.get(key)
                    if found is None:
                        found = {"id": f"G{len(provider.by_key) + 1}", "status": "accepted"}
                        provider.by_key[key] = found
                        provider.deliveries[key] += 1
                    self._answer(*self._lost_or(200, found))
                    return
                if self.path.endswith("/Messages.json"):
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    sid = f"SM{len(provider.twilio) + 1:032d}"
                    provider.twilio.append({**form, "sid": sid})
                    provider.deliveries[f"{form['To']}|{form['Body']}"] += 1
                    self._answer(*self._lost_or(201, {"sid": sid, "status": "queued"}))
                    return
            self._answer(404, {})

        def _lost_or(self, status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            if provider.accept_then_fail > 0:
                provider.accept_then_fail -= 1
                return 500, {"error": "internal error after the message was taken"}
            return status, body

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            with provider.lock:
                if url.path == "/messages":
                    found = provider.by_key.get(query.get("reference", ""))
                    self._answer(200 if found else 404, found)
                    return
                if url.path.endswith("/Messages.json"):
                    messages = [
                        {"sid": m["sid"], "body": m["Body"], "to": m["To"], "status": "sent"}
                        for m in provider.twilio
                        if m["To"] == query.get("To")
                    ]
                    self._answer(200, {"messages": messages})
                    return
            self._answer(404, {})

    return Handler


@contextmanager
def sms_server() -> Iterator[tuple[str, SmsProvider]]:
    """Serve the local SMS provider on a free port; yield its base URL and its record."""
    provider = SmsProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", provider
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """What the local SMTP server accepted."""

    messages: list[Message] = field(default_factory=list)
    refuse_with: str | None = None

    def count(self, message_id: str) -> int:
        return sum(1 for message in self.messages if message["Message-ID"] == message_id)


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.mailbox.refuse_with is not None:
            return self.mailbox.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mailbox.messages.append(message_from_bytes(envelope.original_content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and its key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_server(*, tls: tuple[Path, Path] | None = None) -> Iterator[tuple[int, Mailbox]]:
    """Run an aiosmtpd server on a free port; yield the port and its mailbox.

    With ``tls`` (a certificate and its key) the server offers STARTTLS and requires it.
    """
    mailbox = Mailbox()
    port = free_port()
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
    controller = Controller(
        _Handler(mailbox),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=context is not None,
    )
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()
