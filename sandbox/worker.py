"""The worker: delivers the alert outbox every poll interval.

Run as ``sandbox worker`` (one or more processes; on PostgreSQL they share the outbox through
row locks and leases) or in-process by ``sandbox serve`` (``start_in_process``). Each pass takes
its as-of time from the clock, so ``SANDBOX_NOW`` fixes it as it fixes the server's.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType

from sandbox.alert.delivery import DEFAULT_BATCH, DEFAULT_LEASE, DEFAULT_MAX_ATTEMPTS, DeliveryReport, deliver_due
from sandbox.alert.render import Composer
from sandbox.alert.transport import Transport, transport_for
from sandbox.clock import Clock, clock_for
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.scan import run_timers

log = logging.getLogger("sandbox.worker")

DEFAULT_POLL_SECONDS = 1.0
# After an error (database unreachable...), wait this long before the next pass.
ERROR_PAUSE_SECONDS = 5.0


def new_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerTotals:
    passes: int = 0
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: int = 0

    def add(self, report: DeliveryReport) -> None:
        self.passes += 1
        self.claimed += report.claimed
        self.sent += report.sent
        self.retrying += report.retrying
        self.failed += report.failed

    def summary(self) -> str:
        return f"{self.passes} pass(es): {self.sent} sent, {self.retrying} to retry, {self.failed} failed" + (
            f", {self.errors} error(s)" if self.errors else ""
        )


@dataclass
class Worker:
    database: Database
    transport: Transport
    composer: Composer
    clock: Clock
    worker_id: str = field(default_factory=new_worker_id)
    batch: int = DEFAULT_BATCH
    lease: timedelta = DEFAULT_LEASE
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_settings(
        cls, database: Database, settings: Settings, *, batch: int = DEFAULT_BATCH, clock: Clock | None = None
    ) -> Worker:
        """SMTP or Maildir by the settings (a malformed SANDBOX_SMTP_URL raises ValueError here)."""
        return cls(
            database=database,
            transport=transport_for(settings),
            composer=Composer.from_settings(settings),
            clock=clock or clock_for(settings.now),
            batch=batch,
        )

    def run_pass(self, should_stop: Callable[[], bool] | None = None) -> DeliveryReport:
        """One pass as of the clock's now: reminders and escalations of unacknowledged trips
        are written to the outbox first, then everything due is delivered."""
        now = self.clock.now()
        with self.database.unit_of_work() as session:
            run_timers(session, now=now)
        return deliver_due(
            self.database,
            self.transport,
            self.composer,
            now=now,
            worker_id=self.worker_id,
            batch=self.batch,
            lease=self.lease,
            max_attempts=self.max_attempts,
            rng=self.rng,
            should_stop=should_stop,
        )

    def run(
        self,
        *,
        once: bool = False,
        stop_event: threading.Event | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> WorkerTotals:
        """Deliver until stopped. A full batch is followed at once by another pass; otherwise the
        next pass starts ``poll_seconds`` after this one started. With ``once``, passes run until
        nothing is due, then it returns (errors propagate); without, errors are logged and the
        loop goes on."""
        stop = stop_event or threading.Event()
        totals = WorkerTotals()
        log.info("worker %s started", self.worker_id)
        while not stop.is_set():
            started = time.monotonic()
            try:
                report = self.run_pass(stop.is_set)
            except Exception:
                if once:
                    raise
                totals.errors += 1
                log.exception("worker pass failed; retrying in %g s", ERROR_PAUSE_SECONDS)
                stop.wait(ERROR_PAUSE_SECONDS)
                continue
            totals.add(report)
            if report.claimed:
                log.debug("pass: %s", report.summary())
            # A pass that handed work back (out of lease time) leaves it due: go on at once.
            drained = report.claimed < self.batch and not report.released
            if once and drained:
                break
            if drained:
                # Passes start every poll interval (not an interval after each pass ends), so an
                # alert waits at most one interval plus the pass ahead of it.
                stop.wait(max(0.0, poll_seconds - (time.monotonic() - started)))
        log.info("worker %s stopped: %s", self.worker_id, totals.summary())
        return totals


def run_worker(
    database: Database,
    settings: Settings,
    *,
    once: bool = False,
    stop_event: threading.Event | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    batch: int = DEFAULT_BATCH,
) -> WorkerTotals:
    """Build a worker from settings and run it (see ``Worker.run``)."""
    worker = Worker.from_settings(database, settings, batch=batch)
    return worker.run(once=once, stop_event=stop_event, poll_seconds=poll_seconds)


def start_in_process(
    database: Database, settings: Settings, *, poll_seconds: float = DEFAULT_POLL_SECONDS
) -> Callable[[], None]:
    """Run the worker in a daemon thread beside the server; returns the function that stops it
    (it finishes the delivery in hand, hands the rest of its batch back, and joins)."""
    worker = Worker.from_settings(database, settings)
    stop_event = threading.Event()
    thread = threading.Thread(
        target=worker.run,
        kwargs={"stop_event": stop_event, "poll_seconds": poll_seconds},
        name="sandbox-worker",
        daemon=True,
    )
    thread.start()

    def stop(timeout: float = 30.0) -> None:
        stop_event.set()
        thread.join(timeout)

    return stop


def install_signal_handlers(stop_event: threading.Event) -> None:
    """SIGTERM and SIGINT end the loop after the delivery in hand (main thread only); a second
    SIGINT interrupts at once."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping after the delivery in hand", signal.Signals(signum).name)
        stop_event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
