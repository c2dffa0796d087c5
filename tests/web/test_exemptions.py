"""Exemption pages: each criterion with its evidence, decide and confirm by the right bureau users,
and the institution's claim form (kept values and field errors when refused)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.clock import FixedClock
from sandbox.db import Database
from tests.risk.test_risk_events_api import Live, at, go_live
from tests.support import NOW, Login
from tests.web.conftest import Browser
from tests.world import World

Browse = Callable[[Login | None], Browser]
LONG_REASON = (
    "The February filing came late because of the bureau's own portal outage, logged as incident 2026-031; "
    "the bank is not at fault."
)


@pytest.fixture
def live(world: World, clock: FixedClock, database: Database) -> Live:
    return go_live(world, clock, database, exemption=True)


def buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit">([^<]+)</button>', html)


def criteria(html: str) -> dict[str, str]:
    """Each criterion's heading: title -> "Met" / "Not met"."""
    return dict(
        re.findall(r'<h3 id="criterion-[a-z_]+">([^<:]+): <span class="(?:met|unmet)">([^<]+)</span></h3>', html)
    )


def assessed(live: Live, *, filed_on: str = "2026-03-05") -> str:
    """A reported loss, assessed at once: every criterion met when the February filing was on time."""
    live.file("2026-02", on=filed_on)
    live.clock.at = at("2026-03-20")
    response = live.report()
    assert response.status_code == 201, response.text
    (exemption_id,) = response.json()["exemption_ids"]
    live.clock.at = NOW  # the test browser's sessions are issued at NOW
    return str(exemption_id)


def state_of(live: Live, exemption_id: str) -> str:
    response = live.world.client.get(f"/api/v1/exemptions/{exemption_id}", headers=live.world.supervisor.headers)
    return str(response.json()["state"])


def test_the_page_shows_each_criterion_with_its_evidence(live: Live, browser: Browse) -> None:
    exemption_id = assessed(live)
    page = browser(live.world.supervisor).get(f"/exemptions/{exemption_id}")
    assert page.status_code == 200
    html = page.text
    assert criteria(html) == {
        "Filings on time": "Met",
        "Within the granted scope and quotas": "Met",
        "Reported in time": "Met",
        "No new business while suspended": "Met",
        "No prior breach": "Met",
        "Pilot active when the business was done": "Met",
        "NPL ratio within tolerance": "Met",
    }
    assert "7 of 7 criteria met" in html
    # Evidence: values and where they come from.
    assert "<dt>Pilot NPL</dt>" in html and "0.01" in html and "<dt>Institution NPL</dt>" in html and "0.013" in html
    assert '<th scope="col">Occurred on</th>' in html and "2026-03-18" in html
    assert "credit loss of 2026-03-18" in html  # the report, named as the risk event it is
    assert "Source: The pilot&#39;s filings" in html
    # What it concerns, the finding, links.
    assert "borrower default" in html and "<strong>grant</strong>" in html
    assert f'href="/pilots/{live.pilot["id"]}"' in html
    assert f'href="/audit?object_type=exemption&amp;object_id={exemption_id}">Audit trail</a>' in html
    assert buttons(html) == ["Sign out", "Decide"]
    assert (
        '<label for="decide-decision">Decision</label>' in html and '<label for="decide-reason">Reason</label>' in html
    )

    own = browser(live.world.bank_a).get(f"/exemptions/{exemption_id}")
    assert own.status_code == 200 and buttons(own.text) == ["Sign out"] and "Audit trail" not in own.text
    assert browser(live.world.bank_b).get(f"/exemptions/{exemption_id}").status_code == 404


def test_the_list_filters_by_state_and_pilot_and_keeps_banks_apart(live: Live, browser: Browse) -> None:
    exemption_id = assessed(live)
    link = f'href="/exemptions/{exemption_id}"'
    supervisor = browser(live.world.supervisor)
    assert link in supervisor.get("/exemptions").text
    assert link in supervisor.get("/exemptions?state=assessed").text
    assert link not in supervisor.get("/exemptions?state=granted").text
    assert link in supervisor.get(f"/exemptions?pilot={live.pilot['id']}&state=").text
    assert supervisor.get("/exemptions?state=nonsense").status_code == 422
    assert link in browser(live.world.bank_a).get("/exemptions").text
    assert link not in browser(live.world.bank_b).get("/exemptions").text
    assert browser(live.world.bank_b).get(f"/exemptions?pilot={live.pilot['id']}").status_code == 404


def test_a_supervisor_decides_and_other_roles_cannot(live: Live, browser: Browse) -> None:
    exemption_id = assessed(live)
    url = f"/exemptions/{exemption_id}"
    approver = browser(live.world.approver)
    assert buttons(approver.get(url).text) == ["Sign out"]
    refused = approver.follow(approver.submit(url, f"{url}/decide", {"decision": "grant", "reason": "criteria met"}))
    assert "needs the role supervisor" in refused.text
    assert state_of(live, exemption_id) == "assessed"

    supervisor = browser(live.world.supervisor)
    empty = supervisor.follow(supervisor.submit(url, f"{url}/decide", {"decision": "grant", "reason": ""}))
    assert "Reason is required." in empty.text and state_of(live, exemption_id) == "assessed"
    done = supervisor.follow(
        supervisor.submit(url, f"{url}/decide", {"decision": "grant", "reason": "all criteria met on the record"})
    )
    assert "Exemption granted." in done.text
    assert state_of(live, exemption_id) == "granted"
    assert "all criteria met on the record" in done.text and buttons(done.text) == ["Sign out"]


def test_a_decision_against_the_finding_waits_for_a_second_bureau_user(live: Live, browser: Browse) -> None:
    exemption_id = assessed(live, filed_on="2026-03-19")  # the February filing six days late
    url = f"/exemptions/{exemption_id}"
    supervisor = browser(live.world.supervisor)
    page = supervisor.get(url)
    assert criteria(page.text)["Filings on time"] == "Not met"
    assert "6 of 7 criteria met" in page.text
    assert '<th scope="col">Days late</th>' in page.text

    short = supervisor.follow(supervisor.submit(url, f"{url}/decide", {"decision": "grant", "reason": "outage"}))
    assert "at least 80 characters" in short.text and state_of(live, exemption_id) == "assessed"
    referred = supervisor.follow(supervisor.submit(url, f"{url}/decide", {"decision": "grant", "reason": LONG_REASON}))
    assert "takes effect when a second bureau user confirms it" in referred.text
    assert state_of(live, exemption_id) == "awaiting_confirmation"
    assert buttons(referred.text) == ["Sign out"]  # not for the decider

    approver = browser(live.world.approver)
    page = approver.get(url)
    assert buttons(page.text) == ["Sign out", "Confirm"] and '<label for="confirm-reason">Reason</label>' in page.text
    done = approver.follow(approver.submit(url, f"{url}/confirm", {"reason": "outage confirmed in our incident log"}))
    assert "Decision confirmed: exemption granted." in done.text
    assert state_of(live, exemption_id) == "granted"
    assert "outage confirmed in our incident log" in done.text and LONG_REASON.replace("'", "&#39;") in done.text


def test_an_institution_admin_claims_and_a_refused_claim_keeps_the_values(live: Live, browser: Browse) -> None:
    world = live.world
    live.file("2026-02", on="2026-03-05")
    live.clock.at = at("2026-03-20")
    incident = live.report(kind="complaint_surge", amount=None, occurred_on="2026-03-17", description="complaints")
    assert incident.status_code == 201 and incident.json()["exemption_ids"] == []
    event_id = incident.json()["id"]
    live.clock.at = NOW
    form_url = f"/exemptions/new?pilot={live.pilot['id']}"

    assert browser(world.filer_a).get(form_url).status_code == 403
    assert browser(world.bank_b).get(form_url).status_code == 404
    bank = browser(world.bank_a)
    form = bank.get(form_url)
    assert form.status_code == 200 and buttons(form.text) == ["Sign out", "Submit claim"]
    assert '<label for="claim-risk-event">Risk event</label>' in form.text
    assert '<label for="claim-statement">Statement</label>' in form.text
    assert "complaint surge of 2026-03-17" in form.text
    assert "Claim an exemption" in bank.get(f"/exemptions?pilot={live.pilot['id']}").text

    statement = "李经理 and the desk handled every complaint within the service standard"
    blank = bank.submit(
        form_url, "/exemptions/new", {"pilot": live.pilot["id"], "risk_event_id": "", "statement": statement}
    )
    assert blank.status_code == 422
    assert 'class="field-error">choose one of the pilot&#39;s risk events</p>' in blank.text
    assert statement in blank.text  # the statement is kept

    data = {"pilot": live.pilot["id"], "risk_event_id": event_id, "statement": statement}
    made = bank.submit(form_url, "/exemptions/new", data)
    assert made.status_code == 303, made.text
    page = bank.follow(made)
    assert "Claim submitted. The system assessed it: finding grant." in page.text
    assert statement in page.text and "the institution&#39;s claim" in page.text

    again: Any = bank.submit(form_url, "/exemptions/new", data)
    assert again.status_code == 409
    assert "already claimed and awaits a decision" in again.text
    assert statement in again.text and f'<option value="{event_id}" selected>' in again.text
    listed = live.world.client.get("/api/v1/exemptions", headers=world.supervisor.headers).json()
    assert listed["total"] == 1


def test_forms_without_their_csrf_token_are_refused(live: Live, browser: Browse) -> None:
    exemption_id = assessed(live)
    client = browser(live.world.supervisor).client
    response = client.post(
        f"/exemptions/{exemption_id}/decide", data={"decision": "grant", "reason": "x"}, follow_redirects=False
    )
    assert response.status_code == 403 and state_of(live, exemption_id) == "assessed"
    claim = browser(live.world.bank_a).client.post("/exemptions/new", data={"pilot": live.pilot["id"]})
    assert claim.status_code == 403
