"""A metric's history as an inline SVG line chart, drawn on the server (pure: no database, no
network, no JavaScript).

The chart is a picture *and* a text: it carries ``role="img"`` with a ``<title>`` and a ``<desc>``
that say what it shows (the metric, the last value, the levels drawn), and the page puts a text
legend and a data table with the same numbers beside it, so nothing depends on seeing it.

Values stay ``Decimal`` until the last step: ticks are chosen and labelled in exact decimal
arithmetic, and only pixel positions are floats, written with one decimal place, so the same
input always gives the same markup. Every piece of text is escaped (``markupsafe``): rule ids,
labels and titles come from policy files and filings, and a label is never markup.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 240
LEFT = 72  # room for the value ticks
RIGHT = WIDTH - 150  # room for the level labels to the right of the plot
TOP = 14
BOTTOM = HEIGHT - 34  # room for the date ticks
INSET = 8  # pixels between the frame and the outermost value ticks
MAX_DATE_TICKS = 6
MIN_TICK_GAP = 70.0  # pixels between two date labels (a date is about 60 pixels wide)
LABEL_CHARS = 22  # a level's label beside the plot is cut to this; the legend has it whole
LABEL_GAP = 12.0  # minimum vertical distance between two level labels, in pixels
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"

LineKind = Literal["warn", "trip", "quota"]

# Kinds differ by dash pattern and weight, not by colour alone.
_LINE_STYLE: dict[str, tuple[str, str, str]] = {
    # kind: (colour, dash pattern, width)
    "warn": ("#9a6700", "6 4", "1.5"),
    "trip": ("#a40e26", "", "2"),
    "quota": ("#0b5cad", "2 3", "2"),
}
KIND_WORDS: dict[str, str] = {"warn": "warning level", "trip": "trip level", "quota": "quota"}
SERIES_COLOUR = "#1b1f24"
TRIPPED_COLOUR = "#a40e26"
NO_DATA = "No filings yet"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Point:
    """One period: its end date, the latest value filed for it (None: not filed), and whether a
    breaker tripped on it."""

    on: date
    value: Decimal | None
    label: str = ""  # the period, e.g. "2026-03"; the date is used when empty
    tripped: bool = False


@dataclass(frozen=True)
class Level:
    """A horizontal line: a rule's warning or trip level, or a quota."""

    label: str
    value: Decimal
    kind: LineKind
    tag: str = ""  # the short name written beside the line (default: the label, shortened)


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        if self.high == self.low:
            return (self.start + self.end) / 2
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def _px(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _plain(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def nice_step(span: Decimal, target: int = 4) -> Decimal:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``target`` intervals."""
    if span <= 0:
        return Decimal(1)
    raw = span / target
    exponent = raw.adjusted()
    magnitude = Decimal(1).scaleb(exponent)
    for factor in (1, 2, 5):
        step = magnitude * factor
        if step >= raw:
            return step
    return magnitude * 10


def value_ticks(low: Decimal, high: Decimal) -> list[Decimal]:
    """Round tick values whose range covers ``low`` .. ``high`` (which may be equal)."""
    if low == high:
        pad = abs(low) / 10 if low != 0 else Decimal(1)
        low, high = low - pad, high + pad
    step = nice_step(high - low)
    first = (low / step).to_integral_value(rounding=ROUND_FLOOR) * step
    last = (high / step).to_integral_value(rounding=ROUND_CEILING) * step
    count = int((last - first) / step)
    return [first + step * i for i in range(count + 1)]


_SUFFIXES = ((Decimal(10) ** 12, "tn"), (Decimal(10) ** 9, "bn"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 4, "k"))


def tick_unit(ticks: Sequence[Decimal]) -> tuple[Decimal, str]:
    """How the value ticks are written: large values in thousands (k, from 10 000), millions (M),
    billions (bn) or trillions (tn), so a label stays short; (1, "") otherwise."""
    largest = max((abs(t) for t in ticks), default=Decimal(0))
    for size, suffix in _SUFFIXES:
        if largest >= size:
            return size, suffix
    return Decimal(1), ""


def tick_text(value: Decimal, unit: tuple[Decimal, str] = (Decimal(1), "")) -> str:
    """A tick label, exact: ``2500000000`` in billions is ``2.5 bn``."""
    size, suffix = unit
    return _plain(value / size) + (f" {suffix}" if suffix else "")


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _date_ticks(points: Sequence[Point], x: _Scale) -> list[Point]:
    """The periods to label on the date axis: the first and the last, and between them as many as
    fit without two labels closer than MIN_TICK_GAP pixels (at most MAX_DATE_TICKS)."""
    if len(points) <= 1:
        return list(points)
    step = max(1, -(-(len(points) - 1) // (MAX_DATE_TICKS - 1)))
    while True:
        chosen = [points[i] for i in range(0, len(points), step)]
        if chosen[-1] is not points[-1]:
            chosen.append(points[-1])
        xs = [x(float(p.on.toordinal())) for p in chosen]
        gaps = [b - a for a, b in itertools.pairwise(xs)]
        if len(chosen) <= 2 or min(gaps) >= MIN_TICK_GAP:
            break
        if gaps[-1] < MIN_TICK_GAP and min(gaps[:-1], default=MIN_TICK_GAP) >= MIN_TICK_GAP:
            # Only the last label is crowded: drop the one before it.
            chosen.pop(-2)
            break
        step += 1
    if len(chosen) == 2 and x(float(chosen[1].on.toordinal())) - x(float(chosen[0].on.toordinal())) < MIN_TICK_GAP:
        return [chosen[-1]]
    return chosen


def _spread(positions: list[float], gap: float, low: float, high: float) -> list[float]:
    """Move label positions apart (keeping their order) so no two are closer than ``gap``."""
    if not positions:
        return []
    order = sorted(range(len(positions)), key=lambda i: (positions[i], i))
    placed = [positions[i] for i in order]
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - high
    if overflow > 0:
        placed = [p - overflow for p in placed]
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
    placed = [max(p, low) for p in placed]
    result = [0.0] * len(positions)
    for slot, index in enumerate(order):
        result[index] = placed[slot]
    return result


@dataclass(frozen=True)
class Layout:
    x: _Scale  # date ordinal -> pixel
    y: _Scale  # value -> pixel
    ticks: list[Decimal]

    def at(self, on: date, value: Decimal) -> tuple[float, float]:
        """Where a value of a date lands, in the chart's coordinates."""
        return self.x(float(on.toordinal())), self.y(float(value))


def layout(points: Sequence[Point], levels: Sequence[Level] = ()) -> Layout | None:
    """The scales of a chart: every filed point and every level inside, with a margin on both
    axes; None when no period has a value."""
    filed = [p.value for p in points if p.value is not None]
    if not filed:
        return None
    values = [*filed, *(level.value for level in levels)]
    ticks = value_ticks(min(values), max(values))
    # The outer ticks sit a little inside the frame, so a point on one is never cut by the edge.
    y = _Scale(float(ticks[0]), float(ticks[-1]), float(BOTTOM - INSET), float(TOP + INSET))
    days = sorted(p.on.toordinal() for p in points)
    span = days[-1] - days[0]
    pad = max(span * 0.05, 10.0) if span else 30.0
    x = _Scale(days[0] - pad, days[-1] + pad, float(LEFT), float(RIGHT))
    return Layout(x, y, ticks)


def describe(name: str, points: Sequence[Point], levels: Sequence[Level], unit: str = "") -> str:
    """The chart in one paragraph: what a screen reader reads as its description."""
    filed = [p for p in points if p.value is not None]
    suffix = f" {unit}" if unit else ""
    if not filed:
        parts = [f"{name}: no filings yet."]
    else:
        first, last = filed[0], filed[-1]
        parts = [
            f"{name}: {len(filed)} filed period{'s' if len(filed) != 1 else ''} from "
            f"{first.label or first.on.isoformat()} to {last.label or last.on.isoformat()}; "
            f"last value {_plain(last.value) if last.value is not None else ''}{suffix} "
            f"for {last.label or last.on.isoformat()} (ending {last.on.isoformat()})."
        ]
        lowest = min(filed, key=lambda p: (p.value, p.on))
        highest = max(filed, key=lambda p: (p.value, p.on))
        if len(filed) > 1:
            parts.append(
                f"Lowest {_plain(lowest.value) if lowest.value is not None else ''} ({lowest.label or lowest.on.isoformat()}), "
                f"highest {_plain(highest.value) if highest.value is not None else ''} ({highest.label or highest.on.isoformat()})."
            )
        unfiled = len(points) - len(filed)
        if unfiled:
            parts.append(f"{unfiled} period{'s' if unfiled != 1 else ''} without a value.")
    if levels:
        parts.append(
            "Lines: "
            + "; ".join(f"{level.label} ({KIND_WORDS[level.kind]}) at {_plain(level.value)}" for level in levels)
            + "."
        )
    else:
        parts.append("No threshold lines.")
    tripped = [p.label or p.on.isoformat() for p in points if p.tripped]
    if tripped:
        parts.append("A breaker tripped in: " + ", ".join(tripped) + ".")
    return " ".join(parts)


def chart_id(name: str) -> str:
    """An id fragment for the chart's title and description, from the metric name."""
    return "chart-" + (_ID_UNSAFE.sub("-", name).strip("-") or "metric")


def render_chart(
    name: str,
    points: Sequence[Point],
    levels: Sequence[Level] = (),
    *,
    unit: str = "",
    ident: str | None = None,
) -> Markup:
    """The SVG of one metric: its values by period end date joined by a line (broken where a
    period has no value), periods where a breaker tripped drawn as larger diamonds, and each level
    as a horizontal line labelled at the right. With no value at all: a frame saying so."""
    ident = ident or chart_id(name)
    points = sorted(points, key=lambda p: p.on)
    filed = [p for p in points if p.value is not None]
    title = f"{name}: history of filed values" + (f" ({unit})" if unit else "")
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="{FONT}" font-size="11">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(describe(name, points, levels, unit))}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" fill="#ffffff" stroke="#d0d7de"/>',
    ]
    if not filed:
        out.append(
            f'<text x="{_px((LEFT + RIGHT) / 2)}" y="{_px((TOP + BOTTOM) / 2)}" text-anchor="middle" '
            f'font-size="14" fill="#57606a">{escape(NO_DATA)}</text>'
        )
        out.append("</svg>")
        return Markup("\n".join(out))

    frame = layout(points, levels)
    assert frame is not None
    x, y, ticks = frame.x, frame.y, frame.ticks
    unit_of_ticks = tick_unit(ticks)

    out.append('<g class="value-axis" fill="#57606a" text-anchor="end">')
    for tick in ticks:
        ty = _px(y(float(tick)))
        out.append(f'<line x1="{LEFT}" x2="{RIGHT}" y1="{ty}" y2="{ty}" stroke="#eaeef2"/>')
        out.append(f'<text x="{LEFT - 6}" y="{ty}" dy="0.35em">{escape(tick_text(tick, unit_of_ticks))}</text>')
    out.append("</g>")

    out.append('<g class="date-axis" fill="#57606a" text-anchor="middle">')
    for point in _date_ticks(points, x):
        tx = _px(x(float(point.on.toordinal())))
        out.append(f'<line x1="{tx}" x2="{tx}" y1="{BOTTOM}" y2="{BOTTOM + 4}" stroke="#57606a"/>')
        out.append(f'<text x="{tx}" y="{BOTTOM + 16}">{escape(point.on.isoformat())}</text>')
    out.append("</g>")

    if levels:
        out.append('<g class="levels">')
        raw = [y(float(level.value)) for level in levels]
        placed = _spread(raw, LABEL_GAP, float(TOP), float(BOTTOM))
        for level, ly, label_y in zip(levels, raw, placed, strict=True):
            colour, dash, width = _LINE_STYLE[level.kind]
            dashes = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<line class="level level-{level.kind}" x1="{LEFT}" x2="{RIGHT}" y1="{_px(ly)}" y2="{_px(ly)}" '
                f'stroke="{colour}" stroke-width="{width}"{dashes}><title>{escape(level.label)}: '
                f"{escape(_plain(level.value))}</title></line>"
            )
            out.append(
                f'<text x="{RIGHT + 6}" y="{_px(label_y)}" dy="0.35em" fill="{colour}">'
                f"{escape(_short(level.tag or level.label))}</text>"
            )
        out.append("</g>")

    # The series: one polyline per run of consecutive filed periods.
    runs: list[list[Point]] = [[]]
    for point in points:
        if point.value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    out.append(f'<g class="series" fill="none" stroke="{SERIES_COLOUR}" stroke-width="2">')
    for run in runs:
        if len(run) > 1:
            coords = " ".join(
                f"{_px(x(float(p.on.toordinal())))},{_px(y(float(p.value)))}" for p in run if p.value is not None
            )
            out.append(f'<polyline points="{coords}"/>')
    out.append("</g>")

    out.append('<g class="points">')
    for point in filed:
        assert point.value is not None
        px, py = x(float(point.on.toordinal())), y(float(point.value))
        what = f"{point.label or point.on.isoformat()} (ending {point.on.isoformat()}): {_plain(point.value)}"
        if point.tripped:
            size = 6.0
            shape = (
                f'<path class="point point-tripped" d="M{_px(px)} {_px(py - size)} L{_px(px + size)} {_px(py)} '
                f'L{_px(px)} {_px(py + size)} L{_px(px - size)} {_px(py)} Z" fill="{TRIPPED_COLOUR}" '
                f'stroke="#ffffff" stroke-width="1">'
            )
            out.append(f"{shape}<title>{escape(what)}, breaker tripped</title></path>")
        else:
            out.append(
                f'<circle class="point" cx="{_px(px)}" cy="{_px(py)}" r="3.5" fill="{SERIES_COLOUR}">'
                f"<title>{escape(what)}</title></circle>"
            )
    out.append("</g>")
    out.append("</svg>")
    return Markup("\n".join(out))


__all__ = [
    "BOTTOM",
    "HEIGHT",
    "INSET",
    "KIND_WORDS",
    "LEFT",
    "MIN_TICK_GAP",
    "NO_DATA",
    "RIGHT",
    "TOP",
    "WIDTH",
    "Layout",
    "Level",
    "LineKind",
    "Point",
    "chart_id",
    "describe",
    "layout",
    "nice_step",
    "render_chart",
    "tick_text",
    "tick_unit",
    "value_ticks",
]
