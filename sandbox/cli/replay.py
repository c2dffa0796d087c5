from __future__ import annotations

import typer
from rich.progress import Progress

from sandbox.cli import common
from sandbox.evaluation.replay import count_work, replay


def replay_command() -> None:
    """Re-derive every stored outcome and breaker state from the stored filings, policy versions
    and breaker events; list any difference (exit 1 if there is one). Changes nothing."""
    cfg = common.settings()
    with common.session_scope(cfg) as session:
        with Progress(console=common.err_console, transient=True) as progress:
            task = progress.add_task("replaying", total=count_work(session))
            report = replay(session, progress=lambda n: progress.advance(task, n))
        session.rollback()
    common.console.print(
        f"replayed {report.evaluations} evaluations ({report.outcomes} rule outcomes) and "
        f"{report.breaker_events} breaker events: {len(report.differences)} difference(s)"
    )
    for difference in report.differences[:200]:
        common.console.print(
            f"  {difference.where}: {difference.field}: stored {difference.stored!r}, derived {difference.derived!r}",
            highlight=False,
        )
    if report.differences:
        raise typer.Exit(1)
