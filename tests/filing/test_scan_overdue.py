"""The daily scan judges periods left unfiled past their due date (10 working days after the
month on China's calendar), once; `sandbox scan --as-of` says how many it judged."""

from __future__ import annotations

from datetime import date
from typing import Any

from sandbox.program.calendars import load_calendars
from sandbox.scan import ScanReport, run_scan
from tests.evaluation.conftest import Live, at
from tests.filing.conftest import Committed, rows
from tests.support import ROOT


def scan(live: Live, day: str) -> ScanReport:
    with live.database.unit_of_work() as session:
        return run_scan(session, as_of=date.fromisoformat(day), at=at(day), calendars=load_calendars(ROOT / "policies"))


def evaluations(live: Live, period: str) -> list[dict[str, Any]]:
    response = live.world.client.get(
        f"/api/v1/pilots/{live.pilot['id']}/evaluations",
        params={"period": period},
        headers=live.world.supervisor.headers,
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def by_rule(evaluation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["rule_id"]: o for o in evaluation["outcomes"]}


def test_an_unfiled_period_is_judged_missing_the_day_after_its_due_date_and_only_once(watched: Live) -> None:
    live, reference = watched, watched.pilot["reference"]
    before = rows(live.database)
    # February 2026 is due on Friday 13 March (10 working days); on the due date it is not late.
    assert scan(live, "2026-03-13").overdue == []
    assert rows(live.database) == before

    report = scan(live, "2026-03-14")
    assert report.overdue == [f"{reference} 2026-02"]
    [missing] = evaluations(live, "2026-02")
    assert missing["trigger"] == "missing" and missing["filing_version_id"] is None
    outcomes = by_rule(missing)
    assert outcomes["filing-missing"]["status"] == "breach"
    # `not filing.filed` breached: the rule saw the period as unfiled.
    assert "No filing received for 2026-02 by its due date" in outcomes["filing-missing"]["explanation"]
    assert outcomes["filing-missing"]["breaker"]["state"] == "tripped"
    assert outcomes["npl-trip"]["status"] == "missing" and outcomes["npl-trip"]["reads"] == {"npl_ratio": None}
    assert outcomes["exposure-cap"]["status"] == "missing"
    assert live.get_pilot()["state"] == "suspended"
    judged = rows(live.database)
    assert judged.evaluations == before.evaluations + 1 and judged.filings == before.filings

    # The same date again (a worker retry), and the next day: nothing more for February.
    assert scan(live, "2026-03-14").overdue == []
    assert scan(live, "2026-03-15").overdue == []
    assert rows(live.database) == judged

    # Filed late, February is judged on its figures; the filing says how late it was.
    live.clock.at = at("2026-03-20")
    late = live.file("2026-02")
    assert late.status_code == 201, late.text
    assert late.json()["current"]["days_late"] == 7 and late.json()["due_on"] == "2026-03-13"
    outcomes = {o["rule_id"]: o for o in late.json()["evaluation"]["outcomes"]}
    assert outcomes["filing-missing"]["status"] == "pass" and outcomes["npl-trip"]["status"] == "pass"
    assert [e["trigger"] for e in evaluations(live, "2026-02")] == ["filing", "missing"]


def test_the_deadline_counts_working_days_on_chinas_calendar(watched: Live) -> None:
    live, reference = watched, watched.pilot["reference"]
    for period, day in (("2026-02", "2026-03-10"), ("2026-03", "2026-04-10")):
        live.clock.at = at(day)
        assert live.file(period).status_code == 201
    # April ends on a Thursday; 1-5 May are Labour Day holidays and Saturday 9 May is worked, so
    # the 10th working day is Monday 18 May (weekends alone would make it Thursday 14 May).
    before = rows(live.database)
    assert scan(live, "2026-05-15").overdue == []
    assert scan(live, "2026-05-18").overdue == []
    assert rows(live.database) == before
    assert scan(live, "2026-05-19").overdue == [f"{reference} 2026-04"]
    # September is due on 20 October, after the National Day week and the worked Saturday 10 October.
    assert scan(live, "2026-10-20").overdue == [f"{reference} 2026-{m:02d}" for m in range(5, 9)]
    assert scan(live, "2026-10-21").overdue == [f"{reference} 2026-09"]
    [september] = evaluations(live, "2026-09")
    assert september["trigger"] == "missing"
    assert evaluations(live, "2026-03")[0]["trigger"] == "filing"  # filed periods are never judged missing
    assert rows(live.database).evaluations == before.evaluations + 6


def test_cli_scan_prints_the_overdue_count(committed: Committed) -> None:
    reference = committed.live.pilot["reference"]
    early = committed.sandbox("scan", "--as-of", "2026-03-13")
    assert early.exit_code == 0, early.output
    assert "scan as of 2026-03-13: 0 activated, 0 expired, 0 overdue filing(s) judged" in early.stdout
    first = committed.sandbox("scan", "--as-of", "2026-04-16")
    assert first.exit_code == 0, first.output
    assert "2 overdue filing(s) judged" in first.stdout
    assert f"overdue   {reference} 2026-02" in first.stdout and f"overdue   {reference} 2026-03" in first.stdout
    again = committed.sandbox("scan", "--as-of", "2026-04-16")
    assert again.exit_code == 0 and "0 overdue filing(s) judged" in again.stdout
    assert committed.sandbox("scan", "--as-of", "2026-13-01").exit_code == 2
