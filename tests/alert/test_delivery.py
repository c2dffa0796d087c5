"""Delivery against a real SMTP server on loopback: exactly once without faults, retries with
backoff and a stable Message-ID, permanent refusals, the last attempt, leases."""

from __future__ import annotations

import uuid
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select, update

from sandbox.alert.delivery import deliver_due
from sandbox.alert.transport import SmtpConfig, SmtpTransport
from sandbox.clock import FixedClock
from sandbox.db import Database
from sandbox.models import Alert, AlertDelivery, AlertState, DeliveryState
from sandbox.worker import Worker
from tests.alert.conftest import (
    COMPOSER,
    SmtpServer,
    committed_settings,
    deliver,
    emit_committed,
    free_port,
    trip_context,
)
from tests.support import NOW


def alert_and_deliveries(database: Database, alert_id: uuid.UUID) -> tuple[Alert, list[AlertDelivery]]:
    with database.sessions() as session:
        alert = session.get_one(Alert, alert_id)
        rows = list(
            session.scalars(
                select(AlertDelivery).where(AlertDelivery.alert_id == alert_id).order_by(AlertDelivery.recipient)
            )
        )
        return alert, rows


def test_one_event_gives_exactly_one_email_per_recipient(database: Database, smtp_server: SmtpServer) -> None:
    (alert_id,) = emit_committed(
        database, ["sup@bureau.example", "SUP@bureau.example", "ops@bureau.example", "risk@bank-a.example"]
    )
    report = deliver(database, smtp_server)
    assert (report.claimed, report.sent) == (3, 3)

    alert, rows = alert_and_deliveries(database, alert_id)
    assert alert.state == AlertState.sent
    assert all(d.state == DeliveryState.sent and d.attempts == 1 and d.sent_at is not None for d in rows)
    assert all(d.lease_owner is None and d.last_error is None for d in rows)
    received = {r.rcpt_tos: r.message_id for r in smtp_server.received}
    assert received == {(d.recipient,): d.message_id for d in rows}
    assert smtp_server.received[0].message["X-Sandbox-Alert"] == f"breaker.tripped; id={alert_id}"

    # Nothing is due any more: another pass, later, sends nothing.
    assert deliver(database, smtp_server, now=NOW + timedelta(days=1)).claimed == 0
    assert len(smtp_server.received) == 3


def test_temporary_failures_retry_with_backoff_and_the_same_message_id_until_accepted(
    database: Database, smtp_server: SmtpServer
) -> None:
    (alert_id,) = emit_committed(database)
    _, (delivery,) = alert_and_deliveries(database, alert_id)
    handler = smtp_server.handler

    # 1: 451 at RCPT. Retry in 30 s +-20%.
    handler.mode = "temporary"
    assert deliver(database, smtp_server).retrying == 1
    alert, (row,) = alert_and_deliveries(database, alert_id)
    assert (alert.state, row.state, row.attempts) == (AlertState.retrying, DeliveryState.retrying, 1)
    assert row.last_error is not None and row.last_error.startswith("451 4.3.0")
    assert timedelta(seconds=24) <= row.next_attempt_at - NOW <= timedelta(seconds=37)
    first_retry = row.next_attempt_at

    # Not due before its time.
    assert deliver(database, smtp_server, now=first_retry - timedelta(seconds=1)).claimed == 0

    # 2: the server takes the message but its reply never arrives (a stall past the client's
    # timeout). Retry in 60 s +-20%.
    handler.mode, handler.stall_seconds = "stall", 1.0
    report = deliver(database, smtp_server, now=first_retry, timeout=0.3)
    assert report.retrying == 1 and "timed out after 0.3 s" in (report.outcomes[0].error or "")
    _, (row,) = alert_and_deliveries(database, alert_id)
    assert row.attempts == 2
    assert timedelta(seconds=48) <= row.next_attempt_at - first_retry <= timedelta(seconds=73)

    # 3: accepted.
    handler.mode = "accept"
    assert deliver(database, smtp_server, now=row.next_attempt_at).sent == 1
    alert, (row,) = alert_and_deliveries(database, alert_id)
    assert (alert.state, row.state, row.attempts) == (AlertState.sent, DeliveryState.sent, 3)
    # The server holds the message twice (the lost reply, then the retry), under one Message-ID:
    # the one fixed when the alert was written.
    assert [r.message_id for r in smtp_server.received] == [delivery.message_id] * 2


@pytest.mark.parametrize("mode", ["refuse550", "refuse554"])
def test_a_permanent_refusal_fails_at_once(database: Database, smtp_server: SmtpServer, mode: str) -> None:
    smtp_server.handler.mode = mode
    (alert_id,) = emit_committed(database)
    assert deliver(database, smtp_server).failed == 1
    alert, (row,) = alert_and_deliveries(database, alert_id)
    assert (alert.state, row.state, row.attempts) == (AlertState.failed, DeliveryState.failed, 1)
    assert (
        row.last_error
        == {"refuse550": "550 5.1.1 no such mailbox here", "refuse554": "554 5.7.1 message refused by policy"}[mode]
    )
    smtp_server.handler.mode = "accept"
    assert deliver(database, smtp_server, now=NOW + timedelta(days=1)).claimed == 0


def test_after_the_last_attempt_the_alert_is_failed_with_the_last_error(database: Database) -> None:
    down = SmtpTransport(SmtpConfig.parse(f"smtp://127.0.0.1:{free_port()}?timeout=1"))
    (alert_id,) = emit_committed(database)
    now = NOW
    for attempt in range(1, 4):
        report = deliver_due(database, down, COMPOSER, now=now, worker_id="w", max_attempts=3)
        assert report.claimed == 1
        alert, (row,) = alert_and_deliveries(database, alert_id)
        assert row.attempts == attempt
        now = row.next_attempt_at
    assert (alert.state, row.state) == (AlertState.failed, DeliveryState.failed)
    assert row.last_error is not None
    assert "ConnectionRefusedError" in row.last_error and row.last_error.endswith("(gave up after 3 attempts)")
    assert deliver_due(database, down, COMPOSER, now=NOW + timedelta(days=1), worker_id="w").claimed == 0


class WorkerKilled(BaseException):
    """Stands for the process dying: nothing in the worker catches it."""


class DiesOnSend:
    def send(self, message: EmailMessage, recipient: str) -> None:
        raise WorkerKilled

    def close(self) -> None:
        return None


def test_deliveries_claimed_by_a_worker_that_died_are_sent_by_another_after_the_lease(
    database: Database, smtp_server: SmtpServer
) -> None:
    ids = emit_committed(database, count=3)
    with pytest.raises(WorkerKilled):
        deliver_due(database, DiesOnSend(), COMPOSER, now=NOW, worker_id="dead", lease=timedelta(minutes=2))
    with database.sessions() as session:
        rows = list(session.scalars(select(AlertDelivery)))
    assert [(d.state, d.lease_owner, d.attempts) for d in rows] == [("sending", "dead", 1)] * 3
    assert {a.state for a in (alert_and_deliveries(database, i)[0] for i in ids)} == {AlertState.pending}

    # Still leased: nobody else may take them.
    assert deliver(database, smtp_server, now=NOW + timedelta(seconds=119)).claimed == 0
    report = deliver(database, smtp_server, now=NOW + timedelta(seconds=120))
    assert (report.claimed, report.sent) == (3, 3)
    assert sorted(r.message_id for r in smtp_server.received) == sorted(d.message_id for d in rows)
    for alert_id in ids:
        alert, (row,) = alert_and_deliveries(database, alert_id)
        assert (alert.state, row.attempts, row.lease_owner) == (AlertState.sent, 2, None)


def test_a_delivery_leased_for_its_last_attempt_by_a_dead_worker_fails(database: Database) -> None:
    (alert_id,) = emit_committed(database)
    with pytest.raises(WorkerKilled):
        deliver_due(database, DiesOnSend(), COMPOSER, now=NOW, worker_id="dead", max_attempts=1)
    report = deliver_due(database, DiesOnSend(), COMPOSER, now=NOW + timedelta(hours=1), worker_id="w", max_attempts=1)
    assert report.failed == 1
    alert, (row,) = alert_and_deliveries(database, alert_id)
    assert (alert.state, row.state) == (AlertState.failed, DeliveryState.failed)
    assert row.last_error == "no result from the worker dead of the last attempt; gave up"


def test_a_title_carrying_a_bcc_header_reaches_only_the_intended_recipient(
    database: Database, smtp_server: SmtpServer
) -> None:
    evil = "Loans\r\nBcc: x@evil.example"
    emit_committed(
        database, ["sup@bureau.example"], subject=f"Breaker tripped: {evil}", context=trip_context(title=evil)
    )
    assert deliver(database, smtp_server).sent == 1
    (received,) = smtp_server.received
    assert received.rcpt_tos == ("sup@bureau.example",)
    message = received.message
    assert message["Bcc"] is None
    assert str(message["Subject"]) == "Breaker tripped: Loans Bcc: x@evil.example"
    assert smtp_server.handler.attempts == 1  # one RCPT TO, for the one recipient


def test_an_alert_its_templates_can_no_longer_render_fails_permanently(
    database: Database, smtp_server: SmtpServer
) -> None:
    (alert_id,) = emit_committed(database)
    with database.unit_of_work() as session:
        session.execute(update(Alert).where(Alert.id == alert_id).values(context={"pilot": {}}))
    assert deliver(database, smtp_server).failed == 1
    _, (row,) = alert_and_deliveries(database, alert_id)
    assert row.last_error is not None and row.last_error.startswith("cannot render alert 'breaker.tripped'")
    assert smtp_server.received == []


def test_a_pass_that_runs_out_of_lease_time_hands_the_rest_back(database: Database, smtp_server: SmtpServer) -> None:
    """Half the lease is the sending budget, so a worker never sends what its lease may have lost."""
    emit_committed(database, count=3)
    smtp_server.handler.data_delay = 0.3
    report = deliver(database, smtp_server, lease=timedelta(seconds=0.4))
    assert (report.claimed, report.sent, report.released) == (3, 1, 2)
    with database.sessions() as session:
        states = sorted((d.state, d.attempts, d.lease_owner) for d in session.scalars(select(AlertDelivery)))
    assert states == [("pending", 0, None), ("pending", 0, None), ("sent", 1, None)]
    smtp_server.handler.data_delay = 0
    assert deliver(database, smtp_server).sent == 2


def test_a_stop_request_ends_the_pass_after_the_delivery_in_hand(database: Database, smtp_server: SmtpServer) -> None:
    emit_committed(database, count=3)
    report = deliver(database, smtp_server, should_stop=lambda: len(smtp_server.received) >= 1)
    assert (report.sent, report.released) == (1, 2)


def test_the_worker_writes_to_the_maildir_when_no_smtp_url_is_set(database: Database, tmp_path: Path) -> None:
    settings = committed_settings(tmp_path)
    emit_committed(database, ["sup@bureau.example", "ops@bureau.example"], pilot_id=None)
    worker = Worker.from_settings(database, settings, clock=FixedClock(NOW))
    totals = worker.run(once=True)
    assert (totals.sent, totals.failed) == (2, 0)
    files = sorted((settings.maildir / "new").iterdir())
    assert len(files) == 2
    text = files[0].read_text()
    assert "Subject: Breaker tripped: PILOT-2026-001" in text and "multipart/alternative" in text


def test_deliveries_are_claimed_oldest_first_in_batches(database: Database, smtp_server: SmtpServer) -> None:
    older = emit_committed(database, at=NOW - timedelta(minutes=5), count=2)
    emit_committed(database, at=NOW, count=2)
    report = deliver(database, smtp_server, batch=2)
    assert {o.alert_id for o in report.outcomes} == set(older)
    assert deliver(database, smtp_server, batch=2).sent == 2
