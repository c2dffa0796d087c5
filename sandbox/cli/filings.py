from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress

from sandbox.cli import common
from sandbox.errors import InvalidInput
from sandbox.filing.ingest import UploadRefused, read_upload
from sandbox.filing.upload import import_filings
from sandbox.program.calendars import load_calendars
from sandbox.user.service import actor_for, get_user_by_email

app = typer.Typer(help="Filings: periodic pilot metrics.", no_args_is_help=True)


@app.command("import")
@common.handle_errors
def import_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A CSV or XLSX file (long or wide format)"),
    user: str = typer.Option(
        ..., "--user", help="Email of the institution user filing (its institution's pilots only)"
    ),
) -> None:
    """Import a spreadsheet of filings: every row is checked first; all are written or none."""
    cfg = common.settings()
    # Read at most one byte past the limit: a huge file is refused without being loaded whole.
    with file.open("rb") as handle:
        data = handle.read(cfg.max_upload_bytes + 1)
    try:
        parsed = read_upload(data, file.name, max_bytes=cfg.max_upload_bytes, max_rows=cfg.max_upload_rows)
    except UploadRefused as refused:
        for error in refused.errors:
            common.err_console.print(
                f"{file.name}:{error.row or '-'}: {error.column or ''}: {error.message}", highlight=False
            )
        raise typer.Exit(2) from None
    try:
        with common.session_scope(cfg) as session, Progress(console=common.err_console, transient=True) as bar:
            actor = actor_for(get_user_by_email(session, user))
            task = bar.add_task(f"importing {file.name}", total=None)
            written = import_filings(
                session,
                parsed,
                actor=actor,
                at=common.now(cfg),
                calendars=load_calendars(cfg.policies_dir),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except InvalidInput as exc:
        for error in exc.extra.get("errors", []):
            common.err_console.print(
                f"{file.name}:{error.get('row') or '-'}: {error.get('column') or ''}: {error['msg']}", highlight=False
            )
        common.err_console.print(exc.detail)
        raise typer.Exit(2) from None
    tripped = sum(1 for _, _, j in written for _, signals in j.breakers if "tripped" in signals)
    common.console.print(f"imported {len(written)} filing(s) from {file.name}; {tripped} breaker(s) tripped")
