"""The clock is a port: production reads the system time, demos and tests fix it (SANDBOX_NOW)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

BUREAU_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


def clock_for(fixed: datetime | None) -> Clock:
    return FixedClock(fixed) if fixed is not None else SystemClock()


def bureau_today(clock: Clock) -> date:
    """Business dates (start, end, periods) are the bureau's local dates, in Shanghai."""
    return bureau_date(clock.now())


def bureau_date(at: datetime) -> date:
    """The bureau's calendar date at an instant."""
    return at.astimezone(BUREAU_TZ).date()
