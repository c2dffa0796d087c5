"""The audit trail pages (bureau users only, as the API's GET /audit): any object's entries, newest
first, each with its before/after fields and its place in the hash chain; the latest entries of
all objects; and a check of the whole chain."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from sandbox.actor import Actor
from sandbox.api.deps import DbSession
from sandbox.audit import repository
from sandbox.audit.verify import verify_chain
from sandbox.errors import InvalidInput, PermissionDenied
from sandbox.models import AuditEntry
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import WebRoute, redirect, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

PAGE_SIZE = 50
# The kinds of object the services write to the log (``object_type`` of ``audit.log.record``).
OBJECT_TYPES = (
    "api_token",
    "application",
    "breaker",
    "exemption",
    "filing",
    "institution",
    "pilot",
    "policy_version",
    "program",
    "risk_event",
    "user",
)
# Objects that have a page of their own.
PAGES = {
    "application": "/applications/{}",
    "breaker": "/breakers/{}",
    "exemption": "/exemptions/{}",
    "filing": "/filings/{}",
    "pilot": "/pilots/{}",
}
HASH_SHOWN = 12


def _require_bureau(actor: Actor) -> None:
    # The same rule as the API's GET /audit (sandbox.api.deps.get_bureau_actor).
    if not actor.is_bureau:
        raise PermissionDenied("only bureau users may read the audit trail")


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class Change:
    name: str
    before: str
    after: str
    changed: bool


@dataclass(frozen=True)
class EntryView:
    entry: AuditEntry
    changes: list[Change]
    object_url: str | None
    trail_url: str


def _changes(entry: AuditEntry) -> list[Change]:
    before, after = entry.before or {}, entry.after or {}
    names = list(dict.fromkeys([*before, *after]))
    return [
        Change(name, _shown(before.get(name)), _shown(after.get(name)), before.get(name) != after.get(name))
        for name in names
    ]


def _object_url(object_type: str, object_id: str) -> str | None:
    pattern = PAGES.get(object_type)
    return pattern.format(object_id) if pattern else None


def _trail_url(object_type: str, object_id: str) -> str:
    return "/audit?" + urlencode({"object_type": object_type, "object_id": object_id})


def _filters(object_type: str | None, object_id: str | None) -> tuple[str | None, str | None]:
    """The trail's filters, checked: a known object type and an id in UUID form."""
    kind = object_type.strip() if object_type and object_type.strip() else None
    ident = object_id.strip() if object_id and object_id.strip() else None
    if kind is not None and kind not in OBJECT_TYPES:
        message = f"unknown object type {kind!r}; the audit trail knows: {', '.join(OBJECT_TYPES)}"
        raise InvalidInput(message, [{"loc": ["query", "object_type"], "msg": message}])
    if ident is not None:
        if kind is None:
            message = "choose the object type of the object id"
            raise InvalidInput(message, [{"loc": ["query", "object_type"], "msg": message}])
        try:
            ident = str(uuid.UUID(ident))
        except ValueError:
            message = f"object id {ident[:80]!r} is not a UUID (such as 0190f3a2-7b1c-7d2e-8f00-1a2b3c4d5e6f)"
            raise InvalidInput(message, [{"loc": ["query", "object_id"], "msg": message}]) from None
    return kind, ident


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=100)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    _require_bureau(actor)
    kind, ident = _filters(object_type, object_id)
    fetched, total = repository.latest_entries(
        session, object_type=kind, object_id=ident, before_seq=before, limit=PAGE_SIZE + 1
    )
    entries = fetched[:PAGE_SIZE]
    views = [
        EntryView(e, _changes(e), _object_url(e.object_type, e.object_id), _trail_url(e.object_type, e.object_id))
        for e in entries
    ]
    older = None
    if len(fetched) > PAGE_SIZE:
        params = {k: v for k, v in (("object_type", kind), ("object_id", ident)) if v}
        params["before"] = str(entries[-1].seq)
        older = "/audit?" + urlencode(params)
    newer = None
    if before is not None:
        params = {k: v for k, v in (("object_type", kind), ("object_id", ident)) if v}
        newer = "/audit?" + urlencode(params) if params else "/audit"
    context = {
        "entries": views,
        "total": total,
        "object_type": kind,
        "object_id": ident,
        "object_url": _object_url(kind, ident) if kind and ident else None,
        "object_types": OBJECT_TYPES,
        "older": older,
        "newer": newer,
        "paged": before is not None,
        "hash_shown": HASH_SHOWN,
    }
    return render(request, "audit/trail.html", context, actor=actor)


@router.post("/audit/verify")
def verify(request: Request, session: DbSession, actor: RequiredWebActor) -> Response:
    _require_bureau(actor)
    report = verify_chain(session)
    if report.ok:
        return redirect(
            request, "/audit", notice=f"Audit chain verified: {report.checked} entries checked, every link intact."
        )
    where = f" at entry {report.first_bad_seq}" if report.first_bad_seq is not None else ""
    return redirect(
        request,
        "/audit",
        error=f"Audit chain broken{where}: {report.problem}. {report.checked} entries checked before it.",
    )
