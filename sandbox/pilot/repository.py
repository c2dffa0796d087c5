from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sandbox.models import LIVE_PILOT_STATES, Institution, Pilot, PilotState, Program, QuotaAllocation


def lock_program(session: Session, program_id: uuid.UUID) -> Program:
    """Row lock on the program: serialises quota allocation (SQLite is already serialised by
    BEGIN IMMEDIATE; FOR UPDATE is a no-op there)."""
    return session.execute(
        select(Program).where(Program.id == program_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def allocated_total(session: Session, program_id: uuid.UUID, quota: str) -> Decimal:
    amounts = session.scalars(
        select(QuotaAllocation.amount).where(
            QuotaAllocation.program_id == program_id,
            QuotaAllocation.quota == quota,
            QuotaAllocation.released_at.is_(None),
        )
    ).all()
    return sum(amounts, Decimal(0))


def allocated_by_quota(session: Session, program_id: uuid.UUID) -> dict[str, Decimal]:
    """What the program's pilots hold now, per quota: the allocations not yet released (summed
    here, not in SQL, so the sum stays exact on SQLite too)."""
    totals: dict[str, Decimal] = {}
    rows = session.execute(
        select(QuotaAllocation.quota, QuotaAllocation.amount).where(
            QuotaAllocation.program_id == program_id, QuotaAllocation.released_at.is_(None)
        )
    ).all()
    for quota, amount in rows:
        totals[quota] = totals.get(quota, Decimal(0)) + amount
    return totals


def count_in_state(session: Session, program_ids: Sequence[uuid.UUID], state: str) -> dict[uuid.UUID, int]:
    """How many pilots of each of these programs are in ``state``, in one query."""
    if not program_ids:
        return {}
    rows = session.execute(
        select(Pilot.program_id, func.count())
        .where(Pilot.program_id.in_(program_ids), Pilot.state == state)
        .group_by(Pilot.program_id)
    ).all()
    return {program_id: int(count) for program_id, count in rows}


def count_references(session: Session, prefix: str) -> int:
    return session.scalar(select(func.count()).select_from(Pilot).where(Pilot.reference.like(f"{prefix}%"))) or 0


def allocations(session: Session, pilot_id: uuid.UUID) -> Sequence[QuotaAllocation]:
    return session.scalars(
        select(QuotaAllocation).where(QuotaAllocation.pilot_id == pilot_id).order_by(QuotaAllocation.quota)
    ).all()


def allocations_for(session: Session, pilot_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Decimal]]:
    result: dict[uuid.UUID, dict[str, Decimal]] = {pid: {} for pid in pilot_ids}
    if not pilot_ids:
        return result
    for row in session.scalars(select(QuotaAllocation).where(QuotaAllocation.pilot_id.in_(pilot_ids))):
        result[row.pilot_id][row.quota] = row.amount
    return result


def get_for_update(session: Session, pilot_id: uuid.UUID) -> Pilot | None:
    return session.execute(
        select(Pilot).where(Pilot.id == pilot_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def pilots_query(*, institution_id: uuid.UUID | None, state: str | None, program_id: uuid.UUID | None) -> Select[Pilot]:
    query = select(Pilot)
    if institution_id is not None:
        query = query.where(Pilot.institution_id == institution_id)
    if state is not None:
        query = query.where(Pilot.state == state)
    if program_id is not None:
        query = query.where(Pilot.program_id == program_id)
    return query


def page(session: Session, query: Select[Pilot], offset: int, limit: int) -> tuple[Sequence[Pilot], int]:
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Pilot.reference).offset(offset).limit(limit)).all()
    return rows, total


def due_for_activation(session: Session, as_of: date) -> Sequence[Pilot]:
    return session.scalars(
        select(Pilot).where(Pilot.state == PilotState.approved, Pilot.start_on <= as_of, Pilot.end_on >= as_of)
    ).all()


def past_end(session: Session, as_of: date) -> Sequence[Pilot]:
    return session.scalars(
        select(Pilot).where(Pilot.state.in_([s.value for s in LIVE_PILOT_STATES]), Pilot.end_on < as_of)
    ).all()


def live_participants(session: Session, program_id: uuid.UUID) -> set[uuid.UUID]:
    return set(
        session.scalars(
            select(Pilot.institution_id).where(
                Pilot.program_id == program_id, Pilot.state.in_([s.value for s in LIVE_PILOT_STATES])
            )
        ).all()
    )


def public_register(
    session: Session, offset: int, limit: int
) -> tuple[Sequence[tuple[Pilot, Institution, Program]], int]:
    total = session.scalar(select(func.count()).select_from(Pilot)) or 0
    rows = session.execute(
        select(Pilot, Institution, Program)
        .join(Institution, Institution.id == Pilot.institution_id)
        .join(Program, Program.id == Pilot.program_id)
        .order_by(Pilot.start_on.desc(), Pilot.reference)
        .offset(offset)
        .limit(limit)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows], total


def labels(session: Session, pilots: Sequence[Pilot]) -> dict[uuid.UUID, tuple[str, str]]:
    """Program code and institution code of each pilot, in one query."""
    if not pilots:
        return {}
    rows = session.execute(
        select(Pilot.id, Program.code, Institution.code)
        .join(Program, Program.id == Pilot.program_id)
        .join(Institution, Institution.id == Pilot.institution_id)
        .where(Pilot.id.in_([p.id for p in pilots]))
    ).all()
    return {row[0]: (row[1], row[2]) for row in rows}


def listing_labels(session: Session, pilots: Sequence[Pilot]) -> dict[uuid.UUID, tuple[str, str, str, str]]:
    """Program code and title, institution code and name of each pilot, in one query (for lists)."""
    if not pilots:
        return {}
    rows = session.execute(
        select(Pilot.id, Program.code, Program.title, Institution.code, Institution.name)
        .join(Program, Program.id == Pilot.program_id)
        .join(Institution, Institution.id == Pilot.institution_id)
        .where(Pilot.id.in_([p.id for p in pilots]))
    ).all()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}
