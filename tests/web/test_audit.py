"""The audit trail pages: an object's entries with their before/after fields, for bureau users only;
paging to older entries; the chain check; bad parameters named."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.support import Login
from tests.web.conftest import Browser
from tests.world import World

Browse = Callable[[Login | None], Browser]


def actions(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><code>([a-z_.+-]+)</code></th>', html)


def test_an_applications_trail_shows_each_command_with_its_changes(world: World, browser: Browse) -> None:
    application = world.to_recommended()
    url = f"/audit?object_type=application&object_id={application['id']}"
    page = browser(world.reviewer).get(url)
    assert page.status_code == 200
    html = page.text
    assert f"<h1>Audit trail of application {application['id']}</h1>" in html
    # Newest first.
    assert actions(html) == [
        "application.recommend",
        "application.start-review",
        "application.submit",
        "application.create",
    ]
    assert "4 entries for this object" in html
    # The submit entry's state change as a before/after row.
    assert re.search(
        r'<th scope="row">state</th><td class="value">draft</td>\s*<td class="value"><strong>submitted</strong>', html
    )
    assert world.bank_a.user.email in html and world.reviewer.user.email in html
    assert re.search(r'<code class="hash" title="[0-9a-f]{64}">[0-9a-f]{12}</code>', html)
    assert f'<a href="/applications/{application["id"]}">Open the application</a>' in html
    # The id may be typed in any case.
    upper = browser(world.reviewer).get(f"/audit?object_type=application&object_id={application['id'].upper()}")
    assert actions(upper.text)[-1] == "application.create"


def test_institution_users_may_not_read_the_audit_trail(world: World, browser: Browse) -> None:
    application = world.create()
    url = f"/audit?object_type=application&object_id={application['id']}"
    for login in (world.bank_a, world.filer_a):
        page = browser(login).get(url)
        assert page.status_code == 403 and "Only bureau users may read the audit trail." in page.text
        assert browser(login).get("/audit").status_code == 403
    bank = browser(world.bank_a)
    refused = bank.client.post("/audit/verify", data={"csrf_token": bank.csrf("/breakers")}, follow_redirects=False)
    assert refused.status_code == 403


def test_the_latest_entries_page_back_to_older_ones(world: World, browser: Browse) -> None:
    for _ in range(5):
        world.to_recommended()  # four entries each, after the world's own
    auditor = browser(world.supervisor)
    page = auditor.get("/audit")
    assert page.status_code == 200 and "<h1>Audit trail</h1>" in page.text
    assert '<label for="audit-object-type">Object type</label>' in page.text
    assert '<label for="audit-object-id">Object id</label>' in page.text
    first = [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", page.text)]
    assert len(first) == 50 and first == sorted(first, reverse=True)
    older = re.search(r'<a href="([^"]+)" rel="next">Older entries</a>', page.text)
    assert older, "no link to older entries"
    second = auditor.get(older.group(1).replace("&amp;", "&"))
    seqs = [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", second.text)]
    assert seqs and max(seqs) == min(first) - 1
    assert "Newest entries" in second.text


def test_verify_chain_reports_the_entries_checked(world: World, browser: Browse) -> None:
    world.to_recommended()
    auditor = browser(world.supervisor)
    page = auditor.get("/audit")
    assert "Verify chain" in page.text
    done = auditor.follow(auditor.submit("/audit", "/audit/verify"))
    match = re.search(r"Audit chain verified: (\d+) entries checked, every link intact.", done.text)
    assert match and int(match.group(1)) > 4


def test_bad_parameters_are_named(world: World, browser: Browse) -> None:
    auditor = browser(world.reviewer)
    unknown = auditor.get("/audit?object_type=spaceship&object_id=")
    assert unknown.status_code == 422 and "Unknown object type &#39;spaceship&#39;" in unknown.text
    not_uuid = auditor.get("/audit?object_type=pilot&object_id=XBSL-2026-003")
    assert not_uuid.status_code == 422 and "Object id &#39;XBSL-2026-003&#39; is not a UUID" in not_uuid.text
    no_type = auditor.get(f"/audit?object_id={world.reviewer.user.id}")
    assert no_type.status_code == 422 and "Choose the object type" in no_type.text


def test_verify_without_its_csrf_token_is_refused(world: World, browser: Browse) -> None:
    response = browser(world.supervisor).client.post("/audit/verify", data={}, follow_redirects=False)
    assert response.status_code == 403
