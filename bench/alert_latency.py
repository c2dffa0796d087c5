"""Alert latency: from an alerting event committed to the SMTP server's acceptance of its email.

An SMTP server (aiosmtpd) listens on loopback; the worker runs in a background thread exactly as
``sandbox serve`` runs it (``sandbox.worker.start_in_process``), polling at its default interval
unless ``--poll`` says otherwise. One producer commits events one at a time, spaced by random
gaps (so arrivals fall at every phase of the poll cycle); for each alert the clock starts when
its transaction has committed and stops when the server has accepted the email (matched by the
alert id in the ``X-Sandbox-Alert`` header). Both clocks are ``time.perf_counter`` in this one
process. An alert with two recipients is two emails: the figures are for the first one
accepted, and the JSON also has them for the last.

    .venv/bin/python bench/alert_latency.py [--alerts 300 --gap-ms 50 --poll 1.0 --seed 1]
                                            [--backend sqlite|postgresql|both] [--scenario emit|trip]
                                            [--pilots N]

PostgreSQL: ``SANDBOX_TEST_POSTGRES_URL`` (the tests' default:
postgresql+psycopg://postgres@127.0.0.1:5432/postgres); the benchmark creates its own database
there and drops it afterwards.

Scenarios: a scenario commits one event and returns the alerts that event raised.

- ``emit`` writes a breaker-trip alert straight into the outbox (``outbox.emit`` in its own unit
  of work), which measures the delivery path alone.
- ``trip`` files one filing that trips a breaker (``submit_filing`` in its own unit of work, as
  the API does): the shipped SH-TECH-MA rules, whose ``quota-trip`` trips at once when the
  balance reaches the granted quota. The breaker's own hook (``notify.after_evaluation``) writes
  the "breaker.tripped" alert in the filing's transaction; the clock starts when that
  transaction has committed. A tripped breaker does not trip again, so each trip needs a pilot
  whose breaker is not tripped: by default every trip is on its own pilot (``--pilots`` = the
  number of trips). With fewer pilots the trips run in rounds, one per pilot and month; between
  rounds (untimed) a supervisor resets each breaker and an approver resumes each pilot, and the
  outbox is left to empty (those commands send emails too) before the next round starts.

The worker's passes are timed too (without changing them: the benchmark wraps the two functions
a pass calls, ``run_timers`` and ``deliver_due``), so each alert's latency splits into the wait
for the next pass and the time within it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, Protocol

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

import sandbox.worker as worker_module
from sandbox import migrate
from sandbox.actor import SYSTEM, Actor
from sandbox.alert import outbox
from sandbox.application import service as applications
from sandbox.application.schemas import ApplicationCreate, ApproveBody
from sandbox.breaker import service as breakers
from sandbox.clock import bureau_date
from sandbox.config import Environment, Settings
from sandbox.db import Database, make_engine
from sandbox.filing.service import FilingInput, submit_filing
from sandbox.institution.identifiers import make_uscc
from sandbox.institution.schemas import InstitutionCreate
from sandbox.institution.service import create_institution
from sandbox.models import FINAL_DELIVERY_STATES, Alert, AlertDelivery, Breaker, Role
from sandbox.pilot import service as pilots
from sandbox.program.calendars import load_calendars
from sandbox.program.service import load_policies
from sandbox.rules.breaker import Signal
from sandbox.rules.calendar import WorkingCalendar
from sandbox.rules.periods import Period
from sandbox.scan import run_scan
from sandbox.user.service import actor_for, create_user
from sandbox.worker import DEFAULT_POLL_SECONDS, start_in_process

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get("SANDBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MAX_ROUNDS = 24
DRAIN_TIMEOUT_SECONDS = 120.0


# --- the SMTP server -------------------------------------------------------------------------


@dataclass
class Inbox:
    """When each alert's email was accepted, by alert id and recipient, and each alert's kind."""

    accepted: dict[uuid.UUID, dict[str, float]] = field(default_factory=dict)
    kinds: dict[uuid.UUID, str] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        at = time.perf_counter()
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        kind, _, rest = str(message.get("X-Sandbox-Alert", "")).partition(";")
        alert_id = uuid.UUID(rest.rsplit("id=", 1)[-1])
        with self.arrived:
            times = self.accepted.setdefault(alert_id, {})
            for recipient in envelope.rcpt_tos:
                times.setdefault(recipient.lower(), at)  # a resend keeps the first acceptance
            self.kinds[alert_id] = kind.strip()
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, expected: dict[uuid.UUID, int], timeout: float) -> bool:
        """Until every alert has reached its number of recipients."""

        def done() -> bool:
            return all(len(self.accepted.get(i, ())) >= n for i, n in expected.items())

        with self.arrived:
            return self.arrived.wait_for(done, timeout)


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


# --- the worker's passes ---------------------------------------------------------------------


@dataclass
class PassLog:
    """Each pass's start (when it began the timers) and how long its two parts took."""

    timers: list[tuple[float, float]] = field(default_factory=list)  # (start, end)
    deliveries: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, claimed)

    def pass_start_before(self, moment: float) -> float | None:
        """The start of the last pass begun before ``moment``."""
        starts = [start for start, _ in self.timers if start <= moment]
        return starts[-1] if starts else None


@contextmanager
def passes_logged() -> Iterator[PassLog]:
    """Wrap the two functions ``Worker.run_pass`` calls, to time them; restored afterwards."""
    log = PassLog()
    # By name: sandbox.worker imports these two, it does not export them.
    originals: dict[str, Callable[..., Any]] = {
        name: getattr(worker_module, name) for name in ("run_timers", "deliver_due")
    }

    def timed_timers(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return originals["run_timers"](*args, **kwargs)
        finally:
            log.timers.append((start, time.perf_counter()))

    def timed_delivery(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        report = originals["deliver_due"](*args, **kwargs)
        log.deliveries.append((start, time.perf_counter(), report.claimed))
        return report

    wrappers = {"run_timers": timed_timers, "deliver_due": timed_delivery}
    for name, wrapper in wrappers.items():
        setattr(worker_module, name, wrapper)
    try:
        yield log
    finally:
        for name, original in originals.items():
            setattr(worker_module, name, original)


# --- databases -------------------------------------------------------------------------------


@dataclass
class Target:
    backend: str
    url: str
    engine: Engine


def postgres_reachable() -> str | None:
    """None when reachable, else why not."""
    try:
        engine = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"{exc.__class__.__name__} at {make_url(PG_ADMIN_URL).render_as_string()}"


@contextmanager
def temp_database(backend: str, folder: Path) -> Iterator[Target]:
    """A new database migrated to head, dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        try:
            yield Target(backend, url, engine)
        finally:
            engine.dispose()
        return
    name = f"sandbox_bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        yield Target(backend, url, engine)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def undelivered(database: Database) -> int:
    """Deliveries not yet sent or failed for good."""
    with database.sessions() as session:
        final = [state.value for state in FINAL_DELIVERY_STATES]
        return int(
            session.scalar(select(func.count()).select_from(AlertDelivery).where(AlertDelivery.state.not_in(final)))
            or 0
        )


def drain(database: Database, timeout: float = DRAIN_TIMEOUT_SECONDS) -> None:
    """Wait until the running worker has delivered everything in the outbox."""
    deadline = time.monotonic() + timeout
    while (left := undelivered(database)) > 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"the outbox still holds {left} undelivered email(s) after {timeout:g} s")
        time.sleep(0.05)


# --- scenarios -------------------------------------------------------------------------------


class Scenario(Protocol):
    name: str

    def prepare(self, database: Database) -> None: ...

    def between(self, database: Database, index: int) -> bool:
        """Untimed work before event ``index``; True when it wrote to the outbox, so that the
        outbox is left to empty before the event."""
        ...

    def trigger(self, database: Database, index: int) -> dict[uuid.UUID, int]:
        """Commit one event; return the alerts it raised, each with its number of recipients."""
        ...

    def describe(self) -> dict[str, Any]: ...


TRIP_CONTEXT: dict[str, Any] = {
    "pilot": {
        "reference": "SH-TECH-MA-2026-001",
        "title": "Control acquisitions by tech firms",
        "institution": "Bank A",
    },
    "period": "2026-10",
    "policy_version": 1,
    "findings": [
        {
            "rule_id": "npl-ratio-ceiling",
            "severity": "critical",
            "outcome": "tripped",
            "explanation": "npl_ratio 0.061 > 0.05 for 2 consecutive periods",
            "comparison": {"left": "0.061", "operator": ">", "threshold": "0.05"},
        }
    ],
}


class EmitAlert:
    """One breaker-trip alert to one recipient per event, written straight into the outbox."""

    name = "emit"

    def prepare(self, database: Database) -> None:
        return None

    def between(self, database: Database, index: int) -> bool:
        return False

    def trigger(self, database: Database, index: int) -> dict[uuid.UUID, int]:
        with database.unit_of_work() as session:
            alert = outbox.emit(
                session,
                kind="breaker.tripped",
                severity="critical",
                pilot_id=None,
                subject=f"Breaker tripped: SH-TECH-MA-2026-001 (event {index})",
                context=TRIP_CONTEXT,
                recipients=["supervisor@bureau.example"],
                dedupe_key=f"bench:{uuid.uuid4().hex}",
                at=datetime.now(UTC),
            )
        assert alert is not None
        return {alert.id: 1}

    def describe(self) -> dict[str, Any]:
        return {}


PROGRAM = "SH-TECH-MA"
TRIP_RULE = "quota-trip"  # exposure_outstanding / quota.exposure_limit >= 1.00, trips on one breach
QUOTA = "4000000000"
SCOPE = {
    "products": ["tech_ma_loan_control_acquisition"],
    "currencies": ["CNY"],
    "customer_segments": ["high_tech_enterprise", "specialised_sme"],
    "regions": ["Shanghai"],
    "target_industries": ["integrated_circuits", "artificial_intelligence"],
}
# Every metric of the program, all well inside the rules but the balance: 105% of the quota.
TRIP_METRICS = {
    "exposure_outstanding": Decimal("4200000000.00"),
    "new_lending_amount": Decimal("150000000.00"),
    "deals_count": Decimal("12"),
    "ltv_max_new": Decimal("0.7000"),
    "term_max_new_years": Decimal("7.00"),
    "npl_ratio": Decimal("0.0100"),
    "overdue90_ratio": Decimal("0.0050"),
    "top1_share": Decimal("0.1000"),
}


def at_hour(day: date, hour: int = 2) -> datetime:
    return datetime.combine(day, clock_time(hour), tzinfo=UTC)


def months_before(period: Period, n: int) -> Period:
    return Period.from_ordinal("monthly", period.year * 12 + period.number - 1 - n)


def trip_policy_text(effective_from: date) -> str:
    """The shipped SH-TECH-MA policy and rules under a benchmark version: in force before the
    first month filed, long enough, and open to as many banks as the benchmark needs (no cap on
    institutions, no program-wide quota cap)."""
    original = (ROOT / "policies" / f"{PROGRAM}.yaml").read_text()
    lines = [line for line in original.splitlines() if not line.strip().startswith("max_institutions:")]
    result = "\n".join(lines) + "\n"
    for old, new in (
        ('version: "2025.1"', 'version: "bench-alerts"'),
        ("effective_from: 2025-09-01", f"effective_from: {effective_from.isoformat()}"),
        ("max_duration_months: 24", "max_duration_months: 120"),
        ("aggregate_cap: 50000000000", "aggregate_cap: 999999999999999"),
        (f"  - id: {TRIP_RULE}\n", f"  - id: {TRIP_RULE}\n"),  # only checked: the rule is still there
    ):
        if old not in result:
            raise SystemExit(f"policies/{PROGRAM}.yaml changed: {old!r} not found; update bench/alert_latency.py")
        result = result.replace(old, new)
    return result


@dataclass(frozen=True)
class BenchPilot:
    id: uuid.UUID
    filer: Actor


class TripOnFiling:
    """One filing per event whose balance is above the pilot's quota, tripping ``quota-trip``."""

    name = "trip"

    def __init__(self, n_events: int, n_pilots: int | None) -> None:
        self.n_pilots = min(n_pilots or n_events, n_events)
        self.rounds = math.ceil(n_events / self.n_pilots)
        self.pilots: list[BenchPilot] = []
        self.periods: list[Period] = []
        self.calendars: dict[str, WorkingCalendar] = {}
        self.supervisor: Actor | None = None
        self.approver: Actor | None = None
        self.setup_seconds = 0.0
        self.reset_seconds = 0.0
        self.seen: set[uuid.UUID] = set()

    def prepare(self, database: Database) -> None:
        """Bureau users and n_pilots banks, each with an active pilot whose months to file end with
        last month (the latest one a bank can file today), made active by the daily scan: the same
        services the API and the demo use."""
        started = time.perf_counter()
        today = bureau_date(datetime.now(UTC))
        last = months_before(Period("monthly", today.year, today.month), 1)
        self.periods = [months_before(last, n) for n in reversed(range(self.rounds))]
        first = self.periods[0]
        applied = at_hour(months_before(first, 3).start)
        effective = months_before(first, 12).start
        self.calendars = load_calendars(ROOT / "policies")
        with database.unit_of_work() as session:
            load_policies(
                session, [(f"{PROGRAM}.yaml", trip_policy_text(effective))], actor=SYSTEM, at=at_hour(effective)
            )

        def user(session: Any, email: str, role: Role, institution: str | None = None) -> Actor:
            row = create_user(session, email=email, role=role, institution_code=institution, actor=SYSTEM, at=applied)
            return actor_for(row)

        with database.unit_of_work() as session:
            admin = user(session, "admin@bureau.example", Role.admin)
            reviewer = user(session, "reviewer@bureau.example", Role.reviewer)
            self.approver = user(session, "approver@bureau.example", Role.approver)
            self.supervisor = user(session, "supervisor@bureau.example", Role.supervisor)
        for i in range(1, self.n_pilots + 1):
            code = f"ALERT-{i:04d}"
            # One unit of work per bank: the services only flush, so the steps see each other.
            with database.unit_of_work() as session:
                body = InstitutionCreate.model_validate(
                    {
                        "code": code,
                        "name": f"Alert Bench Bank {i} Shanghai Branch",
                        "type": "domestic_bank",
                        "uscc": make_uscc("91", "310115", f"{40000000 + i:08d}"),
                        "region": "Shanghai",
                        "rating": 2,
                        "capital_adequacy_ratio": "0.15",
                        "npl_ratio": "0.012",
                        "contact_emails": [f"risk@{code.lower()}.example"],
                    }
                )
                create_institution(session, body, actor=admin, at=applied)
                bank_admin = user(session, f"admin@{code.lower()}.example", Role.institution_admin, code)
                filer = user(session, f"filer@{code.lower()}.example", Role.filer, code)
                data = ApplicationCreate.model_validate(
                    {
                        "program": PROGRAM,
                        "title": f"Tech-enterprise M&A loans, {code}",
                        "description": "Loans to technology enterprises acquiring control of a target.",
                        "requested_scope": SCOPE,
                        "requested_quotas": {"exposure_limit": QUOTA},
                        "start_on": first.start.isoformat(),
                        "end_on": months_before(last, -12).end.isoformat(),
                        "risk_controls": "Deal-by-deal credit committee; LTV and term hard limits.",
                        "consumer_protection": "Corporate borrowers only; standard disclosures.",
                        "exit_plan": "Run-off of the book at contractual maturity.",
                    }
                )
                app_id = applications.create_application(session, data, actor=bank_admin, at=applied).id
                applications.submit(session, app_id, actor=bank_admin, at=applied, expected_version=None)
                applications.start_review(session, app_id, actor=reviewer, at=applied, expected_version=None)
                applications.recommend(
                    session,
                    app_id,
                    "approve",
                    "Eligible; controls proportionate.",
                    actor=reviewer,
                    at=applied,
                    expected_version=None,
                )
                _, pilot = applications.approve(
                    session, app_id, ApproveBody(), actor=self.approver, at=applied, expected_version=None
                )
                self.pilots.append(BenchPilot(pilot.id, filer))
        with database.unit_of_work() as session:
            run_scan(session, as_of=first.start, at=at_hour(first.start, 0), calendars=self.calendars)
            self.seen.update(session.scalars(select(Alert.id)))
        self.setup_seconds = time.perf_counter() - started

    def between(self, database: Database, index: int) -> bool:
        """At the start of each round after the first: reset every pilot's tripped breaker and
        resume the pilot (a supervisor resets, another person resumes: four eyes)."""
        if index == 0 or index % self.n_pilots:
            return False
        assert self.supervisor is not None and self.approver is not None
        started = time.perf_counter()
        for pilot in self.pilots:
            now = datetime.now(UTC)
            with database.unit_of_work() as session:
                breaker_id = session.scalar(
                    select(Breaker.id).where(Breaker.pilot_id == pilot.id, Breaker.rule_id == TRIP_RULE)
                )
                assert breaker_id is not None
                breakers.reset(
                    session,
                    breaker_id,
                    "bench: balance back under quota",
                    actor=self.supervisor,
                    at=now,
                    expected_version=None,
                )
                pilots.run_command(
                    session, pilot.id, "resume", reason="bench: breaker reset", actor=self.approver, at=now
                )
                self.seen.update(row[0] for row in self._alerts_of(session, pilot.id))
        self.reset_seconds += time.perf_counter() - started
        return True

    def trigger(self, database: Database, index: int) -> dict[uuid.UUID, int]:
        round_, slot = divmod(index, self.n_pilots)
        pilot, period = self.pilots[slot], self.periods[round_]
        with database.unit_of_work() as session:
            _, _, judgement = submit_filing(
                session,
                pilot.id,
                FilingInput(period=period.label, metrics=dict(TRIP_METRICS)),
                actor=pilot.filer,
                at=datetime.now(UTC),
                channel="api",
                calendars=self.calendars,
            )
            tripped = [b.rule_id for b, signals in judgement.breakers if Signal.tripped in signals]
            # The alerts this transaction wrote: the pilot's that were not there before.
            rows = [row for row in self._alerts_of(session, pilot.id) if row[0] not in self.seen]
        self.seen.update(row[0] for row in rows)
        alerts = {alert_id: kind for alert_id, kind, _ in rows}
        recipients = {alert_id: n for alert_id, _, n in rows}
        if tripped != [TRIP_RULE] or list(alerts.values()) != ["breaker.tripped"]:
            raise SystemExit(
                f"filing {index} ({period.label}) tripped {tripped} and raised {sorted(alerts.values())}; "
                f"expected {TRIP_RULE} to trip and one breaker.tripped alert"
            )
        return recipients

    @staticmethod
    def _alerts_of(session: Any, pilot_id: uuid.UUID) -> list[tuple[uuid.UUID, str, int]]:
        """Each of the pilot's alerts: id, kind, number of recipients."""
        rows = session.execute(
            select(Alert.id, Alert.kind, func.count(AlertDelivery.id))
            .outerjoin(AlertDelivery, AlertDelivery.alert_id == Alert.id)
            .where(Alert.pilot_id == pilot_id)
            .group_by(Alert.id, Alert.kind)
        ).all()
        return [(alert_id, kind, int(n)) for alert_id, kind, n in rows]

    def describe(self) -> dict[str, Any]:
        return {
            "pilots": self.n_pilots,
            "rounds": self.rounds,
            "months": [p.label for p in self.periods],
            "rule": TRIP_RULE,
            "setup_seconds": round(self.setup_seconds, 1),
            "reset_and_resume_seconds": round(self.reset_seconds, 1),
        }


SCENARIOS: dict[str, Callable[[argparse.Namespace], Scenario]] = {
    "emit": lambda args: EmitAlert(),
    "trip": lambda args: TripOnFiling(args.alerts, args.pilots),
}


# --- the run ---------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
        "min": ordered[0],
        "mean": statistics.fmean(ordered),
    }


def run_backend(
    backend: str, scenario: Scenario, n_alerts: int, gap_ms: float, poll: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory() as folder,
        temp_database(backend, Path(folder)) as target,
        smtp_server() as (inbox, port),
        passes_logged() as passes,
    ):
        database = Database(target.engine)
        settings = Settings(
            environment=Environment.test,
            var_dir=Path(folder) / "var",
            database_url=target.url,
            smtp_url=f"smtp://127.0.0.1:{port}?timeout=10",
            secret_key="bench-secret-key-that-is-long-enough-0123",
        )
        scenario.prepare(database)
        load_before = os.getloadavg()
        stop = start_in_process(database, settings, poll_seconds=poll)
        committed: dict[uuid.UUID, float] = {}
        expected: dict[uuid.UUID, int] = {}
        trigger_ms: list[float] = []
        draining: list[tuple[float, float]] = []  # between rounds: those passes are not the events'
        try:
            drain(database)  # what the setup sent (applications decided...) is not measured
            started = time.perf_counter()
            for index in range(n_alerts):
                if scenario.between(database, index):
                    paused = time.perf_counter()
                    drain(database)
                    draining.append((paused, time.perf_counter()))
                time.sleep(rng.uniform(0, 2 * gap_ms / 1000))
                before = time.perf_counter()
                alerts = scenario.trigger(database, index)
                after = time.perf_counter()
                trigger_ms.append((after - before) * 1000)
                committed.update(dict.fromkeys(alerts, after))
                expected.update(alerts)
            delivered_all = inbox.wait_for(expected, timeout=30 + 2 * poll)
            elapsed = time.perf_counter() - started
            with database.sessions() as session:
                still_tripped = session.scalar(
                    select(func.count()).select_from(Breaker).where(Breaker.state == "tripped")
                )
        finally:
            stop()
    missing = {i for i, n in expected.items() if len(inbox.accepted.get(i, ())) < n}
    if not delivered_all or missing:
        raise SystemExit(f"{backend}: {len(missing)} of {len(expected)} alerts never reached the SMTP server")
    kinds = sorted({inbox.kinds[i] for i in committed})
    first = [(min(inbox.accepted[i].values()) - committed[i]) * 1000 for i in committed]
    last = [(max(inbox.accepted[i].values()) - committed[i]) * 1000 for i in committed]
    # Split each first email's latency at the start of the pass that sent it.
    waits, within = [], []
    for i in committed:
        accepted = min(inbox.accepted[i].values())
        start = passes.pass_start_before(accepted)
        assert start is not None
        waits.append((start - committed[i]) * 1000)
        within.append((accepted - start) * 1000)

    def timed(start: float) -> bool:
        return start >= started and not any(a <= start <= b for a, b in draining)

    timers_ms = [(end - start) * 1000 for start, end in passes.timers if timed(start)]
    working = [(s, e, n) for s, e, n in passes.deliveries if timed(s) and n]
    third = max(1, len(timers_ms) // 3)
    ms = summary(first)
    return {
        "backend": backend,
        "scenario": scenario.name,
        **scenario.describe(),
        "alerts": len(first),
        "kinds": kinds,
        "emails": sum(expected.values()),
        "poll_seconds": poll,
        "mean_gap_ms": gap_ms,
        "ms_p50": ms["p50"],
        "ms_p90": ms["p90"],
        "ms_p99": ms["p99"],
        "ms_max": ms["max"],
        "ms_min": ms["min"],
        "ms_mean": ms["mean"],
        "last_recipient_ms": summary(last),
        "wait_for_pass_ms": summary(waits),
        "within_pass_ms": summary(within),
        "trigger_ms": summary(trigger_ms),
        "trigger_ms_p50": percentile(sorted(trigger_ms), 50),
        "passes": len(timers_ms),
        "run_timers_ms": summary(timers_ms) if timers_ms else None,
        "run_timers_ms_p50_first_third": statistics.median(timers_ms[:third]) if timers_ms else None,
        "run_timers_ms_p50_last_third": statistics.median(timers_ms[-third:]) if timers_ms else None,
        "breakers_tripped_at_end": still_tripped,
        "working_passes": len(working),
        "claimed_per_working_pass_mean": statistics.fmean(n for _, _, n in working) if working else 0,
        "delivery_ms_per_working_pass": summary([(e - s) * 1000 for s, e, _ in working]) if working else None,
        "delivery_ms_per_email": sum(e - s for s, e, _ in working) * 1000 / sum(n for _, _, n in working)
        if working
        else None,
        "seconds": elapsed,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Latency from an alerting event committed to the SMTP server's acceptance of its email "
        "(in-process worker, aiosmtpd on loopback, a fresh database per backend).",
        epilog="Scenarios: 'emit' writes an alert straight into the outbox (the delivery path alone); "
        "'trip' files a filing whose balance is above the pilot's quota, so the shipped quota-trip "
        "rule trips and the breaker's hook writes the breaker.tripped alert in the filing's transaction. "
        "Figures and the machine's load are saved as JSON in bench/results/.",
    )
    parser.add_argument("--alerts", type=int, default=300, help="events to time: alerts (emit) or trips (trip)")
    parser.add_argument("--gap-ms", type=float, default=50.0, help="mean pause between events, uniform 0..2x")
    parser.add_argument("--poll", type=float, default=DEFAULT_POLL_SECONDS, help="the worker's poll interval, s")
    parser.add_argument("--seed", type=int, default=1, help="seed of the pauses")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="emit")
    parser.add_argument(
        "--pilots",
        type=int,
        default=None,
        help="trip only: pilots to trip (default: one per trip); with fewer, the trips run in rounds "
        f"of one per pilot, breakers reset and pilots resumed between rounds (at most {MAX_ROUNDS} rounds)",
    )
    args = parser.parse_args(argv)
    if args.alerts < 1 or args.gap_ms < 0 or args.poll <= 0:
        parser.error("need --alerts >= 1, --gap-ms >= 0 and --poll > 0")
    if args.pilots is not None:
        if args.scenario != "trip":
            parser.error("--pilots is for --scenario trip")
        if args.pilots < 1 or math.ceil(args.alerts / args.pilots) > MAX_ROUNDS:
            parser.error(f"need --pilots >= 1 and at most {MAX_ROUNDS} rounds (--alerts / --pilots)")

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for backend in backends:
        if backend == "postgresql":
            why = postgres_reachable()
            if why is not None:
                skipped[backend] = why
                print(f"postgresql: skipped ({why}); set SANDBOX_TEST_POSTGRES_URL")
                continue
        print(f"{backend}: {args.alerts} events ({args.scenario}), worker polling every {args.poll:g} s...")
        results.append(
            run_backend(backend, SCENARIOS[args.scenario](args), args.alerts, args.gap_ms, args.poll, args.seed)
        )

    print()
    print(
        "from the event's commit to the SMTP server's acceptance of its (first) email; "
        "in-process worker, aiosmtpd on loopback"
    )
    print(
        f"{'backend':<12}{'scenario':>9}{'alerts':>8}{'poll s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'mean ms':>9}{'event ms':>10}"
    )
    for r in results:
        print(
            f"{r['backend']:<12}{r['scenario']:>9}{r['alerts']:>8}{r['poll_seconds']:>8g}{r['ms_p50']:>9.1f}"
            f"{r['ms_p90']:>9.1f}{r['ms_p99']:>9.1f}{r['ms_max']:>9.1f}{r['ms_mean']:>9.1f}{r['trigger_ms_p50']:>10.1f}"
        )
    print()
    print("each (first) email's latency split at the start of the pass that sent it; the passes during the events")
    print(
        f"{'backend':<12}{'wait p50':>9}{'p99':>8}{'in pass p50':>12}{'p99':>8}{'all rcpts p99':>14}"
        f"{'timers p50':>11}{'max':>7}{'thirds p50':>15}{'emails/pass':>12}{'ms/email':>9}{'tripped':>8}"
    )
    for r in results:
        timers = r["run_timers_ms"] or {"p50": math.nan, "max": math.nan}
        thirds = f"{r['run_timers_ms_p50_first_third'] or math.nan:.0f} / {r['run_timers_ms_p50_last_third'] or math.nan:.0f}"
        print(
            f"{r['backend']:<12}{r['wait_for_pass_ms']['p50']:>9.1f}{r['wait_for_pass_ms']['p99']:>8.1f}"
            f"{r['within_pass_ms']['p50']:>12.1f}{r['within_pass_ms']['p99']:>8.1f}{r['last_recipient_ms']['p99']:>14.1f}"
            f"{timers['p50']:>11.1f}{timers['max']:>7.0f}{thirds:>15}{r['claimed_per_working_pass_mean']:>12.1f}"
            f"{r['delivery_ms_per_email'] or math.nan:>9.1f}{r['breakers_tripped_at_end']:>8}"
        )
    print(
        "(wait: commit to the pass's start; timers: run_timers per pass, ms, and its p50 in the first and last "
        "third of the passes; tripped: breakers left tripped at the end)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"alert_latency-{args.scenario}-{stamp}.json"
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(),
    }
    options = {k: v for k, v in vars(args).items()}
    out.write_text(
        json.dumps(
            {"when": stamp, "options": options, "machine": machine, "results": results, "skipped": skipped},
            indent=2,
            default=str,
        )
    )
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
