from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
)

from sandbox.institution.identifiers import validate_lei, validate_uscc
from sandbox.models import InstitutionStatus, InstitutionType
from sandbox.rules.numbers import ExactDecimal, decimal_places

MAX_CONTACT_EMAILS = 20
# The columns are NUMERIC(38, 12): more places would be rounded by PostgreSQL and kept by SQLite.
MAX_RATIO_PLACES = 12
_UNSEEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def _refuse_unseen(value: str) -> str:
    for position, ch in enumerate(value, start=1):
        if unicodedata.category(ch) in _UNSEEN_CATEGORIES:
            raise ValueError(f"control or invisible character U+{ord(ch):04X} at position {position}")
    return value


def _email(value: str) -> str:
    for ch in value:
        if unicodedata.category(ch) in _UNSEEN_CATEGORIES:
            # CR/LF in an address could add headers (Bcc:) to the alerts we send.
            raise ValueError(f"an email address may not contain control characters (found U+{ord(ch):04X})")
    if "," in value or ";" in value:
        raise ValueError("one address per item: lists separated by commas or semicolons are not accepted")
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc


def _unique_emails(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value} is listed twice")
        seen.add(value)
    return values


def canonical_decimal(value: Decimal) -> Decimal:
    """0.1620 -> 0.162, 1E+2 -> 100, -0 -> 0: both backends store and return the same text."""
    if value == 0:
        return Decimal(0)
    value = value.normalize()
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return value.quantize(Decimal(1)) if exponent > 0 else value


def _check_ratio(value: Decimal, *, maximum: Decimal, example: str) -> Decimal:
    if value < 0:
        raise ValueError("a ratio cannot be negative")
    value = canonical_decimal(value)
    if decimal_places(value) > MAX_RATIO_PLACES:
        raise ValueError(f"at most {MAX_RATIO_PLACES} decimal places")
    if value > maximum:
        raise ValueError(f"must be at most {maximum}: ratios are fractions ({example})")
    return value


def _fraction(value: Decimal) -> Decimal:
    return _check_ratio(value, maximum=Decimal(1), example="0.162 means 16.2%")


def _solvency(value: Decimal) -> Decimal:
    return _check_ratio(value, maximum=Decimal(100), example="2.10 means 210%")


def _iso_date(value: Any) -> Any:
    # pydantic alone would also take 0 (1970-01-01) or a datetime string.
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(canonical_decimal(value), "f")


Code = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), AfterValidator(_refuse_unseen)
]
Region = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_refuse_unseen)
]
Rating = Annotated[int, Field(strict=True, ge=1, le=6, description="1 best .. 6 worst")]
Uscc = Annotated[str, AfterValidator(validate_uscc)]
Lei = Annotated[str, AfterValidator(validate_lei)]
Fraction = Annotated[ExactDecimal, AfterValidator(_fraction)]
SolvencyRatio = Annotated[ExactDecimal, AfterValidator(_solvency)]
Day = Annotated[date, BeforeValidator(_iso_date)]
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]
ContactEmails = Annotated[list[Email], Field(max_length=MAX_CONTACT_EMAILS), AfterValidator(_unique_emails)]
DecimalText = Annotated[Decimal | None, PlainSerializer(_decimal_text, return_type=str | None)]


class InstitutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Name
    type: InstitutionType
    uscc: Uscc
    lei: Lei | None = None
    region: Region
    rating: Rating
    # Optional: insurers have solvency ratios instead of the banks' capital-adequacy and NPL ratios.
    capital_adequacy_ratio: Fraction | None = None
    npl_ratio: Fraction | None = None
    solvency_comprehensive: SolvencyRatio | None = None
    solvency_core: SolvencyRatio | None = None
    last_major_penalty_on: Day | None = None
    contact_emails: ContactEmails = []


# PATCH fields that a client may omit but never set to null (their columns are required).
REQUIRED_ON_UPDATE = ("name", "type", "uscc", "region", "rating", "status", "contact_emails")


class InstitutionUpdate(BaseModel):
    """Only the fields sent are changed; ``null`` clears an optional field."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    type: InstitutionType | None = None
    uscc: Uscc | None = None
    lei: Lei | None = None
    region: Region | None = None
    rating: Rating | None = None
    capital_adequacy_ratio: Fraction | None = None
    npl_ratio: Fraction | None = None
    solvency_comprehensive: SolvencyRatio | None = None
    solvency_core: SolvencyRatio | None = None
    last_major_penalty_on: Day | None = None
    status: InstitutionStatus | None = None
    contact_emails: ContactEmails | None = None

    @field_validator(*REQUIRED_ON_UPDATE, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not set to null")
        return value

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields if name in self.model_fields_set}


class InstitutionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    type: str
    uscc: str
    lei: str | None
    region: str
    rating: int
    capital_adequacy_ratio: DecimalText
    npl_ratio: DecimalText
    solvency_comprehensive: DecimalText
    solvency_core: DecimalText
    last_major_penalty_on: date | None
    status: str
    contact_emails: list[str]
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Changes with every update; sent as the ETag")
