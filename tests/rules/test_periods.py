from __future__ import annotations

from datetime import date
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.rules.periods import Frequency, Period, PeriodError, expected_periods, parse_period, period_of


def refusal(text: str, frequency: Frequency) -> str:
    with pytest.raises(PeriodError) as caught:
        parse_period(text, frequency)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "frequency", "expected"),
    [
        ("2026-10", "monthly", Period("monthly", 2026, 10)),
        ("2026-01", "monthly", Period("monthly", 2026, 1)),
        ("2000-12", "monthly", Period("monthly", 2000, 12)),
        ("2100-01", "monthly", Period("monthly", 2100, 1)),
        ("2026-Q3", "quarterly", Period("quarterly", 2026, 3)),
        ("2026-Q1", "quarterly", Period("quarterly", 2026, 1)),
        ("2026-Q4", "quarterly", Period("quarterly", 2026, 4)),
    ],
)
def test_parse_period_reads_exact_labels(text: str, frequency: Frequency, expected: Period) -> None:
    period = parse_period(text, frequency)
    assert period == expected
    assert period.label == text == str(period)


@pytest.mark.parametrize(
    ("text", "frequency", "fragments"),
    [
        ("2026-13", "monthly", ["'2026-13'", "month 13 is not between 01 and 12"]),
        ("2026-00", "monthly", ["month 00 is not between 01 and 12"]),
        ("2026-1", "monthly", ["'2026-1' is not a monthly period", "YYYY-MM with a two-digit month"]),
        (" 2026-10", "monthly", ["' 2026-10'", "remove the spaces"]),
        ("2026-10 ", "monthly", ["remove the spaces"]),
        ("2026-10\n", "monthly", ["remove the spaces"]),
        ("2026-10-01", "monthly", ["that is a date, not a period", "YYYY-MM"]),
        ("２０２６-１０", "monthly", ["use the ASCII digits 0-9"]),
        ("2026/10", "monthly", ["is not a monthly period"]),
        ("202610", "monthly", ["is not a monthly period"]),
        ("1999-12", "monthly", ["year 1999 is outside 2000-2100"]),
        ("2101-01", "monthly", ["year 2101 is outside 2000-2100"]),
        ("", "monthly", ["'' is not a monthly period"]),
        ("2026-Q3", "monthly", ["is a quarter, but this program files monthly", "YYYY-MM"]),
        ("2026-q3", "monthly", ["is a quarter, but this program files monthly"]),
        ("2026-Q5", "quarterly", ["quarter 5 is not between 1 and 4"]),
        ("2026-Q0", "quarterly", ["quarter 0 is not between 1 and 4"]),
        ("2026-Q10", "quarterly", ["is not a quarterly period", "YYYY-Qn"]),
        ("2026-q3", "quarterly", ["write a capital Q"]),
        ("2026-3", "quarterly", ["is a month, but this program files quarterly", "YYYY-Qn"]),
        ("2026-10", "quarterly", ["is a month, but this program files quarterly"]),
        ("2026-Q٣", "quarterly", ["use the ASCII digits 0-9"]),
        ("2026Q3", "quarterly", ["is not a quarterly period"]),
        ("2026-Q3-01", "quarterly", ["is not a quarterly period"]),
    ],
)
def test_parse_period_refuses_anything_but_the_exact_label(
    text: str, frequency: Frequency, fragments: list[str]
) -> None:
    message = refusal(text, frequency)
    for fragment in fragments:
        assert fragment in message


def test_a_long_bad_label_is_cut_short_in_the_message() -> None:
    message = refusal("2026-" + "1" * 10_000, "monthly")
    assert len(message) < 200


def test_an_unknown_frequency_is_refused() -> None:
    with pytest.raises(PeriodError, match="unknown frequency 'weekly'"):
        parse_period("2026-10", "weekly")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frequency", "year", "number"),
    [("monthly", 2026, 0), ("monthly", 2026, 13), ("quarterly", 2026, 0), ("quarterly", 2026, 5)],
)
def test_a_period_cannot_be_built_out_of_range(frequency: Frequency, year: int, number: int) -> None:
    with pytest.raises(PeriodError, match="is not between 1 and"):
        Period(frequency, year, number)


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        (Period("monthly", 2026, 2), date(2026, 2, 1), date(2026, 2, 28)),
        (Period("monthly", 2028, 2), date(2028, 2, 1), date(2028, 2, 29)),
        (Period("monthly", 2026, 12), date(2026, 12, 1), date(2026, 12, 31)),
        (Period("quarterly", 2026, 1), date(2026, 1, 1), date(2026, 3, 31)),
        (Period("quarterly", 2026, 2), date(2026, 4, 1), date(2026, 6, 30)),
        (Period("quarterly", 2026, 3), date(2026, 7, 1), date(2026, 9, 30)),
        (Period("quarterly", 2026, 4), date(2026, 10, 1), date(2026, 12, 31)),
    ],
)
def test_period_start_and_end_are_its_first_and_last_days(period: Period, start: date, end: date) -> None:
    assert (period.start, period.end) == (start, end)
    assert period.contains(start) and period.contains(end)


@pytest.mark.parametrize(
    ("period", "previous", "following"),
    [
        (Period("monthly", 2026, 1), Period("monthly", 2025, 12), Period("monthly", 2026, 2)),
        (Period("monthly", 2026, 12), Period("monthly", 2026, 11), Period("monthly", 2027, 1)),
        (Period("quarterly", 2026, 1), Period("quarterly", 2025, 4), Period("quarterly", 2026, 2)),
        (Period("quarterly", 2026, 4), Period("quarterly", 2026, 3), Period("quarterly", 2027, 1)),
    ],
)
def test_next_and_previous_cross_year_ends(period: Period, previous: Period, following: Period) -> None:
    assert period.previous() == previous
    assert period.next() == following
    assert following.ordinal - period.ordinal == 1 == period.ordinal - previous.ordinal


def test_periods_of_one_frequency_order_by_time() -> None:
    labels = ["2025-12", "2026-01", "2026-02", "2026-10", "2027-01"]
    periods = [parse_period(label, "monthly") for label in labels]
    assert sorted(reversed(periods)) == periods


@pytest.mark.parametrize(
    ("day", "frequency", "label"),
    [
        (date(2026, 1, 1), "monthly", "2026-01"),
        (date(2026, 10, 31), "monthly", "2026-10"),
        (date(2026, 3, 31), "quarterly", "2026-Q1"),
        (date(2026, 4, 1), "quarterly", "2026-Q2"),
        (date(2026, 9, 30), "quarterly", "2026-Q3"),
        (date(2026, 12, 31), "quarterly", "2026-Q4"),
    ],
)
def test_period_of_a_day(day: date, frequency: Frequency, label: str) -> None:
    assert period_of(day, frequency).label == label


@pytest.mark.parametrize(
    ("start_on", "end_on", "frequency", "labels"),
    [
        (date(2025, 11, 15), date(2026, 2, 3), "monthly", ["2025-11", "2025-12", "2026-01", "2026-02"]),
        (date(2026, 1, 1), date(2026, 1, 31), "monthly", ["2026-01"]),
        (date(2026, 1, 31), date(2026, 2, 1), "monthly", ["2026-01", "2026-02"]),
        (date(2026, 5, 5), date(2026, 5, 5), "monthly", ["2026-05"]),
        (date(2025, 11, 15), date(2026, 7, 1), "quarterly", ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"]),
        (date(2026, 1, 1), date(2026, 3, 31), "quarterly", ["2026-Q1"]),
    ],
)
def test_expected_periods_are_every_period_overlapping_the_pilot(
    start_on: date, end_on: date, frequency: Frequency, labels: list[str]
) -> None:
    assert [p.label for p in expected_periods(start_on, end_on, frequency)] == labels


def test_expected_periods_refuses_an_end_before_the_start() -> None:
    with pytest.raises(PeriodError, match="before the start"):
        expected_periods(date(2026, 2, 1), date(2026, 1, 31), "monthly")


frequencies = st.sampled_from(["monthly", "quarterly"])
days = st.dates(date(2000, 1, 1), date(2100, 12, 31))
pilot_days = st.dates(date(2020, 1, 1), date(2035, 12, 31))


@given(days, frequencies)
def test_every_day_lies_in_its_period_and_the_label_reads_back(day: date, frequency: Frequency) -> None:
    period = period_of(day, frequency)
    assert period.contains(day)
    assert parse_period(period.label, frequency) == period
    assert Period.from_ordinal(frequency, period.ordinal) == period


@given(pilot_days, pilot_days, frequencies)
def test_expected_periods_are_consecutive_and_cover_both_ends(a: date, b: date, frequency: Frequency) -> None:
    start_on, end_on = min(a, b), max(a, b)
    periods = expected_periods(start_on, end_on, frequency)
    assert periods[0].contains(start_on) and periods[-1].contains(end_on)
    for earlier, later in pairwise(periods):
        assert later == earlier.next()
        assert (later.start - earlier.end).days == 1, "no gap, no overlap"
