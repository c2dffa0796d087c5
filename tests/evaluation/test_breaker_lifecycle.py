from __future__ import annotations

from typing import Any

from sandbox.evaluation.replay import replay
from tests.application.test_applications_api import assert_problem
from tests.evaluation.conftest import Live


def outcome(response: Any, rule_id: str) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(next(o for o in response.json()["evaluation"]["outcomes"] if o["rule_id"] == rule_id))


def test_breaker_trips_after_two_periods_suspends_and_needs_people_to_resume(live: Live) -> None:
    world = live.world
    first = outcome(live.file("2026-02", npl_ratio="0.031"), "npl-trip")
    assert first["status"] == "breach" and first["breaker"]["state"] == "watch"
    assert first["comparison"] == {"left": "0.031", "operator": ">=", "threshold": "0.03"}
    assert "0.031" in first["explanation"]
    assert live.get_pilot()["state"] == "active"

    second = outcome(live.file("2026-03", npl_ratio="0.032"), "npl-trip")
    assert second["breaker"]["state"] == "tripped" and "tripped" in second["breaker"]["signals"]
    pilot = live.get_pilot()
    assert pilot["state"] == "suspended" and "npl-trip" in pilot["state_reason"]

    # Suspended pilots still file; resume is refused while the breaker is open.
    blocked = world.client.post(
        f"/api/v1/pilots/{live.pilot['id']}/resume", json={"reason": "x"}, headers=world.approver.headers
    )
    body = assert_problem(blocked, 409, "conflict")
    assert body["open_breakers"][0]["rule_id"] == "npl-trip"

    band = outcome(live.file("2026-04", npl_ratio="0.027"), "npl-trip")  # between clear (0.025) and trip (0.03)
    assert band["status"] == "pass" and band["clear"] is False and band["breaker"]["state"] == "tripped"
    cleared = outcome(live.file("2026-05", npl_ratio="0.02"), "npl-trip")
    assert cleared["breaker"]["signals"] == ["condition_cleared"] and cleared["breaker"]["state"] == "tripped"

    breaker = live.breaker("npl-trip")
    url = f"/api/v1/breakers/{breaker['id']}"
    assert_problem(
        world.client.post(f"{url}/reset", json={}, headers=world.supervisor.headers), 422, "validation-error"
    )
    assert_problem(
        world.client.post(f"{url}/reset", json={"reason": "x"}, headers=world.bank_a.headers), 403, "forbidden"
    )
    assert_problem(
        world.client.post(f"{url}/reset", json={"reason": "x"}, headers=world.approver.headers), 403, "forbidden"
    )
    acked = world.client.post(
        f"{url}/acknowledge", json={"note": "seen, calling the bank"}, headers=world.supervisor.headers
    )
    assert acked.json()["state"] == "acknowledged"
    reset = world.client.post(
        f"{url}/reset",
        json={"reason": "NPL back under 2.5%; remediation plan accepted"},
        headers=world.supervisor.headers,
    )
    assert reset.json()["state"] == "probation"
    resumed = world.client.post(
        f"/api/v1/pilots/{live.pilot['id']}/resume",
        json={"reason": "breaker reset after review"},
        headers=world.approver.headers,
    )
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"

    assert outcome(live.file("2026-06", npl_ratio="0.02"), "npl-trip")["breaker"]["state"] == "probation"
    rearmed = outcome(live.file("2026-07", npl_ratio="0.02"), "npl-trip")
    assert rearmed["breaker"]["state"] == "armed" and rearmed["breaker"]["signals"] == ["rearmed"]

    history = world.client.get(url, headers=world.supervisor.headers).json()["events"]
    assert [e["kind"] for e in history] == ["evaluated"] * 4 + ["acknowledged", "reset"] + ["evaluated"] * 2
    with live.database.sessions() as session:
        report = replay(session)
    assert report.differences == [] and report.evaluations == 6


def test_a_breach_in_probation_trips_again_at_once_as_a_repeat(live: Live) -> None:
    world = live.world
    live.file("2026-02", npl_ratio="0.04")
    live.file("2026-03", npl_ratio="0.04")
    breaker = live.breaker("npl-trip")
    world.client.post(
        f"/api/v1/breakers/{breaker['id']}/reset",
        json={"reason": "data error corrected"},
        headers=world.supervisor.headers,
    )
    repeat = outcome(live.file("2026-04", npl_ratio="0.035"), "npl-trip")
    assert repeat["breaker"]["state"] == "tripped" and repeat["breaker"]["signals"] == ["tripped", "repeat_trip"]
    assert live.breaker("npl-trip")["trips"] == 2


def test_boundaries_are_exact(live: Live) -> None:
    at_level = outcome(live.file("2026-02", npl_ratio="0.03", exposure_outstanding="5000000000"), "npl-trip")
    assert at_level["status"] == "breach"  # >= 0.03 fires on 0.03
    warn = outcome(live.file("2026-03", npl_ratio="0.0199"), "npl-warn")
    assert warn["status"] == "pass"
    cap = outcome(live.file("2026-04", exposure_outstanding="5000000000"), "exposure-cap")
    assert cap["status"] == "pass"  # exactly the quota: > 1 does not fire on 1
    over = outcome(live.file("2026-05", exposure_outstanding="5000000000.01"), "exposure-cap")
    assert over["status"] == "breach" and over["reads"]["quota.exposure_limit"] == "5000000000"


def test_shadow_rules_are_recorded_but_change_nothing(live: Live) -> None:
    live.file("2026-02", exposure_outstanding="1000000000")
    grown = outcome(live.file("2026-03", exposure_outstanding="2000000000"), "loss-growth")
    assert grown["status"] == "breach" and grown["mode"] == "shadow" and "breaker" not in grown
    assert all(
        b["rule_id"] != "loss-growth"
        for b in live.world.client.get("/api/v1/breakers", headers=live.world.supervisor.headers).json()["items"]
    )
