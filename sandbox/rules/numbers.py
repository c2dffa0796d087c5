"""One exact number grammar for every value a bank or a policy sends us.

Accepted: a JSON integer, a decimal parsed exactly from JSON (never through float), or text of
the form ``[+-]digits[.digits][e[+-]digits]``. Refused, never coerced: booleans, floats (they
have already lost digits), NaN and infinities, thousands separators, spaces, full-width or
other non-ASCII digits, and exponents beyond +-30."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_GRAMMAR = re.compile(r"^[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,2})?$", re.ASCII)
MAX_EXPONENT = 30
MAX_DIGITS = 38


def parse_exact(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("a number is required, not true/false")
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        if not _GRAMMAR.match(value):
            raise ValueError(
                f"{value[:40]!r} is not a plain decimal number (digits, optional sign, point and exponent; "
                "no separators, spaces or special values)"
            )
        try:
            result = Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the grammar admits only valid literals
            raise ValueError(f"{value!r} is not a number") from exc
    elif isinstance(value, float):
        raise ValueError("send the number as JSON number text or a decimal string; binary floats lose digits")
    else:
        raise ValueError(f"a number is required, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("NaN and infinities are not numbers we accept")
    exponent = result.as_tuple().exponent
    assert isinstance(exponent, int)
    if abs(result.adjusted()) > MAX_EXPONENT or exponent < -MAX_EXPONENT:
        raise ValueError(f"{value} is outside the accepted magnitude (exponent beyond +-{MAX_EXPONENT})")
    if len(result.as_tuple().digits) > MAX_DIGITS:
        raise ValueError(f"more than {MAX_DIGITS} significant digits")
    return result


ExactDecimal = Annotated[Decimal, BeforeValidator(parse_exact)]


def decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def decimal_text(value: Decimal) -> str:
    """Plain positional text, never exponent form: 4000000000, not 4E+9."""
    return format(value, "f")


DecimalOut = Annotated[Decimal, PlainSerializer(decimal_text, return_type=str)]
