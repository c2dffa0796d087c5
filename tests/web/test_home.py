"""The home page: the bureau's work queues by role, and an institution's pilots and questions
(never another institution's)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.web.auth import COOKIE_NAME, encode_session, new_session
from tests.filing.conftest import start_live
from tests.risk.test_risk_events_api import Live, at, go_live
from tests.support import NOW, Login
from tests.web.conftest import Browser
from tests.world import World

BrowserFor = Callable[[Login | None], Browser]


def section(page: str, heading: str) -> str:
    """The HTML of one queue: from its heading to the next section."""
    start = page.index(heading)
    end = page.find("</section>", start)
    return page[start : end if end != -1 else len(page)]


def row_of(html: str, title: str) -> str:
    match = re.search(r"<tr>(?:(?!</tr>).)*" + re.escape(title) + r"(?:(?!</tr>).)*</tr>", html, re.S)
    assert match, f"no row for {title!r}"
    return match.group(0)


def applications_in_every_state(world: World) -> dict[str, str]:
    """One application of BANK-A per state that matters to the queues; their ids by title."""
    ids = {}
    ids["Draft plan"] = world.create(title="Draft plan")["id"]
    submitted = world.create(title="Submitted plan")["id"]
    world.command(submitted, "submit", world.bank_a)
    ids["Submitted plan"] = submitted
    reviewing = world.create(title="Plan under review")["id"]
    for verb, who in (("submit", world.bank_a), ("start-review", world.reviewer)):
        world.command(reviewing, verb, who)
    ids["Plan under review"] = reviewing
    asked = world.create(title="Plan with questions")["id"]
    for verb, who, body in (
        ("submit", world.bank_a, None),
        ("start-review", world.reviewer, None),
        ("request-info", world.reviewer, {"message": "Which targets?"}),
    ):
        world.command(asked, verb, who, body)
    ids["Plan with questions"] = asked
    ids["Recommended plan"] = world.to_recommended(title="Recommended plan", recommender=world.approver)["id"]
    return ids


def test_the_bureau_sees_applications_waiting_for_it_and_what_each_role_does_next(
    world: World, browser: BrowserFor
) -> None:
    ids = applications_in_every_state(world)
    reviewer = browser(world.reviewer).get("/")
    assert reviewer.status_code == 200
    assert "<h1>Work queues</h1>" in reviewer.text
    for heading in (
        "Applications to review or decide",
        "Breakers tripped and not acknowledged",
        "Exemptions to decide",
        "Overdue filings",
    ):
        assert re.search(rf"<h2 [^>]*>{heading} <span class=\"count\">\(\d+\)</span></h2>", reviewer.text), heading

    queue = section(reviewer.text, "Applications to review or decide")
    assert 'Applications to review or decide <span class="count">(3)</span>' in queue
    assert "Showing 3 of 3 applications." in queue
    for title in ("Submitted plan", "Plan under review", "Recommended plan"):
        assert f'<a href="/applications/{ids[title]}">{title}</a>' in queue
    # A draft and an application waiting for the institution are not the bureau's work.
    assert "Draft plan" not in queue and "Plan with questions" not in queue
    assert 'href="/applications?state=submitted">submitted (1)</a>' in queue

    assert "Reviewer or approver: start review" in row_of(queue, "Submitted plan")
    assert "<td>Start review</td>" in row_of(queue, "Submitted plan")
    assert "Reviewer or approver: request information or recommend" in row_of(queue, "Plan under review")
    recommended = row_of(queue, "Recommended plan")
    assert "Approver other than" in recommended and "(four eyes): approve or reject" in recommended
    assert "<td>None</td>" in recommended  # a reviewer does not decide

    other_approver = section(browser(world.approver2).get("/").text, "Applications to review or decide")
    assert "<td>Approve, reject</td>" in row_of(other_approver, "Recommended plan")
    recommender = section(browser(world.approver).get("/").text, "Applications to review or decide")
    assert "None: you recommended it" in row_of(recommender, "Recommended plan")
    supervisor = section(browser(world.supervisor).get("/").text, "Applications to review or decide")
    assert "<td>None</td>" in row_of(supervisor, "Submitted plan")


def test_the_queues_are_capped_with_a_link_to_the_full_list(world: World, browser: BrowserFor) -> None:
    for number in range(12):
        app_id = world.create(title=f"Plan {number:02d}")["id"]
        world.command(app_id, "submit", world.bank_a)
    queue = section(browser(world.reviewer).get("/").text, "Applications to review or decide")
    assert "Showing 10 of 12 applications." in queue
    assert queue.count('<a href="/applications/') == 10
    # The one waiting longest comes first.
    assert queue.index("Plan 00") < queue.index("Plan 09") and "Plan 11" not in queue
    assert 'href="/applications?state=submitted">submitted (12)</a>' in queue


def test_the_supervisor_sees_tripped_breakers_and_exemptions_to_decide(
    world: World, browser: BrowserFor, clock: FixedClock, database: Database
) -> None:
    live: Live = go_live(world, clock, database, exemption=True)
    live.file("2026-02", on="2026-03-05")
    clock.at = at("2026-03-20")
    assert live.report().status_code == 201
    live.file("2026-03", on="2026-04-10", exposure_outstanding="6000000000")
    breaker = next(
        b
        for b in world.client.get("/api/v1/breakers", headers=world.supervisor.headers).json()["items"]
        if b["rule_id"] == "quota-trip"
    )
    (exemption,) = world.client.get("/api/v1/exemptions", headers=world.supervisor.headers).json()["items"]
    clock.at = NOW  # the browser's session was issued now

    page = browser(world.supervisor).get("/").text
    breakers = section(page, "Breakers tripped and not acknowledged")
    assert 'Breakers tripped and not acknowledged <span class="count">(1)</span>' in breakers
    assert f'<a href="/breakers/{breaker["id"]}">quota-trip</a>' in breakers
    assert f'<a href="/pilots/{live.pilot["id"]}">{live.pilot["reference"]}</a>' in breakers
    assert "Showing 1 of 1 breaker." in breakers

    exemptions = section(page, "Exemptions to decide")
    assert f'<a href="/exemptions/{exemption["id"]}">' in exemptions
    assert "<td>Decide</td>" in exemptions and "Showing 1 of 1 exemption." in exemptions

    # Acknowledged, the breaker leaves the queue.
    acknowledged = world.client.post(
        f"/api/v1/breakers/{breaker['id']}/acknowledge", json={"note": "seen"}, headers=world.supervisor.headers
    )
    assert acknowledged.status_code == 200, acknowledged.text
    breakers = section(browser(world.supervisor).get("/").text, "Breakers tripped and not acknowledged")
    assert "(0)" in breakers and "No breaker is tripped and waiting." in breakers

    # The institution's home: its pilot, suspended, linked to its page.
    home = browser(world.bank_a).get("/").text
    assert f'<a href="/pilots/{live.pilot["id"]}">{live.pilot["reference"]}</a>' in home
    assert "suspended" in home


def test_overdue_filings_have_their_section_and_link(world: World, browser: BrowserFor) -> None:
    queue = section(browser(world.approver).get("/").text, "Overdue filings")
    assert "No filing is overdue." in queue and '<a href="/filings">All filings</a>' in queue


def test_the_overdue_queue_lists_periods_past_their_due_date_most_overdue_first(
    world: World, clock: FixedClock, database: Database, settings: Settings, browser: BrowserFor
) -> None:
    live = start_live(world, clock, database)  # an active BANK-A pilot from 2026-02; clock 2026-11-20
    page = browser(None)
    page.client.cookies.set(
        COOKIE_NAME, encode_session(settings, new_session(world.supervisor.user.id, now=live.clock.now()))
    )
    queue = section(page.get("/").text, "Overdue filings")
    reference = live.pilot["reference"]
    # Nothing filed since the pilot began in February: nine periods overdue by 2026-11-20, the oldest first.
    assert 'Overdue filings <span class="count">(9)</span>' in queue
    rows = re.findall(r"<tr>.*?</tr>", queue, re.S)[1:]
    assert [re.search(r"<td>(\d{4}-\d{2})</td>", row).group(1) for row in rows] == [  # type: ignore[union-attr]
        f"2026-{month:02d}" for month in range(2, 11)
    ]
    assert all(reference in row for row in rows)


def test_an_institution_sees_its_pilots_and_the_bureaus_questions_only(world: World, browser: BrowserFor) -> None:
    pilot = world.to_pilot(title="Bank A live pilot")
    other_pilot = world.to_pilot(world.bank_b, title="Bank B live pilot")
    ids = applications_in_every_state(world)
    asked_b = world.create(world.bank_b, title="Bank B question")["id"]
    for verb, who, body in (
        ("submit", world.bank_b, None),
        ("start-review", world.reviewer, None),
        ("request-info", world.reviewer, {"message": "Which targets?"}),
    ):
        world.command(asked_b, verb, who, body)

    page = browser(world.bank_a).get("/")
    assert page.status_code == 200
    text = page.text
    assert "Work queues" not in text and "Applications to review or decide" not in text
    assert f'<a href="/pilots/{pilot["id"]}">{pilot["reference"]}</a>' in text
    assert other_pilot["reference"] not in text and "Bank B" not in text
    questions = text[text.index("Questions from the bureau") :]
    assert f'<a href="/applications/{ids["Plan with questions"]}">Plan with questions</a>' in questions
    assert "Submitted plan" not in questions and "Bank B question" not in questions
    assert '<a href="/filings">Filings due</a>' in text and '<a href="/filings/upload">Upload filings</a>' in text
    assert '<a href="/applications/new">New application</a>' in text

    filer = browser(world.filer_a).get("/").text
    assert "Plan with questions" in filer and "New application" not in filer


def test_the_home_page_needs_a_signed_in_user(browser: BrowserFor) -> None:
    response = browser(None).get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")


def test_an_institution_home_lists_its_filings_due_overdue_first(
    world: World, clock: FixedClock, database: Database, settings: Settings, browser: BrowserFor
) -> None:
    live = start_live(world, clock, database)  # BANK-A's pilot from 2026-02, nothing filed; clock 2026-11-20

    def home_of(login: Login) -> str:
        page = browser(None)
        cookie = encode_session(settings, new_session(login.user.id, now=live.clock.now()))
        page.client.cookies.set(COOKIE_NAME, cookie)
        return page.get("/").text

    due = section(home_of(world.filer_a), "Filings due")
    assert 'Filings due <span class="count">(10)</span>' in due  # 2026-02..10 overdue, 2026-11 next
    rows = re.findall(r"<tr>.*?</tr>", due, re.S)[1:]
    assert "2026-02" in rows[0] and "Overdue</span>: " in rows[0]
    assert "2026-11" in rows[-1] and ">Due</span>" in rows[-1]
    assert live.pilot["reference"] in rows[0]
    assert "Nothing is due" in section(home_of(world.bank_b), "Filings due")
