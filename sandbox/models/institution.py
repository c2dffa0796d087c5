from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.models.base import Base, IdMixin, JSONDocument


class InstitutionStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    revoked = "revoked"


class Institution(IdMixin, Base):
    __tablename__ = "institutions"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 6", name="rating_range"),)

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(40))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    lei: Mapped[str | None] = mapped_column(String(20), unique=True)
    region: Mapped[str] = mapped_column(String(100))
    rating: Mapped[int]
    capital_adequacy_ratio: Mapped[Decimal | None]
    npl_ratio: Mapped[Decimal | None]
    solvency_comprehensive: Mapped[Decimal | None]
    solvency_core: Mapped[Decimal | None]
    last_major_penalty_on: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(20), default=InstitutionStatus.active)
    contact_emails: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
