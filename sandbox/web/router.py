"""Server-rendered pages: sign-in and sign-out, the home page by role, the public register."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sandbox.actor import Actor
from sandbox.api.deps import DbSession
from sandbox.clock import BUREAU_TZ, Clock
from sandbox.models import Role, User
from sandbox.pilot import repository as pilot_repository
from sandbox.pilot.service import list_pilots
from sandbox.user import repository as user_repository
from sandbox.user.service import check_password
from sandbox.web import auth
from sandbox.web.auth import RequiredWebActor, SignInLimiter

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
REGISTER_PAGE_SIZE = 100
SIGN_IN_FAILED = "The email address or password is not correct."
SIGN_IN_LOCKED = (
    "Too many failed sign-in attempts. Sign-in is paused for 15 minutes for this account and this computer; "
    "try again later."
)

ROLE_LABELS = {
    Role.admin: "Bureau administrator",
    Role.reviewer: "Bureau reviewer",
    Role.approver: "Bureau approver",
    Role.supervisor: "Bureau supervisor",
    Role.institution_admin: "Institution administrator",
    Role.filer: "Institution filer",
}

# The queues the bureau home will link to as their pages arrive (issue 5).
BUREAU_QUEUES = (
    "Applications to review or decide",
    "Breakers tripped and not acknowledged",
    "Exemptions to decide",
    "Overdue filings",
)


def local_time(value: datetime | None) -> str:
    """A stored UTC instant as the bureau's local time."""
    if value is None:
        return ""
    return value.astimezone(BUREAU_TZ).strftime("%Y-%m-%d %H:%M") + " (Asia/Shanghai)"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["local_time"] = local_time

router = APIRouter(include_in_schema=False)


def navigation(actor: Actor | None) -> list[tuple[str, str]]:
    items = [("/", "Home")] if actor is not None else []
    return [*items, ("/register", "Public register")]


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    actor: Actor | None = None,
    user: User | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    session, is_new = auth.ensure_session(request)
    clock: Clock = request.app.state.clock
    full = {
        "actor": actor,
        "user": user,
        "role_label": ROLE_LABELS.get(actor.role, "") if actor is not None and actor.role is not None else "",
        "nav": navigation(actor),
        "csrf_token": auth.csrf_token(request.app.state.settings, session),
        "now": clock.now(),
        "current_path": request.url.path,
        **context,
    }
    response = templates.TemplateResponse(request, name, full, status_code=status_code)
    if is_new:
        auth.set_session_cookie(request, response, session)
    # Pages show personal data: never cache them.
    response.headers["Cache-Control"] = "no-store"
    return response


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
    csrf_token: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    auth.check_csrf(request, csrf_token)
    target = auth.safe_next(next_path)
    now: datetime = request.app.state.clock.now()
    limiter = _limiter(request)
    keys = auth.limiter_keys(request, email)
    if limiter.locked(keys, now):
        context = {"next": target, "email": email, "error": SIGN_IN_LOCKED}
        return render(request, "sign_in.html", context, status_code=429)
    user = user_repository.find_user_by_email(session, email.strip()) if email.strip() else None
    if user is None or not user.is_active or not check_password(user, password):
        limiter.fail(keys, now)
        context = {"next": target, "email": email, "error": SIGN_IN_FAILED}
        return render(request, "sign_in.html", context, status_code=401)
    limiter.succeed(keys[0])
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(request, response, auth.new_session(user.id, now=now))
    return response


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    auth.check_csrf(request, csrf_token)
    response = RedirectResponse("/sign-in", status_code=303)
    auth.clear_session_cookie(request, response)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession, actor: RequiredWebActor) -> Response:
    user = session.get(User, actor.user_id)
    context: dict[str, Any] = {"queues": BUREAU_QUEUES if actor.is_bureau else (), "pilots": []}
    if actor.is_institution:
        pilots, _total = list_pilots(session, actor=actor, state=None, program=None, offset=0, limit=200)
        labels = pilot_repository.labels(session, pilots)
        context["pilots"] = [(pilot, labels.get(pilot.id, ("", ""))[0]) for pilot in pilots]
    return render(request, "home.html", context, actor=actor, user=user)


@router.get("/register", response_class=HTMLResponse)
def register(request: Request, session: DbSession, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    offset = (page - 1) * REGISTER_PAGE_SIZE
    rows, total = pilot_repository.public_register(session, offset, REGISTER_PAGE_SIZE)
    actor = auth.web_actor(auth.signed_in_user(request, session))
    context = {
        "rows": rows,
        "total": total,
        "page": page,
        "has_next": offset + len(rows) < total,
    }
    return render(request, "register.html", context, actor=actor)
