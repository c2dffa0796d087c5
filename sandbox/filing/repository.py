from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import Filing, FilingVersion, Pilot


def find(session: Session, pilot_id: uuid.UUID, period: str, *, lock: bool = False) -> Filing | None:
    query = select(Filing).where(Filing.pilot_id == pilot_id, Filing.period == period)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def versions(session: Session, filing_id: uuid.UUID) -> Sequence[FilingVersion]:
    return session.scalars(
        select(FilingVersion).where(FilingVersion.filing_id == filing_id).order_by(FilingVersion.version)
    ).all()


def latest(session: Session, filing: Filing) -> FilingVersion:
    return session.execute(
        select(FilingVersion).where(
            FilingVersion.filing_id == filing.id, FilingVersion.version == filing.latest_version
        )
    ).scalar_one()


def list_page(
    session: Session, pilot_id: uuid.UUID, offset: int, limit: int
) -> tuple[Sequence[tuple[Filing, FilingVersion]], int]:
    query = (
        select(Filing, FilingVersion)
        .join(FilingVersion, FilingVersion.filing_id == Filing.id)
        .where(Filing.pilot_id == pilot_id, FilingVersion.version == Filing.latest_version)
    )
    total = session.scalar(select(func.count()).select_from(Filing).where(Filing.pilot_id == pilot_id)) or 0
    rows = session.execute(query.order_by(Filing.period_ordinal.desc()).offset(offset).limit(limit)).all()
    return [(row[0], row[1]) for row in rows], total


def pilots_by_reference(session: Session, institution_id: uuid.UUID, references: Sequence[str]) -> dict[str, Pilot]:
    if not references:
        return {}
    rows = session.scalars(
        select(Pilot).where(Pilot.institution_id == institution_id, Pilot.reference.in_(list(references)))
    )
    return {p.reference: p for p in rows}


def filed_periods(session: Session, pilot_id: uuid.UUID) -> set[str]:
    return set(session.scalars(select(Filing.period).where(Filing.pilot_id == pilot_id)).all())
