"""The breaker board and breaker pages: open breakers first, each bank sees only its own, and only a
supervisor gets (and may use) the Acknowledge and Reset buttons."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.evaluation.conftest import Live, live  # noqa: F401 (the fixture)
from tests.support import NOW, Login
from tests.web.conftest import Browser

Browse = Callable[[Login | None], Browser]


def rule_order(html: str) -> list[str]:
    """The rule of each row of the board, top to bottom."""
    if "<tbody>" not in html:
        return []
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<a href="/breakers/[0-9a-f-]+">([a-z0-9-]+)</a>', body)


def count(html: str, state: str) -> int:
    match = re.search(rf'state-{state}">{state}</span>\s*<strong class="count">(\d+)</strong>', html)
    assert match, f"no count for {state}"
    return int(match.group(1))


def buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit">([^<]+)</button>', html)


@pytest.fixture
def tripped(live: Live) -> Live:  # noqa: F811 (the re-exported fixture)
    """exposure-cap tripped (and not acknowledged), npl-trip tripped and acknowledged, the rest armed."""
    assert live.file("2026-02", exposure_outstanding="6000000000").status_code == 201
    assert live.file("2026-03", npl_ratio="0.035").status_code == 201
    assert live.file("2026-04", npl_ratio="0.036").status_code == 201
    npl = live.breaker("npl-trip")
    assert npl["state"] == "tripped" and live.breaker("exposure-cap")["state"] == "tripped"
    acked = live.world.client.post(
        f"/api/v1/breakers/{npl['id']}/acknowledge", json={"note": "seen"}, headers=live.world.supervisor.headers
    )
    assert acked.status_code == 200, acked.text
    live.clock.at = NOW  # the test browser's sessions are issued at NOW
    return live


def state_of(target: Live, rule_id: str) -> str:
    return str(target.breaker(rule_id)["state"])


def test_the_board_puts_unacknowledged_trips_first_and_counts_each_state(tripped: Live, browser: Browse) -> None:
    page = browser(tripped.world.supervisor).get("/breakers")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Breaker board</h1>" in html
    order = rule_order(html)
    assert order[:2] == ["exposure-cap", "npl-trip"]
    assert set(order[2:]) >= {"within-scope", "institution-eligible"}
    assert count(html, "tripped") == 1 and count(html, "acknowledged") == 1
    assert count(html, "armed") == len(order) - 2
    reference = tripped.pilot["reference"]
    assert f'<a href="/pilots/{tripped.pilot["id"]}">{reference}</a>' in html
    # The acknowledgement is shown with who gave it.
    assert tripped.world.supervisor.user.email in html
    assert "Showing 1–" in html and 'label for="filter-state">State<' in html and ">Filter</button>" in html

    only_tripped = browser(tripped.world.supervisor).get("/breakers?state=tripped&program=")
    assert rule_order(only_tripped.text) == ["exposure-cap"]
    other_program = browser(tripped.world.supervisor).get("/breakers?program=SH-FTZ-NRSL")
    assert rule_order(other_program.text) == [] and "No breakers match." in other_program.text
    assert browser(tripped.world.supervisor).get("/breakers?state=broken").status_code == 422


def test_banks_see_only_their_own_breakers(tripped: Live, browser: Browse) -> None:
    world = tripped.world
    breaker = tripped.breaker("exposure-cap")
    own = browser(world.bank_a).get("/breakers")
    assert rule_order(own.text)[:2] == ["exposure-cap", "npl-trip"]
    other = browser(world.bank_b).get("/breakers")
    assert other.status_code == 200 and rule_order(other.text) == []
    assert browser(world.bank_b).get(f"/breakers/{breaker['id']}").status_code == 404
    assert browser(world.bank_b).get(f"/breakers?pilot={tripped.pilot['id']}").status_code == 404
    assert rule_order(browser(world.bank_a).get(f"/breakers?pilot={tripped.pilot['id']}").text)[0] == "exposure-cap"
    page = browser(world.bank_a).get(f"/breakers/{breaker['id']}")
    assert page.status_code == 200 and "Acknowledge" not in buttons(page.text)
    assert "Audit trail" not in page.text  # the audit trail is the bureau's


def test_a_supervisor_acknowledges_from_the_breaker_page(tripped: Live, browser: Browse) -> None:
    breaker = tripped.breaker("exposure-cap")
    url = f"/breakers/{breaker['id']}"
    supervisor = browser(tripped.world.supervisor)
    page = supervisor.get(url)
    assert page.status_code == 200
    assert buttons(page.text) == ["Sign out", "Acknowledge", "Reset"]
    assert '<label for="acknowledge-note">Note</label>' in page.text
    assert '<label for="reset-reason">Reason</label>' in page.text
    assert f'href="/audit?object_type=breaker&amp;object_id={breaker["id"]}">Audit trail</a>' in page.text
    assert "exposure_outstanding / quota.exposure_limit &gt; 1" in page.text  # the rule's condition
    assert "2026-02" in page.text and "tripped" in page.text  # the event that tripped it

    done = supervisor.follow(supervisor.submit(url, f"{url}/acknowledge", {"note": "calling the bank"}))
    assert "Breaker acknowledged." in done.text
    assert state_of(tripped, "exposure-cap") == "acknowledged"
    assert buttons(done.text) == ["Sign out", "Reset"]
    assert "calling the bank" in done.text  # the note, in the history


def test_other_roles_get_no_button_and_are_refused(tripped: Live, browser: Browse) -> None:
    breaker = tripped.breaker("exposure-cap")
    url = f"/breakers/{breaker['id']}"
    for login in (tripped.world.approver, tripped.world.reviewer, tripped.world.bank_a):
        user = browser(login)
        page = user.get(url)
        assert page.status_code == 200 and buttons(page.text) == ["Sign out"]
        refused = user.follow(user.submit(url, f"{url}/acknowledge", {"note": "x"}))
        assert "needs the role supervisor" in refused.text
    outsider = browser(tripped.world.bank_b)
    refused = outsider.follow(outsider.submit("/breakers", f"{url}/acknowledge", {}))
    assert "No such breaker." in refused.text
    assert state_of(tripped, "exposure-cap") == "tripped"


def test_reset_needs_a_reason_and_puts_the_breaker_on_probation(tripped: Live, browser: Browse) -> None:
    breaker = tripped.breaker("npl-trip")
    url = f"/breakers/{breaker['id']}"
    supervisor = browser(tripped.world.supervisor)
    assert buttons(supervisor.get(url).text) == ["Sign out", "Reset"]
    refused = supervisor.follow(supervisor.submit(url, f"{url}/reset", {"reason": "  "}))
    assert "Reason is required." in refused.text
    assert state_of(tripped, "npl-trip") == "acknowledged"
    # The breaker service does not hold a reset back while the condition still holds (the
    # probation's next breach trips it again), so the page does not either.
    done = supervisor.follow(supervisor.submit(url, f"{url}/reset", {"reason": "remediation plan accepted"}))
    assert "Breaker reset; it is now on probation." in done.text
    assert state_of(tripped, "npl-trip") == "probation"
    assert buttons(done.text) == ["Sign out"]


def test_a_stale_form_is_refused(tripped: Live, browser: Browse) -> None:
    breaker = tripped.breaker("exposure-cap")
    url = f"/breakers/{breaker['id']}"
    supervisor = browser(tripped.world.supervisor)
    stale: Any = supervisor.submit(url, f"{url}/acknowledge", {"version": str(breaker["version"] - 1)})
    assert "has changed since you read it" in supervisor.follow(stale).text
    assert state_of(tripped, "exposure-cap") == "tripped"


def test_a_command_without_its_csrf_token_is_refused(tripped: Live, browser: Browse) -> None:
    breaker = tripped.breaker("exposure-cap")
    client = browser(tripped.world.supervisor).client
    response = client.post(f"/breakers/{breaker['id']}/acknowledge", data={"note": "x"}, follow_redirects=False)
    assert response.status_code == 403
    assert state_of(tripped, "exposure-cap") == "tripped"
