from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import ApiToken, Role, User


def find_user(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.lower()))


def find_active_token(session: Session, token_hash: str) -> tuple[ApiToken, User] | None:
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None), User.is_active.is_(True))
    ).first()
    return (row[0], row[1]) if row else None


def list_tokens(session: Session, user_id: uuid.UUID) -> Sequence[ApiToken]:
    return session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at, ApiToken.id)
    ).all()


def list_users(
    session: Session,
    *,
    role: Role | None,
    institution_id: uuid.UUID | None,
    active: bool | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[User], int]:
    query = select(User)
    if role is not None:
        query = query.where(User.role == role.value)
    if institution_id is not None:
        query = query.where(User.institution_id == institution_id)
    if active is not None:
        query = query.where(User.is_active.is_(active))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(User.email).offset(offset).limit(limit)).all()
    return rows, total
