"""Reading policy files: strict YAML, then the schema, then the facts a schema cannot check
(the file is named after its program). Pure apart from reading the folder.

Every problem of a file is reported at once, each with its file, line and dotted location, so
an author fixes a file in one pass instead of one error per attempt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from pydantic import ValidationError

from sandbox.rules.engine import PolicyRulesInvalid, compile_policy
from sandbox.rules.policy import PolicyDocument
from sandbox.rules.yamlsafe import MAX_BYTES, YamlDocument, YamlProblem, load_strict

SUFFIX = ".yaml"


@dataclass(frozen=True)
class PolicyProblem:
    source: str
    line: int | None
    location: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.location}: {self.message}" if self.location else f"{where}: {self.message}"


class PolicyFileError(Exception):
    """One or more problems in a policy file (or, from ``parse_policy_dir``, in a folder of them:
    each problem then names its own file)."""

    def __init__(self, source: str, problems: list[PolicyProblem]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''}")


def location_text(loc: tuple[Any, ...]) -> str:
    """``("quotas", "exposure_limit", "per_pilot_cap")`` -> ``quotas.exposure_limit.per_pilot_cap``;
    list positions as ``scope.currencies[1]``."""
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad dictionary key; the key itself precedes it
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_LEADING_PATH = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+) ")
_ENUM_REPR = re.compile(r"<\w+\.\w+: '([^']*)'>")


def _message(error: Any) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r} (misspelt, or not allowed here)"
    if kind == "missing":
        return "required key is missing"
    if "[key]" in loc:
        return f"bad key: {error['msg']}"
    # Enum members print as <Unit.CNY: 'CNY'>; an author wrote (and should write) just 'CNY'.
    message = _ENUM_REPR.sub(r"'\1'", str(error["msg"]))
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    if kind == "string_type" and isinstance(error.get("input"), int | Decimal):
        message += f'; write it in quotes, e.g. "{error["input"]}", so YAML keeps it as text'
    return message


def _schema_problems(source: str, parsed: YamlDocument, exc: ValidationError) -> list[PolicyProblem]:
    problems = []
    for err in exc.errors():
        loc = _refined(tuple(err["loc"]), err)
        problems.append(PolicyProblem(source, parsed.line_of(loc), location_text(loc), _message(err)))
    return sorted(problems, key=lambda p: p.line or 0)


def _refined(loc: tuple[Any, ...], error: Any) -> tuple[Any, ...]:
    """A validator of a whole section names the part at fault first ("scope.currencies must
    be..."): locate the problem there, not at the section."""
    if error["type"] != "value_error" or not loc or not all(isinstance(p, str) for p in loc):
        return loc
    named = _LEADING_PATH.match(str(error["msg"]).removeprefix("Value error, "))
    if named is None:
        return loc
    path = tuple(named.group(1).split("."))
    return path if path[: len(loc)] == loc else loc


def _names_a_file(source: str) -> bool:
    return PurePath(source).suffix in (".yaml", ".yml")


def parse_policy(text: str | bytes, source: str) -> PolicyDocument:
    """Parse one policy file. ``source`` names it in every problem; when it is a file name, the
    file must be named after the program (``policies/SH-TECH-MA.yaml`` holds ``SH-TECH-MA``), so
    the folder never holds two files for one program."""
    try:
        parsed = load_strict(text)
    except YamlProblem as exc:
        raise PolicyFileError(source, [PolicyProblem(source, exc.line, "", exc.message)]) from None
    if parsed.data is None:
        raise PolicyFileError(source, [PolicyProblem(source, None, "", "the file is empty")])
    if not isinstance(parsed.data, dict):
        raise PolicyFileError(
            source, [PolicyProblem(source, parsed.line_of(()), "", "the top level must be a mapping of sections")]
        )
    try:
        document = PolicyDocument.model_validate(parsed.data)
    except ValidationError as exc:
        raise PolicyFileError(source, _schema_problems(source, parsed, exc)) from None
    problems: list[PolicyProblem] = []
    code = document.program.code
    if _names_a_file(source) and PurePath(source).stem != code:
        problems.append(
            PolicyProblem(
                source,
                parsed.line_of(("program", "code")),
                "program.code",
                f"the file declares program {code} but is named {PurePath(source).name}; "
                f"name it {code}{SUFFIX} (one file per program)",
            )
        )
    try:
        compile_policy(document)
    except PolicyRulesInvalid as exc:
        for rule in exc.problems:
            where = ("rules", rule.index, rule.field)
            column = f" (column {rule.column} of the expression)" if rule.column else ""
            problems.append(
                PolicyProblem(
                    source, parsed.line_of(where), location_text(where), f"rule {rule.rule_id}: {rule.message}{column}"
                )
            )
    if problems:
        raise PolicyFileError(source, problems)
    return document


def read_policy_dir(path: Path) -> list[tuple[str, bytes]]:
    """The policy files of a folder, as (file name, raw bytes), sorted by name. Sub-folders (such
    as ``calendars/``) and files not ending in ``.yaml`` are not policy files."""
    if not path.is_dir():
        raise PolicyFileError(str(path), [PolicyProblem(str(path), None, "", "not a folder")])
    files: list[tuple[str, bytes]] = []
    for entry in sorted(path.iterdir()):
        if entry.is_dir() or entry.suffix != SUFFIX or entry.name.startswith("."):
            continue
        with entry.open("rb") as handle:
            # Read one byte past the limit: enough for the size check, never the whole of a huge file.
            files.append((entry.name, handle.read(MAX_BYTES + 1)))
    return files


def parse_policies(
    files: Sequence[tuple[str, str | bytes]], *, source: str = "policies"
) -> list[tuple[str, PolicyDocument]]:
    """Parse several files, collecting every problem of every file before refusing. Two files may
    hold two versions of one program, but not the same version, nor two versions taking effect
    on the same day (which one would be in force?)."""
    parsed: list[tuple[str, PolicyDocument]] = []
    problems: list[PolicyProblem] = []
    for name, text in files:
        try:
            parsed.append((name, parse_policy(text, name)))
        except PolicyFileError as exc:
            problems.extend(exc.problems)
    versions: dict[tuple[str, str], str] = {}
    starts: dict[tuple[str, date], str] = {}
    for name, document in parsed:
        info = document.program
        if (info.code, info.version) in versions:
            problems.append(
                PolicyProblem(
                    name,
                    None,
                    "program.version",
                    f"version {info.version} of {info.code} is also declared in {versions[info.code, info.version]}",
                )
            )
        elif (info.code, info.effective_from) in starts:
            problems.append(
                PolicyProblem(
                    name,
                    None,
                    "program.effective_from",
                    f"{starts[info.code, info.effective_from]} declares another version of {info.code} "
                    f"taking effect on the same day, {info.effective_from.isoformat()}",
                )
            )
        versions.setdefault((info.code, info.version), name)
        starts.setdefault((info.code, info.effective_from), name)
    if problems:
        raise PolicyFileError(source, problems)
    return parsed


def parse_policy_dir(path: Path) -> list[tuple[str, PolicyDocument]]:
    return parse_policies(list(read_policy_dir(path)), source=str(path))
