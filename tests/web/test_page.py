"""The shared page layer: errors in HTML, refused forms back to their page with the reason, one-shot
notices, the menu by role, and HTML 404s outside the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select

from sandbox.api.deps import DbSession
from sandbox.errors import Conflict, NotFound
from sandbox.models import Institution
from sandbox.web import auth
from sandbox.web.auth import RequiredWebActor, csrf_protected
from sandbox.web.page import WebRoute, navigation, paging, redirect, templates
from tests.factories import add_institution
from tests.support import NOW, Login
from tests.web.conftest import Browser
from tests.world import World


@pytest.fixture
def app(app: Any) -> Any:
    """The real app plus a few pages that exercise the shared layer."""
    router = APIRouter(route_class=WebRoute)

    @router.get("/_test/form")
    def form_page(request: Request, actor: RequiredWebActor) -> Response:
        from sandbox.web.page import render

        return render(request, "error.html", {"title": "Form", "detail": "a form", "status": 200}, actor=actor)

    @router.post("/_test/refused")
    def refused(
        request: Request, session: DbSession, actor: RequiredWebActor, csrf_token: Annotated[str, Form()] = ""
    ) -> Response:
        auth.check_csrf(request, csrf_token)
        add_institution(session, "HALF-DONE", NOW)
        session.flush()
        raise Conflict("the pilot is suspended; resume it first")

    @router.post("/_test/done")
    def done(request: Request, actor: RequiredWebActor, csrf_token: Annotated[str, Form()] = "") -> Response:
        auth.check_csrf(request, csrf_token)
        return redirect(request, "/_test/form", notice="Saved.")

    @router.get("/_test/missing")
    def missing(actor: RequiredWebActor) -> Response:
        raise NotFound("no pilot with id 42")

    app.include_router(router)
    return app


def test_a_refused_form_goes_back_to_its_page_with_the_reason_and_writes_nothing(
    browser: Callable[[Login | None], Browser], login: Callable[..., Login], session: Any
) -> None:
    b = browser(login("supervisor"))
    before = session.scalar(select(func.count()).select_from(Institution))
    response = b.submit("/_test/form", "/_test/refused")
    assert response.status_code == 303 and response.headers["location"] == "/_test/form"
    page = b.follow(response)
    assert 'role="alert">The pilot is suspended; resume it first.</p>' in page.text
    assert session.scalar(select(func.count()).select_from(Institution)) == before
    # The notice is shown once only.
    assert "resume it first" not in b.get("/_test/form").text


def test_a_done_form_shows_its_notice_once(
    browser: Callable[[Login | None], Browser], login: Callable[..., Login]
) -> None:
    b = browser(login("supervisor"))
    page = b.follow(b.submit("/_test/form", "/_test/done"))
    assert 'class="flash flash-notice" role="status">Saved.</p>' in page.text
    assert "Saved." not in b.get("/_test/form").text


def test_a_forged_notice_cookie_is_ignored(
    browser: Callable[[Login | None], Browser], login: Callable[..., Login]
) -> None:
    b = browser(login("supervisor"))
    b.client.cookies.set("sandbox_flash", "eyJrIjoibm90aWNlIiwidCI6IkhhY2tlZCJ9.0000")
    assert "Hacked" not in b.get("/_test/form").text


def test_a_refused_form_without_referer_is_an_error_page_with_the_status(
    browser: Callable[[Login | None], Browser], login: Callable[..., Login]
) -> None:
    b = browser(login("supervisor"))
    token = b.csrf("/_test/form")
    response = b.client.post("/_test/refused", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 409
    assert "<h1>Conflict</h1>" in response.text and "The pilot is suspended; resume it first." in response.text


def test_a_form_from_another_site_is_refused_without_redirecting_there(
    browser: Callable[[Login | None], Browser], login: Callable[..., Login]
) -> None:
    b = browser(login("supervisor"))
    token = b.csrf("/_test/form")
    headers = {"Referer": "https://evil.example/phish"}
    response = b.client.post("/_test/refused", data={"csrf_token": token}, headers=headers, follow_redirects=False)
    assert response.status_code == 409 and "evil.example" not in response.headers.get("location", "")


def test_a_page_that_cannot_be_shown_is_an_html_error_with_its_status(
    browser: Callable[[Login | None], Browser], login: Callable[..., Login]
) -> None:
    response = browser(login("supervisor")).get("/_test/missing")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "No pilot with id 42." in response.text and "Signed in as" in response.text


def test_a_post_without_the_csrf_token_is_refused(
    browser: Callable[[Login | None], Browser], login: Callable[..., Login]
) -> None:
    b = browser(login("supervisor"))
    response = b.client.post("/_test/done", data={}, follow_redirects=False)
    assert response.status_code == 403 and "This form has expired" in response.text


def test_unknown_pages_are_html_for_browsers_and_problem_json_for_the_api(
    browser: Callable[[Login | None], Browser],
) -> None:
    b = browser(None)
    page = b.get("/no-such-page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and "<h1>Page not found</h1>" in page.text
    api = b.get("/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
    script = b.get("/no-such-page", headers={"Accept": "application/json"})
    assert script.headers["content-type"] == "application/problem+json"


def test_the_menu_follows_the_role(world: World) -> None:
    bureau = dict(navigation(world.supervisor.actor))
    admin = dict(navigation(world.admin.actor))
    bank_admin = dict(navigation(world.bank_a.actor))
    filer = dict(navigation(world.filer_a.actor))
    assert {"/breakers", "/exemptions", "/audit", "/programs", "/institutions"} <= bureau.keys()
    assert "/admin/users" in admin and "/admin/users" not in bureau
    assert "/filings/upload" in filer and not {"/breakers", "/audit", "/institutions", "/admin/users"} & filer.keys()
    assert "/institutions/mine" in bank_admin and "/institutions/mine" not in filer
    assert list(dict(navigation(None))) == ["/register"]


def test_every_page_that_takes_a_post_checks_the_csrf_token_first(app: Any) -> None:
    posts = [
        context
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, WebRoute)
        and "POST" in (context.methods or ())
        and not str(context.path).startswith("/_test/")
    ]
    assert len(posts) >= 30  # sign-in and sign-out, and every command and form of the pages
    for context in posts:
        first = context.dependant.dependencies[0]
        assert first.call is csrf_protected, f"{context.path} does not check the CSRF token first"


def test_a_page_post_without_the_token_is_refused_before_anything_is_read(
    browser: Callable[[Login | None], Browser], world: World
) -> None:
    b = browser(world.supervisor)
    b.get("/")  # a session, so only the token is missing
    for path in ("/sign-out", "/audit/verify", f"/pilots/{uuid.uuid4()}/suspend", "/filings/upload"):
        response = b.client.post(path, data={"reason": "x"}, follow_redirects=False)
        assert response.status_code == 403 and "This form has expired" in response.text, path


def test_paging_keeps_the_filters_and_links_only_to_pages_that_exist() -> None:
    first = paging("/pilots", page=1, size=50, shown=50, total=120, filters={"state": "active", "program": ""})
    assert (first["first"], first["last"], first["total"]) == (1, 50, 120)
    assert first["previous_url"] is None and first["next_url"] == "/pilots?state=active&page=2"
    last = paging("/filings", page=3, size=50, shown=20, total=120, filters={"pilot": None}, fragment="#recent")
    assert (last["first"], last["last"]) == (101, 120)
    assert last["previous_url"] == "/filings?page=2#recent" and last["next_url"] is None
    empty = paging("/breakers", page=1, size=100, shown=0, total=0)
    assert (empty["first"], empty["last"], empty["previous_url"], empty["next_url"]) == (0, 0, None, None)


def test_the_pager_renders_only_the_links_it_has() -> None:
    pager = templates.env.get_template("_macros.html").module.pager  # type: ignore[attr-defined]
    html = str(pager("Pilot pages", None, "/pilots?page=2"))
    assert 'aria-label="Pilot pages"' in html and 'href="/pilots?page=2" rel="next"' in html
    assert "Previous page" not in html
    assert str(pager("Pilot pages", None, None)).strip() == ""


def test_an_address_with_a_malformed_id_is_a_page_not_found(
    browser: Callable[[Login | None], Browser], world: World
) -> None:
    bureau, admin = browser(world.supervisor), browser(world.admin)
    for b, path, what in (
        (bureau, "/pilots/not-an-id", "pilot"),
        (bureau, "/institutions/not-an-id", "institution"),
        (admin, "/admin/users/not-an-id", "user"),
        (bureau, "/filings?pilot=not-an-id", "pilot"),
    ):
        page = b.get(path)
        assert page.status_code == 404 and f"No such {what}." in page.text, path
