"""The bureau administrator's user pages: the list of users with filters, a form to create one,
and each user's page with its API tokens and the commands on it (set a password, issue a token,
revoke tokens, deactivate or reactivate).

Who may do what is the user service's (``sandbox.user.service``): every page and command calls it,
so another role gets its refusal (a 403 page). A password typed into a form is never shown back,
stored or logged; a new API token is shown once, in the answer to the form that issued it, and
never put in a cookie or a redirect.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.api.deps import DbSession, Now
from sandbox.errors import Conflict, InvalidInput, NotFound
from sandbox.institution import service as institution_service
from sandbox.models import Institution, Role, User
from sandbox.user import service
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import ROLE_LABELS, WebRoute, id_from_url, paging, redirect, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

PAGE_SIZE = 50
# Institutions offered in the filter and the form's select.
MAX_INSTITUTIONS = 1000
STATUSES = {"active": True, "deactivated": False}
FIELDS = {
    "email": "Email address",
    "display_name": "Display name",
    "role": "Role",
    "institution": "Institution",
    "password": "Initial password",
}


def _institutions(session: Session, actor: Actor) -> Sequence[Institution]:
    rows, _ = institution_service.list_institutions(session, actor=actor, offset=0, limit=MAX_INSTITUTIONS)
    return rows


def _institution_names(
    session: Session, actor: Actor, institutions: Sequence[Institution], users: Sequence[User]
) -> dict[uuid.UUID, Institution]:
    """The institution of each user shown, by id (beyond the select's cap, read one by one)."""
    known = {i.id: i for i in institutions}
    for user in users:
        if user.institution_id is not None and user.institution_id not in known:
            known[user.institution_id] = institution_service.get_institution(session, user.institution_id, actor=actor)
    return known


def _role_choices() -> list[tuple[str, str]]:
    return [(role.value, ROLE_LABELS.get(role, role.value)) for role in Role]


# --- the list ------------------------------------------------------------------------------------


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    role: Annotated[str, Query(max_length=40)] = "",
    institution: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    service.require_user_admin(actor, doing="managing users")
    role = role.strip()
    institution = institution.strip()
    status = status.strip()
    if role and role not in {r.value for r in Role}:
        raise InvalidInput(f"unknown role {role!r}; the roles are {', '.join(r.value for r in Role)}")
    if status and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; choose active or deactivated")
    offset = (page - 1) * PAGE_SIZE
    users, total = service.list_users(
        session,
        actor=actor,
        offset=offset,
        limit=PAGE_SIZE,
        role=Role(role) if role else None,
        institution_code=institution or None,
        active=STATUSES[status] if status else None,
    )
    institutions = _institutions(session, actor)
    filters = {k: v for k, v in (("role", role), ("institution", institution), ("status", status)) if v}
    context = {
        "users": users,
        "institutions": institutions,
        "by_id": _institution_names(session, actor, institutions, users),
        "roles": _role_choices(),
        "role_labels": {r.value: text for r, text in ROLE_LABELS.items()},
        "role": role,
        "institution": institution,
        "status": status,
        "filtered": bool(filters),
        **paging("/admin/users", page=page, size=PAGE_SIZE, shown=len(users), total=total, filters=filters),
    }
    return render(request, "admin/users.html", context, actor=actor)


# --- a new user ----------------------------------------------------------------------------------


def _new_page(
    request: Request,
    session: Session,
    actor: Actor,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    status_code: int = 200,
) -> Response:
    context = {
        "values": dict(values),
        "errors": dict(errors),
        "labels": FIELDS,
        "roles": _role_choices(),
        "institutions": _institutions(session, actor),
        "min_password": service.MIN_PASSWORD_LENGTH,
        "max_password": service.MAX_PASSWORD_LENGTH,
    }
    return render(request, "admin/user_new.html", context, actor=actor, status_code=status_code)


@router.get("/admin/users/new", response_class=HTMLResponse)
def new_user_page(request: Request, session: DbSession, actor: RequiredWebActor) -> Response:
    service.require_user_admin(actor, doing="creating a user")
    return _new_page(request, session, actor, {}, {})


def _field_errors(exc: InvalidInput | Conflict | NotFound) -> dict[str, str]:
    """The service's refusal under the form field it concerns. The service refuses one field at a
    time with a sentence that names it ("password too short: ...", "role filer needs an
    institution"), which says more than the short per-field message."""
    detail = exc.detail[:1].upper() + exc.detail[1:]
    text = detail if detail.endswith(".") else detail + "."
    name = ""
    if isinstance(exc, InvalidInput):
        for error in exc.extra.get("errors", []):
            loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "form")]
            if loc and loc[-1] in FIELDS:
                name = loc[-1]
                break
    elif isinstance(exc, NotFound):
        name = "institution"
    elif exc.extra.get("field") in FIELDS:
        name = str(exc.extra["field"])
    return {name: text}


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    email: Annotated[str, Form(max_length=320)] = "",
    display_name: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
    institution: Annotated[str, Form(max_length=40)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """A refused form is shown again with each field's error and the values typed, except the
    password, which is never sent back (422)."""
    service.require_user_admin(actor, doing="creating a user")
    typed = {"email": email, "display_name": display_name, "role": role, "institution": institution}
    errors: dict[str, str] = {}
    chosen: Role | None = None
    try:
        chosen = Role(role.strip())
    except ValueError:
        errors["role"] = f"{FIELDS['role']}: choose one of the roles."
    if not email.strip():
        errors["email"] = f"{FIELDS['email']} is required."
    if not password:
        errors["password"] = f"{FIELDS['password']} is required: the user signs in with it."
    if errors or chosen is None:
        return _new_page(request, session, actor, typed, errors, status_code=422)
    try:
        user = service.create_user(
            session,
            email=email,
            role=chosen,
            institution_code=institution.strip() or None,
            display_name=display_name,
            password=password,
            actor=actor,
            at=now,
        )
    except (InvalidInput, Conflict, NotFound) as exc:
        session.rollback()
        return _new_page(request, session, actor, typed, _field_errors(exc), status_code=422)
    return redirect(request, f"/admin/users/{user.id}", notice=f"User {user.email} created.")


# --- a user's page and the commands on it ----------------------------------------------------------


def _user_context(session: Session, actor: Actor, user: User) -> dict[str, Any]:
    tokens = service.list_tokens(session, user, actor=actor)
    institution = (
        institution_service.get_institution(session, user.institution_id, actor=actor)
        if user.institution_id is not None
        else None
    )
    return {
        "account": user,
        "role_text": ROLE_LABELS.get(Role(user.role), user.role),
        "institution": institution,
        "tokens": tokens,
        "live_tokens": sum(1 for t in tokens if t.revoked_at is None),
        "is_self": actor.user_id == user.id,
        "min_password": service.MIN_PASSWORD_LENGTH,
        "max_password": service.MAX_PASSWORD_LENGTH,
        "audit_url": f"/audit?object_type=user&object_id={user.id}",
    }


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: str, session: DbSession, actor: RequiredWebActor) -> Response:
    user = service.get_user(session, id_from_url(user_id, "user"), actor=actor)
    return render(request, "admin/user.html", _user_context(session, actor, user), actor=actor)


@router.post("/admin/users/{user_id}/password")
def set_password(
    request: Request,
    user_id: str,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    new_password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    user = service.get_user(session, id_from_url(user_id, "user"), actor=actor)
    service.set_password(session, user, new_password, actor=actor, at=now)
    return redirect(request, f"/admin/users/{user.id}", notice=f"Password set for {user.email}.")


@router.post("/admin/users/{user_id}/tokens", response_class=HTMLResponse)
def issue_token(
    request: Request,
    user_id: str,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    label: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """The new token is in this answer only (the page is never cached); it is not stored."""
    user = service.get_user(session, id_from_url(user_id, "user"), actor=actor)
    issued = service.issue_token(session, user, label=label, actor=actor, at=now)
    context = {"account": user, "token": issued.token, "record": issued.record}
    return render(request, "admin/token_issued.html", context, actor=actor)


@router.post("/admin/users/{user_id}/revoke-tokens")
def revoke_tokens(
    request: Request,
    user_id: str,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
) -> Response:
    user = service.get_user(session, id_from_url(user_id, "user"), actor=actor)
    count = service.revoke_tokens(session, user, prefix=None, actor=actor, at=now)
    notice = (
        f"Revoked {count} token{'' if count == 1 else 's'} of {user.email}." if count else "No live token to revoke."
    )
    return redirect(request, f"/admin/users/{user.id}", notice=notice)


@router.post("/admin/users/{user_id}/deactivate")
def deactivate(
    request: Request,
    user_id: str,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
) -> Response:
    user = service.get_user(session, id_from_url(user_id, "user"), actor=actor)
    service.deactivate_user(session, user, actor=actor, at=now)
    notice = f"{user.email} is deactivated: their sign-in and API tokens no longer work."
    return redirect(request, f"/admin/users/{user.id}", notice=notice)


@router.post("/admin/users/{user_id}/reactivate")
def reactivate(
    request: Request,
    user_id: str,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
) -> Response:
    user = service.get_user(session, id_from_url(user_id, "user"), actor=actor)
    service.reactivate_user(session, user, actor=actor, at=now)
    notice = f"{user.email} is active again: they can sign in, and their API tokens that were not revoked work again."
    return redirect(request, f"/admin/users/{user.id}", notice=notice)


__all__ = ["router"]
