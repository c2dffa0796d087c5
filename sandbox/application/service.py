from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.application import repository
from sandbox.application.schemas import ApplicationCreate, ApplicationUpdate, ApproveBody
from sandbox.audit.log import record
from sandbox.clock import bureau_date
from sandbox.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sandbox.institution.service import institution_facts
from sandbox.lifecycle import TransitionTable, check_version
from sandbox.models import (
    Application,
    ApplicationMessage,
    ApplicationState,
    Institution,
    MessageKind,
    Pilot,
    Program,
    Role,
)
from sandbox.notify import service as notify
from sandbox.pilot import repository as pilot_repository
from sandbox.pilot.service import create_pilot
from sandbox.program.service import get_program, policy_document, policy_in_force
from sandbox.rules.eligibility import check_eligibility
from sandbox.rules.limits import Problem, check_application, grant_quotas, grant_scope
from sandbox.rules.policy import PolicyDocument

S = ApplicationState
TRANSITIONS: TransitionTable[ApplicationState] = TransitionTable(
    "application",
    {
        S.draft: {"edit": S.draft, "submit": S.submitted, "withdraw": S.withdrawn},
        S.submitted: {"start-review": S.under_review, "withdraw": S.withdrawn},
        S.under_review: {"request-info": S.info_requested, "recommend": S.recommended, "withdraw": S.withdrawn},
        S.info_requested: {"edit": S.info_requested, "respond": S.under_review, "withdraw": S.withdrawn},
        S.recommended: {"approve": S.approved, "reject": S.rejected, "withdraw": S.withdrawn},
    },
)
COMMAND_ROLES: Mapping[str, tuple[Role, ...]] = {
    "edit": (Role.institution_admin,),
    "submit": (Role.institution_admin,),
    "withdraw": (Role.institution_admin,),
    "respond": (Role.institution_admin,),
    "start-review": (Role.reviewer, Role.approver),
    "request-info": (Role.reviewer, Role.approver),
    "recommend": (Role.reviewer, Role.approver),
    "approve": (Role.approver,),
    "reject": (Role.approver,),
}
EDITABLE = (
    "title",
    "description",
    "requested_scope",
    "requested_quotas",
    "start_on",
    "end_on",
    "risk_controls",
    "consumer_protection",
    "exit_plan",
)


class Ineligible(Conflict):
    type_slug = "ineligible"
    title = "Institution not eligible"


class FourEyesViolation(PermissionDenied):
    type_slug = "four-eyes"
    title = "Four-eyes principle"


def _visible(application: Application | None, actor: Actor) -> Application:
    if application is None or (actor.is_institution and application.institution_id != actor.institution_id):
        raise NotFound("no such application")
    return application


def get_application(session: Session, application_id: uuid.UUID, *, actor: Actor) -> Application:
    return _visible(session.get(Application, application_id), actor)


def list_applications(
    session: Session, *, actor: Actor, state: str | None, program: str | None, offset: int, limit: int
) -> tuple[Sequence[Application], int]:
    return repository.list_page(
        session,
        institution_id=actor.institution_id if actor.is_institution else None,
        state=state,
        program_id=get_program(session, program).id if program else None,
        offset=offset,
        limit=limit,
    )


def allowed_commands(application: Application, actor: Actor) -> list[str]:
    commands = [c for c in TRANSITIONS.allowed(application.state) if actor.role in COMMAND_ROLES.get(c, ())]
    if application.recommended_by_id is not None and application.recommended_by_id == actor.user_id:
        commands = [c for c in commands if c not in ("approve", "reject")]
    return commands


def _policy_now(session: Session, program: Program, at: datetime) -> PolicyDocument:
    return policy_document(policy_in_force(session, program, bureau_date(at)))


def _refuse(problems: list[Problem]) -> None:
    if problems:
        raise InvalidInput(
            f"{len(problems)} problem(s) with the application: "
            + "; ".join(f"{'.'.join(p.loc)}: {p.msg}" for p in problems[:5]),
            [p.as_error() for p in problems],
        )


def _quotas_json(quotas: Mapping[str, Decimal]) -> dict[str, str]:
    return {name: format(amount, "f") for name, amount in quotas.items()}


def _quotas(application: Application) -> dict[str, Decimal]:
    return {name: Decimal(value) for name, value in application.requested_quotas.items()}


def _check_against_policy(policy: PolicyDocument, application: Application) -> None:
    _refuse(
        check_application(
            policy,
            scope=application.requested_scope,
            quotas=_quotas(application),
            start_on=application.start_on,
            end_on=application.end_on,
        )
    )


def _command(
    session: Session, application_id: uuid.UUID, command: str, *, actor: Actor, expected_version: int | None
) -> tuple[Application, ApplicationState]:
    """Load (locked), check tenancy, role, If-Match and the transition table, in that order."""
    application = _visible(repository.get_for_update(session, application_id), actor)
    actor.require(*COMMAND_ROLES[command], doing=f"{command} an application")
    check_version("application", application.version, expected_version)
    return application, TRANSITIONS.target(application.state, command)


def _move(
    session: Session,
    application: Application,
    target: ApplicationState,
    command: str,
    *,
    actor: Actor,
    at: datetime,
    details: Mapping[str, Any] | None = None,
) -> Application:
    before = application.state
    application.state = target
    application.updated_at = at
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action=f"application.{command}",
        object_type="application",
        object_id=application.id,
        before={"state": before},
        after={"state": target, **dict(details or {})},
    )
    return application


def create_application(session: Session, data: ApplicationCreate, *, actor: Actor, at: datetime) -> Application:
    actor.require(Role.institution_admin, doing="create an application")
    if actor.institution_id is None:
        raise PermissionDenied("only an institution's users can apply")
    try:
        program = get_program(session, data.program)
    except NotFound:
        raise InvalidInput(
            f"unknown program {data.program!r}",
            [{"loc": ["body", "program"], "msg": "unknown program", "type": "unknown"}],
        ) from None
    application = Application(
        institution_id=actor.institution_id,
        program_id=program.id,
        state=ApplicationState.draft,
        title=data.title,
        description=data.description,
        requested_scope=data.requested_scope,
        requested_quotas=_quotas_json(data.requested_quotas),
        start_on=data.start_on,
        end_on=data.end_on,
        risk_controls=data.risk_controls,
        consumer_protection=data.consumer_protection,
        exit_plan=data.exit_plan,
        created_by_id=actor.user_id,
        created_at=at,
        updated_at=at,
    )
    _check_against_policy(_policy_now(session, program, at), application)
    session.add(application)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="application.create",
        object_type="application",
        object_id=application.id,
        after={"state": application.state, "program": program.code, "title": data.title},
    )
    return application


def update_application(
    session: Session,
    application_id: uuid.UUID,
    data: ApplicationUpdate,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> Application:
    application, _ = _command(session, application_id, "edit", actor=actor, expected_version=expected_version)
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise InvalidInput(f"{key} cannot be cleared", [{"loc": ["body", key], "msg": "may not be null"}])
    if "requested_quotas" in changes:
        changes["requested_quotas"] = _quotas_json(changes["requested_quotas"])
    before = {key: getattr(application, key) for key in changes}
    for key, value in changes.items():
        setattr(application, key, value)
    program = session.get(Program, application.program_id)
    assert program is not None
    _check_against_policy(_policy_now(session, program, at), application)
    application.updated_at = at
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="application.edit",
        object_type="application",
        object_id=application.id,
        before=before,
        after=changes,
    )
    return application


def submit(
    session: Session, application_id: uuid.UUID, *, actor: Actor, at: datetime, expected_version: int | None
) -> Application:
    """Re-check the request against the policy in force today, then eligibility: refused with every
    failed criterion listed, or submitted with the full result recorded."""
    application, target = _command(session, application_id, "submit", actor=actor, expected_version=expected_version)
    program = session.get(Program, application.program_id)
    institution = session.get(Institution, application.institution_id)
    assert program is not None and institution is not None
    today = bureau_date(at)
    version = policy_in_force(session, program, today)
    policy = policy_document(version)
    _check_against_policy(policy, application)
    if application.start_on < today:
        _refuse([Problem(("start_on",), f"is in the past; a pilot can start on {today.isoformat()} at the earliest")])
    participants = pilot_repository.live_participants(session, program.id)
    criteria = check_eligibility(
        policy.eligibility,
        institution_facts(institution),
        as_of=today,
        other_participants=len(participants - {institution.id}),
        already_participating=institution.id in participants,
    )
    failed = [c for c in criteria if not c.met]
    if failed:
        raise Ineligible(
            f"{institution.code} is not eligible for {program.code}: " + "; ".join(c.detail for c in failed),
            failed_criteria=[{"criterion": c.name, "detail": c.detail} for c in failed],
            policy_version=version.version,
        )
    application.policy_version_id = version.id
    application.eligibility = {
        "checked_on": today.isoformat(),
        "policy_version": version.version,
        "content_hash": version.content_hash,
        "criteria": [{"criterion": c.name, "met": c.met, "detail": c.detail} for c in criteria],
    }
    application.submitted_at = at
    return _move(
        session, application, target, "submit", actor=actor, at=at, details={"policy_version": version.version}
    )


def start_review(
    session: Session, application_id: uuid.UUID, *, actor: Actor, at: datetime, expected_version: int | None
) -> Application:
    application, target = _command(
        session, application_id, "start-review", actor=actor, expected_version=expected_version
    )
    return _move(session, application, target, "start-review", actor=actor, at=at)


def _add_message(
    session: Session, application: Application, kind: MessageKind, body: str, *, actor: Actor, at: datetime
) -> ApplicationMessage:
    assert actor.user_id is not None
    message = ApplicationMessage(
        application_id=application.id, author_id=actor.user_id, kind=kind, body=body, created_at=at
    )
    session.add(message)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action=f"application.message.{kind}",
        object_type="application",
        object_id=application.id,
        after={"message_id": message.id, "kind": kind},
    )
    return message


def request_info(
    session: Session,
    application_id: uuid.UUID,
    message: str,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> Application:
    application, target = _command(
        session, application_id, "request-info", actor=actor, expected_version=expected_version
    )
    _add_message(session, application, MessageKind.question, message, actor=actor, at=at)
    return _move(session, application, target, "request-info", actor=actor, at=at)


def respond(
    session: Session,
    application_id: uuid.UUID,
    message: str,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> Application:
    application, target = _command(session, application_id, "respond", actor=actor, expected_version=expected_version)
    program = session.get(Program, application.program_id)
    assert program is not None
    _check_against_policy(_policy_now(session, program, at), application)  # edits made while answering
    _add_message(session, application, MessageKind.answer, message, actor=actor, at=at)
    return _move(session, application, target, "respond", actor=actor, at=at)


# Who may write a note on an application's thread (the institution's administrator and the bureau's
# case roles).
MESSAGE_ROLES = (Role.reviewer, Role.approver, Role.supervisor, Role.institution_admin)


def post_message(
    session: Session, application_id: uuid.UUID, body: str, *, actor: Actor, at: datetime
) -> ApplicationMessage:
    """A note on the thread outside the request-info/respond cycle (either side may write)."""
    application = get_application(session, application_id, actor=actor)
    actor.require(*MESSAGE_ROLES, doing="write on an application's thread")
    if application.state in (S.approved, S.rejected, S.withdrawn):
        raise Conflict(f"the application is {application.state}; its thread is closed", current_state=application.state)
    return _add_message(session, application, MessageKind.note, body, actor=actor, at=at)


def list_messages(session: Session, application_id: uuid.UUID, *, actor: Actor) -> Sequence[ApplicationMessage]:
    return repository.messages(session, get_application(session, application_id, actor=actor).id)


def recommend(
    session: Session,
    application_id: uuid.UUID,
    recommendation: str,
    reason: str,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> Application:
    application, target = _command(session, application_id, "recommend", actor=actor, expected_version=expected_version)
    application.recommendation = recommendation
    application.recommendation_reason = reason
    application.recommended_by_id = actor.user_id
    application.recommended_at = at
    return _move(
        session,
        application,
        target,
        "recommend",
        actor=actor,
        at=at,
        details={"recommendation": recommendation, "reason": reason},
    )


def _decide(
    session: Session, application_id: uuid.UUID, command: str, *, actor: Actor, expected_version: int | None
) -> tuple[Application, ApplicationState]:
    application, target = _command(session, application_id, command, actor=actor, expected_version=expected_version)
    if application.recommended_by_id == actor.user_id:
        raise FourEyesViolation(
            "you recommended this application; the decision must be taken by another approver",
            recommended_by=str(application.recommended_by_id),
        )
    return application, target


def approve(
    session: Session,
    application_id: uuid.UUID,
    body: ApproveBody,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> tuple[Application, Pilot]:
    application, target = _decide(session, application_id, "approve", actor=actor, expected_version=expected_version)
    if application.recommendation == "reject" and not body.reason:
        _refuse([Problem(("reason",), "approving against a 'reject' recommendation needs a reason")])
    program = session.get(Program, application.program_id)
    assert program is not None
    policy = _policy_now(session, program, at)
    scope, scope_problems = grant_scope(application.requested_scope, body.granted_scope)
    quotas, quota_problems = grant_quotas(policy, _quotas(application), body.granted_quotas)
    _refuse(scope_problems + quota_problems)
    application.decided_by_id = actor.user_id
    application.decided_at = at
    application.decision_reason = body.reason
    _move(session, application, target, "approve", actor=actor, at=at, details={"reason": body.reason})
    pilot = create_pilot(
        session,
        application=application,
        policy=policy,
        granted_scope=scope,
        granted_quotas=quotas,
        conditions=list(body.conditions),
        actor=actor,
        at=at,
    )
    notify.application_decided(session, application, pilot, at=at)
    return application, pilot


def reject(
    session: Session,
    application_id: uuid.UUID,
    reason: str,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> Application:
    application, target = _decide(session, application_id, "reject", actor=actor, expected_version=expected_version)
    application.decided_by_id = actor.user_id
    application.decided_at = at
    application.decision_reason = reason
    _move(session, application, target, "reject", actor=actor, at=at, details={"reason": reason})
    notify.application_decided(session, application, None, at=at)
    return application


def withdraw(
    session: Session,
    application_id: uuid.UUID,
    reason: str,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None,
) -> Application:
    application, target = _command(session, application_id, "withdraw", actor=actor, expected_version=expected_version)
    application.decision_reason = reason
    return _move(session, application, target, "withdraw", actor=actor, at=at, details={"reason": reason})
