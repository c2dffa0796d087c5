"""A year of filings for the demo pilots, run as one timeline in date order: monthly scans (which
activate pilots and judge missing filings), filings received around their due dates (a few
late), the people who acknowledge, reset and resume, a reported loss and the exemptions decided.

The story it leaves behind: Bank A's M&A pilot trips its NPL breaker in June 2026, shows the
hysteresis band in July, clears in September, is reset and resumed in October and is in
probation now; Bank A's cross-border pilot tripped on country concentration in March 2026 and
went all the way back to armed; Bank B filed late twice and never filed October 2026, which the
scan judges; Bank F was force-suspended; the pension insurer runs close to its solvency line."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.breaker import service as breakers
from sandbox.evaluation.service import pilot_schedule
from sandbox.exemption import service as exemptions
from sandbox.filing.service import FilingInput, submit_filing
from sandbox.models import Breaker, Exemption, Pilot, RiskEventKind
from sandbox.pilot import service as pilots
from sandbox.risk.service import report_risk_event
from sandbox.rules.calendar import due_date
from sandbox.rules.periods import expected_periods

if TYPE_CHECKING:  # the scenario imports this module
    from sandbox.demo.scenario import Demo

BASELINES: dict[str, dict[str, str]] = {
    "SH-TECH-MA": {
        "exposure_outstanding": "9200000000",
        "new_lending_amount": "450000000",
        "deals_count": "11",
        "ltv_max_new": "0.72",
        "term_max_new_years": "7",
        "npl_ratio": "0.012",
        "overdue90_ratio": "0.006",
        "top1_share": "0.11",
    },
    "SH-FTZ-NRSL": {
        "exposure_outstanding": "8600000000",
        "syndicates_count": "14",
        "ltv_max_new": "0.65",
        "term_max_new_years": "6",
        "country_max_share": "0.17",
        "sanctions_hits": "0",
        "overdue90_ratio": "0.004",
        "fx_open_ratio": "0.06",
        "npl_ratio": "0.008",
        "disbursed_after_designation": "0",
    },
    "SH-PEN-CPA": {
        "accounts_open": "86000",
        "contributions_ytd": "412000000",
        "max_customer_contribution_ytd": "180000",
        "accounts_opened_outside_age": "0",
        "solvency_comprehensive": "1.62",
        "solvency_core": "0.79",
        "reserve_coverage": "1.07",
        "early_withdrawal_rate": "0.012",
        "complaints_per_10k_accounts": "1.4",
    },
    "SH-SHIP-GH": {
        "written_premium_ytd": "310000000",
        "vessels_insured": "42",
        "max_sum_insured_vessel": "1200000000",
        "max_net_retention_vessel": "120000000",
        "loss_ratio_r12": "0.78",
        "solvency_comprehensive": "2.10",
        "solvency_core": "1.60",
        "claims_days_median": "24",
    },
}

# (bank, program) -> period -> overrides
STORY: dict[tuple[str, str], dict[str, dict[str, str]]] = {
    ("BANK-A", "SH-TECH-MA"): {
        "2026-01": {"npl_ratio": "0.015"},
        "2026-02": {"npl_ratio": "0.018"},
        "2026-03": {"npl_ratio": "0.021"},
        "2026-04": {"npl_ratio": "0.026"},
        "2026-05": {"npl_ratio": "0.031"},
        "2026-06": {"npl_ratio": "0.033", "new_lending_amount": "0"},
        "2026-07": {"npl_ratio": "0.028", "new_lending_amount": "0"},
        "2026-08": {"npl_ratio": "0.024", "new_lending_amount": "0"},
        "2026-09": {"npl_ratio": "0.022", "new_lending_amount": "0"},
        "2026-10": {"npl_ratio": "0.021"},
    },
    ("BANK-B", "SH-TECH-MA"): {"2026-08": {"top1_share": "0.16"}, "2026-09": {"top1_share": "0.14"}},
    ("BANK-A", "SH-FTZ-NRSL"): {
        "2026-02": {"country_max_share": "0.21"},
        "2026-03": {"country_max_share": "0.26"},
        "2026-04": {"country_max_share": "0.23"},
        "2026-05": {"country_max_share": "0.21"},
    },
    ("BANK-F", "SH-FTZ-NRSL"): {"2026-07": {"fx_open_ratio": "0.12"}, "2026-08": {"fx_open_ratio": "0.11"}},
    ("INS-D", "SH-SHIP-GH"): {"2026-Q1": {"loss_ratio_r12": "0.88"}, "2026-Q2": {"loss_ratio_r12": "0.92"}},
}
LATE = {("BANK-B", "SH-TECH-MA", "2026-02"): 5, ("BANK-B", "SH-TECH-MA", "2026-06"): 3}
UNFILED = {("BANK-B", "SH-TECH-MA", "2026-10")}


def _at(day: date, hour: int = 2) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


@dataclass(order=True)
class Event:
    at: datetime
    order: int
    label: str
    run: Callable[[Session], Any]


def run_timeline(demo: Demo, pilot_ids: dict[tuple[str, str], uuid.UUID], as_of: date) -> None:
    events: list[Event] = []

    def add(when: datetime, label: str, run: Callable[[Session], Any]) -> None:
        events.append(Event(when, len(events), label, run))

    month = date(2025, 10, 1)
    while month <= as_of:
        add(_at(month, 0), f"scan {month}", _scan(demo, month))
        month = (month + timedelta(days=32)).replace(day=1)
    for (bank, program), pilot_id in pilot_ids.items():
        _filings(demo, bank, program, pilot_id, as_of, add)
    _people(demo, pilot_ids, add)
    for event in sorted(events):
        with demo.database.unit_of_work() as session:
            event.run(session)


def _scan(demo: Demo, day: date) -> Callable[[Session], Any]:
    return lambda session: demo.run_scan(session, day)


def _filings(demo: Demo, bank: str, program: str, pilot_id: uuid.UUID, as_of: date, add: Callable[..., None]) -> None:
    baseline = BASELINES.get(program)
    if baseline is None:
        return
    with demo.database.unit_of_work() as session:
        pilot = session.get(Pilot, pilot_id)
        assert pilot is not None
        schedule = pilot_schedule(session, pilot)
        periods = expected_periods(pilot.start_on, pilot.end_on, schedule.frequency)
    filer = demo.actor(f"filer@{bank.lower()}.example")
    calendar = demo.calendars[schedule.calendar]
    story = STORY.get((bank, program), {})
    for period in periods:
        due = due_date(period, schedule.due_business_days, calendar).date
        late = LATE.get((bank, program, period.label))
        received = (
            due + timedelta(days=late)
            if late
            else calendar.add_working_days(period.end, max(1, schedule.due_business_days - 3)).date
        )
        if received >= as_of or (bank, program, period.label) in UNFILED:
            continue
        values = {k: Decimal(v) for k, v in {**baseline, **story.get(period.label, {})}.items()}
        data = FilingInput(period=period.label, metrics=values)
        add(_at(received), f"{bank} files {period.label}", _file(demo, pilot_id, data, filer, received))


def _file(demo: Demo, pilot_id: uuid.UUID, data: FilingInput, filer: Any, received: date) -> Callable[[Session], Any]:
    return lambda s: submit_filing(
        s, pilot_id, data, actor=filer, at=_at(received), channel="demo", calendars=demo.calendars
    )


def _breaker(session: Session, pilot_id: uuid.UUID, rule_id: str) -> Breaker:
    return session.scalars(select(Breaker).where(Breaker.pilot_id == pilot_id, Breaker.rule_id == rule_id)).one()


def _people(demo: Demo, pilot_ids: dict[tuple[str, str], uuid.UUID], add: Callable[..., None]) -> None:
    supervisor, approver = demo.actor("supervisor@bureau.example"), demo.actor("approver2@bureau.example")
    tech_a, ftz_a, ftz_f = (
        pilot_ids[("BANK-A", "SH-TECH-MA")],
        pilot_ids[("BANK-A", "SH-FTZ-NRSL")],
        pilot_ids[("BANK-F", "SH-FTZ-NRSL")],
    )

    def command(pilot_id: uuid.UUID, rule_id: str, what: str, text: str, day: date) -> None:
        def run(session: Session) -> None:
            breaker = _breaker(session, pilot_id, rule_id)
            if what == "acknowledge":
                breakers.acknowledge(session, breaker.id, text, actor=supervisor, at=_at(day), expected_version=None)
            else:
                breakers.reset(session, breaker.id, text, actor=supervisor, at=_at(day), expected_version=None)

        add(_at(day, 3), f"{what} {rule_id}", run)

    def resume(pilot_id: uuid.UUID, text: str, day: date) -> None:
        add(
            _at(day, 5),
            "resume",
            lambda s: pilots.run_command(s, pilot_id, "resume", reason=text, actor=approver, at=_at(day, 5)),
        )

    # Cross-border, Bank A: concentration trip in March, cleared in May, reset, resumed, back to armed.
    command(
        ftz_a,
        "country-trip",
        "acknowledge",
        "Called the bank: one Central Asian project company drew early.",
        date(2026, 4, 15),
    )
    command(
        ftz_a,
        "country-trip",
        "reset",
        "Concentration back under 22% after a sell-down of the Central Asia tranche.",
        date(2026, 6, 16),
    )
    resume(
        ftz_a, "Concentration within limits; the bank added a 20% country cap to its credit policy.", date(2026, 6, 18)
    )
    # M&A, Bank A: NPL breaker tripped with the June filing; reset in October once cleared.
    command(
        tech_a,
        "npl-trip",
        "acknowledge",
        "NPL rise traced to two borrowers in the biomedicine segment.",
        date(2026, 7, 16),
    )
    command(
        tech_a,
        "npl-trip",
        "reset",
        "Two months under 2.5%; recovery plan for the two borrowers accepted.",
        date(2026, 10, 20),
    )
    resume(tech_a, "Breaker reset after review; new lending may restart under probation.", date(2026, 10, 22))
    # Bank F: force-suspended by the supervisor.
    add(
        _at(date(2026, 9, 15), 3),
        "force-suspend BANK-F",
        lambda s: pilots.run_command(
            s,
            ftz_f,
            "suspend",
            reason="Sanctions-screening review of a new borrower's ownership chain.",
            actor=supervisor,
            at=_at(date(2026, 9, 15), 3),
        ),
    )

    # A credit loss at Bank A, reported two days later: assessed at once, decided by a supervisor.
    bank_a = demo.actor("admin@bank-a.example")

    def loss(session: Session) -> None:
        report_risk_event(
            session,
            tech_a,
            kind=RiskEventKind.credit_loss,
            occurred_on=date(2026, 5, 18),
            amount=Decimal("180000000"),
            description="Default of an acquisition vehicle in the biomedicine segment after a failed trial.",
            actor=bank_a,
            at=_at(date(2026, 5, 20)),
            calendars=demo.calendars,
        )

    add(_at(date(2026, 5, 20), 6), "credit loss reported", loss)

    def decide_all(session: Session) -> None:
        for exemption in session.scalars(
            select(Exemption)
            .where(Exemption.pilot_id == tech_a, Exemption.state == "assessed")
            .order_by(Exemption.created_at)
        ):
            if exemption.trigger == "risk_event":
                exemptions.decide(
                    session,
                    exemption.id,
                    decision=exemption.finding,
                    reason="Assessment checked against the file; agreed.",
                    actor=supervisor,
                    at=_at(date(2026, 7, 20)),
                )
            elif exemption.finding == "deny":
                exemptions.decide(
                    session,
                    exemption.id,
                    decision="grant",
                    reason="The earlier breach was the same deterioration already under remediation, reported promptly and "
                    "handled by the book's own controls; staff followed every rule, so an exemption is granted.",
                    actor=supervisor,
                    at=_at(date(2026, 7, 20)),
                )
                exemptions.confirm(
                    session,
                    exemption.id,
                    reason="Reviewed the file; agree with the supervisor's reasoning.",
                    actor=demo.actor("approver@bureau.example"),
                    at=_at(date(2026, 7, 21)),
                )

    add(_at(date(2026, 7, 20), 7), "exemptions decided", decide_all)
