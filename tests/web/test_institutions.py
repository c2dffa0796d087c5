"""Institution pages: bureau users see every institution, an institution's users only their own
(another's page is a 404); the page shows the facts eligibility reads, contacts, pilots and
applications; a bureau admin registers and edits institutions, an institution admin only its
contacts; a refused form comes back with its values and errors; a stale form is refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from sandbox.db import Database
from sandbox.institution.identifiers import make_lei, make_uscc
from sandbox.models import AuditEntry, Institution
from tests.support import Login
from tests.web.conftest import Browser
from tests.world import World

Browse = Callable[[Login | None], Browser]
NEW_USCC = make_uscc("91", "310000", "77001234")
NEW_LEI = make_lei("5493001KJTIIGC8Y1R")


def buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit">([^<]+)</button>', html)


def institution(database: Database, code: str) -> Institution:
    with database.sessions() as session:
        found = session.scalar(select(Institution).where(Institution.code == code))
        assert found is not None
        session.expunge(found)
        return found


def audit_count(database: Database) -> int:
    with database.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def new_form(**fields: str) -> dict[str, str]:
    return {
        "code": "SH-RE-1",
        "name": "中国再保险（上海）有限公司",
        "type": "reinsurer",
        "uscc": NEW_USCC,
        "lei": NEW_LEI,
        "region": "Shanghai",
        "rating": "2",
        "capital_adequacy_ratio": "",
        "npl_ratio": "",
        "solvency_comprehensive": "2.10",
        "solvency_core": "1.5",
        "last_major_penalty_on": "2024-06-30",
        "contact_emails": "Risk@SH-Re.example\nops@sh-re.example\n",
        **fields,
    }


def test_bureau_users_see_every_institution_and_banks_their_own(world: World, browser: Browse) -> None:
    page = browser(world.reviewer).get("/institutions")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Institutions</h1>" in html and "Showing 1–4 of 4 institutions" in html
    for code in ("BANK-A", "BANK-B", "BANK-C", "BANK-D"):
        assert f">{code}</a></th>" in html
    assert "Bank A Shanghai Branch" in html and "domestic bank" in html
    assert "16.2%" in html and "2025-03-14" in html  # BANK-A's capital ratio, BANK-C's penalty
    assert "New institution" not in html  # only the admin registers

    own = browser(world.bank_b).get("/institutions").text
    assert ">BANK-B</a></th>" in own and "BANK-A" not in own and "Showing 1–1 of 1 institution" in own


def test_the_institution_page_shows_eligibility_facts_contacts_pilots_and_applications(
    world: World, browser: Browse, database: Database
) -> None:
    pilot = world.to_pilot()
    draft = world.create(title="A second idea")
    bank_a = institution(database, "BANK-A")
    page = browser(world.supervisor).get(f"/institutions/{bank_a.id}")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Bank A Shanghai Branch" in html
    for text in (
        "Facts the eligibility rules read",
        "Regulatory rating",
        "0.162 (16.2%)",
        "0.013 (1.3%)",
        "Comprehensive solvency ratio",
        "Last major penalty",
        "risk@bank-a.example",
        bank_a.uscc,
    ):
        assert text in html, text
    assert f'<a href="/pilots/{pilot["id"]}">{pilot["reference"]}</a>' in html
    assert f'<a href="/applications/{draft["id"]}">A second idea</a>' in html
    assert f'<a href="/audit?object_type=institution&amp;object_id={bank_a.id}">Audit trail</a>' in html
    assert "Edit institution" not in html  # a supervisor changes nothing here

    bank_c = institution(database, "BANK-C")
    assert "2025-03-14" in browser(world.reviewer).get(f"/institutions/{bank_c.id}").text


def test_another_bank_gets_404_and_the_bureau_goes_to_the_list(
    world: World, browser: Browse, database: Database
) -> None:
    bank_a = institution(database, "BANK-A")
    bank_b = institution(database, "BANK-B")
    b = browser(world.bank_b)
    for path in (f"/institutions/{bank_a.id}", f"/institutions/{bank_a.id}/edit"):
        page = b.get(path)
        assert page.status_code == 404, path
        assert "Bank A Shanghai Branch" not in page.text
    assert b.get("/institutions/00000000-0000-0000-0000-000000000000").status_code == 404
    assert b.get("/institutions/not-an-id").status_code == 404

    mine = b.get("/institutions/mine", follow_redirects=False)
    assert mine.status_code == 303 and mine.headers["location"] == f"/institutions/{bank_b.id}"
    own = b.follow(mine).text
    assert "<h1>Bank B Shanghai Branch" in own
    assert "Audit trail" not in own  # the audit trail is the bureau's
    bureau = browser(world.reviewer).get("/institutions/mine", follow_redirects=False)
    assert bureau.status_code == 303 and bureau.headers["location"] == "/institutions"


def test_the_admin_registers_an_institution_with_a_chinese_name(
    world: World, browser: Browse, database: Database
) -> None:
    admin = browser(world.admin)
    listing = admin.get("/institutions").text
    assert '<a href="/institutions/new">New institution</a>' in listing
    form = admin.get("/institutions/new").text
    for label in (
        "Code",
        "Name",
        "Type",
        "Unified social credit code",
        "LEI",
        "Regulatory rating",
        "Capital-adequacy ratio",
        "Contact emails",
    ):
        assert f">{label}</label>" in form, label
    assert buttons(form)[-1] == "Create institution"

    response = admin.submit("/institutions/new", "/institutions", new_form())
    assert response.status_code == 303
    page = admin.follow(response).text
    assert "Institution SH-RE-1 registered." in page
    assert "<h1>中国再保险（上海）有限公司" in page
    assert "2.1 (210%)" in page and "1.5 (150%)" in page and "2024-06-30" in page
    assert "risk@sh-re.example" in page and "ops@sh-re.example" in page
    assert "中国再保险（上海）有限公司" in admin.get("/institutions").text
    created = institution(database, "SH-RE-1")
    assert created.lei == NEW_LEI and created.rating == 2 and created.type == "reinsurer"


def test_a_refused_registration_keeps_the_values_and_names_the_fields(
    world: World, browser: Browse, database: Database
) -> None:
    admin = browser(world.admin)
    taken = admin.submit("/institutions/new", "/institutions", new_form(code="BANK-A"))
    assert taken.status_code == 422
    assert "The institution was not registered." in taken.text
    assert "Code: institution BANK-A already has code BANK-A." in taken.text
    assert 'value="中国再保险（上海）有限公司"' in taken.text and "ops@sh-re.example" in taken.text

    bad = admin.submit(
        "/institutions/new",
        "/institutions",
        new_form(uscc="91310000770012345X", solvency_core="lots", name="", last_major_penalty_on="2030-01-01"),
    )
    assert bad.status_code == 422
    assert "Name is required." in bad.text
    assert "Unified social credit code:" in bad.text and "Core solvency ratio:" in bad.text
    assert 'value="lots"' in bad.text and 'aria-invalid="true"' in bad.text

    future = admin.submit("/institutions/new", "/institutions", new_form(last_major_penalty_on="2030-01-01"))
    assert future.status_code == 422 and "Last major penalty on: 2030-01-01 is after today" in future.text
    with database.sessions() as session:
        assert session.scalar(select(Institution).where(Institution.code == "SH-RE-1")) is None


def test_only_the_admin_may_register(world: World, browser: Browse, database: Database) -> None:
    before = audit_count(database)
    for login in (world.reviewer, world.supervisor, world.bank_a, world.filer_a):
        b = browser(login)
        page = b.get("/institutions/new")
        assert page.status_code == 403 and "Create institution" not in page.text
        posted = b.submit("/institutions", "/institutions", new_form())
        assert posted.status_code == 303 and "needs the role admin" in b.follow(posted).text
    assert audit_count(database) == before


def test_the_admin_edits_every_field(world: World, browser: Browse, database: Database) -> None:
    bank_a = institution(database, "BANK-A")
    admin = browser(world.admin)
    detail = admin.get(f"/institutions/{bank_a.id}").text
    assert f'<a href="/institutions/{bank_a.id}/edit">Edit institution</a>' in detail
    edit_path = f"/institutions/{bank_a.id}/edit"
    form = admin.get(edit_path).text
    assert 'value="Bank A Shanghai Branch"' in form and 'value="0.162"' in form
    assert f'name="version" value="{bank_a.version}"' in form and buttons(form)[-1] == "Save changes"
    assert ">Status</label>" in form and ">Code</label>" not in form

    values = {
        "name": "Bank A 上海分行",
        "type": "domestic_bank",
        "uscc": bank_a.uscc,
        "lei": "",
        "region": "Shanghai",
        "rating": "3",
        "capital_adequacy_ratio": "0.1500",
        "npl_ratio": "",
        "solvency_comprehensive": "",
        "solvency_core": "",
        "last_major_penalty_on": "2026-01-15",
        "status": "active",
        "contact_emails": "risk@bank-a.example",
        "version": str(bank_a.version),
    }
    response = admin.submit(edit_path, edit_path, values)
    assert response.status_code == 303
    page = admin.follow(response).text
    assert "Institution BANK-A saved." in page and "<h1>Bank A 上海分行" in page
    assert "0.15 (15%)" in page and "2026-01-15" in page
    changed = institution(database, "BANK-A")
    assert changed.rating == 3 and changed.npl_ratio is None and changed.version == bank_a.version + 1

    trail = admin.get(f"/audit?object_type=institution&object_id={bank_a.id}")
    assert trail.status_code == 200 and "institution.update" in trail.text

    stale = admin.submit(edit_path, edit_path, {**values, "rating": "4"})
    assert stale.status_code == 303 and stale.headers["location"] == edit_path
    assert "has changed since you read it" in admin.follow(stale).text
    assert institution(database, "BANK-A").rating == 3

    blank = admin.submit(edit_path, edit_path, {**values, "name": " ", "version": str(changed.version)})
    assert blank.status_code == 422 and "Name is required." in blank.text
    assert f'name="version" value="{changed.version}"' in blank.text


def test_an_institution_admin_edits_only_its_contacts(world: World, browser: Browse, database: Database) -> None:
    bank_a = institution(database, "BANK-A")
    edit_path = f"/institutions/{bank_a.id}/edit"
    bank = browser(world.bank_a)
    detail = bank.get(f"/institutions/{bank_a.id}").text
    assert f'<a href="{edit_path}">Edit contact emails</a>' in detail
    form = bank.get(edit_path).text
    assert ">Contact emails</label>" in form
    assert ">Regulatory rating</label>" not in form and ">Name</label>" not in form and 'name="rating"' not in form

    saved = bank.submit(edit_path, edit_path, {"contact_emails": "alerts@bank-a.example\nrisk@bank-a.example"})
    assert saved.status_code == 303
    assert "alerts@bank-a.example" in bank.follow(saved).text
    after = institution(database, "BANK-A")
    assert after.contact_emails == ["alerts@bank-a.example", "risk@bank-a.example"]

    refused = bank.submit(edit_path, edit_path, {"contact_emails": "risk@bank-a.example", "rating": "1"})
    assert refused.status_code == 303 and refused.headers["location"] == edit_path
    assert "may change only contact_emails" in bank.follow(refused).text
    unchanged = institution(database, "BANK-A")
    assert unchanged.rating == 2 and unchanged.contact_emails == after.contact_emails

    bad = bank.submit(edit_path, edit_path, {"contact_emails": "one@bank-a.example, two@bank-a.example"})
    assert bad.status_code == 422 and "Contact emails" in bad.text and "one address per item" in bad.text

    filer = browser(world.filer_a)
    assert "Edit contact emails" not in filer.get(f"/institutions/{bank_a.id}").text
    assert filer.get(edit_path).status_code == 403
    supervisor = browser(world.supervisor)
    posted = supervisor.submit(f"/institutions/{bank_a.id}", edit_path, {"rating": "6", "contact_emails": "x"})
    assert posted.status_code == 303 and "needs the role admin" in supervisor.follow(posted).text
    assert institution(database, "BANK-A").rating == 2


def test_a_post_without_the_csrf_token_is_refused(world: World, browser: Browse, database: Database) -> None:
    bank_a = institution(database, "BANK-A")
    admin = browser(world.admin)
    admin.get("/institutions")
    before = audit_count(database)
    for action, data in (
        ("/institutions", new_form()),
        (f"/institutions/{bank_a.id}/edit", {"rating": "5"}),
    ):
        response: Any = admin.client.post(action, data=data, follow_redirects=False)
        assert response.status_code == 403 and "This form has expired" in response.text
    assert audit_count(database) == before and institution(database, "BANK-A").rating == 2
