from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sandbox.models import Institution


def find_institution(session: Session, institution_id: uuid.UUID) -> Institution | None:
    return session.get(Institution, institution_id)


def find_by_code(session: Session, code: str) -> Institution | None:
    return session.scalar(select(Institution).where(Institution.code == code))


def find_by_uscc(session: Session, uscc: str) -> Institution | None:
    return session.scalar(select(Institution).where(Institution.uscc == uscc))


def find_by_lei(session: Session, lei: str) -> Institution | None:
    return session.scalar(select(Institution).where(Institution.lei == lei))


def _visible(only_id: uuid.UUID | None) -> Select[Institution]:
    query = select(Institution)
    if only_id is not None:
        query = query.where(Institution.id == only_id)
    return query


def list_institutions(
    session: Session, *, only_id: uuid.UUID | None, offset: int, limit: int
) -> tuple[Sequence[Institution], int]:
    """``only_id`` narrows the list to one institution (what its own users may see)."""
    query = _visible(only_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Institution.code).offset(offset).limit(limit)).all()
    return rows, total
