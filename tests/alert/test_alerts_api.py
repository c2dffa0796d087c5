"""GET /alerts: the bureau sees every alert with each recipient's state, attempts and last error."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import delete

from sandbox.alert.router import router as alert_router
from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.main import API_PREFIX, create_app
from sandbox.models import Alert, AlertDelivery
from tests.alert.conftest import SmtpServer, deliver, emit_committed
from tests.alert.samples import SAMPLES
from tests.application.test_applications_api import assert_problem
from tests.factories import add_institution
from tests.support import NOW, Login
from tests.world import World


@pytest.fixture
def app(settings: Settings, database: Database, clock: FixedClock) -> Any:
    """The application, with the alerts router mounted if sandbox.main does not mount it yet."""
    application: FastAPI = create_app(settings, database=database, clock=clock)
    paths = {route.path for route in application.routes if isinstance(route, APIRoute)}
    if f"{API_PREFIX}/alerts" not in paths:
        application.include_router(alert_router, prefix=API_PREFIX)
    return application


@pytest.fixture
def alerts(world: World, database: Database, smtp_server: SmtpServer) -> dict[str, Any]:
    """Three alerts: a trip about a pilot (one recipient refused for good), a decision about no
    pilot (sent), and an overdue filing not yet delivered."""
    pilot = world.to_pilot()
    pilot_id = uuid.UUID(pilot["id"])
    # Getting to a pilot raises alerts of its own (the decision); start these tests from none.
    with database.unit_of_work() as session:
        session.execute(delete(AlertDelivery))
        session.execute(delete(Alert))
    smtp_server.handler.refuse["gone@bank-a.example"] = "550 5.1.1 user unknown"
    (tripped,) = emit_committed(
        database, ["sup@bureau.example", "gone@bank-a.example"], pilot_id=pilot_id, at=NOW, kind="breaker.tripped"
    )
    (decided,) = emit_committed(
        database,
        ["bank@bank-a.example"],
        at=NOW,
        kind="application.decided",
        context={**SAMPLES["application.decided"], "pilot": None},
        subject="Application approved",
    )
    deliver(database, smtp_server)
    (overdue,) = emit_committed(
        database, ["bank@bank-a.example"], pilot_id=pilot_id, at=NOW, kind="filing.overdue",
        context=SAMPLES["filing.overdue"], subject="Filing overdue",
    )  # fmt: skip
    return {"pilot": pilot, "tripped": str(tripped), "decided": str(decided), "overdue": str(overdue)}


def get(world: World, **params: Any) -> Any:
    return world.client.get("/api/v1/alerts", params=params, headers=world.supervisor.headers)


def test_the_bureau_lists_alerts_newest_first_paginated_with_every_recipients_delivery(
    world: World, alerts: dict[str, Any]
) -> None:
    response = get(world)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 3
    assert [a["id"] for a in body["items"]] == [alerts["overdue"], alerts["decided"], alerts["tripped"]]

    tripped = body["items"][2]
    assert tripped["state"] == "failed"
    assert tripped["kind"] == "breaker.tripped" and tripped["severity"] == "critical"
    assert tripped["pilot_id"] == alerts["pilot"]["id"]
    assert tripped["pilot_reference"] == alerts["pilot"]["reference"]
    gone, sup = tripped["deliveries"]
    assert (gone["recipient"], gone["state"], gone["attempts"]) == ("gone@bank-a.example", "failed", 1)
    assert gone["last_error"] == "550 5.1.1 user unknown" and gone["next_attempt_at"] is None
    assert (sup["recipient"], sup["state"], sup["attempts"], sup["last_error"]) == (
        "sup@bureau.example",
        "sent",
        1,
        None,
    )
    assert sup["sent_at"] is not None and sup["message_id"].endswith("@sandbox.local>")

    page = get(world, limit=1, offset=1).json()
    assert (page["total"], page["offset"], page["limit"]) == (3, 1, 1)
    assert [a["id"] for a in page["items"]] == [alerts["decided"]]

    decided, overdue = body["items"][1], body["items"][0]
    assert (decided["state"], decided["pilot_id"], decided["pilot_reference"]) == ("sent", None, None)
    assert overdue["state"] == "pending"
    assert overdue["deliveries"][0]["next_attempt_at"] == "2026-11-28T02:00:00Z"


FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({"state": "failed"}, ["tripped"]),
    ({"state": ["sent", "pending"]}, ["overdue", "decided"]),
    ({"kind": "filing.overdue"}, ["overdue"]),
    ({"kind": ["breaker.tripped", "application.decided"]}, ["decided", "tripped"]),
    ({"pilot_id": "the pilot"}, ["overdue", "tripped"]),
    ({"pilot_id": "the pilot", "state": "pending"}, ["overdue"]),
    ({"pilot_id": str(uuid.UUID(int=7))}, []),
    ({"state": "retrying"}, []),
]


def test_alerts_filter_by_state_kind_and_pilot(world: World, alerts: dict[str, Any]) -> None:
    for params, expected in FILTERS:
        query = {k: alerts["pilot"]["id"] if v == "the pilot" else v for k, v in params.items()}
        body = get(world, **query).json()
        assert [a["id"] for a in body["items"]] == [alerts[name] for name in expected], params
        assert body["total"] == len(expected)


def test_only_the_bureau_may_list_alerts(client: TestClient, login: Callable[..., Login], database: Database) -> None:
    emit_committed(database)
    with database.unit_of_work() as session:
        add_institution(session, "BANK-A", NOW)
    for role, institution in (("institution_admin", "BANK-A"), ("filer", "BANK-A")):
        assert_problem(client.get("/api/v1/alerts", headers=login(role, institution).headers), 403, "forbidden")
    assert_problem(client.get("/api/v1/alerts"), 401, "unauthenticated")
    for role in ("reviewer", "approver", "supervisor", "admin"):
        response = client.get("/api/v1/alerts", headers=login(role).headers)
        assert response.status_code == 200 and response.json()["total"] == 1


@pytest.mark.parametrize(
    "params",
    [{"state": "lost"}, {"kind": "breaker.exploded"}, {"pilot_id": "not-a-uuid"}, {"limit": 0}, {"kind": "x" * 61}],
)
def test_bad_filters_are_refused_with_a_validation_problem(
    client: TestClient, login: Callable[..., Login], params: dict[str, Any]
) -> None:
    response = client.get("/api/v1/alerts", params=params, headers=login("supervisor").headers)
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"]
