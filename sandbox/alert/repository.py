from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import Alert, AlertDelivery, DeliveryState, Pilot

# A ``sending`` row is claimable again once its lease ended (its next_attempt_at is the lease's end).
CLAIMABLE_STATES = (DeliveryState.pending, DeliveryState.retrying, DeliveryState.sending)


def find_by_dedupe_key(session: Session, dedupe_key: str) -> Alert | None:
    return session.scalars(select(Alert).where(Alert.dedupe_key == dedupe_key)).one_or_none()


def claim_due(session: Session, *, now: datetime, limit: int, skip_locked: bool) -> Sequence[AlertDelivery]:
    """Due deliveries, oldest first, locked for this transaction. On PostgreSQL rows another
    worker holds are skipped, so concurrent workers take disjoint batches; SQLite serialises
    writers (every transaction begins IMMEDIATE), so a plain select is already exclusive."""
    query = (
        select(AlertDelivery)
        .where(AlertDelivery.state.in_(CLAIMABLE_STATES), AlertDelivery.next_attempt_at <= now)
        .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).all()


def alerts_by_id(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Alert]:
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_(list(ids))))}


def lock_alert(session: Session, alert_id: uuid.UUID) -> Alert:
    """The alert row, locked: whoever records a delivery's result holds it while re-deriving the
    alert's state, so two workers finishing the same alert's deliveries cannot both miss the other."""
    return session.execute(
        select(Alert).where(Alert.id == alert_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def delivery_for_update(session: Session, delivery_id: uuid.UUID) -> AlertDelivery | None:
    return session.execute(
        select(AlertDelivery)
        .where(AlertDelivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def deliveries_of(session: Session, alert_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[AlertDelivery]]:
    result: dict[uuid.UUID, list[AlertDelivery]] = {alert_id: [] for alert_id in alert_ids}
    if not alert_ids:
        return result
    query = (
        select(AlertDelivery)
        .where(AlertDelivery.alert_id.in_(list(alert_ids)))
        .order_by(AlertDelivery.alert_id, AlertDelivery.recipient)
    )
    for delivery in session.scalars(query):
        result[delivery.alert_id].append(delivery)
    return result


def list_page(
    session: Session,
    *,
    states: Sequence[str] | None,
    kinds: Sequence[str] | None,
    pilot_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> tuple[list[tuple[Alert, str | None]], int]:
    """Newest first, with each alert's pilot reference (None for alerts about no pilot)."""
    query = select(Alert, Pilot.reference).outerjoin(Pilot, Pilot.id == Alert.pilot_id)
    if states:
        query = query.where(Alert.state.in_(list(states)))
    if kinds:
        query = query.where(Alert.kind.in_(list(kinds)))
    if pilot_id is not None:
        query = query.where(Alert.pilot_id == pilot_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Alert.created_at.desc(), Alert.id.desc()).offset(offset).limit(limit)).all()
    return [(row[0], row[1]) for row in rows], total
