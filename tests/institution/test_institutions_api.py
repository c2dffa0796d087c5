from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM
from sandbox.api.routing import loads_exact
from sandbox.db import Database, SandboxSession
from sandbox.institution.identifiers import USCC_CHARSET, make_lei, make_uscc
from sandbox.institution.schemas import InstitutionCreate, InstitutionUpdate
from sandbox.institution.service import create_institution
from sandbox.models import AuditEntry, Institution
from tests.support import NOW, Login

URL = "/api/v1/institutions"
GOOD_USCC = make_uscc("91", "310000", "MA1FL0AB")
GOOD_LEI = make_lei("5493001KJTIIGC8Y1R")


def identifiers_for(code: str) -> tuple[str, str]:
    digest = hashlib.sha256(code.encode()).digest()
    body = "".join(USCC_CHARSET[b % len(USCC_CHARSET)] for b in digest[:8])
    lei_body = "".join("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[b % 36] for b in digest[8:20])
    return make_uscc("91", "310000", body), make_lei("549300" + lei_body)


def create_body(code: str = "BANK-A", **overrides: Any) -> dict[str, Any]:
    uscc, lei = identifiers_for(code)
    body: dict[str, Any] = {
        "code": code,
        "name": "甲银行上海分行",
        "type": "domestic_bank",
        "uscc": uscc,
        "lei": lei,
        "region": "Shanghai",
        "rating": 2,
        "capital_adequacy_ratio": "0.162",
        "npl_ratio": "0.013",
        "contact_emails": [f"risk@{code.lower()}.example"],
    }
    body.update(overrides)
    return body


def counts(session: Session) -> tuple[int, int]:
    """Institutions and audit entries: what a refused request must leave untouched."""
    session.expire_all()
    return (
        session.scalar(select(func.count()).select_from(Institution)) or 0,
        session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
    )


def seed(database: Database, code: str) -> uuid.UUID:
    with database.unit_of_work() as session:
        return create_institution(session, InstitutionCreate(**create_body(code)), actor=SYSTEM, at=NOW).id


@pytest.fixture
def admin(login: Callable[..., Login]) -> Login:
    return login("admin")


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    return body


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in body["errors"]]


# --- request bodies, without a database -------------------------------------------------


def test_a_json_number_ratio_is_kept_as_the_exact_decimal_sent() -> None:
    raw = json.dumps(create_body()).replace('"0.162"', "0.162").replace('"0.013"', "0.013")
    data = InstitutionCreate.model_validate(loads_exact(raw))
    assert data.capital_adequacy_ratio == Decimal("0.162")
    assert str(data.capital_adequacy_ratio) == "0.162"
    assert str(data.npl_ratio) == "0.013"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capital_adequacy_ratio", 0.162),  # a binary float has already lost the text
        ("capital_adequacy_ratio", "NaN"),
        ("capital_adequacy_ratio", "Infinity"),
        ("capital_adequacy_ratio", "-0.01"),
        ("capital_adequacy_ratio", "16.2"),  # a percentage, not a fraction
        ("npl_ratio", "1.0001"),
        ("npl_ratio", "1,5"),
        ("npl_ratio", " 0.01"),
        ("npl_ratio", "0.0000000000001"),  # 13 places: NUMERIC(38, 12) would round it
        ("solvency_comprehensive", "100.01"),
        ("solvency_core", "-1"),
        ("rating", 0),
        ("rating", 7),
        ("rating", True),
        ("rating", "2"),
        ("rating", 2.5),
        ("code", "bank-a"),
        ("code", "B"),
        ("code", "-BANK"),
        ("code", "BANK-A\n"),
        ("code", "B" * 33),
        ("name", "   "),
        ("name", "Bank\u202eA"),  # right-to-left override: spoofs how the name reads
        ("name", "x" * 301),
        ("region", ""),
        ("type", "hedge_fund"),
        ("last_major_penalty_on", "2024-5-1"),
        ("last_major_penalty_on", 0),
        ("contact_emails", "risk@bank-a.example"),
    ],
)
def test_create_body_refuses(field: str, value: Any) -> None:
    body = create_body()
    body[field] = value
    with pytest.raises(ValidationError) as caught:
        InstitutionCreate.model_validate(body)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_create_body_accepts_edge_values_and_normalises() -> None:
    data = InstitutionCreate.model_validate(
        create_body(
            code="0-X",
            name="  中国甲银行股份有限公司上海市分行  ",
            uscc=GOOD_USCC.lower(),
            lei=GOOD_LEI.lower(),
            rating=6,
            capital_adequacy_ratio=1,
            npl_ratio="0.0",
            solvency_comprehensive="2.10",
            solvency_core="100",
            contact_emails=["Risk@Bank-A.Example", "风险@bank-a.example"],
        )
    )
    assert data.name == "中国甲银行股份有限公司上海市分行"
    assert (data.uscc, data.lei) == (GOOD_USCC, GOOD_LEI)
    assert (str(data.capital_adequacy_ratio), str(data.npl_ratio), str(data.solvency_comprehensive)) == (
        "1",
        "0",
        "2.1",
    )
    assert data.contact_emails == ["risk@bank-a.example", "风险@bank-a.example"]


def test_update_body_refuses_null_for_required_fields_but_not_for_optional_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        InstitutionUpdate.model_validate({"name": None, "rating": None, "lei": None})
    assert sorted(e["loc"][0] for e in caught.value.errors()) == ["name", "rating"]
    assert InstitutionUpdate.model_validate({"lei": None}).changes() == {"lei": None}


# --- the API ------------------------------------------------------------------------------


def test_admin_registers_an_institution(client: TestClient, session: SandboxSession, admin: Login) -> None:
    raw = json.dumps(create_body(), ensure_ascii=False).replace('"0.162"', "0.162")
    response = client.post(URL, content=raw.encode(), headers={**admin.headers, "Content-Type": "application/json"})

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"{URL}/{body['id']}"
    assert response.headers["ETag"] == '"v1"'
    assert body["name"] == "甲银行上海分行"
    assert (body["status"], body["version"], body["capital_adequacy_ratio"]) == ("active", 1, "0.162")
    assert body["created_at"] == body["updated_at"] == "2026-11-28T02:00:00Z"
    stored = session.get_one(Institution, uuid.UUID(body["id"]))
    assert stored.capital_adequacy_ratio == Decimal("0.162")
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.object_id == body["id"])).all()
    assert (entry.action, entry.actor_id) == ("institution.create", admin.user.id)

    again = client.get(response.headers["Location"], headers=admin.headers)
    assert again.status_code == 200
    assert again.headers["ETag"] == '"v1"'
    assert again.json() == body


BAD_BODIES: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("uscc check character", {"uscc": GOOD_USCC[:17] + ("0" if GOOD_USCC[17] != "0" else "1")}, ["body", "uscc"]),
    ("uscc length", {"uscc": GOOD_USCC[:17]}, ["body", "uscc"]),
    ("uscc letter I", {"uscc": "9I" + GOOD_USCC[2:]}, ["body", "uscc"]),
    ("lei check digits", {"lei": GOOD_LEI[:18] + "13"}, ["body", "lei"]),
    ("lei length", {"lei": GOOD_LEI + "0"}, ["body", "lei"]),
    ("header injection", {"contact_emails": ["a@b.example\r\nBcc: x@y.example"]}, ["body", "contact_emails", 0]),
    ("address list", {"contact_emails": ["ok@b.example", "a@b.example; c@d.example"]}, ["body", "contact_emails", 1]),
    ("not an address", {"contact_emails": ["risk-at-bank.example"]}, ["body", "contact_emails", 0]),
    ("display name", {"contact_emails": ["Risk <risk@bank.example>"]}, ["body", "contact_emails", 0]),
    ("duplicate address", {"contact_emails": ["Risk@bank.example", "risk@BANK.example"]}, ["body", "contact_emails"]),
    ("21 addresses", {"contact_emails": [f"r{i}@bank.example" for i in range(21)]}, ["body", "contact_emails"]),
    ("rating 0", {"rating": 0}, ["body", "rating"]),
    ("rating 7", {"rating": 7}, ["body", "rating"]),
    ("ratio as percentage", {"capital_adequacy_ratio": "16.2"}, ["body", "capital_adequacy_ratio"]),
    ("ratio infinity", {"npl_ratio": "Infinity"}, ["body", "npl_ratio"]),
    ("extra status", {"status": "active"}, ["body", "status"]),
    ("extra institution_id", {"institution_id": str(uuid.uuid4())}, ["body", "institution_id"]),
    ("extra version", {"version": 1}, ["body", "version"]),
    ("missing uscc", {"uscc": None}, ["body", "uscc"]),
]


@pytest.mark.parametrize(("case", "changes", "loc"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_bodies_are_refused_naming_the_field_and_nothing_is_written(
    client: TestClient, session: SandboxSession, admin: Login, case: str, changes: dict[str, Any], loc: list[Any]
) -> None:
    before = counts(session)
    body = create_body(**changes)
    body = {k: v for k, v in body.items() if v is not None}
    problem = assert_problem(client.post(URL, json=body, headers=admin.headers), 422, "validation-error")
    assert error_locs(problem) == [loc]
    assert counts(session) == before


def test_nan_in_the_json_is_refused(client: TestClient, session: SandboxSession, admin: Login) -> None:
    before = counts(session)
    raw = json.dumps(create_body()).replace('"0.162"', "NaN")
    response = client.post(URL, content=raw, headers={**admin.headers, "Content-Type": "application/json"})
    assert_problem(response, 422, "validation-error")
    assert counts(session) == before


@pytest.mark.parametrize("role", ["reviewer", "supervisor", "institution_admin", "filer"])
def test_only_a_bureau_admin_may_register(
    client: TestClient, session: SandboxSession, database: Database, login: Callable[..., Login], role: str
) -> None:
    seed(database, "BANK-A")
    user = login(role, "BANK-A" if role in ("institution_admin", "filer") else None)
    before = counts(session)
    assert_problem(client.post(URL, json=create_body("BANK-B"), headers=user.headers), 403, "forbidden")
    assert counts(session) == before


def test_without_a_token_nothing_is_visible(client: TestClient) -> None:
    assert_problem(client.get(URL), 401, "unauthenticated")
    assert_problem(client.post(URL, json=create_body()), 401, "unauthenticated")


@pytest.mark.parametrize("field", ["code", "uscc", "lei"])
def test_duplicates_are_409_naming_the_field(
    client: TestClient, session: SandboxSession, database: Database, admin: Login, field: str
) -> None:
    seed(database, "BANK-A")
    before = counts(session)
    body = create_body("BANK-B")
    body[field] = create_body("BANK-A")[field]
    problem = assert_problem(client.post(URL, json=body, headers=admin.headers), 409, "conflict")
    assert problem["field"] == field
    assert counts(session) == before


def test_lists_are_paged_and_institution_users_see_only_their_own(
    client: TestClient, database: Database, admin: Login, login: Callable[..., Login]
) -> None:
    for code in ("BANK-C", "BANK-A", "BANK-B"):
        seed(database, code)
    page = client.get(URL, params={"offset": 1, "limit": 1}, headers=admin.headers).json()
    assert ([i["code"] for i in page["items"]], page["total"], page["offset"], page["limit"]) == (["BANK-B"], 3, 1, 1)

    own = client.get(URL, headers=login("filer", "BANK-C").headers).json()
    assert ([i["code"] for i in own["items"]], own["total"]) == (["BANK-C"], 1)


def test_another_institutions_id_is_404_exactly_like_a_random_id(
    client: TestClient, database: Database, login: Callable[..., Login]
) -> None:
    bank_a = seed(database, "BANK-A")
    seed(database, "BANK-B")
    user_b = login("institution_admin", "BANK-B")

    def shape(response: Any, institution_id: uuid.UUID) -> dict[str, Any]:
        body = assert_problem(response, 404, "not-found")
        del body["request_id"]
        shaped: dict[str, Any] = json.loads(json.dumps(body).replace(str(institution_id), "<id>"))
        return shaped

    missing = uuid.uuid4()
    patch: dict[str, Any] = {"contact_emails": []}
    for method, body in (("GET", None), ("PATCH", patch)):
        theirs = shape(client.request(method, f"{URL}/{bank_a}", headers=user_b.headers, json=body), bank_a)
        random = shape(client.request(method, f"{URL}/{missing}", headers=user_b.headers, json=body), missing)
        assert theirs == random


def test_patch_honours_if_match_and_audits_the_change(
    client: TestClient, session: SandboxSession, database: Database, admin: Login
) -> None:
    bank_a = seed(database, "BANK-A")
    response = client.patch(
        f"{URL}/{bank_a}",
        json={"status": "suspended", "npl_ratio": 0.021},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"v2"'
    assert (response.json()["status"], response.json()["npl_ratio"]) == ("suspended", "0.021")
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.object_id == str(bank_a)).order_by(AuditEntry.seq.desc())
    ).first()
    assert entry is not None and entry.action == "institution.update"
    assert (entry.before, entry.after) == (
        {"status": "active", "npl_ratio": "0.013"},
        {"status": "suspended", "npl_ratio": "0.021"},
    )

    before = counts(session)
    stale = client.patch(f"{URL}/{bank_a}", json={"rating": 5}, headers={**admin.headers, "If-Match": '"v1"'})
    assert assert_problem(stale, 412, "precondition-failed")["current_etag"] == '"v2"'
    assert counts(session) == before
    assert session.get_one(Institution, bank_a).rating == 2


def test_patch_refusals_write_nothing(
    client: TestClient, session: SandboxSession, database: Database, admin: Login, login: Callable[..., Login]
) -> None:
    bank_a = seed(database, "BANK-A")
    reviewer, own_admin = login("reviewer"), login("institution_admin", "BANK-A")
    before = counts(session)
    cases = [
        (admin, {"code": "BANK-Z"}, 422, "validation-error"),
        (admin, {"version": 7}, 422, "validation-error"),
        (admin, {"status": "closed"}, 422, "validation-error"),
        (admin, {"name": None}, 422, "validation-error"),
        (admin, {"contact_emails": ["a@b.example\nBcc: x@y.example"]}, 422, "validation-error"),
        (reviewer, {"rating": 3}, 403, "forbidden"),
        (own_admin, {"rating": 1}, 403, "forbidden"),
    ]
    for who, body, status, slug in cases:
        assert_problem(client.patch(f"{URL}/{bank_a}", json=body, headers=who.headers), status, slug)
    assert_problem(
        client.patch(f"{URL}/{bank_a}", json={"rating": 3}, headers={**admin.headers, "If-Match": "v1"}),
        400,
        "bad-request",
    )
    assert counts(session) == before


def test_an_institution_admin_updates_its_contacts(
    client: TestClient, database: Database, login: Callable[..., Login]
) -> None:
    bank_a = seed(database, "BANK-A")
    own_admin = login("institution_admin", "BANK-A")
    response = client.patch(
        f"{URL}/{bank_a}",
        json={"contact_emails": ["Risk@Bank-A.example", "ops@bank-a.example"]},
        headers=own_admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["contact_emails"] == ["risk@bank-a.example", "ops@bank-a.example"]
    assert response.headers["ETag"] == '"v2"'
