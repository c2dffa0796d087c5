from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import Exemption, RiskEvent


def list_page(session: Session, pilot_id: uuid.UUID, *, offset: int, limit: int) -> tuple[Sequence[RiskEvent], int]:
    query = select(RiskEvent).where(RiskEvent.pilot_id == pilot_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(RiskEvent.occurred_on.desc(), RiskEvent.id.desc()).offset(offset).limit(limit)
    ).all()
    return rows, total


def occurred_between(session: Session, pilot_id: uuid.UUID, first: date, last: date) -> Sequence[RiskEvent]:
    return session.scalars(
        select(RiskEvent)
        .where(RiskEvent.pilot_id == pilot_id, RiskEvent.occurred_on >= first, RiskEvent.occurred_on <= last)
        .order_by(RiskEvent.occurred_on, RiskEvent.id)
    ).all()


def exemption_ids(session: Session, risk_event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The exemptions assessed for each risk event, oldest first."""
    found: dict[uuid.UUID, list[uuid.UUID]] = {rid: [] for rid in risk_event_ids}
    if not risk_event_ids:
        return found
    rows = session.execute(
        select(Exemption.risk_event_id, Exemption.id)
        .where(Exemption.risk_event_id.in_(list(risk_event_ids)))
        .order_by(Exemption.id)
    ).all()
    for risk_event_id, exemption_id in rows:
        if risk_event_id is not None:
            found[risk_event_id].append(exemption_id)
    return found
