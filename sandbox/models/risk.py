from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.models.base import Base, IdMixin


class RiskEventKind(StrEnum):
    fraud = "fraud"
    credit_loss = "credit_loss"
    operational_failure = "operational_failure"
    cyber_incident = "cyber_incident"
    complaint_surge = "complaint_surge"


class RiskEvent(IdMixin, Base):
    __tablename__ = "risk_events"

    pilot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pilots.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    occurred_on: Mapped[date]
    reported_at: Mapped[datetime]
    amount: Mapped[Decimal | None]
    description: Mapped[str] = mapped_column(Text)
    reported_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))


class ExemptionState(StrEnum):
    assessed = "assessed"
    awaiting_confirmation = "awaiting_confirmation"
    granted = "granted"
    denied = "denied"


class Exemption(IdMixin, Base):
    """A due-diligence exemption: the system's assessment (each criterion met or not, with its
    evidence) and the bureau's decision."""

    __tablename__ = "exemptions"

    pilot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pilots.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(20))
    risk_event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("risk_events.id"))
    rule_id: Mapped[str | None] = mapped_column(String(60))
    evaluation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("evaluations.id"))
    policy_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policy_versions.id"))
    state: Mapped[str] = mapped_column(String(30), index=True)
    assessment: Mapped[dict[str, Any]]
    finding: Mapped[str] = mapped_column(String(10))
    statement: Mapped[str | None] = mapped_column(Text)
    claimed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str | None] = mapped_column(String(10))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    confirmed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    confirmation_reason: Mapped[str | None] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
