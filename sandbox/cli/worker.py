from __future__ import annotations

import logging
import threading

import typer

from sandbox import migrate
from sandbox.cli import common
from sandbox.worker import Worker, install_signal_handlers


def worker(
    once: bool = typer.Option(False, "--once", help="Deliver everything due now, then exit"),
    poll: float | None = typer.Option(
        None, "--poll", min=0.05, help="Seconds between passes (default: SANDBOX_WORKER_POLL_SECONDS, 1)"
    ),
    batch: int = typer.Option(50, "--batch", min=1, max=1000, help="Deliveries claimed per pass"),
) -> None:
    """Deliver alert emails from the outbox: SMTP when SANDBOX_SMTP_URL is set, otherwise the
    Maildir under var/. Several workers may share a PostgreSQL database; SIGTERM or Ctrl-C stops
    one after the delivery in hand."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = common.settings()
    db = common.database(cfg)
    try:
        if migrate.current_revision(db.engine) != migrate.head_revision():
            common.err_console.print("[bold red]the database schema is not at head:[/] run `sandbox db upgrade` first")
            raise typer.Exit(1)
        try:
            outbox_worker = Worker.from_settings(db, cfg, batch=batch)
        except ValueError as exc:
            common.err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
        stop_event = threading.Event()
        install_signal_handlers(stop_event)
        totals = outbox_worker.run(once=once, stop_event=stop_event, poll_seconds=poll or cfg.worker_poll_seconds)
        common.console.print(f"worker: {totals.summary()}")
    finally:
        db.dispose()
