"""Programs and their policies (read by any signed-in user), and policy-file validation (bureau).
No prefix: this router serves both ``/programs`` and ``/policies``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from sandbox.actor import Actor
from sandbox.api.deps import BureauActor, CurrentActor, DbSession, Now, Paging
from sandbox.clock import bureau_date
from sandbox.errors import SandboxError
from sandbox.evaluation.backtest import backtest
from sandbox.models import PolicyVersion, Program
from sandbox.program import service
from sandbox.program.schemas import (
    PolicyProblemRead,
    PolicyRead,
    PolicyValidation,
    PolicyVersionRead,
    ProgramDetail,
    ProgramRead,
)
from sandbox.rules.policy_file import parse_policy

router = APIRouter(tags=["programs"])

YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
ProgramCode = Annotated[str, Path(min_length=1, max_length=40)]


class UnsupportedMediaType(SandboxError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"


async def yaml_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in YAML_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"send the policy file itself as the body, with Content-Type application/yaml or text/plain "
            f"(got {media_type or 'none'})",
            accepted=list(YAML_MEDIA_TYPES),
        )
    return await request.body()


YamlBody = Annotated[bytes, Depends(yaml_body)]


def _program_read(program: Program, head: Any | None) -> ProgramRead:
    return ProgramRead(
        code=program.code,
        title=program.title,
        area=program.area,
        current_version=head.version if head else None,
        effective_from=head.effective_from if head else None,
        content_hash=head.content_hash if head else None,
        created_at=program.created_at,
    )


def _version_read(version: PolicyVersion, in_force: PolicyVersion | None, actor: Actor) -> PolicyVersionRead:
    return PolicyVersionRead(
        version=version.version,
        content_hash=version.content_hash,
        effective_from=version.effective_from,
        loaded_at=version.loaded_at,
        source_name=version.source_name,
        in_force=in_force is not None and version.id == in_force.id,
        loaded_by=version.loaded_by if actor.is_bureau else None,
    )


@router.get("/programs")
def list_programs(session: DbSession, actor: CurrentActor, page: Paging, now: Now) -> dict[str, Any]:
    programs, total = service.list_programs(session, page.offset, page.limit)
    in_force = service.versions_in_force(session, programs, bureau_date(now))
    items = [_program_read(p, in_force.get(p.id)).model_dump(mode="json") for p in programs]
    return page.envelope(items, total)


@router.get("/programs/{code}", response_model=ProgramDetail)
def get_program(code: ProgramCode, session: DbSession, actor: CurrentActor, now: Now) -> ProgramDetail:
    program = service.get_program(session, code)
    versions = service.list_versions(session, program)
    current = service.pick_in_force(versions, bureau_date(now))
    return ProgramDetail(
        **_program_read(program, current).model_dump(),
        versions=[_version_read(v, current, actor) for v in versions],
    )


@router.get("/programs/{code}/policy", response_model=PolicyRead)
def get_policy(
    code: ProgramCode,
    session: DbSession,
    actor: CurrentActor,
    now: Now,
    as_of: Annotated[date | None, Query(description="The day the policy is in force on (default: today)")] = None,
) -> PolicyRead:
    program = service.get_program(session, code)
    on = as_of or bureau_date(now)
    version = service.policy_in_force(session, program, on)
    return PolicyRead(
        program=program.code,
        as_of=on,
        version=version.version,
        content_hash=version.content_hash,
        effective_from=version.effective_from,
        loaded_at=version.loaded_at,
        document=version.document,
    )


@router.post(
    "/policies/validate",
    response_model=PolicyValidation,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The policy file (YAML) as the request body.",
            "content": {media: {"schema": {"type": "string"}} for media in ("application/yaml", "text/plain")},
        }
    },
)
def validate_policy(
    actor: BureauActor,
    body: YamlBody,
    filename: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
            description="The file's name, e.g. SH-TECH-MA.yaml: then it must match the program code",
        ),
    ] = None,
) -> PolicyValidation:
    report = service.validate_policy_text(body, filename or "request body")
    if not report.ok:
        raise service.policy_problems_error(report.problems, "the policy file has problems")
    return PolicyValidation(
        ok=True,
        source=report.source,
        program=report.program,
        version=report.version,
        effective_from=report.effective_from,
        content_hash=report.content_hash,
        problems=[PolicyProblemRead(**vars(p)) for p in report.problems],
    )


@router.post(
    "/policies/backtest",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The draft policy file (YAML) as the request body.",
            "content": {media: {"schema": {"type": "string"}} for media in ("application/yaml", "text/plain")},
        }
    },
)
def backtest_policy(session: DbSession, actor: BureauActor, body: YamlBody) -> dict[str, Any]:
    """Evaluate a draft policy over the stored history of its program, with breaker state
    replayed, and show rule by rule what would change. Changes nothing."""
    report = service.validate_policy_text(body, "request body")
    if not report.ok:
        raise service.policy_problems_error(report.problems, "the draft policy has problems")
    result = backtest(session, parse_policy(body, "request body"))
    session.rollback()
    return {
        "program": result.program,
        "draft_version": result.draft_version,
        "pilots": result.pilots,
        "periods": result.periods,
        "rules": [asdict(summary) for summary in result.rules.values()],
        "changes": [asdict(change) for change in result.changes[:1000]],
        "changes_total": len(result.changes),
    }
