from __future__ import annotations

import typer

from sandbox.cli import common
from sandbox.scan import run_scan


@common.handle_errors
def scan(
    as_of: str | None = typer.Option(None, "--as-of", help="Date to scan for (YYYY-MM-DD); default: today in Shanghai"),
) -> None:
    """Activate pilots whose start date has come and expire those past their end date."""
    cfg = common.settings()
    day = common.as_of_date(as_of, cfg)
    with common.session_scope(cfg) as session:
        report = run_scan(session, as_of=day, at=common.now(cfg))
    common.console.print(
        f"scan as of {day.isoformat()}: {len(report.activated)} activated, {len(report.expired)} expired"
    )
    for reference in report.activated:
        common.console.print(f"  activated {reference}")
    for reference in report.expired:
        common.console.print(f"  expired   {reference}")
