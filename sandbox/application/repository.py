from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import Application, ApplicationMessage, Institution, Pilot, Program


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
