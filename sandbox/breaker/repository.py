from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from sandbox.models import Breaker, BreakerEvent, Evaluation, FilingVersion, Institution, Pilot, PolicyVersion, Program


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


# The board's order: breakers waiting for a person first (tripped, then acknowledged), each the
# longest waiting first; then those on probation, on watch and armed.
BOARD_ORDER = ("tripped", "acknowledged", "probation", "watch", "armed")


def _board_query(institution_id: uuid.UUID | None, pilot_id: uuid.UUID | None, program_code: str | None) -> Select[Any]:
    query = select(Breaker).join(Pilot, Pilot.id == Breaker.pilot_id)
    if institution_id is not None:
        query = query.where(Pilot.institution_id == institution_id)
    if pilot_id is not None:
        query = query.where(Breaker.pilot_id == pilot_id)
    if program_code is not None:
        query = query.join(Program, Program.id == Pilot.program_id).where(Program.code == program_code)
    return query


def board_counts(
    session: Session, *, institution_id: uuid.UUID | None, pilot_id: uuid.UUID | None, program_code: str | None
) -> dict[str, int]:
    """How many breakers are in each state, within the board's filters."""
    inner = _board_query(institution_id, pilot_id, program_code).subquery()
    rows = session.execute(select(inner.c.state, func.count()).group_by(inner.c.state)).all()
    return {str(state): int(count) for state, count in rows}


def board_page(
    session: Session,
    *,
    institution_id: uuid.UUID | None,
    pilot_id: uuid.UUID | None,
    program_code: str | None,
    state: str | None,
    offset: int,
    limit: int,
) -> Sequence[Breaker]:
    """One page of the board, in ``BOARD_ORDER``."""
    query = _board_query(institution_id, pilot_id, program_code)
    if state is not None:
        query = query.where(Breaker.state == state)
    rank = case({name: i for i, name in enumerate(BOARD_ORDER)}, value=Breaker.state, else_=len(BOARD_ORDER))
    waiting = case((Breaker.state.in_(BOARD_ORDER[:2]), Breaker.last_tripped_at), else_=None)
    order = (rank, waiting.asc().nulls_last(), Pilot.reference, Breaker.rule_id)
    return session.scalars(query.order_by(*order).offset(offset).limit(limit)).all()


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


# -- reads for the breaker pages ------------------------------------------------------------------


@dataclass(frozen=True)
class PilotLabel:
    """What a list of breakers shows about each pilot."""

    reference: str
    institution_code: str
    institution_name: str
    program_code: str
    program_title: str


def pilot_labels(session: Session, pilot_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, PilotLabel]:
    """Reference, institution and program of each pilot, in one query."""
    if not pilot_ids:
        return {}
    rows = session.execute(
        select(Pilot.id, Pilot.reference, Institution.code, Institution.name, Program.code, Program.title)
        .join(Institution, Institution.id == Pilot.institution_id)
        .join(Program, Program.id == Pilot.program_id)
        .where(Pilot.id.in_(list(pilot_ids)))
    ).all()
    return {row[0]: PilotLabel(row[1], row[2], row[3], row[4], row[5]) for row in rows}


def last_acknowledgements(session: Session, breaker_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, BreakerEvent]:
    """The latest acknowledgement event of each breaker that has one."""
    if not breaker_ids:
        return {}
    rows = session.scalars(
        select(BreakerEvent)
        .where(BreakerEvent.breaker_id.in_(list(breaker_ids)), BreakerEvent.kind == "acknowledged")
        .order_by(BreakerEvent.id)
    ).all()
    return {event.breaker_id: event for event in rows}


def policy_versions_of(session: Session, evaluation_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, PolicyVersion]:
    """The policy version that judged each evaluation."""
    if not evaluation_ids:
        return {}
    rows = session.execute(
        select(Evaluation.id, PolicyVersion)
        .join(PolicyVersion, PolicyVersion.id == Evaluation.policy_version_id)
        .where(Evaluation.id.in_(list(evaluation_ids)))
    ).all()
    return {row[0]: row[1] for row in rows}


@dataclass(frozen=True)
class SourcedEvent:
    """A breaker event with the evaluation that caused it and the filing that evaluation judged."""

    event: BreakerEvent
    evaluation: Evaluation | None
    filing_id: uuid.UUID | None
    filing_version: int | None


def events_with_sources(session: Session, breaker_id: uuid.UUID) -> list[SourcedEvent]:
    rows = session.execute(
        select(BreakerEvent, Evaluation, FilingVersion.filing_id, FilingVersion.version)
        .outerjoin(Evaluation, Evaluation.id == BreakerEvent.evaluation_id)
        .outerjoin(FilingVersion, FilingVersion.id == Evaluation.filing_version_id)
        .where(BreakerEvent.breaker_id == breaker_id)
        .order_by(BreakerEvent.id)
    ).all()
    return [SourcedEvent(row[0], row[1], row[2], row[3]) for row in rows]
