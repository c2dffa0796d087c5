from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sandbox.actor import SYSTEM
from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.main import create_app
from sandbox.models import AuditEntry, Institution, Role, User
from sandbox.user.service import create_user, deactivate_user
from sandbox.web import install
from sandbox.web.auth import COOKIE_NAME, WebSession, decode_session, encode_session
from tests.factories import add_institution
from tests.support import NOW
from tests.world import World

PASSWORD = "sandbox-demo-2026"
FAILED = "The email address or password is not correct."


@pytest.fixture
def app(settings: Settings, database: Database, clock: FixedClock) -> Any:
    app = create_app(settings, database=database, clock=clock)
    install(app)
    return app


def make_user(database: Database, email: str, role: Role = Role.reviewer, institution: str | None = None) -> User:
    with database.unit_of_work() as session:
        if (
            institution is not None
            and session.scalar(select(Institution).where(Institution.code == institution)) is None
        ):
            add_institution(session, institution, NOW)
        return create_user(
            session, email=email, role=role, institution_code=institution, password=PASSWORD, actor=SYSTEM, at=NOW
        )


def csrf(client: TestClient, path: str = "/sign-in") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str, next_path: str = "/") -> Any:
    token = csrf(client)
    data = {"csrf_token": token, "email": email, "password": password, "next": next_path}
    return client.post("/sign-in", data=data, follow_redirects=False)


def test_sign_in_sets_a_safe_cookie_and_shows_the_user(client: TestClient, database: Database) -> None:
    make_user(database, "reviewer@bureau.example")
    response = sign_in(client, "Reviewer@Bureau.example", PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=28800" in cookie
    assert "Secure" not in cookie  # base_url is http in tests
    home = client.get("/")
    assert home.status_code == 200
    assert "<strong>reviewer</strong>" in home.text
    assert "Signed in as" in home.text and "Bureau reviewer" in home.text
    assert "Work queues" in home.text and home.headers["content-type"] == "text/html; charset=utf-8"


def test_cookie_is_secure_when_the_site_is_https(settings: Settings, database: Database, clock: FixedClock) -> None:
    app = create_app(
        settings.model_copy(update={"base_url": "https://sandbox.example"}), database=database, clock=clock
    )
    install(app)
    make_user(database, "reviewer@bureau.example")
    with TestClient(app, base_url="https://testserver") as client:
        response = sign_in(client, "reviewer@bureau.example", PASSWORD)
    assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


def test_wrong_password_and_unknown_email_look_the_same(
    client: TestClient, database: Database, settings: Settings
) -> None:
    make_user(database, "reviewer@bureau.example")
    wrong = sign_in(client, "reviewer@bureau.example", "not-the-password")
    unknown = sign_in(client, "nobody@bureau.example", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert FAILED in response.text
        assert "set-cookie" not in response.headers
        session = decode_session(settings, client.cookies[COOKIE_NAME], now=NOW)
        assert session is not None and session.user_id is None
    assert wrong.text.replace("reviewer@", "X@") == unknown.text.replace("nobody@", "X@")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sixth_attempt_is_refused_even_with_the_right_password(
    client: TestClient, database: Database, clock: FixedClock
) -> None:
    make_user(database, "reviewer@bureau.example")
    for _ in range(5):
        assert FAILED in sign_in(client, "reviewer@bureau.example", "not-the-password").text
    locked = sign_in(client, "reviewer@bureau.example", PASSWORD)
    assert locked.status_code == 429 and "Too many failed sign-in attempts" in locked.text
    assert client.get("/", follow_redirects=False).status_code == 303
    clock.at = NOW + timedelta(minutes=14)
    assert sign_in(client, "reviewer@bureau.example", PASSWORD).status_code == 429
    clock.at = NOW + timedelta(minutes=15, seconds=1)
    assert sign_in(client, "reviewer@bureau.example", PASSWORD).status_code == 303


def test_failures_from_one_address_across_emails_are_limited(client: TestClient, database: Database) -> None:
    make_user(database, "reviewer@bureau.example")
    for n in range(5):
        assert sign_in(client, f"guess{n}@bureau.example", "whatever-password").status_code == 401
    assert sign_in(client, "reviewer@bureau.example", PASSWORD).status_code == 429


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_post_without_the_csrf_token_is_refused_and_writes_nothing(
    client: TestClient, database: Database, token: str | None
) -> None:
    make_user(database, "reviewer@bureau.example")
    csrf(client)  # an anonymous session exists: the token, not the cookie, is what is missing
    data = {"email": "reviewer@bureau.example", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    with database.sessions() as session:
        before = session.scalar(select(func.count()).select_from(AuditEntry))
    response = client.post("/sign-in", data=data, follow_redirects=False)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == before
    assert client.get("/", follow_redirects=False).status_code == 303


def test_another_sessions_csrf_token_is_refused(client: TestClient, app: Any, database: Database) -> None:
    make_user(database, "reviewer@bureau.example")
    with TestClient(app) as other:
        foreign = csrf(other)
    csrf(client)
    data = {"csrf_token": foreign, "email": "reviewer@bureau.example", "password": PASSWORD}
    assert client.post("/sign-in", data=data, follow_redirects=False).status_code == 403


def test_sign_out_needs_the_token_and_clears_the_cookie(client: TestClient, database: Database) -> None:
    make_user(database, "reviewer@bureau.example")
    sign_in(client, "reviewer@bureau.example", PASSWORD)
    assert client.post("/sign-out", data={}, follow_redirects=False).status_code == 403
    assert client.get("/").status_code == 200
    response = client.post("/sign-out", data={"csrf_token": csrf(client, "/")}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    assert "Max-Age=0" in response.headers["set-cookie"] or "expires=" in response.headers["set-cookie"].lower()
    assert client.get("/", follow_redirects=False).status_code == 303


def test_tampered_or_forged_cookies_are_ignored(client: TestClient, database: Database, settings: Settings) -> None:
    user = make_user(database, "reviewer@bureau.example")
    sign_in(client, "reviewer@bureau.example", PASSWORD)
    good = client.cookies[COOKIE_NAME]
    body, _, signature = good.partition(".")
    forged_key = settings.model_copy(update={"secret_key": "another-secret-key-of-enough-length-99"})
    forged = encode_session(forged_key, WebSession(sid="x", user_id=user.id, issued_at=int(NOW.timestamp())))
    for value in (body + "." + signature[:-2] + "AA", body[:-2] + "." + signature, forged, "garbage"):
        client.cookies.clear()
        client.cookies.set(COOKIE_NAME, value)
        assert client.get("/", follow_redirects=False).status_code == 303, value


def test_session_expires_after_eight_hours(client: TestClient, database: Database, clock: FixedClock) -> None:
    make_user(database, "reviewer@bureau.example")
    sign_in(client, "reviewer@bureau.example", PASSWORD)
    clock.at = NOW + timedelta(hours=7, minutes=59)
    assert client.get("/", follow_redirects=False).status_code == 200
    clock.at = NOW + timedelta(hours=8, seconds=1)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_deactivated_users_cookie_stops_working(client: TestClient, database: Database) -> None:
    user = make_user(database, "reviewer@bureau.example")
    sign_in(client, "reviewer@bureau.example", PASSWORD)
    assert client.get("/", follow_redirects=False).status_code == 200
    with database.unit_of_work() as session:
        deactivate_user(session, session.get_one(User, user.id), actor=SYSTEM, at=NOW)
    assert client.get("/", follow_redirects=False).status_code == 303
    assert sign_in(client, "reviewer@bureau.example", PASSWORD).status_code == 401


def test_pages_redirect_to_sign_in_with_a_relative_next(client: TestClient, database: Database) -> None:
    response = client.get("/?tab=1", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=/%3Ftab%3D1"
    make_user(database, "reviewer@bureau.example")
    assert sign_in(client, "reviewer@bureau.example", PASSWORD, "/?tab=1").headers["location"] == "/?tab=1"


@pytest.mark.parametrize(
    "target", ["https://evil.example", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "evil"]
)
def test_next_never_leaves_the_site(client: TestClient, database: Database, target: str) -> None:
    make_user(database, "reviewer@bureau.example")
    page = client.get("/sign-in", params={"next": target})
    assert "evil" not in page.text and "javascript" not in page.text
    assert sign_in(client, "reviewer@bureau.example", PASSWORD, target).headers["location"] == "/"


def test_institution_home_lists_only_its_own_pilots(client: TestClient, database: Database) -> None:
    make_user(database, "admin@bank-b.example", Role.institution_admin, "BANK-B")
    sign_in(client, "admin@bank-b.example", PASSWORD)
    home = client.get("/")
    assert home.status_code == 200 and "Institution administrator" in home.text
    assert "Your pilots" in home.text and "no pilots yet" in home.text
    assert "Work queues" not in home.text


def test_institution_home_shows_its_pilots_and_not_anothers(world: World, database: Database) -> None:
    pilot = world.to_pilot()
    make_user(database, "web-admin@bank-a.example", Role.institution_admin, "BANK-A")
    make_user(database, "web-admin@bank-b.example", Role.institution_admin, "BANK-B")
    client = world.client
    sign_in(client, "web-admin@bank-a.example", PASSWORD)
    assert pilot["reference"] in client.get("/").text
    client.cookies.clear()
    sign_in(client, "web-admin@bank-b.example", PASSWORD)
    home = client.get("/")
    assert home.status_code == 200 and pilot["reference"] not in home.text and "no pilots yet" in home.text


def test_sign_ins_are_logged_for_security_monitoring(
    client: TestClient, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    make_user(database, "reviewer@bureau.example")
    with caplog.at_level("INFO", logger="sandbox.web.sign_in"):
        sign_in(client, "reviewer@bureau.example", "wrong-password")
        sign_in(client, "reviewer@bureau.example", PASSWORD)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sandbox.web.sign_in"]
    assert messages == [
        ("WARNING", "sign-in failed: 'reviewer@bureau.example' from addr:testclient"),
        ("INFO", "signed in: reviewer@bureau.example (reviewer)"),
    ]
    assert all(PASSWORD not in text and "wrong-password" not in text for _, text in messages)
