"""The outbox: alerts are written in the event's transaction, once per event, once per recipient."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sandbox.alert import outbox
from sandbox.alert.render import AlertTemplateError
from sandbox.db import Database
from sandbox.models import Alert, AlertDelivery, AlertState, DeliveryState
from tests.alert.conftest import emit_committed, trip_context
from tests.conftest import TempDatabase, create_temp_database
from tests.support import NOW


def counts(database: Database) -> tuple[int, int]:
    with database.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Alert)) or 0,
            session.scalar(select(func.count()).select_from(AlertDelivery)) or 0,
        )


def deliveries(database: Database, alert_id: uuid.UUID) -> list[AlertDelivery]:
    with database.sessions() as session:
        return list(
            session.scalars(
                select(AlertDelivery).where(AlertDelivery.alert_id == alert_id).order_by(AlertDelivery.recipient)
            )
        )


def test_one_event_gives_one_alert_and_one_delivery_per_distinct_valid_recipient(database: Database) -> None:
    recipients = [
        "Supervisor@Bureau.example",
        " supervisor@bureau.example",
        "ops@bureau.example",
        "not-an-address",
        "x@bank.example\r\nBcc: z@evil.example",
    ]
    (alert_id,) = emit_committed(database, recipients)
    with database.sessions() as session:
        alert = session.get_one(Alert, alert_id)
    assert alert.state == AlertState.pending
    assert alert.note is not None and alert.note.startswith("invalid recipients skipped: ")
    assert "'not-an-address'" in alert.note and "not a single-line address" in alert.note
    rows = deliveries(database, alert_id)
    assert [d.recipient for d in rows] == ["ops@bureau.example", "supervisor@bureau.example"]
    assert all(d.state == DeliveryState.pending and d.attempts == 0 and d.next_attempt_at == NOW for d in rows)
    assert all(re.fullmatch(r"<[0-9a-f]{32}@sandbox\.local>", d.message_id) for d in rows)
    assert len({d.message_id for d in rows}) == 2


def test_an_alert_nobody_can_receive_is_recorded_as_failed_with_the_reason(database: Database) -> None:
    (alert_id,) = emit_committed(database, ["", "nobody"])
    with database.sessions() as session:
        alert = session.get_one(Alert, alert_id)
    assert alert.state == AlertState.failed
    assert alert.note is not None and alert.note.splitlines()[0] == "no recipients"
    assert deliveries(database, alert_id) == []


def test_the_same_dedupe_key_yields_one_alert(database: Database) -> None:
    emit_committed(database, dedupe_key="trip:b1:e1")
    with database.unit_of_work() as session:
        again = outbox.emit(
            session,
            kind="breaker.tripped",
            severity="critical",
            pilot_id=None,
            subject="again",
            context=trip_context(),
            recipients=["other@bureau.example"],
            dedupe_key="trip:b1:e1",
            at=NOW,
        )
    assert again is None
    assert counts(database) == (1, 1)


def test_a_rolled_back_event_leaves_no_alert(database: Database) -> None:
    class EventFailed(Exception):
        pass

    with pytest.raises(EventFailed), database.unit_of_work() as session:
        alert = outbox.emit(
            session,
            kind="breaker.tripped",
            severity="critical",
            pilot_id=None,
            subject="Breaker tripped",
            context=trip_context(),
            recipients=["supervisor@bureau.example"],
            dedupe_key="trip:rolled-back",
            at=NOW,
        )
        assert alert is not None and session.get(Alert, alert.id) is not None  # flushed, visible inside
        raise EventFailed
    assert counts(database) == (0, 0)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"kind": "breaker.melted"}, AlertTemplateError),
        ({"severity": "apocalyptic"}, ValueError),
        ({"dedupe_key": ""}, ValueError),
        ({"context": {"pilot": {"reference": "P"}}}, AlertTemplateError),
    ],
)
def test_programming_errors_are_refused_and_write_nothing(
    database: Database, changes: dict[str, object], error: type[Exception]
) -> None:
    arguments: dict[str, object] = {
        "kind": "breaker.tripped",
        "severity": "critical",
        "pilot_id": None,
        "subject": "s",
        "context": trip_context(),
        "recipients": ["a@bureau.example"],
        "dedupe_key": "k",
        "at": NOW,
        **changes,
    }
    with pytest.raises(error), database.unit_of_work() as session:
        outbox.emit(session, **arguments)  # type: ignore[arg-type]
    assert counts(database) == (0, 0)


def test_the_subject_is_stored_on_one_line(database: Database) -> None:
    (alert_id,) = emit_committed(database, subject="Tripped: Loans\r\nBcc: x@evil.example")
    with database.sessions() as session:
        assert session.get_one(Alert, alert_id).subject == "Tripped: Loans Bcc: x@evil.example"


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], AlertState.failed),
        ([("pending", None), ("pending", None)], AlertState.pending),
        ([("sending", None), ("sent", None)], AlertState.pending),
        ([("sending", "451 busy"), ("sent", None)], AlertState.retrying),
        ([("retrying", "451 busy"), ("failed", "550 no")], AlertState.retrying),
        ([("sent", None), ("sent", None)], AlertState.sent),
        ([("sent", None), ("failed", "550 no")], AlertState.failed),
    ],
)
def test_an_alerts_state_is_derived_from_its_deliveries(
    states: list[tuple[str, str | None]], expected: AlertState
) -> None:
    rows = [AlertDelivery(state=state, last_error=error) for state, error in states]
    assert outbox.derive_state(rows) == expected


@pytest.fixture
def committed_pg(tmp_path: Path) -> Iterator[TempDatabase]:
    temp = create_temp_database("postgresql", tmp_path)
    yield temp
    temp.drop()


@pytest.mark.postgres_only
def test_two_transactions_racing_on_one_dedupe_key_give_one_alert_and_both_commit(
    committed_pg: TempDatabase,
) -> None:
    """The loser waits for the winner's commit, gets None, and its own event still commits."""
    database = Database(committed_pg.engine)
    first_emitted, results = threading.Event(), {}

    def emit(name: str, hold: threading.Event | None) -> None:
        with database.unit_of_work() as session:
            results[name] = outbox.emit(
                session,
                kind="breaker.tripped",
                severity="critical",
                pilot_id=None,
                subject=name,
                context=trip_context(),
                recipients=[f"{name}@bureau.example"],
                dedupe_key="trip:race",
                at=NOW,
            )
            # Each transaction also writes a second alert of its own: the event's other work.
            outbox.emit(
                session,
                kind="breaker.tripped",
                severity="critical",
                pilot_id=None,
                subject=name,
                context=trip_context(),
                recipients=["x@bureau.example"],
                dedupe_key=f"own:{name}",
                at=NOW,
            )
            if hold is not None:
                first_emitted.set()
                hold.wait(5)

    release = threading.Event()
    winner = threading.Thread(target=emit, args=("winner", release))
    winner.start()
    assert first_emitted.wait(5)
    loser = threading.Thread(target=emit, args=("loser", None))
    loser.start()
    loser.join(0.3)
    assert loser.is_alive()  # blocked on the winner's uncommitted key
    release.set()
    winner.join(5)
    loser.join(5)
    assert results["winner"] is not None and results["loser"] is None
    with database.sessions() as session:
        keys = set(session.scalars(select(Alert.dedupe_key)))
    assert keys == {"trip:race", "own:winner", "own:loser"}
