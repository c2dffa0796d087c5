"""The pilot pages as their users see them: the list by tenancy, the pilot page with quotas,
breakers and a chart per metric against its levels, lifecycle commands through forms (and their
refusals), and risk-event reporting by the institution."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

from sqlalchemy import func, select

from sandbox.clock import FixedClock
from sandbox.db import Database
from sandbox.models import RiskEvent
from tests.evaluation import conftest as evaluation_fixtures
from tests.evaluation.conftest import Live
from tests.risk.test_risk_events_api import go_live
from tests.support import NOW, Login
from tests.web.conftest import Browser
from tests.world import World

MakeBrowser = Callable[[Login | None], Browser]
live = evaluation_fixtures.live  # the fixture: an active BANK-A pilot with known rules


def text_of(html: str) -> str:
    """The page's visible text, tags dropped and whitespace collapsed."""
    without = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    without = re.sub(r"</?time\b[^>]*>", "", without)  # inline: no gap where a date is marked up
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", without)).split())


def section(html: str, heading: str) -> str:
    """The HTML from an <h2> with this text to the next <h2>."""
    match = re.search(rf"<h2[^>]*>{re.escape(heading)}</h2>(.*?)(?=<h2|\Z)", html, flags=re.S)
    assert match, f"no section {heading!r}"
    return match.group(1)


def metric_block(html: str, metric: str) -> str:
    match = re.search(rf'<section class="metric" aria-labelledby="chart-{metric}-heading">(.*?)</section>', html, re.S)
    assert match, f"no chart for {metric}"
    return match.group(1)


def flash(html: str) -> str:
    match = re.search(r'<p class="flash flash-(\w+)"[^>]*>(.*?)</p>', html, flags=re.S)
    assert match, "no notice on the page"
    return f"{match.group(1)}: {unescape(match.group(2))}"


def buttons(html: str) -> list[str]:
    return [unescape(b).strip() for b in re.findall(r"<button[^>]*>(.*?)</button>", html, flags=re.S)]


def pilot_state(live: Live) -> str:
    return str(live.get_pilot()["state"])


def history(live: Live) -> None:
    """Five months filed: npl_ratio reaches the trip level twice (trip_after 2), so the npl-trip
    breaker trips on 2026-05 and the pilot is suspended; then the browser's clock is today's."""
    for period, npl in (("2026-02", "0.01"), ("2026-03", "0.021"), ("2026-04", "0.031"), ("2026-05", "0.032")):
        response = live.file(period, npl_ratio=npl)
        assert response.status_code == 201, response.text
    response = live.file("2026-06", npl_ratio="0.028", exposure_outstanding="4000000000")
    assert response.status_code == 201, response.text
    live.clock.at = NOW


def test_the_list_shows_bureau_users_every_pilot_and_institutions_their_own(world: World, browser: MakeBrowser) -> None:
    mine = world.to_pilot(title="Bank A M&A pilot")
    theirs = world.to_pilot(world.bank_b, title="Bank B M&A pilot 乙银行")

    bank_b = browser(world.bank_b).get("/pilots")
    assert bank_b.status_code == 200
    assert theirs["reference"] in bank_b.text and "Bank B M&amp;A pilot 乙银行" in bank_b.text
    assert mine["reference"] not in bank_b.text
    assert "Showing 1–1 of 1 pilot" in text_of(bank_b.text)
    assert 'id="filter-state"' not in bank_b.text  # institutions get no filters

    bureau = browser(world.supervisor)
    listed = bureau.get("/pilots")
    text = text_of(listed.text)
    assert mine["reference"] in text and theirs["reference"] in text and "Showing 1–2 of 2 pilots" in text
    assert f'<a href="/pilots/{mine["id"]}">{mine["reference"]}</a>' in listed.text
    for label in ('<label for="filter-state">State</label>', '<label for="filter-program">Program</label>'):
        assert label in listed.text
    assert "Filter" in buttons(listed.text)
    assert "BANK-A" in text and "SH-TECH-MA" in text

    filtered = bureau.get("/pilots", params={"state": "suspended", "program": ""})
    assert "No pilot matches these filters." in text_of(filtered.text)
    assert mine["reference"] not in filtered.text
    by_program = bureau.get("/pilots", params={"state": "", "program": "SH-TECH-MA"})
    assert mine["reference"] in by_program.text and theirs["reference"] in by_program.text
    assert bureau.get("/pilots", params={"state": "sideways"}).status_code == 422
    assert bureau.get("/pilots", params={"program": "NO-SUCH"}).status_code == 404


def test_the_pilot_page_shows_quotas_breakers_and_a_chart_per_metric_with_its_levels(
    live: Live, browser: MakeBrowser
) -> None:
    history(live)
    pilot = live.pilot
    page = browser(live.world.supervisor).get(f"/pilots/{pilot['id']}")
    assert page.status_code == 200
    html = page.text
    text = text_of(html)
    assert html.count("<h1") == 1
    heading = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert heading and text_of(heading.group(1)) == f"{pilot['reference']} {pilot['title']}"
    assert "suspended" in text and "Why: breaker tripped for 2026-05: npl-trip" in text

    quotas = text_of(section(html, "Quotas"))
    # Granted 5bn; the latest filing (2026-06) reports 4bn outstanding: 80% used.
    assert "exposure_limit 5000000000 CNY 4000000000 CNY 80% exposure_outstanding, 2026-06" in quotas

    breakers = section(html, "Breakers")
    rows = {m[0]: text_of(m[1]) for m in re.findall(r'<th scope="row">([a-z-]+) .*?</th>(.*?)</tr>', breakers, re.S)}
    assert rows["npl-trip"].startswith("tripped 2026-") and " No 1 Breaker npl-trip" in rows["npl-trip"]
    assert rows["exposure-cap"].startswith("armed Never")
    assert re.search(r'<a href="/breakers/[0-9a-f-]{36}">Breaker npl-trip</a>', breakers)

    metrics = section(html, "Metrics")
    charted = re.findall(r'<section class="metric" aria-labelledby="chart-(\w+)-heading">', metrics)
    assert set(charted) == set(live.catalogue)  # every metric the pilot files
    assert metrics.count('role="img"') == len(charted)
    assert metrics.count("<summary>Data table</summary>") == len(charted)

    npl = metric_block(html, "npl_ratio")
    svg = npl[npl.index("<svg") : npl.index("</svg>")]
    assert '<title id="chart-npl_ratio-title">' in svg
    desc = unescape(re.search(r"<desc[^>]*>(.*?)</desc>", svg, re.S).group(1))  # type: ignore[union-attr]
    assert "last value 0.028" in desc and "npl-warn ≥ 0.02 (warning level) at 0.02" in desc
    assert "npl-trip ≥ 0.03 (trip level) at 0.03" in desc and "A breaker tripped in: 2026-05." in desc
    assert svg.count('class="level level-trip"') == 1 and svg.count('class="level level-warn"') == 1
    assert svg.count('class="point point-tripped"') == 1 and svg.count('class="point"') == 4
    legend = text_of(npl[npl.index('<ul class="legend"') :])
    assert "Warning level: rule npl-warn — breached when npl_ratio ≥ 0.02" in legend
    assert "Trip level: rule npl-trip — breached when npl_ratio ≥ 0.03" in legend
    assert "Period in which a breaker tripped" in legend
    table = text_of(npl[npl.index("<details>") :])
    assert "2026-04 2026-04-30 0.031 No 2026-05 2026-05-31 0.032 Yes 2026-06 2026-06-30 0.028 No" in table

    exposure = metric_block(html, "exposure_outstanding")
    legend = text_of(exposure[exposure.index('<ul class="legend"') :])
    # exposure / quota.exposure_limit > 1: a trip level at the granted quota, and the quota itself.
    assert "rule exposure-cap — breached when exposure_outstanding > 5000000000 (1 × quota.exposure_limit)" in legend
    assert "Quota: exposure_limit granted 5000000000" in legend
    # A window rule has no single level: listed in words, not drawn.
    assert "loss-growth (warn, shadow): pct_change(exposure_outstanding) > 0.5 — not drawn" in legend
    assert exposure.count('class="level level-quota"') == 1

    evaluations = text_of(section(html, "Recent evaluations"))
    assert "2026-05" in evaluations and "npl-trip (trip, breaker tripped)" in evaluations
    filings = section(html, "Filings")
    assert "Showing the latest 5 of 5 filings" in text_of(filings)
    assert len(re.findall(r'<a href="/filings/[0-9a-f-]{36}">Filing 2026-0\d</a>', filings)) == 5
    assert f'href="/exemptions?pilot={pilot["id"]}"' in html
    assert f'href="/audit?object_type=pilot&amp;object_id={pilot["id"]}"' in html
    # The supervisor may suspend only an active pilot: nothing to do on a suspended one.
    assert "Resume" not in buttons(html) and "Report risk event" not in buttons(html)


def test_a_pilot_without_filings_says_so_on_every_chart(live: Live, browser: MakeBrowser) -> None:
    live.clock.at = NOW
    html = browser(live.world.approver).get(f"/pilots/{live.pilot['id']}").text
    metrics = section(html, "Metrics")
    assert metrics.count("No filings yet") >= len(live.catalogue)
    assert "4000000000" not in text_of(section(html, "Quotas")) and "Not reported" in section(html, "Quotas")


def test_the_bureau_suspends_and_resumes_through_the_page(live: Live, browser: MakeBrowser) -> None:
    live.clock.at = NOW
    page = f"/pilots/{live.pilot['id']}"
    supervisor = browser(live.world.supervisor)
    html = supervisor.get(page).text
    assert buttons(html).count("Suspend") == 1
    assert not {"Resume", "Terminate", "Complete", "Extend", "Withdraw"} & set(buttons(html))
    assert '<label for="reason-suspend">Reason</label>' in html

    suspended = supervisor.submit(page, f"{page}/suspend", {"reason": "Complaints to be reviewed"})
    assert suspended.status_code == 303 and suspended.headers["location"] == page
    shown = supervisor.follow(suspended)
    assert flash(shown.text) == "notice: Pilot suspended."
    assert "Why: Complaints to be reviewed" in text_of(shown.text)
    assert pilot_state(live) == "suspended"

    approver = browser(live.world.approver)
    html = approver.get(page).text
    assert {"Resume", "Extend", "Terminate"} <= set(buttons(html)) and "Suspend" not in buttons(html)
    resumed = approver.follow(approver.submit(page, f"{page}/resume", {"reason": "Review closed"}))
    assert flash(resumed.text) == "notice: Pilot resumed."
    assert pilot_state(live) == "active"

    extended = approver.follow(
        approver.submit(page, f"{page}/extend", {"end_on": "2028-06-30", "reason": "More time to run off"})
    )
    assert flash(extended.text) == "notice: Pilot extended to 2028-06-30."
    assert "2026-02-01 to 2028-06-30 (extended 1 time; originally to 2027-12-31)" in text_of(extended.text)
    missing = approver.follow(approver.submit(page, f"{page}/extend", {"end_on": "", "reason": "again"}))
    assert flash(missing.text) == "error: New end date is required."


def test_resume_is_refused_while_a_breaker_is_open_and_the_state_stays(live: Live, browser: MakeBrowser) -> None:
    history(live)
    page = f"/pilots/{live.pilot['id']}"
    approver = browser(live.world.approver)
    refused = approver.submit(page, f"{page}/resume", {"reason": "Looks fine now"})
    assert refused.status_code == 303 and refused.headers["location"] == page
    shown = approver.follow(refused)
    assert flash(shown.text) == (
        "error: The pilot cannot resume while breakers are tripped or acknowledged: npl-trip (tripped)."
    )
    assert pilot_state(live) == "suspended"
    empty = approver.follow(approver.submit(page, f"{page}/terminate", {"reason": "  "}))
    assert flash(empty.text) == "error: Reason is required."
    assert pilot_state(live) == "suspended"
    stale = approver.follow(approver.submit(page, f"{page}/terminate", {"reason": "End it", "version": "1"}))
    assert flash(stale.text).startswith("error: The pilot has changed since you read it")
    assert pilot_state(live) == "suspended"


def test_users_without_the_role_get_no_button_and_a_refusal(live: Live, browser: MakeBrowser) -> None:
    live.clock.at = NOW
    page = f"/pilots/{live.pilot['id']}"
    filer = browser(live.world.filer_a)
    html = filer.get(page).text
    assert not set(buttons(html)) & {"Suspend", "Resume", "Extend", "Complete", "Terminate", "Withdraw"}
    assert "Report risk event" in buttons(html)
    refused = filer.follow(filer.submit(page, f"{page}/suspend", {"reason": "we would like a pause"}))
    assert flash(refused.text) == "error: Suspend a pilot needs the role supervisor; you are filer."
    assert pilot_state(live) == "active"
    admin = browser(live.world.bank_a).get(page).text
    assert "Withdraw" in buttons(admin) and "Suspend" not in buttons(admin)
    reviewer = browser(live.world.reviewer).get(page).text
    assert not set(buttons(reviewer)) - {"Sign out"}


def test_the_institution_reports_a_risk_event(live: Live, browser: MakeBrowser, database: Database) -> None:
    live.clock.at = NOW
    page = f"/pilots/{live.pilot['id']}"
    filer = browser(live.world.filer_a)
    html = filer.get(page).text
    form = section(html, "Report a risk event")
    for field_id, label in (
        ("risk-kind", "Kind of event"),
        ("risk-occurred-on", "Occurred on"),
        ("risk-amount", "Loss amount (CNY, optional)"),
        ("risk-description", "Description"),
    ):
        assert f'<label for="{field_id}">{label}</label>' in form and f'id="{field_id}"' in form
    reported = filer.submit(
        page,
        f"{page}/risk-events",
        {"kind": "credit_loss", "occurred_on": "2026-03-18", "amount": "1200000", "description": "Borrower default"},
    )
    assert reported.status_code == 303 and reported.headers["location"] == page
    shown = filer.follow(reported)
    assert flash(shown.text) == (
        "notice: Risk event reported (credit loss on 2026-03-18). "
        "No exemption assessment was started: the program's policy has no due-diligence criteria."
    )
    events = text_of(section(shown.text, "Risk events"))
    assert "2026-03-18 credit loss 1200000 Borrower default" in events
    assert count_events(database) == 1
    # The bureau reads it, and gets no form to report one.
    bureau = browser(live.world.supervisor).get(page).text
    assert "Borrower default" in bureau and "Report risk event" not in buttons(bureau)


def test_a_reported_loss_starts_an_exemption_assessment(
    world: World, clock: FixedClock, database: Database, browser: MakeBrowser
) -> None:
    risky = go_live(world, clock, database, exemption=True)
    clock.at = NOW
    page = f"/pilots/{risky.pilot['id']}"
    admin = browser(world.bank_a)
    shown = admin.follow(
        admin.submit(
            page,
            f"{page}/risk-events",
            {"kind": "fraud", "occurred_on": "2026-11-27", "amount": "50000", "description": "Forged invoices"},
        )
    )
    notice = flash(shown.text)
    assert notice.startswith(
        "notice: Risk event reported (fraud on 2026-11-27). The loss was assessed for a due-diligence exemption"
    )
    assert "a supervisor decides it" in notice
    assert re.search(
        r'<a href="/exemptions/[0-9a-f-]{36}">Exemption assessment</a>', section(shown.text, "Risk events")
    )


def test_a_refused_risk_event_form_comes_back_with_its_errors_and_values(
    live: Live, browser: MakeBrowser, database: Database
) -> None:
    live.clock.at = NOW
    page = f"/pilots/{live.pilot['id']}"
    filer = browser(live.world.filer_a)
    bad = filer.submit(
        page,
        f"{page}/risk-events",
        {"kind": "credit_loss", "occurred_on": "2026-03-18", "amount": "1,200,000", "description": ""},
    )
    assert bad.status_code == 422
    html = bad.text
    assert "<h1>Report a risk event for " in html and html.count("<h1") == 1
    text = text_of(html)
    assert "The risk event was not reported." in text
    assert "Description is required." in text and "Loss amount:" in text
    assert 'value="1,200,000"' in html and 'value="2026-03-18"' in html
    assert '<option value="credit_loss" selected>' in html
    assert 'id="risk-amount"' in html and 'aria-invalid="true"' in html

    future = filer.submit(
        page,
        f"{page}/risk-events",
        {"kind": "fraud", "occurred_on": "2026-12-25", "amount": "", "description": "Phishing wave"},
    )
    assert future.status_code == 422
    assert "Occurred on: 2026-12-25 is in the future (today is 2026-11-28)." in text_of(future.text)
    assert "Phishing wave" in future.text
    assert count_events(database) == 0
    # The form also has a page of its own.
    own = filer.get(f"{page}/risk-events/new")
    assert own.status_code == 200 and "Report risk event" in buttons(own.text)
    assert browser(live.world.supervisor).get(f"{page}/risk-events/new").status_code == 403


def test_another_bank_gets_404_for_the_pilot(live: Live, browser: MakeBrowser, database: Database) -> None:
    live.clock.at = NOW
    page = f"/pilots/{live.pilot['id']}"
    bank_b = browser(live.world.bank_b)
    response = bank_b.get(page)
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text and live.pilot["reference"] not in response.text
    assert bank_b.get(f"{page}/risk-events/new").status_code == 404
    assert bank_b.get("/pilots/not-a-pilot").status_code == 404
    posted = bank_b.submit("/pilots", f"{page}/withdraw", {"reason": "ours now"})
    assert flash(bank_b.follow(posted).text) == "error: No such pilot."
    reported = bank_b.submit(
        "/pilots",
        f"{page}/risk-events",
        {"kind": "fraud", "occurred_on": "2026-03-01", "description": "not ours"},
    )
    assert flash(bank_b.follow(reported).text) == "error: No such pilot."
    assert pilot_state(live) == "active" and count_events(database) == 0


def test_a_post_without_the_csrf_token_is_refused(live: Live, browser: MakeBrowser, database: Database) -> None:
    live.clock.at = NOW
    page = f"/pilots/{live.pilot['id']}"
    supervisor = browser(live.world.supervisor)
    supervisor.get(page)  # a session exists
    refused = supervisor.client.post(f"{page}/suspend", data={"reason": "no token"}, follow_redirects=False)
    assert refused.status_code == 403
    wrong = supervisor.client.post(
        f"{page}/suspend", data={"reason": "bad token", "csrf_token": "forged"}, follow_redirects=False
    )
    assert wrong.status_code == 403
    filer = browser(live.world.filer_a)
    filer.get(page)
    event: dict[str, Any] = {"kind": "fraud", "occurred_on": "2026-03-01", "description": "x"}
    assert filer.client.post(f"{page}/risk-events", data=event, follow_redirects=False).status_code == 403
    assert pilot_state(live) == "active" and count_events(database) == 0


def count_events(database: Database) -> int:
    with database.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RiskEvent)) or 0)
