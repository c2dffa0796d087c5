"""The metric chart: pure SVG from a series and its levels. Positions follow the scales, text is
escaped, and the picture says in words what it shows."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest

from sandbox.web.chart import (
    BOTTOM,
    INSET,
    LEFT,
    MIN_TICK_GAP,
    NO_DATA,
    RIGHT,
    TOP,
    Level,
    Point,
    layout,
    nice_step,
    render_chart,
    tick_text,
    tick_unit,
    value_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
D = Decimal


def parse(markup: str) -> ET.Element:
    """The chart is well-formed XML (an SVG document on its own)."""
    return ET.fromstring(str(markup))


def points_of(root: ET.Element) -> list[tuple[float, float]]:
    return [(float(c.attrib["cx"]), float(c.attrib["cy"])) for c in root.iter(f"{SVG}circle")]


def levels_of(root: ET.Element) -> dict[str, float]:
    return {
        line.find(f"{SVG}title").text or "": float(line.attrib["y1"])  # type: ignore[union-attr]
        for line in root.iter(f"{SVG}line")
        if "level" in line.attrib.get("class", "")
    }


def test_points_land_where_the_scales_put_them() -> None:
    start = date(2026, 1, 31)
    series = [Point(start, D("0"), "2026-01"), Point(start + timedelta(days=100), D("10"), "2026-05")]
    root = parse(render_chart("exposure", series))
    # Values 0..10: ticks 0, 5, 10, the outer ones INSET pixels inside the frame.
    low, high = BOTTOM - INSET, TOP + INSET
    # Dates: 100 days plus a margin of 10 days each side across the plot's width.
    width = RIGHT - LEFT
    assert points_of(root) == [
        (pytest.approx(LEFT + 10 / 120 * width, abs=0.05), low),
        (pytest.approx(LEFT + 110 / 120 * width, abs=0.05), high),
    ]
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.attrib.get("dy") == "0.35em"]
    assert ticks == ["0", "5", "10"]
    dates = [t.text for t in root.iter(f"{SVG}text") if t.attrib.get("y") == str(BOTTOM + 16)]
    assert dates == ["2026-01-31", "2026-05-11"]
    frame = layout(series)
    assert frame is not None and frame.at(start, D("5")) == (pytest.approx(LEFT + 10 / 120 * width), (low + high) / 2)


def test_levels_are_drawn_at_their_value_and_widen_the_scale() -> None:
    series = [Point(date(2026, 1, 31), D("0"), "2026-01"), Point(date(2026, 2, 28), D("10"), "2026-02")]
    levels = [Level("warn at 7.5", D("7.5"), "warn"), Level("quota", D("20"), "quota")]
    root = parse(render_chart("m", series, levels))
    # The quota at 20 is above every value: the scale now runs 0..20 (step 5).
    low, high = BOTTOM - INSET, TOP + INSET
    drawn = levels_of(root)
    assert drawn["warn at 7.5: 7.5"] == pytest.approx(low + (high - low) * 7.5 / 20, abs=0.05)
    assert drawn["quota: 20"] == high
    assert points_of(root)[1][1] == pytest.approx(low + (high - low) * 10 / 20, abs=0.05)
    kinds = {line.attrib["class"] for line in root.iter(f"{SVG}line") if "level" in line.attrib.get("class", "")}
    assert kinds == {"level level-warn", "level level-quota"}


def test_labels_and_titles_are_escaped() -> None:
    hostile = "<script>alert('x')</script> & more"
    markup = render_chart(
        hostile,
        [Point(date(2026, 3, 31), D("1"), hostile)],
        [Level(hostile, D("2"), "trip", hostile)],
    )
    assert "<script" not in markup
    assert "&lt;script&gt;" in markup and "&amp; more" in markup
    root = parse(markup)  # still well-formed
    assert root.find(f"{SVG}title") is not None


def test_no_data_says_so() -> None:
    markup = render_chart("npl_ratio", [Point(date(2026, 3, 31), None, "2026-03")], [Level("x", D("1"), "trip")])
    root = parse(markup)
    assert NO_DATA in markup and "No filings yet" in markup
    assert points_of(root) == [] and not list(root.iter(f"{SVG}polyline"))
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "no filings yet" in (desc.text or "")
    assert layout([]) is None
    assert NO_DATA in render_chart("empty", [])


def test_one_point_is_centred_and_its_value_has_ticks_around_it() -> None:
    root = parse(render_chart("one", [Point(date(2026, 6, 30), D("5"), "2026-06")]))
    ((x, y),) = points_of(root)
    assert x == (LEFT + RIGHT) / 2
    assert TOP < y < BOTTOM
    assert value_ticks(D("5"), D("5"))[0] < 5 < value_ticks(D("5"), D("5"))[-1]
    assert value_ticks(D("0"), D("0")) == [D("-1"), D("-0.5"), D("0"), D("0.5"), D("1")]


def test_equal_and_negative_values_stay_inside_the_frame() -> None:
    days = [date(2026, m, 28) for m in range(1, 7)]
    for values in (["3"] * 6, ["-0.30", "-0.05", "-0.12", "0", "-0.3", "-0.2"]):
        series = [Point(d, D(v), d.isoformat()[:7]) for d, v in zip(days, values, strict=True)]
        root = parse(render_chart("m", series, [Level("floor", D("-0.15"), "warn")]))
        for x, y in points_of(root):
            assert LEFT < x < RIGHT and TOP <= y <= BOTTOM
    assert value_ticks(D("-0.30"), D("-0.05")) == [D("-0.3"), D("-0.2"), D("-0.1"), D("0")]


def test_unfiled_periods_break_the_line_and_tripped_periods_are_marked() -> None:
    series = [
        Point(date(2026, 1, 31), D("0.01"), "2026-01"),
        Point(date(2026, 2, 28), D("0.02"), "2026-02"),
        Point(date(2026, 3, 31), None, "2026-03"),
        Point(date(2026, 4, 30), D("0.035"), "2026-04", tripped=True),
        Point(date(2026, 5, 31), D("0.02"), "2026-05"),
    ]
    markup = render_chart("npl_ratio", series, [Level("npl-trip ≥ 0.03", D("0.03"), "trip", "npl-trip")])
    root = parse(markup)
    assert len(list(root.iter(f"{SVG}polyline"))) == 2
    tripped = [p for p in root.iter(f"{SVG}path") if p.attrib.get("class") == "point point-tripped"]
    assert len(tripped) == 1 and "breaker tripped" in (tripped[0].find(f"{SVG}title").text or "")  # type: ignore[union-attr]
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-labelledby"] == "chart-npl_ratio-title chart-npl_ratio-desc"
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.attrib["id"] == "chart-npl_ratio-desc"
    text = desc.text or ""
    assert "last value 0.02" in text and "npl-trip ≥ 0.03 (trip level) at 0.03" in text
    assert "A breaker tripped in: 2026-04." in text and "1 period without a value" in text
    # Beside the line: the short tag, not the whole label.
    assert ">npl-trip</text>" in markup


def test_the_same_input_gives_the_same_markup() -> None:
    series = [Point(date(2026, m, 1), D(m) / 7, f"2026-{m:02d}") for m in range(1, 13)]
    levels = [Level("a", D("1.2"), "trip"), Level("b", D("1.21"), "warn")]
    assert render_chart("m", series, levels) == render_chart("m", list(series), list(levels))
    # Twelve periods: at most six date labels, the first and the last among them, never crowded.
    root = parse(render_chart("m", series, levels))
    ticks = [t for t in root.iter(f"{SVG}text") if t.attrib.get("y") == str(BOTTOM + 16)]
    assert [t.text for t in ticks] == ["2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01", "2026-12-01"]
    xs = [float(t.attrib["x"]) for t in ticks]
    assert min(b - a for a, b in itertools.pairwise(xs)) >= MIN_TICK_GAP
    # Two close levels: their labels are moved apart so both can be read.
    labels = [float(t.attrib["y"]) for t in root.iter(f"{SVG}text") if t.attrib.get("x") == str(RIGHT + 6)]
    assert abs(labels[0] - labels[1]) >= 12


def test_crowded_dates_are_thinned_but_the_first_and_last_stay() -> None:
    # Ten months, then two close periods at the end (labels would overlap).
    days = [date(2026, m, 28) for m in range(1, 11)] + [date(2026, 10, 30)]
    root = parse(render_chart("m", [Point(d, D(i)) for i, d in enumerate(days)]))
    ticks = [t for t in root.iter(f"{SVG}text") if t.attrib.get("y") == str(BOTTOM + 16)]
    labels = [t.text for t in ticks]
    assert labels[0] == "2026-01-28" and labels[-1] == "2026-10-30" and "2026-10-28" not in labels
    xs = [float(t.attrib["x"]) for t in ticks]
    assert min(b - a for a, b in itertools.pairwise(xs)) >= MIN_TICK_GAP


def test_ticks_are_round_and_large_values_are_written_short() -> None:
    assert nice_step(D("2.1")) == D("1")
    assert nice_step(D("0.021")) == D("0.01")
    assert nice_step(D("7")) == D("2")
    ticks = value_ticks(D("3000000000"), D("5000000000"))
    assert ticks == [D("3E9"), D("3.5E9"), D("4E9"), D("4.5E9"), D("5E9")]
    unit = tick_unit(ticks)
    assert [tick_text(t, unit) for t in ticks] == ["3 bn", "3.5 bn", "4 bn", "4.5 bn", "5 bn"]
    assert value_ticks(D("0.012"), D("0.033")) == [D("0.01"), D("0.02"), D("0.03"), D("0.04")]
    assert tick_text(D("0.025"), tick_unit([D("0.02"), D("0.03")])) == "0.025"
    assert tick_unit([D("0"), D("250000")]) == (D(10) ** 4, "k")
