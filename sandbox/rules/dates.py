"""Calendar arithmetic for pilot durations (pure)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def latest_end(start_on: date, months: int) -> date:
    """The last day of a term of ``months`` starting on ``start_on``: 2026-01-01 + 24 months ends 2027-12-31."""
    return add_months(start_on, months) - timedelta(days=1)
