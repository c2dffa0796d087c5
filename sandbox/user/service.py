from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.audit.log import record
from sandbox.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from sandbox.institution import repository as institution_repository
from sandbox.models import INSTITUTION_ROLES, ApiToken, Role, User
from sandbox.user import repository

TOKEN_PREFIX = "sbx_"
MIN_PASSWORD_LENGTH = 12
# argon2 hashes any length; the cap only keeps a megabyte "password" from costing a hash.
MAX_PASSWORD_LENGTH = 1024
MAX_DISPLAY_NAME = 200  # users.display_name
MAX_TOKEN_LABEL = 100  # api_tokens.label
# Managing users and their credentials is the bureau administrator's (SPEC 1); the CLI acts as
# the system actor, which may do anything.
USER_ADMIN_ROLES = (Role.admin,)
_hasher = PasswordHasher()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    """The argon2 hash of an acceptable password; the refusal never repeats the password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password too short: at least {MIN_PASSWORD_LENGTH} characters",
            [{"loc": ["password"], "msg": f"at least {MIN_PASSWORD_LENGTH} characters"}],
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password too long: at most {MAX_PASSWORD_LENGTH} characters",
            [{"loc": ["password"], "msg": f"at most {MAX_PASSWORD_LENGTH} characters"}],
        )
    return _hasher.hash(password)


def require_user_admin(actor: Actor, *, doing: str) -> None:
    actor.require(*USER_ADMIN_ROLES, doing=doing)


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
    """Bureau roles belong to no institution, institution roles to exactly one (by its code)."""
    require_user_admin(actor, doing="creating a user")
    email = normalise_email(email)
    display_name = _display_name(display_name)
    institution_id: uuid.UUID | None = None
    if role in INSTITUTION_ROLES:
        if not institution_code:
            raise InvalidInput(f"role {role} needs an institution", [{"loc": ["institution"], "msg": "required"}])
        institution = institution_repository.find_by_code(session, institution_code)
        if institution is None:
            raise NotFound(f"no institution with code {institution_code!r}")
        institution_id = institution.id
    elif institution_code:
        raise InvalidInput(
            f"bureau role {role} cannot belong to an institution", [{"loc": ["institution"], "msg": "not allowed"}]
        )
    if repository.find_user_by_email(session, email) is not None:
        raise Conflict(f"a user with email {email} already exists", field="email")
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
    """A new bearer token for the user; only its hash is kept, so this is the one time it is seen."""
    require_user_admin(actor, doing="issuing an API token")
    label = _token_label(label)
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
    require_user_admin(actor, doing="revoking API tokens")
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
    """Every token and sign-in of the user stops working; the user's history stays. An
    administrator cannot deactivate their own account (the bureau would risk losing its last one)."""
    require_user_admin(actor, doing="deactivating a user")
    if actor.user_id is not None and actor.user_id == user.id:
        raise Conflict("you cannot deactivate your own account; another administrator has to do it")
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


def reactivate_user(session: Session, user: User, *, actor: Actor, at: datetime) -> User:
    """Sign-in works again, and so do the user's tokens that were not revoked."""
    require_user_admin(actor, doing="reactivating a user")
    if not user.is_active:
        user.is_active = True
        session.flush()
        record(
            session,
            at=at,
            actor=actor,
            action="user.reactivate",
            object_type="user",
            object_id=user.id,
            before={"is_active": False},
            after={"is_active": True},
        )
    return user


def set_password(session: Session, user: User, password: str, *, actor: Actor, at: datetime) -> User:
    """Replace the user's web sign-in password (create_user's rules). The audit entry says that
    it changed, never what it is."""
    require_user_admin(actor, doing="setting a password")
    had_password = user.password_hash is not None
    user.password_hash = hash_password(password)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="user.set_password",
        object_type="user",
        object_id=user.id,
        before={"has_password": had_password},
        after={"has_password": True},
    )
    return user


def get_user(session: Session, user_id: uuid.UUID, *, actor: Actor) -> User:
    require_user_admin(actor, doing="reading a user")
    user = repository.find_user(session, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def list_users(
    session: Session,
    *,
    actor: Actor,
    offset: int,
    limit: int,
    role: Role | None = None,
    institution_code: str | None = None,
    active: bool | None = None,
) -> tuple[Sequence[User], int]:
    """Users by email, optionally of one role, one institution (by code) or one status."""
    require_user_admin(actor, doing="listing users")
    institution_id: uuid.UUID | None = None
    if institution_code:
        institution = institution_repository.find_by_code(session, institution_code)
        if institution is None:
            raise NotFound(f"no institution with code {institution_code!r}")
        institution_id = institution.id
    return repository.list_users(
        session, role=role, institution_id=institution_id, active=active, offset=offset, limit=limit
    )


def list_tokens(session: Session, user: User, *, actor: Actor) -> Sequence[ApiToken]:
    """The user's tokens, oldest first: label, prefix, dates; the secrets are not stored."""
    require_user_admin(actor, doing="reading a user's API tokens")
    return repository.list_tokens(session, user.id)


def _display_name(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_DISPLAY_NAME:
        raise InvalidInput(
            f"display name too long: at most {MAX_DISPLAY_NAME} characters",
            [{"loc": ["display_name"], "msg": f"at most {MAX_DISPLAY_NAME} characters"}],
        )
    _refuse_control_characters(value, "display_name", "display name")
    return value


def _token_label(value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput("a token needs a label saying what it is for", [{"loc": ["label"], "msg": "required"}])
    if len(value) > MAX_TOKEN_LABEL:
        raise InvalidInput(
            f"token label too long: at most {MAX_TOKEN_LABEL} characters",
            [{"loc": ["label"], "msg": f"at most {MAX_TOKEN_LABEL} characters"}],
        )
    _refuse_control_characters(value, "label", "token label")
    return value


def _refuse_control_characters(value: str, field: str, name: str) -> None:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(
            f"the {name} may not contain control characters", [{"loc": [field], "msg": "control characters"}]
        )


def actor_for(user: User) -> Actor:
    return Actor(user_id=user.id, label=user.email, role=Role(user.role), institution_id=user.institution_id)


def authenticate_token(session: Session, token: str) -> Actor:
    found = repository.find_active_token(session, hash_token(token)) if token.startswith(TOKEN_PREFIX) else None
    if found is None:
        raise Unauthenticated("the bearer token is unknown, revoked, or its user is inactive")
    return actor_for(found[1])
