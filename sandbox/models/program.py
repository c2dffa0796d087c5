from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.models.base import Base, IdMixin


class Program(IdMixin, Base):
    """A pilot scheme. Its rules live in immutable policy versions; this row is its identity and
    the lock that serialises quota allocation across concurrent approvals."""

    __tablename__ = "programs"

    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    area: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime]


class PolicyVersion(IdMixin, Base):
    """One loaded policy file. Never updated: a change is a new version with a new content hash."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        UniqueConstraint("program_id", "content_hash"),
        UniqueConstraint("program_id", "version"),
    )

    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    version: Mapped[str] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(64))
    effective_from: Mapped[date]
    # The two large columns load only when read: judging a filing needs the version's id and hash
    # (its parsed document is cached by them, see program.service.policy_document), not its JSON.
    document: Mapped[dict[str, Any]] = mapped_column(deferred=True)
    source_name: Mapped[str] = mapped_column(String(300))
    source_text: Mapped[str] = mapped_column(Text, deferred=True)
    loaded_at: Mapped[datetime]
    loaded_by: Mapped[str] = mapped_column(String(254))
