"""The outbox: alerts are written in the transaction of the event that raises them.

``emit`` only adds rows and flushes; the caller's unit of work commits them together with the
event (and its audit entry), or rolls all of it back. The worker (``sandbox.alert.delivery``)
delivers what was committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sandbox.alert import render, repository
from sandbox.models import (
    FINAL_DELIVERY_STATES,
    Alert,
    AlertDelivery,
    AlertSeverity,
    AlertState,
    DeliveryState,
)
from sandbox.models.base import new_id

NO_RECIPIENTS = "no recipients"
MAX_DEDUPE_KEY = 200
MESSAGE_ID_DOMAIN = "sandbox.local"


def new_message_id() -> str:
    """Generated once per delivery and reused on every attempt, so a retry after a lost SMTP
    reply is recognisably the same message."""
    return f"<{uuid.uuid4().hex}@{MESSAGE_ID_DOMAIN}>"


def normalise_recipients(recipients: Iterable[str]) -> tuple[list[str], list[str]]:
    """(valid addresses, lower-cased and deduplicated in order; reasons for the refused ones)."""
    valid: list[str] = []
    refused: list[str] = []
    for raw in recipients:
        shown = render.clean_header(str(raw), 80)
        if not isinstance(raw, str) or any(c in raw for c in "\r\n\x00"):
            refused.append(f"{shown!r}: not a single-line address")
            continue
        try:
            # No SMTPUTF8 addresses: the messages are plain ASCII-header mail any relay accepts.
            result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            refused.append(f"{shown!r}: {exc}")
            continue
        address = (result.ascii_email or result.normalized).lower()
        if address not in valid:
            valid.append(address)
    return valid, refused


def derive_state(deliveries: Sequence[AlertDelivery]) -> AlertState:
    """An alert is sent when every recipient got it, failed when none is left to try and one
    failed (or there was nobody to send it to), retrying while an unfinished delivery has already
    failed once, and pending otherwise."""
    if not deliveries:
        return AlertState.failed
    unfinished = [d for d in deliveries if d.state not in FINAL_DELIVERY_STATES]
    if unfinished:
        if any(d.state == DeliveryState.retrying or d.last_error is not None for d in unfinished):
            return AlertState.retrying
        return AlertState.pending
    if all(d.state == DeliveryState.sent for d in deliveries):
        return AlertState.sent
    return AlertState.failed


def refresh_state(session: Session, alert: Alert, *, at: datetime) -> AlertState:
    """Re-derive the alert's state from its deliveries (call with the alert row locked)."""
    state = derive_state(repository.deliveries_of(session, [alert.id])[alert.id])
    if alert.state != state:
        alert.state = state
        alert.updated_at = at
    return state


def emit(
    session: Session,
    *,
    kind: str,
    severity: AlertSeverity | str,
    pilot_id: uuid.UUID | None,
    subject: str,
    context: Mapping[str, Any],
    recipients: Sequence[str],
    dedupe_key: str,
    at: datetime,
) -> Alert | None:
    """Record one alert and one delivery per distinct valid recipient, in the caller's
    transaction (flushed, never committed). Returns None when ``dedupe_key`` was already used:
    an event raised twice yields one alert. An alert nobody can receive is still recorded, as
    failed with the reason, so the bureau sees it.

    Programming errors raise ValueError: an unknown kind or severity, a context the kind's
    templates cannot render or that is not plain JSON (``render.AlertTemplateError``)."""
    severity = AlertSeverity(severity)
    if not dedupe_key or len(dedupe_key) > MAX_DEDUPE_KEY:
        raise ValueError(f"an alert's dedupe key must have 1 to {MAX_DEDUPE_KEY} characters")
    render.check(kind, context, pilot_id=pilot_id)
    if repository.find_by_dedupe_key(session, dedupe_key) is not None:
        return None

    addresses, refused = normalise_recipients(recipients)
    notes = []
    if not addresses:
        notes.append(NO_RECIPIENTS)
    if refused:
        notes.append("invalid recipients skipped: " + "; ".join(refused))
    alert = Alert(
        id=new_id(),
        kind=kind,
        severity=severity.value,
        pilot_id=pilot_id,
        subject=render.clean_header(subject),
        context=dict(context),
        dedupe_key=dedupe_key,
        state=(AlertState.pending if addresses else AlertState.failed).value,
        note="\n".join(notes) or None,
        created_at=at,
        updated_at=at,
    )
    deliveries = [
        AlertDelivery(
            id=new_id(),
            alert_id=alert.id,
            recipient=address,
            state=DeliveryState.pending.value,
            attempts=0,
            next_attempt_at=at,
            message_id=new_message_id(),
            created_at=at,
        )
        for address in addresses
    ]
    try:
        # A savepoint, so that losing a race for the dedupe key to a concurrent transaction
        # (PostgreSQL waits for it, then reports the duplicate) leaves the caller's work intact.
        with session.begin_nested():
            session.add(alert)
            session.flush()
            session.add_all(deliveries)
            session.flush()
    except IntegrityError:
        if repository.find_by_dedupe_key(session, dedupe_key) is not None:
            return None
        raise
    return alert
