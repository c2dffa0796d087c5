"""The jobs people do in the browser, on the demo data: review and approve with two people, upload
a good and a bad spreadsheet, see a breaker trip after a filing and acknowledge it, read a pilot's
charts. Each test runs on its own copy of the demo database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select

from sandbox.models import Application, Breaker, Filing, Institution, Pilot, Program
from tests.browser.conftest import Site, sign_in, sign_out

# Bank B's M&A pilot never filed October 2026 (the demo's story): the period the uploads fill.
WIDE_HEADER = "pilot,period,exposure_outstanding,new_lending_amount,deals_count,ltv_max_new,term_max_new_years,npl_ratio,overdue90_ratio,top1_share"


def _pilot(site: Site, institution: str, program: str) -> Pilot:
    with site.database.unit_of_work() as session:
        return session.scalars(
            select(Pilot)
            .join(Institution, Institution.id == Pilot.institution_id)
            .join(Program, Program.id == Pilot.program_id)
            .where(Institution.code == institution, Program.code == program)
        ).one()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_application_is_reviewed_and_approved_by_two_people(page: Any, site: Site) -> None:
    # Bank B's carbon-loan application waits for a reviewer.
    sign_in(page, "reviewer@bureau.example")
    queue = page.get_by_role("region", name=re.compile("Applications to review"))
    queue.get_by_role("link", name=re.compile("CEA pledge loans")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("CEA pledge loans")
    expect(page.get_by_text("Bank B")).not_to_have_count(0)
    page.get_by_role("button", name="Start review").click()
    expect(page.get_by_role("status")).to_be_visible()
    page.get_by_label("Recommendation").select_option("approve")
    page.get_by_label("Reason").first.fill("Collateral registry access verified; controls adequate.")
    page.get_by_role("button", name="Recommend").click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    site.shot(page, "application-recommended")
    application_url = page.url
    sign_out(page)

    sign_in(page, "approver@bureau.example")
    page.goto(application_url)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("approved")
    site.shot(page, "application-approved")
    with site.database.unit_of_work() as session:
        approved = session.get(Application, __import__("uuid").UUID(application_url.rsplit("/", 1)[1]))
        assert approved is not None and approved.state == "approved"


def test_a_bad_spreadsheet_shows_every_row_error_and_a_good_one_is_recorded(
    page: Any, site: Site, tmp_path: Path
) -> None:
    pilot = _pilot(site, "BANK-B", "SH-TECH-MA")
    sign_in(page, "filer@bank-b.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload filings").click()
    bad = _write(
        tmp_path,
        "bad.csv",
        f"{WIDE_HEADER}\n"
        f"{pilot.reference},2026-10,9300000000,1e400,11,0.70,7,abc,0.006,0.11\n"
        f"NO-SUCH-PILOT,2026-10,9300000000,440000000,11,0.70,7,0.012,0.006,0.11\n",
    )
    page.get_by_label("Spreadsheet (CSV or XLSX)").set_input_files(str(bad))
    page.get_by_role("button", name="Upload").click()
    problems = page.get_by_role("table", name="Problems in the file")
    expect(problems).to_be_visible()
    expect(problems).to_contain_text("abc")
    expect(problems).to_contain_text("NO-SUCH-PILOT")
    site.shot(page, "upload-refused")
    with site.database.unit_of_work() as session:
        assert (
            session.scalars(select(Filing).where(Filing.pilot_id == pilot.id, Filing.period == "2026-10")).first()
            is None
        )

    good = _write(
        tmp_path,
        "good.csv",
        f"{WIDE_HEADER}\n{pilot.reference},2026-10,9300000000,440000000,11,0.70,7,0.012,0.006,0.11\n",
    )
    page.get_by_label("Spreadsheet (CSV or XLSX)").set_input_files(str(good))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("1 filing")
    site.shot(page, "upload-accepted")
    with site.database.unit_of_work() as session:
        assert session.scalars(select(Filing).where(Filing.pilot_id == pilot.id, Filing.period == "2026-10")).one()


def test_a_filing_trips_a_breaker_that_a_supervisor_acknowledges(page: Any, site: Site, tmp_path: Path) -> None:
    pilot = _pilot(site, "BANK-B", "SH-TECH-MA")
    sign_in(page, "filer@bank-b.example")
    page.goto("/filings/upload")
    breach = _write(
        tmp_path,
        "breach.csv",
        f"{WIDE_HEADER}\n{pilot.reference},2026-10,9300000000,440000000,11,0.85,7,0.012,0.006,0.11\n",
    )
    page.get_by_label("Spreadsheet (CSV or XLSX)").set_input_files(str(breach))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_be_visible()
    sign_out(page)

    sign_in(page, "supervisor@bureau.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Breaker board").click()
    row = page.get_by_role("row").filter(has_text=pilot.reference).filter(has_text="ltv-limit")
    expect(row).to_contain_text("tripped")
    site.shot(page, "breaker-board")
    row.get_by_role("link").first.click()
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_contain_text("acknowledged")
    site.shot(page, "breaker-acknowledged")
    with site.database.unit_of_work() as session:
        breaker = session.scalars(
            select(Breaker).where(Breaker.pilot_id == pilot.id, Breaker.rule_id == "ltv-limit")
        ).one()
        assert breaker.state == "acknowledged"


def test_the_pilot_page_plots_each_metric_against_its_thresholds(page: Any, site: Site) -> None:
    pilot = _pilot(site, "BANK-A", "SH-TECH-MA")
    sign_in(page, "supervisor@bureau.example")
    page.goto(f"/pilots/{pilot.id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(pilot.reference)
    charts = page.locator("svg[role=img]")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 5
    npl = page.get_by_role("img", name=re.compile("npl_ratio"))
    expect(npl).to_be_visible()
    site.shot(page, "pilot-charts")


def test_an_institution_answers_the_bureaus_questions(page: Any, site: Site) -> None:
    # The demo's Bank D was asked for its model validation report.
    sign_in(page, "admin@bank-d.example")
    questions = page.get_by_role("region", name=re.compile("Questions from the bureau"))
    questions.get_by_role("link").first.click()
    expect(page.get_by_text("model validation report")).to_be_visible()
    page.get_by_label("Response").fill("Validation report by the model risk team attached; fairness tests by segment.")
    page.get_by_role("button", name="Send response").click()
    expect(page.get_by_role("status")).to_contain_text("Response sent")
    expect(page.get_by_text("Validation report by the model risk team attached")).to_be_visible()
    site.shot(page, "application-answered")


def test_an_institution_reports_a_risk_event_from_its_pilot_page(page: Any, site: Site) -> None:
    pilot = _pilot(site, "BANK-A", "SH-FTZ-NRSL")
    sign_in(page, "filer@bank-a.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pilots").click()
    page.get_by_role("link", name=pilot.reference).click()
    page.get_by_label("Kind of event").select_option("credit_loss")
    page.get_by_label("Occurred on").fill("2026-11-20")
    page.get_by_label("Loss amount (CNY, optional)").fill("35000000")
    page.get_by_label("Description").fill("Syndicate member default on a non-resident loan.")
    page.get_by_role("button", name="Report risk event").click()
    expect(page.get_by_role("status")).to_contain_text("Risk event reported")
    site.shot(page, "risk-event-reported")


# What a screen-reader user needs on every page: each control named by a label, headings that do
# not skip a level, each table captioned, each chart named.
ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (el.labels.length === 0 && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      problems.push('unlabelled ' + el.outerHTML.slice(0, 80));
  }
  let previous = 0;
  for (const h of document.querySelectorAll('main h1, main h2, main h3, main h4')) {
    const level = Number(h.tagName[1]);
    if (level > previous + 1) problems.push('heading ' + h.tagName + ' after h' + previous + ': ' + h.textContent.trim());
    previous = level;
  }
  for (const t of document.querySelectorAll('main table'))
    if (!t.querySelector('caption')) problems.push('table without caption near ' + (t.previousElementSibling || {}).textContent);
  for (const svg of document.querySelectorAll('svg[role=img]'))
    if (!svg.querySelector('title')) problems.push('chart without title');
  return problems;
}"""


def assert_accessible(page: Any) -> None:
    problems = page.evaluate(ACCESSIBILITY_PROBLEMS)
    assert problems == [], f"{page.url}: {problems}"


def test_each_role_reaches_its_pages_by_the_menu_and_the_keyboard(page: Any, site: Site) -> None:
    """Every menu entry opens a page with one heading and no error, for a bureau and a bank user;
    the first Tab reaches the skip link, which moves focus to the content; every page, and the
    first object each list links to, passes the accessibility checks above."""
    for email, prefix in (
        ("supervisor@bureau.example", "bureau"),
        ("admin@bureau.example", "admin"),
        ("admin@bank-a.example", "bank"),
    ):
        sign_in(page, email)
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
        menu = page.get_by_role("navigation", name="Main").get_by_role("link")
        entries = [(menu.nth(i).inner_text(), menu.nth(i).get_attribute("href")) for i in range(menu.count())]
        assert len(entries) >= 6
        for name, href in entries:
            response = page.goto(href)
            assert response is not None and response.status == 200, f"{email}: {href} answered {response}"
            expect(page.locator("h1")).to_have_count(1)
            assert_accessible(page)
            slug = href.strip("/").replace("/", "-") or "home"
            site.shot(page, f"{prefix}-{slug}")
            assert name
            first = page.locator(f"main table a[href^='{href}/']").first if href not in ("/", "/register") else None
            if first is not None and first.count():
                first.click()
                expect(page.locator("h1")).to_have_count(1)
                assert_accessible(page)
                site.shot(page, f"{prefix}-{slug}-first")
        sign_out(page)


def test_an_administrator_creates_a_user_who_then_signs_in(page: Any, site: Site) -> None:
    sign_in(page, "admin@bureau.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Email address").fill("filer2@bank-a.example")
    page.get_by_label("Display name").fill("王芳 (Bank A filer)")
    page.get_by_label("Role").select_option("filer")
    page.get_by_label("Institution").select_option("BANK-A")
    page.get_by_label("Initial password").fill("a-long-initial-password")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("filer2@bank-a.example")
    site.shot(page, "admin-user-created")
    sign_out(page)

    page.goto("/sign-in")
    page.get_by_label("Email address").fill("filer2@bank-a.example")
    page.get_by_label("Password").fill("a-long-initial-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("banner")).to_contain_text("王芳 (Bank A filer)")
    expect(page.get_by_role("banner")).to_contain_text("Institution filer")
