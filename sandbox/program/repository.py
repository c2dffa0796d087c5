from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from sandbox.models import PolicyVersion, Program


def find_program(session: Session, code: str) -> Program | None:
    return session.scalar(select(Program).where(Program.code == code))


def list_programs(session: Session, *, offset: int, limit: int) -> tuple[Sequence[Program], int]:
    total = session.scalar(select(func.count()).select_from(Program)) or 0
    rows = session.scalars(select(Program).order_by(Program.code).offset(offset).limit(limit)).all()
    return rows, total


def version_heads(
    session: Session, program_ids: Sequence[uuid.UUID]
) -> Sequence[Row[uuid.UUID, uuid.UUID, str, str, date, datetime]]:
    """Every version of these programs without its (large) document and source text, oldest first."""
    if not program_ids:
        return []
    return session.execute(
        select(
            PolicyVersion.program_id,
            PolicyVersion.id,
            PolicyVersion.version,
            PolicyVersion.content_hash,
            PolicyVersion.effective_from,
            PolicyVersion.loaded_at,
        )
        .where(PolicyVersion.program_id.in_(program_ids))
        .order_by(PolicyVersion.effective_from, PolicyVersion.loaded_at)
    ).all()


def list_versions(session: Session, program_id: uuid.UUID) -> Sequence[PolicyVersion]:
    return session.scalars(
        select(PolicyVersion)
        .where(PolicyVersion.program_id == program_id)
        .order_by(PolicyVersion.effective_from, PolicyVersion.loaded_at)
    ).all()


def get_version(session: Session, version_id: uuid.UUID) -> PolicyVersion | None:
    return session.get(PolicyVersion, version_id)


def find_version(session: Session, program_id: uuid.UUID, label: str) -> PolicyVersion | None:
    return session.scalar(
        select(PolicyVersion).where(PolicyVersion.program_id == program_id, PolicyVersion.version == label)
    )
