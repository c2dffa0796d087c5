"""Which events alert whom: written to the outbox in the event's own transaction, one alert per
event (one email per recipient), warnings held back for a suspended pilot, reminders and
escalations of unacknowledged trips, and nothing for an event that was refused."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from sandbox.models import Alert, AlertDelivery
from sandbox.program.calendars import load_calendars
from sandbox.scan import run_scan, run_timers
from tests.evaluation.conftest import Live, at
from tests.support import ROOT


def alerts(live: Live, kind: str | None = None) -> list[tuple[Alert, list[str]]]:
    with live.database.sessions() as session:
        query = select(Alert).order_by(Alert.created_at, Alert.id)
        if kind:
            query = query.where(Alert.kind == kind)
        found = []
        for alert in session.scalars(query):
            recipients = sorted(
                session.scalars(select(AlertDelivery.recipient).where(AlertDelivery.alert_id == alert.id))
            )
            found.append((alert, recipients))
        return found


def test_a_trip_sends_one_grouped_alert_to_the_bureau_list_and_the_bank(live: Live) -> None:
    live.file("2026-02", npl_ratio="0.031")  # watch + npl-warn warning
    warned = alerts(live, "rule.warning")
    assert len(warned) == 1 and warned[0][1] == ["desk@bureau.example", "risk@bank-a.example"]
    live.file("2026-03", npl_ratio="0.032")  # trips: one email with the trip and the warning
    [(trip, recipients)] = alerts(live, "breaker.tripped")
    assert recipients == ["risk@bank-a.example", "supervisors@bureau.example"]
    assert {f["rule_id"]: f["outcome"] for f in trip.context["findings"]} == {
        "npl-trip": "tripped",
        "npl-warn": "warning",
    }
    assert trip.context["pilot"]["reference"] == live.pilot["reference"] and trip.severity == "high"
    # Suspended now: a later warning alone is held back.
    live.file("2026-04", npl_ratio="0.028")
    assert len(alerts(live, "rule.warning")) == 1


def test_refused_filings_and_rolled_back_events_alert_nobody(live: Live) -> None:
    before = alerts(live)
    assert [a.kind for a, _ in before] == ["application.decided"]
    assert live.file("2026-02", npl_ratio="0.5", top1_share="7").status_code == 422
    assert len(alerts(live)) == len(before)


def test_reset_and_resume_are_announced(live: Live) -> None:
    live.file("2026-02", npl_ratio="0.04")
    live.file("2026-03", npl_ratio="0.04")
    breaker = live.breaker("npl-trip")
    world = live.world
    world.client.post(
        f"/api/v1/breakers/{breaker['id']}/reset", json={"reason": "data corrected"}, headers=world.supervisor.headers
    )
    world.client.post(
        f"/api/v1/pilots/{live.pilot['id']}/resume", json={"reason": "ok"}, headers=world.approver.headers
    )
    [(reset, _)] = alerts(live, "breaker.reset")
    assert reset.context["reason"] == "data corrected"
    [(resumed, recipients)] = alerts(live, "pilot.resumed")
    assert resumed.context["by"] == live.world.approver.user.email
    assert "risk@bank-a.example" in recipients


def test_unacknowledged_trips_are_reminded_then_escalated_once_and_ack_stops_them(live: Live) -> None:
    live.file("2026-02", npl_ratio="0.04")
    live.file("2026-03", npl_ratio="0.04")
    tripped_at = live.clock.at
    with live.database.unit_of_work() as session:
        run_timers(session, now=tripped_at + timedelta(hours=23))
    assert alerts(live, "breaker.reminder") == []
    for hours in (25, 26, 49, 73, 73):
        with live.database.unit_of_work() as session:
            run_timers(session, now=tripped_at + timedelta(hours=hours))
    reminders = [a.context["reminder"] for a, _ in alerts(live, "breaker.reminder")]
    assert reminders == [1, 2, 3]
    [(escalated, recipients)] = alerts(live, "breaker.escalated")
    assert escalated.severity == "critical"
    assert "director@bureau.example" in recipients
    breaker = live.breaker("npl-trip")
    live.world.client.post(
        f"/api/v1/breakers/{breaker['id']}/acknowledge", json={}, headers=live.world.supervisor.headers
    )
    with live.database.unit_of_work() as session:
        run_timers(session, now=tripped_at + timedelta(hours=100))
    assert [a.context["reminder"] for a, _ in alerts(live, "breaker.reminder")] == [1, 2, 3]


def test_application_decisions_alert_the_institution(world: object, live: Live) -> None:
    decided = alerts(live, "application.decided")
    assert len(decided) == 1 and decided[0][0].context["decision"] == "approved"
    assert decided[0][1] == ["risk@bank-a.example"]
    assert at("2026-01-05") <= decided[0][0].created_at


def test_the_institution_hears_a_filing_is_due_soon_then_overdue_once_each(live: Live) -> None:
    calendars = load_calendars(ROOT / "policies")
    # February 2026 is due on 13 March (10 working days on China's calendar); 3 working days before.
    for day in (date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 10)):
        with live.database.unit_of_work() as session:
            run_scan(session, as_of=day, at=at(day.isoformat()), calendars=calendars)
    soon = alerts(live, "filing.due_soon")
    assert [(a.context["period"], a.context["working_days_left"]) for a, _ in soon] == [("2026-02", 3)]
    assert soon[0][1] == ["risk@bank-a.example"]
    for day in (date(2026, 3, 16), date(2026, 3, 17)):
        with live.database.unit_of_work() as session:
            run_scan(session, as_of=day, at=at(day.isoformat()), calendars=calendars)
    overdue = alerts(live, "filing.overdue")
    assert [(a.context["period"], a.context["due_on"]) for a, _ in overdue] == [("2026-02", "2026-03-13")]
