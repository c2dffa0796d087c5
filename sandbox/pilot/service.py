from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM, Actor
from sandbox.audit.log import record
from sandbox.breaker import repository as breaker_repository
from sandbox.clock import bureau_date
from sandbox.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sandbox.lifecycle import TransitionTable, check_version
from sandbox.models import Application, Pilot, PilotState, Program, QuotaAllocation, Role
from sandbox.notify import service as notify
from sandbox.pilot import repository
from sandbox.program.service import get_program, policy_document, policy_in_force
from sandbox.rules.dates import add_months, latest_end
from sandbox.rules.policy import PolicyDocument

S = PilotState
TRANSITIONS: TransitionTable[PilotState] = TransitionTable(
    "pilot",
    {
        S.approved: {
            "activate": S.active,
            "extend": S.approved,
            "terminate": S.terminated,
            "withdraw": S.withdrawn,
            "expire": S.expired,
        },
        S.active: {
            "suspend": S.suspended,
            "extend": S.active,
            "complete": S.completed,
            "terminate": S.terminated,
            "withdraw": S.withdrawn,
            "expire": S.expired,
        },
        S.suspended: {
            "resume": S.active,
            "extend": S.suspended,
            "terminate": S.terminated,
            "withdraw": S.withdrawn,
            "expire": S.expired,
        },
    },
)
ENDED = frozenset({S.completed, S.terminated, S.withdrawn, S.expired})
SYSTEM_COMMANDS = frozenset({"activate", "expire"})
COMMAND_ROLES: Mapping[str, tuple[Role, ...]] = {
    "suspend": (Role.supervisor,),
    "resume": (Role.approver,),
    "extend": (Role.approver,),
    "complete": (Role.approver,),
    "terminate": (Role.approver,),
    "withdraw": (Role.institution_admin,),
}


class QuotaExceeded(Conflict):
    type_slug = "quota-exceeded"
    title = "Program quota exceeded"


def _visible(pilot: Pilot | None, actor: Actor) -> Pilot:
    if pilot is None or (actor.is_institution and pilot.institution_id != actor.institution_id):
        raise NotFound("no such pilot")
    return pilot


def get_pilot(session: Session, pilot_id: uuid.UUID, *, actor: Actor) -> Pilot:
    return _visible(session.get(Pilot, pilot_id), actor)


def list_pilots(
    session: Session, *, actor: Actor, state: str | None, program: str | None, offset: int, limit: int
) -> tuple[Sequence[Pilot], int]:
    program_id = get_program(session, program).id if program else None
    query = repository.pilots_query(
        institution_id=actor.institution_id if actor.is_institution else None, state=state, program_id=program_id
    )
    return repository.page(session, query, offset, limit)


def granted_quotas(session: Session, pilot: Pilot) -> dict[str, Decimal]:
    return {row.quota: row.amount for row in repository.allocations(session, pilot.id)}


def allowed_commands(pilot: Pilot, actor: Actor) -> list[str]:
    """The commands this actor could issue now: shown in the API and the UI."""
    return [
        command
        for command in TRANSITIONS.allowed(pilot.state)
        if command not in SYSTEM_COMMANDS and (actor.is_system or actor.role in COMMAND_ROLES.get(command, ()))
    ]


def create_pilot(
    session: Session,
    *,
    application: Application,
    policy: PolicyDocument,
    granted_scope: dict[str, list[str]],
    granted_quotas: Mapping[str, Decimal],
    conditions: list[str],
    actor: Actor,
    at: datetime,
) -> Pilot:
    """Create the pilot of an approved application and allocate its quotas against the program's
    aggregate caps. The program row is locked first, so concurrent approvals in one program are
    serialised and each sees the allocations committed before it."""
    program = repository.lock_program(session, application.program_id)
    for name, amount in sorted(granted_quotas.items()):
        cap = policy.quotas[name].aggregate_cap
        if cap is None:
            continue
        allocated = repository.allocated_total(session, program.id, name)
        if allocated + amount > cap:
            raise QuotaExceeded(
                f"granting {amount} of {name} would take program {program.code} past its aggregate cap of {cap} "
                f"({allocated} already allocated, {cap - allocated} available)",
                quota=name,
                aggregate_cap=str(cap),
                allocated=str(allocated),
                requested=str(amount),
                available=str(cap - allocated),
            )
    today = bureau_date(at)
    prefix = f"{program.code}-{today.year}-"
    reference = f"{prefix}{repository.count_references(session, prefix) + 1:03d}"
    pilot = Pilot(
        reference=reference,
        application_id=application.id,
        institution_id=application.institution_id,
        program_id=program.id,
        title=application.title,
        state=PilotState.approved,
        granted_scope=granted_scope,
        conditions=conditions,
        start_on=application.start_on,
        end_on=application.end_on,
        original_end_on=application.end_on,
        approved_by_id=actor.user_id,
        approved_at=at,
        created_at=at,
        updated_at=at,
    )
    session.add(pilot)
    session.flush()
    for name, amount in sorted(granted_quotas.items()):
        session.add(
            QuotaAllocation(pilot_id=pilot.id, program_id=program.id, quota=name, amount=amount, allocated_at=at)
        )
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="pilot.create",
        object_type="pilot",
        object_id=pilot.id,
        after={
            "reference": reference,
            "state": pilot.state,
            "application_id": application.id,
            "granted_scope": granted_scope,
            "granted_quotas": dict(granted_quotas),
            "conditions": conditions,
            "start_on": pilot.start_on,
            "end_on": pilot.end_on,
        },
    )
    if pilot.start_on <= today:
        _apply(session, pilot, "activate", actor=SYSTEM, at=at, reason="start date reached at approval")
    return pilot


def _apply(
    session: Session,
    pilot: Pilot,
    command: str,
    *,
    actor: Actor,
    at: datetime,
    reason: str | None,
    changes: Mapping[str, object] | None = None,
) -> Pilot:
    target = TRANSITIONS.target(pilot.state, command)
    before = {"state": pilot.state, **{k: getattr(pilot, k) for k in (changes or {})}}
    pilot.state = target
    for key, value in (changes or {}).items():
        setattr(pilot, key, value)
    if reason is not None:
        pilot.state_reason = reason
    pilot.updated_at = at
    if target in ENDED:
        for allocation in repository.allocations(session, pilot.id):
            if allocation.released_at is None:
                allocation.released_at = at
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action=f"pilot.{command}",
        object_type="pilot",
        object_id=pilot.id,
        before=before,
        after={"state": target, "reason": reason, **dict(changes or {})},
    )
    return pilot


def run_command(
    session: Session,
    pilot_id: uuid.UUID,
    command: str,
    *,
    reason: str | None,
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
) -> Pilot:
    """suspend, resume, complete, terminate or withdraw, by a person."""
    if command not in COMMAND_ROLES or command == "extend":
        raise NotFound(f"unknown pilot command {command!r}")
    pilot = _visible(repository.get_for_update(session, pilot_id), actor)
    actor.require(*COMMAND_ROLES[command], doing=f"{command} a pilot")
    check_version("pilot", pilot.version, expected_version)
    if command != "complete" and not reason:
        raise InvalidInput(f"{command} needs a reason", [{"loc": ["body", "reason"], "msg": "required"}])
    if command == "resume":
        _check_resumable(session, pilot, actor)
    _apply(session, pilot, command, actor=actor, at=at, reason=reason)
    notify.pilot_changed(session, pilot, command, reason=reason, actor=actor, at=at)
    return pilot


def _check_resumable(session: Session, pilot: Pilot, actor: Actor) -> None:
    """Resume only once no breaker is tripped or acknowledged, and never by whoever reset one."""
    blocking = breaker_repository.open_breakers(session, pilot.id)
    if blocking:
        raise Conflict(
            "the pilot cannot resume while breakers are tripped or acknowledged: "
            + ", ".join(f"{b.rule_id} ({b.state})" for b in blocking),
            open_breakers=[{"id": str(b.id), "rule_id": b.rule_id, "state": b.state} for b in blocking],
        )
    if actor.user_id in breaker_repository.resetters(session, pilot.id):
        raise PermissionDenied("you reset a breaker of this pilot; another approver must resume it (four eyes)")


def suspend_by_system(session: Session, pilot: Pilot, *, reason: str, at: datetime) -> Pilot:
    """A breaker tripped: suspend in the same transaction as the evaluation."""
    return _apply(session, pilot, "suspend", actor=SYSTEM, at=at, reason=reason)


def extend(
    session: Session,
    pilot_id: uuid.UUID,
    *,
    end_on: date,
    reason: str,
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
) -> Pilot:
    pilot = _visible(repository.get_for_update(session, pilot_id), actor)
    actor.require(*COMMAND_ROLES["extend"], doing="extend a pilot")
    check_version("pilot", pilot.version, expected_version)
    TRANSITIONS.target(pilot.state, "extend")
    program = session.get(Program, pilot.program_id)
    assert program is not None
    schedule = policy_document(policy_in_force(session, program, bureau_date(at))).schedule
    if pilot.extensions >= schedule.max_extensions:
        raise Conflict(
            f"the pilot has used {pilot.extensions} of the {schedule.max_extensions} extension(s) program {program.code} allows",
            extensions_used=pilot.extensions,
            max_extensions=schedule.max_extensions,
        )
    problems: list[str] = []
    if end_on <= pilot.end_on:
        problems.append(f"must be after the current end date {pilot.end_on.isoformat()}")
    else:
        step_limit = add_months(pilot.end_on, schedule.extension_months)
        total_months = schedule.max_duration_months + schedule.max_extensions * schedule.extension_months
        total_limit = latest_end(pilot.start_on, total_months)
        if end_on > step_limit:
            problems.append(
                f"one extension is at most {schedule.extension_months} months: {step_limit.isoformat()} at the latest"
            )
        if end_on > total_limit:
            problems.append(f"the program's maximum duration with extensions ends on {total_limit.isoformat()}")
    if problems:
        raise InvalidInput("the new end date is not allowed", [{"loc": ["body", "end_on"], "msg": p} for p in problems])
    return _apply(
        session,
        pilot,
        "extend",
        actor=actor,
        at=at,
        reason=reason,
        changes={"end_on": end_on, "extensions": pilot.extensions + 1},
    )


def activate_due(session: Session, *, as_of: date, at: datetime) -> list[Pilot]:
    """Approved pilots whose start date has come (the daily scan)."""
    return [
        _apply(
            session, pilot, "activate", actor=SYSTEM, at=at, reason=f"start date {pilot.start_on.isoformat()} reached"
        )
        for pilot in repository.due_for_activation(session, as_of)
    ]


def expire_past_end(session: Session, *, as_of: date, at: datetime) -> list[Pilot]:
    """Live pilots whose end date has passed with no decision (the daily scan)."""
    return [
        _apply(
            session,
            pilot,
            "expire",
            actor=SYSTEM,
            at=at,
            reason=f"end date {pilot.end_on.isoformat()} passed with no decision",
        )
        for pilot in repository.past_end(session, as_of)
    ]
