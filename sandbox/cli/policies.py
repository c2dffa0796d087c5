from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress

from sandbox.actor import SYSTEM
from sandbox.cli import common
from sandbox.errors import InvalidInput
from sandbox.evaluation.backtest import backtest as run_backtest
from sandbox.program.service import LoadStatus, load_policies
from sandbox.rules.policy_file import (
    PolicyFileError,
    PolicyProblem,
    parse_policies,
    parse_policy,
    read_policy_dir,
)
from sandbox.rules.policytest import run_policy_tests

app = typer.Typer(help="Policy files: one YAML file per program.", no_args_is_help=True)

PathArgument = typer.Argument(None, help="A policy file or a folder of them (default: SANDBOX_POLICIES_DIR)")


def _read(path: Path) -> list[tuple[str, bytes]]:
    if path.is_file():
        return [(path.name, path.read_bytes())]
    return read_policy_dir(path)


def _print_problems(problems: list[PolicyProblem]) -> None:
    # Plain lines, never wrapped: editors and CI annotate file:line: messages.
    for problem in problems:
        typer.echo(str(problem), err=True)
    files = len({p.source for p in problems})
    typer.echo(f"{len(problems)} problem(s) in {files} file(s)", err=True)


def _print_invalid(exc: InvalidInput) -> None:
    errors: list[dict[str, Any]] = exc.extra.get("errors", [])
    for error in errors:
        source, *location = error["loc"]
        where = f"{source}:{error['line']}" if error.get("line") is not None else str(source)
        text = f"{where}: {location[0]}: {error['msg']}" if location else f"{where}: {error['msg']}"
        typer.echo(text, err=True)
    typer.echo(exc.detail, err=True)


@app.command("validate")
def validate(path: Path | None = PathArgument) -> None:
    """Check policy files without loading them; no database needed.

    Prints every problem as "file:line: location: message" and exits 2 if there is any."""
    target = path or common.settings().policies_dir
    try:
        parsed = parse_policies(_read(target), source=str(target))
    except PolicyFileError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(2) from None
    for name, document in parsed:
        info = document.program
        common.console.print(
            f"{name}: ok  {info.code} {info.version} from {info.effective_from.isoformat()}  "
            f"{document.content_hash()[:12]}",
            highlight=False,
        )
    common.console.print(f"{len(parsed)} policy file(s) valid", highlight=False)


@app.command("load")
@common.handle_errors
def load(path: Path | None = PathArgument) -> None:
    """Load policy files into the database, all or nothing.

    A bad file, or a changed file that keeps its version label, leaves every loaded version as
    it was. Files already loaded are reported unchanged."""
    cfg = common.settings()
    target = path or cfg.policies_dir
    try:
        files = _read(target)
    except PolicyFileError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(2) from None
    try:
        with common.session_scope(cfg) as session:
            report = load_policies(session, list(files), actor=SYSTEM, at=common.now(cfg))
    except InvalidInput as exc:
        _print_invalid(exc)
        raise typer.Exit(2) from None
    for item in report.files:
        mark = "new      " if item.status is LoadStatus.new else "unchanged"
        common.console.print(
            f"{mark} {item.program} {item.version} from {item.effective_from.isoformat()}  "
            f"{item.content_hash[:12]}  ({item.source})",
            highlight=False,
        )
    common.console.print(report.summary(), highlight=False)


@app.command("test")
def test(path: Path | None = PathArgument) -> None:
    """Run every policy's `tests` section: example histories and the outcome each rule must give,
    period by period. Exits 1 if any expectation fails, 2 if a file is invalid."""
    target = path or common.settings().policies_dir
    try:
        parsed = parse_policies(_read(target), source=str(target))
    except PolicyFileError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(2) from None
    failed = total = 0
    for _, document in parsed:
        for result in run_policy_tests(document):
            total += 1
            mark = "ok  " if result.passed else "FAIL"
            typer.echo(f"{mark} {document.program.code}: {result.name}")
            for failure in result.failures:
                typer.echo(f"       {failure}")
            failed += not result.passed
    typer.echo(f"{total - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command("backtest")
@common.handle_errors
def backtest_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A draft policy file"),
    show: int = typer.Option(30, help="How many changed outcomes to list"),
) -> None:
    """Evaluate a draft policy over the stored history (breaker state replayed) and show, rule by
    rule, what would change against the policies in force. Changes no data."""
    cfg = common.settings()
    try:
        document = parse_policy(file.read_bytes(), file.name)
    except PolicyFileError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(2) from None
    with common.session_scope(cfg) as session:
        with Progress(console=common.err_console, transient=True) as progress:
            task = progress.add_task("backtesting", total=None)
            report = run_backtest(session, document, progress=lambda n: progress.advance(task, n))
        session.rollback()
    typer.echo(
        f"{report.program}: draft {report.draft_version} over {report.pilots} pilot(s), {report.periods} period(s)"
    )
    typer.echo(f"{'rule':<28} {'breaches now':>12} {'draft':>6} {'trips now':>10} {'draft':>6} {'changed':>8}")
    for summary in report.rules.values():
        note = "" if summary.in_current and summary.in_draft else (" (new)" if summary.in_draft else " (removed)")
        typer.echo(
            f"{summary.rule_id + note:<28} {summary.breaches_current:>12} {summary.breaches_draft:>6} "
            f"{summary.trips_current:>10} {summary.trips_draft:>6} {summary.changed:>8}"
        )
    for change in report.changes[:show]:
        typer.echo(f"  {change.pilot} {change.period} {change.rule_id}: {change.current} -> {change.draft}")
    if len(report.changes) > show:
        typer.echo(f"  ... and {len(report.changes) - show} more")
