"""The home page: bureau staff get their work queues, institution users their pilots."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sandbox.api.deps import DbSession
from sandbox.models import User
from sandbox.pilot import repository as pilot_repository
from sandbox.pilot.service import list_pilots
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import WebRoute, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

BUREAU_QUEUES = (
    "Applications to review or decide",
    "Breakers tripped and not acknowledged",
    "Exemptions to decide",
    "Overdue filings",
)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession, actor: RequiredWebActor) -> Response:
    user = session.get(User, actor.user_id)
    context: dict[str, Any] = {"queues": BUREAU_QUEUES if actor.is_bureau else (), "pilots": []}
    if actor.is_institution:
        pilots, _total = list_pilots(session, actor=actor, state=None, program=None, offset=0, limit=200)
        labels = pilot_repository.labels(session, pilots)
        context["pilots"] = [(pilot, labels.get(pilot.id, ("", ""))[0]) for pilot in pilots]
    return render(request, "home.html", context, actor=actor, user=user)
