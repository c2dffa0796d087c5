from __future__ import annotations

import typer

from sandbox.cli import common
from sandbox.program.calendars import load_calendars
from sandbox.scan import run_scan


@common.handle_errors
def scan(
    as_of: str | None = typer.Option(None, "--as-of", help="Date to scan for (YYYY-MM-DD); default: today in Shanghai"),
) -> None:
    """Activate and expire pilots by their dates, and judge filings missing past their due date."""
    cfg = common.settings()
    day = common.as_of_date(as_of, cfg)
    with common.session_scope(cfg) as session:
        report = run_scan(session, as_of=day, at=common.now(cfg), calendars=load_calendars(cfg.policies_dir))
    common.console.print(
        f"scan as of {day.isoformat()}: {len(report.activated)} activated, {len(report.expired)} expired, "
        f"{len(report.overdue)} overdue filing(s) judged"
    )
    for reference in report.activated:
        common.console.print(f"  activated {reference}")
    for reference in report.expired:
        common.console.print(f"  expired   {reference}")
    for item in report.overdue:
        common.console.print(f"  overdue   {item}")
    for note in report.notes:
        common.console.print(f"  note: {note}")
