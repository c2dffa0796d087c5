from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.audit.log import record
from sandbox.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from sandbox.models import INSTITUTION_ROLES, ApiToken, Institution, Role, User
from sandbox.user import repository

TOKEN_PREFIX = "sbx_"
_hasher = PasswordHasher()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise InvalidInput("password too short", [{"loc": ["password"], "msg": "at least 12 characters"}])
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email address: {exc}", [{"loc": ["email"], "msg": str(exc)}]) from exc


def create_user(
    session: Session,
    *,
    email: str,
    role: Role,
    institution_code: str | None,
    display_name: str = "",
    password: str | None = None,
    actor: Actor,
    at: datetime,
) -> User:
    email = normalise_email(email)
    institution_id: uuid.UUID | None = None
    if role in INSTITUTION_ROLES:
        if not institution_code:
            raise InvalidInput(f"role {role} needs an institution", [{"loc": ["institution"], "msg": "required"}])
        institution = session.scalar(select(Institution).where(Institution.code == institution_code))
        if institution is None:
            raise NotFound(f"no institution with code {institution_code!r}")
        institution_id = institution.id
    elif institution_code:
        raise InvalidInput(
            f"bureau role {role} cannot belong to an institution", [{"loc": ["institution"], "msg": "not allowed"}]
        )
    if repository.find_user_by_email(session, email) is not None:
        raise Conflict(f"a user with email {email} already exists")
    user = User(
        email=email,
        display_name=display_name or email.split("@")[0],
        role=role.value,
        institution_id=institution_id,
        password_hash=hash_password(password) if password else None,
        created_at=at,
    )
    session.add(user)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after={"email": email, "role": role, "institution_id": institution_id},
    )
    return user


@dataclass(frozen=True)
class IssuedToken:
    token: str
    record: ApiToken


def issue_token(session: Session, user: User, *, label: str, actor: Actor, at: datetime) -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:12], label=label, created_at=at)
    session.add(row)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="token.issue",
        object_type="api_token",
        object_id=row.id,
        after={"user_id": user.id, "prefix": row.prefix, "label": label},
    )
    return IssuedToken(token, row)


def get_user_by_email(session: Session, email: str) -> User:
    user = repository.find_user_by_email(session, email)
    if user is None:
        raise NotFound(f"no user with email {email!r}")
    return user


def revoke_tokens(session: Session, user: User, *, prefix: str | None, actor: Actor, at: datetime) -> int:
    """Revoke the user's live tokens (only the one starting with ``prefix`` when given)."""
    tokens = [t for t in repository.list_tokens(session, user.id) if t.revoked_at is None]
    if prefix is not None:
        tokens = [t for t in tokens if t.prefix.startswith(prefix) or prefix.startswith(t.prefix)]
        if not tokens:
            raise NotFound(f"{user.email} has no live token starting with {prefix!r}")
        if len(tokens) > 1:
            raise Conflict(f"{len(tokens)} tokens start with {prefix!r}; give more characters")
    for row in tokens:
        row.revoked_at = at
        record(
            session,
            at=at,
            actor=actor,
            action="token.revoke",
            object_type="api_token",
            object_id=row.id,
            after={"user_id": user.id, "prefix": row.prefix},
        )
    session.flush()
    return len(tokens)


def deactivate_user(session: Session, user: User, *, actor: Actor, at: datetime) -> User:
    if user.is_active:
        user.is_active = False
        session.flush()
        record(
            session,
            at=at,
            actor=actor,
            action="user.deactivate",
            object_type="user",
            object_id=user.id,
            before={"is_active": True},
            after={"is_active": False},
        )
    return user


def actor_for(user: User) -> Actor:
    return Actor(user_id=user.id, label=user.email, role=Role(user.role), institution_id=user.institution_id)


def authenticate_token(session: Session, token: str) -> Actor:
    found = repository.find_active_token(session, hash_token(token)) if token.startswith(TOKEN_PREFIX) else None
    if found is None:
        raise Unauthenticated("the bearer token is unknown, revoked, or its user is inactive")
    return actor_for(found[1])
