"""Filing one pilot-period through the JSON API: values, periods, pilot states and access,
re-filing and amendments, Idempotency-Key. Every refusal writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox.models import PilotState
from tests.application.test_applications_api import assert_problem
from tests.evaluation.conftest import Live, at
from tests.filing.conftest import post_raw, raw_body, rows
from tests.support import Login


def url(live: Live) -> str:
    return f"/api/v1/pilots/{live.pilot['id']}/filings"


def post(live: Live, body: dict[str, Any], login: Login | None = None, *, key: str | bytes | None = None) -> Any:
    headers = [(name.encode(), value.encode()) for name, value in (login or live.world.filer_a).headers.items()]
    if key is not None:
        headers.append((b"Idempotency-Key", key.encode() if isinstance(key, str) else key))
    return live.world.client.post(url(live), json=body, headers=headers)


def locations(response: Any) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["errors"]]


def outcome(response: Any, rule_id: str) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(next(o for o in response.json()["evaluation"]["outcomes"] if o["rule_id"] == rule_id))


def test_values_outside_the_number_grammar_or_the_catalogue_are_refused_where_they_are(live: Live) -> None:
    before = rows(live.database)
    grammar = ["NaN", "Infinity", "-1,000", "1,000", "１２", "1e99", " 5", "5 ", "0x10", "", "1.", ".5"]
    for text in grammar:
        refused = post(live, live.body("2026-02", npl_ratio=text))
        assert_problem(refused, 422, "validation-error")
        assert locations(refused) == [["body", "metrics", "npl_ratio"]], text
    for token in ("true", "null", "[1]", '{"v": 1}', "0.5e400"):
        refused = post_raw(live, raw_body(live, "2026-02", token))
        assert_problem(refused, 422, "validation-error")
        assert locations(refused) == [["body", "metrics", "npl_ratio"]], token
    for token in ("NaN", "Infinity", "-Infinity"):  # not JSON at all: the parser refuses the body
        body = assert_problem(post_raw(live, raw_body(live, "2026-02", token)), 422, "validation-error")
        assert body["errors"][0]["type"] == "json_invalid" and token.lstrip("-") in body["detail"], token
    # A key given twice is ambiguous: refused, never "the last one wins".
    twice = raw_body(live, "2026-02", '"0.01"').replace(
        '"npl_ratio": "0.01"', '"npl_ratio": "0.01", "npl_ratio": "0.05"'
    )
    body = assert_problem(post_raw(live, twice), 422, "validation-error")
    assert "duplicate key 'npl_ratio'" in body["detail"]

    catalogue_cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"npl_ratio": "0.01234"}, ["body", "metrics", "npl_ratio"]),  # 4 decimals allowed
        ({"deals_count": "3.5"}, ["body", "metrics", "deals_count"]),  # a count
        ({"exposure_outstanding": "-0.01"}, ["body", "metrics", "exposure_outstanding"]),  # below min 0
        ({"npl_ratio": "1.0001"}, ["body", "metrics", "npl_ratio"]),  # above max 1
        ({"loan_loss_ratio": "0.1"}, ["body", "metrics", "loan_loss_ratio"]),  # not in the catalogue
    ]
    for metrics, loc in catalogue_cases:
        refused = post(live, live.body("2026-02", **metrics))
        assert_problem(refused, 422, "validation-error")
        assert locations(refused) == [loc], metrics
    missing = live.body("2026-02")
    del missing["metrics"]["npl_ratio"]
    body = assert_problem(post(live, missing), 422, "validation-error")
    assert [(e["loc"], e["msg"]) for e in body["errors"]] == [
        (["body", "metrics", "npl_ratio"], "npl_ratio is required by the program")
    ]

    # Every problem of one filing at once, each where it is.
    several = live.body("2026-02", npl_ratio="0.12345", top1_share="2", deals_count="-1")
    several["breakdown"] = [{"metric": "exposure_outstanding", "value": "1", "dimensions": {"planet": "Mars"}}]
    body = assert_problem(post(live, several), 422, "validation-error")
    by_place = {tuple(e["loc"]): e["msg"] for e in body["errors"]}
    assert set(by_place) == {
        ("body", "metrics", "npl_ratio"),
        ("body", "metrics", "top1_share"),
        ("body", "metrics", "deals_count"),
        ("body", "breakdown", 0, "dimensions"),
    }
    assert "unknown scope dimension(s) planet" in by_place[("body", "breakdown", 0, "dimensions")]
    # Unknown fields anywhere in the body are refused too.
    for extra in ({"status": "accepted"}, {"pilot_id": str(uuid.uuid4())}, {"version": 3}):
        assert_problem(post(live, {**live.body("2026-02"), **extra}), 422, "validation-error")
    assert rows(live.database) == before


def test_breakdown_outside_the_granted_scope_is_kept_and_trips_within_scope(live: Live) -> None:
    inside = live.body("2026-02")
    inside["breakdown"] = [
        {
            "metric": "exposure_outstanding",
            "value": "2000000000",
            "dimensions": {"regions": "Shanghai", "products": "tech_ma_loan_control_acquisition"},
        },
    ]
    assert outcome(post(live, inside), "within-scope")["status"] == "pass"

    outside = live.body("2026-03")
    outside["breakdown"] = [
        {"metric": "exposure_outstanding", "value": "2000000000", "dimensions": {"regions": "Shanghai"}},
        # Jiangsu is in the program's scope but was not granted to this pilot.
        {"metric": "exposure_outstanding", "value": "1000000000", "dimensions": {"regions": "Jiangsu"}},
    ]
    response = post(live, outside)
    scope = outcome(response, "within-scope")
    assert scope["status"] == "breach" and scope["breaker"]["state"] == "tripped"
    assert "Jiangsu" in scope["explanation"]
    stored = live.world.client.get(response.headers["Location"], headers=live.world.filer_a.headers).json()
    assert stored["current"]["breakdown"][1] == {
        "metric": "exposure_outstanding",
        "value": "1000000000",
        "dimensions": {"regions": "Jiangsu"},
    }
    pilot = live.get_pilot()
    assert pilot["state"] == "suspended" and "within-scope" in pilot["state_reason"]


def test_periods_must_be_well_formed_within_the_pilot_and_ended(live: Live) -> None:
    before = rows(live.database)
    for period in (
        "2026-13",
        "2026-00",
        "2026-Q5",
        "2026-Q3",
        "2026-1",
        "2026-10-01",
        " 2026-10",
        "２０２６-10",
        "26-10",
        "",
    ):
        refused = post(live, live.body(period))
        assert_problem(refused, 422, "validation-error")
        assert locations(refused) == [["body", "period"]], period
    quarter = assert_problem(post(live, live.body("2026-Q3")), 422, "validation-error")
    assert "monthly" in quarter["errors"][0]["msg"]
    for period, words in (
        ("2026-01", "outside the pilot's dates"),
        ("2028-01", "outside the pilot's dates"),
        ("2026-11", "has not ended"),
    ):
        body = assert_problem(post(live, live.body(period)), 422, "validation-error")
        assert [e["loc"] for e in body["errors"]] == [["body", "period"]] and words in body["errors"][0]["msg"], period
    assert rows(live.database) == before
    # The month ends on the 30th; from 1 December in Shanghai (16:00 UTC on the 30th) it may be filed.
    live.clock.at = datetime(2026, 11, 30, 15, 59, tzinfo=UTC)
    assert_problem(post(live, live.body("2026-11")), 422, "validation-error")
    live.clock.at = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert post(live, live.body("2026-11")).status_code == 201


def test_only_the_institutions_filers_file_for_an_active_or_suspended_pilot(live: Live) -> None:
    world = live.world
    before = rows(live.database)
    assert_problem(post(live, live.body("2026-02"), world.supervisor), 403, "forbidden")
    assert_problem(post(live, live.body("2026-02"), world.admin), 403, "forbidden")
    other = assert_problem(post(live, live.body("2026-02"), world.bank_b), 404, "not-found")
    missing = assert_problem(
        world.client.post(
            f"/api/v1/pilots/{uuid.uuid4()}/filings", json=live.body("2026-02"), headers=world.bank_b.headers
        ),
        404,
        "not-found",
    )
    assert {k: v for k, v in other.items() if k not in ("instance", "request_id")} == {
        k: v for k, v in missing.items() if k not in ("instance", "request_id")
    }
    # Bureau users read filings; other institutions see nothing.
    assert_problem(world.client.get(url(live), headers=world.bank_b.headers), 404, "not-found")
    assert rows(live.database) == before

    created = post(live, live.body("2026-02"))
    assert created.status_code == 201
    filing_url = created.headers["Location"]
    assert world.client.get(filing_url, headers=world.supervisor.headers).status_code == 200
    hidden = assert_problem(world.client.get(filing_url, headers=world.bank_b.headers), 404, "not-found")
    random = assert_problem(
        world.client.get(f"/api/v1/filings/{uuid.uuid4()}", headers=world.bank_b.headers), 404, "not-found"
    )
    assert hidden["detail"] == random["detail"]

    # An approved pilot that has not started takes no filings; nor does a completed one.
    live.clock.at = at("2026-11-05")
    waiting = world.to_pilot(
        start_on="2026-12-01", end_on="2027-11-30", requested_quotas={"exposure_limit": "1000000000"}
    )
    live.clock.at = at("2026-11-20")
    assert waiting["state"] == PilotState.approved
    body = assert_problem(
        world.client.post(
            f"/api/v1/pilots/{waiting['id']}/filings", json=live.body("2026-02"), headers=world.filer_a.headers
        ),
        409,
        "pilot-not-filing",
    )
    assert body["current_state"] == "approved"
    done = world.client.post(f"/api/v1/pilots/{live.pilot['id']}/complete", json={}, headers=world.approver.headers)
    assert done.status_code == 200 and done.json()["state"] == "completed", done.text
    middle = rows(live.database)
    assert assert_problem(post(live, live.body("2026-03")), 409, "pilot-not-filing")["current_state"] == "completed"
    assert rows(live.database) == middle


def test_filing_a_period_again_needs_amends_and_a_reason_and_makes_version_2(live: Live) -> None:
    world = live.world
    first = live.file("2026-02", exposure_outstanding="1000000000")
    assert first.status_code == 201 and first.json()["latest_version"] == 1
    before = rows(live.database)
    again = assert_problem(live.file("2026-02", exposure_outstanding="3000000000"), 409, "conflict")
    assert "already filed" in again["detail"] and "amends" in again["detail"]
    assert locations(post(live, {**live.body("2026-02"), "amends": True})) == [["body", "reason"]]
    assert locations(post(live, {**live.body("2026-02"), "amends": True, "reason": "   "})) == [["body", "reason"]]
    unfiled = post(live, {**live.body("2026-03"), "amends": True, "reason": "restated"})
    assert_problem(unfiled, 422, "validation-error")
    assert locations(unfiled) == [["body", "amends"]]
    assert rows(live.database) == before

    amended = post(
        live,
        {
            **live.body("2026-02", exposure_outstanding="3000000000", npl_ratio="0.021"),
            "amends": True,
            "reason": "restated after audit",
        },
    )
    assert amended.status_code == 201, amended.text
    assert amended.json()["id"] == first.json()["id"] and amended.json()["latest_version"] == 2
    assert outcome(amended, "npl-warn")["status"] == "breach"
    after = rows(live.database)
    assert (after.filings, after.versions, after.evaluations) == (
        before.filings,
        before.versions + 1,
        before.evaluations + 1,
    )

    detail = world.client.get(f"/api/v1/filings/{first.json()['id']}", headers=world.supervisor.headers).json()
    assert [(v["version"], v["metrics"]["exposure_outstanding"], v["reason"]) for v in detail["versions"]] == [
        (1, "1000000000", None),
        (2, "3000000000", "restated after audit"),
    ]
    assert detail["current"]["version"] == 2
    listed = world.client.get(url(live), headers=world.filer_a.headers).json()
    assert listed["total"] == 1 and listed["items"][0]["current"]["metrics"]["npl_ratio"] == "0.021"
    evaluations = world.client.get(
        f"/api/v1/pilots/{live.pilot['id']}/evaluations", params={"period": "2026-02"}, headers=world.supervisor.headers
    ).json()["items"]
    assert [e["trigger"] for e in evaluations] == ["amendment", "filing"]
    assert evaluations[0]["filing_version_id"] == amended.json()["current"]["id"]
    # The next period compares with the amended figure: 3bn -> 2bn is no growth (1bn -> 2bn was).
    growth = outcome(live.file("2026-03", exposure_outstanding="2000000000"), "loss-growth")
    assert growth["status"] == "pass"


def test_an_idempotency_key_replays_the_first_answer_and_nothing_more(live: Live) -> None:
    world = live.world
    key = "bank-a-2026-02-try-1"
    body = live.body("2026-02", npl_ratio="0.031")
    first = post(live, body, key=key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    written = rows(live.database)
    replay = post(live, dict(reversed(list(body.items()))), key=key)  # the same body, keys in another order
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json() and replay.headers["Location"] == first.headers["Location"]
    changed = post(live, live.body("2026-02", npl_ratio="0.032"), key=key)
    assert assert_problem(changed, 422, "validation-error")["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    # The key belongs to BANK-A: BANK-B with the same string is not given BANK-A's answer.
    assert_problem(post(live, body, world.bank_b, key=key), 404, "not-found")
    for bad in ("has space", "x" * 300, "tab\there", "ключ".encode()):
        assert_problem(post(live, live.body("2026-03"), key=bad), 400, "bad-request")
    assert rows(live.database) == written

    # A refused request leaves no key behind: the corrected request goes through with it.
    retry = "bank-a-2026-03"
    assert_problem(post(live, live.body("2026-03", npl_ratio="3%"), key=retry), 422, "validation-error")
    assert_problem(post(live, live.body("2026-11"), key=retry), 422, "validation-error")
    assert rows(live.database) == written
    fixed = post(live, live.body("2026-03", npl_ratio="0.03"), key=retry)
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert rows(live.database).keys == written.keys + 1

    # BANK-B's own key string space: the same string on its own pilot is a fresh request.
    live.clock.at = at("2026-01-05")
    pilot_b = world.to_pilot(
        world.bank_b, start_on="2026-01-05", end_on="2027-12-31", requested_quotas={"exposure_limit": "1000000000"}
    )
    live.clock.at = at("2026-11-20")
    assert pilot_b["state"] == "active"
    replays = []
    for _ in range(2):
        own = world.client.post(
            f"/api/v1/pilots/{pilot_b['id']}/filings",
            json=body,
            headers={**world.bank_b.headers, "Idempotency-Key": key},
        )
        assert own.status_code == 201 and own.json()["pilot_id"] == pilot_b["id"], own.text
        replays.append(own.headers.get("Idempotent-Replayed"))
    assert replays == [None, "true"]

    # Keys last 30 days: after that the same key is a new request.
    live.clock.at = at("2026-12-21")
    renewed = post(live, live.body("2026-11"), key=key)
    assert renewed.status_code == 201 and "Idempotent-Replayed" not in renewed.headers, renewed.text
    assert post(live, live.body("2026-11"), key=key).headers["Idempotent-Replayed"] == "true"
