from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import Filing, FilingVersion, Institution, Pilot, Program, User


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


def filed_periods_of(session: Session, pilot_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """The periods filed for each of these pilots, in one query."""
    found: dict[uuid.UUID, set[str]] = {}
    if pilot_ids:
        rows = session.execute(select(Filing.pilot_id, Filing.period).where(Filing.pilot_id.in_(list(pilot_ids))))
        for pilot_id, period in rows:
            found.setdefault(pilot_id, set()).add(period)
    return found


def programs_of(session: Session, pilots: Collection[Pilot]) -> Sequence[Program]:
    """The programs of these pilots, each once."""
    ids = {pilot.program_id for pilot in pilots}
    return session.scalars(select(Program).where(Program.id.in_(ids))).all() if ids else []


def filing_pilots(
    session: Session, *, institution_id: uuid.UUID | None, states: Collection[str], pilot_id: uuid.UUID | None = None
) -> Sequence[tuple[Pilot, Institution]]:
    """Pilots in the given states with their institutions (of one institution, or all), by reference."""
    query = (
        select(Pilot, Institution)
        .join(Institution, Institution.id == Pilot.institution_id)
        .where(Pilot.state.in_(list(states)))
    )
    if institution_id is not None:
        query = query.where(Pilot.institution_id == institution_id)
    if pilot_id is not None:
        query = query.where(Pilot.id == pilot_id)
    return [(row[0], row[1]) for row in session.execute(query.order_by(Pilot.reference)).all()]


def recent_page(
    session: Session, *, institution_id: uuid.UUID | None, pilot_id: uuid.UUID | None, offset: int, limit: int
) -> tuple[Sequence[tuple[Filing, FilingVersion, Pilot, Institution]], int]:
    """Filings with their latest version, pilot and institution, the most recently changed first."""
    query = (
        select(Filing, FilingVersion, Pilot, Institution)
        .join(FilingVersion, FilingVersion.filing_id == Filing.id)
        .join(Pilot, Pilot.id == Filing.pilot_id)
        .join(Institution, Institution.id == Pilot.institution_id)
        .where(FilingVersion.version == Filing.latest_version)
    )
    count = select(func.count()).select_from(Filing).join(Pilot, Pilot.id == Filing.pilot_id)
    if institution_id is not None:
        query = query.where(Pilot.institution_id == institution_id)
        count = count.where(Pilot.institution_id == institution_id)
    if pilot_id is not None:
        query = query.where(Filing.pilot_id == pilot_id)
        count = count.where(Filing.pilot_id == pilot_id)
    total = session.scalar(count) or 0
    rows = session.execute(query.order_by(Filing.updated_at.desc(), Filing.id.desc()).offset(offset).limit(limit)).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows], total


def user_labels(session: Session, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """ "Display name <email>" (or the email alone) of each user, in one query."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.display_name, User.email).where(User.id.in_(set(user_ids)))).all()
    return {row[0]: f"{row[1]} <{row[2]}>" if row[1] else row[2] for row in rows}
