"""A real SMTP server on loopback (aiosmtpd) in the modes the delivery must survive, and helpers
to emit alerts and run delivery passes."""

from __future__ import annotations

import asyncio
import copy
import socket
import ssl
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sandbox.alert import outbox
from sandbox.alert.delivery import DeliveryReport, deliver_due
from sandbox.alert.render import Composer
from sandbox.alert.transport import SmtpConfig, SmtpTransport
from sandbox.config import Settings
from sandbox.db import Database
from tests.alert.samples import SAMPLES
from tests.support import NOW

SMTP_USER = "alerts@bureau.example"
SMTP_PASSWORD = "p@ss:w/rd 1"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float  # time.perf_counter() when the server accepted it

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Handler:
    """accept; temporary (451 at RCPT); refuse550 (at RCPT); refuse554 (at end of DATA); stall
    (reads the message, then answers nothing for ``stall_seconds``: a lost reply; the message
    counts as received when ``stall_records``)."""

    mode: str = "accept"
    stall_seconds: float = 2.0
    stall_records: bool = True
    data_delay: float = 0.0
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> reply, whatever the mode
    received: list[Received] = field(default_factory=list)
    attempts: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        self.attempts += 1
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        if self.mode == "temporary":
            return "451 4.3.0 mailbox temporarily unavailable, try again later"
        if self.mode == "refuse550":
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.mode == "refuse554":
            return "554 5.7.1 message refused by policy"
        content = envelope.original_content or b""
        if self.mode == "stall":
            if self.stall_records:
                self._keep(envelope, content)
            await asyncio.sleep(self.stall_seconds)
            return "250 OK (too late)"
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self._keep(envelope, content)
        return "250 OK queued"

    def _keep(self, envelope: Envelope, content: bytes) -> None:
        self.received.append(
            Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content), time.perf_counter())
        )

    def message_ids(self) -> Counter[str]:
        return Counter(r.message_id for r in self.received)


@dataclass
class SmtpServer:
    handler: Handler
    port: int
    host: str = "127.0.0.1"

    def url(self, scheme: str = "smtp", *, timeout: float = 2.0, credentials: bool = False) -> str:
        user = f"{quote(SMTP_USER, safe='')}:{quote(SMTP_PASSWORD, safe='')}@" if credentials else ""
        return f"{scheme}://{user}{self.host}:{self.port}?timeout={timeout:g}"

    def transport(self, *, timeout: float = 2.0) -> SmtpTransport:
        return SmtpTransport(SmtpConfig.parse(self.url(timeout=timeout)))

    @property
    def received(self) -> list[Received]:
        return self.handler.received


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(handler, port)
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (openssl), trusted by the tests' client context."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


@pytest.fixture
def tls_smtp_server(certificate: Certificate) -> Iterator[tuple[SmtpServer, SmtpServer]]:
    """(STARTTLS on a plain port, TLS from the first byte), both requiring our login."""
    handler = Handler()
    starttls_port, tls_port = free_port(), free_port()
    starttls = Controller(
        handler,
        hostname="127.0.0.1",
        port=starttls_port,
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
    implicit = _TLSController(
        handler,
        hostname="127.0.0.1",
        port=tls_port,
        ssl_context=certificate.server_context(),
        authenticator=_authenticate,
        auth_required=True,
        # aiosmtpd cannot tell that an implicit-TLS connection is encrypted.
        auth_require_tls=False,
    )
    implicit.client_context = certificate.client_context()
    starttls.start()
    implicit.start()
    try:
        yield SmtpServer(handler, starttls_port), SmtpServer(handler, tls_port)
    finally:
        starttls.stop()
        implicit.stop()


class _TLSController(Controller):
    """aiosmtpd checks that its server is up by connecting with the server's own TLS context,
    which cannot act as a client; this one uses a client context for the check."""

    client_context: ssl.SSLContext | None = None

    def _trigger_server(self) -> None:
        assert self.client_context is not None
        with (
            socket.create_connection((self.hostname, self.port), 1.0) as raw,
            self.client_context.wrap_socket(raw, server_hostname=self.hostname) as sock,
        ):
            sock.recv(1024)


def committed_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "var_dir": tmp_path / "var",
        "secret_key": "test-secret-key-that-is-long-enough-0123",
        "now": NOW,
        "log_requests": False,
        "base_url": "https://sandbox.bureau.example",
        "mail_from": "Sandbox alerts <alerts@bureau.example>",
    }
    values.update(overrides)
    return Settings(**values)


COMPOSER = Composer(mail_from="Sandbox alerts <alerts@bureau.example>", base_url="https://sandbox.bureau.example")


def trip_context(**pilot: str) -> dict[str, Any]:
    context = copy.deepcopy(SAMPLES["breaker.tripped"])
    context["pilot"].update(pilot)
    return context


def emit_committed(
    database: Database,
    recipients: Sequence[str] = ("supervisor@bureau.example",),
    *,
    at: datetime = NOW,
    kind: str = "breaker.tripped",
    context: dict[str, Any] | None = None,
    subject: str = "Breaker tripped: PILOT-2026-001",
    pilot_id: uuid.UUID | None = None,
    dedupe_key: str | None = None,
    count: int = 1,
) -> list[uuid.UUID]:
    """Emit ``count`` alerts in one unit of work (committed) and return their ids."""
    ids = []
    with database.unit_of_work() as session:
        for _ in range(count):
            alert = outbox.emit(
                session,
                kind=kind,
                severity="critical",
                pilot_id=pilot_id,
                subject=subject,
                context=context if context is not None else trip_context(),
                recipients=list(recipients),
                dedupe_key=dedupe_key or f"test:{uuid.uuid4().hex}",
                at=at,
            )
            assert alert is not None
            ids.append(alert.id)
    return ids


def deliver(
    database: Database, server: SmtpServer, *, now: datetime = NOW, timeout: float = 2.0, **kwargs: Any
) -> DeliveryReport:
    return deliver_due(
        database, server.transport(timeout=timeout), COMPOSER, now=now, worker_id="test-worker", **kwargs
    )


def wait_until(predicate: Any, *, timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
