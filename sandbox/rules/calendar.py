"""Working days and filing due dates, by a published holiday calendar (``policies/calendars/*.yaml``).
Pure apart from reading the files.

A working day is a Monday-Friday that is not a public holiday, or a weekend day the State Council
declared worked (a make-up day, 调休上班). Each year's schedule is published in November of the
year before, so a calendar covers a known set of years; a day in any other year is counted on
weekdays alone and the answer is marked ``estimated``, so a due date computed before the schedule
was published can be flagged and recomputed, never silently trusted.

Deadlines count working days because that is how they are set: "within 15 working days after
the period ends" gives the filer the same amount of office time whether or not the Spring
Festival falls in between. Lateness (``days_late``) counts calendar days after the due date: once
the deadline has passed, every day is a day the regulator lacked the figures, holiday or not; a
calendar-day count does not depend on the calendar file, so it is never estimated and a later
correction of the file does not change the lateness already recorded and evaluated by rules; and
it is what ``grace_days`` and the filer's own reading of two dates mean."""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from sandbox.rules.periods import Period
from sandbox.rules.policy_file import PolicyFileError, PolicyProblem, location_text
from sandbox.rules.yamlsafe import MAX_BYTES, YamlDocument, YamlProblem, load_strict

SUFFIX = ".yaml"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")  # as a policy's ``schedule.calendar`` names it
# Far beyond any filing deadline (policies allow at most 60), small enough that a day-by-day walk
# stays instant.
MAX_WORKING_DAYS = 2500
# The longest break a notice has declared is ten days (the 2020 Spring Festival, extended); a
# longer span is a typo such as 2025-11-08 for 2025-10-08.
MAX_HOLIDAY_DAYS = 15
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class CalendarFileError(PolicyFileError):
    """One or more problems in a calendar file (or a folder of them), each with file and line; a
    ``PolicyFileError``, so a loader reports calendars and policies the same way."""


# -- the file's shape ----------------------------------------------------------------------------


def _iso_date(value: object) -> object:
    # Only YYYY-MM-DD: pydantic alone would also take 20250128 as a Unix timestamp.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a real date") from None
    raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2026-02-15")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    title: Text
    published_on: IsoDate


class Holiday(_Strict):
    """One holiday of a notice: the days off, ``from`` to ``to`` inclusive (weekends among them
    are harmless), and the weekend days worked to make up for it."""

    name: Text
    first: IsoDate = Field(alias="from")
    last: IsoDate = Field(alias="to")
    worked: list[IsoDate] = []


class CalendarYear(_Strict):
    year: Annotated[int, Field(strict=True, ge=2000, le=2100)]
    sources: Annotated[list[Source], Field(min_length=1)]
    holidays: Annotated[list[Holiday], Field(min_length=1)]


class CalendarDocument(_Strict):
    title: Text
    years: Annotated[list[CalendarYear], Field(min_length=1)]


# -- the calendar --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkingDayResult:
    date: dt.date
    estimated: bool  # some day counted lies in a year the calendar does not cover


def _weekdays_through(day: dt.date) -> int:
    """Mondays-Fridays from 0001-01-01 (a Monday) to ``day`` inclusive."""
    weeks, rest = divmod(day.toordinal(), 7)
    return weeks * 5 + min(rest, 5)


@dataclass(frozen=True)
class WorkingCalendar:
    """``days_off`` maps each holiday date to its holiday's name; ``days_worked`` maps each
    make-up working day to the holiday it makes up for. Every date lies in a covered year. With
    no years at all, it is the plain Monday-Friday calendar, every answer estimated."""

    name: str
    years: frozenset[int] = frozenset()
    days_off: Mapping[dt.date, str] = field(default_factory=dict)
    days_worked: Mapping[dt.date, str] = field(default_factory=dict)
    title: str = ""
    # Weekdays off and weekend days worked, sorted: the only dates where the calendar departs from
    # Monday-Friday, so counting between two dates is arithmetic plus two binary searches.
    _weekdays_off: tuple[dt.date, ...] = field(init=False, repr=False, compare=False)
    _weekends_worked: tuple[dt.date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        both = set(self.days_off) & set(self.days_worked)
        if both:
            raise ValueError(f"dates both off and worked: {', '.join(d.isoformat() for d in sorted(both))}")
        weekdays = [d for d in self.days_worked if d.weekday() < 5]
        if weekdays:
            raise ValueError(f"make-up working days on weekdays: {', '.join(d.isoformat() for d in sorted(weekdays))}")
        outside = [d for d in (*self.days_off, *self.days_worked) if d.year not in self.years]
        if outside:
            raise ValueError(f"dates in years not covered: {', '.join(d.isoformat() for d in sorted(outside))}")
        object.__setattr__(self, "_weekdays_off", tuple(sorted(d for d in self.days_off if d.weekday() < 5)))
        object.__setattr__(self, "_weekends_worked", tuple(sorted(self.days_worked)))

    def covers(self, year: int) -> bool:
        return year in self.years

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.days_worked:
            return True
        if day in self.days_off:
            return False
        return day.weekday() < 5

    def holiday_name(self, day: dt.date) -> str | None:
        return self.days_off.get(day)

    def add_working_days(self, day: dt.date, n: int) -> WorkingDayResult:
        """The ``n``-th working day after ``day``. With ``n == 0``: ``day`` itself if it is a
        working day, else the next working day (the usual "following business day" rule), so
        the answer is always a working day."""
        if not 0 <= n <= MAX_WORKING_DAYS:
            raise ValueError(f"the number of working days must be between 0 and {MAX_WORKING_DAYS}, not {n}")
        one = dt.timedelta(days=1)
        current = day
        estimated = False
        if n == 0:
            while True:
                estimated = estimated or not self.covers(current.year)
                if self.is_working_day(current):
                    return WorkingDayResult(current, estimated)
                current += one
        remaining = n
        while remaining:
            current += one
            estimated = estimated or not self.covers(current.year)
            if self.is_working_day(current):
                remaining -= 1
        return WorkingDayResult(current, estimated)

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """Working days after ``a`` up to and including ``b``; 0 if ``b`` is not after ``a``."""
        if b <= a:
            return 0
        off = bisect_right(self._weekdays_off, b) - bisect_right(self._weekdays_off, a)
        worked = bisect_right(self._weekends_worked, b) - bisect_right(self._weekends_worked, a)
        return _weekdays_through(b) - _weekdays_through(a) - off + worked


def due_date(period: Period, business_days: int, calendar: WorkingCalendar) -> WorkingDayResult:
    """The ``business_days``-th working day after the period's last day: 15 working days after
    January 2026 is 27 February 2026 (the Spring Festival runs 15-23 February, 14 February is
    worked)."""
    if business_days < 1:
        raise ValueError(f"a filing is due at least 1 working day after its period, not {business_days}")
    return calendar.add_working_days(period.end, business_days)


def days_late(received_on: dt.date, due_on: dt.date) -> int:
    """Calendar days after the due date; 0 when received on or before it (see the module's
    docstring for why calendar days)."""
    return max(0, (received_on - due_on).days)


# -- reading files -------------------------------------------------------------------------------


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r} (misspelt, or not allowed here)"
    if error["type"] == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _day(day: dt.date) -> str:
    return f"{day.isoformat()} ({_WEEKDAY_NAMES[day.weekday()]})"


def _range_problems(holiday: Holiday, year: int) -> list[tuple[str, str]]:
    """Faults of a holiday's ``from``/``to``, as (key, message)."""
    outside = [
        (key, f"{day.isoformat()} is not in {year}, the year this entry covers")
        for key, day in (("from", holiday.first), ("to", holiday.last))
        if day.year != year
    ]
    if outside:
        return outside  # an order or length complaint about a date in the wrong year would only be noise
    if holiday.last < holiday.first:
        return [("to", f"{holiday.last.isoformat()} is before from ({holiday.first.isoformat()})")]
    days = (holiday.last - holiday.first).days + 1
    if days > MAX_HOLIDAY_DAYS:
        return [("to", f"a holiday of {days} days; at most {MAX_HOLIDAY_DAYS} (is a date mistyped?)")]
    return []


def _semantic_problems(document: CalendarDocument, parsed: YamlDocument, source: str) -> list[PolicyProblem]:
    problems: list[PolicyProblem] = []

    def problem(loc: tuple[Any, ...], message: str) -> None:
        problems.append(PolicyProblem(source, parsed.line_of(loc), location_text(loc), message))

    first_listed: dict[int, int] = {}
    for i, entry in enumerate(document.years):
        year = entry.year
        if year in first_listed:
            problem(
                ("years", i, "year"),
                f"year {year} is also listed at line {parsed.line_of(('years', first_listed[year], 'year'))}",
            )
            continue
        first_listed[year] = i
        off: dict[dt.date, tuple[str, int]] = {}  # date -> (holiday, line)
        worked: dict[dt.date, tuple[str, int, tuple[Any, ...]]] = {}  # date -> (holiday, line, location)
        for j, holiday in enumerate(entry.holidays):
            here = ("years", i, "holidays", j)
            line = parsed.line_of(here) or 0
            range_problems = _range_problems(holiday, year)
            for key, message in range_problems:
                problem((*here, key), message)
            if not range_problems:
                day = holiday.first
                while day <= holiday.last:
                    if day in off:
                        other, other_line = off[day]
                        problem((*here, "from"), f"{day.isoformat()} is also a day off of {other} (line {other_line})")
                        break
                    off[day] = (holiday.name, line)
                    day += dt.timedelta(days=1)
            for k, day in enumerate(holiday.worked):
                at = (*here, "worked", k)
                if day.year != year:
                    problem(at, f"{day.isoformat()} is not in {year}, the year this entry covers")
                elif day.weekday() < 5:
                    problem(at, f"{_day(day)} is a weekday; a make-up working day is a Saturday or Sunday")
                elif day in worked:
                    problem(
                        at, f"{day.isoformat()} is also listed as worked for {worked[day][0]} (line {worked[day][1]})"
                    )
                else:
                    worked[day] = (holiday.name, line, at)
        # Checked once the whole year is read: a make-up day may be listed before the holiday it clashes with.
        for day, (_, _, at) in worked.items():
            if day in off:
                other, other_line = off[day]
                problem(at, f"{day.isoformat()} is both worked and a day off of {other} (line {other_line})")
    return sorted(problems, key=lambda p: p.line or 0)


def parse_calendar(text: str | bytes, name: str, source: str) -> WorkingCalendar:
    """Parse one calendar file; ``source`` names it in every problem. Every problem of the file is
    reported at once."""
    if not NAME.fullmatch(name):
        raise CalendarFileError(
            source,
            [
                PolicyProblem(
                    source, None, "", f"a calendar's file name must be lower-case letters, digits or _, not {name!r}"
                )
            ],
        )
    try:
        parsed = load_strict(text)
    except YamlProblem as exc:
        raise CalendarFileError(source, [PolicyProblem(source, exc.line, "", exc.message)]) from None
    if not isinstance(parsed.data, dict):
        message = "the file is empty" if parsed.data is None else "the top level must be a mapping (title, years)"
        raise CalendarFileError(source, [PolicyProblem(source, parsed.line_of(()), "", message)])
    try:
        document = CalendarDocument.model_validate(parsed.data)
    except ValidationError as exc:
        problems = [
            PolicyProblem(source, parsed.line_of(tuple(e["loc"])), location_text(tuple(e["loc"])), _message(e))
            for e in exc.errors()
        ]
        raise CalendarFileError(source, sorted(problems, key=lambda p: p.line or 0)) from None
    problems = _semantic_problems(document, parsed, source)
    if problems:
        raise CalendarFileError(source, problems)
    days_off: dict[dt.date, str] = {}
    days_worked: dict[dt.date, str] = {}
    for entry in document.years:
        for holiday in entry.holidays:
            day = holiday.first
            while day <= holiday.last:
                days_off[day] = holiday.name
                day += dt.timedelta(days=1)
            days_worked.update((d, holiday.name) for d in holiday.worked)
    return WorkingCalendar(
        name=name,
        years=frozenset(entry.year for entry in document.years),
        days_off=days_off,
        days_worked=days_worked,
        title=document.title,
    )


def _read(path: Path) -> bytes:
    with path.open("rb") as handle:
        # One byte past the limit: enough for the size check, never the whole of a huge file.
        return handle.read(MAX_BYTES + 1)


def load_calendar(path: Path) -> WorkingCalendar:
    """Read one calendar file; its name is the file's stem (``policies/calendars/cn.yaml`` is "cn")."""
    return parse_calendar(_read(path), path.stem, str(path))


def load_calendar_dir(path: Path) -> dict[str, WorkingCalendar]:
    """Every ``*.yaml`` calendar of a folder, by name. Refused whole, with every problem of every
    file, if any file is bad."""
    if not path.is_dir():
        raise CalendarFileError(str(path), [PolicyProblem(str(path), None, "", "not a folder")])
    calendars: dict[str, WorkingCalendar] = {}
    problems: list[PolicyProblem] = []
    for entry in sorted(path.iterdir()):
        if entry.is_dir() or entry.suffix != SUFFIX or entry.name.startswith("."):
            continue
        try:
            calendars[entry.stem] = load_calendar(entry)
        except CalendarFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise CalendarFileError(str(path), problems)
    return calendars
