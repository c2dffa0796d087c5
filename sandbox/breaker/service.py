from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM, Actor
from sandbox.audit.log import record
from sandbox.breaker import repository
from sandbox.errors import IllegalTransition, InvalidInput, NotFound
from sandbox.lifecycle import check_version
from sandbox.models import Breaker, BreakerEvent, Evaluation, Pilot, PilotState, Role
from sandbox.notify import service as notify
from sandbox.pilot import service as pilots
from sandbox.rules import breaker as machine
from sandbox.rules.breaker import Memory, Signal, State
from sandbox.rules.engine import CompiledPolicy, Outcome


def _visible(session: Session, breaker: Breaker | None, actor: Actor) -> Breaker:
    if breaker is not None and actor.is_institution:
        pilot = session.get(Pilot, breaker.pilot_id)
        if pilot is None or pilot.institution_id != actor.institution_id:
            breaker = None
    if breaker is None:
        raise NotFound("no such breaker")
    return breaker


def get_breaker(session: Session, breaker_id: uuid.UUID, *, actor: Actor) -> Breaker:
    return _visible(session, session.get(Breaker, breaker_id), actor)


def list_breakers(
    session: Session, *, actor: Actor, pilot_id: uuid.UUID | None, states: Sequence[str] | None, offset: int, limit: int
) -> tuple[Sequence[tuple[Breaker, str]], int]:
    return repository.list_page(
        session,
        institution_id=actor.institution_id if actor.is_institution else None,
        pilot_id=pilot_id,
        states=states,
        offset=offset,
        limit=limit,
    )


def board(
    session: Session,
    *,
    actor: Actor,
    pilot_id: uuid.UUID | None,
    program_code: str | None,
    state: str | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[Breaker], dict[str, int]]:
    """The breaker board: a page of the breakers the actor may see (waiting for a person first)
    and the count in each state, within the same filters."""
    institution_id = actor.institution_id if actor.is_institution else None
    counts = repository.board_counts(
        session, institution_id=institution_id, pilot_id=pilot_id, program_code=program_code
    )
    rows = repository.board_page(
        session,
        institution_id=institution_id,
        pilot_id=pilot_id,
        program_code=program_code,
        state=state,
        offset=offset,
        limit=limit,
    )
    return rows, counts


def _event(
    session: Session,
    breaker: Breaker,
    kind: str,
    before: str,
    memory: Memory,
    *,
    actor: Actor,
    at: datetime,
    signals: Sequence[Signal] = (),
    evaluation: Evaluation | None = None,
    status: str | None = None,
    note: str | None = None,
) -> None:
    session.add(
        BreakerEvent(
            breaker_id=breaker.id,
            kind=kind,
            evaluation_id=evaluation.id if evaluation else None,
            period=evaluation.period if evaluation else None,
            status=status,
            state_before=before,
            state_after=memory.state.value,
            memory_after=memory.to_json(),
            signals=[s.value for s in signals],
            actor=actor.label,
            actor_id=actor.user_id,
            note=note,
            at=at,
        )
    )


def step_breakers(
    session: Session,
    pilot: Pilot,
    policy: CompiledPolicy,
    outcomes: Sequence[Outcome],
    evaluation: Evaluation,
    *,
    at: datetime,
) -> list[tuple[Breaker, tuple[Signal, ...]]]:
    """Advance every enforced trip rule's breaker by this evaluation; suspend the pilot on a trip."""
    existing = repository.for_pilot(session, pilot.id, lock=True)
    stepped: list[tuple[Breaker, tuple[Signal, ...]]] = []
    for outcome in outcomes:
        rule = policy.rule(outcome.rule_id)
        if not rule.has_breaker:
            continue
        breaker = existing.get(rule.id)
        if breaker is None:
            breaker = Breaker(
                pilot_id=pilot.id,
                rule_id=rule.id,
                action=rule.action.value,
                severity=rule.severity.value,
                state=State.armed.value,
                memory=Memory().to_json(),
                created_at=at,
                updated_at=at,
            )
            session.add(breaker)
            session.flush()
        before = Memory.from_json(breaker.memory)
        result = machine.step(rule.breaker_rule(policy.success_threshold), before, outcome.status, outcome.clear)
        breaker.action, breaker.severity = rule.action.value, rule.severity.value
        breaker.memory = result.memory.to_json()
        breaker.state = result.memory.state.value
        breaker.last_evaluation_id = evaluation.id
        breaker.updated_at = at
        if Signal.tripped in result.signals:
            breaker.trips += 1
            breaker.last_tripped_at = at
        _event(
            session,
            breaker,
            "evaluated",
            before.state.value,
            result.memory,
            actor=SYSTEM,
            at=at,
            signals=result.signals,
            evaluation=evaluation,
            status=outcome.status,
        )
        if result.signals:
            record(
                session,
                at=at,
                actor=SYSTEM,
                action="breaker." + "+".join(s.value for s in result.signals),
                object_type="breaker",
                object_id=breaker.id,
                before={"state": before.state},
                after={
                    "state": result.memory.state,
                    "period": evaluation.period,
                    "rule_id": rule.id,
                    "evaluation_id": evaluation.id,
                },
            )
        stepped.append((breaker, result.signals))
    tripped = [b for b, signals in stepped if Signal.tripped in signals]
    if tripped and pilot.state == PilotState.active:
        reasons = ", ".join(
            f"{b.rule_id}{' (repeat)' if Signal.repeat_trip in s else ''}" for b, s in stepped if Signal.tripped in s
        )
        pilots.suspend_by_system(session, pilot, reason=f"breaker tripped for {evaluation.period}: {reasons}", at=at)
    session.flush()
    return stepped


def allowed_commands(breaker: Breaker, actor: Actor) -> list[str]:
    """The commands this actor may give the breaker now: a supervisor, in a state a person may act in."""
    if actor.role is not Role.supervisor:
        return []
    return [c for c, states in machine.HUMAN_COMMANDS.items() if State(breaker.state) in states]


def _command(
    session: Session, breaker_id: uuid.UUID, command: str, *, actor: Actor, expected_version: int | None
) -> Breaker:
    breaker = _visible(session, repository.get_for_update(session, breaker_id), actor)
    actor.require(Role.supervisor, doing=f"{command} a breaker")
    check_version("breaker", breaker.version, expected_version)
    allowed = [c for c, states in machine.HUMAN_COMMANDS.items() if State(breaker.state) in states]
    if State(breaker.state) not in machine.HUMAN_COMMANDS[command]:
        raise IllegalTransition("breaker", breaker.state, command, allowed)
    return breaker


def acknowledge(
    session: Session,
    breaker_id: uuid.UUID,
    note: str | None,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> Breaker:
    breaker = _command(session, breaker_id, "acknowledge", actor=actor, expected_version=expected_version)
    before = Memory.from_json(breaker.memory)
    after = machine.acknowledge(before)
    breaker.memory, breaker.state, breaker.updated_at = after.to_json(), after.state.value, at
    _event(session, breaker, "acknowledged", before.state.value, after, actor=actor, at=at, note=note)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="breaker.acknowledge",
        object_type="breaker",
        object_id=breaker.id,
        before={"state": before.state},
        after={"state": after.state, "note": note},
    )
    return breaker


def reset(
    session: Session, breaker_id: uuid.UUID, reason: str, *, actor: Actor, at: datetime, expected_version: int | None
) -> Breaker:
    if not reason.strip():
        raise InvalidInput("a reset needs a reason", [{"loc": ["body", "reason"], "msg": "required"}])
    breaker = _command(session, breaker_id, "reset", actor=actor, expected_version=expected_version)
    before = Memory.from_json(breaker.memory)
    after = machine.reset(before)
    breaker.memory, breaker.state, breaker.updated_at = after.to_json(), after.state.value, at
    breaker.reset_by_id, breaker.reset_at = actor.user_id, at
    _event(session, breaker, "reset", before.state.value, after, actor=actor, at=at, note=reason)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="breaker.reset",
        object_type="breaker",
        object_id=breaker.id,
        before={"state": before.state},
        after={"state": after.state, "reason": reason},
    )
    pilot = session.get(Pilot, breaker.pilot_id)
    assert pilot is not None
    notify.breaker_reset(session, breaker, pilot, reason=reason, actor=actor, at=at)
    return breaker
