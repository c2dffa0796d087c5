from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.models.base import Base, IdMixin


class ApplicationState(StrEnum):
    draft = "draft"
    submitted = "submitted"
    under_review = "under_review"
    info_requested = "info_requested"
    recommended = "recommended"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class Application(IdMixin, Base):
    __tablename__ = "applications"

    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institutions.id"), index=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    requested_scope: Mapped[dict[str, Any]]
    requested_quotas: Mapped[dict[str, Any]]
    start_on: Mapped[date]
    end_on: Mapped[date]
    risk_controls: Mapped[str] = mapped_column(Text)
    consumer_protection: Mapped[str] = mapped_column(Text)
    exit_plan: Mapped[str] = mapped_column(Text)
    # Set at submission: the policy version the application was checked against, and the result.
    policy_version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("policy_versions.id"))
    eligibility: Mapped[dict[str, Any] | None]
    submitted_at: Mapped[datetime | None]
    recommendation: Mapped[str | None] = mapped_column(String(10))
    recommendation_reason: Mapped[str | None] = mapped_column(Text)
    recommended_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    recommended_at: Mapped[datetime | None]
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class MessageKind(StrEnum):
    question = "question"
    answer = "answer"
    note = "note"


class ApplicationMessage(IdMixin, Base):
    __tablename__ = "application_messages"

    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
