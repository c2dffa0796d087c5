"""Risk events through the API: who reports and reads them, what is refused (nothing written),
and the assessment a reported loss triggers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from sandbox.actor import SYSTEM
from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.exemption.router import router as exemption_router
from sandbox.main import API_PREFIX, create_app
from sandbox.models import AuditEntry, RiskEvent
from sandbox.program.calendars import load_calendars
from sandbox.program.service import load_policies
from sandbox.risk.router import router as risk_router
from sandbox.rules.policy_file import parse_policy
from sandbox.scan import run_scan
from tests.application.test_applications_api import assert_problem
from tests.support import ROOT
from tests.world import World

RULES = """
rules:
  - id: npl-trip
    when: npl_ratio >= 0.03
    action: trip
    severity: high
    message: NPL ratio {npl_ratio} at or above the 3% trip level
  - id: quota-warn
    when: exposure_outstanding / quota.exposure_limit >= 0.9
    action: warn
    message: balance {exposure_outstanding} at or above 90% of the quota {quota.exposure_limit}
  - id: quota-trip
    when: exposure_outstanding / quota.exposure_limit > 1
    action: trip
    severity: high
    message: balance {exposure_outstanding} above the quota {quota.exposure_limit}
"""
EXEMPTION = """
exemption:
  criteria:
    - filings_on_time
    - within_scope_and_quota
    - reported_within_days
    - no_new_business_while_suspended
    - no_prior_breach
    - active_when_done
    - npl_tolerance
  report_within_days: 5
  prior_breach_periods: 6
  npl_tolerance: 0.03
  new_business_metric: new_lending_amount
  loss_rules: [npl-trip]
"""
BASE_METRICS = {
    "exposure_outstanding": "3000000000",
    "new_lending_amount": "200000000",
    "deals_count": "3",
    "ltv_max_new": "0.7",
    "term_max_new_years": "7",
    "npl_ratio": "0.01",
    "overdue90_ratio": "0.005",
    "top1_share": "0.1",
}


def at(day: str, hour: int = 2) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def policy_text(*, exemption: bool) -> str:
    """The shipped SH-TECH-MA with known rules (and, if asked, exemption criteria) in place of its
    own rule sections, as a later version."""
    text = (ROOT / "policies" / "SH-TECH-MA.yaml").read_text()
    text = text.replace('version: "2025.1"', 'version: "2025.9-risk"').replace(
        "effective_from: 2025-09-01", "effective_from: 2025-10-01"
    )
    head, _, _ = text.partition("\nrules:")
    return head.rstrip() + "\n" + RULES + (EXEMPTION if exemption else "")


@pytest.fixture
def app(settings: Settings, database: Database, clock: FixedClock) -> FastAPI:
    """The application, with the risk-event and exemption routes (a no-op once main wires them)."""
    application = create_app(settings, database=database, clock=clock)
    paths = {getattr(route, "path", "") for route in application.routes}
    for router, path in ((risk_router, "/pilots/{pilot_id}/risk-events"), (exemption_router, "/exemptions")):
        if API_PREFIX + path not in paths:
            application.include_router(router, prefix=API_PREFIX)
    return application


@dataclass
class Live:
    world: World
    pilot: dict[str, Any]
    clock: FixedClock
    database: Database
    catalogue: list[str]

    @property
    def url(self) -> str:
        return f"/api/v1/pilots/{self.pilot['id']}"

    def report(self, login: Any = None, **body: Any) -> Any:
        values = {
            "kind": "credit_loss",
            "occurred_on": "2026-03-18",
            "amount": "1200000",
            "description": "borrower default",
        }
        values.update(body)
        return self.world.client.post(
            f"{self.url}/risk-events", json=values, headers=(login or self.world.filer_a).headers
        )

    def events(self, login: Any = None, **params: Any) -> Any:
        return self.world.client.get(
            f"{self.url}/risk-events", params=params, headers=(login or self.world.supervisor).headers
        )

    def file(self, period: str, *, on: str, amends: bool = False, **metrics: Any) -> dict[str, Any]:
        self.clock.at = at(on)
        values = {name: BASE_METRICS.get(name, "0") for name in self.catalogue}
        body: dict[str, Any] = {"period": period, "metrics": {**values, **{k: str(v) for k, v in metrics.items()}}}
        if amends:
            body.update(amends=True, reason="corrected figures")
        response = self.world.client.post(f"{self.url}/filings", json=body, headers=self.world.filer_a.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())


def go_live(world: World, clock: FixedClock, database: Database, *, exemption: bool) -> Live:
    """A pilot of SH-TECH-MA active since 2026-02-01 (approved on 2026-01-05)."""
    text = policy_text(exemption=exemption)
    with database.unit_of_work() as session:
        load_policies(session, [("SH-TECH-MA.yaml", text)], actor=SYSTEM, at=at("2025-09-15"))
    clock.at = at("2026-01-05")
    pilot = world.to_pilot(
        start_on="2026-02-01", end_on="2027-12-31", requested_quotas={"exposure_limit": "5000000000"}
    )
    with database.unit_of_work() as session:
        run_scan(session, as_of=date(2026, 2, 1), at=at("2026-02-01"), calendars=load_calendars(ROOT / "policies"))
    clock.at = at("2026-03-20")
    return Live(world, pilot, clock, database, list(parse_policy(text, "SH-TECH-MA.yaml").metrics))


@pytest.fixture
def live(world: World, clock: FixedClock, database: Database) -> Live:
    return go_live(world, clock, database, exemption=False)


def count_events(database: Database) -> int:
    with database.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RiskEvent)) or 0)


def test_the_institution_reports_and_reads_its_risk_events_and_the_bureau_reads_them(live: Live) -> None:
    world = live.world
    live.clock.at = at("2026-03-20", hour=5)
    created = live.report()
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["kind"] == "credit_loss" and event["amount"] == "1200000" and event["occurred_on"] == "2026-03-18"
    assert event["reported_at"] == "2026-03-20T05:00:00Z"  # the server's clock
    assert event["reported_by_id"] == str(world.filer_a.user.id)
    # No exemption criteria in this policy: a loss is recorded, not assessed.
    assert event["exemption_ids"] == []
    second = live.report(
        world.bank_a,
        kind="operational_failure",
        occurred_on="2026-02-01",
        amount=None,
        description="core banking outage for 3 hours",
    )
    assert second.status_code == 201 and second.json()["amount"] is None

    for reader in (world.supervisor, world.reviewer, world.bank_a, world.filer_a):
        listed = live.events(reader)
        assert listed.status_code == 200
        assert listed.json()["total"] == 2
        # Newest occurrence first.
        assert [e["occurred_on"] for e in listed.json()["items"]] == ["2026-03-18", "2026-02-01"]
    page = live.events(limit=1, offset=1).json()
    assert page["total"] == 2 and [e["kind"] for e in page["items"]] == ["operational_failure"]

    assert_problem(live.events(world.bank_b), 404, "not-found")
    with live.database.sessions() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "risk_event.create")).all()
    assert {e.object_id for e in audited} == {event["id"], second.json()["id"]}
    assert audited[0].after is not None and audited[0].after["amount"] == "1200000"


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"occurred_on": "2026-03-21"}, "occurred_on"),  # tomorrow in Shanghai
    ({"occurred_on": "2026-01-31"}, "occurred_on"),  # before the pilot started
    ({"amount": "-1"}, "amount"),
    ({"amount": "1,000"}, "amount"),
    ({"amount": "0.0000000000001"}, "amount"),  # more decimals than can be stored
    ({"amount": "1e27"}, "amount"),
    ({"kind": "market_crash"}, "kind"),
    ({"description": "  "}, "description"),
    ({"reported_at": "2026-03-01T00:00:00Z"}, "reported_at"),  # the server's to set
]


def test_bad_risk_events_are_refused_naming_the_field_and_nothing_is_written(live: Live) -> None:
    for body, field in REFUSED:
        problem = assert_problem(live.report(**body), 422, "validation-error")
        assert ["body", field] in [e["loc"] for e in problem["errors"]], (body, problem)
    assert count_events(live.database) == 0


def test_the_bureau_date_decides_what_is_in_the_future(live: Live) -> None:
    live.clock.at = at("2026-03-20", hour=17)  # 01:00 on 21 March in Shanghai
    assert live.report(occurred_on="2026-03-21").status_code == 201
    assert_problem(live.report(occurred_on="2026-03-22"), 422, "validation-error")


def test_only_the_pilots_own_institution_reports(live: Live) -> None:
    world = live.world
    assert_problem(live.report(world.supervisor), 403, "forbidden")
    assert_problem(live.report(world.bank_b), 404, "not-found")
    assert_problem(world.client.post(f"{live.url}/risk-events", json={"kind": "fraud"}), 401, "unauthenticated")
    missing = world.client.post(
        "/api/v1/pilots/00000000-0000-7000-8000-000000000000/risk-events",
        json={"kind": "fraud", "occurred_on": "2026-03-01", "description": "x"},
        headers=world.filer_a.headers,
    )
    assert_problem(missing, 404, "not-found")
    assert count_events(live.database) == 0
