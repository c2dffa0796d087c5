from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Site, sign_in, sign_out


def test_sign_in_shows_the_work_queues_and_sign_out_ends_the_session(page: Any, site: Site) -> None:
    page.goto("/")
    expect(page).to_have_url(f"{site.url}/sign-in?next=/")
    page.get_by_label("Email address").fill("reviewer@bureau.example")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The email address or password is not correct.")
    site.shot(page, "sign-in-refused")

    sign_in(page, "reviewer@bureau.example")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text("Reviewer Li")
    expect(page.get_by_role("banner")).to_contain_text("Bureau reviewer")
    site.shot(page, "home-reviewer")

    sign_out(page)
    page.goto("/applications")
    expect(page).to_have_url(f"{site.url}/sign-in?next=/applications")


def test_public_register_needs_no_sign_in_and_shows_chinese_names(page: Any, site: Site) -> None:
    page.goto("/register")
    expect(page.get_by_role("heading", name="Public register of sandbox pilots")).to_be_visible()
    table = page.get_by_role("table")
    expect(table).to_contain_text("SH-TECH-MA")
    expect(table).to_contain_text("银行")
    site.shot(page, "public-register")
