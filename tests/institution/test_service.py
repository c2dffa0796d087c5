from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM
from sandbox.db import SandboxSession
from sandbox.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from sandbox.institution.identifiers import USCC_CHARSET, make_lei, make_uscc
from sandbox.institution.schemas import InstitutionCreate, InstitutionUpdate
from sandbox.institution.service import (
    create_institution,
    get_institution,
    get_institution_by_code,
    institution_facts,
    list_institutions,
    update_institution,
)
from sandbox.models import AuditEntry, Institution
from sandbox.rules.eligibility import InstitutionFacts
from tests.support import NOW, Login


def identifiers_for(code: str) -> tuple[str, str]:
    digest = hashlib.sha256(code.encode()).digest()
    body = "".join(USCC_CHARSET[b % len(USCC_CHARSET)] for b in digest[:8])
    lei_body = "".join("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[b % 36] for b in digest[8:20])
    return make_uscc("91", "310000", body), make_lei("549300" + lei_body)


def create_body(code: str = "BANK-A", **overrides: Any) -> dict[str, Any]:
    uscc, lei = identifiers_for(code)
    body: dict[str, Any] = {
        "code": code,
        "name": f"{code} 上海分行",
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


def count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def audit_for(session: Session, institution_id: uuid.UUID) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_type == "institution", AuditEntry.object_id == str(institution_id))
            .order_by(AuditEntry.seq)
        )
    )


@pytest.fixture
def admin(login: Callable[..., Login]) -> Login:
    return login("admin")


@pytest.fixture
def bank_a(session: SandboxSession) -> Institution:
    institution = create_institution(session, InstitutionCreate(**create_body("BANK-A")), actor=SYSTEM, at=NOW)
    session.commit()
    return institution


def test_admin_registers_an_institution_and_the_creation_is_audited(session: SandboxSession, admin: Login) -> None:
    data = InstitutionCreate(**create_body("BANK-A", capital_adequacy_ratio="0.1620", solvency_core="1E+2"))
    institution = create_institution(session, data, actor=admin.actor, at=NOW)
    session.commit()
    session.expire_all()

    stored = session.get(Institution, institution.id)
    assert stored is not None
    assert (stored.status, stored.version, stored.created_at, stored.updated_at) == ("active", 1, NOW, NOW)
    assert stored.capital_adequacy_ratio == Decimal("0.162")
    [entry] = audit_for(session, institution.id)
    assert entry.action == "institution.create"
    assert entry.actor_id == admin.user.id
    assert entry.before is None
    assert entry.after is not None
    # Canonical text on both backends, never PostgreSQL's 0.162000000000.
    assert entry.after["capital_adequacy_ratio"] == "0.162"
    assert entry.after["solvency_core"] == "100"
    assert entry.after["uscc"] == data.uscc and entry.after["status"] == "active"


@pytest.mark.parametrize("role", ["reviewer", "approver", "supervisor"])
def test_only_a_bureau_admin_registers_institutions(
    session: SandboxSession, login: Callable[..., Login], role: str
) -> None:
    with pytest.raises(PermissionDenied, match="needs the role admin"):
        create_institution(session, InstitutionCreate(**create_body()), actor=login(role).actor, at=NOW)
    assert count(session, Institution) == 0


@pytest.mark.parametrize("field", ["code", "uscc", "lei"])
def test_a_taken_code_uscc_or_lei_is_a_conflict_naming_the_field(
    session: SandboxSession, admin: Login, bank_a: Institution, field: str
) -> None:
    body = create_body("BANK-B")
    body[field] = getattr(bank_a, field)
    with pytest.raises(Conflict) as caught:
        create_institution(session, InstitutionCreate(**body), actor=admin.actor, at=NOW)
    assert caught.value.extra["field"] == field
    assert f"already has {field}" in caught.value.detail
    assert count(session, Institution) == 1


def test_a_major_penalty_in_the_future_is_refused(session: SandboxSession, admin: Login) -> None:
    with pytest.raises(InvalidInput) as caught:
        create_institution(
            session, InstitutionCreate(**create_body(last_major_penalty_on="2026-11-29")), actor=admin.actor, at=NOW
        )
    assert caught.value.extra["errors"][0]["loc"] == ["body", "last_major_penalty_on"]


def test_update_audits_only_the_fields_that_changed_and_bumps_the_version(
    session: SandboxSession, admin: Login, bank_a: Institution
) -> None:
    data = InstitutionUpdate.model_validate(
        {"rating": 3, "npl_ratio": "0.0130", "region": "Shanghai", "status": "suspended"}
    )
    updated = update_institution(session, bank_a.id, data, actor=admin.actor, at=NOW, expected_version=1)
    session.commit()

    assert (updated.rating, updated.status, updated.version) == (3, "suspended", 2)
    _, update = audit_for(session, bank_a.id)
    assert update.action == "institution.update"
    # npl_ratio 0.0130 equals the stored 0.013 and region is unchanged: neither is recorded.
    assert update.before == {"rating": 2, "status": "active"}
    assert update.after == {"rating": 3, "status": "suspended"}


def test_an_update_that_changes_nothing_writes_nothing(
    session: SandboxSession, admin: Login, bank_a: Institution
) -> None:
    before = count(session, AuditEntry)
    unchanged = update_institution(
        session, bank_a.id, InstitutionUpdate(name=bank_a.name), actor=admin.actor, at=NOW, expected_version=None
    )
    session.commit()
    assert unchanged.version == 1
    assert count(session, AuditEntry) == before


def test_null_clears_an_optional_field(session: SandboxSession, admin: Login, bank_a: Institution) -> None:
    data = InstitutionUpdate.model_validate({"lei": None, "capital_adequacy_ratio": None})
    updated = update_institution(session, bank_a.id, data, actor=admin.actor, at=NOW, expected_version=None)
    assert (updated.lei, updated.capital_adequacy_ratio) == (None, None)


def test_a_stale_version_is_refused_and_nothing_changes(
    session: SandboxSession, admin: Login, bank_a: Institution
) -> None:
    update_institution(session, bank_a.id, InstitutionUpdate(rating=3), actor=admin.actor, at=NOW, expected_version=1)
    with pytest.raises(PreconditionFailed, match="your version 1, current 2"):
        update_institution(
            session, bank_a.id, InstitutionUpdate(rating=5), actor=admin.actor, at=NOW, expected_version=1
        )
    assert bank_a.rating == 3


def test_changing_uscc_to_another_institutions_is_a_conflict(
    session: SandboxSession, admin: Login, bank_a: Institution
) -> None:
    bank_b = create_institution(session, InstitutionCreate(**create_body("BANK-B")), actor=SYSTEM, at=NOW)
    with pytest.raises(Conflict) as caught:
        update_institution(
            session, bank_b.id, InstitutionUpdate(uscc=bank_a.uscc), actor=admin.actor, at=NOW, expected_version=None
        )
    assert caught.value.extra["field"] == "uscc"
    assert bank_b.uscc != bank_a.uscc


def test_an_institution_admin_manages_only_its_own_contacts(
    session: SandboxSession, login: Callable[..., Login], bank_a: Institution
) -> None:
    own = login("institution_admin", "BANK-A")
    updated = update_institution(
        session,
        bank_a.id,
        InstitutionUpdate(contact_emails=["Ops@Bank-A.example"]),
        actor=own.actor,
        at=NOW,
        expected_version=None,
    )
    assert updated.contact_emails == ["ops@bank-a.example"]
    with pytest.raises(PermissionDenied, match="may change only contact_emails; not rating, status"):
        update_institution(
            session,
            bank_a.id,
            InstitutionUpdate.model_validate({"rating": 1, "status": "active"}),
            actor=own.actor,
            at=NOW,
            expected_version=None,
        )
    filer = login("filer", "BANK-A")
    with pytest.raises(PermissionDenied):
        update_institution(
            session, bank_a.id, InstitutionUpdate(contact_emails=[]), actor=filer.actor, at=NOW, expected_version=None
        )


def test_another_institution_is_not_found_exactly_like_a_missing_one(
    session: SandboxSession, login: Callable[..., Login], bank_a: Institution
) -> None:
    create_institution(session, InstitutionCreate(**create_body("BANK-B")), actor=SYSTEM, at=NOW)
    session.commit()
    user_b = login("institution_admin", "BANK-B")
    missing = uuid.uuid4()

    def message(institution_id: uuid.UUID, call: Callable[[uuid.UUID], object]) -> str:
        with pytest.raises(NotFound) as caught:
            call(institution_id)
        return caught.value.detail.replace(str(institution_id), "<id>")

    for call in (
        lambda i: get_institution(session, i, actor=user_b.actor),
        lambda i: update_institution(
            session, i, InstitutionUpdate(contact_emails=[]), actor=user_b.actor, at=NOW, expected_version=None
        ),
    ):
        assert message(bank_a.id, call) == message(missing, call)
    assert bank_a.contact_emails == ["risk@bank-a.example"]


def test_institution_users_list_only_their_own_institution(
    session: SandboxSession, login: Callable[..., Login], admin: Login, bank_a: Institution
) -> None:
    for code in ("BANK-B", "BANK-C"):
        create_institution(session, InstitutionCreate(**create_body(code)), actor=SYSTEM, at=NOW)
    session.commit()

    rows, total = list_institutions(session, actor=login("filer", "BANK-A").actor, offset=0, limit=50)
    assert ([r.code for r in rows], total) == (["BANK-A"], 1)
    rows, total = list_institutions(session, actor=admin.actor, offset=1, limit=1)
    assert ([r.code for r in rows], total) == (["BANK-B"], 3)


def test_get_by_code(session: SandboxSession, bank_a: Institution) -> None:
    assert get_institution_by_code(session, "BANK-A").id == bank_a.id
    with pytest.raises(NotFound, match="no institution with code 'BANK-Z'"):
        get_institution_by_code(session, "BANK-Z")


def test_facts_carry_what_eligibility_reads(session: SandboxSession, admin: Login) -> None:
    data = InstitutionCreate(
        **create_body(
            "INS-D",
            type="insurer",
            rating=1,
            capital_adequacy_ratio=None,
            npl_ratio=None,
            solvency_comprehensive="2.10",
            solvency_core="1.60",
            last_major_penalty_on="2024-03-14",
        )
    )
    institution = create_institution(session, data, actor=admin.actor, at=NOW)
    session.commit()
    session.expire_all()
    assert institution_facts(session.get_one(Institution, institution.id)) == InstitutionFacts(
        code="INS-D",
        type="insurer",
        region="Shanghai",
        status="active",
        rating=1,
        capital_adequacy_ratio=None,
        npl_ratio=None,
        solvency_comprehensive=Decimal("2.1"),
        solvency_core=Decimal("1.6"),
        last_major_penalty_on=date(2024, 3, 14),
    )
