from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM, Actor
from sandbox.audit.log import record
from sandbox.breaker.service import step_breakers
from sandbox.clock import bureau_date
from sandbox.evaluation import repository
from sandbox.evaluation.facts import build_history, current_inputs, latest_versions, pilot_periods
from sandbox.exemption.service import assess_after_evaluation
from sandbox.models import Breaker, Evaluation, FilingVersion, Institution, Pilot, PolicyVersion, Program
from sandbox.notify import service as notify
from sandbox.pilot.service import get_pilot
from sandbox.program.service import PolicyBook, policy_document
from sandbox.rules.breaker import Signal
from sandbox.rules.engine import CompiledPolicy, Outcome, compile_policy, judge
from sandbox.rules.periods import Period, period_of
from sandbox.rules.policy import Schedule


@dataclass(frozen=True)
class Judgement:
    evaluation: Evaluation
    outcomes: list[Outcome]
    breakers: list[tuple[Breaker, tuple[Signal, ...]]]
    policy: CompiledPolicy


def policy_for_period(session: Session, pilot: Pilot, period: Period) -> PolicyVersion:
    """A period is judged by the policy version in force on its last day."""
    program = session.get(Program, pilot.program_id)
    assert program is not None
    return PolicyBook(session, [program]).for_period(program.id, period)


def pilot_schedule(session: Session, pilot: Pilot, book: PolicyBook | None = None) -> Schedule:
    """The schedule of the policy in force for the pilot's first period: it decides how the
    pilot's periods are written (programs do not change frequency between versions). ``book``:
    the programs' versions already read, when many pilots are asked about."""
    if book is None:
        program = session.get(Program, pilot.program_id)
        assert program is not None
        book = PolicyBook(session, [program])
    return policy_document(book.for_period(pilot.program_id, period_of(pilot.start_on, "monthly"))).schedule


def evaluate_period(
    session: Session,
    pilot: Pilot,
    period: Period,
    *,
    trigger: str,
    filing_version: FilingVersion | None,
    at: datetime,
    days_late_unfiled: int | None = None,
) -> Judgement:
    """Judge one pilot-period with the data stored now, record it, and step the breakers."""
    version = policy_for_period(session, pilot, period)
    document = policy_document(version)
    policy = compile_policy(document)
    institution = session.get(Institution, pilot.institution_id)
    assert institution is not None
    periods = pilot_periods(pilot, document, period)
    versions = latest_versions(session, pilot.id)
    inputs = current_inputs(
        session, pilot, institution, document, periods, versions, on=bureau_date(at), days_late=days_late_unfiled
    )
    outcomes = judge(policy, build_history(periods, versions, inputs, pilot.granted_scope))
    evaluation = Evaluation(
        pilot_id=pilot.id,
        period=period.label,
        period_ordinal=period.ordinal,
        policy_version_id=version.id,
        trigger=trigger,
        filing_version_id=filing_version.id if filing_version else None,
        inputs=inputs.to_json(),
        outcomes=[o.to_json() for o in outcomes],
        evaluated_at=at,
    )
    session.add(evaluation)
    session.flush()
    stepped = step_breakers(session, pilot, policy, outcomes, evaluation, at=at)
    evaluation.outcomes = _with_breakers(evaluation.outcomes, stepped)
    session.flush()
    notify.after_evaluation(
        session,
        pilot,
        policy,
        outcomes,
        {b.rule_id: signals for b, signals in stepped},
        evaluation_id=evaluation.id,
        period=period.label,
        version=version,
        at=at,
    )
    assess_after_evaluation(session, pilot, evaluation, at=at)
    record(
        session,
        at=at,
        actor=SYSTEM,
        action="evaluation.create",
        object_type="pilot",
        object_id=pilot.id,
        after={
            "evaluation_id": evaluation.id,
            "period": period.label,
            "policy_version": version.version,
            "breaches": [o.rule_id for o in outcomes if o.status == "breach"],
        },
    )
    return Judgement(evaluation, outcomes, stepped, policy)


def _with_breakers(outcomes: list[Any], stepped: Sequence[tuple[Breaker, tuple[Signal, ...]]]) -> list[Any]:
    by_rule = {b.rule_id: (b, signals) for b, signals in stepped}
    result = []
    for outcome in outcomes:
        entry = dict(outcome)
        if outcome["rule_id"] in by_rule:
            breaker, signals = by_rule[outcome["rule_id"]]
            entry["breaker"] = {
                "id": str(breaker.id),
                "state": breaker.state,
                "consecutive": breaker.memory["breach_streak"],
                "signals": [s.value for s in signals],
            }
        result.append(entry)
    return result


def list_evaluations(
    session: Session, pilot_id: uuid.UUID, *, actor: Actor, period: str | None, offset: int, limit: int
) -> tuple[Sequence[tuple[Evaluation, str]], int]:
    pilot = get_pilot(session, pilot_id, actor=actor)
    return repository.list_page(session, pilot.id, period=period, offset=offset, limit=limit)
