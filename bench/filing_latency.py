"""End-to-end latency of one API filing: POST /api/v1/pilots/{id}/filings through FastAPI's
TestClient, on a fresh SQLite file and on a fresh PostgreSQL database when one is reachable.

Each filing is checked, written with its audit entry, judged under the program's rules (the
exact path, ``judge``, over the pilot's history), its breakers stepped, and committed, all
before the response. One client files one request at a time (no concurrency: this is latency,
not contention); periods in order, every pilot's filing for a month before the next month, the
clock set to a few days after each month ends so the filings are on time.

    .venv/bin/python bench/filing_latency.py [--filings 300 --pilots 12 --seed 1] [--backend sqlite|postgresql|both]

PostgreSQL: ``SANDBOX_TEST_POSTGRES_URL`` (the tests' default: postgresql+psycopg://postgres@127.0.0.1:5432/postgres);
the benchmark creates its own database there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from sandbox import migrate
from sandbox.actor import SYSTEM, Actor
from sandbox.application import service as applications
from sandbox.application.schemas import ApplicationCreate, ApproveBody
from sandbox.clock import FixedClock
from sandbox.config import Environment, Settings
from sandbox.db import Database, make_engine
from sandbox.institution.identifiers import make_uscc
from sandbox.institution.schemas import InstitutionCreate
from sandbox.institution.service import create_institution
from sandbox.main import create_app
from sandbox.models import Role
from sandbox.program.calendars import load_calendars
from sandbox.program.service import load_policies
from sandbox.rules.periods import Period
from sandbox.scan import run_scan
from sandbox.user.service import actor_for, create_user, issue_token

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get("SANDBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PROGRAM = "SH-TECH-MA"
LAST_PERIOD = Period("monthly", 2026, 12)  # the last month the shipped working-day calendar covers
SCOPE = {
    "products": ["tech_ma_loan_control_acquisition"],
    "currencies": ["CNY"],
    "customer_segments": ["high_tech_enterprise", "specialised_sme"],
    "regions": ["Shanghai"],
    "target_industries": ["integrated_circuits", "artificial_intelligence"],
}


def at(day: date, hour: int = 2) -> datetime:
    return datetime.combine(day, clock_time(hour), tzinfo=UTC)


def months_before(period: Period, n: int) -> Period:
    ordinal = period.year * 12 + period.number - 1 - n
    return Period.from_ordinal("monthly", ordinal)


def policy_text(effective_from: date) -> str:
    """The shipped SH-TECH-MA policy with its rules, under a benchmark version: taking effect
    before the first period filed, long enough for every period, and open to more than the six
    institutions the real program admits."""
    original = (ROOT / "policies" / f"{PROGRAM}.yaml").read_text()
    lines = [line for line in original.splitlines() if not line.strip().startswith("max_institutions:")]
    result = "\n".join(lines) + "\n"
    for old, new in (
        ('version: "2025.1"', 'version: "bench"'),
        ("effective_from: 2025-09-01", f"effective_from: {effective_from.isoformat()}"),
        ("max_duration_months: 24", "max_duration_months: 120"),
    ):
        if old not in result:
            raise SystemExit(f"policies/{PROGRAM}.yaml changed: {old!r} not found; update bench/filing_latency.py")
        result = result.replace(old, new)
    return result


@dataclass
class Target:
    backend: str
    url: str
    engine: Engine
    drop: Callable[[], None]


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
    """A new database migrated to head, dropped afterwards (as tests/conftest.py does)."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        try:
            yield Target(backend, url, engine, engine.dispose)
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
        yield Target(backend, url, engine, engine.dispose)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


QUOTA = "4000000000"
# The shipped program caps the exposure granted over all its pilots at 50 billion, 12 pilots at
# the quota above; a benchmark with more pilots lifts it.
CAP = ("aggregate_cap: 50000000000", "aggregate_cap: 100000000000000")


@dataclass(frozen=True)
class BenchPilot:
    id: uuid.UUID
    reference: str
    institution: str
    filer: Actor
    token: str  # the filer's bearer token


@dataclass
class Setup:
    pilots: list[BenchPilot]
    periods: list[Period]


def set_up(database: Database, institutions: int, pilots_each: int, n_periods: int, *, lift_cap: bool = False) -> Setup:
    """Bureau users, then ``institutions`` banks, each with an admin, a filer and ``pilots_each``
    approved SH-TECH-MA applications, all made active by ``run_scan``: the same services the
    demo uses. Every pilot's first expected month is ``n_periods`` months before December 2026.
    ``lift_cap``: raise the program's aggregate cap, for more pilots than the shipped cap admits."""
    first = months_before(LAST_PERIOD, n_periods - 1)
    periods = [months_before(LAST_PERIOD, n) for n in reversed(range(n_periods))]
    effective = months_before(first, 12).start
    applied = months_before(first, 3).start
    text = policy_text(effective)
    if lift_cap:
        if CAP[0] not in text:
            raise SystemExit(f"policies/{PROGRAM}.yaml changed: {CAP[0]!r} not found; update bench/filing_latency.py")
        text = text.replace(*CAP)
    with database.unit_of_work() as session:
        load_policies(session, [(f"{PROGRAM}.yaml", text)], actor=SYSTEM, at=at(effective))

    def user(email: str, role: Role, institution: str | None) -> tuple[Actor, str]:
        with database.unit_of_work() as session:
            row = create_user(
                session, email=email, role=role, institution_code=institution, actor=SYSTEM, at=at(applied)
            )
            issued = issue_token(session, row, label="bench", actor=SYSTEM, at=at(applied))
            return actor_for(row), issued.token

    admin, _ = user("admin@bureau.example", Role.admin, None)
    reviewer, _ = user("reviewer@bureau.example", Role.reviewer, None)
    approver, _ = user("approver@bureau.example", Role.approver, None)
    pilots = []
    for i in range(1, institutions + 1):
        code = f"BENCH-{i:02d}"
        body = InstitutionCreate.model_validate(
            {
                "code": code,
                "name": f"Bench Bank {i} Shanghai Branch",
                "type": "domestic_bank",
                "uscc": make_uscc("91", "310115", f"{30000000 + i:08d}"),
                "region": "Shanghai",
                "rating": 2,
                "capital_adequacy_ratio": "0.15",
                "npl_ratio": "0.012",
                "contact_emails": [f"risk@{code.lower()}.example"],
            }
        )
        with database.unit_of_work() as session:
            create_institution(session, body, actor=admin, at=at(applied))
        bank_admin, _ = user(f"admin@{code.lower()}.example", Role.institution_admin, code)
        filer, token = user(f"filer@{code.lower()}.example", Role.filer, code)
        for j in range(1, pilots_each + 1):
            data = ApplicationCreate.model_validate(
                {
                    "program": PROGRAM,
                    "title": f"Tech-enterprise M&A loans, {code}, book {j}",
                    "description": "Loans to technology enterprises acquiring control of a target.",
                    "requested_scope": SCOPE,
                    "requested_quotas": {"exposure_limit": QUOTA},
                    "start_on": first.start.isoformat(),
                    "end_on": LAST_PERIOD.end.isoformat(),
                    "risk_controls": "Deal-by-deal credit committee; LTV and term hard limits.",
                    "consumer_protection": "Corporate borrowers only; standard disclosures.",
                    "exit_plan": "Run-off of the book at contractual maturity.",
                }
            )
            with database.unit_of_work() as session:
                app_id = applications.create_application(session, data, actor=bank_admin, at=at(applied)).id
            steps: list[tuple[Callable[..., Any], Actor, tuple[Any, ...]]] = [
                (applications.submit, bank_admin, ()),
                (applications.start_review, reviewer, ()),
                (applications.recommend, reviewer, ("approve", "Eligible; controls proportionate.")),
                (applications.approve, approver, (ApproveBody(),)),
            ]
            result: Any = None
            for step, actor, args in steps:
                with database.unit_of_work() as session:
                    result = step(session, app_id, *args, actor=actor, at=at(applied), expected_version=None)
            _, pilot = result
            pilots.append(BenchPilot(pilot.id, pilot.reference, code, filer, token))
    with database.unit_of_work() as session:
        run_scan(session, as_of=first.start, at=at(first.start, 0), calendars=load_calendars(ROOT / "policies"))
    return Setup(pilots, periods)


def metrics_for(rng: np.random.Generator, npl: float) -> dict[str, str]:
    """One month's figures as a bank files them (decimal text); NPL drifts per pilot, so some
    pilots warn and trip over the months."""
    return {
        "exposure_outstanding": f"{rng.uniform(1e9, 3.7e9):.2f}",
        "new_lending_amount": f"{rng.uniform(0, 4e8):.2f}",
        "deals_count": str(int(rng.integers(1, 40))),
        "ltv_max_new": f"{rng.uniform(0.5, 0.8):.4f}",
        "term_max_new_years": f"{rng.uniform(3, 10):.2f}",
        "npl_ratio": f"{npl:.4f}",
        "overdue90_ratio": f"{rng.uniform(0, 0.02):.4f}",
        "top1_share": f"{rng.uniform(0.05, 0.2):.4f}",
    }


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run_backend(backend: str, n_filings: int, n_pilots: int, seed: int) -> dict[str, Any]:
    n_periods = math.ceil(n_filings / n_pilots)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder, temp_database(backend, Path(folder)) as target:
        database = Database(target.engine)
        started = time.perf_counter()
        setup = set_up(database, n_pilots, 1, n_periods)
        setup_seconds = time.perf_counter() - started
        settings = Settings(
            environment=Environment.test,
            var_dir=Path(folder) / "var",
            policies_dir=ROOT / "policies",
            secret_key="bench-secret-key-that-is-long-enough-0123",
            log_requests=False,
        )
        clock = FixedClock(at(setup.periods[0].end))
        app = create_app(settings, database=database, clock=clock)
        npl = {pilot.id: float(rng.uniform(0.005, 0.02)) for pilot in setup.pilots}
        latencies: list[float] = []
        breaches = 0
        with TestClient(app, raise_server_exceptions=True) as client:
            loop_start = time.perf_counter()
            for period in setup.periods:
                clock.at = at(date.fromordinal(period.end.toordinal() + 5))
                for bench_pilot in setup.pilots:
                    pilot, token = bench_pilot.id, bench_pilot.token
                    if len(latencies) == n_filings:
                        break
                    npl[pilot] = max(0.0, npl[pilot] + float(rng.normal(0.0003, 0.003)))
                    body = {"period": period.label, "metrics": metrics_for(rng, npl[pilot])}
                    t0 = time.perf_counter()
                    response = client.post(
                        f"/api/v1/pilots/{pilot}/filings", json=body, headers={"Authorization": f"Bearer {token}"}
                    )
                    latencies.append(time.perf_counter() - t0)
                    if response.status_code != 201:
                        raise SystemExit(f"filing {period.label} refused: {response.status_code} {response.text[:500]}")
                    outcomes = response.json()["evaluation"]["outcomes"]
                    breaches += sum(1 for o in outcomes if o["status"] == "breach")
            loop_seconds = time.perf_counter() - loop_start
        ms = sorted(x * 1000 for x in latencies)
        third = max(1, len(latencies) // 3)
        return {
            "backend": backend,
            "filings": len(latencies),
            "pilots": n_pilots,
            "periods_per_pilot": n_periods,
            "rules": len(outcomes),
            "rule_breaches_reported": breaches,
            "setup_seconds": setup_seconds,
            "ms_p50": percentile(ms, 50),
            "ms_p90": percentile(ms, 90),
            "ms_p99": percentile(ms, 99),
            "ms_mean": statistics.fmean(ms),
            "ms_min": ms[0],
            "ms_max": ms[-1],
            "ms_first": latencies[0] * 1000,
            # Does a filing get slower as the pilot's history grows?
            "ms_p50_first_third": statistics.median(x * 1000 for x in latencies[:third]),
            "ms_p50_last_third": statistics.median(x * 1000 for x in latencies[-third:]),
            "filings_per_second": len(latencies) / loop_seconds,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Latency of one API filing, end to end, single client.")
    parser.add_argument("--filings", type=int, default=300)
    parser.add_argument("--pilots", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    if args.filings < 1 or args.pilots < 1 or math.ceil(args.filings / args.pilots) > 120:
        parser.error("need --filings >= 1, --pilots >= 1 and at most 120 periods per pilot")

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
        print(f"{backend}: setting up {args.pilots} pilots, then {args.filings} filings...")
        results.append(run_backend(backend, args.filings, args.pilots, args.seed))

    print()
    print("one client, one request at a time (latency, not contention); TestClient, in process")
    print(
        f"{'backend':<12}{'filings':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'mean ms':>9}"
        f"{'filings/s':>11}{'p50 early/late third':>22}"
    )
    for r in results:
        print(
            f"{r['backend']:<12}{r['filings']:>8}{r['ms_p50']:>9.1f}{r['ms_p90']:>9.1f}{r['ms_p99']:>9.1f}"
            f"{r['ms_max']:>9.1f}{r['ms_mean']:>9.1f}{r['filings_per_second']:>11.1f}"
            f"{r['ms_p50_first_third']:>13.1f} / {r['ms_p50_last_third']:.1f}"
        )
    if results:
        r = results[0]
        print(
            f"({r['pilots']} pilots x {r['periods_per_pilot']} months, {r['rules']} rules judged per filing, "
            f"{r['rule_breaches_reported']} breaches reported in all on {r['backend']})"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"filing_latency-{stamp}.json"
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(),
    }
    out.write_text(json.dumps({"when": stamp, "machine": machine, "results": results, "skipped": skipped}, indent=2))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
