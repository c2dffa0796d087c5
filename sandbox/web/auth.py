"""Web sessions: a signed cookie, CSRF tokens, the signed-in actor and a sign-in rate limit.

The cookie carries the user id (absent before sign-in), the issue time and a random session id;
it is signed with HMAC-SHA256 under a key derived from ``Settings.secret_key``. Nothing is stored
server-side, so a user is re-read on every request: a deactivated user's cookie stops working at
once. Every page gets a session (anonymous until sign-in) so that even the sign-in form carries a
CSRF token; the session id is replaced at sign-in so a planted cookie cannot be promoted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response

from sandbox.actor import Actor
from sandbox.api.deps import DbSession
from sandbox.clock import Clock
from sandbox.config import Settings
from sandbox.models import User
from sandbox.user.service import actor_for

COOKIE_NAME = "sandbox_session"
SESSION_LIFETIME = timedelta(hours=8)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class WebSession:
    sid: str
    user_id: uuid.UUID | None
    issued_at: int  # Unix seconds, UTC


class SignInRequired(Exception):
    """A page needs a signed-in user; the handler redirects to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Exception):
    """A POST without the session's CSRF token: refused with 403 before anything is read or written."""


def _key(settings: Settings, purpose: str) -> bytes:
    return hashlib.sha256(f"sandbox.web.{purpose}:{settings.secret_key}".encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_session(settings: Settings, session: WebSession) -> str:
    payload = {"sid": session.sid, "iat": session.issued_at}
    if session.user_id is not None:
        payload["uid"] = str(session.user_id)
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(_key(settings, "session"), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def decode_session(settings: Settings, value: str, *, now: datetime) -> WebSession | None:
    """The session in a cookie value, or None when it is malformed, tampered with or expired."""
    body, _, signature = value.partition(".")
    expected = _b64(hmac.new(_key(settings, "session"), body.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        return None
    try:
        payload = json.loads(_unb64(body))
        sid = str(payload["sid"])
        issued_at = int(payload["iat"])
        user_id = uuid.UUID(payload["uid"]) if "uid" in payload else None
    except (ValueError, KeyError, TypeError):
        return None
    age = now.timestamp() - issued_at
    if age < 0 or age > SESSION_LIFETIME.total_seconds():
        return None
    return WebSession(sid=sid, user_id=user_id, issued_at=issued_at)


def new_session(user_id: uuid.UUID | None, *, now: datetime) -> WebSession:
    return WebSession(sid=secrets.token_urlsafe(24), user_id=user_id, issued_at=int(now.timestamp()))


def csrf_token(settings: Settings, session: WebSession) -> str:
    return _b64(hmac.new(_key(settings, "csrf"), session.sid.encode(), hashlib.sha256).digest())


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock.now()


def current_session(request: Request) -> WebSession | None:
    """The valid session in the request's cookie (None when absent or invalid)."""
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    return decode_session(_settings(request), value, now=_now(request))


def ensure_session(request: Request) -> tuple[WebSession, bool]:
    """The request's session, or a new anonymous one; the flag says whether the cookie must be set."""
    found = current_session(request)
    if found is not None:
        return found, False
    return new_session(None, now=_now(request)), True


def set_session_cookie(request: Request, response: Response, session: WebSession) -> None:
    settings = _settings(request)
    response.set_cookie(
        COOKIE_NAME,
        encode_session(settings, session),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.base_url.lower().startswith("https://"),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    settings = _settings(request)
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.base_url.lower().startswith("https://"),
    )


def check_csrf(request: Request, token: str) -> WebSession:
    """The session whose CSRF token ``token`` is; refuses (403) otherwise."""
    session = current_session(request)
    if session is None or not token or not hmac.compare_digest(token, csrf_token(_settings(request), session)):
        raise CsrfRefused()
    return session


async def csrf_protected(request: Request) -> None:
    """Every page router's dependency: a POST is refused (403) unless its form carries the
    session's CSRF token, before anything else of the request is read or written."""
    if request.method != "POST":
        return
    form = await request.form()  # Starlette keeps the parsed form for the endpoint's own fields
    token = form.get("csrf_token")
    check_csrf(request, token if isinstance(token, str) else "")


def signed_in_user(request: Request, db: DbSession) -> User | None:
    session = current_session(request)
    if session is None or session.user_id is None:
        return None
    user = db.get(User, session.user_id)
    if user is None or not user.is_active:
        return None
    request.state.web_user = user  # the layout shows who is signed in
    return user


def web_actor(user: Annotated[User | None, Depends(signed_in_user)]) -> Actor | None:
    return actor_for(user) if user is not None else None


def require_web_actor(request: Request, actor: Annotated[Actor | None, Depends(web_actor)]) -> Actor:
    if actor is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    return actor


WebActor = Annotated[Actor | None, Depends(web_actor)]
RequiredWebActor = Annotated[Actor, Depends(require_web_actor)]


def safe_next(value: str | None) -> str:
    """A relative path on this site, or "/": never a redirect to another host."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def sign_in_url(next_path: str) -> str:
    return "/sign-in?next=" + quote(safe_next(next_path), safe="/")


@dataclass
class _Failures:
    times: deque[datetime] = field(default_factory=deque)
    locked_until: datetime | None = None


class SignInLimiter:
    """Failed sign-ins per email and per client address, in this process's memory only.

    Several server processes each keep their own counts, and a restart forgets them: an attacker
    gets at most MAX_FAILURES tries per process per LOCKOUT, which is acceptable here.
    """

    def __init__(self) -> None:
        self._failures: dict[str, _Failures] = {}

    def locked(self, keys: list[str], now: datetime) -> bool:
        for key in keys:
            entry = self._failures.get(key)
            if entry is not None and entry.locked_until is not None and now < entry.locked_until:
                return True
        return False

    def fail(self, keys: list[str], now: datetime) -> None:
        for key in keys:
            entry = self._failures.setdefault(key, _Failures())
            while entry.times and now - entry.times[0] > FAILURE_WINDOW:
                entry.times.popleft()
            entry.times.append(now)
            if len(entry.times) >= MAX_FAILURES:
                entry.locked_until = now + LOCKOUT
                entry.times.clear()

    def succeed(self, key: str) -> None:
        self._failures.pop(key, None)


def limiter_keys(request: Request, email: str) -> list[str]:
    address = request.client.host if request.client else "unknown"
    return [f"email:{email.strip().lower()}", f"addr:{address}"]
