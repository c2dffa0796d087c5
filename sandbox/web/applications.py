"""Pages for applications: the list, a new draft, the edit of an application (a draft, or one the
bureau asked to correct), and the application page with its thread and one form per command the
service allows the signed-in user.

Every rule (who may do what, in which state, four eyes, tenancy, limits) is the service's: the
page shows the forms ``service.allowed_commands`` lists and posts them to the same service
functions the API calls. Forms carry the version the page was rendered with, so a command sent
from a stale page is refused (412) instead of acting on something the user has not seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from sandbox.actor import Actor
from sandbox.api.deps import DbSession, Now
from sandbox.application import repository, service
from sandbox.application.schemas import (
    ApplicationCreate,
    ApplicationUpdate,
    ApproveBody,
    MessageCreate,
    ReasonBody,
    RecommendBody,
)
from sandbox.clock import bureau_date
from sandbox.errors import InvalidInput, SandboxError
from sandbox.models import Application, ApplicationState, Program
from sandbox.program import service as program_service
from sandbox.rules.limits import check_dates, check_requested_quotas, check_requested_scope
from sandbox.rules.numbers import parse_exact
from sandbox.rules.policy import PolicyDocument, Quota
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import ROLE_LABELS, FormVersion, WebRoute, paging, parse_form, redirect, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

PAGE_SIZE = 50
MAX_PROGRAMS = 200
TEXT_FIELDS = ("title", "description", "start_on", "end_on", "risk_controls", "consumer_protection", "exit_plan")
FIELD_LABELS = {
    "program": "Program",
    "title": "Title",
    "description": "Business description",
    "start_on": "Planned start date",
    "end_on": "Planned end date",
    "risk_controls": "Risk controls",
    "consumer_protection": "Consumer protection",
    "exit_plan": "Exit plan",
    "requested_scope": "Business scope",
    "requested_quotas": "Requested quotas",
}
# The forms' field names for each command's body, as their labels say them.
COMMAND_FIELD_LABELS = {
    "message": "Message",
    "reason": "Reason",
    "recommendation": "Recommendation",
    "granted_scope": "Granted scope",
    "granted_quotas": "Granted quotas",
    "conditions": "Conditions",
}
# Commands without a form on this page: "edit" has a page of its own, linked from it.
NO_FORM = frozenset({"edit"})
# The forms in the order of the application's life.
COMMAND_ORDER = (
    "submit",
    "respond",
    "start-review",
    "request-info",
    "recommend",
    "approve",
    "reject",
    "withdraw",
)

B = TypeVar("B", bound=BaseModel)


async def posted_form(request: Request) -> FormData:
    """The whole posted form (already read for the declared fields), for fields named per program."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]
Text = Annotated[str, Form()]


def may_create(actor: Actor) -> bool:
    """Who may draft an application: the roles that may edit a draft (the service's table)."""
    return actor.role in service.COMMAND_ROLES["edit"]


# --- the list ---------------------------------------------------------------------------------


@router.get("/applications", response_class=HTMLResponse)
def list_page(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    state: Annotated[str, Query(max_length=40)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    if state and state not in {s.value for s in ApplicationState}:
        raise InvalidInput(f"unknown state {state!r}; choose one of {', '.join(ApplicationState)}")
    offset = (page - 1) * PAGE_SIZE
    rows, total = service.list_applications(
        session, actor=actor, state=state or None, program=None, offset=offset, limit=PAGE_SIZE
    )
    context = {
        "rows": rows,
        "labels": repository.labels(session, rows),
        **paging("/applications", page=page, size=PAGE_SIZE, shown=len(rows), total=total, filters={"state": state}),
        "state": state,
        "states": list(ApplicationState),
        "may_create": may_create(actor),
    }
    return render(request, "applications/list.html", context, actor=actor)


# --- a new draft --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramFields:
    """What the form asks for one program: its scope universe, its quotas, its maximum duration."""

    code: str
    title: str
    scope: Mapping[str, list[str]]
    quotas: Mapping[str, Quota]
    max_duration_months: int
    policy: PolicyDocument


@dataclass
class DraftForm:
    """The values typed into the form, kept as text so a refused form shows them as they were."""

    program: str
    values: dict[str, str] = field(default_factory=dict)
    scope: dict[str, list[str]] = field(default_factory=dict)
    quotas: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add_error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.general)


def _open_programs(session: Session, today: date) -> list[Program]:
    """Programs with a policy in force today: those an institution can apply to."""
    programs, _ = program_service.list_programs(session, 0, MAX_PROGRAMS)
    in_force = program_service.versions_in_force(session, programs, today)
    return [program for program in programs if program.id in in_force]


def _fields(session: Session, program: Program, today: date) -> ProgramFields:
    policy = program_service.policy_document(program_service.policy_in_force(session, program, today))
    return ProgramFields(
        code=program.code,
        title=program.title,
        scope={dimension: list(values) for dimension, values in policy.scope.items()},
        quotas=dict(policy.quotas),
        max_duration_months=policy.schedule.max_duration_months,
        policy=policy,
    )


def _sentence(text: str) -> str:
    text = text.strip().removeprefix("Value error, ")
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "missing":
        return "Required."
    return _sentence(str(error.get("msg", "is not valid")))


def _key(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "form"))


def _field_name(key: str) -> str:
    """``requested_quotas.exposure_limit`` -> ``Requested quotas (exposure limit)``."""
    base, _, rest = key.partition(".")
    name = FIELD_LABELS.get(base, base.replace("_", " ").capitalize())
    return f"{name} ({rest.replace('_', ' ').replace('.', ' ')})" if rest else name


def _summary(form: DraftForm) -> list[str]:
    """Every problem, named by its field, for the list at the top of a refused form."""
    return [*form.general, *(f"{_field_name(key)}: {' '.join(msgs)}" for key, msgs in form.errors.items())]


def _new_page(
    request: Request,
    session: Session,
    actor: Actor,
    programs: Sequence[Program],
    fields: ProgramFields | None,
    form: DraftForm,
    *,
    status_code: int = 200,
) -> Response:
    context = {
        "programs": programs,
        "fields": fields,
        "form": form,
        "labels": FIELD_LABELS,
        "summary": _summary(form),
        "form_action": "/applications/new",
        "submit_label": "Save draft",
        "version": None,
    }
    return render(request, "applications/new.html", context, actor=actor, status_code=status_code)


@router.get("/applications/new", response_class=HTMLResponse)
def new_page(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    program: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    actor.require(*service.COMMAND_ROLES["edit"], doing="create an application")
    today = bureau_date(now)
    programs = _open_programs(session, today)
    chosen = next((p for p in programs if p.code == program), programs[0] if programs else None)
    fields = _fields(session, chosen, today) if chosen is not None else None
    return _new_page(request, session, actor, programs, fields, DraftForm(program=chosen.code if chosen else ""))


def _read_draft(form: FormData) -> DraftForm:
    draft = DraftForm(program=str(form.get("program", "")).strip())
    for name in TEXT_FIELDS:
        draft.values[name] = str(form.get(name, ""))
    for key in form:
        if key.startswith("scope."):
            draft.scope[key.removeprefix("scope.")] = [str(v) for v in form.getlist(key)]
        elif key.startswith("quota."):
            draft.quotas[key.removeprefix("quota.")] = str(form.get(key, "")).strip()
    return draft


def _draft_body(draft: DraftForm, fields: ProgramFields) -> dict[str, Any]:
    """The JSON body the API would get: empty fields left out, so they read as missing."""
    body: dict[str, Any] = {"program": draft.program}
    for name in TEXT_FIELDS:
        if draft.values.get(name, "").strip():
            body[name] = draft.values[name]
    body["requested_scope"] = {
        dimension: draft.scope[dimension] for dimension in fields.scope if draft.scope.get(dimension)
    }
    body["requested_quotas"] = {name: draft.quotas[name] for name in fields.quotas if draft.quotas.get(name)}
    return body


def _add_limit_problems(draft: DraftForm, fields: ProgramFields) -> None:
    """When some fields do not even parse, the program's limits (the same pure checks the service
    runs) are still reported for those that do, so one answer lists every problem."""
    problems = check_requested_scope(fields.policy, _draft_body(draft, fields)["requested_scope"])
    quotas: dict[str, Decimal] = {}
    for name, text in draft.quotas.items():
        if text:
            try:
                quotas[name] = parse_exact(text)
            except ValueError:
                continue
    problems += check_requested_quotas(fields.policy, quotas)
    try:
        start_on, end_on = date.fromisoformat(draft.values["start_on"]), date.fromisoformat(draft.values["end_on"])
    except (KeyError, ValueError):
        pass
    else:
        problems += check_dates(fields.policy, start_on, end_on)
    for problem in problems:
        key = _key(problem.loc)
        if key not in draft.errors:
            draft.add_error(key, _sentence(problem.msg))


@router.post("/applications/new", response_class=HTMLResponse)
def create(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    form: PostedForm,
) -> Response:
    actor.require(*service.COMMAND_ROLES["edit"], doing="create an application")
    today = bureau_date(now)
    programs = _open_programs(session, today)
    draft = _read_draft(form)
    chosen = next((p for p in programs if p.code == draft.program), None)
    if chosen is None:
        draft.add_error("program", "Choose one of the programs open for applications.")
        first = programs[0] if programs else None
        fields = _fields(session, first, today) if first is not None else None
        draft.program = first.code if first is not None else ""
        return _new_page(request, session, actor, programs, fields, draft, status_code=422)
    fields = _fields(session, chosen, today)
    try:
        body = ApplicationCreate.model_validate(_draft_body(draft, fields))
    except ValidationError as exc:
        for error in exc.errors():
            draft.add_error(_key(error["loc"]), _message(error))
        _add_limit_problems(draft, fields)
        return _new_page(request, session, actor, programs, fields, draft, status_code=422)
    try:
        with session.begin_nested():
            application = service.create_application(session, body, actor=actor, at=now)
    except InvalidInput as exc:
        session.rollback()
        _add_service_errors(draft, exc)
        return _new_page(request, session, actor, programs, fields, draft, status_code=422)
    except SandboxError as exc:
        if exc.status in (401, 403, 404):
            raise
        session.rollback()
        draft.general.append(_sentence(exc.detail))
        return _new_page(request, session, actor, programs, fields, draft, status_code=exc.status)
    return redirect(request, f"/applications/{application.id}", notice="Application saved as a draft.")


def _add_service_errors(draft: DraftForm, exc: InvalidInput) -> None:
    """The service's refusal, each problem next to its field (or above the form if it has none)."""
    for error in exc.extra.get("errors", []):
        draft.add_error(_key(error.get("loc", [])), _message(error))
    if not draft.errors:
        draft.general.append(_sentence(exc.detail))


# --- editing an application ----------------------------------------------------------------------


def _editable(session: Session, application_id: uuid.UUID, actor: Actor) -> Application:
    """The application, if this user may edit it now: tenancy (404), role (403) and state (409,
    naming the state and the commands it allows), checked as the service checks them."""
    application = service.get_application(session, application_id, actor=actor)
    actor.require(*service.COMMAND_ROLES["edit"], doing="edit an application")
    service.TRANSITIONS.target(application.state, "edit")
    return application


def _current(application: Application, program: Program) -> DraftForm:
    """The form filled in with the application as it is."""
    draft = DraftForm(program=program.code)
    for name in TEXT_FIELDS:
        value = getattr(application, name)
        draft.values[name] = value.isoformat() if isinstance(value, date) else str(value)
    draft.scope = {dimension: list(values) for dimension, values in application.requested_scope.items()}
    draft.quotas = {name: str(amount) for name, amount in application.requested_quotas.items()}
    return draft


def _edit_page(
    request: Request,
    actor: Actor,
    application: Application,
    fields: ProgramFields,
    form: DraftForm,
    *,
    version: int,
    stale: bool = False,
    status_code: int = 200,
) -> Response:
    context = {
        "application": application,
        "fields": fields,
        "form": form,
        "labels": FIELD_LABELS,
        "summary": _summary(form),
        "form_action": f"/applications/{application.id}/edit",
        "submit_label": "Save changes",
        "version": version,
        "stale": stale,
    }
    return render(request, "applications/edit.html", context, actor=actor, status_code=status_code)


def _program_of(session: Session, application: Application) -> Program:
    program = session.get(Program, application.program_id)
    assert program is not None
    return program


@router.get("/applications/{application_id}/edit", response_class=HTMLResponse)
def edit_page(
    request: Request, application_id: uuid.UUID, session: DbSession, actor: RequiredWebActor, now: Now
) -> Response:
    application = _editable(session, application_id, actor)
    program = _program_of(session, application)
    fields = _fields(session, program, bureau_date(now))
    return _edit_page(request, actor, application, fields, _current(application, program), version=application.version)


@router.post("/applications/{application_id}/edit", response_class=HTMLResponse)
def edit(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    form: PostedForm,
    version: FormVersion = None,
) -> Response:
    """The whole form replaces the request (a field emptied is refused, not left as it was); the
    version the form was rendered with guards against overwriting a change made since (412)."""
    application = _editable(session, application_id, actor)
    program = _program_of(session, application)
    fields = _fields(session, program, bureau_date(now))
    draft = _read_draft(form)
    draft.program = program.code
    shown = version if version is not None else application.version
    try:
        complete = ApplicationCreate.model_validate(_draft_body(draft, fields))
    except ValidationError as exc:
        for error in exc.errors():
            draft.add_error(_key(error["loc"]), _message(error))
        _add_limit_problems(draft, fields)
        return _edit_page(request, actor, application, fields, draft, version=shown, status_code=422)
    changes = ApplicationUpdate.model_validate(complete.model_dump(exclude={"program"}))
    try:
        service.update_application(session, application.id, changes, actor=actor, at=now, expected_version=version)
    except InvalidInput as exc:
        session.rollback()
        _add_service_errors(draft, exc)
        application = service.get_application(session, application_id, actor=actor)
        return _edit_page(request, actor, application, fields, draft, version=shown, status_code=422)
    except SandboxError as exc:
        if exc.status in (401, 403, 404):
            raise
        session.rollback()
        draft.general.append(_sentence(exc.detail))
        application = service.get_application(session, application_id, actor=actor)
        return _edit_page(
            request, actor, application, fields, draft, version=shown, stale=exc.status == 412, status_code=exc.status
        )
    return redirect(request, _page_of(application_id), notice="Application updated.")


# --- the application page -----------------------------------------------------------------------


@router.get("/applications/{application_id}", response_class=HTMLResponse)
def application_page(
    request: Request, application_id: uuid.UUID, session: DbSession, actor: RequiredWebActor
) -> Response:
    application = service.get_application(session, application_id, actor=actor)
    messages = service.list_messages(session, application.id, actor=actor)
    people = repository.people(
        session,
        [
            application.created_by_id,
            application.recommended_by_id,
            application.decided_by_id,
            *(m.author_id for m in messages),
        ],
    )
    allowed_all = service.allowed_commands(application, actor)
    allowed = set(allowed_all) - NO_FORM
    commands = sorted(allowed, key=lambda c: COMMAND_ORDER.index(c) if c in COMMAND_ORDER else len(COMMAND_ORDER))
    thread_open = bool(service.TRANSITIONS.allowed(application.state))
    context = {
        "application": application,
        "about": repository.describe(session, application),
        "messages": messages,
        "people": people,
        "commands": commands,
        "may_edit": "edit" in allowed_all,
        "may_write": thread_open and actor.role in service.MESSAGE_ROLES,
        "thread_open": thread_open,
        "recommended_by_you": application.recommended_by_id is not None
        and application.recommended_by_id == actor.user_id,
        "quotas": sorted(application.requested_quotas.items()),
        "scope": sorted(application.requested_scope.items()),
        "role_labels": ROLE_LABELS,
    }
    return render(request, "applications/detail.html", context, actor=actor)


def _page_of(application_id: uuid.UUID) -> str:
    return f"/applications/{application_id}"


@router.post("/applications/{application_id}/submit")
def submit(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    version: FormVersion = None,
) -> Response:
    application = service.submit(session, application_id, actor=actor, at=now, expected_version=version)
    checked = (application.eligibility or {}).get("policy_version", "")
    notice = f"Application submitted; eligibility checked against policy version {checked}."
    return redirect(request, _page_of(application.id), notice=notice)


@router.post("/applications/{application_id}/start-review")
def start_review(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    version: FormVersion = None,
) -> Response:
    application = service.start_review(session, application_id, actor=actor, at=now, expected_version=version)
    return redirect(request, _page_of(application.id), notice="Review started.")


@router.post("/applications/{application_id}/request-info")
def request_info(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    version: FormVersion = None,
    message: Text = "",
) -> Response:
    body = parse_form(MessageCreate, {"message": message}, COMMAND_FIELD_LABELS)
    application = service.request_info(
        session, application_id, body.message, actor=actor, at=now, expected_version=version
    )
    return redirect(request, _page_of(application.id), notice="Questions sent to the institution.")


@router.post("/applications/{application_id}/respond")
def respond(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    version: FormVersion = None,
    message: Text = "",
) -> Response:
    body = parse_form(MessageCreate, {"message": message}, COMMAND_FIELD_LABELS)
    application = service.respond(session, application_id, body.message, actor=actor, at=now, expected_version=version)
    return redirect(request, _page_of(application.id), notice="Response sent to the bureau; the review continues.")


@router.post("/applications/{application_id}/recommend")
def recommend(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    version: FormVersion = None,
    recommendation: Text = "",
    reason: Text = "",
) -> Response:
    body = parse_form(RecommendBody, {"recommendation": recommendation, "reason": reason}, COMMAND_FIELD_LABELS)
    application = service.recommend(
        session,
        application_id,
        body.recommendation,
        body.reason,
        actor=actor,
        at=now,
        expected_version=version,
    )
    notice = f"Recommendation recorded: {body.recommendation}. Another approver takes the decision."
    return redirect(request, _page_of(application.id), notice=notice)


def _approve_body(form: FormData, conditions: str, reason: str) -> ApproveBody:
    """The approval as the form states it: the scope kept in each requested dimension (the form
    lists the dimensions, so an emptied one is sent empty and refused), lowered quotas, conditions
    one per line."""
    dimensions = [str(d) for d in form.getlist("scope_dimension")]
    data: dict[str, Any] = {
        "granted_scope": {d: [str(v) for v in form.getlist(f"granted_scope.{d}")] for d in dimensions} or None,
        "granted_quotas": {
            key.removeprefix("granted_quota."): str(form.get(key, "")).strip()
            for key in form
            if key.startswith("granted_quota.") and str(form.get(key, "")).strip()
        }
        or None,
        "conditions": [line.strip() for line in conditions.splitlines() if line.strip()],
        "reason": reason.strip() or None,
    }
    return parse_form(ApproveBody, data, COMMAND_FIELD_LABELS)


@router.post("/applications/{application_id}/approve")
def approve(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    form: PostedForm,
    version: FormVersion = None,
    conditions: Text = "",
    reason: Text = "",
) -> Response:
    body = _approve_body(form, conditions, reason)
    application, pilot = service.approve(session, application_id, body, actor=actor, at=now, expected_version=version)
    notice = f"Application approved; pilot {pilot.reference} created."
    return redirect(request, _page_of(application.id), notice=notice)


@router.post("/applications/{application_id}/reject")
def reject(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    version: FormVersion = None,
    reason: Text = "",
) -> Response:
    body = parse_form(ReasonBody, {"reason": reason}, COMMAND_FIELD_LABELS)
    application = service.reject(session, application_id, body.reason, actor=actor, at=now, expected_version=version)
    return redirect(request, _page_of(application.id), notice="Application rejected.")


@router.post("/applications/{application_id}/withdraw")
def withdraw(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    version: FormVersion = None,
    reason: Text = "",
) -> Response:
    body = parse_form(ReasonBody, {"reason": reason}, COMMAND_FIELD_LABELS)
    application = service.withdraw(session, application_id, body.reason, actor=actor, at=now, expected_version=version)
    return redirect(request, _page_of(application.id), notice="Application withdrawn.")


@router.post("/applications/{application_id}/messages")
def post_message(
    request: Request,
    application_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    message: Text = "",
) -> Response:
    body = parse_form(MessageCreate, {"message": message}, COMMAND_FIELD_LABELS)
    service.post_message(session, application_id, body.message, actor=actor, at=now)
    return redirect(request, _page_of(application_id), notice="Message sent.")


__all__ = ["router"]
