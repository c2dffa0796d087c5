from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.models.base import Base, IdMixin, JSONDocument


class FilingChannel(StrEnum):
    api = "api"
    upload = "upload"
    demo = "demo"


class Filing(IdMixin, Base):
    """One pilot's report for one period; its versions hold the values (the latest counts)."""

    __tablename__ = "filings"
    __table_args__ = (UniqueConstraint("pilot_id", "period"),)

    pilot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pilots.id"), index=True)
    period: Mapped[str] = mapped_column(String(10))
    period_ordinal: Mapped[int]
    due_on: Mapped[date]
    due_estimated: Mapped[bool] = mapped_column(default=False)
    latest_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FilingVersion(IdMixin, Base):
    """Immutable: an amendment is a new version with a reason; nothing is ever overwritten."""

    __tablename__ = "filing_versions"
    __table_args__ = (UniqueConstraint("filing_id", "version"),)

    filing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("filings.id"), index=True)
    version: Mapped[int]
    metrics: Mapped[dict[str, Any]]
    breakdown: Mapped[list[Any]] = mapped_column(JSONDocument, default=list)
    received_at: Mapped[datetime]
    received_on: Mapped[date]
    days_late: Mapped[int]
    channel: Mapped[str] = mapped_column(String(10))
    submitted_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class Evaluation(IdMixin, Base):
    """One policy version judging one pilot-period: every rule's outcome and the exact inputs
    used (filing version ids per period, institution facts, quotas), so it can be replayed."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_pilot_period", "pilot_id", "period_ordinal"),)

    pilot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pilots.id"), index=True)
    period: Mapped[str] = mapped_column(String(10))
    period_ordinal: Mapped[int]
    policy_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policy_versions.id"))
    trigger: Mapped[str] = mapped_column(String(20))
    filing_version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("filing_versions.id"))
    inputs: Mapped[dict[str, Any]]
    outcomes: Mapped[list[Any]] = mapped_column(JSONDocument)
    evaluated_at: Mapped[datetime]


class BreakerState(StrEnum):
    armed = "armed"
    watch = "watch"
    tripped = "tripped"
    acknowledged = "acknowledged"
    probation = "probation"


class Breaker(IdMixin, Base):
    """The state of one trip rule on one pilot."""

    __tablename__ = "breakers"
    __table_args__ = (UniqueConstraint("pilot_id", "rule_id"),)

    pilot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pilots.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), index=True)
    memory: Mapped[dict[str, Any]]
    trips: Mapped[int] = mapped_column(default=0)
    last_tripped_at: Mapped[datetime | None]
    last_evaluation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("evaluations.id"))
    reset_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    reset_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class BreakerEvent(IdMixin, Base):
    """Every step of a breaker, in order: the fold of these events is its state (replayable)."""

    __tablename__ = "breaker_events"

    breaker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("breakers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    evaluation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("evaluations.id"))
    period: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str | None] = mapped_column(String(10))
    state_before: Mapped[str] = mapped_column(String(20))
    state_after: Mapped[str] = mapped_column(String(20))
    memory_after: Mapped[dict[str, Any]]
    signals: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    actor: Mapped[str] = mapped_column(String(254))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class IdempotencyKey(IdMixin, Base):
    """A filing request's Idempotency-Key, scoped to the institution, kept 30 days."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("institution_id", "key"),)

    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
