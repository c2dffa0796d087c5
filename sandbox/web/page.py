"""What every page shares: the templates and their filters, the layout's context, navigation by
role, one-shot notices after a form (flash), and the route class that turns a domain error into
an HTML answer instead of problem+json.

Forms follow Post/Redirect/Get: a command that succeeds redirects (303) to the object's page with a
notice; a command the service refuses redirects back to the page it was sent from with the
service's own message as an error, and the unit of work has rolled back, so nothing is
half-written. A page that cannot be shown (unknown id, another institution's object, a role that
may not see it) answers with an HTML error page and the error's own status (404, 403, ...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode, urlsplit

from fastapi import Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from sandbox.actor import Actor
from sandbox.clock import BUREAU_TZ, Clock, bureau_date
from sandbox.config import Settings
from sandbox.errors import InvalidInput, NotFound, SandboxError
from sandbox.models import Role, User
from sandbox.user.service import actor_for
from sandbox.web import auth

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
FLASH_COOKIE = "sandbox_flash"

ROLE_LABELS = {
    Role.admin: "Bureau administrator",
    Role.reviewer: "Bureau reviewer",
    Role.approver: "Bureau approver",
    Role.supervisor: "Bureau supervisor",
    Role.institution_admin: "Institution administrator",
    Role.filer: "Institution filer",
}


def _time(value: datetime | date, text: str) -> Markup:
    """A date or instant as a ``<time>`` element: machine-readable, and never broken across lines."""
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), text)


def local_time(value: datetime | None) -> Markup | str:
    """A stored UTC instant as the bureau's local time."""
    if value is None:
        return ""
    return _time(value, value.astimezone(BUREAU_TZ).strftime("%Y-%m-%d %H:%M") + " (Asia/Shanghai)")


def short_time(value: datetime | None) -> Markup | str:
    """A stored UTC instant as bureau local time without the zone label (tables say it once)."""
    if value is None:
        return ""
    return _time(value, value.astimezone(BUREAU_TZ).strftime("%Y-%m-%d %H:%M"))


def iso_date(value: date | None) -> Markup | str:
    return _time(value, value.isoformat()) if value is not None else ""


def number(value: Decimal | int | float | str | None) -> str:
    """A stored number as the exact decimal it is, without exponent or trailing zeros noise."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
        return text
    return str(value)


def label(value: Any) -> str:
    """An enum value or snake_case word as words: ``info_requested`` -> ``info requested``."""
    raw = getattr(value, "value", value)
    return str(raw).replace("_", " ").replace("-", " ")


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["local_time"] = local_time
templates.env.filters["short_time"] = short_time
templates.env.filters["iso_date"] = iso_date
templates.env.filters["number"] = number
templates.env.filters["label"] = label


def navigation(actor: Actor | None) -> list[tuple[str, str]]:
    """The main menu for a role: bureau staff see the queues and boards, institutions their own
    work; the public register is linked from every page's footer."""
    if actor is None:
        return [("/register", "Public register")]
    if actor.is_bureau:
        items = [
            ("/", "Work queues"),
            ("/applications", "Applications"),
            ("/pilots", "Pilots"),
            ("/breakers", "Breaker board"),
            ("/exemptions", "Exemptions"),
            ("/filings", "Filings"),
            ("/programs", "Programs"),
            ("/institutions", "Institutions"),
            ("/audit", "Audit trail"),
        ]
        if actor.role is Role.admin:
            items.append(("/admin/users", "Users"))
        return items
    items = [
        ("/", "Home"),
        ("/applications", "Applications"),
        ("/pilots", "Pilots"),
        ("/filings", "Filings"),
        ("/filings/upload", "Upload filings"),
        ("/programs", "Programs"),
    ]
    if actor.role is Role.institution_admin:
        items.append(("/institutions/mine", "Our institution"))
    return items


def _nav_current(path: str, nav: list[tuple[str, str]]) -> str | None:
    """The menu entry the page belongs to: the longest menu path that prefixes it."""
    best: str | None = None
    for href, _ in nav:
        matches = path == href or (href != "/" and path.startswith(href + "/"))
        if matches and (best is None or len(href) > len(best)):
            best = href
    return best


# --- flash: a one-shot notice carried by a signed cookie across the redirect after a form ------


def _flash_key(settings: Settings) -> bytes:
    return hashlib.sha256(f"sandbox.web.flash:{settings.secret_key}".encode()).digest()


def _encode_flash(settings: Settings, kind: str, text: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps({"k": kind, "t": text}).encode()).decode().rstrip("=")
    signature = hmac.new(_flash_key(settings), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{signature}"


def _decode_flash(settings: Settings, value: str) -> dict[str, str] | None:
    body, _, signature = value.partition(".")
    expected = hmac.new(_flash_key(settings), body.encode(), hashlib.sha256).hexdigest()
    if not signature or not hmac.compare_digest(signature, expected):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return {"kind": str(payload["k"]), "text": str(payload["t"])}
    except (ValueError, KeyError, TypeError):
        return None


def redirect(request: Request, path: str, *, notice: str | None = None, error: str | None = None) -> Response:
    """303 to a page on this site, with a one-shot notice (or error) shown at the top of it."""
    response = RedirectResponse(auth.safe_next(path), status_code=303)
    if notice is not None or error is not None:
        settings: Settings = request.app.state.settings
        kind, text = ("error", error) if error is not None else ("notice", notice or "")
        response.set_cookie(
            FLASH_COOKIE,
            _encode_flash(settings, kind, text[:2000]),
            max_age=120,
            path="/",
            httponly=True,
            samesite="lax",
            secure=settings.base_url.lower().startswith("https://"),
        )
    return response


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    actor: Actor | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page in the layout: who is signed in, the menu for their role, the CSRF token, any notice."""
    user: User | None = getattr(request.state, "web_user", None) if actor is not None else None
    session, is_new = auth.ensure_session(request)
    clock: Clock = request.app.state.clock
    settings: Settings = request.app.state.settings
    nav = navigation(actor)
    raw_flash = request.cookies.get(FLASH_COOKIE)
    flash = _decode_flash(settings, raw_flash) if raw_flash else None
    full = {
        "actor": actor,
        "user": user,
        "role_label": ROLE_LABELS.get(actor.role, "") if actor is not None and actor.role is not None else "",
        "nav": nav,
        "nav_current": _nav_current(request.url.path, nav),
        "csrf_token": auth.csrf_token(settings, session),
        "now": clock.now(),
        "current_path": request.url.path,
        "flash": flash,
        **context,
    }
    response = templates.TemplateResponse(request, name, full, status_code=status_code)
    if is_new:
        auth.set_session_cookie(request, response, session)
    if raw_flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    # Pages show personal data: never cache them.
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An error as a page in the layout, with the error's own status."""
    actor = _actor_of(request)
    context = {"title": title, "detail": detail, "status": status}
    return render(request, "error.html", context, actor=actor, status_code=status)


def _actor_of(request: Request) -> Actor | None:
    """The signed-in actor for an error page, read without the request's (rolled back) session."""
    session = auth.current_session(request)
    if session is None or session.user_id is None:
        return None
    database = request.app.state.database
    with database.unit_of_work() as db:
        user = db.get(User, session.user_id)
        if user is None or not user.is_active:
            return None
        request.state.web_user = user
        return actor_for(user)


def _came_from(request: Request) -> str | None:
    """The path of the page a form was sent from (Referer), when it is on this site."""
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    safe = auth.safe_next(path)
    return safe if safe != "/" or parts.path == "/" else None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form"))
        parts.append(f"{where}: {err.get('msg', 'is not valid')}" if where else str(err.get("msg", "")))
    return "The form is not complete: " + "; ".join(parts)


class WebRoute(APIRoute):
    """The route class of every page. It marks the route as a page: the app's error handlers
    (installed by ``sandbox.web.install``) answer a page's errors in HTML through
    ``web_error_response``. The handlers run after the request's unit of work has rolled back,
    which a wrapper around the route handler could not guarantee."""


def is_page(request: Request) -> bool:
    return isinstance(request.scope.get("route"), WebRoute)


def web_error_response(request: Request, exc: SandboxError | RequestValidationError) -> Response:
    """A refused form goes back to the page it came from with the reason; a page that cannot be
    shown is an error page with the error's status."""
    if isinstance(exc, SandboxError):
        status, title, detail = exc.status, exc.title, _sentence(exc.detail)
    else:
        status, title, detail = 422, "Invalid form", _validation_message(exc)
    if status == 401:
        return RedirectResponse(auth.sign_in_url(request.url.path), status_code=303)
    back = _came_from(request) if request.method == "POST" else None
    if back is not None:
        return redirect(request, back, error=detail)
    return error_page(request, status, title, detail)


# --- lists and ids ---------------------------------------------------------------------------------


def paging(
    path: str,
    *,
    page: int,
    size: int,
    shown: int,
    total: int,
    filters: Mapping[str, object] | None = None,
    fragment: str = "",
) -> dict[str, Any]:
    """What a paged list shows around its table: which rows these are of how many, and the links
    to the pages either side, keeping the list's filters (for the ``pager`` macro)."""
    offset = (page - 1) * size
    query = {name: str(value) for name, value in (filters or {}).items() if value not in (None, "")}

    def url(number: int) -> str:
        return f"{path}?{urlencode({**query, 'page': number})}{fragment}"

    return {
        "page": page,
        "total": total,
        "first": offset + 1 if shown else 0,
        "last": offset + shown,
        "previous_url": url(page - 1) if page > 1 else None,
        "next_url": url(page + 1) if offset + shown < total else None,
    }


def id_from_url(text: str, what: str) -> uuid.UUID:
    """An id from the address: text that is not one names nothing, so the page is not found."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"no such {what}") from None


# --- forms -----------------------------------------------------------------------------------------

# The version of the object the form was rendered with; a stale form is refused by the service (412).
FormVersion = Annotated[int | None, Form(ge=0, le=10**12)]
M = TypeVar("M", bound=BaseModel)


def bureau_today(request: Request) -> date:
    """The bureau's date now (Asia/Shanghai), by the app's clock."""
    clock: Clock = request.app.state.clock
    return bureau_date(clock.now())


def _field_error(error: Mapping[str, Any], labels: Mapping[str, str]) -> tuple[str, str]:
    loc = [str(part) for part in error.get("loc", ())]
    name = loc[0] if loc else ""
    label = labels.get(name, name.replace("_", " ").capitalize())
    if len(loc) > 1:
        label = f"{label} ({' '.join(loc[1:]).replace('_', ' ')})"
    kind = str(error.get("type", ""))
    if kind in ("missing", "string_too_short"):
        return name, f"{label} is required."
    if kind.startswith("date"):
        return name, f"{label} must be a date such as 2026-05-10."
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ").rstrip(".")
    return name, f"{label}: {message}."


def parse_form(model: type[M], data: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> M:
    """A form's fields through the API's own request model (blank text counts as absent); a refusal
    is an InvalidInput naming each field by its label on the page, with the errors by field."""
    try:
        return model.model_validate({k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())})
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            name, text = _field_error(error, labels or {})
            errors.setdefault(name, text)
        raise InvalidInput(
            " ".join(errors.values()), [{"loc": ["body", name], "msg": text} for name, text in errors.items()]
        ) from None


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


__all__ = [
    "ROLE_LABELS",
    "FormVersion",
    "WebRoute",
    "bureau_today",
    "error_page",
    "id_from_url",
    "is_page",
    "local_time",
    "navigation",
    "paging",
    "parse_form",
    "redirect",
    "render",
    "templates",
    "web_error_response",
]
