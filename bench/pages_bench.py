"""Web page latency on the demo data, against the JSON API answering for the same object.

The demo (a year of filings for seven pilots, the breakers, exemptions and applications of its
story) is built once per backend in a fresh database. Each page is then requested ``--requests``
times in process (Starlette's TestClient: routing, the session cookie, the services, the
templates and, on the pilot page, one SVG chart per metric; no network), signed in as the demo's
supervisor, and timed from request to complete body. Each page is paired with a peer measured
in the same run, in alternation with it so both see the same load:

- the pilot page against ``GET /api/v1/pilots/{id}`` plus ``GET /api/v1/pilots/{id}/evaluations``
  (the JSON a script would fetch to draw the same history);
- every page against ``GET /healthz``, the floor of a request through the same middleware.

    .venv/bin/python bench/pages_bench.py [--requests 200] [--backend sqlite|postgresql|both]

PostgreSQL: ``SANDBOX_TEST_POSTGRES_URL`` (the tests' default), a database created and dropped by
the benchmark; skipped, saying why, when no server answers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from filing_latency import RESULTS, ROOT, postgres_reachable, temp_database  # bench/ is first on sys.path
from sqlalchemy import select

from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.demo.scenario import build
from sandbox.main import create_app
from sandbox.models import Application, Breaker, Exemption, Institution, Pilot, Program, User
from sandbox.web.auth import COOKIE_NAME, encode_session, new_session

AS_OF = date(2026, 11, 28)
NOW = datetime(2026, 11, 28, 2, tzinfo=UTC)


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def _time(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return elapsed


def run(backend: str, requests: int, folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with temp_database(backend, folder) as target:
        database = Database.from_url(target.url)
        started = time.perf_counter()
        result = build(database, ROOT / "policies", AS_OF)
        print(f"{backend}: demo built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with database.unit_of_work() as session:
            supervisor = session.scalars(select(User).where(User.email == "supervisor@bureau.example")).one()
            pilot = session.scalars(
                select(Pilot)
                .join(Institution, Institution.id == Pilot.institution_id)
                .join(Program, Program.id == Pilot.program_id)
                .where(Institution.code == "BANK-A", Program.code == "SH-TECH-MA")
            ).one()
            application = session.scalars(select(Application).where(Application.state == "recommended")).first()
            breaker = session.scalars(select(Breaker).where(Breaker.pilot_id == pilot.id)).first()
            exemption = session.scalars(select(Exemption)).first()
        assert application is not None and breaker is not None and exemption is not None
        settings = Settings(
            var_dir=folder / "var", database_url=target.url, policies_dir=ROOT / "policies", now=NOW, log_requests=False
        )
        app = create_app(settings, database=database, clock=FixedClock(NOW))
        token = result.tokens["supervisor@bureau.example"][2]
        api = {"Authorization": f"Bearer {token}"}
        with TestClient(app) as client:
            client.cookies.set(COOKIE_NAME, encode_session(settings, new_session(supervisor.id, now=NOW)))
            pages = {
                "work queues /": "/",
                "pilot page (charts)": f"/pilots/{pilot.id}",
                "breaker board": "/breakers",
                "breaker page": f"/breakers/{breaker.id}",
                "exemption page": f"/exemptions/{exemption.id}",
                "application page": f"/applications/{application.id}",
                "filings": "/filings",
                "audit trail of the pilot": f"/audit?object_type=pilot&object_id={pilot.id}",
            }

            def pilot_json() -> Any:
                client.get(f"/api/v1/pilots/{pilot.id}", headers=api)
                return client.get(f"/api/v1/pilots/{pilot.id}/evaluations?limit=200", headers=api)

            for _ in range(5):  # warm the caches (compiled policies, templates)
                for path in pages.values():
                    client.get(path)
                pilot_json()
            for name, path in pages.items():
                page, floor, peer = [], [], []
                for _ in range(requests):
                    page.append(_time(lambda p=path: client.get(p)))  # type: ignore[misc]
                    floor.append(_time(lambda: client.get("/healthz")))
                    if path.startswith("/pilots/"):
                        peer.append(_time(pilot_json))
                row: dict[str, Any] = {"backend": backend, "page": name, **_ms(page)}
                row["healthz_p50_ms"] = _ms(floor)["p50_ms"]
                row["x_healthz"] = round(row["p50_ms"] / row["healthz_p50_ms"], 1)
                if peer:
                    row["api_json_p50_ms"] = _ms(peer)["p50_ms"]
                    row["x_api_json"] = round(row["p50_ms"] / row["api_json_p50_ms"], 2)
                rows.append(row)
        database.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if backend == "postgresql" and (why := postgres_reachable()) is not None:
                print(f"postgresql skipped: {why}", file=sys.stderr)
                continue
            rows.extend(run(backend, args.requests, Path(tmp)))
    print(f"{'backend':<11}{'page':<27}{'p50 ms':>8}{'p99 ms':>8}{'x healthz':>11}{'x API JSON':>12}")
    for row in rows:
        peer = f"{row['x_api_json']:>12}" if "x_api_json" in row else f"{'':>12}"
        print(f"{row['backend']:<11}{row['page']:<27}{row['p50_ms']:>8}{row['p99_ms']:>8}{row['x_healthz']:>11}{peer}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pages-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"machine": platform.platform(), "requests": args.requests, "rows": rows}, indent=2))
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
