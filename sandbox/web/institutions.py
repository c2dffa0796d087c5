"""Institution pages: the list (bureau users see every institution, an institution's users only
their own), each institution's page with the facts the programs' eligibility rules read, its
contacts, pilots and applications, and the forms to register an institution (bureau admin) and
to change one (bureau admin: every field; institution admin: its contacts).

The institution service decides: another institution's page is "not found", a field the actor may
not change is refused, a stale form (its ``version``) is refused. The edit form only offers the
fields the service lets the signed-in role change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from sandbox.actor import Actor
from sandbox.api.deps import DbSession, Now
from sandbox.application import repository as application_repository
from sandbox.errors import Conflict, InvalidInput, PermissionDenied
from sandbox.institution import service
from sandbox.institution.schemas import REQUIRED_ON_UPDATE, InstitutionCreate, InstitutionUpdate
from sandbox.models import Institution, InstitutionStatus, InstitutionType, Role
from sandbox.pilot import repository as pilot_repository
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import FormVersion, WebRoute, id_from_url, number, paging, parse_form, redirect, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

PAGE_SIZE = 50
RECENT = 50  # pilots and applications listed on an institution's page
FIELDS = {
    "code": "Code",
    "name": "Name",
    "type": "Type",
    "uscc": "Unified social credit code",
    "lei": "LEI",
    "region": "Region",
    "rating": "Regulatory rating",
    "capital_adequacy_ratio": "Capital-adequacy ratio",
    "npl_ratio": "NPL ratio",
    "solvency_comprehensive": "Comprehensive solvency ratio",
    "solvency_core": "Core solvency ratio",
    "last_major_penalty_on": "Last major penalty on",
    "status": "Status",
    "contact_emails": "Contact emails",
}
CREATE_FIELDS = tuple(name for name in FIELDS if name in InstitutionCreate.model_fields)
UPDATE_FIELDS = tuple(name for name in FIELDS if name in InstitutionUpdate.model_fields)
RATIO_FIELDS = ("capital_adequacy_ratio", "npl_ratio", "solvency_comprehensive", "solvency_core")


def _require_registrar(actor: Actor) -> None:
    # The rule of service.create_institution, checked before the form is read or shown.
    actor.require(Role.admin, doing="registering an institution")


def may_register(actor: Actor) -> bool:
    return actor.role is Role.admin


def editable_fields(actor: Actor) -> tuple[str, ...]:
    """The fields the edit form offers: the rule of ``service.update_institution`` (a bureau admin
    any field, an institution admin only ``INSTITUTION_ADMIN_FIELDS``), which still decides."""
    if actor.role is Role.admin:
        return UPDATE_FIELDS
    if actor.role is Role.institution_admin:
        return tuple(name for name in UPDATE_FIELDS if name in service.INSTITUTION_ADMIN_FIELDS)
    return ()


def _require_editor(actor: Actor) -> tuple[str, ...]:
    """The fields the actor may change; a role that may change none is refused before the form
    is shown or read."""
    fields = editable_fields(actor)
    if not fields:
        raise PermissionDenied(
            "changing an institution needs the role admin (an institution admin may change its contacts)"
        )
    return fields


def percent(value: Decimal | None) -> str:
    """A stored fraction as a percentage, exactly: 0.162 -> 16.2%, 2.1 -> 210%."""
    if value is None:
        return ""
    shown = (value * 100).normalize()
    return f"{shown:f}%"


# --- the list ------------------------------------------------------------------------------------


@router.get("/institutions", response_class=HTMLResponse)
def institutions_page(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    offset = (page - 1) * PAGE_SIZE
    rows, total = service.list_institutions(session, actor=actor, offset=offset, limit=PAGE_SIZE)
    context = {
        "rows": rows,
        **paging("/institutions", page=page, size=PAGE_SIZE, shown=len(rows), total=total),
        "may_register": may_register(actor),
        "percent": percent,
    }
    return render(request, "institutions/list.html", context, actor=actor)


@router.get("/institutions/mine")
def my_institution(request: Request, actor: RequiredWebActor) -> Response:
    """An institution's user goes to their institution's page; a bureau user to the list."""
    if actor.institution_id is not None:
        return redirect(request, f"/institutions/{actor.institution_id}")
    return redirect(request, "/institutions")


# --- the form (register and edit) ------------------------------------------------------------------


def _values_of(institution: Institution) -> dict[str, str]:
    """An institution's stored values as the form shows them."""
    values: dict[str, str] = {}
    for name in FIELDS:
        value = getattr(institution, name)
        if value is None:
            values[name] = ""
        elif name == "contact_emails":
            values[name] = "\n".join(value)
        elif isinstance(value, Decimal):
            values[name] = number(value)
        elif hasattr(value, "isoformat"):
            values[name] = value.isoformat()
        else:
            values[name] = str(value)
    return values


async def posted_form(request: Request) -> FormData:
    """The whole posted form (already read for the declared fields)."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


def _max_length(name: str) -> int:
    return 20_000 if name == "contact_emails" else 1000


def _typed(fields: Mapping[str, str | None]) -> dict[str, str]:
    """The values a posted form carried, as typed (for showing the form again)."""
    return {name: value for name, value in fields.items() if value is not None}


def _body(typed: Mapping[str, str], *, blank_clears: bool) -> dict[str, Any]:
    """The request body the form's text stands for: one contact email per line, the rating a
    number; a blank optional field is absent (register) or cleared (edit)."""
    body: dict[str, Any] = {}
    for name, text in typed.items():
        if name == "contact_emails":
            body[name] = [line.strip() for line in text.splitlines() if line.strip()]
        elif not text.strip():
            if blank_clears:
                body[name] = None
        elif name == "rating" and text.strip().isdigit():
            body[name] = int(text.strip())
        else:
            body[name] = text.strip()
    return body


def _field_errors(exc: InvalidInput | Conflict) -> dict[str, str]:
    """A refusal by field, each naming the field by its label; what has no field goes on top."""
    errors: dict[str, str] = {}
    if isinstance(exc, InvalidInput):
        for error in exc.extra.get("errors", []):
            loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "form")]
            name = loc[0] if loc else ""
            text = str(error.get("msg", "is not valid"))
            if name in FIELDS and not text.startswith(FIELDS[name]):
                text = f"{FIELDS[name]}: {text.rstrip('.')}."
            errors.setdefault(name if name in FIELDS else "", text)
    elif exc.extra.get("field") in FIELDS:
        errors[str(exc.extra["field"])] = f"{FIELDS[str(exc.extra['field'])]}: {exc.detail}."
    if not errors:
        detail = exc.detail[:1].upper() + exc.detail[1:]
        errors[""] = detail if detail.endswith(".") else detail + "."
    return errors


def _form_page(
    request: Request,
    actor: Actor,
    *,
    institution: Institution | None,
    fields: Sequence[str],
    values: Mapping[str, str],
    errors: Mapping[str, str],
    version: int | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "institution": institution,
        # A form shown again keeps the version it was first read at, so a change made meanwhile
        # by someone else is still detected.
        "form_version": version if version is not None else (institution.version if institution else None),
        "fields": list(fields),
        "labels": FIELDS,
        "values": dict(values),
        "errors": dict(errors),
        "types": list(InstitutionType),
        "statuses": list(InstitutionStatus),
        "ratio_fields": RATIO_FIELDS,
        "max_contacts": 20,
    }
    template = "institutions/edit.html" if institution is not None else "institutions/new.html"
    return render(request, template, context, actor=actor, status_code=status_code)


@router.get("/institutions/new", response_class=HTMLResponse)
def new_institution_page(request: Request, actor: RequiredWebActor) -> Response:
    _require_registrar(actor)
    return _form_page(request, actor, institution=None, fields=CREATE_FIELDS, values={}, errors={})


@router.post("/institutions", response_class=HTMLResponse)
def create_institution(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    code: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    type: Annotated[str, Form(max_length=100)] = "",
    uscc: Annotated[str, Form(max_length=100)] = "",
    lei: Annotated[str, Form(max_length=100)] = "",
    region: Annotated[str, Form(max_length=1000)] = "",
    rating: Annotated[str, Form(max_length=20)] = "",
    capital_adequacy_ratio: Annotated[str, Form(max_length=100)] = "",
    npl_ratio: Annotated[str, Form(max_length=100)] = "",
    solvency_comprehensive: Annotated[str, Form(max_length=100)] = "",
    solvency_core: Annotated[str, Form(max_length=100)] = "",
    last_major_penalty_on: Annotated[str, Form(max_length=40)] = "",
    contact_emails: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """A refused form is shown again with the values typed and each field's error (422)."""
    _require_registrar(actor)
    typed = _typed(
        {
            "code": code,
            "name": name,
            "type": type,
            "uscc": uscc,
            "lei": lei,
            "region": region,
            "rating": rating,
            "capital_adequacy_ratio": capital_adequacy_ratio,
            "npl_ratio": npl_ratio,
            "solvency_comprehensive": solvency_comprehensive,
            "solvency_core": solvency_core,
            "last_major_penalty_on": last_major_penalty_on,
            "contact_emails": contact_emails,
        }
    )
    try:
        data = parse_form(InstitutionCreate, _body(typed, blank_clears=False), FIELDS)
        institution = service.create_institution(session, data, actor=actor, at=now)
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        errors = _field_errors(exc)
        return _form_page(
            request, actor, institution=None, fields=CREATE_FIELDS, values=typed, errors=errors, status_code=422
        )
    notice = f"Institution {institution.code} registered."
    return redirect(request, f"/institutions/{institution.id}", notice=notice)


@router.get("/institutions/{institution_id}/edit", response_class=HTMLResponse)
def edit_institution_page(
    request: Request, institution_id: str, session: DbSession, actor: RequiredWebActor
) -> Response:
    institution = service.get_institution(session, id_from_url(institution_id, "institution"), actor=actor)
    fields = _require_editor(actor)
    values = _values_of(institution)
    return _form_page(request, actor, institution=institution, fields=fields, values=values, errors={})


@router.post("/institutions/{institution_id}/edit", response_class=HTMLResponse)
def update_institution(
    request: Request,
    institution_id: str,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    form: PostedForm,
    version: FormVersion = None,
) -> Response:
    """Only the fields the form sent are changed (the service refuses those the actor may not
    change); a blank optional field clears it. A refused form is shown again with the values
    typed and each field's error (422); a stale one goes back to the form with the reason."""
    target = id_from_url(institution_id, "institution")
    _require_editor(actor)
    # The whole form, not declared fields: a blank field (clear it) differs from an absent one
    # (leave it), and FastAPI reads both as absent.
    posted = {name: form.get(name) for name in UPDATE_FIELDS if name in form}
    typed = {name: value for name, value in posted.items() if isinstance(value, str)}
    try:
        too_long = [n for n, v in posted.items() if not isinstance(v, str) or len(v) > _max_length(n)]
        if too_long:
            problems: list[dict[str, Any]] = [
                {"loc": ["body", n], "msg": f"{FIELDS[n]}: at most {_max_length(n)} characters of text."}
                for n in too_long
            ]
            raise InvalidInput(" ".join(str(p["msg"]) for p in problems), problems)
        blank = [n for n in REQUIRED_ON_UPDATE if n != "contact_emails" and n in typed and not typed[n].strip()]
        if blank:
            missing: list[dict[str, Any]] = [{"loc": ["body", n], "msg": f"{FIELDS[n]} is required."} for n in blank]
            raise InvalidInput(" ".join(str(e["msg"]) for e in missing), missing)
        data = parse_form(InstitutionUpdate, _body(typed, blank_clears=True), FIELDS)
        institution = service.update_institution(session, target, data, actor=actor, at=now, expected_version=version)
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        errors = _field_errors(exc)
        institution = service.get_institution(session, target, actor=actor)
        fields = editable_fields(actor)
        return _form_page(
            request,
            actor,
            institution=institution,
            fields=fields,
            values=typed,
            errors=errors,
            version=version,
            status_code=422,
        )
    return redirect(request, f"/institutions/{institution.id}", notice=f"Institution {institution.code} saved.")


# --- an institution's page -----------------------------------------------------------------------


def _page_context(session: Session, actor: Actor, institution: Institution) -> dict[str, Any]:
    pilots, pilots_total = pilot_repository.page(
        session, pilot_repository.pilots_query(institution_id=institution.id, state=None, program_id=None), 0, RECENT
    )
    applications, applications_total = application_repository.list_page(
        session, institution_id=institution.id, state=None, program_id=None, offset=0, limit=RECENT
    )
    fields = editable_fields(actor)
    return {
        "institution": institution,
        "facts": service.institution_facts(institution),
        "percent": percent,
        "pilots": pilots,
        "pilots_total": pilots_total,
        "pilot_labels": pilot_repository.listing_labels(session, pilots),
        "pilot_references": {pilot.id: pilot.reference for pilot in pilots},
        "applications": applications,
        "applications_total": applications_total,
        "application_labels": application_repository.labels(session, applications),
        "may_edit": bool(fields),
        "edit_text": "Edit institution" if fields == UPDATE_FIELDS else "Edit contact emails",
        "audit_url": f"/audit?object_type=institution&object_id={institution.id}",
    }


@router.get("/institutions/{institution_id}", response_class=HTMLResponse)
def institution_page(request: Request, institution_id: str, session: DbSession, actor: RequiredWebActor) -> Response:
    institution = service.get_institution(session, id_from_url(institution_id, "institution"), actor=actor)
    return render(request, "institutions/detail.html", _page_context(session, actor, institution), actor=actor)


__all__ = ["router"]
