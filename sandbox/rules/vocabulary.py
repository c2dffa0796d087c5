"""Shared vocabulary of the regulatory core (pure: no framework imports)."""

from __future__ import annotations

from enum import StrEnum


class InstitutionType(StrEnum):
    domestic_bank = "domestic_bank"
    joint_stock_bank = "joint_stock_bank"
    city_commercial_bank = "city_commercial_bank"
    rural_bank = "rural_bank"
    foreign_bank_branch = "foreign_bank_branch"
    insurer = "insurer"
    pension_insurer = "pension_insurer"
    reinsurer = "reinsurer"
    securities_firm = "securities_firm"
    fintech_subsidiary = "fintech_subsidiary"
