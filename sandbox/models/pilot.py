from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.models.base import Base, IdMixin, JSONDocument


class PilotState(StrEnum):
    approved = "approved"
    active = "active"
    suspended = "suspended"
    completed = "completed"
    terminated = "terminated"
    withdrawn = "withdrawn"
    expired = "expired"


LIVE_PILOT_STATES = frozenset({PilotState.approved, PilotState.active, PilotState.suspended})


class Pilot(IdMixin, Base):
    __tablename__ = "pilots"

    reference: Mapped[str] = mapped_column(String(60), unique=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), unique=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"), index=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20), index=True)
    granted_scope: Mapped[dict[str, Any]]
    conditions: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    start_on: Mapped[date]
    end_on: Mapped[date]
    original_end_on: Mapped[date]
    extensions: Mapped[int] = mapped_column(default=0)
    state_reason: Mapped[str | None] = mapped_column(Text)
    approved_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class QuotaAllocation(IdMixin, Base):
    """A pilot's granted quota, counted against the program's aggregate cap until released
    (when the pilot ends)."""

    __tablename__ = "quota_allocations"
    __table_args__ = (
        UniqueConstraint("pilot_id", "quota"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    pilot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pilots.id"), index=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    quota: Mapped[str] = mapped_column(String(60))
    amount: Mapped[Decimal]
    allocated_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
