"""A program version with known rules, and an active pilot with past periods to file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest

from sandbox.actor import SYSTEM
from sandbox.clock import FixedClock
from sandbox.db import Database
from sandbox.program.calendars import load_calendars
from sandbox.program.service import load_policies
from sandbox.rules.policy_file import parse_policy
from sandbox.scan import run_scan
from tests.support import ROOT
from tests.world import World

RULES = """
rules:
  - id: npl-warn
    when: npl_ratio >= 0.02
    action: warn
    message: NPL ratio {npl_ratio} at or above the 2% warning level
  - id: npl-trip
    when: npl_ratio >= 0.03
    clear_when: npl_ratio < 0.025
    trip_after: 2
    action: trip
    severity: high
    message: NPL ratio {npl_ratio} at or above the 3% trip level
  - id: exposure-cap
    when: exposure_outstanding / quota.exposure_limit > 1
    action: trip
    severity: critical
    message: exposure {exposure_outstanding} above the granted quota {quota.exposure_limit}
  - id: loss-growth
    when: pct_change(exposure_outstanding) > 0.5
    action: warn
    mode: shadow
    message: exposure grew by more than half in one period
probation:
  success_threshold: 2
alerts:
  recipients:
    medium: [desk@bureau.example]
    high: [supervisors@bureau.example]
  escalation: [director@bureau.example]
  repeat_every: 24h
  escalate_after: 72h
"""


def rules_version(base: str, version: str = "2026.test", effective_from: str = "2025-10-01") -> str:
    text = base.replace('version: "2025.1"', f'version: "{version}"').replace(
        "effective_from: 2025-09-01", f"effective_from: {effective_from}"
    )
    head, _, _ = text.partition("\nrules:")  # drop the shipped rules, if any, for known ones
    return head.rstrip() + "\n" + RULES


def at(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time().replace(hour=2), tzinfo=UTC)


@dataclass
class Live:
    world: World
    pilot: dict[str, Any]
    clock: FixedClock
    database: Database

    catalogue: dict[str, Any]

    def file(self, period: str, login: Any = None, **metrics: Any) -> Any:
        return self.world.client.post(
            f"/api/v1/pilots/{self.pilot['id']}/filings",
            json=self.body(period, **metrics),
            headers=(login or self.world.filer_a).headers,
        )

    def body(self, period: str, **metrics: Any) -> dict[str, Any]:
        # Every metric of the catalogue (the shipped file may grow), the rules' inputs as given.
        values = {name: BASE_METRICS.get(name, "0") for name in self.catalogue}
        return {"period": period, "metrics": {**values, **{k: str(v) for k, v in metrics.items()}}}

    def get_pilot(self) -> dict[str, Any]:
        return dict(
            self.world.client.get(f"/api/v1/pilots/{self.pilot['id']}", headers=self.world.approver.headers).json()
        )

    def breaker(self, rule_id: str) -> dict[str, Any]:
        items = self.world.client.get(
            "/api/v1/breakers", params={"pilot_id": self.pilot["id"]}, headers=self.world.supervisor.headers
        ).json()["items"]
        return dict(next(b for b in items if b["rule_id"] == rule_id))


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


@pytest.fixture
def live(world: World, clock: FixedClock, database: Database) -> Live:
    text = rules_version((ROOT / "policies" / "SH-TECH-MA.yaml").read_text())
    with database.unit_of_work() as session:
        load_policies(session, [("SH-TECH-MA.yaml", text)], actor=SYSTEM, at=at("2025-09-15"))
    catalogue = dict(parse_policy(text, "SH-TECH-MA.yaml").metrics)
    clock.at = at("2026-01-05")
    pilot = world.to_pilot(
        start_on="2026-02-01", end_on="2027-12-31", requested_quotas={"exposure_limit": "5000000000"}
    )
    with database.unit_of_work() as session:
        run_scan(session, as_of=date(2026, 2, 1), at=at("2026-02-01"), calendars=load_calendars(ROOT / "policies"))
    clock.at = at("2026-11-20")
    return Live(world, pilot, clock, database, catalogue)
