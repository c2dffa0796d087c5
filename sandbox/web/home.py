"""The home page: bureau staff get their work queues, institution users their pilots, the bureau's
questions and their filings.

Each queue is capped at QUEUE_CAP rows with a "showing N of M" line and a link to the full list;
what belongs in a queue comes from the services' own states and tables (an application is in the
bureau's queue when its state has a command that a bureau role gives).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.api.deps import DbSession
from sandbox.application import repository as application_repository
from sandbox.application import service as application_service
from sandbox.breaker import service as breaker_service
from sandbox.exemption import service as exemption_service
from sandbox.filing.due import due_filings, overdue_filings
from sandbox.models import Application, ApplicationState, BreakerState, Role
from sandbox.pilot import repository as pilot_repository
from sandbox.pilot.service import list_pilots
from sandbox.web.applications import COMMAND_ORDER
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import ROLE_LABELS, WebRoute, bureau_today, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

QUEUE_CAP = 10
# Commands as the application page's buttons say them.
COMMAND_WORDS = {
    "start-review": "start review",
    "request-info": "request information",
    "recommend": "recommend",
    "approve": "approve",
    "reject": "reject",
    "respond": "send response",
    "submit": "submit",
    "withdraw": "withdraw",
}
ROLE_WORDS = {Role.reviewer: "reviewer", Role.approver: "approver", Role.supervisor: "supervisor", Role.admin: "admin"}


def _in_order(commands: Iterable[str]) -> list[str]:
    return sorted(commands, key=lambda c: COMMAND_ORDER.index(c) if c in COMMAND_ORDER else len(COMMAND_ORDER))


def _bureau_commands(state: str) -> list[str]:
    """The commands in ``state`` that a bureau role gives (the service's transition table)."""
    return _in_order(
        command
        for command in application_service.TRANSITIONS.allowed(state)
        if any(role.is_bureau for role in application_service.COMMAND_ROLES.get(command, ()))
    )


# Applications waiting for a bureau step: submitted, under review, recommended.
BUREAU_STEP_STATES = tuple(state.value for state in ApplicationState if _bureau_commands(state))


@dataclass(frozen=True)
class NextStep:
    who: str
    what: str


def next_step(application: Application, recommender: str | None) -> NextStep:
    commands = _bureau_commands(application.state)
    roles = sorted(
        {role for c in commands for role in application_service.COMMAND_ROLES[c] if role.is_bureau},
        key=lambda role: list(Role).index(role),
    )
    who = " or ".join(ROLE_WORDS.get(role, role.value) for role in roles).capitalize()
    deciding = {"approve", "reject"} & set(commands)
    if deciding and recommender:
        who = f"{who} other than {recommender} (four eyes)"
    what = " or ".join(COMMAND_WORDS.get(c, c) for c in commands if c != "withdraw")
    return NextStep(who=who, what=what)


@dataclass(frozen=True)
class Queue:
    rows: Sequence[Any]
    total: int

    @property
    def shown(self) -> int:
        return len(self.rows)


def _bureau_context(session: Session, actor: Actor, request: Request) -> dict[str, Any]:
    applications, _ = application_repository.queue_page(session, states=BUREAU_STEP_STATES, offset=0, limit=QUEUE_CAP)
    counts = application_repository.count_by_state(session, states=BUREAU_STEP_STATES)
    recommenders = application_repository.people(session, [a.recommended_by_id for a in applications])
    application_rows = []
    for application in applications:
        recommender = recommenders.get(application.recommended_by_id) if application.recommended_by_id else None
        mine = [
            COMMAND_WORDS.get(c, c)
            for c in _in_order(application_service.allowed_commands(application, actor))
            if c in _bureau_commands(application.state)
        ]
        application_rows.append(
            {
                "application": application,
                "next": next_step(application, recommender.name if recommender else None),
                "yours": mine,
                # Said only to those whose role decides: for them it is the reason for "none".
                "recommended_by_you": application.recommended_by_id is not None
                and application.recommended_by_id == actor.user_id
                and actor.role in application_service.COMMAND_ROLES["approve"],
            }
        )
    breakers, breakers_total = breaker_service.list_breakers(
        session, actor=actor, pilot_id=None, states=[BreakerState.tripped], offset=0, limit=QUEUE_CAP
    )
    exemptions, exemptions_total = exemption_service.list_exemptions(
        session, actor=actor, states=sorted(exemption_service.UNDECIDED), pilot_id=None, offset=0, limit=QUEUE_CAP
    )
    overdue = overdue_filings(session, actor=actor, as_of=bureau_today(request), calendars=request.app.state.calendars)
    return {
        "applications": Queue(application_rows, sum(counts.values())),
        "application_labels": application_repository.labels(session, applications),
        "application_counts": counts,
        "breakers": Queue(breakers, breakers_total),
        "exemptions": Queue(
            [(item, exemption_service.allowed_commands(item.exemption, actor)) for item in exemptions],
            exemptions_total,
        ),
        "overdue": Queue(overdue[:QUEUE_CAP], len(overdue)),
    }


def _institution_context(session: Session, actor: Actor, request: Request) -> dict[str, Any]:
    pilots, pilots_total = list_pilots(session, actor=actor, state=None, program=None, offset=0, limit=QUEUE_CAP)
    labels = pilot_repository.labels(session, pilots)
    questions, questions_total = application_service.list_applications(
        session, actor=actor, state=ApplicationState.info_requested, program=None, offset=0, limit=QUEUE_CAP
    )
    due = due_filings(session, actor=actor, as_of=bureau_today(request), calendars=request.app.state.calendars)
    return {
        "due": Queue(due[:QUEUE_CAP], len(due)),
        "pilots": Queue([(pilot, labels.get(pilot.id, ("", ""))[0]) for pilot in pilots], pilots_total),
        "questions": Queue(questions, questions_total),
        "question_labels": application_repository.labels(session, questions),
        "may_respond": actor.role in application_service.COMMAND_ROLES["respond"],
        "may_create": actor.role in application_service.COMMAND_ROLES["edit"],
    }


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession, actor: RequiredWebActor) -> Response:
    context: dict[str, Any] = {"cap": QUEUE_CAP, "role_labels": ROLE_LABELS, "step_states": BUREAU_STEP_STATES}
    if actor.is_bureau:
        context.update(_bureau_context(session, actor, request))
    elif actor.is_institution:
        context.update(_institution_context(session, actor, request))
    return render(request, "home.html", context, actor=actor)
