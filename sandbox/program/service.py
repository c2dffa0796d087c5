from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from sandbox.actor import Actor
from sandbox.audit.log import record
from sandbox.errors import Conflict, InvalidInput, NotFound
from sandbox.models import PolicyVersion, Program
from sandbox.program import repository
from sandbox.rules.periods import Period
from sandbox.rules.policy import PolicyDocument, document_from_json
from sandbox.rules.policy_file import PolicyFileError, PolicyProblem, parse_policies, parse_policy, read_policy_dir


class NoPolicyInForce(Conflict):
    type_slug = "no-policy-in-force"
    title = "No policy in force"


class LoadStatus(StrEnum):
    new = "new"
    unchanged = "unchanged"


@dataclass(frozen=True)
class LoadedPolicy:
    source: str
    program: str
    version: str
    content_hash: str
    effective_from: date
    status: LoadStatus


@dataclass(frozen=True)
class LoadReport:
    files: list[LoadedPolicy]

    def count(self, status: LoadStatus) -> int:
        return sum(1 for item in self.files if item.status is status)

    def summary(self) -> str:
        return (
            f"{len(self.files)} file(s): {self.count(LoadStatus.new)} new version(s), "
            f"{self.count(LoadStatus.unchanged)} unchanged"
        )


@dataclass(frozen=True)
class ValidationReport:
    source: str
    ok: bool
    problems: list[PolicyProblem] = field(default_factory=list)
    program: str | None = None
    version: str | None = None
    effective_from: date | None = None
    content_hash: str | None = None


def policy_problems_error(problems: Sequence[PolicyProblem], what: str) -> InvalidInput:
    """Every problem of every file, each located by file, dotted path and line."""
    first = problems[0] if problems else None
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    detail = f"{what}: {first}{more}" if first else what
    return InvalidInput(
        detail,
        [
            {
                "loc": [p.source, p.location] if p.location else [p.source],
                "msg": p.message,
                "line": p.line,
                "type": "policy",
            }
            for p in problems
        ],
    )


# -- reading -------------------------------------------------------------------------------------


def get_program(session: Session, code: str) -> Program:
    program = repository.find_program(session, code)
    if program is None:
        raise NotFound(f"no program with code {code!r}")
    return program


def list_programs(session: Session, offset: int, limit: int) -> tuple[Sequence[Program], int]:
    return repository.list_programs(session, offset=offset, limit=limit)


def list_versions(session: Session, program: Program) -> Sequence[PolicyVersion]:
    return repository.list_versions(session, program.id)


def versions_in_force(session: Session, programs: Sequence[Program], on: date) -> dict[uuid.UUID, Any]:
    """For each program with a version in force on ``on``: that version's id, label, hash and
    dates (not its document), in one query."""
    heads: dict[uuid.UUID, list[Any]] = {}
    for head in repository.version_heads(session, [p.id for p in programs]):
        heads.setdefault(head.program_id, []).append(head)
    chosen = {program_id: pick_in_force(rows, on) for program_id, rows in heads.items()}
    return {program_id: head for program_id, head in chosen.items() if head is not None}


class _VersionLike(Protocol):
    @property
    def version(self) -> str: ...
    @property
    def effective_from(self) -> date: ...
    @property
    def loaded_at(self) -> datetime: ...


V = TypeVar("V", bound=_VersionLike)


def _natural(label: str) -> tuple[tuple[int, int, str], ...]:
    """``2026.10`` after ``2026.9``: digits compare as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", label) if part)


def pick_in_force(versions: Iterable[V], on: date) -> V | None:
    """The version with the latest ``effective_from`` on or before ``on``; between two taking
    effect the same day, the one loaded last (and, loaded in the same instant, the higher label)."""
    candidates = [v for v in versions if v.effective_from <= on]
    return max(candidates, key=lambda v: (v.effective_from, v.loaded_at, _natural(v.version)), default=None)


class PolicyBook:
    """The policy versions of some programs, read once, to answer many "which version judges
    this?" questions by the one rule (``pick_in_force``): a list of due filings over every pilot
    asks hundreds of them."""

    def __init__(self, session: Session, programs: Iterable[Program]) -> None:
        self.session = session
        self.programs = {program.id: program for program in programs}
        self.heads: dict[uuid.UUID, list[Any]] = {program_id: [] for program_id in self.programs}
        # Held here: the session's identity map keeps objects only weakly, and a version row
        # carries its whole document.
        self.versions: dict[uuid.UUID, PolicyVersion] = {}
        for head in repository.version_heads(session, list(self.programs)):
            self.heads[head.program_id].append(head)

    def in_force(self, program_id: uuid.UUID, on: date) -> PolicyVersion:
        """The version in force on ``on``; refused (NoPolicyInForce) when there is none."""
        heads = self.heads[program_id]
        chosen = pick_in_force(heads, on)
        if chosen is None:
            later = min((h.effective_from for h in heads), default=None)
            hint = f"; its first version takes effect on {later.isoformat()}" if later else "; no version is loaded"
            code = self.programs[program_id].code
            raise NoPolicyInForce(
                f"program {code} has no policy version in force on {on.isoformat()}{hint}",
                program=code,
                as_of=on.isoformat(),
            )
        version = self.versions.get(chosen.id) or repository.get_version(self.session, chosen.id)
        assert version is not None
        self.versions[chosen.id] = version
        return version

    def for_period(self, program_id: uuid.UUID, period: Period) -> PolicyVersion:
        """A period is judged by the version in force on its last day."""
        return self.in_force(program_id, period.end)


def policy_in_force(session: Session, program: Program, on: date) -> PolicyVersion:
    """The policy version that judges ``on`` (a period is judged by the version in force on its
    last day)."""
    return PolicyBook(session, [program]).in_force(program.id, on)


_CACHE_SIZE = 256
_documents: OrderedDict[tuple[uuid.UUID, str], PolicyDocument] = OrderedDict()
_documents_lock = threading.Lock()


def policy_document(version: PolicyVersion) -> PolicyDocument:
    """The parsed policy of a version. Versions are immutable, so the parse is cached (keyed by id
    and content hash, bounded in size)."""
    key = (version.id, version.content_hash)
    with _documents_lock:
        cached = _documents.get(key)
        if cached is not None:
            _documents.move_to_end(key)
            return cached
    document = document_from_json(version.document)
    with _documents_lock:
        _documents[key] = document
        while len(_documents) > _CACHE_SIZE:
            _documents.popitem(last=False)
    return document


def validate_policy_text(text: str | bytes, source: str) -> ValidationReport:
    """Check a policy file without loading it (nothing is written)."""
    try:
        document = parse_policy(text, source)
    except PolicyFileError as exc:
        return ValidationReport(source=source, ok=False, problems=exc.problems)
    info = document.program
    return ValidationReport(
        source=source,
        ok=True,
        program=info.code,
        version=info.version,
        effective_from=info.effective_from,
        content_hash=document.content_hash(),
    )


# -- loading -------------------------------------------------------------------------------------


@dataclass
class _Plan:
    index: int
    source: str
    text: str
    document: PolicyDocument
    content_hash: str
    status: LoadStatus


def load_policies(
    session: Session, files: Sequence[tuple[str, str | bytes]], *, actor: Actor, at: datetime
) -> LoadReport:
    """Load policy files, all or nothing: every file is parsed and every conflict with the loaded
    versions is found before anything is written. A file whose content is already loaded is a
    no-op; a new content needs a new version label, taking effect no earlier than the latest
    version of its program."""
    try:
        parsed = parse_policies(files)
    except PolicyFileError as exc:
        raise policy_problems_error(exc.problems, "policy files refused, nothing was loaded") from None

    codes = sorted({document.program.code for _, document in parsed})
    programs = {code: repository.find_program(session, code) for code in codes}
    heads_by_program: dict[uuid.UUID, list[Any]] = {}
    for head in repository.version_heads(session, [p.id for p in programs.values() if p is not None]):
        heads_by_program.setdefault(head.program_id, []).append(head)

    plans: list[_Plan] = []
    conflicts: list[dict[str, str]] = []
    for index, ((source, document), (_, raw)) in enumerate(zip(parsed, files, strict=True)):
        info = document.program
        content_hash = document.content_hash()
        program = programs[info.code]
        heads = heads_by_program.get(program.id, []) if program is not None else []
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if any(h.content_hash == content_hash for h in heads):
            plans.append(_Plan(index, source, text, document, content_hash, LoadStatus.unchanged))
            continue
        message = _conflict(info.code, info.version, info.effective_from, heads)
        if message:
            conflicts.append({"source": source, "message": message})
            continue
        plans.append(_Plan(index, source, text, document, content_hash, LoadStatus.new))
    if conflicts:
        raise Conflict("; ".join(c["message"] for c in conflicts), conflicts=conflicts)

    new = sorted(
        (p for p in plans if p.status is LoadStatus.new),
        key=lambda p: (p.document.program.code, p.document.program.effective_from),
    )
    for plan in new:
        info = plan.document.program
        program = programs[info.code]
        if program is None:
            program = _create_program(session, plan.document, actor=actor, at=at)
            programs[info.code] = program
        else:
            latest = max((h.effective_from for h in heads_by_program.get(program.id, [])), default=None)
            if latest is None or info.effective_from >= latest:
                _retitle_program(session, program, plan.document, actor=actor, at=at)
        version = PolicyVersion(
            program_id=program.id,
            version=info.version,
            content_hash=plan.content_hash,
            effective_from=info.effective_from,
            document=plan.document.model_dump(mode="json"),
            source_name=plan.source,
            source_text=plan.text,
            loaded_at=at,
            loaded_by=actor.label,
        )
        session.add(version)
        session.flush()
        heads_by_program.setdefault(program.id, []).append(version)
        record(
            session,
            at=at,
            actor=actor,
            action="policy.load",
            object_type="policy_version",
            object_id=version.id,
            after={
                "program": info.code,
                "version": info.version,
                "content_hash": plan.content_hash,
                "effective_from": info.effective_from,
                "source_name": plan.source,
            },
        )
    return LoadReport(
        [
            LoadedPolicy(
                source=plan.source,
                program=plan.document.program.code,
                version=plan.document.program.version,
                content_hash=plan.content_hash,
                effective_from=plan.document.program.effective_from,
                status=plan.status,
            )
            for plan in sorted(plans, key=lambda p: p.index)
        ]
    )


def _conflict(code: str, label: str, effective_from: date, heads: Sequence[Any]) -> str | None:
    if any(h.version == label for h in heads):
        return f"version {label} of {code} is already loaded with different content; bump program.version"
    latest = max(heads, key=lambda h: h.effective_from, default=None)
    if latest is not None and effective_from < latest.effective_from:
        # Periods already judged under the later version would change their judge retroactively.
        return (
            f"version {label} of {code} takes effect on {effective_from.isoformat()}, before version "
            f"{latest.version} already loaded (in force from {latest.effective_from.isoformat()}); "
            "a new version cannot take effect before the latest one"
        )
    return None


def _create_program(session: Session, document: PolicyDocument, *, actor: Actor, at: datetime) -> Program:
    info = document.program
    program = Program(code=info.code, title=info.title, area=info.area.value, created_at=at)
    session.add(program)
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="program.create",
        object_type="program",
        object_id=program.id,
        after={"code": program.code, "title": program.title, "area": program.area},
    )
    return program


def _retitle_program(
    session: Session, program: Program, document: PolicyDocument, *, actor: Actor, at: datetime
) -> None:
    """The newest version names the program: a new title or area in it renames the program."""
    info = document.program
    if (program.title, program.area) == (info.title, info.area.value):
        return
    before = {"title": program.title, "area": program.area}
    program.title, program.area = info.title, info.area.value
    session.flush()
    record(
        session,
        at=at,
        actor=actor,
        action="program.update",
        object_type="program",
        object_id=program.id,
        before=before,
        after={"title": program.title, "area": program.area, "version": info.version},
    )


def load_policy_dir(session: Session, path: Path, *, actor: Actor, at: datetime) -> LoadReport:
    """Load every ``*.yaml`` file of a folder (its sub-folders, such as ``calendars/``, are not
    policy files). Used at start-up and by ``sandbox policies load``."""
    try:
        files = read_policy_dir(path)
    except PolicyFileError as exc:
        raise policy_problems_error(exc.problems, "policy files refused, nothing was loaded") from None
    return load_policies(session, list(files), actor=actor, at=at)
