from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.models import Evaluation, PolicyVersion


def list_page(
    session: Session, pilot_id: uuid.UUID, *, period: str | None, offset: int, limit: int
) -> tuple[Sequence[tuple[Evaluation, str]], int]:
    query = (
        select(Evaluation, PolicyVersion.version)
        .join(PolicyVersion, PolicyVersion.id == Evaluation.policy_version_id)
        .where(Evaluation.pilot_id == pilot_id)
    )
    if period is not None:
        query = query.where(Evaluation.period == period)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Evaluation.id.desc()).offset(offset).limit(limit)).all()
    return [(row[0], row[1]) for row in rows], total


def has_evaluation(session: Session, pilot_id: uuid.UUID, period: str) -> bool:
    return (
        session.scalar(
            select(func.count())
            .select_from(Evaluation)
            .where(Evaluation.pilot_id == pilot_id, Evaluation.period == period)
        )
        or 0
    ) > 0


def all_evaluations(session: Session) -> Sequence[Evaluation]:
    return session.scalars(select(Evaluation).order_by(Evaluation.id)).all()


def tripped_rules_by_period(session: Session, pilot_id: uuid.UUID) -> dict[str, set[str]]:
    """For each evaluated period of the pilot, the rules whose breaker an evaluation of it tripped
    (read from the breaker steps recorded in the evaluations' outcomes; empty: none tripped)."""
    tripped: dict[str, set[str]] = {}
    rows = session.execute(
        select(Evaluation.period, Evaluation.outcomes)
        .where(Evaluation.pilot_id == pilot_id)
        .order_by(Evaluation.period_ordinal, Evaluation.id)
    ).all()
    for period, outcomes in rows:
        tripped.setdefault(period, set())
        for outcome in outcomes or ():
            breaker = outcome.get("breaker") if isinstance(outcome, dict) else None
            if breaker and "tripped" in breaker.get("signals", ()):
                tripped[period].add(str(outcome["rule_id"]))
    return tripped
