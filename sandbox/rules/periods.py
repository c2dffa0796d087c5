"""Reporting periods: a month (``2026-10``) or a quarter (``2026-Q3``), as a program's schedule
declares. Pure.

A period label is read by one exact grammar per frequency, so ``2026-1``, ``2026-10-01`` or a
quarter sent to a monthly program are refused with a message saying what the program expects,
never guessed at: a guessed period is a filing counted against the wrong month."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

Frequency = Literal["monthly", "quarterly"]
FREQUENCIES: tuple[Frequency, ...] = get_args(Frequency)
# The years a label may name: generous for any pilot, narrow enough to catch a typo such as 20026.
FIRST_YEAR = 2000
LAST_YEAR = 2100

_PER_YEAR: dict[str, int] = {"monthly": 12, "quarterly": 4}
_MONTHLY = re.compile(r"([0-9]{4})-([0-9]{2})")
_QUARTERLY = re.compile(r"([0-9]{4})-Q([0-9])")
# Shapes that are recognisably something else, so the message can say what was meant.
_LOOKS_QUARTERLY = re.compile(r"[0-9]{4}-[Qq][0-9]+")
_LOOKS_MONTHLY = re.compile(r"[0-9]{4}-[0-9]{1,2}")
_LOOKS_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")
_EXAMPLE: dict[str, str] = {
    "monthly": "YYYY-MM with a two-digit month, e.g. 2026-10",
    "quarterly": "YYYY-Qn, e.g. 2026-Q3",
}


class PeriodError(ValueError):
    pass


def _check_frequency(frequency: str) -> None:
    if frequency not in _PER_YEAR:
        raise PeriodError(f"unknown frequency {frequency!r}; expected one of {', '.join(FREQUENCIES)}")


@dataclass(frozen=True, order=True)
class Period:
    """Periods of one frequency order by time; comparing a month with a quarter is meaningless
    (the order is then by frequency name first), so callers keep one frequency per program."""

    frequency: Frequency
    year: int
    number: int  # the month 1-12, or the quarter 1-4

    def __post_init__(self) -> None:
        _check_frequency(self.frequency)
        if not 1 <= self.year <= 9999:
            raise PeriodError(f"year {self.year} is out of range")
        if not 1 <= self.number <= _PER_YEAR[self.frequency]:
            unit = "month" if self.frequency == "monthly" else "quarter"
            raise PeriodError(f"{unit} {self.number} is not between 1 and {_PER_YEAR[self.frequency]}")

    @classmethod
    def from_ordinal(cls, frequency: Frequency, ordinal: int) -> Period:
        _check_frequency(frequency)
        year, index = divmod(ordinal, _PER_YEAR[frequency])
        return cls(frequency, year, index + 1)

    @property
    def _first_month(self) -> int:
        return self.number if self.frequency == "monthly" else (self.number - 1) * 3 + 1

    @property
    def _last_month(self) -> int:
        return self.number if self.frequency == "monthly" else self.number * 3

    @property
    def start(self) -> date:
        return date(self.year, self._first_month, 1)

    @property
    def end(self) -> date:
        month = self._last_month
        return date(self.year, month, calendar.monthrange(self.year, month)[1])

    @property
    def label(self) -> str:
        if self.frequency == "monthly":
            return f"{self.year:04d}-{self.number:02d}"
        return f"{self.year:04d}-Q{self.number}"

    @property
    def ordinal(self) -> int:
        """Consecutive periods of one frequency differ by exactly 1, across year ends too, so
        ``b.ordinal - a.ordinal`` is the number of periods from a to b."""
        return self.year * _PER_YEAR[self.frequency] + self.number - 1

    def next(self) -> Period:
        return Period.from_ordinal(self.frequency, self.ordinal + 1)

    def previous(self) -> Period:
        return Period.from_ordinal(self.frequency, self.ordinal - 1)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def __str__(self) -> str:
        return self.label


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _hint(text: str, frequency: Frequency) -> str:
    if text != text.strip():
        return "; remove the spaces around it"
    if any(ch.isdigit() and not ch.isascii() for ch in text):
        return "; use the ASCII digits 0-9"
    if _LOOKS_DATE.fullmatch(text):
        return " (that is a date, not a period)"
    if frequency == "quarterly" and re.fullmatch(r"[0-9]{4}-q[0-9]", text):
        return "; write a capital Q"
    return ""


def parse_period(text: str, frequency: Frequency) -> Period:
    """Read a period label exactly: ``YYYY-MM`` for a monthly program, ``YYYY-Qn`` for a quarterly
    one, years 2000-2100."""
    _check_frequency(frequency)
    if not isinstance(text, str):
        raise PeriodError(f"a period is text such as {_EXAMPLE[frequency]}, not {type(text).__name__}")
    pattern = _MONTHLY if frequency == "monthly" else _QUARTERLY
    match = pattern.fullmatch(text)
    if match is None:
        if frequency == "monthly" and _LOOKS_QUARTERLY.fullmatch(text):
            raise PeriodError(
                f"{_shown(text)} is a quarter, but this program files monthly: write {_EXAMPLE['monthly']}"
            )
        if frequency == "quarterly" and _LOOKS_MONTHLY.fullmatch(text):
            raise PeriodError(
                f"{_shown(text)} is a month, but this program files quarterly: write {_EXAMPLE['quarterly']}"
            )
        raise PeriodError(
            f"{_shown(text)} is not a {frequency} period{_hint(text, frequency)}: write {_EXAMPLE[frequency]}"
        )
    year, number = int(match.group(1)), int(match.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise PeriodError(f"{_shown(text)}: year {year} is outside {FIRST_YEAR}-{LAST_YEAR}")
    if frequency == "monthly" and not 1 <= number <= 12:
        raise PeriodError(f"{_shown(text)}: month {match.group(2)} is not between 01 and 12")
    if frequency == "quarterly" and not 1 <= number <= 4:
        raise PeriodError(f"{_shown(text)}: quarter {number} is not between 1 and 4")
    return Period(frequency, year, number)


def period_of(day: date, frequency: Frequency) -> Period:
    _check_frequency(frequency)
    number = day.month if frequency == "monthly" else (day.month - 1) // 3 + 1
    return Period(frequency, day.year, number)


def expected_periods(start_on: date, end_on: date, frequency: Frequency) -> list[Period]:
    """Every period that overlaps the dates from ``start_on`` to ``end_on`` inclusive: a pilot
    from 2025-11-15 files for 2025-11, a part month being still a month of activity."""
    if end_on < start_on:
        raise PeriodError(f"the end {end_on.isoformat()} is before the start {start_on.isoformat()}")
    first, last = period_of(start_on, frequency), period_of(end_on, frequency)
    return [Period.from_ordinal(frequency, o) for o in range(first.ordinal, last.ordinal + 1)]
