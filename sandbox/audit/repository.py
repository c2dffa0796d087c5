from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sandbox.models import AuditEntry, AuditHead


def entries_query(*, object_type: str | None = None, object_id: str | None = None) -> Select[AuditEntry]:
    query = select(AuditEntry)
    if object_type is not None:
        query = query.where(AuditEntry.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == object_id)
    return query


def list_entries(
    session: Session, *, object_type: str | None, object_id: str | None, offset: int, limit: int
) -> tuple[Sequence[AuditEntry], int]:
    query = entries_query(object_type=object_type, object_id=object_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEntry.seq).offset(offset).limit(limit)).all()
    return rows, total


def iter_chain(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        # Keep memory flat on long chains without detaching the caller's own objects.
        for row in rows:
            session.expunge(row)


def find_head(session: Session) -> AuditHead | None:
    return session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()


def latest_entries(
    session: Session, *, object_type: str | None, object_id: str | None, before_seq: int | None, limit: int
) -> tuple[Sequence[AuditEntry], int]:
    """Newest first, ``limit`` entries older than ``before_seq`` (keyset paging); the total counts
    every entry matching the filters."""
    query = entries_query(object_type=object_type, object_id=object_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    rows = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit)).all()
    return rows, total
