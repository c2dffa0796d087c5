from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import Application, ApplicationMessage, Institution, Pilot, Program, User


def get_for_update(session: Session, application_id: uuid.UUID) -> Application | None:
    return session.execute(
        select(Application)
        .where(Application.id == application_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def list_page(
    session: Session,
    *,
    institution_id: uuid.UUID | None,
    state: str | None,
    program_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[Application], int]:
    query = select(Application)
    if institution_id is not None:
        query = query.where(Application.institution_id == institution_id)
    if state is not None:
        query = query.where(Application.state == state)
    if program_id is not None:
        query = query.where(Application.program_id == program_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Application.created_at.desc(), Application.id).offset(offset).limit(limit)
    ).all()
    return rows, total


def messages(session: Session, application_id: uuid.UUID) -> Sequence[ApplicationMessage]:
    return session.scalars(
        select(ApplicationMessage)
        .where(ApplicationMessage.application_id == application_id)
        .order_by(ApplicationMessage.created_at, ApplicationMessage.id)
    ).all()


def labels(session: Session, applications: Sequence[Application]) -> dict[uuid.UUID, tuple[str, str, uuid.UUID | None]]:
    """Program code, institution code and pilot id of each application, in one query."""
    if not applications:
        return {}
    rows = session.execute(
        select(Application.id, Program.code, Institution.code, Pilot.id)
        .join(Program, Program.id == Application.program_id)
        .join(Institution, Institution.id == Application.institution_id)
        .outerjoin(Pilot, Pilot.application_id == Application.id)
        .where(Application.id.in_([a.id for a in applications]))
    ).all()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


@dataclass(frozen=True)
class Described:
    """What an application page shows about the objects around it."""

    program_code: str
    program_title: str
    institution_code: str
    institution_name: str
    pilot_id: uuid.UUID | None
    pilot_reference: str | None


def describe(session: Session, application: Application) -> Described:
    """The application's program, institution and pilot (once approved), in one query."""
    row = session.execute(
        select(Program.code, Program.title, Institution.code, Institution.name, Pilot.id, Pilot.reference)
        .select_from(Application)
        .join(Program, Program.id == Application.program_id)
        .join(Institution, Institution.id == Application.institution_id)
        .outerjoin(Pilot, Pilot.application_id == Application.id)
        .where(Application.id == application.id)
    ).one()
    return Described(*row)


@dataclass(frozen=True)
class Person:
    name: str
    role: str


def people(session: Session, user_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, Person]:
    """Display name (or email) and role of each user named on an application, in one query."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name, User.email, User.role).where(User.id.in_(wanted))).all()
    return {row[0]: Person(row[1] or row[2], row[3]) for row in rows}


def queue_page(
    session: Session, *, states: Sequence[str], offset: int, limit: int
) -> tuple[Sequence[Application], int]:
    """Applications of every institution in ``states``, the one waiting longest first (a bureau
    work queue: callers are bureau pages)."""
    query = select(Application).where(Application.state.in_(list(states)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Application.updated_at, Application.id).offset(offset).limit(limit)).all()
    return rows, total


def count_by_state(session: Session, *, states: Sequence[str]) -> dict[str, int]:
    """How many applications of every institution are in each of ``states`` (bureau pages)."""
    rows = session.execute(
        select(Application.state, func.count()).where(Application.state.in_(list(states))).group_by(Application.state)
    ).all()
    counts = {state: 0 for state in states}
    counts.update({row[0]: int(row[1]) for row in rows})
    return counts
