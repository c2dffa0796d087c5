from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from sandbox.models import AuditEntry, Evaluation, Exemption, Filing, FilingVersion, Pilot, PolicyVersion


def get_for_update(session: Session, exemption_id: uuid.UUID) -> Exemption | None:
    return session.execute(
        select(Exemption)
        .where(Exemption.id == exemption_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Labelled:
    exemption: Exemption
    pilot_reference: str
    institution_id: uuid.UUID
    policy_version: str


def find_labelled(session: Session, exemption_id: uuid.UUID) -> Labelled | None:
    query = (
        select(Exemption, Pilot.reference, Pilot.institution_id, PolicyVersion.version)
        .join(Pilot, Pilot.id == Exemption.pilot_id)
        .join(PolicyVersion, PolicyVersion.id == Exemption.policy_version_id)
        .where(Exemption.id == exemption_id)
    )
    row = session.execute(query).one_or_none()
    return Labelled(row[0], row[1], row[2], row[3]) if row is not None else None


def list_page(
    session: Session,
    *,
    institution_id: uuid.UUID | None,
    pilot_id: uuid.UUID | None,
    states: Sequence[str] | None,
    offset: int,
    limit: int,
) -> tuple[list[Labelled], int]:
    query = (
        select(Exemption, Pilot.reference, Pilot.institution_id, PolicyVersion.version)
        .join(Pilot, Pilot.id == Exemption.pilot_id)
        .join(PolicyVersion, PolicyVersion.id == Exemption.policy_version_id)
    )
    if institution_id is not None:
        query = query.where(Pilot.institution_id == institution_id)
    if pilot_id is not None:
        query = query.where(Exemption.pilot_id == pilot_id)
    if states:
        query = query.where(Exemption.state.in_(list(states)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Exemption.id.desc()).offset(offset).limit(limit)).all()
    return [Labelled(r[0], r[1], r[2], r[3]) for r in rows], total


def has_rule_assessment(session: Session, pilot_id: uuid.UUID, rule_id: str, period: str) -> bool:
    count = session.scalar(
        select(func.count())
        .select_from(Exemption)
        .join(Evaluation, Evaluation.id == Exemption.evaluation_id)
        .where(Exemption.pilot_id == pilot_id, Exemption.rule_id == rule_id, Evaluation.period == period)
    )
    return (count or 0) > 0


def for_risk_event(session: Session, risk_event_id: uuid.UUID) -> Sequence[Exemption]:
    return session.scalars(
        select(Exemption).where(Exemption.risk_event_id == risk_event_id).order_by(Exemption.id)
    ).all()


# -- the facts an assessment reads ----------------------------------------------------------------


@dataclass(frozen=True)
class FiledPeriod:
    filing: Filing
    first: FilingVersion
    latest: FilingVersion


def filed_periods(session: Session, pilot_id: uuid.UUID) -> dict[str, FiledPeriod]:
    """Each filed period's first version (was it on time?) and latest version (the values)."""
    rows = session.execute(
        select(Filing, FilingVersion)
        .join(FilingVersion, FilingVersion.filing_id == Filing.id)
        .where(
            Filing.pilot_id == pilot_id,
            or_(FilingVersion.version == 1, FilingVersion.version == Filing.latest_version),
        )
    ).all()
    firsts: dict[str, FilingVersion] = {}
    latests: dict[str, FilingVersion] = {}
    filings: dict[str, Filing] = {}
    for filing, version in rows:
        filings[filing.period] = filing
        if version.version == 1:
            firsts[filing.period] = version
        if version.version == filing.latest_version:
            latests[filing.period] = version
    return {
        period: FiledPeriod(filing, firsts[period], latests[period])
        for period, filing in filings.items()
        if period in firsts and period in latests
    }


def evaluations_up_to(session: Session, pilot_id: uuid.UUID, ordinal: int) -> Sequence[Evaluation]:
    return session.scalars(
        select(Evaluation)
        .where(Evaluation.pilot_id == pilot_id, Evaluation.period_ordinal <= ordinal)
        .order_by(Evaluation.period_ordinal, Evaluation.id)
    ).all()


def pilot_state_changes(session: Session, pilot_id: uuid.UUID) -> list[tuple[datetime, str]]:
    """Every state the pilot entered, from its audit trail, in order (entries that changed
    something else, such as evaluations, carry no state)."""
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.object_type == "pilot", AuditEntry.object_id == str(pilot_id))
        .order_by(AuditEntry.seq)
    ).all()
    return [
        (e.at, str(e.after["state"]))
        for e in entries
        if e.after and e.action.startswith("pilot.") and "state" in e.after
    ]
