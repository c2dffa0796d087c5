"""GET /api/v1/audit and /api/v1/audit/verify: bureau-only, filtered, paginated, and honest about
a broken chain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from sandbox.actor import SYSTEM
from sandbox.audit.log import record
from sandbox.db import Database
from sandbox.models import Institution
from tests.support import NOW, Login

AUDIT = "/api/v1/audit"


def add_institution(database: Database, code: str) -> None:
    with database.unit_of_work() as session:
        session.add(
            Institution(
                code=code,
                name=f"{code} Shanghai Branch",
                type="domestic_bank",
                uscc=f"{code:0>18}",
                region="Shanghai",
                rating=2,
                created_at=NOW,
                updated_at=NOW,
            )
        )


def record_changes(database: Database, changes: list[tuple[str, str]]) -> None:
    with database.unit_of_work() as session:
        for number, (object_type, object_id) in enumerate(changes):
            record(
                session,
                at=NOW,
                actor=SYSTEM,
                action=f"{object_type}.update",
                object_type=object_type,
                object_id=object_id,
                before={"n": number},
                after={"n": number + 1},
            )


@pytest.fixture
def reviewer(login: Callable[..., Login]) -> Login:
    return login("reviewer")


def test_list_filters_by_object_type_and_id(client: TestClient, database: Database, reviewer: Login) -> None:
    record_changes(database, [("pilot", "p-1"), ("pilot", "p-2"), ("institution", "p-1"), ("pilot", "p-1")])

    response = client.get(AUDIT, params={"object_type": "pilot", "object_id": "p-1"}, headers=reviewer.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    assert [(e["object_type"], e["object_id"], e["before"]) for e in body["items"]] == [
        ("pilot", "p-1", {"n": 0}),
        ("pilot", "p-1", {"n": 3}),
    ]
    first = body["items"][0]
    assert first["action"] == "pilot.update" and first["actor"] == "system"
    assert datetime.fromisoformat(first["at"]) == NOW
    assert len(first["hash"]) == 64 and len(first["prev_hash"]) == 64

    by_type = client.get(AUDIT, params={"object_type": "pilot"}, headers=reviewer.headers).json()
    assert by_type["total"] == 3 and {e["object_type"] for e in by_type["items"]} == {"pilot"}


def test_list_is_paginated_in_sequence_order(client: TestClient, database: Database, reviewer: Login) -> None:
    record_changes(database, [("pilot", f"p-{n}") for n in range(5)])

    pages = [
        client.get(
            AUDIT, params={"object_type": "pilot", "offset": offset, "limit": 2}, headers=reviewer.headers
        ).json()
        for offset in (0, 2, 4)
    ]
    assert [page["total"] for page in pages] == [5, 5, 5]
    assert [(page["offset"], page["limit"]) for page in pages] == [(0, 2), (2, 2), (4, 2)]
    ids = [entry["object_id"] for page in pages for entry in page["items"]]
    assert ids == [f"p-{n}" for n in range(5)]
    seqs = [entry["seq"] for page in pages for entry in page["items"]]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"offset": -1}, {"object_type": "x" * 41}])
def test_list_refuses_bad_paging_and_filters(client: TestClient, reviewer: Login, params: dict[str, str | int]) -> None:
    response = client.get(AUDIT, params=params, headers=reviewer.headers)
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/validation-error"
    assert response.json()["errors"][0]["loc"][0] == "query"


@pytest.mark.parametrize("path", [AUDIT, AUDIT + "/verify"])
def test_audit_is_bureau_only(client: TestClient, database: Database, login: Callable[..., Login], path: str) -> None:
    add_institution(database, "BANK-A")
    filer = login("filer", "BANK-A")
    response = client.get(path, headers=filer.headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/forbidden"

    anonymous = client.get(path)
    assert anonymous.status_code == 401


def test_verify_reports_an_intact_then_a_broken_chain(
    client: TestClient, database: Database, connection: Connection, reviewer: Login
) -> None:
    record_changes(database, [("pilot", "p-1"), ("pilot", "p-2"), ("pilot", "p-3")])
    intact = client.get(AUDIT + "/verify", headers=reviewer.headers)
    assert intact.status_code == 200
    # The reviewer's login wrote user.create and token.issue before our three entries.
    assert intact.json() == {"ok": True, "checked": 5, "first_bad_seq": None, "problem": None}

    connection.execute(text("DELETE FROM audit_entries WHERE seq = 4"))
    broken = client.get(AUDIT + "/verify", headers=reviewer.headers)
    assert broken.status_code == 200
    body = broken.json()
    assert (body["ok"], body["first_bad_seq"]) == (False, 4)
    assert "missing" in body["problem"]
