from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.models.base import Base, IdMixin


class Role(StrEnum):
    admin = "admin"
    reviewer = "reviewer"
    approver = "approver"
    supervisor = "supervisor"
    institution_admin = "institution_admin"
    filer = "filer"

    @property
    def is_bureau(self) -> bool:
        return self in BUREAU_ROLES


BUREAU_ROLES = frozenset({Role.admin, Role.reviewer, Role.approver, Role.supervisor})
INSTITUTION_ROLES = frozenset({Role.institution_admin, Role.filer})


class User(IdMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32))
    institution_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("institutions.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class ApiToken(IdMixin, Base):
    """A bearer token. Only its SHA-256 is stored; the prefix identifies it in lists and logs."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
