"""Alert emails: Jinja2 templates (plain text, and autoescaped HTML) and the MIME message.

Each alert kind has ``<kind>.txt`` and ``<kind>.html`` under ``templates/``; the context each needs
is listed at the top of its ``.txt``. Undefined names are errors (``StrictUndefined``), and
``check`` renders both parts when the alert is emitted, so a missing key fails the event's own
transaction in tests instead of an email at night.

Headers are built by the standard library's ``email`` package, which refuses CR or LF in a header
value; on top of that every header value taken from data passes ``clean_header`` first, so a
pilot title such as ``"X\\r\\nBcc: someone"`` stays one line of the Subject.
"""

from __future__ import annotations

import email.policy
import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from sandbox.clock import BUREAU_TZ
from sandbox.config import Settings

TEMPLATES = Path(__file__).with_name("templates")

KINDS: Mapping[str, str] = {
    "breaker.tripped": "a breaker tripped (or tripped again in probation); the pilot is suspended",
    "breaker.condition_cleared": "the condition behind a tripped breaker cleared",
    "breaker.reset": "a supervisor reset a breaker; it is in probation",
    "breaker.reminder": "a tripped breaker is still unacknowledged",
    "breaker.escalated": "a tripped breaker is unacknowledged past the escalation delay",
    "rule.warning": "a warning rule fired",
    "pilot.suspended": "a pilot was suspended",
    "pilot.resumed": "a pilot was resumed",
    "pilot.terminated": "a pilot was terminated",
    "filing.due_soon": "a filing is due soon",
    "filing.overdue": "a filing is overdue",
    "application.decided": "an application was approved or rejected",
    "exemption.assessed": "a due-diligence exemption was assessed",
    "exemption.decided": "an exemption was granted or denied",
}

# Names the renderer supplies; an alert's context may not use them.
RESERVED_NAMES = frozenset({"alert", "pilot_url", "base_url", "outcome_labels"})

OUTCOME_LABELS = {
    "tripped": "tripped",
    "repeat_trip": "tripped again in probation (repeat trip)",
    "warning": "warning",
    "condition_cleared": "condition cleared",
    "watch": "breaching, not yet tripped",
}

# SMTP line endings; 7bit so that non-ASCII bodies are encoded (quoted-printable or base64) and
# pass any relay, including ones without 8BITMIME.
MAIL_POLICY = email.policy.SMTP.clone(cte_type="7bit")

# Anything that could end a header line or confuse a reader: C0/C1 controls (CR, LF, TAB, NUL,
# NEL...) and the Unicode line and paragraph separators.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")


class AlertTemplateError(ValueError):
    """An alert's kind has no template, or its context lacks what the template needs."""


def clean_header(value: str, limit: int = 300) -> str:
    """One line of text, safe as a header value: controls and line breaks become spaces."""
    text = _SPACES.sub(" ", _UNSAFE.sub(" ", value)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _when(value: datetime | str) -> str:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(BUREAU_TZ)
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({local:%Y-%m-%d %H:%M} Beijing time)"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["when"] = _when
    env.globals["outcome_labels"] = OUTCOME_LABELS
    return env


@dataclass(frozen=True)
class AlertContent:
    """What the templates need of an alert, detached from any session."""

    id: uuid.UUID
    kind: str
    severity: str
    subject: str
    pilot_id: uuid.UUID | None
    context: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(content: AlertContent, *, base_url: str) -> Rendered:
    if content.kind not in KINDS:
        raise AlertTemplateError(f"unknown alert kind {content.kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    clash = RESERVED_NAMES & content.context.keys()
    if clash:
        raise AlertTemplateError(f"an alert's context may not use the reserved names {sorted(clash)}")
    base = base_url.rstrip("/")
    subject = clean_header(content.subject)
    names = {
        **content.context,
        "alert": {
            "id": str(content.id),
            "kind": content.kind,
            "severity": content.severity,
            "subject": subject,
            "created_at": content.created_at,
        },
        "base_url": base,
        "pilot_url": f"{base}/pilots/{content.pilot_id}" if content.pilot_id is not None else None,
    }
    env = environment()
    try:
        text = env.get_template(f"{content.kind}.txt").render(names)
        html = env.get_template(f"{content.kind}.html").render(names)
    except TemplateError as exc:
        raise AlertTemplateError(f"cannot render alert {content.kind!r}: {exc.__class__.__name__}: {exc}") from exc
    return Rendered(subject=subject, text=text, html=html)


def check(kind: str, context: Mapping[str, Any], *, pilot_id: uuid.UUID | None = None) -> None:
    """Refuse (AlertTemplateError) a context that is not JSON or that its kind's templates cannot
    render; run when an alert is emitted."""
    try:
        json.dumps(context, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AlertTemplateError(f"an alert's context must be plain JSON (str, int, bool, list, dict): {exc}") from exc
    sample = AlertContent(uuid.uuid4(), kind, "info", "check", pilot_id, context, datetime.now(UTC))
    render(sample, base_url="http://check.invalid")


@dataclass(frozen=True)
class Composer:
    """Turns a rendered alert into the message for one recipient."""

    mail_from: str
    base_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Composer:
        return cls(mail_from=settings.mail_from, base_url=settings.base_url)

    def compose(
        self, content: AlertContent, rendered: Rendered, *, recipient: str, message_id: str, at: datetime
    ) -> EmailMessage:
        message = EmailMessage(policy=MAIL_POLICY)
        message["Subject"] = rendered.subject
        message["From"] = clean_header(self.mail_from)
        message["To"] = clean_header(recipient)
        message["Date"] = format_datetime(at.astimezone(UTC))
        message["Message-ID"] = clean_header(message_id)
        # RFC 3834: an automatic message; vacation responders must not answer it.
        message["Auto-Submitted"] = "auto-generated"
        message["X-Sandbox-Alert"] = f"{clean_header(content.kind, 60)}; id={content.id}"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message
