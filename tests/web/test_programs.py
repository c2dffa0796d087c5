"""The program pages on the shipped policies: the list with the version in force and the active
pilots, one program's page with everything its policy in force says (eligibility, scope, quotas
and how much of each cap is granted, schedule, metrics, rules and their levels, exemption,
probation, versions), and the stored policy file itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from html import unescape

from sandbox.actor import SYSTEM
from sandbox.db import Database
from sandbox.models import PolicyVersion, Program
from sandbox.program.calendars import load_calendars
from sandbox.program.service import load_policies
from sandbox.scan import run_scan
from tests.support import NOW, ROOT, Login
from tests.web.conftest import Browser
from tests.world import World

BrowserFor = Callable[[Login | None], Browser]
SHIPPED = ("SH-CARB-CEA", "SH-DIG-AICR", "SH-FTZ-NRSL", "SH-PEN-CPA", "SH-SHIP-GH", "SH-TECH-MA")


def row_of(page: str, header: str) -> str:
    """The table row whose header cell starts with ``header`` (cells without their tags)."""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.S):
        cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        if cells and cells[0].startswith(header):
            return unescape(" | ".join(re.sub(r"\s+", " ", cell) for cell in cells))
    raise AssertionError(f"no row {header!r}")


def visible(page: str) -> str:
    """The page's text as read: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", page)))


def stored_text(database: Database, code: str) -> str:
    with database.sessions() as session:
        program = session.query(Program).filter_by(code=code).one()
        return session.query(PolicyVersion).filter_by(program_id=program.id).one().source_text


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_each_program_with_its_version_in_force_and_active_pilots(
    world: World, browser: BrowserFor, database: Database
) -> None:
    world.to_pilot()
    # The scan starts the pilot on its start date.
    with database.unit_of_work() as session:
        run_scan(session, as_of=date(2026, 12, 1), at=NOW, calendars=load_calendars(ROOT / "policies"))

    for login in (world.bank_a, world.reviewer, world.filer_a):
        page = browser(login).get("/programs")
        assert page.status_code == 200
        assert "<h1>Programs</h1>" in page.text
        assert f"Showing {len(SHIPPED)} of {len(SHIPPED)} programs." in page.text
        for code in SHIPPED:
            assert f'<a href="/programs/{code}"><code>{code}</code></a>' in page.text
    row = row_of(page.text, "SH-TECH-MA")
    assert row == "SH-TECH-MA | Technology-enterprise M&A loans | Technology finance | 2025.1 | 2025-09-01 | 1"
    assert row_of(page.text, "SH-CARB-CEA").endswith("| 0")


def test_signed_out_visitors_are_sent_to_sign_in(world: World, browser: BrowserFor) -> None:
    response = browser(None).get("/programs", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")


# --- one program ------------------------------------------------------------------------------


def test_the_program_page_says_what_the_policy_in_force_says(world: World, browser: BrowserFor) -> None:
    page = browser(world.bank_a).get("/programs/SH-TECH-MA")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Technology-enterprise M&amp;A loans</h1>" in text
    assert "version <strong>2025.1</strong>" in text
    assert "Loans to technology enterprises acquiring control of a target company" in text
    assert '<a href="/programs/SH-TECH-MA/policy.yaml">Policy file (YAML)</a>' in text
    assert '<a href="/applications/new?program=SH-TECH-MA">Apply to this program</a>' in text

    # Eligibility, each criterion with its threshold.
    assert row_of(text, "Institution type") == (
        "Institution type | One of: domestic bank, joint stock bank, city commercial bank."
    )
    assert row_of(text, "Regulatory rating").startswith("Regulatory rating | 3 or better")
    assert row_of(text, "Region") == "Region | One of: Shanghai."
    assert row_of(text, "Capital-adequacy ratio") == "Capital-adequacy ratio | At least 10.5% (0.105)."
    assert (
        row_of(text, "Major administrative penalties") == "Major administrative penalties | None in the last 3 years."
    )
    assert row_of(text, "Participating institutions").startswith("Participating institutions | At most 6; 0 take part")

    # Scope and per-pilot limits.
    assert "integrated circuits" in row_of(text, "Target industries")
    assert row_of(text, "Exposure limit (exposure_limit)") == (
        "Exposure limit (exposure_limit) | CNY | 15000000000 | Required | Outstanding M&A loan balance under the pilot."
    )
    assert row_of(text, "Per deal limit (per_deal_limit)").endswith(
        "| Optional | Largest single loan to one acquisition."
    )

    # Schedule and metrics.
    assert "<dt>Frequency</dt><dd>Monthly</dd>" in text
    assert "10 business days after the period ends" in text
    assert "<code>cn</code>: China (mainland) working-day calendar" in text
    assert "<dt>Maximum duration</dt><dd>24 months</dd>" in text
    assert row_of(text, "npl_ratio") == (
        "npl_ratio | ratio | 4 | 0 to 1 | Required | Non-performing pilot loans over the pilot balance."
    )
    assert row_of(text, "exposure_outstanding").startswith("exposure_outstanding | CNY | 2 | At least 0 | Required")

    # Rules, with their levels; a quota-based level as a share of the granted quota.
    npl_trip = row_of(text, "npl-trip")
    assert "npl_ratio >= 0.03" in npl_trip and "npl_ratio < 0.025" in npl_trip
    assert "| Trip | High | 2 / 2 | keep state / hold | npl_ratio ≥ 0.03" in npl_trip
    assert row_of(text, "npl-warn").endswith("| Warn | Medium | — | ignored / hold | npl_ratio ≥ 0.02")
    assert row_of(text, "quota-warn").endswith("exposure_outstanding ≥ 90% of the granted exposure limit")
    assert row_of(text, "quota-trip").endswith(
        "| keep state / counts as a breach | exposure_outstanding ≥ 100% of the granted exposure limit"
    )
    assert row_of(text, "filing-missing").endswith("| counts as a breach / hold | —")
    assert row_of(text, "within-scope").startswith("within-scope | Business reported outside the granted scope")

    # Exemption criteria, probation, versions.
    assert "The loss was reported within 5 days of occurring." in text
    assert "No breach of an enforced trip rule in the 6 periods before the event&#39;s." in text
    assert "<code>npl-trip</code>, <code>npl-terminate</code>, <code>overdue90-trip</code>" in text
    assert "it re-arms after 3 consecutive compliant filings" in visible(text)
    version_row = row_of(text, "2025.1")
    assert "2025-09-01" in version_row and "| In force |" in version_row


def test_the_cap_shows_how_much_is_already_granted_to_pilots(world: World, browser: BrowserFor) -> None:
    before = browser(world.reviewer).get("/programs/SH-TECH-MA").text
    assert row_of(before, "Exposure limit (CNY)") == "Exposure limit (CNY) | 50000000000 | 0 | 50000000000 | 0.0%"
    assert "No aggregate cap on per deal limit: it bounds each pilot alone." in before

    world.to_pilot(requested_quotas={"exposure_limit": "5000000000"})
    world.to_pilot(world.bank_b, requested_quotas={"exposure_limit": "2500000000"})
    page = browser(world.reviewer).get("/programs/SH-TECH-MA")
    assert row_of(page.text, "Exposure limit (CNY)") == (
        "Exposure limit (CNY) | 50000000000 | 7500000000 | 42500000000 | 15.0%"
    )
    assert row_of(page.text, "Participating institutions").startswith(
        "Participating institutions | At most 6; 2 take part"
    )
    # The bureau gets the program's pilots; an institution (which sees only its own) does not.
    assert '<a href="/pilots?program=SH-TECH-MA">Pilots of this program</a>' in page.text
    assert "Pilots of this program" not in browser(world.bank_a).get("/programs/SH-TECH-MA").text
    assert "Apply to this program" not in page.text


def test_an_unknown_program_is_a_not_found_page(world: World, browser: BrowserFor) -> None:
    b = browser(world.bank_a)
    for path in (
        "/programs/SH-NOPE-X",
        "/programs/SH-NOPE-X/policy.yaml",
        "/programs/SH-TECH-MA/policy.yaml?version=9.9",
    ):
        page = b.get(path)
        assert page.status_code == 404, path
        assert "<h1>Not found</h1>" in page.text


def test_a_program_with_no_version_in_force_says_so_and_lists_its_versions(
    world: World, browser: BrowserFor, database: Database
) -> None:
    future = (NOW + timedelta(days=60)).date()
    text = (ROOT / "policies" / "SH-TECH-MA.yaml").read_text()
    text = text.replace("code: SH-TECH-MA", "code: SH-TECH-MB").replace(
        "effective_from: 2025-09-01", f"effective_from: {future.isoformat()}"
    )
    with database.unit_of_work() as session:
        load_policies(session, [("SH-TECH-MB.yaml", text)], actor=SYSTEM, at=NOW)
    page = browser(world.bank_a).get("/programs/SH-TECH-MB")
    assert page.status_code == 200
    assert "No policy is in force today (2026-11-28, Asia/Shanghai)" in visible(page.text)
    assert f"its first version takes effect on {future.isoformat()}" in visible(page.text)
    assert "Apply to this program" not in page.text and "<h2>Eligibility</h2>" not in page.text
    assert "| — |" in row_of(page.text, "2025.1")
    assert "None in force" in row_of(browser(world.bank_a).get("/programs").text, "SH-TECH-MB")
    # The file of the version in force is not there; the version itself is.
    assert browser(world.bank_a).get("/programs/SH-TECH-MB/policy.yaml").status_code == 409
    named = browser(world.bank_a).get("/programs/SH-TECH-MB/policy.yaml?version=2025.1")
    assert named.status_code == 200 and named.text == text


# --- the policy file --------------------------------------------------------------------------


def test_the_policy_file_is_the_stored_text(world: World, browser: BrowserFor, database: Database) -> None:
    b = browser(world.filer_a)
    response = b.get("/programs/SH-TECH-MA/policy.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == 'inline; filename="SH-TECH-MA-2025.1.yaml"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == stored_text(database, "SH-TECH-MA")
    assert "# Technology-enterprise M&A loans" in response.text  # comments and all
    named = b.get("/programs/SH-TECH-MA/policy.yaml?version=2025.1")
    assert named.status_code == 200 and named.text == response.text
    page = b.get("/programs/SH-TECH-MA").text
    assert 'href="/programs/SH-TECH-MA/policy.yaml?version=2025.1"' in page
