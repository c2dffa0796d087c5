from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import Breaker, BreakerEvent, Pilot


def for_pilot(session: Session, pilot_id: uuid.UUID, *, lock: bool = False) -> dict[str, Breaker]:
    query = select(Breaker).where(Breaker.pilot_id == pilot_id)
    if lock:
        query = query.with_for_update()
    return {b.rule_id: b for b in session.scalars(query)}


def get_for_update(session: Session, breaker_id: uuid.UUID) -> Breaker | None:
    return session.execute(
        select(Breaker).where(Breaker.id == breaker_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def list_page(
    session: Session,
    *,
    institution_id: uuid.UUID | None,
    pilot_id: uuid.UUID | None,
    states: Sequence[str] | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[tuple[Breaker, str]], int]:
    query = select(Breaker, Pilot.reference).join(Pilot, Pilot.id == Breaker.pilot_id)
    if institution_id is not None:
        query = query.where(Pilot.institution_id == institution_id)
    if pilot_id is not None:
        query = query.where(Breaker.pilot_id == pilot_id)
    if states:
        query = query.where(Breaker.state.in_(list(states)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Pilot.reference, Breaker.rule_id).offset(offset).limit(limit)).all()
    return [(row[0], row[1]) for row in rows], total


def events(session: Session, breaker_id: uuid.UUID) -> Sequence[BreakerEvent]:
    return session.scalars(
        select(BreakerEvent).where(BreakerEvent.breaker_id == breaker_id).order_by(BreakerEvent.id)
    ).all()


def all_breakers(session: Session) -> Sequence[Breaker]:
    return session.scalars(select(Breaker).order_by(Breaker.id)).all()


def open_breakers(session: Session, pilot_id: uuid.UUID) -> list[Breaker]:
    """Breakers that keep the pilot suspended: tripped or acknowledged, not yet reset."""
    return [b for b in for_pilot(session, pilot_id).values() if b.state in ("tripped", "acknowledged")]


def resetters(session: Session, pilot_id: uuid.UUID) -> set[uuid.UUID]:
    """Users who reset one of the pilot's breakers since its last trip."""
    return {
        b.reset_by_id
        for b in for_pilot(session, pilot_id).values()
        if b.reset_by_id is not None
        and b.reset_at is not None
        and (b.last_tripped_at is None or b.reset_at >= b.last_tripped_at)
    }
