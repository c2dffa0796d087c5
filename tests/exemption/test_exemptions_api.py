"""Due-diligence exemptions through the API: assessed on a reported loss, on a loss rule's breach
and on a claim; decided by a supervisor; a decision against the finding confirmed by a second
bureau user (four eyes)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from sandbox.clock import FixedClock
from sandbox.db import Database
from sandbox.exemption.service import assess_after_evaluation
from sandbox.models import AuditEntry, Evaluation, Pilot
from tests.application.test_applications_api import assert_problem
from tests.risk.test_risk_events_api import (
    Live,
    app,  # noqa: F401  # the app with these routes
    at,
    go_live,
)
from tests.support import Login
from tests.world import World

LONG_REASON = (
    "The late February filing was caused by the bureau's own portal outage on 12-13 March, "
    "documented in incident ticket 2026-031; the bank is not at fault."
)


@pytest.fixture
def live(world: World, clock: FixedClock, database: Database) -> Live:
    return go_live(world, clock, database, exemption=True)


def exemption(live: Live, exemption_id: str, login: Login | None = None) -> Any:
    return live.world.client.get(f"/api/v1/exemptions/{exemption_id}", headers=(login or live.world.supervisor).headers)


def command(
    live: Live, exemption_id: str, verb: str, login: Login, body: dict[str, Any], etag: str | None = None
) -> Any:
    headers = {**login.headers, **({"If-Match": etag} if etag else {})}
    return live.world.client.post(f"/api/v1/exemptions/{exemption_id}/{verb}", json=body, headers=headers)


def criteria(item: dict[str, Any]) -> dict[str, bool]:
    return {c["criterion"]: c["met"] for c in item["assessment"]["criteria"]}


def audit_actions(live: Live, exemption_id: str) -> list[str]:
    with live.database.sessions() as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_type == "exemption", AuditEntry.object_id == exemption_id)
            .order_by(AuditEntry.seq)
        ).all()
    return [e.action for e in entries]


def reported_loss(live: Live, **body: Any) -> str:
    response = live.report(**body)
    assert response.status_code == 201, response.text
    (exemption_id,) = response.json()["exemption_ids"]
    return str(exemption_id)


def test_a_reported_loss_is_assessed_at_once_and_a_supervisor_grants_as_found(live: Live) -> None:
    world = live.world
    live.file("2026-02", on="2026-03-05")
    live.clock.at = at("2026-03-20")
    exemption_id = reported_loss(live)  # occurred 2026-03-18, reported 2026-03-20

    read = exemption(live, exemption_id)
    assert read.status_code == 200
    item = read.json()
    assert item["trigger"] == "risk_event" and item["state"] == "assessed" and item["finding"] == "grant"
    assert all(criteria(item).values()) and len(criteria(item)) == 7, item["assessment"]
    assert item["assessment"]["policy_version"] == item["policy_version"] == "2025.9-risk"
    assert item["assessment"]["event"]["on"] == "2026-03-18"
    npl = next(c for c in item["assessment"]["criteria"] if c["criterion"] == "npl_tolerance")
    assert npl["evidence"]["pilot_npl"] == "0.01" and npl["evidence"]["institution_npl"] == "0.013"
    assert item["allowed_commands"] == ["decide"]
    etag = read.headers["ETag"]

    own = exemption(live, exemption_id, world.bank_a)
    assert own.status_code == 200 and own.json()["allowed_commands"] == []
    assert_problem(exemption(live, exemption_id, world.bank_b), 404, "not-found")

    grant = {"decision": "grant", "reason": "criteria met"}
    assert_problem(command(live, exemption_id, "decide", world.approver, grant), 403, "forbidden")
    assert_problem(command(live, exemption_id, "decide", world.bank_a, grant), 403, "forbidden")
    assert_problem(
        command(live, exemption_id, "decide", world.supervisor, grant, etag='"v99"'), 412, "precondition-failed"
    )
    assert_problem(
        command(live, exemption_id, "decide", world.supervisor, {**grant, "state": "granted"}), 422, "validation-error"
    )
    decided = command(live, exemption_id, "decide", world.supervisor, grant, etag=etag)
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "granted" and decided.json()["decided_by_id"] == str(world.supervisor.user.id)
    assert decided.headers["ETag"] != etag

    again = assert_problem(command(live, exemption_id, "decide", world.supervisor, grant), 409, "illegal-transition")
    assert again["current_state"] == "granted" and again["allowed_commands"] == []
    assert_problem(command(live, exemption_id, "confirm", world.approver, {"reason": "ok"}), 409, "illegal-transition")
    assert audit_actions(live, exemption_id) == ["exemption.assess", "exemption.decide"]


def test_a_decision_against_the_finding_needs_a_long_reason_and_a_second_bureau_user(live: Live, login: Any) -> None:
    world = live.world
    live.file("2026-02", on="2026-03-19")  # due 2026-03-13: six days late
    live.clock.at = at("2026-03-20")
    exemption_id = reported_loss(live, occurred_on="2026-03-16")
    item = exemption(live, exemption_id).json()
    assert item["finding"] == "deny"
    assert [name for name, met in criteria(item).items() if not met] == ["filings_on_time"]
    on_time = next(c for c in item["assessment"]["criteria"] if c["criterion"] == "filings_on_time")
    assert on_time["evidence"]["late"] == [{"period": "2026-02", "due_on": "2026-03-13", "days_late": 6}]

    short = assert_problem(
        command(live, exemption_id, "decide", world.supervisor, {"decision": "grant", "reason": "portal outage"}),
        422,
        "validation-error",
    )
    assert "80 characters" in short["detail"] and short["errors"][0]["loc"] == ["body", "reason"]
    assert exemption(live, exemption_id).json()["state"] == "assessed"

    referred = command(live, exemption_id, "decide", world.supervisor, {"decision": "grant", "reason": LONG_REASON})
    assert referred.status_code == 200, referred.text
    assert referred.json()["state"] == "awaiting_confirmation" and referred.json()["decision"] == "grant"
    assert referred.json()["allowed_commands"] == []  # not for the decider
    assert exemption(live, exemption_id, world.approver).json()["allowed_commands"] == ["confirm"]

    confirm = {"reason": "outage confirmed in the bureau's own incident log"}
    own = assert_problem(command(live, exemption_id, "confirm", world.supervisor, confirm), 403, "four-eyes")
    assert "another" in own["detail"]
    assert_problem(command(live, exemption_id, "confirm", world.reviewer, confirm), 403, "forbidden")
    assert_problem(command(live, exemption_id, "confirm", world.bank_a, confirm), 403, "forbidden")
    assert_problem(command(live, exemption_id, "confirm", world.bank_b, confirm), 404, "not-found")
    assert_problem(
        command(live, exemption_id, "decide", world.supervisor, {"decision": "deny", "reason": "changed my mind"}),
        409,
        "illegal-transition",
    )

    second_supervisor = login("supervisor")
    stale = command(live, exemption_id, "confirm", second_supervisor, confirm, etag='"v1"')
    assert_problem(stale, 412, "precondition-failed")
    confirmed = command(live, exemption_id, "confirm", second_supervisor, confirm)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["state"] == "granted" and body["confirmed_by_id"] == str(second_supervisor.user.id)
    assert body["decision_reason"] == LONG_REASON and body["confirmation_reason"] == confirm["reason"]
    assert_problem(command(live, exemption_id, "confirm", world.approver, confirm), 409, "illegal-transition")
    assert audit_actions(live, exemption_id) == ["exemption.assess", "exemption.decide", "exemption.confirm"]


def run_hook(live: Live) -> list[uuid.UUID]:
    """What the evaluation service calls after each evaluation, for the latest one."""
    with live.database.unit_of_work() as session:
        pilot = session.get(Pilot, uuid.UUID(live.pilot["id"]))
        assert pilot is not None
        evaluation = session.scalars(
            select(Evaluation).where(Evaluation.pilot_id == pilot.id).order_by(Evaluation.id.desc())
        ).first()
        assert evaluation is not None
        return [e.id for e in assess_after_evaluation(session, pilot, evaluation, at=live.clock.now())]


def rule_exemptions(live: Live) -> list[dict[str, Any]]:
    listed = live.world.client.get(
        "/api/v1/exemptions", params={"pilot_id": live.pilot["id"]}, headers=live.world.supervisor.headers
    ).json()
    return [e for e in listed["items"] if e["trigger"] == "rule"]


def test_a_loss_rule_breach_is_assessed_once_per_rule_and_period(live: Live) -> None:
    live.clock.at = at("2026-02-22")
    loss = live.report(occurred_on="2026-02-20", description="write-off on one acquisition loan")
    assert loss.status_code == 201
    filed = live.file("2026-02", on="2026-03-05", npl_ratio="0.05")
    assert next(o for o in filed["evaluation"]["outcomes"] if o["rule_id"] == "npl-trip")["status"] == "breach"
    run_hook(live)  # a no-op if the evaluation service already called it

    (item,) = rule_exemptions(live)
    assert item["rule_id"] == "npl-trip" and item["evaluation_id"] == filed["evaluation"]["id"]
    assert item["risk_event_id"] is None and item["assessment"]["event"] == {
        "on": "2026-02-28",
        "period": "2026-02",
        "rule_id": "npl-trip",
    }
    assert item["finding"] == "deny"
    assert [name for name, met in criteria(item).items() if not met] == ["npl_tolerance"]
    reports = next(c for c in item["assessment"]["criteria"] if c["criterion"] == "reported_within_days")
    assert [r["risk_event_id"] for r in reports["evidence"]["reports"]] == [loss.json()["id"]]

    # The breach tripped the breaker and suspended the pilot; an amendment breaches again but the
    # rule and period are already assessed.
    live.file("2026-02", on="2026-03-06", amends=True, npl_ratio="0.06")
    assert run_hook(live) == []
    assert len(rule_exemptions(live)) == 1


def test_an_institution_admin_claims_an_exemption_for_a_risk_event(live: Live) -> None:
    world = live.world
    live.file("2026-02", on="2026-03-05")
    live.clock.at = at("2026-03-20")
    incident = live.report(kind="complaint_surge", amount=None, occurred_on="2026-03-17", description="complaints")
    assert incident.status_code == 201 and incident.json()["exemption_ids"] == []  # not a loss
    url = f"{live.url}/exemptions"
    claim = {"risk_event_id": incident.json()["id"], "statement": "all complaints handled within the service standard"}

    assert_problem(world.client.post(url, json=claim, headers=world.filer_a.headers), 403, "forbidden")
    assert_problem(world.client.post(url, json=claim, headers=world.supervisor.headers), 403, "forbidden")
    assert_problem(world.client.post(url, json=claim, headers=world.bank_b.headers), 404, "not-found")
    unknown = world.client.post(url, json={**claim, "risk_event_id": str(uuid.uuid4())}, headers=world.bank_a.headers)
    assert assert_problem(unknown, 422, "validation-error")["errors"][0]["loc"] == ["body", "risk_event_id"]
    extra = world.client.post(url, json={**claim, "finding": "grant"}, headers=world.bank_a.headers)
    assert_problem(extra, 422, "validation-error")
    assert world.client.get("/api/v1/exemptions", headers=world.supervisor.headers).json()["total"] == 0

    made = world.client.post(url, json=claim, headers=world.bank_a.headers)
    assert made.status_code == 201, made.text
    item = made.json()
    assert made.headers["Location"] == f"/api/v1/exemptions/{item['id']}"
    assert item["trigger"] == "claim" and item["statement"] == claim["statement"] and item["finding"] == "grant"
    assert item["claimed_by_id"] == str(world.bank_a.user.id) and item["risk_event_id"] == claim["risk_event_id"]
    assert_problem(world.client.post(url, json=claim, headers=world.bank_a.headers), 409, "conflict")
    assert_problem(command(live, item["id"], "confirm", world.approver, {"reason": "ok"}), 409, "illegal-transition")

    def listed(login: Login, **params: Any) -> list[str]:
        response = world.client.get("/api/v1/exemptions", params=params, headers=login.headers)
        assert response.status_code == 200
        return [e["id"] for e in response.json()["items"]]

    assert listed(world.bank_a) == [item["id"]]
    assert listed(world.bank_b) == []
    assert listed(world.supervisor, state="assessed") == [item["id"]]
    assert listed(world.supervisor, state=["granted", "denied"]) == []
    assert audit_actions(live, item["id"]) == ["exemption.claim"]
