"""The administrator's user pages: only a bureau admin sees or uses them; a new user signs in with
the initial password; a password set by the admin replaces the old one; a token is shown once and
works until revoked; a deactivated user cannot sign in; an admin cannot deactivate themselves."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox.db import Database
from sandbox.models import AuditEntry, User
from tests.support import Login
from tests.web.conftest import Browser
from tests.world import World

Browse = Callable[[Login | None], Browser]
PASSWORD = "initial-password-2026"


def buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit">([^<]+)</button>', html)


def main_of(html: str) -> str:
    return html.split('<main id="main"', 1)[1].split("</main>", 1)[0]


def user_id_of(database: Database, email: str) -> str:
    with database.sessions() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        return str(user.id)


def audit_count(database: Database) -> int:
    with database.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def sign_in(browser: Browse, email: str, password: str) -> Any:
    """A browser with no session signs in through the form."""
    anonymous = browser(None)
    return anonymous.submit("/sign-in", "/sign-in", {"email": email, "password": password, "next": "/"})


def create(admin: Browser, **fields: str) -> Any:
    data = {"email": "", "display_name": "", "role": "", "institution": "", "password": PASSWORD, **fields}
    return admin.submit("/admin/users/new", "/admin/users", data)


def test_the_admin_lists_users_with_filters(world: World, browser: Browse) -> None:
    page = browser(world.admin).get("/admin/users")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Users</h1>" in html and '<a href="/admin/users/new">New user</a>' in html
    for text in ('for="filter-role">Role<', 'for="filter-institution">Institution<', 'for="filter-status">Status<'):
        assert text in html
    assert "Filter" in buttons(html)
    assert f'<a href="/admin/users/{world.bank_a.user.id}">{world.bank_a.user.email}</a>' in html
    assert "Showing 1–10 of 10 users" in html
    assert '<th scope="col">Email address</th>' in html and '<th scope="col">Created</th>' in html

    banks = browser(world.admin).get("/admin/users?role=institution_admin&institution=BANK-A&status=active").text
    assert world.bank_a.user.email in banks and world.bank_b.user.email not in banks
    assert world.filer_a.user.email not in banks and "Showing 1–1 of 1 user" in banks
    deactivated = browser(world.admin).get("/admin/users?status=deactivated").text
    assert "No user matches these filters." in deactivated
    assert browser(world.admin).get("/admin/users?role=king").status_code == 422
    assert browser(world.admin).get("/admin/users?institution=NOPE").status_code == 404


@pytest.mark.parametrize("who", ["reviewer", "approver", "supervisor", "bank_a", "filer_a"])
def test_only_the_admin_may_open_the_user_pages(world: World, browser: Browse, who: str) -> None:
    login: Login = getattr(world, who)
    b = browser(login)
    home = b.get("/")
    assert 'href="/admin/users"' not in home.text
    for path in ("/admin/users", "/admin/users/new", f"/admin/users/{world.reviewer.user.id}"):
        page = b.get(path)
        assert page.status_code == 403, path
        assert "Not allowed" in page.text and "admin" in page.text
        assert "Create user" not in page.text and "Deactivate user" not in page.text


def test_others_posting_anyway_are_refused_and_nothing_changes(
    world: World, browser: Browse, database: Database
) -> None:
    before = audit_count(database)
    b = browser(world.supervisor)
    target = world.reviewer.user.id
    for action, data in (
        ("/admin/users", {"email": "x@bureau.example", "role": "reviewer", "password": PASSWORD}),
        (f"/admin/users/{target}/password", {"new_password": "another-password-1"}),
        (f"/admin/users/{target}/tokens", {"label": "mine now"}),
        (f"/admin/users/{target}/revoke-tokens", {}),
        (f"/admin/users/{target}/deactivate", {}),
    ):
        response = b.submit("/", action, data)
        assert response.status_code in (303, 403), action
        if response.status_code == 303:
            assert response.headers["location"] == "/"
            assert "needs the role admin" in b.follow(response).text
    assert audit_count(database) == before
    assert world.client.get("/api/v1/pilots", headers=world.reviewer.headers).status_code == 200


def test_the_admin_creates_a_user_who_signs_in_with_the_initial_password(world: World, browser: Browse) -> None:
    admin = browser(world.admin)
    form = admin.get("/admin/users/new").text
    for text in (
        'for="user-email">Email address<',
        'for="user-display-name">Display name<',
        'for="user-role">Role<',
        'for="user-institution">Institution<',
        'for="user-password">Initial password<',
        'type="password" id="user-password" name="password" value=""',
        'autocomplete="new-password"',
    ):
        assert text in form, text
    assert buttons(form) == ["Sign out", "Create user"]
    response = create(admin, email="Li.Wei@Bank-A.example", display_name="李伟", role="filer", institution="BANK-A")
    assert response.status_code == 303 and response.headers["location"].startswith("/admin/users/")
    page = admin.follow(response)
    assert "User li.wei@bank-a.example created." in page.text
    assert "<h1>User li.wei@bank-a.example</h1>" in page.text and "李伟" in page.text
    assert "Institution filer" in page.text and "BANK-A" in page.text
    assert PASSWORD not in page.text

    signed_in = sign_in(browser, "li.wei@bank-a.example", PASSWORD)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"


def test_a_refused_create_form_keeps_the_values_but_never_the_password(world: World, browser: Browse) -> None:
    admin = browser(world.admin)
    duplicate = create(admin, email=world.reviewer.user.email.upper(), display_name="Twin", role="reviewer")
    assert duplicate.status_code == 422
    html = duplicate.text
    assert "The user was not created." in html
    assert "already exists" in html and 'aria-invalid="true" aria-describedby="user-email-error"' in html
    assert f'value="{world.reviewer.user.email.upper()}"' in html and 'value="Twin"' in html
    assert PASSWORD not in html

    orphan = create(admin, email="new.filer@bank-a.example", role="filer", display_name="王芳")
    assert orphan.status_code == 422
    assert "Role filer needs an institution." in orphan.text and 'value="王芳"' in orphan.text
    assert '<option value="filer" selected>' in orphan.text and PASSWORD not in orphan.text

    short = create(admin, email="short@bureau.example", role="reviewer", password="short")
    assert short.status_code == 422 and "Password too short: at least 12 characters." in short.text
    assert 'value="short"' not in short.text

    bureau_with_bank = create(admin, email="odd@bureau.example", role="reviewer", institution="BANK-A")
    assert (
        bureau_with_bank.status_code == 422
        and "Bureau role reviewer cannot belong to an institution." in bureau_with_bank.text
    )
    no_role = create(admin, email="who@bureau.example")
    assert no_role.status_code == 422 and "Role: choose one of the roles." in no_role.text
    bad_email = create(admin, email="not-an-address", role="reviewer")
    assert bad_email.status_code == 422 and "Invalid email address" in bad_email.text

    listing = admin.get("/admin/users").text
    assert "new.filer@" not in listing and "short@" not in listing and "odd@" not in listing


def test_the_admin_sets_a_password_and_only_the_new_one_works(
    world: World, browser: Browse, database: Database
) -> None:
    admin = browser(world.admin)
    create(admin, email="reset.me@bureau.example", role="approver")
    user_id = user_id_of(database, "reset.me@bureau.example")
    page = admin.get(f"/admin/users/{user_id}").text
    assert 'for="new-password">New password<' in page and "Set password" in buttons(page)

    short = admin.submit(f"/admin/users/{user_id}", f"/admin/users/{user_id}/password", {"new_password": "tiny"})
    assert "Password too short: at least 12 characters." in admin.follow(short).text

    new_password = "brand-new-password-77"
    response = admin.submit(
        f"/admin/users/{user_id}", f"/admin/users/{user_id}/password", {"new_password": new_password}
    )
    done = admin.follow(response)
    assert "Password set for reset.me@bureau.example." in done.text and new_password not in done.text
    assert sign_in(browser, "reset.me@bureau.example", PASSWORD).status_code == 401
    assert sign_in(browser, "reset.me@bureau.example", new_password).status_code == 303

    trail = admin.get(f"/audit?object_type=user&object_id={user_id}").text
    assert "user.set_password" in trail or "set password" in trail
    assert new_password not in trail and PASSWORD not in trail


def test_a_token_is_shown_once_works_and_stops_working_once_revoked(
    world: World, browser: Browse, database: Database
) -> None:
    admin = browser(world.admin)
    create(admin, email="erp@bank-a.example", role="filer", institution="BANK-A")
    user_id = user_id_of(database, "erp@bank-a.example")
    page = admin.get(f"/admin/users/{user_id}").text
    assert 'for="token-label">Token label<' in page and "Issue token" in buttons(page)
    assert "Revoke all tokens" not in buttons(page)

    issued = admin.submit(f"/admin/users/{user_id}", f"/admin/users/{user_id}/tokens", {"label": "core banking"})
    assert issued.status_code == 200
    assert issued.headers["cache-control"] == "no-store"
    token = re.search(r'<output id="new-token" class="secret">(sbx_[^<]+)</output>', issued.text)
    assert token, issued.text
    secret = token.group(1)
    assert "it will not be shown again" in issued.text
    assert secret not in issued.headers.get("set-cookie", "") and secret not in issued.headers.get("location", "")

    again = admin.get(f"/admin/users/{user_id}").text
    assert secret not in again and secret[:12] in again and "core banking" in again
    assert "Revoke all tokens" in buttons(again)

    headers = {"Authorization": f"Bearer {secret}"}
    assert world.client.get("/api/v1/pilots", headers=headers).status_code == 200

    revoked = admin.submit(f"/admin/users/{user_id}", f"/admin/users/{user_id}/revoke-tokens")
    assert "Revoked 1 token of erp@bank-a.example." in admin.follow(revoked).text
    assert world.client.get("/api/v1/pilots", headers=headers).status_code == 401
    after = admin.get(f"/admin/users/{user_id}").text
    assert "revoked</span>" in after and "Revoke all tokens" not in buttons(after)


def test_a_token_needs_a_label(world: World, browser: Browse) -> None:
    admin = browser(world.admin)
    target = f"/admin/users/{world.filer_a.user.id}"
    refused = admin.submit(target, f"{target}/tokens", {"label": "  "})
    assert refused.status_code == 303
    assert "A token needs a label" in admin.follow(refused).text


def test_a_deactivated_user_cannot_sign_in(world: World, browser: Browse, database: Database) -> None:
    admin = browser(world.admin)
    create(admin, email="leaver@bureau.example", role="reviewer")
    user_id = user_id_of(database, "leaver@bureau.example")
    assert "Deactivate user" in buttons(admin.get(f"/admin/users/{user_id}").text)
    response = admin.submit(f"/admin/users/{user_id}", f"/admin/users/{user_id}/deactivate")
    page = admin.follow(response).text
    assert "leaver@bureau.example is deactivated" in page
    assert "Deactivate user" not in buttons(page) and "Reactivate user" in buttons(page)
    assert sign_in(browser, "leaver@bureau.example", PASSWORD).status_code == 401
    assert "leaver@bureau.example" in admin.get("/admin/users?status=deactivated").text

    back = admin.submit(f"/admin/users/{user_id}", f"/admin/users/{user_id}/reactivate")
    assert "is active again" in admin.follow(back).text
    assert sign_in(browser, "leaver@bureau.example", PASSWORD).status_code == 303


def test_an_admin_cannot_deactivate_themselves(world: World, browser: Browse, database: Database) -> None:
    admin = browser(world.admin)
    own = f"/admin/users/{world.admin.user.id}"
    page = admin.get(own).text
    assert "Deactivate user" not in buttons(page)
    assert "You cannot deactivate your own account" in page
    response = admin.submit(own, f"{own}/deactivate")
    assert response.status_code == 303 and response.headers["location"] == own
    assert "You cannot deactivate your own account" in admin.follow(response).text
    with database.sessions() as session:
        assert session.get_one(User, world.admin.user.id).is_active
    assert admin.get("/admin/users").status_code == 200


def test_a_post_without_the_csrf_token_is_refused(world: World, browser: Browse, database: Database) -> None:
    admin = browser(world.admin)
    admin.get("/admin/users")  # the session exists; only the token is missing
    before = audit_count(database)
    target = f"/admin/users/{world.reviewer.user.id}"
    for action, data in (
        ("/admin/users", {"email": "x@bureau.example", "role": "reviewer", "password": PASSWORD}),
        (f"{target}/password", {"new_password": "another-password-1"}),
        (f"{target}/tokens", {"label": "x"}),
        (f"{target}/revoke-tokens", {}),
        (f"{target}/deactivate", {}),
    ):
        response = admin.client.post(action, data=data, follow_redirects=False)
        assert response.status_code == 403, action
        assert "This form has expired" in response.text
    assert audit_count(database) == before


def test_unknown_user_is_a_404_page(world: World, browser: Browse) -> None:
    admin = browser(world.admin)
    assert admin.get("/admin/users/00000000-0000-0000-0000-000000000000").status_code == 404
    assert admin.get("/admin/users/not-an-id").status_code == 404
    assert "Users" in main_of(admin.get("/admin/users").text)
