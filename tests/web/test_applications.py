"""The application pages: the list by tenancy, a draft made through the form (and a refused form
that keeps what was typed), and the whole review cycle driven through the page's forms by the
institution and two bureau users, with four eyes visible and enforced."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from html import escape
from typing import Any

from sandbox.db import Database
from sandbox.models import Application
from tests.factories import TECH_MA_SCOPE
from tests.support import Login
from tests.web.conftest import Browser
from tests.world import World

BrowserFor = Callable[[Login | None], Browser]


def version_of(page: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', page)
    assert match, "the page has no command form"
    return match.group(1)


def buttons(page: str) -> list[str]:
    return re.findall(r'<button type="submit">([^<]+)</button>', page)


def state_of(database: Database, application_id: str) -> str:
    with database.sessions() as session:
        application = session.get(Application, uuid.UUID(application_id))
        assert application is not None
        return application.state


def command(b: Browser, application_id: str, verb: str, data: dict[str, Any] | None = None) -> Any:
    """Post one of the page's command forms with the version the page was rendered with."""
    path = f"/applications/{application_id}"
    page = b.get(path)
    assert page.status_code == 200, page.text[:300]
    return b.submit(path, f"{path}/{verb}", {"version": version_of(page.text), **(data or {})})


def draft_form(**overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "program": "SH-TECH-MA",
        "title": "Acquisition loans for chip makers",
        "description": "Loans to technology enterprises acquiring control of a target.",
        "start_on": "2026-12-01",
        "end_on": "2028-11-30",
        "risk_controls": "Deal-by-deal credit committee; LTV and term hard limits.",
        "consumer_protection": "Corporate borrowers only; standard disclosures.",
        "exit_plan": "Run-off of the book at contractual maturity.",
        "quota.exposure_limit": "5000000000",
        **{f"scope.{dimension}": values for dimension, values in TECH_MA_SCOPE.items()},
    }
    form.update(overrides)
    return form


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_an_institution_its_own_applications_and_the_bureau_all(
    world: World, browser: BrowserFor
) -> None:
    mine = world.create(world.bank_a, title="Bank A chip loans")
    world.create(world.bank_b, title="Bank B robot loans")
    world.command(mine["id"], "submit", world.bank_a)

    bank_a = browser(world.bank_a).get("/applications")
    assert bank_a.status_code == 200
    assert "Bank A chip loans" in bank_a.text and "Bank B robot loans" not in bank_a.text
    assert f'href="/applications/{mine["id"]}"' in bank_a.text
    assert "Showing 1–1 of 1 application" in bank_a.text
    assert ">New application</a>" in bank_a.text
    assert '<label for="filter-state">State</label>' in bank_a.text and ">Filter</button>" in bank_a.text

    bureau = browser(world.reviewer).get("/applications")
    assert "Bank A chip loans" in bureau.text and "Bank B robot loans" in bureau.text
    assert "New application" not in bureau.text
    submitted = browser(world.reviewer).get("/applications?state=submitted")
    assert "Bank A chip loans" in submitted.text and "Bank B robot loans" not in submitted.text
    assert '<option value="submitted" selected>' in submitted.text

    # A filer may not draft applications: no link.
    assert "New application" not in browser(world.filer_a).get("/applications").text
    assert browser(world.reviewer).get("/applications?state=nonsense").status_code == 422


# --- a new draft --------------------------------------------------------------------------------


def test_an_institution_saves_a_draft_through_the_form(world: World, browser: BrowserFor) -> None:
    b = browser(world.bank_a)
    form = b.get("/applications/new?program=SH-TECH-MA")
    assert form.status_code == 200
    for text in (
        '<label for="choose-program">Program</label>',
        '<label for="field-title">Title</label>',
        "<legend>Business scope</legend>",
        "<legend>Requested quotas</legend>",
        "Save draft",
    ):
        assert text in form.text
    assert "Exposure limit (CNY)" in form.text and "Per deal limit (CNY, optional)" in form.text

    saved = b.submit("/applications/new?program=SH-TECH-MA", "/applications/new", draft_form())
    assert saved.status_code == 303
    assert re.fullmatch(r"/applications/[0-9a-f-]{36}", saved.headers["location"])
    page = b.follow(saved)
    assert "Application saved as a draft." in page.text
    assert "<h1>Acquisition loans for chip makers</h1>" in page.text
    assert "Bank A Shanghai Branch" in page.text and "draft" in page.text
    assert "5000000000" in page.text and "integrated circuits" in page.text
    assert "Submit" in buttons(page.text) and "Withdraw" in buttons(page.text)


def test_a_refused_form_keeps_what_was_typed_and_shows_each_error_by_its_field(
    world: World, browser: BrowserFor, database: Database
) -> None:
    b = browser(world.bank_a)
    form = draft_form(title="", description="Our own words, kept.", **{"quota.exposure_limit": "5,000"})
    del form["scope.regions"]
    refused = b.submit("/applications/new?program=SH-TECH-MA", "/applications/new", form)
    assert refused.status_code == 422
    text = refused.text
    assert "The application was not saved" in text
    assert 'id="field-title-error">Required.</p>' in text
    assert 'id="quota-exposure_limit-error">' in text and "not a plain decimal number" in text
    assert "Our own words, kept.</textarea>" in text
    assert 'value="5,000"' in text
    assert re.search(r'value="integrated_circuits"\s+checked', text)
    # The program's limits are checked on what did parse, so one answer lists every problem.
    assert 'id="scope-regions-error">Required: the program limits this dimension.</p>' in text

    # The service's limits: a quota above the program's cap, an end date too far away, a dimension
    # left empty: each reported next to its field, nothing saved.
    scope_without_regions = {k: v for k, v in draft_form().items() if k != "scope.regions"}
    refused = b.submit(
        "/applications/new?program=SH-TECH-MA",
        "/applications/new",
        {**scope_without_regions, "quota.exposure_limit": "99000000000", "end_on": "2030-12-31"},
    )
    assert refused.status_code == 422
    text = refused.text
    assert 'id="quota-exposure_limit-error">' in text and "exceeds the per-pilot cap" in text
    assert 'id="field-end_on-error">' in text and "at most 24 months" in text
    assert 'id="scope-regions-error">' in text and "Required" in text
    assert 'value="99000000000"' in text and 'value="2030-12-31"' in text
    with database.sessions() as session:
        assert session.query(Application).count() == 0


def test_only_an_institution_administrator_gets_the_form(world: World, browser: BrowserFor) -> None:
    for login in (world.reviewer, world.filer_a):
        page = browser(login).get("/applications/new")
        assert page.status_code == 403
        assert "<h1>Not allowed</h1>" in page.text


# --- the review cycle -------------------------------------------------------------------------


def test_the_review_cycle_through_the_forms_with_four_eyes(
    world: World, browser: BrowserFor, database: Database
) -> None:
    bank = browser(world.bank_a)
    reviewer = browser(world.reviewer)
    recommender = browser(world.approver)
    decider = browser(world.approver2)
    app_id = world.create(title="Chip M&A loans")["id"]
    path = f"/applications/{app_id}"

    # Bureau users see no command on a draft; the institution submits it.
    assert buttons(reviewer.get(path).text) == ["Sign out", "Send message"]
    page = bank.follow(command(bank, app_id, "submit"))
    assert "Application submitted; eligibility checked against policy version 2025.1." in page.text
    assert "Capital adequacy" in page.text or "capital adequacy" in page.text
    assert ">Met</td>" in page.text and ">Not met</td>" not in page.text

    page = reviewer.follow(command(reviewer, app_id, "start-review"))
    assert "Review started." in page.text
    assert {"Request information", "Recommend"} <= set(buttons(page.text))
    assert "Approve" not in buttons(page.text)

    asked = command(reviewer, app_id, "request-info", {"message": "How do you value the targets?"})
    assert "Questions sent to the institution." in reviewer.follow(asked).text

    page = bank.get(path)
    assert "How do you value the targets?" in page.text
    assert "Bureau reviewer" in page.text and "(Asia/Shanghai)" in page.text
    assert '<label for="respond-message">Response</label>' in page.text and "Send response" in buttons(page.text)
    answered = command(bank, app_id, "respond", {"message": "Two independent valuations per deal."})
    assert "Response sent to the bureau" in bank.follow(answered).text

    recommended = command(recommender, app_id, "recommend", {"recommendation": "approve", "reason": "Sound controls."})
    page = recommender.follow(recommended)
    assert "Recommendation recorded: approve." in page.text
    # Four eyes, visible: who recommended, and no decision buttons for them.
    assert "Recommended to <strong>approve</strong> by" in page.text and "Bureau approver" in page.text
    assert "You recommended this application, so another approver takes the decision." in page.text
    assert "Approve" not in buttons(page.text) and "Reject" not in buttons(page.text)
    # Posting the decision anyway is refused by the service: state unchanged, reason shown.
    refused = recommender.submit(path, f"{path}/approve", {"reason": "I am sure"})
    assert refused.status_code == 303 and refused.headers["location"] == path
    page = recommender.follow(refused)
    assert 'class="flash flash-error"' in page.text and "you recommended this application" in page.text.lower()
    assert state_of(database, app_id) == "recommended"

    # Another approver decides, with the requested quota lowered and a condition.
    page = decider.get(path)
    assert {"Approve", "Reject"} <= set(buttons(page.text))
    assert 'name="granted_quota.exposure_limit" type="text" inputmode="decimal" value="5000000000"' in page.text
    approved = command(
        decider,
        app_id,
        "approve",
        {
            "scope_dimension": list(TECH_MA_SCOPE),
            **{f"granted_scope.{d}": v for d, v in TECH_MA_SCOPE.items()},
            "granted_quota.exposure_limit": "4000000000",
            "conditions": "Quarterly on-site review\n\nNo syndication",
            "reason": "",
        },
    )
    page = decider.follow(approved)
    match = re.search(r"Application approved; pilot (\S+) created\.", page.text)
    assert match, page.text[:2000]
    assert f">{match.group(1)}</a>" in page.text and 'href="/pilots/' in page.text
    assert state_of(database, app_id) == "approved"
    assert [b for b in buttons(page.text) if b != "Sign out"] == []
    assert "The thread is closed" in page.text
    assert f'href="/audit?object_type=application&amp;object_id={app_id}"' in page.text

    pilot = world.client.get(f"/api/v1/applications/{app_id}", headers=world.approver.headers).json()["pilot_id"]
    granted = world.client.get(f"/api/v1/pilots/{pilot}", headers=world.approver.headers).json()
    assert granted["granted_quotas"] == {"exposure_limit": "4000000000"}
    assert granted["conditions"] == ["Quarterly on-site review", "No syndication"]


def test_a_stale_form_is_refused_with_the_services_reason(
    world: World, browser: BrowserFor, database: Database
) -> None:
    app_id = world.create()["id"]
    world.command(app_id, "submit", world.bank_a)
    reviewer = browser(world.reviewer)
    path = f"/applications/{app_id}"
    old = version_of(reviewer.get(path).text)
    assert world.command(app_id, "start-review", world.approver).status_code == 200
    refused = reviewer.submit(path, f"{path}/start-review", {"version": old})
    page = reviewer.follow(refused)
    assert "has changed since you read it" in page.text
    assert state_of(database, app_id) == "under_review"


def test_a_command_form_left_empty_is_refused_and_changes_nothing(
    world: World, browser: BrowserFor, database: Database
) -> None:
    app_id = world.create()["id"]
    world.command(app_id, "submit", world.bank_a)
    world.command(app_id, "start-review", world.reviewer)
    reviewer = browser(world.reviewer)
    refused = command(reviewer, app_id, "recommend", {"recommendation": "approve", "reason": "  "})
    page = reviewer.follow(refused)
    assert "Reason is required." in page.text
    assert state_of(database, app_id) == "under_review"


def test_messages_on_the_thread(world: World, browser: BrowserFor) -> None:
    app_id = world.create()["id"]
    path = f"/applications/{app_id}"
    bank = browser(world.bank_a)
    page = bank.get(path)
    assert '<label for="thread-message">Message</label>' in page.text
    sent = bank.submit(path, f"{path}/messages", {"message": "我们的问题：何时开始？"})
    page = bank.follow(sent)
    assert "Message sent." in page.text
    assert "我们的问题：何时开始？" in page.text and "Institution administrator" in page.text
    assert "2026-11-28 10:00 (Asia/Shanghai)" in page.text
    # A filer reads the thread but has no form to write on it.
    assert "Send message" not in browser(world.filer_a).get(path).text


# --- refusals ---------------------------------------------------------------------------------


def test_a_post_without_its_csrf_token_is_refused(world: World, browser: BrowserFor, database: Database) -> None:
    app_id = world.create()["id"]
    b = browser(world.bank_a)
    response = b.client.post(f"/applications/{app_id}/submit", data={"version": "1"}, follow_redirects=False)
    assert response.status_code == 403
    response = b.client.post("/applications/new", data=draft_form(), follow_redirects=False)
    assert response.status_code == 403
    assert state_of(database, app_id) == "draft"


def test_another_banks_application_is_not_found(world: World, browser: BrowserFor, database: Database) -> None:
    app_id = world.create(world.bank_a, title="Bank A secret plan")["id"]
    other = browser(world.bank_b)
    page = other.get(f"/applications/{app_id}")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text and "Bank A secret plan" not in page.text
    # Nor can it act on it: the service answers as for an unknown application.
    refused = other.submit("/applications", f"/applications/{app_id}/withdraw", {"reason": "mine now"})
    assert "No such application." in other.follow(refused).text
    assert state_of(database, app_id) == "draft"
    assert escape("Bank A secret plan") not in other.get("/applications").text


# --- editing ------------------------------------------------------------------------------------


def edit_form(page: str, **overrides: Any) -> dict[str, Any]:
    """The edit form as a browser would send it after the user changed ``overrides``."""
    return draft_form(version=version_of(page), **overrides)


def stored(database: Database, application_id: str) -> Application:
    with database.sessions() as session:
        application = session.get(Application, uuid.UUID(application_id))
        assert application is not None
        session.expunge(application)
        return application


def test_an_institution_edits_its_draft_through_the_form(world: World, browser: BrowserFor, database: Database) -> None:
    app_id = world.create(title="Chip M&A loans")["id"]
    path = f"/applications/{app_id}"
    b = browser(world.bank_a)
    page = b.get(path)
    assert f'<a href="{path}/edit">Edit application</a>' in page.text

    form = b.get(f"{path}/edit")
    assert form.status_code == 200
    text = form.text
    assert "<h1>Edit application</h1>" in text and "New application" not in text
    assert 'id="field-title"' in text and 'value="Chip M&amp;A loans"' in text
    assert 'name="quota.exposure_limit" type="text" inputmode="decimal" value="5000000000"' in text
    assert re.search(r'value="integrated_circuits"\s+checked', text)
    assert 'value="2026-12-01"' in text and "Run-off of the book at contractual maturity.</textarea>" in text
    assert buttons(text)[-1] == "Save changes" and "Save draft" not in buttons(text)
    assert f'<form method="post" action="{path}/edit"' in text

    saved = b.submit(
        f"{path}/edit",
        f"{path}/edit",
        edit_form(text, title="Chip M&A loans, revised", **{"quota.exposure_limit": "4000000000"}),
    )
    assert saved.status_code == 303 and saved.headers["location"] == path
    page = b.follow(saved)
    assert "Application updated." in page.text
    assert "<h1>Chip M&amp;A loans, revised</h1>" in page.text and "4000000000" in page.text
    application = stored(database, app_id)
    assert application.title == "Chip M&A loans, revised" and application.state == "draft"
    assert application.requested_quotas == {"exposure_limit": "4000000000"}


def test_a_refused_edit_keeps_what_was_typed_and_changes_nothing(
    world: World, browser: BrowserFor, database: Database
) -> None:
    app_id = world.create(title="Chip M&A loans")["id"]
    path = f"/applications/{app_id}/edit"
    b = browser(world.bank_a)
    page = b.get(path).text

    # Refused by the form's own checks: an emptied field is required, not left as it was.
    refused = b.submit(path, path, edit_form(page, title="", description="New words, kept."))
    assert refused.status_code == 422
    assert "Your changes were not saved" in refused.text
    assert 'id="field-title-error">Required.</p>' in refused.text
    assert "New words, kept.</textarea>" in refused.text
    assert buttons(refused.text)[-1] == "Save changes"

    # Refused by the service (the program's cap), after it had applied the new title: rolled back.
    refused = b.submit(path, path, edit_form(page, title="Bigger loans", **{"quota.exposure_limit": "99000000000"}))
    assert refused.status_code == 422
    assert 'id="quota-exposure_limit-error">' in refused.text and "exceeds the per-pilot cap" in refused.text
    assert 'value="Bigger loans"' in refused.text and 'value="99000000000"' in refused.text
    application = stored(database, app_id)
    assert application.title == "Chip M&A loans"
    assert application.requested_quotas == {"exposure_limit": "5000000000"}
    assert application.version == 1


def test_a_stale_edit_form_is_refused(world: World, browser: BrowserFor, database: Database) -> None:
    app_id = world.create(title="Chip M&A loans")["id"]
    path = f"/applications/{app_id}/edit"
    b = browser(world.bank_a)
    page = b.get(path).text
    changed = world.client.patch(
        f"/api/v1/applications/{app_id}", json={"title": "Changed elsewhere"}, headers=world.bank_a.headers
    )
    assert changed.status_code == 200

    refused = b.submit(path, path, edit_form(page, title="My older edit"))
    assert refused.status_code == 412
    assert "has changed since you read it" in refused.text
    assert 'value="My older edit"' in refused.text
    assert f'<a href="{path}">Open the application as it is now</a>' in refused.text
    assert stored(database, app_id).title == "Changed elsewhere"


def test_only_the_institution_may_edit_and_only_while_the_state_allows(
    world: World, browser: BrowserFor, database: Database
) -> None:
    app_id = world.create(title="Chip M&A loans")["id"]
    path = f"/applications/{app_id}"
    reviewer = browser(world.reviewer)
    assert "Edit application" not in reviewer.get(path).text
    page = reviewer.get(f"{path}/edit")
    assert page.status_code == 403 and "<h1>Not allowed</h1>" in page.text
    # Posting anyway: refused with the service's reason, nothing changed.
    refused = reviewer.submit(path, f"{path}/edit", draft_form(title="Reviewer's title", version="1"))
    assert refused.status_code == 303 and refused.headers["location"] == path
    assert "needs the role institution_admin" in reviewer.follow(refused).text
    assert stored(database, app_id).title == "Chip M&A loans"
    # A filer of the same bank neither.
    assert browser(world.filer_a).get(f"{path}/edit").status_code == 403

    # Once submitted, the institution may not edit either: no link, and a 409 naming the state.
    world.command(app_id, "submit", world.bank_a)
    bank = browser(world.bank_a)
    assert "Edit application" not in bank.get(path).text
    page = bank.get(f"{path}/edit")
    assert page.status_code == 409 and "submitted" in page.text
    refused = bank.submit(path, f"{path}/edit", draft_form(title="Too late", version="2"))
    assert refused.status_code == 303
    assert 'class="flash flash-error"' in bank.follow(refused).text
    assert stored(database, app_id).title == "Chip M&A loans"


def test_an_application_the_bureau_asked_about_can_be_corrected_by_its_institution(
    world: World, browser: BrowserFor, database: Database
) -> None:
    app_id = world.create(title="Chip M&A loans")["id"]
    world.command(app_id, "submit", world.bank_a)
    world.command(app_id, "start-review", world.reviewer)
    world.command(app_id, "request-info", world.reviewer, {"message": "Lower the exposure, please."})
    path = f"/applications/{app_id}"
    bank = browser(world.bank_a)
    page = bank.get(path)
    assert f'<a href="{path}/edit">Edit application</a>' in page.text
    assert "Send response" in buttons(page.text)
    assert "Edit application" not in browser(world.reviewer).get(path).text

    form = bank.get(f"{path}/edit").text
    assert "The bureau has asked for more information" in form
    saved = bank.submit(f"{path}/edit", f"{path}/edit", edit_form(form, **{"quota.exposure_limit": "3000000000"}))
    assert "Application updated." in bank.follow(saved).text
    application = stored(database, app_id)
    assert application.state == "info_requested"
    assert application.requested_quotas == {"exposure_limit": "3000000000"}


def test_another_bank_cannot_open_or_post_the_edit_form(world: World, browser: BrowserFor, database: Database) -> None:
    app_id = world.create(title="Bank A secret plan")["id"]
    path = f"/applications/{app_id}/edit"
    other = browser(world.bank_b)
    page = other.get(path)
    assert page.status_code == 404 and "Bank A secret plan" not in page.text
    refused = other.submit("/applications", path, draft_form(title="Mine now", version="1"))
    assert "No such application." in other.follow(refused).text
    assert stored(database, app_id).title == "Bank A secret plan"


def test_an_edit_without_its_csrf_token_is_refused(world: World, browser: BrowserFor, database: Database) -> None:
    app_id = world.create(title="Chip M&A loans")["id"]
    b = browser(world.bank_a)
    response = b.client.post(
        f"/applications/{app_id}/edit", data=draft_form(title="Forged", version="1"), follow_redirects=False
    )
    assert response.status_code == 403
    assert stored(database, app_id).title == "Chip M&A loans"
