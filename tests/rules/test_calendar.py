from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.rules.calendar import (
    MAX_WORKING_DAYS,
    CalendarFileError,
    WorkingCalendar,
    WorkingDayResult,
    days_late,
    due_date,
    load_calendar,
    load_calendar_dir,
    parse_calendar,
)
from sandbox.rules.periods import Frequency, Period, parse_period
from sandbox.rules.policy_file import PolicyFileError, PolicyProblem
from tests.support import ROOT

CALENDARS = ROOT / "policies" / "calendars"
CN_TEXT = (CALENDARS / "cn.yaml").read_text(encoding="utf-8")
CN = load_calendar(CALENDARS / "cn.yaml")
WEEKDAYS = WorkingCalendar("weekdays")


def problems_of(text: str, name: str = "cn") -> list[PolicyProblem]:
    with pytest.raises(CalendarFileError) as caught:
        parse_calendar(text, name, f"{name}.yaml")
    assert caught.value.problems, "a refusal must say why"
    return caught.value.problems


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


def edit(old: str, new: str, text: str = CN_TEXT) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# -- the shipped calendar ------------------------------------------------------------------------


def test_the_calendar_folder_holds_china_covering_2025_and_2026() -> None:
    calendars = load_calendar_dir(CALENDARS)
    assert set(calendars) == {"cn"}, "README.md is not a calendar"
    cn = calendars["cn"]
    assert cn == CN
    assert [y for y in range(2020, 2031) if cn.covers(y)] == [2025, 2026]


@pytest.mark.parametrize("year", [2025, 2026])
def test_each_covered_year_has_248_working_days(year: int) -> None:
    # 261 weekdays; 2025: 18 weekdays off, 5 weekend days worked; 2026: 19 off, 6 worked.
    assert CN.working_days_between(date(year - 1, 12, 31), date(year, 12, 31)) == 248


@pytest.mark.parametrize(
    ("day", "working", "why"),
    [
        (date(2025, 1, 1), False, "New Year's Day"),
        (date(2025, 1, 26), True, "Sunday worked for the Spring Festival"),
        (date(2025, 2, 4), False, "Spring Festival"),
        (date(2025, 2, 5), True, "a plain Wednesday"),
        (date(2025, 2, 8), True, "Saturday worked for the Spring Festival"),
        (date(2025, 2, 9), False, "a plain Sunday"),
        (date(2025, 4, 4), False, "Qingming Festival"),
        (date(2025, 4, 27), True, "Sunday worked for Labour Day"),
        (date(2025, 5, 5), False, "Labour Day"),
        (date(2025, 6, 2), False, "Dragon Boat Festival"),
        (date(2025, 9, 28), True, "Sunday worked for National Day"),
        (date(2025, 10, 8), False, "National Day and Mid-Autumn Festival"),
        (date(2025, 10, 11), True, "Saturday worked for National Day"),
        (date(2026, 1, 2), False, "New Year's Day"),
        (date(2026, 1, 4), True, "Sunday worked for New Year's Day"),
        (date(2026, 2, 14), True, "Saturday worked for the Spring Festival"),
        (date(2026, 2, 16), False, "Spring Festival"),
        (date(2026, 2, 23), False, "Spring Festival"),
        (date(2026, 2, 28), True, "Saturday worked for the Spring Festival"),
        (date(2026, 4, 6), False, "Qingming Festival"),
        (date(2026, 5, 9), True, "Saturday worked for Labour Day"),
        (date(2026, 6, 19), False, "Dragon Boat Festival"),
        (date(2026, 9, 20), True, "Sunday worked for National Day"),
        (date(2026, 9, 25), False, "Mid-Autumn Festival"),
        (date(2026, 10, 7), False, "National Day"),
        (date(2026, 10, 10), True, "Saturday worked for National Day"),
        (date(2026, 11, 28), False, "a plain Saturday"),
        (date(2030, 10, 1), True, "an uncovered year: weekdays only"),
    ],
)
def test_working_days_follow_the_state_council_schedule(day: date, working: bool, why: str) -> None:
    assert CN.is_working_day(day) is working, why


def test_days_off_carry_their_holiday_name() -> None:
    assert CN.holiday_name(date(2026, 2, 18)) == "Spring Festival"
    assert CN.holiday_name(date(2025, 10, 6)) == "National Day and Mid-Autumn Festival"
    assert CN.holiday_name(date(2026, 2, 14)) is None
    assert CN.days_worked[date(2026, 2, 14)] == "Spring Festival"


# -- due dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "frequency", "business_days", "due_on", "weekdays_only"),
    [
        # DEMO.md: the Spring Festival runs 15-23 Feb 2026, with 14 and 28 Feb worked.
        ("2026-01", "monthly", 15, date(2026, 2, 27), date(2026, 2, 20)),
        # National Day week 1-7 Oct 2026, with Sat 10 Oct worked.
        ("2026-09", "monthly", 10, date(2026, 10, 20), date(2026, 10, 14)),
        ("2026-Q3", "quarterly", 15, date(2026, 10, 27), date(2026, 10, 21)),
        # 1-8 Oct 2025, with Sat 11 Oct worked.
        ("2025-09", "monthly", 10, date(2025, 10, 21), date(2025, 10, 14)),
        # Labour Day 1-5 May (the make-up days, 27 Apr 2025 and 9 May 2026, fall either side).
        ("2025-04", "monthly", 10, date(2025, 5, 19), date(2025, 5, 14)),
        ("2026-04", "monthly", 10, date(2026, 5, 18), date(2026, 5, 14)),
        # Dragon Boat 31 May-2 Jun 2025; in 2026 it comes later (19-21 Jun), so June is plain.
        ("2025-05", "monthly", 10, date(2025, 6, 16), date(2025, 6, 13)),
        ("2026-05", "monthly", 10, date(2026, 6, 12), date(2026, 6, 12)),
        # Across the year end, both years covered: 1-3 Jan off, Sun 4 Jan worked.
        ("2025-12", "monthly", 15, date(2026, 1, 22), date(2026, 1, 21)),
    ],
)
def test_due_date_counts_working_days_by_the_calendar(
    label: str, frequency: Frequency, business_days: int, due_on: date, weekdays_only: date
) -> None:
    period = parse_period(label, frequency)
    assert due_date(period, business_days, CN) == WorkingDayResult(due_on, estimated=False)
    assert due_date(period, business_days, WEEKDAYS) == WorkingDayResult(weekdays_only, estimated=True)


@pytest.mark.parametrize(
    ("label", "business_days", "due_on"),
    [
        ("2026-12", 10, date(2027, 1, 14)),  # counted into 2027, whose schedule is not in the file
        ("2030-03", 10, date(2030, 4, 12)),
        ("2024-06", 10, date(2024, 7, 12)),
    ],
)
def test_a_due_date_counted_in_an_uncovered_year_is_estimated_on_weekdays(
    label: str, business_days: int, due_on: date
) -> None:
    assert due_date(parse_period(label, "monthly"), business_days, CN) == WorkingDayResult(due_on, estimated=True)


def test_only_the_days_counted_decide_whether_an_answer_is_estimated() -> None:
    # 31 Dec 2024 is uncovered but not counted; 1 Jan 2025 is a holiday, 2 Jan the first working day.
    assert CN.add_working_days(date(2024, 12, 31), 1) == WorkingDayResult(date(2025, 1, 2), estimated=False)
    assert CN.add_working_days(date(2024, 12, 30), 1) == WorkingDayResult(date(2024, 12, 31), estimated=True)


@pytest.mark.parametrize(
    ("day", "result"),
    [
        (date(2026, 2, 13), date(2026, 2, 13)),  # a working Friday: itself
        (date(2026, 2, 14), date(2026, 2, 14)),  # a make-up Saturday: itself
        (date(2026, 2, 15), date(2026, 2, 24)),  # in the Spring Festival: the first day back
        (date(2026, 11, 28), date(2026, 11, 30)),  # a plain Saturday: Monday
    ],
)
def test_zero_working_days_rolls_forward_to_a_working_day(day: date, result: date) -> None:
    assert CN.add_working_days(day, 0) == WorkingDayResult(result, estimated=False)


@pytest.mark.parametrize("n", [-1, MAX_WORKING_DAYS + 1])
def test_add_working_days_refuses_a_count_out_of_range(n: int) -> None:
    with pytest.raises(ValueError, match="number of working days"):
        CN.add_working_days(date(2026, 1, 1), n)


def test_a_filing_is_due_at_least_one_working_day_after_its_period() -> None:
    with pytest.raises(ValueError, match="at least 1 working day"):
        due_date(Period("monthly", 2026, 1), 0, CN)


@pytest.mark.parametrize(
    ("a", "b", "count"),
    [
        (date(2026, 1, 31), date(2026, 2, 27), 15),
        (date(2026, 2, 14), date(2026, 2, 24), 1),  # the start is not counted
        (date(2026, 2, 13), date(2026, 2, 14), 1),  # the end is
        (date(2026, 2, 15), date(2026, 2, 23), 0),
        (date(2026, 2, 27), date(2026, 2, 27), 0),
        (date(2026, 2, 27), date(2026, 1, 31), 0),
        (date(2024, 12, 31), date(2025, 1, 3), 2),
    ],
)
def test_working_days_between(a: date, b: date, count: int) -> None:
    assert CN.working_days_between(a, b) == count


@pytest.mark.parametrize(
    ("received_on", "due_on", "late"),
    [
        (date(2026, 2, 26), date(2026, 2, 27), 0),
        (date(2026, 2, 27), date(2026, 2, 27), 0),
        (date(2026, 2, 28), date(2026, 2, 27), 1),
        # Calendar days, holidays included: 1 Oct to 9 Oct is 8 days late though 7 are off.
        (date(2026, 10, 9), date(2026, 10, 1), 8),
    ],
)
def test_days_late_counts_calendar_days_after_the_due_date(received_on: date, due_on: date, late: int) -> None:
    assert days_late(received_on, due_on) == late


# -- properties ----------------------------------------------------------------------------------

covered_days = st.dates(date(2025, 1, 1), date(2026, 9, 30))
any_days = st.dates(date(2024, 6, 1), date(2027, 6, 30))


@given(covered_days, st.integers(1, 60))
def test_add_working_days_lands_on_a_working_day_exactly_n_working_days_on(day: date, n: int) -> None:
    result = CN.add_working_days(day, n)
    assert CN.is_working_day(result.date)
    assert CN.working_days_between(day, result.date) == n
    assert not result.estimated, "within 2025-2026 every day counted is covered"


@given(any_days, st.integers(0, 40))
def test_working_days_between_agrees_with_counting_day_by_day(a: date, span: int) -> None:
    b = a + timedelta(days=span)
    one_by_one = sum(CN.is_working_day(a + timedelta(days=i)) for i in range(1, span + 1))
    assert CN.working_days_between(a, b) == one_by_one


# -- refused files -------------------------------------------------------------------------------

MAKEUP_2025 = "worked: [2025-01-26, 2025-02-08]"
SPRING_2025 = "{name: Spring Festival, from: 2025-01-28, to: 2025-02-04, "


@pytest.mark.parametrize(
    ("old", "new", "location", "fragment"),
    [
        (MAKEUP_2025, "worked: [2025-01-27, 2025-02-08]", "worked[0]", "2025-01-27 (Monday) is a weekday"),
        (MAKEUP_2025, "worked: [2025-01-26, 2025-02-02]", "worked[1]", "both worked and a day off of Spring Festival"),
        (MAKEUP_2025, "worked: [2025-01-26, 2025-01-26]", "worked[1]", "also listed as worked for Spring Festival"),
        (MAKEUP_2025, "worked: [2024-12-29, 2025-02-08]", "worked[0]", "2024-12-29 is not in 2025"),
        (
            SPRING_2025,
            "{name: Spring Festival, from: 2026-01-28, to: 2025-02-04, ",
            "from",
            "2026-01-28 is not in 2025",
        ),
        (SPRING_2025, "{name: Spring Festival, from: 2025-02-04, to: 2025-01-28, ", "to", "before from (2025-02-04)"),
        (SPRING_2025, "{name: Spring Festival, from: 2025-01-28, to: 2025-03-04, ", "to", "a holiday of 36 days"),
        (
            "{name: Dragon Boat Festival, from: 2025-05-31, to: 2025-06-02}",
            "{name: Dragon Boat Festival, from: 2025-05-05, to: 2025-05-06}",
            "from",
            "2025-05-05 is also a day off of Labour Day (line 14)",
        ),
        (SPRING_2025, "{name: Spring Festival, from: 2025-1-28, to: 2025-02-04, ", "from", "write YYYY-MM-DD"),
        (SPRING_2025, "{name: Spring Festival, from: 20250128, to: 2025-02-04, ", "from", "20250128 is not a date"),
        (SPRING_2025, "{name: Spring Festival, from: 2025-02-30, to: 2025-02-04, ", "from", "not a real date"),
        (SPRING_2025, "{name: Spring Festival, to: 2025-02-04, ", "from", "required key is missing"),
        ("  - year: 2026", "  - year: 2025", "year", "year 2025 is also listed at line 6"),
        ("  - year: 2026", '  - year: "2026"', "year", "valid integer"),
        ("  - year: 2026", "  - year: 1999", "year", "greater than or equal to 2000"),
    ],
)
def test_a_bad_calendar_is_refused_naming_line_and_location(old: str, new: str, location: str, fragment: str) -> None:
    text = edit(old, new)
    (problem,) = problems_of(text)
    assert problem.source == "cn.yaml"
    assert problem.line == CN_TEXT[: CN_TEXT.index(old)].count("\n") + 1, "the edited line"
    assert problem.location.endswith(location), problem.location
    assert fragment in problem.message, problem.message


def test_a_misspelt_key_is_named_and_the_key_it_meant_is_missing() -> None:
    text = edit(SPRING_2025, "{name: Spring Festival, form: 2025-01-28, to: 2025-02-04, ")
    problems = problems_of(text)
    assert [(p.line, p.location, p.message) for p in problems] == [
        (12, "years[0].holidays[1].from", "required key is missing"),
        (12, "years[0].holidays[1].form", "unknown key 'form' (misspelt, or not allowed here)"),
    ]


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = edit(MAKEUP_2025, "worked: [2025-01-27, 2025-02-10]")
    text = edit("{name: Qingming Festival, from: 2026-04-04, ", "{name: Qingming Festival, from: 2026-04-07, ", text)
    problems = problems_of(text)
    assert [p.location for p in problems] == [
        "years[0].holidays[1].worked[0]",
        "years[0].holidays[1].worked[1]",
        "years[1].holidays[2].to",
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", None, "the file is empty"),
        ("- 2025-01-01\n", 1, "the top level must be a mapping"),
        ("title: x\nyears: &y []\n", 2, "anchors (&name) are not allowed"),
        ("title: x\ntitle: y\n", 2, "duplicate key 'title'"),
        ("title: x\nyears: []\n", 2, "at least 1 item"),
    ],
)
def test_a_malformed_file_is_refused(text: str, line: int | None, fragment: str) -> None:
    (problem,) = problems_of(text)
    assert problem.line == line
    assert fragment in problem.message


def test_a_calendar_must_be_named_as_a_policy_names_it() -> None:
    (problem,) = problems_of(CN_TEXT, name="CN-2026")
    assert "lower-case letters, digits or _" in problem.message


def test_the_calendar_error_is_reported_like_a_policy_error() -> None:
    with pytest.raises(PolicyFileError):
        parse_calendar("title: [", "cn", "cn.yaml")


def test_a_folder_is_refused_whole_naming_every_bad_file(tmp_path: Path) -> None:
    (tmp_path / "cn.yaml").write_text(CN_TEXT, encoding="utf-8")
    (tmp_path / "hk.yaml").write_text("title: Hong Kong\n", encoding="utf-8")
    (tmp_path / "mo.yaml").write_text(edit(MAKEUP_2025, "worked: [2025-01-27]"), encoding="utf-8")
    (tmp_path / "README.md").write_text("not a calendar", encoding="utf-8")
    (tmp_path / "old").mkdir()
    with pytest.raises(CalendarFileError) as caught:
        load_calendar_dir(tmp_path)
    sources = [Path(p.source).name for p in caught.value.problems]
    assert sources == ["hk.yaml", "mo.yaml"]
    assert str(caught.value.problems[1]).startswith(f"{tmp_path / 'mo.yaml'}:{line_of(CN_TEXT, MAKEUP_2025)}: ")


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CalendarFileError, match="1 problem"):
        load_calendar_dir(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"years": frozenset({2026}), "days_worked": {date(2026, 2, 16): "x"}}, "on weekdays: 2026-02-16"),
        (
            {"years": frozenset({2026}), "days_off": {date(2026, 2, 14): "x"}, "days_worked": {date(2026, 2, 14): "x"}},
            "both off and worked: 2026-02-14",
        ),
        ({"years": frozenset({2026}), "days_off": {date(2027, 1, 1): "x"}}, "not covered: 2027-01-01"),
    ],
)
def test_a_calendar_built_in_code_keeps_the_same_invariants(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        WorkingCalendar("test", **kwargs)  # type: ignore[arg-type]
