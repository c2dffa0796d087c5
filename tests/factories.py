"""Test data built through the same models and services the product uses."""

from __future__ import annotations

import zlib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM
from sandbox.institution.identifiers import make_uscc
from sandbox.models import Institution
from sandbox.program.service import load_policy_dir

ROOT = Path(__file__).resolve().parent.parent

# Demo-like institutions (DEMO.md): BANK-C had a major penalty within 3 years.
INSTITUTIONS: dict[str, dict[str, Any]] = {
    "BANK-A": dict(
        name="Bank A Shanghai Branch",
        type="domestic_bank",
        rating=2,
        capital_adequacy_ratio=Decimal("0.162"),
        npl_ratio=Decimal("0.013"),
    ),
    "BANK-B": dict(
        name="Bank B Shanghai Branch",
        type="joint_stock_bank",
        rating=2,
        capital_adequacy_ratio=Decimal("0.131"),
        npl_ratio=Decimal("0.0145"),
    ),
    "BANK-C": dict(
        name="Bank C",
        type="city_commercial_bank",
        rating=3,
        capital_adequacy_ratio=Decimal("0.124"),
        npl_ratio=Decimal("0.011"),
        last_major_penalty_on=date(2025, 3, 14),
    ),
    "BANK-D": dict(
        name="Bank D",
        type="city_commercial_bank",
        rating=2,
        capital_adequacy_ratio=Decimal("0.130"),
        npl_ratio=Decimal("0.0095"),
    ),
}


def load_policies(session: Session, at: datetime) -> None:
    load_policy_dir(session, ROOT / "policies", actor=SYSTEM, at=at)
    session.flush()


def add_institution(session: Session, code: str, at: datetime, **overrides: Any) -> Institution:
    values: dict[str, Any] = dict(INSTITUTIONS.get(code, INSTITUTIONS["BANK-A"]))
    values.update(overrides)
    serial = zlib.crc32(code.encode()) % 10**8
    institution = Institution(
        code=code,
        uscc=make_uscc("91", "310000", f"{serial:08d}"),
        region="Shanghai",
        contact_emails=[f"risk@{code.lower()}.example"],
        created_at=at,
        updated_at=at,
        **values,
    )
    session.add(institution)
    session.flush()
    return institution


TECH_MA_SCOPE = {
    "products": ["tech_ma_loan_control_acquisition"],
    "currencies": ["CNY"],
    "customer_segments": ["high_tech_enterprise", "specialised_sme"],
    "regions": ["Shanghai"],
    "target_industries": ["integrated_circuits", "artificial_intelligence"],
}


def tech_ma_application(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "program": "SH-TECH-MA",
        "title": "Tech-enterprise M&A loans",
        "description": "Loans to technology enterprises acquiring control of a target.",
        "requested_scope": TECH_MA_SCOPE,
        "requested_quotas": {"exposure_limit": "5000000000"},
        "start_on": "2026-12-01",
        "end_on": "2028-11-30",
        "risk_controls": "Deal-by-deal credit committee; LTV and term hard limits.",
        "consumer_protection": "Corporate borrowers only; standard disclosures.",
        "exit_plan": "Run-off of the book at contractual maturity.",
    }
    body.update(overrides)
    return body
