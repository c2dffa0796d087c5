from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sandbox.actor import SYSTEM
from sandbox.clock import FixedClock
from sandbox.db import Database
from sandbox.models import Institution, PolicyVersion
from sandbox.program.service import load_policies, load_policy_dir
from sandbox.rules.policy_file import parse_policy
from sandbox.rules.yamlsafe import MAX_BYTES
from tests.support import NOW, ROOT, Login

POLICIES = ROOT / "policies"
TECH_MA = (POLICIES / "SH-TECH-MA.yaml").read_text(encoding="utf-8")
TECH_MA_HASH = parse_policy(TECH_MA, "SH-TECH-MA.yaml").content_hash()
FIRST_DAY = parse_policy(TECH_MA, "SH-TECH-MA.yaml").program.effective_from
SHIPPED = len(list(POLICIES.glob("*.yaml")))
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def loaded(database: Database) -> None:
    with database.unit_of_work() as session:
        load_policy_dir(session, POLICIES, actor=SYSTEM, at=NOW)


@pytest.fixture
def bank_user(database: Database, login: Callable[..., Login]) -> Login:
    with database.unit_of_work() as session:
        session.add(
            Institution(
                code="BANK-A",
                name="Bank A Shanghai Branch",
                type="domestic_bank",
                uscc="91310000MA1FL0AB1X",
                region="Shanghai",
                rating=2,
                created_at=NOW,
                updated_at=NOW,
                contact_emails=[],
            )
        )
    return login("filer", "BANK-A")


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["type"] == f"/problems/{slug}"
    return body


def count_versions(database: Database) -> int:
    with database.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(PolicyVersion)) or 0)


def test_programs_need_a_token(client: TestClient, loaded: None) -> None:
    problem(client.get("/api/v1/programs"), 401, "unauthenticated")


def test_any_signed_in_user_lists_programs_with_the_version_in_force(
    client: TestClient, loaded: None, bank_user: Login
) -> None:
    body = client.get("/api/v1/programs", headers=bank_user.headers).json()
    assert (body["total"], body["offset"], body["limit"]) == (SHIPPED, 0, 50)
    tech = next(item for item in body["items"] if item["code"] == "SH-TECH-MA")
    assert tech == {
        "code": "SH-TECH-MA",
        "title": "Technology-enterprise M&A loans",
        "area": "technology_finance",
        "current_version": "2025.1",
        "effective_from": FIRST_DAY.isoformat(),
        "content_hash": TECH_MA_HASH,
        "created_at": "2026-11-28T02:00:00Z",
    }
    codes = [item["code"] for item in body["items"]]
    assert codes == sorted(codes)
    page = client.get("/api/v1/programs?offset=2&limit=2", headers=bank_user.headers).json()
    assert [item["code"] for item in page["items"]] == codes[2:4] and page["total"] == SHIPPED


def test_program_detail_lists_every_version(
    client: TestClient, database: Database, loaded: None, bank_user: Login, login: Callable[..., Login]
) -> None:
    newer = TECH_MA.replace('version: "2025.1"', 'version: "2027.1"').replace(
        f"effective_from: {FIRST_DAY.isoformat()}", "effective_from: 2027-01-01"
    )
    with database.unit_of_work() as session:
        load_policies(session, [("SH-TECH-MA.yaml", newer)], actor=SYSTEM, at=NOW + timedelta(hours=1))
    body = client.get("/api/v1/programs/SH-TECH-MA", headers=bank_user.headers).json()
    assert body["current_version"] == "2025.1"
    assert [(v["version"], v["effective_from"], v["in_force"]) for v in body["versions"]] == [
        ("2025.1", FIRST_DAY.isoformat(), True),
        ("2027.1", "2027-01-01", False),
    ]
    assert all(v["loaded_by"] is None for v in body["versions"])  # who loaded it is bureau business
    bureau = client.get("/api/v1/programs/SH-TECH-MA", headers=login("reviewer").headers).json()
    assert {v["loaded_by"] for v in bureau["versions"]} == {"system"}

    future = client.get("/api/v1/programs/SH-TECH-MA/policy?as_of=2027-01-01", headers=bank_user.headers).json()
    assert (future["version"], future["as_of"]) == ("2027.1", "2027-01-01")


def test_unknown_program_is_404(client: TestClient, loaded: None, bank_user: Login) -> None:
    body = problem(client.get("/api/v1/programs/SH-NOPE-X", headers=bank_user.headers), 404, "not-found")
    assert "SH-NOPE-X" in body["detail"]
    problem(client.get("/api/v1/programs/SH-NOPE-X/policy", headers=bank_user.headers), 404, "not-found")


def test_policy_in_force_today_and_on_a_given_day(client: TestClient, loaded: None, bank_user: Login) -> None:
    body = client.get("/api/v1/programs/SH-TECH-MA/policy", headers=bank_user.headers).json()
    assert (body["program"], body["version"], body["content_hash"]) == ("SH-TECH-MA", "2025.1", TECH_MA_HASH)
    assert body["as_of"] == "2026-11-28" and body["effective_from"] == FIRST_DAY.isoformat()
    quota = body["document"]["quotas"]["exposure_limit"]
    assert (quota["per_pilot_cap"], quota["aggregate_cap"]) == ("15000000000", "50000000000")  # exact, as text
    assert body["document"]["eligibility"]["min_capital_adequacy_ratio"] == "0.105"

    before = (FIRST_DAY - timedelta(days=1)).isoformat()
    refused = problem(
        client.get(f"/api/v1/programs/SH-TECH-MA/policy?as_of={before}", headers=bank_user.headers),
        409,
        "no-policy-in-force",
    )
    assert refused["as_of"] == before
    problem(
        client.get("/api/v1/programs/SH-TECH-MA/policy?as_of=2026-02-30", headers=bank_user.headers),
        422,
        "validation-error",
    )


def test_validate_accepts_a_good_file_and_writes_nothing(
    client: TestClient, database: Database, login: Callable[..., Login]
) -> None:
    reviewer = login("reviewer")
    for content_type in ("application/yaml", "application/x-yaml", "text/plain; charset=utf-8"):
        response = client.post(
            "/api/v1/policies/validate?filename=SH-TECH-MA.yaml",
            content=TECH_MA.encode(),
            headers={**reviewer.headers, "Content-Type": content_type},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "ok": True,
            "source": "SH-TECH-MA.yaml",
            "program": "SH-TECH-MA",
            "version": "2025.1",
            "effective_from": FIRST_DAY.isoformat(),
            "content_hash": TECH_MA_HASH,
            "problems": [],
        }
    assert count_versions(database) == 0


def test_validate_lists_every_problem_with_line_and_location(client: TestClient, login: Callable[..., Login]) -> None:
    text = TECH_MA.replace("frequency: monthly", "frequency: weekly").replace(
        "  min_rating: 3\n", "  min_rating: 3\n  min_ratting: 2\n"
    )
    response = client.post(
        "/api/v1/policies/validate", content=text.encode(), headers={**login("admin").headers, **YAML}
    )
    body = problem(response, 422, "validation-error")
    lines = text.splitlines()
    assert body["errors"] == [
        {
            "loc": ["request body", "eligibility.min_ratting"],
            "msg": "unknown key 'min_ratting' (misspelt, or not allowed here)",
            "line": lines.index("  min_ratting: 2") + 1,
            "type": "policy",
        },
        {
            "loc": ["request body", "schedule.frequency"],
            "msg": "Input should be 'monthly' or 'quarterly'",
            "line": lines.index("  frequency: weekly") + 1,
            "type": "policy",
        },
    ]
    assert "(and 1 more)" in body["detail"]


@pytest.mark.parametrize(
    "content, fault",
    [
        (b"x: !!python/object/apply:os.system ['id']\n", "not allowed in policy files"),
        (b"# " + b"x" * MAX_BYTES, f"the limit is {MAX_BYTES}"),
        ("title: caf\u00e9".encode("latin-1"), "not UTF-8"),
    ],
)
def test_validate_refuses_unsafe_yaml(
    client: TestClient, login: Callable[..., Login], content: bytes, fault: str
) -> None:
    response = client.post("/api/v1/policies/validate", content=content, headers={**login("admin").headers, **YAML})
    [error] = problem(response, 422, "validation-error")["errors"]
    assert fault in error["msg"] and error["loc"] == ["request body"]


def test_validate_checks_the_file_name_when_given(client: TestClient, login: Callable[..., Login]) -> None:
    response = client.post(
        "/api/v1/policies/validate?filename=SH-PEN-CPA.yaml",
        content=TECH_MA.encode(),
        headers={**login("admin").headers, **YAML},
    )
    [error] = problem(response, 422, "validation-error")["errors"]
    assert error["loc"] == ["SH-PEN-CPA.yaml", "program.code"]


def test_validate_is_for_bureau_users_and_yaml_bodies(
    client: TestClient, bank_user: Login, login: Callable[..., Login]
) -> None:
    problem(
        client.post("/api/v1/policies/validate", content=TECH_MA.encode(), headers={**bank_user.headers, **YAML}),
        403,
        "forbidden",
    )
    problem(client.post("/api/v1/policies/validate", content=TECH_MA.encode(), headers=YAML), 401, "unauthenticated")
    refused = client.post("/api/v1/policies/validate", json={"text": TECH_MA}, headers=login("reviewer").headers)
    assert "application/yaml" in problem(refused, 415, "unsupported-media-type")["detail"]


def test_policy_endpoints_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/programs",
        "/api/v1/programs/{code}",
        "/api/v1/programs/{code}/policy",
        "/api/v1/policies/validate",
    } <= set(paths)
    assert "application/yaml" in paths["/api/v1/policies/validate"]["post"]["requestBody"]["content"]


def test_as_of_defaults_to_the_bureau_date(
    client: TestClient, clock: FixedClock, loaded: None, bank_user: Login
) -> None:
    clock.at = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)  # already 29 November in Shanghai
    assert client.get("/api/v1/programs/SH-TECH-MA/policy", headers=bank_user.headers).json()["as_of"] == "2026-11-29"
