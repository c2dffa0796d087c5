from __future__ import annotations

import typer

from sandbox.audit.verify import verify_chain
from sandbox.cli import common

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def verify() -> None:
    """Check the hash chain; exits 1 naming the first bad entry."""
    cfg = common.settings()
    with common.session_scope(cfg) as session:
        report = verify_chain(session)
    if report.ok:
        common.console.print(f"audit chain intact: {report.checked} entries verified")
        return
    common.err_console.print(f"[bold red]audit chain broken[/] at entry {report.first_bad_seq}: {report.problem}")
    raise typer.Exit(1)
