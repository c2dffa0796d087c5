"""The demo history, step by step at realistic dates. Each step is one unit of work through the
services, exactly as the API or CLI would run it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from sandbox.actor import SYSTEM, Actor
from sandbox.application import service as applications
from sandbox.application.schemas import ApplicationCreate, ApproveBody
from sandbox.db import Database
from sandbox.demo.data import BUREAU_USERS, DEMO_PASSWORD, INSTITUTIONS, DemoUser, institution_users
from sandbox.demo.filings import run_timeline
from sandbox.errors import SandboxError
from sandbox.institution.schemas import InstitutionCreate
from sandbox.institution.service import create_institution
from sandbox.program.calendars import load_calendars
from sandbox.program.service import load_policy_dir
from sandbox.rules.calendar import WorkingCalendar
from sandbox.scan import run_scan
from sandbox.user.service import actor_for, create_user, issue_token


def at(day: str, hour: int = 2) -> datetime:
    """10:00 in Shanghai is 02:00 UTC."""
    return datetime.combine(date.fromisoformat(day), time(hour), tzinfo=UTC)


@dataclass
class DemoResult:
    tokens: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # email -> (role, institution, token)
    notes: list[str] = field(default_factory=list)


@dataclass
class Demo:
    database: Database
    policies_dir: Path
    as_of: date
    actors: dict[str, Actor] = field(default_factory=dict)
    calendars: dict[str, WorkingCalendar] = field(default_factory=dict)
    pilots: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    result: DemoResult = field(default_factory=DemoResult)

    def step(self, work: Callable[[Session], Any]) -> Any:
        with self.database.unit_of_work() as session:
            return work(session)

    def actor(self, email: str) -> Actor:
        return self.actors[email]

    # -- set-up ---------------------------------------------------------------------------------

    def setup(self) -> None:
        self.calendars = load_calendars(self.policies_dir)
        self.step(lambda s: load_policy_dir(s, self.policies_dir, actor=SYSTEM, at=at("2025-09-01")))
        admin_user = BUREAU_USERS[0]
        self._add_user(admin_user, at("2025-09-01"))
        admin = self.actor(admin_user.email)
        for data in INSTITUTIONS:
            body = InstitutionCreate.model_validate(data)
            with self.database.unit_of_work() as session:
                create_institution(session, body, actor=admin, at=at("2025-09-02"))
        for user in [*BUREAU_USERS[1:], *institution_users()]:
            self._add_user(user, at("2025-09-03"))

    def _add_user(self, user: DemoUser, when: datetime) -> None:
        def work(session: Session) -> None:
            row = create_user(
                session,
                email=user.email,
                role=user.role,
                institution_code=user.institution,
                display_name=user.name,
                password=DEMO_PASSWORD,
                actor=SYSTEM,
                at=when,
            )
            issued = issue_token(session, row, label="demo", actor=SYSTEM, at=when)
            self.actors[user.email] = actor_for(row)
            self.result.tokens[user.email] = (user.role.value, user.institution or "", issued.token)

        self.step(work)

    # -- applications ---------------------------------------------------------------------------

    def apply(self, bank: str, program: str, when: str, **body: Any) -> uuid.UUID:
        data = ApplicationCreate.model_validate({"program": program, **body})
        with self.database.unit_of_work() as session:
            return applications.create_application(
                session, data, actor=self.actor(f"admin@{bank.lower()}.example"), at=at(when)
            ).id

    def run(self, app_id: uuid.UUID, command: str, who: str, when: str, *args: Any) -> Any:
        actor = self.actor(who)
        function = getattr(applications, command.replace("-", "_"))
        return self.step(lambda s: function(s, app_id, *args, actor=actor, at=at(when), expected_version=None))

    def to_pilot(
        self,
        bank: str,
        program: str,
        dates: tuple[str, str, str, str],
        body: dict[str, Any],
        approve: ApproveBody | None = None,
        question: tuple[str, str] | None = None,
    ) -> uuid.UUID:
        """dates: applied, submitted, recommended, approved."""
        applied, submitted, recommended, approved = dates
        bank_admin = f"admin@{bank.lower()}.example"
        app_id = self.apply(bank, program, applied, **body)
        self.run(app_id, "submit", bank_admin, submitted)
        self.run(app_id, "start-review", "reviewer@bureau.example", submitted)
        if question:
            self.run(app_id, "request-info", "reviewer@bureau.example", submitted, question[0])
            self.run(app_id, "respond", bank_admin, recommended, question[1])
        self.run(
            app_id,
            "recommend",
            "reviewer@bureau.example",
            recommended,
            "approve",
            "Eligible; controls proportionate to the requested quota.",
        )
        _, pilot = self.run(app_id, "approve", "approver@bureau.example", approved, approve or ApproveBody())
        self.pilots[(bank, program)] = pilot.id
        return pilot.id  # type: ignore[no-any-return]

    def run_scan(self, session: Session, day: date) -> None:
        run_scan(session, as_of=day, at=at(day.isoformat(), 0), calendars=self.calendars)

    def scan(self, day: str) -> None:
        self.step(lambda s: run_scan(s, as_of=date.fromisoformat(day), at=at(day, 0), calendars=self.calendars))


def _texts(title: str) -> dict[str, str]:
    return {
        "title": title,
        "description": f"{title}: pilot under the bureau's sandbox, within the program's scope and caps.",
        "risk_controls": "Credit committee approval per deal; daily limit monitoring; independent risk sign-off.",
        "consumer_protection": "Clear disclosure of pilot status; complaints handled within 5 working days.",
        "exit_plan": "Stop new business, run the book off at contractual maturity, notify customers.",
    }


def build(database: Database, policies_dir: Path, as_of: date) -> DemoResult:
    demo = Demo(database, policies_dir, as_of)
    demo.setup()
    reviewer, approver = "reviewer@bureau.example", "approver@bureau.example"

    tech_scope = {
        "products": ["tech_ma_loan_control_acquisition"],
        "currencies": ["CNY"],
        "customer_segments": ["high_tech_enterprise", "specialised_sme"],
        "regions": ["Shanghai", "Jiangsu"],
        "target_industries": ["integrated_circuits", "biomedicine", "artificial_intelligence"],
    }
    demo.to_pilot(
        "BANK-A",
        "SH-TECH-MA",
        ("2025-10-08", "2025-10-09", "2025-10-20", "2025-10-27"),
        {
            **_texts("Tech-enterprise M&A loans, Bank A"),
            "requested_scope": tech_scope,
            "requested_quotas": {"exposure_limit": "15000000000", "per_deal_limit": "2000000000"},
            "start_on": "2025-11-01",
            "end_on": "2027-10-31",
        },
        approve=ApproveBody(conditions=["Quarterly portfolio review with the bureau"]),
        question=(
            "Describe how the 80% loan-to-price limit is enforced at booking.",
            "A hard stop in the loan system rejects any drawdown above 80% of the audited price.",
        ),
    )
    demo.to_pilot(
        "BANK-B",
        "SH-TECH-MA",
        ("2025-11-03", "2025-11-05", "2025-11-18", "2025-11-24"),
        {
            **_texts("Tech M&A loans for specialised SMEs, Bank B"),
            "requested_scope": tech_scope,
            "requested_quotas": {"exposure_limit": "12000000000", "per_deal_limit": "1500000000"},
            "start_on": "2025-12-01",
            "end_on": "2027-11-30",
        },
        approve=ApproveBody.model_validate(
            {"granted_quotas": {"exposure_limit": "10000000000"}, "reason": "Granted 10bn: Bank B's M&A book is new."}
        ),
    )
    demo.to_pilot(
        "BANK-D",
        "SH-TECH-MA",
        ("2026-10-12", "2026-10-14", "2026-11-10", "2026-11-20"),
        {
            **_texts("Tech M&A loans, Bank D"),
            "requested_scope": tech_scope,
            "requested_quotas": {"exposure_limit": "5000000000", "per_deal_limit": "1000000000"},
            "start_on": "2027-01-01",
            "end_on": "2028-12-31",
        },
    )
    # Bank C: major administrative penalty in March 2025, so ineligible for M&A loans.
    bank_c_app = demo.apply(
        "BANK-C",
        "SH-TECH-MA",
        "2026-11-02",
        **_texts("Tech M&A loans, Bank C"),
        requested_scope=tech_scope,
        requested_quotas={"exposure_limit": "3000000000"},
        start_on="2027-01-01",
        end_on="2028-12-31",
    )
    try:
        demo.run(bank_c_app, "submit", "admin@bank-c.example", "2026-11-03")
    except SandboxError as refusal:
        demo.result.notes.append(f"BANK-C's SH-TECH-MA application was refused at submission: {refusal.detail}")

    _cross_border(demo)
    _insurance(demo)
    _in_review(demo, reviewer, approver)
    run_timeline(demo, demo.pilots, as_of)
    demo.scan(as_of.isoformat())
    return demo.result


def _cross_border(demo: Demo) -> None:
    scope = {
        "products": ["nonresident_syndicated_loan"],
        "currencies": ["CNY", "USD", "EUR"],
        "customer_segments": ["overseas_subsidiary_of_chinese_enterprise", "overseas_project_company"],
        "regions": ["southeast_asia", "central_asia", "middle_east"],
    }
    demo.to_pilot(
        "BANK-A",
        "SH-FTZ-NRSL",
        ("2025-10-09", "2025-10-10", "2025-10-21", "2025-10-28"),
        {
            **_texts("Non-resident syndicated loans via FT accounts, Bank A"),
            "requested_scope": scope,
            "requested_quotas": {"exposure_limit": "20000000000", "per_syndicate_share": "1500000000"},
            "start_on": "2025-11-01",
            "end_on": "2027-10-31",
        },
    )
    demo.to_pilot(
        "BANK-F",
        "SH-FTZ-NRSL",
        ("2025-10-09", "2025-10-13", "2025-10-22", "2025-10-29"),
        {
            **_texts("Non-resident syndicated loans, Bank F"),
            "requested_scope": scope,
            "requested_quotas": {"exposure_limit": "10000000000", "per_syndicate_share": "1000000000"},
            "start_on": "2025-11-01",
            "end_on": "2027-10-31",
        },
        approve=ApproveBody(
            granted_scope={"currencies": ["USD", "EUR"]}, conditions=["Monthly sanctions-screening attestation"]
        ),
    )


def _insurance(demo: Demo) -> None:
    demo.to_pilot(
        "INS-D",
        "SH-SHIP-GH",
        ("2025-09-10", "2025-09-12", "2025-09-22", "2025-09-26"),
        {
            **_texts("Green-vessel hull insurance, Insurer D"),
            "requested_scope": {
                "products": ["green_vessel_hull", "green_vessel_hull_and_machinery"],
                "currencies": ["CNY", "USD"],
                "customer_segments": ["shipowner", "ship_manager"],
                "vessel_fuels": ["lng_dual_fuel", "methanol_dual_fuel"],
                "regions": ["Shanghai"],
            },
            "requested_quotas": {
                "annual_premium": "800000000",
                "sum_insured_per_vessel": "1500000000",
                "net_retention_per_vessel": "150000000",
            },
            "start_on": "2025-10-01",
            "end_on": "2028-09-30",
        },
    )
    demo.to_pilot(
        "PEN-E",
        "SH-PEN-CPA",
        ("2025-10-08", "2025-10-10", "2025-10-20", "2025-10-24"),
        {
            **_texts("Commercial pension accounts, Pension Insurer E"),
            "requested_scope": {
                "products": ["commercial_pension_account"],
                "currencies": ["CNY"],
                "customer_segments": ["employees", "flexible_workers"],
                "regions": ["Shanghai"],
                "sub_accounts": ["guaranteed", "investment"],
            },
            "requested_quotas": {"accounts_limit": "200000", "annual_contribution_per_customer": "200000"},
            "start_on": "2025-11-01",
            "end_on": "2028-10-31",
        },
        approve=ApproveBody.model_validate(
            {
                "granted_quotas": {"accounts_limit": "150000"},
                "conditions": ["Solvency reported monthly; the insurer is close to the eligibility line"],
            }
        ),
    )


def _in_review(demo: Demo, reviewer: str, approver: str) -> None:
    carbon_scope = {
        "products": ["cea_pledge_loan"],
        "currencies": ["CNY"],
        "customer_segments": ["ets_power_generation", "ets_steel"],
        "regions": ["Shanghai"],
        "collateral": ["national_cea"],
    }
    carbon = {
        **_texts("CEA pledge loans"),
        "requested_scope": carbon_scope,
        "requested_quotas": {"exposure_limit": "2000000000", "per_borrower_limit": "200000000"},
        "start_on": "2027-01-01",
        "end_on": "2028-12-31",
    }
    # Bank B: submitted, waiting for a reviewer.
    b = demo.apply("BANK-B", "SH-CARB-CEA", "2026-11-24", **carbon)
    demo.run(b, "submit", "admin@bank-b.example", "2026-11-25")
    # Bank A: recommended for approval, waiting for an approver's decision.
    a = demo.apply("BANK-A", "SH-CARB-CEA", "2026-11-16", **carbon)
    demo.run(a, "submit", "admin@bank-a.example", "2026-11-17")
    demo.run(a, "start-review", reviewer, "2026-11-18")
    demo.run(a, "recommend", reviewer, "2026-11-26", "approve", "Collateral registration process verified.")
    # Bank D: information requested, waiting for the bank's answer.
    digital_scope = {
        "products": ["online_business_loan"],
        "currencies": ["CNY"],
        "customer_segments": ["micro_enterprise", "sole_trader"],
        "regions": ["Shanghai"],
        "channels": ["bank_app"],
    }
    digital = {
        **_texts("AI credit for micro-businesses"),
        "requested_scope": digital_scope,
        "requested_quotas": {"exposure_limit": "3000000000", "borrowers_limit": "30000"},
        "start_on": "2027-01-01",
        "end_on": "2028-12-31",
    }
    d = demo.apply("BANK-D", "SH-DIG-AICR", "2026-11-09", **digital)
    demo.run(d, "submit", "admin@bank-d.example", "2026-11-10")
    demo.run(d, "start-review", reviewer, "2026-11-12")
    demo.run(
        d,
        "request-info",
        reviewer,
        "2026-11-20",
        "Please send the model validation report and the fairness test across borrower segments.",
    )
    # Bank B: rejected earlier in the year.
    r = demo.apply(
        "BANK-B", "SH-DIG-AICR", "2026-05-06", **{**digital, "start_on": "2026-07-01", "end_on": "2028-06-30"}
    )
    demo.run(r, "submit", "admin@bank-b.example", "2026-05-07")
    demo.run(r, "start-review", "reviewer2@bureau.example", "2026-05-08")
    demo.run(r, "recommend", "reviewer2@bureau.example", "2026-05-20", "reject", "No independent model validation.")
    demo.run(r, "reject", approver, "2026-05-27", "Model risk controls not yet in place; re-apply after validation.")
    # Bank D: a draft it withdrew.
    w = demo.apply("BANK-D", "SH-CARB-CEA", "2026-08-03", **carbon)
    demo.run(w, "withdraw", "admin@bank-d.example", "2026-08-10", "Collateral registry access not ready.")
