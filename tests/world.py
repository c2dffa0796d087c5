from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from sandbox.db import Database
from tests.factories import add_institution, load_policies, tech_ma_application
from tests.support import NOW, Login


@dataclass
class World:
    client: TestClient
    bank_a: Login
    bank_b: Login
    bank_c: Login
    bank_d: Login
    filer_a: Login
    reviewer: Login
    approver: Login
    approver2: Login
    supervisor: Login
    admin: Login

    def create(self, login: Login | None = None, **overrides: Any) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/applications", json=tech_ma_application(**overrides), headers=(login or self.bank_a).headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def command(self, app_id: str, command: str, login: Login, body: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(
            f"/api/v1/applications/{app_id}/{command}", json=body, headers={**login.headers, **kw.get("headers", {})}
        )

    def to_recommended(
        self, login: Login | None = None, recommender: Login | None = None, **overrides: Any
    ) -> dict[str, Any]:
        app = self.create(login, **overrides)
        for command, who, body in (
            ("submit", login or self.bank_a, None),
            ("start-review", self.reviewer, None),
            ("recommend", recommender or self.reviewer, {"recommendation": "approve", "reason": "sound risk controls"}),
        ):
            response = self.command(app["id"], command, who, body)
            assert response.status_code == 200, response.text
        return dict(response.json())

    def to_pilot(
        self, login: Login | None = None, approve_body: dict[str, Any] | None = None, **overrides: Any
    ) -> dict[str, Any]:
        app = self.to_recommended(login, **overrides)
        response = self.command(app["id"], "approve", self.approver, approve_body)
        assert response.status_code == 200, response.text
        pilot = self.client.get(response.headers["Location"], headers=self.approver.headers)
        assert pilot.status_code == 200
        return dict(pilot.json())


def build_world(client: TestClient, database: Database, login: Callable[..., Login]) -> World:
    with database.unit_of_work() as session:
        load_policies(session, NOW)
        for code in ("BANK-A", "BANK-B", "BANK-C", "BANK-D"):
            add_institution(session, code, NOW)
    return World(
        client=client,
        bank_a=login("institution_admin", "BANK-A"),
        bank_b=login("institution_admin", "BANK-B"),
        bank_c=login("institution_admin", "BANK-C"),
        bank_d=login("institution_admin", "BANK-D"),
        filer_a=login("filer", "BANK-A"),
        reviewer=login("reviewer"),
        approver=login("approver"),
        approver2=login("approver"),
        supervisor=login("supervisor"),
        admin=login("admin"),
    )
