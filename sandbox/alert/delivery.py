"""Delivering the outbox: claim due deliveries, send them outside any transaction, record results.

1. Claim (one short transaction): up to ``batch`` due deliveries (pending or retrying whose time
   has come, or sending whose lease expired), locked with ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL so concurrent workers take disjoint rows; each becomes ``sending`` under this
   worker's lease and its attempt is counted now, so a message that kills its worker cannot
   be retried for ever.
2. Send each one with no transaction open; a slow SMTP server never holds a lock.
3. Record each result at once in its own short transaction (sent; retrying with exponential
   backoff and jitter; failed on a permanent refusal or after the last attempt), with the alert
   row locked while its state is re-derived. A result is recorded only while this worker still
   holds the lease.

A worker that dies after claiming loses nothing: its lease runs out and another worker claims
the rows again, with the same Message-IDs. So that a live worker's lease never runs out under
it (which would let a second worker send the same message), a worker stops starting sends once
half the lease has passed and hands the rest back; the other half covers the send in hand
(each SMTP operation times out after ``timeout`` seconds, 10 by default, far below a minute).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sandbox.alert import outbox, repository
from sandbox.alert.render import AlertContent, AlertTemplateError, Composer, Rendered, render
from sandbox.alert.transport import PermanentFailure, TemporaryFailure, Transport
from sandbox.db import Database
from sandbox.models import DeliveryState

log = logging.getLogger("sandbox.alert")

DEFAULT_BATCH = 50
DEFAULT_LEASE = timedelta(minutes=2)
# 30 s doubling to a 1 h cap: ten attempts span about three hours of an SMTP outage.
DEFAULT_MAX_ATTEMPTS = 10
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
JITTER = 0.2


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s x 2^(attempts-1), capped at an
    hour, +-20% so that a burst of failures does not retry in lockstep."""
    exponent = min(max(attempts, 1) - 1, 16)
    delay: timedelta = min(BACKOFF_BASE * (2**exponent), BACKOFF_CAP)
    factor: float = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return delay * factor


@dataclass(frozen=True)
class Job:
    delivery_id: uuid.UUID
    alert: AlertContent
    recipient: str
    message_id: str
    attempt: int


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: uuid.UUID
    alert_id: uuid.UUID
    kind: str
    recipient: str
    message_id: str
    attempt: int
    state: str  # sent | retrying | failed | lost (the lease passed to another worker)
    error: str | None = None
    next_attempt_at: datetime | None = None

    def describe(self) -> str:
        text = f"alert {self.kind} {self.message_id} to {self.recipient}: {self.state} (attempt {self.attempt})"
        if self.state == DeliveryState.retrying and self.next_attempt_at is not None:
            text += f", next at {self.next_attempt_at.isoformat(timespec='seconds')}"
        if self.error:
            text += f": {self.error}"
        return text


@dataclass
class DeliveryReport:
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    claimed: int = 0
    released: int = 0

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def sent(self) -> int:
        return self.count(DeliveryState.sent)

    @property
    def retrying(self) -> int:
        return self.count(DeliveryState.retrying)

    @property
    def failed(self) -> int:
        return self.count(DeliveryState.failed)

    def summary(self) -> str:
        text = f"{self.claimed} claimed: {self.sent} sent, {self.retrying} to retry, {self.failed} failed"
        return text + (f", {self.released} handed back" if self.released else "")


def deliver_due(
    database: Database,
    transport: Transport,
    composer: Composer,
    *,
    now: datetime,
    worker_id: str,
    batch: int = DEFAULT_BATCH,
    lease: timedelta = DEFAULT_LEASE,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    rng: random.Random | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """One pass: claim up to ``batch`` due deliveries as of ``now``, send them, record results.
    Times recorded after a send are ``now`` plus the time the pass has taken so far."""
    started = time.monotonic()
    budget = lease.total_seconds() / 2
    report = DeliveryReport()
    jobs = _claim(database, report, now=now, worker_id=worker_id, batch=batch, lease=lease, max_attempts=max_attempts)
    report.claimed = len(jobs) + len(report.outcomes)
    rendered: dict[uuid.UUID, Rendered | AlertTemplateError] = {}
    try:
        for index, job in enumerate(jobs):
            if (should_stop is not None and should_stop()) or time.monotonic() - started > budget:
                report.released = _release(database, jobs[index:], worker_id=worker_id, at=now)
                break
            failure = _send(job, transport, composer, rendered, at=now + timedelta(seconds=time.monotonic() - started))
            at = now + timedelta(seconds=time.monotonic() - started)
            outcome = _record(database, job, failure, at=at, worker_id=worker_id, max_attempts=max_attempts, rng=rng)
            report.outcomes.append(outcome)
            log.info(outcome.describe())
    finally:
        transport.close()
    return report


def _claim(
    database: Database,
    report: DeliveryReport,
    *,
    now: datetime,
    worker_id: str,
    batch: int,
    lease: timedelta,
    max_attempts: int,
) -> list[Job]:
    jobs: list[Job] = []
    abandoned: set[uuid.UUID] = set()
    with database.unit_of_work() as session:
        rows = repository.claim_due(session, now=now, limit=batch, skip_locked=not database.is_sqlite)
        alerts = repository.alerts_by_id(session, {d.alert_id for d in rows})
        for delivery in rows:
            alert = alerts[delivery.alert_id]
            if delivery.attempts >= max_attempts:
                # Its last attempt was claimed by a worker that never reported back.
                lost = f"no result from the worker {delivery.lease_owner} of the last attempt; gave up"
                delivery.state = DeliveryState.failed.value
                delivery.last_error = f"{delivery.last_error}; {lost}" if delivery.last_error else lost
                delivery.lease_owner = delivery.lease_until = None
                abandoned.add(alert.id)
                report.outcomes.append(
                    DeliveryOutcome(
                        delivery.id,
                        alert.id,
                        alert.kind,
                        delivery.recipient,
                        delivery.message_id,
                        delivery.attempts,
                        DeliveryState.failed.value,
                        delivery.last_error,
                    )
                )
                continue
            delivery.state = DeliveryState.sending.value
            delivery.attempts += 1
            delivery.lease_owner = worker_id
            delivery.lease_until = delivery.next_attempt_at = now + lease
            delivery.last_attempt_at = now
            content = AlertContent(
                alert.id, alert.kind, alert.severity, alert.subject, alert.pilot_id, alert.context, alert.created_at
            )
            jobs.append(Job(delivery.id, content, delivery.recipient, delivery.message_id, delivery.attempts))
    # Re-derived after the claim commits, never while holding delivery locks (lock order: alert first).
    for alert_id in sorted(abandoned):
        with database.unit_of_work() as session:
            outbox.refresh_state(session, repository.lock_alert(session, alert_id), at=now)
    return jobs


def _send(
    job: Job,
    transport: Transport,
    composer: Composer,
    rendered: dict[uuid.UUID, Rendered | AlertTemplateError],
    *,
    at: datetime,
) -> TemporaryFailure | PermanentFailure | None:
    """None when the transport accepted the message."""
    try:
        if job.alert.id not in rendered:
            try:
                rendered[job.alert.id] = render(job.alert, base_url=composer.base_url)
            except AlertTemplateError as exc:
                rendered[job.alert.id] = exc
        content = rendered[job.alert.id]
        if isinstance(content, AlertTemplateError):
            return PermanentFailure(str(content))
        try:
            message = composer.compose(job.alert, content, recipient=job.recipient, message_id=job.message_id, at=at)
        except ValueError as exc:
            return PermanentFailure(f"cannot build the message: {exc}")
        transport.send(message, job.recipient)
    except (TemporaryFailure, PermanentFailure) as exc:
        return exc
    except Exception as exc:
        # A bug or an unforeseen error in a transport: retry it later rather than lose the lease.
        log.exception("unexpected error delivering %s", job.message_id)
        return TemporaryFailure(f"unexpected {exc.__class__.__name__}: {exc}")
    return None


def _record(
    database: Database,
    job: Job,
    failure: TemporaryFailure | PermanentFailure | None,
    *,
    at: datetime,
    worker_id: str,
    max_attempts: int,
    rng: random.Random | None,
) -> DeliveryOutcome:
    with database.unit_of_work() as session:
        alert = repository.lock_alert(session, job.alert.id)
        delivery = repository.delivery_for_update(session, job.delivery_id)

        def outcome(state: str, error: str | None = None, next_at: datetime | None = None) -> DeliveryOutcome:
            return DeliveryOutcome(
                job.delivery_id,
                alert.id,
                alert.kind,
                job.recipient,
                job.message_id,
                job.attempt,
                state,
                error,
                next_at,
            )

        if delivery is None or delivery.state != DeliveryState.sending or delivery.lease_owner != worker_id:
            log.warning("lease on %s lost to another worker; its result is theirs to record", job.message_id)
            return outcome("lost", failure.reason if failure else None)
        delivery.lease_owner = delivery.lease_until = None
        if failure is None:
            delivery.state = DeliveryState.sent.value
            delivery.sent_at = at
            delivery.next_attempt_at = at
            result = outcome(DeliveryState.sent.value)
        elif isinstance(failure, PermanentFailure):
            delivery.state = DeliveryState.failed.value
            delivery.last_error = failure.reason
            result = outcome(DeliveryState.failed.value, failure.reason)
        elif delivery.attempts >= max_attempts:
            delivery.state = DeliveryState.failed.value
            delivery.last_error = f"{failure.reason} (gave up after {delivery.attempts} attempts)"
            result = outcome(DeliveryState.failed.value, delivery.last_error)
        else:
            delivery.state = DeliveryState.retrying.value
            delivery.last_error = failure.reason
            delivery.next_attempt_at = at + backoff(delivery.attempts, rng)
            result = outcome(DeliveryState.retrying.value, failure.reason, delivery.next_attempt_at)
        outbox.refresh_state(session, alert, at=at)
        return result


def _release(database: Database, jobs: list[Job], *, worker_id: str, at: datetime) -> int:
    """Hand unsent claimed deliveries back, due at once, their attempt not counted."""
    released = 0
    with database.unit_of_work() as session:
        for job in jobs:
            delivery = repository.delivery_for_update(session, job.delivery_id)
            if delivery is None or delivery.state != DeliveryState.sending or delivery.lease_owner != worker_id:
                continue
            delivery.state = (DeliveryState.retrying if delivery.last_error else DeliveryState.pending).value
            delivery.attempts -= 1
            delivery.lease_owner = delivery.lease_until = None
            delivery.next_attempt_at = at
            released += 1
    return released
