"""Server-rendered pages: sign-in and sign-out, the public register."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sandbox.api.deps import DbSession
from sandbox.pilot import repository as pilot_repository
from sandbox.user import repository as user_repository
from sandbox.user.service import check_password
from sandbox.web import auth
from sandbox.web.auth import SignInLimiter
from sandbox.web.page import WebRoute, paging, render

log = logging.getLogger("sandbox.web.sign_in")
REGISTER_PAGE_SIZE = 100
SIGN_IN_FAILED = "The email address or password is not correct."
SIGN_IN_LOCKED = (
    "Too many failed sign-in attempts. Sign-in is paused for 15 minutes for this account and this computer; "
    "try again later."
)

router = APIRouter(include_in_schema=False, route_class=WebRoute)


def _limiter(request: Request) -> SignInLimiter:
    limiter: SignInLimiter = request.app.state.web_sign_in_limiter
    return limiter


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(
    request: Request, session: DbSession, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    target = auth.safe_next(next_path)
    if auth.signed_in_user(request, session) is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "sign_in.html", {"next": target, "email": "", "error": None})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    session: DbSession,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    target = auth.safe_next(next_path)
    now: datetime = request.app.state.clock.now()
    limiter = _limiter(request)
    keys = auth.limiter_keys(request, email)
    if limiter.locked(keys, now):
        log.warning("sign-in refused while paused: %r from %s", email[:200], keys[-1])
        context = {"next": target, "email": email, "error": SIGN_IN_LOCKED}
        return render(request, "sign_in.html", context, status_code=429)
    user = user_repository.find_user_by_email(session, email.strip()) if email.strip() else None
    if user is None or not user.is_active or not check_password(user, password):
        limiter.fail(keys, now)
        log.warning("sign-in failed: %r from %s", email[:200], keys[-1])
        context = {"next": target, "email": email, "error": SIGN_IN_FAILED}
        return render(request, "sign_in.html", context, status_code=401)
    limiter.succeed(keys[0])
    log.info("signed in: %s (%s)", user.email, user.role)
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(request, response, auth.new_session(user.id, now=now))
    return response


@router.post("/sign-out")
def sign_out(request: Request) -> Response:
    response = RedirectResponse("/sign-in", status_code=303)
    auth.clear_session_cookie(request, response)
    return response


@router.get("/register", response_class=HTMLResponse)
def register(request: Request, session: DbSession, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    offset = (page - 1) * REGISTER_PAGE_SIZE
    rows, total = pilot_repository.public_register(session, offset, REGISTER_PAGE_SIZE)
    actor = auth.web_actor(auth.signed_in_user(request, session))
    context = {
        "rows": rows,
        **paging("/register", page=page, size=REGISTER_PAGE_SIZE, shown=len(rows), total=total),
    }
    return render(request, "register.html", context, actor=actor)
