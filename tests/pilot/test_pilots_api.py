from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from sandbox.db import Database
from sandbox.models import QuotaAllocation
from sandbox.program.calendars import load_calendars
from sandbox.scan import run_scan
from tests.application.test_applications_api import assert_problem
from tests.support import NOW, ROOT
from tests.world import World

API = "/api/v1/pilots"


def cmd(
    world: World,
    pilot: dict[str, Any],
    command: str,
    login: Any,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    return world.client.post(f"{API}/{pilot['id']}/{command}", json=body, headers={**login.headers, **(headers or {})})


def scan(database: Database, day: date) -> Any:
    with database.unit_of_work() as session:
        return run_scan(session, as_of=day, at=NOW, calendars=load_calendars(ROOT / "policies"))


def live_total(database: Database) -> int:
    with database.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(QuotaAllocation).where(QuotaAllocation.released_at.is_(None))
            )
            or 0
        )


def test_scan_activates_on_start_date_and_is_idempotent(world: World, database: Database) -> None:
    pilot = world.to_pilot()
    assert pilot["state"] == "approved"
    assert scan(database, date(2026, 11, 30)).activated == []
    assert scan(database, date(2026, 12, 1)).activated == [pilot["reference"]]
    assert scan(database, date(2026, 12, 1)).activated == []
    assert world.client.get(f"{API}/{pilot['id']}", headers=world.bank_a.headers).json()["state"] == "active"


def test_suspend_resume_complete_by_the_right_roles(world: World, database: Database) -> None:
    pilot = world.to_pilot()
    scan(database, date(2026, 12, 1))
    assert_problem(cmd(world, pilot, "suspend", world.approver, {"reason": "x"}), 403, "forbidden")
    assert_problem(cmd(world, pilot, "suspend", world.supervisor, {}), 422, "validation-error")
    suspended = cmd(world, pilot, "suspend", world.supervisor, {"reason": "complaints surge under investigation"})
    assert suspended.json()["state"] == "suspended"
    assert suspended.json()["state_reason"] == "complaints surge under investigation"
    assert_problem(cmd(world, pilot, "resume", world.supervisor, {"reason": "x"}), 403, "forbidden")
    assert cmd(world, pilot, "resume", world.approver, {"reason": "investigation closed"}).json()["state"] == "active"
    done = cmd(world, pilot, "complete", world.approver)
    assert done.json()["state"] == "completed" and done.json()["allowed_commands"] == []
    assert live_total(database) == 0  # quotas released when the pilot ended
    body = assert_problem(cmd(world, pilot, "resume", world.approver, {"reason": "again"}), 409, "illegal-transition")
    assert body["current_state"] == "completed"


def test_ending_a_pilot_frees_its_quota_for_others(world: World) -> None:
    pilots = [
        world.to_pilot(login, requested_quotas={"exposure_limit": "15000000000"})
        for login in (world.bank_a, world.bank_b, world.bank_d)
    ]
    blocked = world.to_recommended(world.bank_a, requested_quotas={"exposure_limit": "15000000000"})
    assert_problem(world.command(blocked["id"], "approve", world.approver), 409, "quota-exceeded")
    assert (
        cmd(world, pilots[0], "terminate", world.approver, {"reason": "institution breached conditions"}).json()[
            "state"
        ]
        == "terminated"
    )
    assert world.command(blocked["id"], "approve", world.approver).status_code == 200


def test_institution_withdraws_its_own_pilot_only(world: World) -> None:
    pilot = world.to_pilot()
    assert cmd(world, pilot, "withdraw", world.bank_b, {"reason": "x"}).status_code == 404
    assert_problem(cmd(world, pilot, "withdraw", world.filer_a, {"reason": "x"}), 403, "forbidden")
    assert cmd(world, pilot, "withdraw", world.bank_a, {"reason": "strategy change"}).json()["state"] == "withdrawn"


def test_extension_within_program_limits(world: World) -> None:
    # SH-TECH-MA: 24 months, one extension of at most 12 months.
    pilot = world.to_pilot(start_on="2026-12-01", end_on="2028-11-30")
    too_far = cmd(world, pilot, "extend", world.approver, {"end_on": "2029-12-31", "reason": "more time"})
    assert_problem(too_far, 422, "validation-error")
    assert_problem(
        cmd(world, pilot, "extend", world.approver, {"end_on": "2028-01-01", "reason": "shorter"}),
        422,
        "validation-error",
    )
    ok = cmd(world, pilot, "extend", world.approver, {"end_on": "2029-11-30", "reason": "book still ramping up"})
    assert ok.status_code == 200, ok.text
    assert (
        ok.json()["end_on"] == "2029-11-30"
        and ok.json()["original_end_on"] == "2028-11-30"
        and ok.json()["extensions"] == 1
    )
    body = assert_problem(
        cmd(world, pilot, "extend", world.approver, {"end_on": "2029-12-31", "reason": "again"}), 409, "conflict"
    )
    assert body["max_extensions"] == 1


def test_stale_if_match_on_a_pilot_command(world: World) -> None:
    pilot = world.to_pilot()
    etag = world.client.get(f"{API}/{pilot['id']}", headers=world.approver.headers).headers["ETag"]
    cmd(world, pilot, "extend", world.approver, {"end_on": "2029-11-30", "reason": "r"}, headers={"If-Match": etag})
    assert_problem(
        cmd(world, pilot, "terminate", world.approver, {"reason": "r"}, headers={"If-Match": etag}),
        412,
        "precondition-failed",
    )
    assert_problem(
        cmd(world, pilot, "terminate", world.approver, {"reason": "r"}, headers={"If-Match": "garbage"}),
        400,
        "bad-request",
    )


def test_scan_expires_pilots_past_their_end_date(world: World, database: Database) -> None:
    pilot = world.to_pilot(start_on="2026-12-01", end_on="2027-05-31")
    scan(database, date(2026, 12, 1))
    report = scan(database, date(2027, 6, 1))
    assert report.expired == [pilot["reference"]]
    assert world.client.get(f"{API}/{pilot['id']}", headers=world.bank_a.headers).json()["state"] == "expired"
    assert live_total(database) == 0


def test_pilot_lists_are_scoped_to_the_institution(world: World) -> None:
    mine = world.to_pilot(world.bank_a)
    world.to_pilot(world.bank_b)
    listed = world.client.get(API, headers=world.filer_a.headers).json()
    assert [p["id"] for p in listed["items"]] == [mine["id"]]
    assert world.client.get(API, headers=world.supervisor.headers).json()["total"] == 2
    assert world.client.get(API, params={"state": "bogus"}, headers=world.supervisor.headers).status_code == 422


def test_public_register_shows_no_internal_data_and_needs_no_token(world: World) -> None:
    world.to_pilot(approve_body={"conditions": ["Confidential condition"]})
    response = world.client.get("/api/v1/public/pilots")
    assert response.status_code == 200
    item = response.json()["items"][0]
    assert set(item) == {"reference", "institution", "program", "program_title", "title", "start_on", "end_on", "state"}
    assert "Confidential" not in response.text and "@" not in response.text
