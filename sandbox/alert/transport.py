"""Where emails go: an SMTP server (``SANDBOX_SMTP_URL``) or a Maildir under ``var/``.

A transport either accepts a message for one recipient or raises ``TemporaryFailure`` (try again
later: 4xx replies, timeouts, refused or dropped connections, a misconfigured login) or
``PermanentFailure`` (the server refused this recipient or message with a 5xx reply).

``SANDBOX_SMTP_URL`` forms (user and password are percent-decoded; ``timeout`` in seconds):

    smtp://host[:25]                      plain (or a relay on localhost)
    smtp+starttls://user:pass@host[:587]  STARTTLS, required
    smtps://user:pass@host[:465]          TLS from the first byte
    ...?timeout=10
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.config import Settings

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class DeliveryFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryFailure):
    pass


class PermanentFailure(DeliveryFailure):
    pass


class Transport(Protocol):
    def send(self, message: EmailMessage, recipient: str) -> None: ...

    def close(self) -> None:
        """Release connections; the next send opens them again."""


@dataclass(frozen=True)
class SmtpConfig:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(
                f"SANDBOX_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://; got {scheme or 'no'} scheme"
            )
        if not parts.hostname:
            raise ValueError("SANDBOX_SMTP_URL names no host")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError("SANDBOX_SMTP_URL has an invalid port") from None
        query = parse_qs(parts.query)
        unknown = set(query) - {"timeout"}
        if unknown:
            raise ValueError(f"SANDBOX_SMTP_URL has unknown parameters: {', '.join(sorted(unknown))}")
        timeout = DEFAULT_TIMEOUT_SECONDS
        if "timeout" in query:
            try:
                timeout = float(query["timeout"][-1])
            except ValueError:
                raise ValueError("SANDBOX_SMTP_URL timeout must be a number of seconds") from None
            if not 0 < timeout <= 600:
                raise ValueError("SANDBOX_SMTP_URL timeout must be between 0 and 600 seconds")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(scheme, parts.hostname, port, username, password, timeout)

    def describe(self) -> str:
        """The URL without its password, for logs."""
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


def _classify(exc: smtplib.SMTPResponseException) -> DeliveryFailure:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    reason = f"{exc.smtp_code} {' '.join(text.split())}"
    return PermanentFailure(reason) if 500 <= exc.smtp_code < 600 else TemporaryFailure(reason)


def _timed_out(exc: BaseException) -> bool:
    """smtplib reports a read timeout as "server disconnected"; the timeout is in the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class SmtpTransport:
    """One connection reused across the sends of a batch, reopened after any failure."""

    def __init__(self, config: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._context())
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            smtp.ehlo()
            if cfg.scheme == "smtp+starttls":
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if cfg.username is not None:
                smtp.login(cfg.username, cfg.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage, recipient: str) -> None:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            # The connection is still good (the client reset the transaction); keep it.
            code, text = exc.recipients.get(recipient, (550, b"refused"))
            raise _classify(smtplib.SMTPResponseException(code, text)) from exc
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as exc:
            # Our configuration is wrong, not the message: retry, so fixing the settings recovers.
            self.close()
            raise TemporaryFailure(f"SMTP login or STARTTLS failed at {self.config.describe()}: {exc}") from exc
        except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
            # The server turned the connection away (even with a 5xx): nothing to do with this
            # message, so try again later.
            self._drop()
            raise TemporaryFailure(f"{exc.smtp_code} from {self.config.describe()} on connecting: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            # A refusal of the sender or the data: start the next send afresh.
            self.close()
            raise _classify(exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Timed out, refused, reset, unreachable, TLS errors, a server that hung up.
            self._drop()
            if _timed_out(exc):
                raise TemporaryFailure(
                    f"timed out after {self.config.timeout:g} s talking to {self.config.describe()}"
                ) from exc
            raise TemporaryFailure(f"{exc.__class__.__name__} talking to {self.config.describe()}: {exc}") from exc

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _drop(self) -> None:
        """Close without QUIT: the connection is broken or the server is not answering."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


class MaildirTransport:
    """Writes each message into a Maildir (``new/``) that any mail client can open."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message: EmailMessage, recipient: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(self.path, create=True)
            # Maildir files use the local line ending, not SMTP's CRLF.
            box.add(message.as_bytes(policy=message.policy.clone(linesep="\n")))
        except OSError as exc:
            raise TemporaryFailure(f"cannot write to the Maildir {self.path}: {exc}") from exc

    def close(self) -> None:
        return None


def transport_for(settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> Transport:
    """SMTP when ``SANDBOX_SMTP_URL`` is set, otherwise the Maildir under ``var/``; a malformed URL
    is refused here (ValueError), at start-up, not at the first alert."""
    if settings.smtp_url:
        return SmtpTransport(SmtpConfig.parse(settings.smtp_url), ssl_context=ssl_context)
    return MaildirTransport(settings.maildir)
