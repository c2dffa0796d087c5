from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.models.base import Base, IdMixin


class AlertSeverity(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class AlertState(StrEnum):
    """Derived from the alert's deliveries (see ``sandbox.alert.outbox.derive_state``)."""

    pending = "pending"
    sent = "sent"
    retrying = "retrying"
    failed = "failed"


class DeliveryState(StrEnum):
    pending = "pending"
    sending = "sending"  # claimed by a worker under a lease
    sent = "sent"
    retrying = "retrying"
    failed = "failed"


FINAL_DELIVERY_STATES = frozenset({DeliveryState.sent, DeliveryState.failed})


class Alert(IdMixin, Base):
    """One alerting event, written in the event's transaction; its deliveries carry the email."""

    __tablename__ = "alerts"

    kind: Mapped[str] = mapped_column(String(60), index=True)
    severity: Mapped[str] = mapped_column(String(20))
    pilot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pilots.id"), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    context: Mapped[dict[str, Any]]
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertDelivery(IdMixin, Base):
    """One email of an alert to one recipient. A claimed row (``sending``) has its
    ``next_attempt_at`` set to the end of its lease, so "due" is one indexed condition for every
    claimable state: pending, retrying, and sending whose lease has expired."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "recipient"),
        Index("ix_alert_deliveries_due", "state", "next_attempt_at"),
    )

    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
