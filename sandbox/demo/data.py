"""Demo institutions and people. Institutions are placeholders (Bank A, Insurer D...), never real
firms; their identifiers are generated with valid check characters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.institution.identifiers import make_lei, make_uscc
from sandbox.models import Role

DEMO_PASSWORD = "sandbox-demo-2026"


def _institution(code: str, name: str, type_: str, serial: int, **facts: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "type": type_,
        "uscc": make_uscc("91", "310115", f"{serial:08d}"),
        "lei": make_lei(f"3003{serial:08d}DEMO00"),
        "region": "Shanghai",
        "contact_emails": [f"risk@{code.lower()}.example", f"compliance@{code.lower()}.example"],
        **facts,
    }


INSTITUTIONS: list[dict[str, Any]] = [
    _institution(
        "BANK-A",
        "Bank A Shanghai Branch (甲银行上海分行)",
        "domestic_bank",
        10000001,
        rating=1,
        capital_adequacy_ratio="0.162",
        npl_ratio="0.013",
    ),
    _institution(
        "BANK-B",
        "Bank B Shanghai Branch (乙银行上海分行)",
        "joint_stock_bank",
        10000002,
        rating=2,
        capital_adequacy_ratio="0.131",
        npl_ratio="0.0145",
    ),
    _institution(
        "BANK-C",
        "Bank C (丙城市商业银行)",
        "city_commercial_bank",
        10000003,
        rating=3,
        capital_adequacy_ratio="0.124",
        npl_ratio="0.011",
        last_major_penalty_on="2025-03-14",
    ),
    _institution(
        "BANK-D",
        "Bank D (丁城市商业银行)",
        "city_commercial_bank",
        10000004,
        rating=2,
        capital_adequacy_ratio="0.130",
        npl_ratio="0.0095",
    ),
    _institution(
        "BANK-F",
        "Bank F Shanghai Branch (foreign bank)",
        "foreign_bank_branch",
        10000006,
        rating=2,
        capital_adequacy_ratio="0.150",
        npl_ratio="0.008",
    ),
    _institution(
        "INS-D",
        "Insurer D Shipping Insurance Centre (丁财产保险)",
        "insurer",
        20000001,
        rating=2,
        solvency_comprehensive="2.10",
        solvency_core="1.60",
    ),
    _institution(
        "PEN-E",
        "Pension Insurer E (戊养老保险)",
        "pension_insurer",
        20000002,
        rating=2,
        solvency_comprehensive="1.52",
        solvency_core="0.78",
    ),
]


@dataclass(frozen=True)
class DemoUser:
    email: str
    role: Role
    institution: str | None
    name: str


BUREAU_USERS = [
    DemoUser("admin@bureau.example", Role.admin, None, "Admin Wang"),
    DemoUser("reviewer@bureau.example", Role.reviewer, None, "Reviewer Li"),
    DemoUser("reviewer2@bureau.example", Role.reviewer, None, "Reviewer Zhao"),
    DemoUser("approver@bureau.example", Role.approver, None, "Approver Chen"),
    DemoUser("approver2@bureau.example", Role.approver, None, "Approver Liu"),
    DemoUser("supervisor@bureau.example", Role.supervisor, None, "Supervisor Zhou"),
]


def institution_users() -> list[DemoUser]:
    users = []
    for institution in INSTITUTIONS:
        code = institution["code"]
        domain = f"{code.lower()}.example"
        users.append(DemoUser(f"admin@{domain}", Role.institution_admin, code, f"{code} administrator"))
        users.append(DemoUser(f"filer@{domain}", Role.filer, code, f"{code} filer"))
    return users
