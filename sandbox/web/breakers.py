"""The breaker board and each breaker's page: what tripped and is waiting for a supervisor comes
first; a breaker's page shows its rule, its state and memory, every step it took (with the
evaluation and filing that caused it) and the commands the signed-in user may give."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from sandbox.api.deps import DbSession, Now
from sandbox.breaker import repository, service
from sandbox.breaker.repository import PilotLabel
from sandbox.breaker.schemas import AcknowledgeBody, ResetBody
from sandbox.errors import InvalidInput
from sandbox.models import Breaker, BreakerState, Evaluation, PolicyVersion
from sandbox.pilot.service import get_pilot
from sandbox.program.service import get_program, list_programs, policy_document
from sandbox.rules.engine import compile_policy
from sandbox.web.auth import RequiredWebActor
from sandbox.web.page import FormVersion, WebRoute, paging, parse_form, redirect, render

router = APIRouter(include_in_schema=False, route_class=WebRoute)

# Breakers on one page of the board.
PAGE_SIZE = 100
STATES = [s.value for s in BreakerState]
NOTICES = {"acknowledge": "Breaker acknowledged.", "reset": "Breaker reset; it is now on probation."}


@dataclass(frozen=True)
class RuleInfo:
    """A breaker's rule as the policy version that last judged it wrote it."""

    rule_id: str
    description: str
    message: str
    when: str | None
    clear_when: str | None
    action: str
    severity: str
    trip_after: int
    clear_after: int
    success_threshold: int
    policy_version: str
    builtin: bool


def rule_info(version: PolicyVersion | None, rule_id: str) -> RuleInfo | None:
    if version is None:
        return None
    document = policy_document(version)
    threshold = document.probation.success_threshold
    for rule in document.rules:
        if rule.id == rule_id:
            return RuleInfo(
                rule_id,
                rule.description,
                rule.message,
                rule.when,
                rule.clear_when,
                rule.action.value,
                rule.severity.value,
                rule.trip_after,
                rule.clear_after,
                threshold,
                version.version,
                False,
            )
    compiled = next((r for r in compile_policy(document).rules if r.id == rule_id), None)
    if compiled is None:
        return None
    return RuleInfo(
        rule_id,
        "",
        compiled.message,
        None,
        None,
        compiled.action.value,
        compiled.severity.value,
        compiled.trip_after,
        compiled.clear_after,
        threshold,
        version.version,
        True,
    )


def _choice(value: str | None, allowed: list[str], name: str) -> str | None:
    """A filter's value: empty means any; anything not offered is refused by name."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value not in allowed:
        message = f"{name} {value!r} is not one of: {', '.join(allowed)}"
        raise InvalidInput(message, [{"loc": ["query", name], "msg": message}])
    return value


@dataclass(frozen=True)
class BoardRow:
    breaker: Breaker
    label: PilotLabel
    rule: RuleInfo | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None


@router.get("/breakers", response_class=HTMLResponse)
def board(
    request: Request,
    session: DbSession,
    actor: RequiredWebActor,
    state: str | None = None,
    program: str | None = None,
    pilot: uuid.UUID | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    chosen_state = _choice(state, STATES, "state")
    programs, _ = list_programs(session, 0, 500)
    chosen_program = get_program(session, program.strip()).code if program and program.strip() else None
    the_pilot = get_pilot(session, pilot, actor=actor) if pilot is not None else None
    offset = (page - 1) * PAGE_SIZE
    page_rows, by_state = service.board(
        session,
        actor=actor,
        pilot_id=pilot,
        program_code=chosen_program,
        state=chosen_state,
        offset=offset,
        limit=PAGE_SIZE,
    )
    counts = {s: by_state.get(s, 0) for s in STATES}
    total = counts[chosen_state] if chosen_state is not None else sum(counts.values())
    labels = repository.pilot_labels(session, {b.pilot_id for b in page_rows})
    versions = repository.policy_versions_of(
        session, {b.last_evaluation_id for b in page_rows if b.last_evaluation_id is not None}
    )
    acks = repository.last_acknowledgements(session, [b.id for b in page_rows])
    board_rows = []
    for breaker in page_rows:
        ack = acks.get(breaker.id)
        # Acknowledged: the latest acknowledgement is this trip's. Tripped: not acknowledged yet.
        # Otherwise the acknowledgement of the last trip, if it came after it.
        current = ack is not None and (
            breaker.state == BreakerState.acknowledged
            or (
                breaker.state != BreakerState.tripped
                and (breaker.last_tripped_at is None or ack.at >= breaker.last_tripped_at)
            )
        )
        board_rows.append(
            BoardRow(
                breaker,
                labels[breaker.pilot_id],
                rule_info(
                    versions.get(breaker.last_evaluation_id) if breaker.last_evaluation_id else None, breaker.rule_id
                ),
                ack.actor if current and ack is not None else None,
                ack.at if current and ack is not None else None,
            )
        )
    query = {k: str(v) for k, v in (("state", chosen_state), ("program", chosen_program), ("pilot", pilot)) if v}
    others = {k: v for k, v in query.items() if k != "state"}
    context = {
        "rows": board_rows,
        "counts": counts,
        "states": STATES,
        "programs": programs,
        "chosen_state": chosen_state or "",
        "chosen_program": chosen_program or "",
        "pilot_filter": pilot,
        "pilot_reference": the_pilot.reference if the_pilot is not None else None,
        **paging("/breakers", page=page, size=PAGE_SIZE, shown=len(page_rows), total=total, filters=query),
        "count_prefix": urlencode(others) + "&" if others else "",
    }
    return render(request, "breakers/board.html", context, actor=actor)


@router.get("/breakers/{breaker_id}", response_class=HTMLResponse)
def breaker_page(request: Request, breaker_id: uuid.UUID, session: DbSession, actor: RequiredWebActor) -> Response:
    breaker = service.get_breaker(session, breaker_id, actor=actor)
    label = repository.pilot_labels(session, [breaker.pilot_id])[breaker.pilot_id]
    last = session.get(Evaluation, breaker.last_evaluation_id) if breaker.last_evaluation_id else None
    version = repository.policy_versions_of(session, [last.id]).get(last.id) if last is not None else None
    last_outcome = next((o for o in last.outcomes if o.get("rule_id") == breaker.rule_id), None) if last else None
    events = repository.events_with_sources(session, breaker.id)
    context = {
        "breaker": breaker,
        "label": label,
        "rule": rule_info(version, breaker.rule_id),
        "memory": breaker.memory,
        "last_evaluation": last,
        "last_outcome": last_outcome,
        "events": [(s, _outcome_for(s.evaluation, breaker.rule_id)) for s in reversed(events)],
        "commands": service.allowed_commands(breaker, actor),
        "audit_url": f"/audit?object_type=breaker&object_id={breaker.id}",
    }
    return render(request, "breakers/detail.html", context, actor=actor)


def _outcome_for(evaluation: Evaluation | None, rule_id: str) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    return next((o for o in evaluation.outcomes if o.get("rule_id") == rule_id), None)


@router.post("/breakers/{breaker_id}/acknowledge")
def acknowledge(
    request: Request,
    breaker_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    note: Annotated[str, Form()] = "",
    version: FormVersion = None,
) -> Response:
    body = parse_form(AcknowledgeBody, {"note": note if note.strip() else None})
    service.acknowledge(session, breaker_id, body.note, actor=actor, at=now, expected_version=version)
    return redirect(request, f"/breakers/{breaker_id}", notice=NOTICES["acknowledge"])


@router.post("/breakers/{breaker_id}/reset")
def reset(
    request: Request,
    breaker_id: uuid.UUID,
    session: DbSession,
    actor: RequiredWebActor,
    now: Now,
    reason: Annotated[str, Form()] = "",
    version: FormVersion = None,
) -> Response:
    body = parse_form(ResetBody, {"reason": reason})
    service.reset(session, breaker_id, body.reason, actor=actor, at=now, expected_version=version)
    return redirect(request, f"/breakers/{breaker_id}", notice=NOTICES["reset"])
