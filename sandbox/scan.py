"""The daily scan: every time-driven change, for an explicit as-of date, idempotent (running it
twice for the same date changes nothing the second time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from sandbox.pilot.service import activate_due, expire_past_end


@dataclass
class ScanReport:
    as_of: date
    activated: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def run_scan(session: Session, *, as_of: date, at: datetime) -> ScanReport:
    report = ScanReport(as_of)
    report.expired = [p.reference for p in expire_past_end(session, as_of=as_of, at=at)]
    report.activated = [p.reference for p in activate_due(session, as_of=as_of, at=at)]
    return report
