from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox.db import Database
from sandbox.models import Application, AuditEntry, Institution, Pilot, QuotaAllocation
from tests.factories import TECH_MA_SCOPE, tech_ma_application
from tests.world import World

API = "/api/v1/applications"


def count(database: Database, model: Any) -> int:
    with database.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["type"] == f"/problems/{slug}", body
    return body


def test_application_goes_from_draft_to_live_pilot_with_audit_trail(world: World, database: Database) -> None:
    app = world.create()
    assert app["state"] == "draft"
    assert app["allowed_commands"] == ["edit", "submit", "withdraw"]

    submitted = world.command(app["id"], "submit", world.bank_a).json()
    assert submitted["state"] == "submitted"
    assert submitted["eligibility"]["policy_version"] == "2025.1"
    assert all(c["met"] for c in submitted["eligibility"]["criteria"])

    assert world.command(app["id"], "start-review", world.reviewer).json()["state"] == "under_review"
    asked = world.command(app["id"], "request-info", world.reviewer, {"message": "Describe the LTV controls."})
    assert asked.json()["state"] == "info_requested"
    answered = world.command(app["id"], "respond", world.bank_a, {"message": "Hard stop at 80% in the loan system."})
    assert answered.json()["state"] == "under_review"
    recommended = world.command(
        app["id"], "recommend", world.reviewer, {"recommendation": "approve", "reason": "controls adequate"}
    )
    assert recommended.json()["state"] == "recommended"

    approved = world.command(
        app["id"],
        "approve",
        world.approver,
        {"granted_quotas": {"exposure_limit": "4000000000"}, "conditions": ["Quarterly on-site review"]},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    pilot = world.client.get(approved.headers["Location"], headers=world.bank_a.headers).json()
    assert pilot["reference"] == "SH-TECH-MA-2026-001"
    assert pilot["state"] == "approved"  # starts 2026-12-01, after today (2026-11-28)
    assert pilot["granted_quotas"] == {"exposure_limit": "4000000000"}
    assert pilot["granted_scope"] == TECH_MA_SCOPE
    assert pilot["conditions"] == ["Quarterly on-site review"]

    thread = world.client.get(f"{API}/{app['id']}/messages", headers=world.bank_a.headers).json()
    assert [m["kind"] for m in thread["items"]] == ["question", "answer"]

    audit = world.client.get(
        "/api/v1/audit", params={"object_type": "application", "object_id": app["id"]}, headers=world.admin.headers
    ).json()
    actions = [e["action"] for e in audit["items"]]
    assert actions == [
        "application.create",
        "application.submit",
        "application.start-review",
        "application.message.question",
        "application.request-info",
        "application.message.answer",
        "application.respond",
        "application.recommend",
        "application.approve",
    ]


@pytest.mark.parametrize("field", ["status", "state", "institution_id", "version", "granted_quotas"])
def test_create_refuses_smuggled_fields(world: World, database: Database, field: str) -> None:
    before = count(database, Application)
    response = world.client.post(API, json=tech_ma_application(**{field: "x"}), headers=world.bank_a.headers)
    body = assert_problem(response, 422, "validation-error")
    assert ["body", field] in [e["loc"] for e in body["errors"]]
    assert count(database, Application) == before


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"requested_quotas": {"exposure_limit": "-1"}}, ["body", "requested_quotas", "exposure_limit"]),
        ({"requested_quotas": {"exposure_limit": "0"}}, ["body", "requested_quotas", "exposure_limit"]),
        ({"requested_quotas": {"exposure_limit": "15000000001"}}, ["body", "requested_quotas", "exposure_limit"]),
        ({"requested_quotas": {"exposure_limit": "1", "free_money": "5"}}, ["body", "requested_quotas", "free_money"]),
        ({"requested_quotas": {}}, ["body", "requested_quotas", "exposure_limit"]),
        ({"requested_quotas": {"exposure_limit": "1,000"}}, ["body", "requested_quotas", "exposure_limit"]),
        ({"requested_quotas": {"exposure_limit": True}}, ["body", "requested_quotas", "exposure_limit"]),
        (
            {"requested_scope": {**TECH_MA_SCOPE, "currencies": ["CNY", "USD"]}},
            ["body", "requested_scope", "currencies"],
        ),
        ({"requested_scope": {**TECH_MA_SCOPE, "planets": ["Mars"]}}, ["body", "requested_scope", "planets"]),
        (
            {"requested_scope": {k: v for k, v in TECH_MA_SCOPE.items() if k != "regions"}},
            ["body", "requested_scope", "regions"],
        ),
        ({"start_on": "2027-01-01", "end_on": "2026-12-31"}, ["body", "end_on"]),
        ({"start_on": "2027-01-01", "end_on": "2029-01-01"}, ["body", "end_on"]),
        ({"program": "SH-NOPE-X"}, ["body", "program"]),
    ],
)
def test_create_refuses_requests_outside_the_program(
    world: World, database: Database, overrides: dict[str, Any], loc: list[str]
) -> None:
    before = count(database, Application)
    body = assert_problem(
        world.client.post(API, json=tech_ma_application(**overrides), headers=world.bank_a.headers),
        422,
        "validation-error",
    )
    assert loc in [e["loc"] for e in body["errors"]], body["errors"]
    assert count(database, Application) == before


def test_full_duration_is_allowed_to_the_last_day(world: World) -> None:
    app = world.create(start_on="2027-01-01", end_on="2028-12-31")
    assert app["end_on"] == "2028-12-31"


def test_ineligible_institution_is_refused_with_every_failed_criterion(world: World, database: Database) -> None:
    with database.unit_of_work() as session:
        bank_c = session.scalar(select(Institution).where(Institution.code == "BANK-C"))
        assert bank_c is not None
        bank_c.rating = 5  # a second failure beside the major penalty
    app = world.create(world.bank_c)
    entries_before = count(database, AuditEntry)
    body = assert_problem(world.command(app["id"], "submit", world.bank_c), 409, "ineligible")
    assert {c["criterion"] for c in body["failed_criteria"]} == {"no_major_penalty", "rating"}
    assert "2025-03-14" in body["detail"]
    again = world.client.get(f"{API}/{app['id']}", headers=world.bank_c.headers).json()
    assert again["state"] == "draft" and again["eligibility"] is None
    assert count(database, AuditEntry) == entries_before


def test_recommender_cannot_decide_four_eyes(world: World, database: Database) -> None:
    app = world.to_recommended(recommender=world.approver)
    assert (
        "approve"
        not in world.client.get(f"{API}/{app['id']}", headers=world.approver.headers).json()["allowed_commands"]
    )
    for command, body in (("approve", None), ("reject", {"reason": "no"})):
        problem = assert_problem(world.command(app["id"], command, world.approver, body), 403, "four-eyes")
        assert "another approver" in problem["detail"]
    assert world.client.get(f"{API}/{app['id']}", headers=world.approver.headers).json()["state"] == "recommended"
    assert count(database, Pilot) == 0
    assert world.command(app["id"], "approve", world.approver2).status_code == 200


def test_roles_are_enforced(world: World) -> None:
    app = world.create()
    assert_problem(world.command(app["id"], "submit", world.filer_a), 403, "forbidden")
    world.command(app["id"], "submit", world.bank_a)
    assert_problem(world.command(app["id"], "start-review", world.bank_a), 403, "forbidden")
    assert_problem(world.command(app["id"], "start-review", world.supervisor), 403, "forbidden")
    world.command(app["id"], "start-review", world.reviewer)
    world.command(app["id"], "recommend", world.reviewer, {"recommendation": "approve", "reason": "ok"})
    assert_problem(world.command(app["id"], "approve", world.reviewer), 403, "forbidden")
    assert_problem(world.command(app["id"], "approve", world.admin), 403, "forbidden")
    assert_problem(world.client.post(API, json=tech_ma_application(), headers=world.reviewer.headers), 403, "forbidden")


def test_illegal_transition_names_state_and_allowed_commands(world: World) -> None:
    app = world.create()
    body = assert_problem(world.command(app["id"], "start-review", world.reviewer), 409, "illegal-transition")
    assert body["current_state"] == "draft"
    assert body["allowed_commands"] == ["edit", "submit", "withdraw"]
    world.command(app["id"], "withdraw", world.bank_a, {"reason": "changed plans"})
    final = assert_problem(world.command(app["id"], "submit", world.bank_a), 409, "illegal-transition")
    assert final["current_state"] == "withdrawn" and final["allowed_commands"] == []


def test_stale_etag_is_refused_and_fresh_one_accepted(world: World) -> None:
    app = world.create()
    first = world.client.get(f"{API}/{app['id']}", headers=world.bank_a.headers)
    etag = first.headers["ETag"]
    edited = world.client.patch(
        f"{API}/{app['id']}", json={"title": "Renamed"}, headers={**world.bank_a.headers, "If-Match": etag}
    )
    assert edited.status_code == 200 and edited.json()["title"] == "Renamed"
    assert edited.headers["ETag"] != etag
    stale = world.command(app["id"], "submit", world.bank_a, headers={"If-Match": etag})
    assert_problem(stale, 412, "precondition-failed")
    assert world.client.get(f"{API}/{app['id']}", headers=world.bank_a.headers).json()["state"] == "draft"
    fresh = world.command(app["id"], "submit", world.bank_a, headers={"If-Match": edited.headers["ETag"]})
    assert fresh.status_code == 200


def test_edit_is_checked_against_the_program_and_refuses_unknown_fields(world: World) -> None:
    app = world.create()
    url = f"{API}/{app['id']}"
    assert_problem(
        world.client.patch(
            url, json={"requested_quotas": {"exposure_limit": "99000000000"}}, headers=world.bank_a.headers
        ),
        422,
        "validation-error",
    )
    assert_problem(
        world.client.patch(url, json={"status": "approved"}, headers=world.bank_a.headers), 422, "validation-error"
    )
    assert_problem(world.client.patch(url, json={"title": None}, headers=world.bank_a.headers), 422, "validation-error")
    assert world.client.get(url, headers=world.bank_a.headers).json()["requested_quotas"] == {
        "exposure_limit": "5000000000"
    }


def test_another_institutions_application_is_indistinguishable_from_a_missing_one(world: World) -> None:
    app = world.create()
    theirs = world.client.get(f"{API}/{app['id']}", headers=world.bank_b.headers)
    missing = world.client.get(f"{API}/{uuid.uuid4()}", headers=world.bank_b.headers)
    assert theirs.status_code == missing.status_code == 404
    strip = lambda b: {k: v for k, v in b.items() if k not in ("instance", "request_id")}  # noqa: E731
    assert strip(theirs.json()) == strip(missing.json())
    assert world.command(app["id"], "withdraw", world.bank_b, {"reason": "x"}).status_code == 404
    assert world.client.get(f"{API}/{app['id']}/messages", headers=world.bank_b.headers).status_code == 404
    assert world.client.get(API, headers=world.bank_b.headers).json()["total"] == 0
    assert world.client.get(API, headers=world.reviewer.headers).json()["total"] == 1


def test_granted_scope_and_quotas_can_narrow_but_never_widen(world: World, database: Database) -> None:
    app = world.to_recommended()
    wider = world.command(
        app["id"],
        "approve",
        world.approver,
        {"granted_quotas": {"exposure_limit": "6000000000"}, "granted_scope": {"regions": ["Shanghai", "Jiangsu"]}},
    )
    body = assert_problem(wider, 422, "validation-error")
    assert {tuple(e["loc"]) for e in body["errors"]} == {
        ("body", "granted_quotas", "exposure_limit"),
        ("body", "granted_scope", "regions"),
    }
    assert count(database, Pilot) == 0
    narrow = world.command(
        app["id"], "approve", world.approver, {"granted_scope": {"target_industries": ["integrated_circuits"]}}
    )
    assert narrow.status_code == 200
    pilot = world.client.get(narrow.headers["Location"], headers=world.approver.headers).json()
    assert pilot["granted_scope"]["target_industries"] == ["integrated_circuits"]
    assert pilot["granted_scope"]["regions"] == ["Shanghai"]


def test_approval_past_the_aggregate_cap_is_refused_and_writes_nothing(world: World, database: Database) -> None:
    # SH-TECH-MA: CNY 15bn per pilot, CNY 50bn for the program.
    for login in (world.bank_a, world.bank_b, world.bank_d):
        world.to_pilot(login, requested_quotas={"exposure_limit": "15000000000"})
    last = world.to_recommended(world.bank_a, requested_quotas={"exposure_limit": "6000000000"})
    pilots, allocations, entries = count(database, Pilot), count(database, QuotaAllocation), count(database, AuditEntry)
    body = assert_problem(world.command(last["id"], "approve", world.approver), 409, "quota-exceeded")
    assert body["quota"] == "exposure_limit" and body["available"] == "5000000000"
    assert (count(database, Pilot), count(database, QuotaAllocation), count(database, AuditEntry)) == (
        pilots,
        allocations,
        entries,
    )
    assert world.client.get(f"{API}/{last['id']}", headers=world.approver.headers).json()["state"] == "recommended"
    ok = world.command(last["id"], "approve", world.approver, {"granted_quotas": {"exposure_limit": "5000000000"}})
    assert ok.status_code == 200, ok.text


def test_approving_against_a_reject_recommendation_needs_a_reason(world: World) -> None:
    app = world.create()
    world.command(app["id"], "submit", world.bank_a)
    world.command(app["id"], "start-review", world.reviewer)
    world.command(app["id"], "recommend", world.reviewer, {"recommendation": "reject", "reason": "weak exit plan"})
    assert_problem(world.command(app["id"], "approve", world.approver), 422, "validation-error")
    assert (
        world.command(app["id"], "approve", world.approver, {"reason": "exit plan strengthened in annex"}).status_code
        == 200
    )


def test_submission_in_the_past_is_refused(world: World) -> None:
    app = world.create(start_on="2026-11-01", end_on="2027-10-31")
    body = assert_problem(world.command(app["id"], "submit", world.bank_a), 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "start_on"]


def test_thread_is_shared_and_closed_after_decision(world: World) -> None:
    app = world.create()
    note = world.client.post(
        f"{API}/{app['id']}/messages", json={"message": "Pre-filing question"}, headers=world.bank_a.headers
    )
    assert note.status_code == 201
    assert (
        world.client.post(
            f"{API}/{app['id']}/messages", json={"message": "x"}, headers=world.filer_a.headers
        ).status_code
        == 403
    )
    world.command(app["id"], "withdraw", world.bank_a, {"reason": "not now"})
    assert_problem(
        world.client.post(f"{API}/{app['id']}/messages", json={"message": "late"}, headers=world.reviewer.headers),
        409,
        "conflict",
    )
