"""Transports against a real SMTP server on loopback, and the Maildir."""

from __future__ import annotations

import mailbox
import socket
import threading
import time
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from sandbox.alert.render import MAIL_POLICY
from sandbox.alert.transport import (
    MaildirTransport,
    PermanentFailure,
    SmtpConfig,
    SmtpTransport,
    TemporaryFailure,
    transport_for,
)
from tests.alert.conftest import Certificate, SmtpServer, committed_settings, free_port


def message(recipient: str = "sup@bureau.example", message_id: str = "<m1@sandbox.local>") -> EmailMessage:
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = "Breaker tripped"
    msg["From"] = "alerts@bureau.example"
    msg["To"] = recipient
    msg["Message-ID"] = message_id
    msg.set_content("A breaker tripped.\n")
    return msg


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.bureau.example", ("smtp", "mail.bureau.example", 25, None, None, 10.0)),
        ("smtp+starttls://u:p@mx.example", ("smtp+starttls", "mx.example", 587, "u", "p", 10.0)),
        ("smtps://alerts%40bureau.example:p%40ss%3Aw%2Frd@mx.example:2465?timeout=3.5",
         ("smtps", "mx.example", 2465, "alerts@bureau.example", "p@ss:w/rd", 3.5)),
    ],
)  # fmt: skip
def test_smtp_urls_are_parsed_with_decoded_credentials(url: str, expected: tuple[object, ...]) -> None:
    config = SmtpConfig.parse(url)
    assert (config.scheme, config.host, config.port, config.username, config.password, config.timeout) == expected
    assert "p@ss" not in config.describe() and ":p@" not in config.describe()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mx.example", "must start with smtp://"),
        ("mx.example:25", "must start with smtp://"),
        ("smtp://", "names no host"),
        ("smtp://mx.example:99999", "invalid port"),
        ("smtp://mx.example?timeout=soon", "number of seconds"),
        ("smtp://mx.example?timeout=0", "between 0 and 600"),
        ("smtp://mx.example?tls=yes", "unknown parameters: tls"),
    ],
)
def test_malformed_smtp_urls_are_refused_at_start_up(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        transport_for(committed_settings(tmp_path, smtp_url=url))


def test_the_transport_is_smtp_when_configured_else_the_maildir_under_var(tmp_path: Path) -> None:
    assert isinstance(transport_for(committed_settings(tmp_path, smtp_url="smtp://127.0.0.1:2525")), SmtpTransport)
    maildir = transport_for(committed_settings(tmp_path))
    assert isinstance(maildir, MaildirTransport) and maildir.path == tmp_path / "var" / "maildir"


def test_an_accepting_server_receives_the_message_for_the_envelope_recipient_only(smtp_server: SmtpServer) -> None:
    transport = smtp_server.transport()
    transport.send(message("a@bureau.example", "<a@sandbox.local>"), "a@bureau.example")
    transport.send(message("b@bureau.example", "<b@sandbox.local>"), "b@bureau.example")
    transport.close()
    assert [(r.rcpt_tos, r.message_id) for r in smtp_server.received] == [
        (("a@bureau.example",), "<a@sandbox.local>"),
        (("b@bureau.example",), "<b@sandbox.local>"),
    ]
    assert smtp_server.received[0].mail_from == "alerts@bureau.example"


@pytest.mark.parametrize(
    ("mode", "failure", "reason"),
    [
        ("temporary", TemporaryFailure, "451 4.3.0 mailbox temporarily unavailable"),
        ("refuse550", PermanentFailure, "550 5.1.1 no such mailbox here"),
        ("refuse554", PermanentFailure, "554 5.7.1 message refused by policy"),
    ],
)
def test_replies_are_classified_4xx_temporary_5xx_permanent(
    smtp_server: SmtpServer, mode: str, failure: type[Exception], reason: str
) -> None:
    smtp_server.handler.mode = mode
    transport = smtp_server.transport()
    with pytest.raises(failure) as caught:
        transport.send(message(), "sup@bureau.example")
    assert str(caught.value).startswith(reason)
    # The same transport recovers as soon as the server does.
    smtp_server.handler.mode = "accept"
    transport.send(message(), "sup@bureau.example")
    transport.close()
    assert len(smtp_server.received) == 1


def test_a_stalled_server_is_a_temporary_failure_after_the_client_timeout(smtp_server: SmtpServer) -> None:
    smtp_server.handler.mode = "stall"
    smtp_server.handler.stall_seconds = 1.5
    transport = smtp_server.transport(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TemporaryFailure, match=r"timed out after 0.3 s"):
        transport.send(message(), "sup@bureau.example")
    assert time.monotonic() - started < 1.2
    transport.close()


def test_a_server_that_is_down_is_a_temporary_failure() -> None:
    transport = SmtpTransport(SmtpConfig.parse(f"smtp://127.0.0.1:{free_port()}?timeout=1"))
    with pytest.raises(TemporaryFailure, match="ConnectionRefusedError"):
        transport.send(message(), "sup@bureau.example")


@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_starttls_and_implicit_tls_with_credentials(
    tls_smtp_server: tuple[SmtpServer, SmtpServer], certificate: Certificate
) -> None:
    starttls, implicit = tls_smtp_server
    for server, scheme in ((starttls, "smtp+starttls"), (implicit, "smtps")):
        transport = SmtpTransport(
            SmtpConfig.parse(server.url(scheme, credentials=True)), ssl_context=certificate.client_context()
        )
        transport.send(message(message_id=f"<{scheme}@sandbox.local>"), "sup@bureau.example")
        transport.close()
    assert [r.message_id for r in starttls.received] == ["<smtp+starttls@sandbox.local>", "<smtps@sandbox.local>"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_wrong_credentials_and_an_untrusted_certificate_are_temporary(
    tls_smtp_server: tuple[SmtpServer, SmtpServer], certificate: Certificate
) -> None:
    """Our configuration is at fault, not the message: fixing the settings must let it through."""
    starttls, implicit = tls_smtp_server
    wrong = starttls.url("smtp+starttls", credentials=True).replace("p%40ss", "nope")
    transport = SmtpTransport(SmtpConfig.parse(wrong), ssl_context=certificate.client_context())
    with pytest.raises(TemporaryFailure, match="login or STARTTLS failed"):
        transport.send(message(), "sup@bureau.example")
    untrusted = SmtpTransport(SmtpConfig.parse(implicit.url("smtps", credentials=True)))  # system trust store
    with pytest.raises(TemporaryFailure, match="SSLCertVerificationError"):
        untrusted.send(message(), "sup@bureau.example")
    plain = SmtpTransport(SmtpConfig.parse(starttls.url("smtp", credentials=True)))
    with pytest.raises(TemporaryFailure):
        plain.send(message(), "sup@bureau.example")  # the server demands STARTTLS first
    assert starttls.received == []


def test_the_maildir_transport_writes_a_message_any_mail_client_can_read(tmp_path: Path) -> None:
    path = tmp_path / "var" / "maildir"
    transport = MaildirTransport(path)
    transport.send(message(message_id="<md@sandbox.local>"), "sup@bureau.example")
    assert {p.name for p in path.iterdir()} == {"cur", "new", "tmp"}
    (file,) = (path / "new").iterdir()
    raw = file.read_bytes()
    assert b"\r\n" not in raw  # local line endings in the file
    parsed = BytesParser(policy=default).parsebytes(raw)
    assert parsed["Message-ID"] == "<md@sandbox.local>" and parsed["To"] == "sup@bureau.example"
    (stored,) = mailbox.Maildir(path, create=False)
    assert stored["Subject"] == "Breaker tripped"


def test_an_unwritable_maildir_is_a_temporary_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "var"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(TemporaryFailure, match="cannot write to the Maildir"):
        MaildirTransport(blocker / "maildir").send(message(), "sup@bureau.example")


def test_a_server_turning_connections_away_is_temporary_even_with_a_5xx_greeting() -> None:
    """A 554 greeting says the server will not talk to anyone now, not that this message is bad."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def greet() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"554 5.3.2 no service at the moment\r\n")
                connection.recv(1024)

        thread = threading.Thread(target=greet)
        thread.start()
        port = listener.getsockname()[1]
        transport = SmtpTransport(SmtpConfig.parse(f"smtp://127.0.0.1:{port}?timeout=2"))
        with pytest.raises(TemporaryFailure, match=r"554 from smtp://127\.0\.0\.1"):
            transport.send(message(), "sup@bureau.example")
        thread.join(5)
