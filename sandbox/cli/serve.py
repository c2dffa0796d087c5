from __future__ import annotations

import logging

import typer
import uvicorn

from sandbox import migrate
from sandbox.actor import SYSTEM
from sandbox.cli import common
from sandbox.demo.data import DEMO_PASSWORD
from sandbox.errors import SandboxError
from sandbox.main import create_app
from sandbox.program.service import load_policy_dir
from sandbox.worker import start_in_process

log = logging.getLogger("sandbox.serve")


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
) -> None:
    """Run the web server (API, docs and pages). On the embedded SQLite default the schema is
    migrated at start-up; on PostgreSQL run `sandbox db upgrade` first."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cfg = common.settings()
    db = common.database(cfg)
    if db.is_sqlite:
        migrate.upgrade(db.engine)
    elif migrate.current_revision(db.engine) != migrate.head_revision():
        common.err_console.print("[bold red]the database schema is not at head:[/] run `sandbox db upgrade` first")
        raise typer.Exit(1)
    try:
        with db.unit_of_work() as session:
            report = load_policy_dir(session, cfg.policies_dir, actor=SYSTEM, at=common.now(cfg))
        common.console.print(f"policies: {report.summary()}")
    except SandboxError as exc:
        # All-or-nothing: a bad file leaves the versions in force untouched; serve on with those.
        common.err_console.print(f"[bold yellow]policies not loaded, versions in force kept:[/] {exc.detail}")
    app = create_app(cfg, database=db)
    try:
        stop_worker = start_in_process(db, cfg, poll_seconds=cfg.worker_poll_seconds)
    except ValueError as exc:  # a malformed SANDBOX_SMTP_URL
        common.err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    base = f"http://{host}:{port}"
    common.console.print(f"serving on {base}  (API docs: {base}/docs, public register: {base}/register)")
    tokens = cfg.var_dir / "demo-tokens.txt"
    if tokens.exists():
        common.console.print(
            f"sign in at {base}/sign-in with a demo user's email (e.g. supervisor@bureau.example) and the password "
            f"{DEMO_PASSWORD}; API bearer tokens are in {tokens}"
        )
    mail = "SMTP relay " + cfg.smtp_url.split("@")[-1] if cfg.smtp_url else f"the Maildir {cfg.maildir}"
    common.console.print(f"alerts are delivered by the in-process worker to {mail}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        stop_worker()
