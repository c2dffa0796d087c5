"""Batch evaluation of a compiled expression over many pilots and periods at once (bulk uploads,
backtests, replays), in numpy, agreeing exactly with ``evaluate_scalar`` on every row.

How floats are made to agree with exact decimals. Every number is carried as a float64 with a
bound on its distance from the exact value: a decimal's nearest float is off by at most half an
ulp; each +, -, *, / propagates its operands' bounds and adds one rounding; window sums
accumulate theirs. A comparison is decided in floats only where its two sides are further apart
than four times their combined bound, which no rounding can cross, or where both floats are the
exact values (a zero as filed against a literal whose float is exact, such as 0). The rows too
close to call (ties such as 0.03 against 0.03, or 0.1 + 0.2 against 0.3) are decided on exact
decimals, computed for those rows only by the scalar evaluator's own arithmetic
(``arithmetic_value``, ``pct_change_value``, ``window_value``). A row whose divisor might be zero
(its interval holds 0 although it is not a zero read as filed) is re-decided whole by
``evaluate_scalar`` on ``panel.scalar_context(row)``. Missing values and zero divisors are exact
(NaN stands for a missing decimal, and the float of a nonzero decimal is nonzero), so statuses
never depend on rounding. Only rows near a threshold leave the float path, and no row is ever
decided on a float that could be wrong.

Panels come from histories of exact values (``panel_from_histories``) or from long-format
tables of decimal text (``panel_from_long``), whose floats are parsed from the text and whose
decimals are parsed only for the rows the evaluator decides on them."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

from sandbox.rules.expr import (
    MISSING,
    Arithmetic,
    Boolean,
    Compare,
    Expression,
    Input,
    Logic,
    Negate,
    Node,
    Not,
    Number,
    ScalarContext,
    Value,
    Window,
    arithmetic_value,
    compare_decimals,
    evaluate_scalar,
    pct_change_value,
    walk,
    window_value,
)

STATUS_FALSE, STATUS_TRUE, STATUS_MISSING, STATUS_ERROR = 0, 1, 2, 3
STATUS_VALUE = 4  # a number expression that has a value
STATUS_CODES = {"false": 0, "true": 1, "missing": 2, "error": 3, "value": 4}
# How much closer than their combined error bound two sides must not be for the float decision
# to stand; covers the rounding of the bound arithmetic itself with a wide margin.
SAFETY = 4.0
BLOCK = 16384  # rows per elementwise pass: 128 KiB float temporaries

Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]


def decimal_floats(values: Sequence[Decimal | None]) -> Floats:
    """The float column of exact values: each the nearest float (``float(Decimal)`` rounds
    correctly), NaN where missing. Build ``Panel`` arrays with it: the batch evaluator relies on
    a float being 0 only for a zero decimal, which holds for every value of the number grammar
    (exponents within +-30) and is checked here."""
    floats = np.fromiter((math.nan if v is None else float(v) for v in values), dtype=np.float64, count=len(values))
    zeros = np.flatnonzero(floats == 0).tolist()
    if not np.isfinite(floats[~np.isnan(floats)]).all() or any(values[i] != 0 for i in zeros):
        raise ValueError("a value is outside the range of float64 (its float is 0 or infinite)")
    return floats


@dataclass(frozen=True)
class _Layout:
    start: npt.NDArray[np.intp]  # per row: the first row of its pilot
    pos: npt.NDArray[np.intp]  # per row: its index within its pilot (0 = first expected period)
    group: npt.NDArray[np.intp]  # per row: its pilot's number (0, 1, ... in row order)
    by_pos: list[npt.NDArray[np.intp]]  # by_pos[k]: the rows at position k, in row order


@dataclass
class Panel:
    """One row per expected (pilot, period); the rows of a pilot are contiguous and in period
    order. Float arrays hold the nearest float of each exact value (NaN: missing) and the
    ``*_exact`` sequences the same values exactly (None: missing); the two must describe the same
    data, as ``decimal_floats`` (from decimals) and ``text_floats`` (from decimal text) make them."""

    pilot: np.ndarray
    metrics: dict[str, Floats]
    exact: dict[str, Sequence[Decimal | None]]
    quotas: dict[str, Floats]
    quotas_exact: dict[str, Sequence[Decimal | None]]
    institution: dict[str, Floats]
    institution_exact: dict[str, Sequence[Decimal | None]]
    days_late: Floats
    days_late_exact: Sequence[Decimal | None]
    filed: Flags

    def __post_init__(self) -> None:
        n = len(self.pilot)
        for label, floats, exact in (
            ("metrics", self.metrics, self.exact),
            ("quotas", self.quotas, self.quotas_exact),
            ("institution", self.institution, self.institution_exact),
        ):
            if set(floats) != set(exact):
                raise ValueError(f"{label}: the float and exact columns differ: {sorted(set(floats) ^ set(exact))}")
            for name in floats:
                if len(floats[name]) != n or len(exact[name]) != n:
                    raise ValueError(f"{label}.{name}: every column needs one value per row ({n})")
        if len(self.days_late) != n or len(self.days_late_exact) != n or len(self.filed) != n:
            raise ValueError(f"days_late and filed need one value per row ({n})")

    def __len__(self) -> int:
        return len(self.pilot)

    @cached_property
    def layout(self) -> _Layout:
        n = len(self.pilot)
        if n == 0:
            empty = np.zeros(0, dtype=np.intp)
            return _Layout(empty, empty, empty, [])
        pilots = np.asarray(self.pilot)
        first = np.ones(n, dtype=bool)
        first[1:] = pilots[1:] != pilots[:-1]
        starts = np.flatnonzero(first)
        if len(set(pilots[starts].tolist())) != len(starts):
            raise ValueError("the rows of each pilot must be contiguous")
        group = (np.cumsum(first) - 1).astype(np.intp)
        start = starts[group].astype(np.intp)
        pos = np.arange(n, dtype=np.intp) - start
        order = np.argsort(pos, kind="stable")
        counts = np.bincount(pos)
        by_pos = np.split(order, np.cumsum(counts)[:-1])
        return _Layout(start, pos, group, by_pos)

    def scalar_context(self, row: int, *, periods: int | None = None) -> ScalarContext:
        """The exact context of one row. ``periods`` keeps only that many most recent periods
        (an expression's ``lookback``: it reads no further back, so its result is the same)."""
        row = int(row)
        first = int(self.layout.start[row])
        if periods is not None:
            first = max(first, row - periods + 1)
        history = [_PeriodMetrics(self.exact, i) for i in range(first, row + 1)]
        quotas = {name: col[row] for name, col in self.quotas_exact.items() if col[row] is not None}
        institution = {name: col[row] for name, col in self.institution_exact.items()}
        return ScalarContext(
            history=history,
            quotas=quotas,  # type: ignore[arg-type]  # None values were left out above
            institution=institution,
            days_late=self.days_late_exact[row],
            filed=bool(self.filed[row]),
        )


class _PeriodMetrics(Mapping[str, Decimal]):
    """One period's metrics as a mapping, read from the panel's exact columns on demand."""

    __slots__ = ("_columns", "_row")

    def __init__(self, columns: Mapping[str, Sequence[Decimal | None]], row: int) -> None:
        self._columns = columns
        self._row = row

    def __getitem__(self, name: str) -> Decimal:
        column = self._columns.get(name)
        value = None if column is None else column[self._row]
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name, column in self._columns.items() if column[self._row] is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


# -- building panels -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodInputs:
    """What one expected period of a pilot holds: its filed metrics (empty when nothing was
    filed), the pilot's quotas, the institution's fields and the filing facts, as of that period."""

    metrics: Mapping[str, Decimal] = field(default_factory=dict)
    quotas: Mapping[str, Decimal] = field(default_factory=dict)
    institution: Mapping[str, Decimal | None] = field(default_factory=dict)
    days_late: Decimal | None = None
    filed: bool = True


@dataclass(frozen=True)
class PilotHistory:
    """A pilot's expected periods, oldest first; ``pilot`` is any hashable key (an id, a code)."""

    pilot: Hashable
    periods: Sequence[PeriodInputs]


def panel_from_histories(histories: Sequence[PilotHistory]) -> Panel:
    rows = [(history.pilot, period) for history in histories for period in history.periods]
    metric_names = sorted({name for _, period in rows for name in period.metrics})
    quota_names = sorted({name for _, period in rows for name in period.quotas})
    institution_names = sorted({name for _, period in rows for name in period.institution})
    exact = {name: [period.metrics.get(name) for _, period in rows] for name in metric_names}
    quotas_exact = {name: [period.quotas.get(name) for _, period in rows] for name in quota_names}
    institution_exact = {name: [period.institution.get(name) for _, period in rows] for name in institution_names}
    days_late_exact = [period.days_late for _, period in rows]
    pilot = np.empty(len(rows), dtype=object)
    pilot[:] = [key for key, _ in rows]
    return Panel(
        pilot=pilot,
        metrics={name: decimal_floats(col) for name, col in exact.items()},
        exact=exact,  # type: ignore[arg-type]  # list is invariant; these are read-only columns
        quotas={name: decimal_floats(col) for name, col in quotas_exact.items()},
        quotas_exact=quotas_exact,  # type: ignore[arg-type]
        institution={name: decimal_floats(col) for name, col in institution_exact.items()},
        institution_exact=institution_exact,  # type: ignore[arg-type]
        days_late=decimal_floats(days_late_exact),
        days_late_exact=days_late_exact,
        filed=np.array([period.filed for _, period in rows], dtype=bool),
    )


# -- long-format data ------------------------------------------------------------------------------


class DecimalText(Sequence[Decimal | None]):
    """An exact column read from the values as given, on demand: row ``i`` is
    ``Decimal(values[where[i]])``, None where ``where[i]`` is negative. The batch evaluator asks
    for exact values only on the rows it decides on decimals (close calls, a few per thousand), so
    building a panel never parses a ``Decimal`` for the others."""

    __slots__ = ("_values", "_where")

    def __init__(self, values: npt.NDArray[Any], where: npt.NDArray[np.intp]) -> None:
        self._values = values
        self._where = where

    def __len__(self) -> int:
        return len(self._where)

    @overload
    def __getitem__(self, index: int) -> Decimal | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[Decimal | None]: ...
    def __getitem__(self, index: int | slice) -> Decimal | list[Decimal | None] | None:
        if isinstance(index, slice):
            return [None if i < 0 else Decimal(self._values[i]) for i in self._where[index].tolist()]
        i = int(self._where[index])
        return None if i < 0 else Decimal(self._values[i])

    def take(self, rows: npt.NDArray[np.intp]) -> list[Decimal | None]:
        """The values at many rows, with one gather instead of a lookup per row."""
        where = self._where[rows]
        values = self._values[np.maximum(where, 0)] if len(self._values) else np.full(len(where), None)
        return [None if i < 0 else Decimal(x) for i, x in zip(where.tolist(), values.tolist(), strict=True)]


def text_floats(values: npt.NDArray[Any], label: str = "values") -> tuple[Floats, npt.NDArray[Any]]:
    """The nearest float of each value (NaN where there is none: None, NaN, pd.NA) and the values
    as objects ``Decimal()`` reads exactly. Values are decimal text, ``Decimal`` or int.

    Every parser used here rounds correctly, so each float is the one ``float(Decimal(text))``
    gives (tests/rules/test_vector.py checks it on strings chosen to trip parsers up): a long
    column of plain ASCII text goes through pandas' C reader (``_csv_floats``), anything else
    through numpy, which hands each object to Python's ``float``. Refused, as ``decimal_floats``
    refuses them: text that is not a number, infinities and NaNs written as values, and a nonzero
    value whose float is 0."""
    kind = values.dtype.kind
    if kind in "iub":
        return values.astype(np.float64), values.astype(object)
    if kind != "O":
        raise ValueError(f"{label}: give values as decimal text, Decimal or int, not {values.dtype}")
    floats = _csv_floats(values)
    if floats is None:
        try:
            floats = values.astype(np.float64)
        except (TypeError, ValueError):
            floats = _floats_one_by_one(values, label)
    for i in np.flatnonzero(np.isnan(floats)).tolist():
        if not _absent(values[i]):
            raise ValueError(f"{label}: {values[i]!r} is not a finite decimal number")
    infinite = np.flatnonzero(np.isinf(floats))
    if len(infinite):
        raise ValueError(f"{label}: {values[infinite[0]]!r} is outside the range of float64")
    # A float is 0 only for a zero decimal: the evaluator counts on it (see decimal_floats).
    for text in pd.unique(values[floats == 0]).tolist():
        if Decimal(text) != 0:
            raise ValueError(f"{label}: {text!r} is outside the range of float64 (its float is 0)")
    return floats, values


# pandas 3.1 reads every float with fast_float, which rounds correctly; before 3.1 only its
# "round_trip" converter (Python's own) did.
_PANDAS = tuple(int(part) for part in re.findall(r"\d+", pd.__version__)[:2])
_CSV_OPTIONS: dict[str, Any] = {} if _PANDAS >= (3, 1) else {"float_precision": "round_trip"}
_CSV_SMALLEST = 4096  # below this, numpy's loop is as quick


def _csv_floats(values: npt.NDArray[Any]) -> Floats | None:
    """The floats of a column of text, one value per line through pandas' C reader: about twice
    as fast as a ``float()`` call per object. None when the column is short or is not plain
    ASCII text with one value per line, and whenever the reader refuses a value: numpy's loop
    then decides (and names the value it cannot read)."""
    if len(values) < _CSV_SMALLEST:
        return None
    try:
        text = "\n".join(values.tolist())
    except TypeError:  # not all text: None, NaN, Decimal or int among the values
        return None
    # Non-ASCII text (a byte-order mark, other digits or spaces) is for Python's own parser; the
    # separator and "\r" must not occur inside a value, or the lines would not be the values.
    if not text.isascii() or "\r" in text or "\x1f" in text:
        return None
    try:
        frame = pd.read_csv(
            io.BytesIO(text.encode("ascii")),
            sep="\x1f",
            header=None,
            names=["value"],
            index_col=False,
            dtype={"value": np.float64},
            quoting=csv.QUOTE_NONE,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            **_CSV_OPTIONS,
        )
    except (ValueError, pd.errors.ParserError):
        return None
    floats: Floats = frame["value"].to_numpy(dtype=np.float64)
    return floats if len(floats) == len(values) else None


def _floats_one_by_one(values: npt.NDArray[Any], label: str) -> Floats:
    floats = np.full(len(values), math.nan)
    for i in np.flatnonzero(~pd.isna(values)).tolist():
        try:
            floats[i] = float(values[i])
        except (TypeError, ValueError):
            raise ValueError(f"{label}: {values[i]!r} is not a decimal number") from None
    return floats


def _absent(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


class _Rows:
    """The panel rows of (pilot, period) keys: one row per expected pair."""

    def __init__(self, expected: pd.DataFrame | pd.MultiIndex, pilot: str, period: str) -> None:
        if isinstance(expected, pd.MultiIndex):
            if pilot not in expected.names or period not in expected.names:
                raise ValueError(f"expected: the index needs levels named {pilot!r} and {period!r}")
            at_pilot, at_period = expected.names.index(pilot), expected.names.index(period)
            pilot_codes, pilots = np.asarray(expected.codes[at_pilot]), expected.levels[at_pilot]
            period_codes, periods = np.asarray(expected.codes[at_period]), expected.levels[at_period]
            self.pilot_keys: npt.NDArray[Any] = expected.get_level_values(at_pilot).to_numpy()
        else:
            pilot_codes, pilots = pd.factorize(expected[pilot])
            period_codes, periods = pd.factorize(expected[period])
            self.pilot_keys = expected[pilot].to_numpy()
        if (pilot_codes < 0).any() or (period_codes < 0).any():
            raise ValueError("expected: every row needs a pilot and a period")
        self.n = len(pilot_codes)
        if self.n:
            first = np.flatnonzero(np.diff(pilot_codes)) + 1
            starts = pilot_codes[np.concatenate([[0], first])]
            if len(np.unique(starts)) != len(starts):
                raise ValueError("expected: the rows of each pilot must be contiguous")
        self.pilots = pd.Index(pilots)
        self.periods = pd.Index(periods)
        self.pilot_code = pilot_codes.astype(np.intp)
        keys = pilot_codes.astype(np.int64) * len(periods) + period_codes
        size = len(pilots) * len(periods)
        # A dense table when pilots share most periods; a hash index when they are far apart.
        self.table: npt.NDArray[np.intp] | None = None
        self.index: pd.Index | None = None
        if size <= 4 * self.n + 2**20:
            self.table = np.full(size, -1, dtype=np.intp)
            self.table[keys] = np.arange(self.n)
            unique = np.count_nonzero(self.table >= 0) == self.n
        else:
            self.index = pd.Index(keys)
            unique = self.index.is_unique
        if not unique:
            raise ValueError("expected: a (pilot, period) pair is listed twice")

    def find(self, pilots: npt.NDArray[Any], periods: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
        """Each key's row; -1 where the pair is not expected."""
        m = len(pilots)
        if m > 64:
            # Long data lists a filing's values together: look up each run of one (pilot, period)
            # once, not each of its rows (hashing Python strings is most of the cost).
            change = np.empty(m, dtype=bool)
            change[0] = True
            try:
                np.not_equal(pilots[1:], pilots[:-1], out=change[1:])
                change[1:] |= periods[1:] != periods[:-1]
            except TypeError:  # pd.NA among the keys has no truth value: look each row up
                change[:] = True
            heads = np.flatnonzero(change)
            if len(heads) * 2 <= m:
                run = np.cumsum(change) - 1
                found: npt.NDArray[np.intp] = self._find(pilots[heads], periods[heads])[run]
                return found
        return self._find(pilots, periods)

    def _find(self, pilots: npt.NDArray[Any], periods: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
        p = self.pilots.get_indexer(pilots)
        t = self.periods.get_indexer(periods)
        known = (p >= 0) & (t >= 0)
        keys = p.astype(np.int64) * len(self.periods) + t
        if self.table is not None:
            rows = self.table[np.where(known, keys, 0)] if len(self.table) else np.full(len(keys), -1, dtype=np.intp)
        else:
            assert self.index is not None
            rows = self.index.get_indexer(keys).astype(np.intp)
        rows[~known] = -1
        return rows

    def refuse_unexpected(
        self, rows: npt.NDArray[np.intp], pilots: npt.NDArray[Any], periods: npt.NDArray[Any], label: str
    ) -> None:
        unexpected = np.flatnonzero(rows < 0)
        if len(unexpected):
            examples = ", ".join(f"({pilots[i]!r}, {periods[i]!r})" for i in unexpected[:3].tolist())
            raise ValueError(
                f"{label}: {len(unexpected)} row(s) for (pilot, period) pairs that are not expected, e.g. {examples}"
            )


def _lookup(
    table: pd.DataFrame, rows_of: _Rows, pilot: str, period: str, label: str
) -> tuple[dict[str, Floats], dict[str, Sequence[Decimal | None]]]:
    """The columns of a table keyed by pilot (or by pilot and period), one value per panel row."""
    positions = np.arange(len(table), dtype=np.intp)
    if period in table.columns:
        keys = [pilot, period]
        at = rows_of.find(table[pilot].to_numpy(), table[period].to_numpy())
        keep = at >= 0
        where = np.full(rows_of.n, -1, dtype=np.intp)
        where[at[keep]] = positions[keep]
    else:
        keys = [pilot]
        codes = rows_of.pilots.get_indexer(table[pilot].to_numpy())
        keep = codes >= 0
        per_pilot = np.full(len(rows_of.pilots), -1, dtype=np.intp)
        per_pilot[codes[keep]] = positions[keep]
        where = per_pilot[rows_of.pilot_code]
        at = codes
    if len(np.unique(at[keep])) != np.count_nonzero(keep):
        raise ValueError(f"{label}: a {' and '.join(keys)} is listed twice")
    floats: dict[str, Floats] = {}
    exact: dict[str, Sequence[Decimal | None]] = {}
    for name in table.columns:
        if name in keys:
            continue
        parsed, values = text_floats(table[name].to_numpy(), f"{label}.{name}")
        column = np.append(parsed, math.nan)[where]  # where -1 reads the NaN at the end
        floats[name] = column
        exact[name] = DecimalText(values, np.where(np.isnan(column), -1, where))
    return floats, exact


def panel_from_long(
    frame: pd.DataFrame,
    *,
    expected: pd.MultiIndex | pd.DataFrame,
    pilot: str = "pilot",
    period: str = "period",
    metric: str = "metric",
    value: str = "value",
    metrics: Collection[str] | None = None,
    filings: pd.DataFrame | None = None,
    days_late: str = "days_late",
    quotas: pd.DataFrame | None = None,
    institution: pd.DataFrame | None = None,
) -> Panel:
    """A panel from long-format filings: ``frame`` holds one row per filed value, with columns
    ``pilot``, ``period``, ``metric`` and ``value`` (the names are parameters; pilot and period
    name the same columns in every table below).

    - ``expected``: the panel's rows, one per expected (pilot, period): a MultiIndex with levels
      named ``pilot`` and ``period`` (``MultiIndex.from_product`` for pilots that share their
      periods) or a DataFrame with those two columns; each pilot's rows together and in period
      order, as ``Panel`` needs them. A period with no filing is still a row (its values are
      missing).
    - ``metrics``: the metrics to keep, usually those the rules read; the other rows are never
      parsed. None keeps every metric in ``frame``.
    - ``filings``: one row per filed (pilot, period), and its ``days_late`` column when it has
      one. An expected row without a filing is not filed, and ``frame`` may hold no value for it.
      None: a row is filed when ``frame`` holds any row for it, and days late are missing.
    - ``quotas`` and ``institution``: one row per pilot (a ``pilot`` column), or per pilot and
      period when the table has a ``period`` column; every other column is a quota or an
      institution field. A pilot the table does not list has those values missing.

    Values are decimal text, ``Decimal`` or int (None or NaN: no value); a float column is refused,
    as a decimal's float has lost digits. Each value's float is parsed straight from the text
    (``text_floats``) and its ``Decimal`` only when the evaluator asks for that row
    (``DecimalText``). Refused with ValueError: a row of ``frame`` (for a kept metric) or of
    ``filings`` whose pair is not expected, a value given twice, a value for a row that
    ``filings`` says was not filed, and any value ``text_floats`` refuses."""
    rows_of = _Rows(expected, pilot, period)
    n = rows_of.n
    names = list(dict.fromkeys(metrics)) if metrics is not None else pd.unique(frame[metric].dropna()).tolist()
    chosen = None if metrics is None else np.flatnonzero(frame[metric].isin(names).to_numpy())

    def pick(column: str) -> npt.NDArray[Any]:
        values: npt.NDArray[Any] = frame[column].to_numpy()
        return values if chosen is None else values[chosen]

    pilots, periods = pick(pilot), pick(period)
    at = rows_of.find(pilots, periods)
    rows_of.refuse_unexpected(at, pilots, periods, "frame")
    codes = pd.Index(names).get_indexer(pick(metric))
    parsed, values = text_floats(pick(value), f"frame.{value}")
    given = np.flatnonzero(~np.isnan(parsed) & (codes >= 0))  # a row without a metric name has no value
    codes, cells = codes[given], at[given]
    where = np.full((len(names), n), -1, dtype=np.intp)
    where[codes, cells] = given
    if np.count_nonzero(where >= 0) != len(given):
        raise ValueError("frame: a (pilot, period, metric) has more than one value")
    floats = np.full((len(names), n), math.nan)
    floats[codes, cells] = parsed[given]

    filed = np.zeros(n, dtype=bool)
    late = np.full(n, math.nan)
    late_exact: Sequence[Decimal | None] = DecimalText(np.zeros(0, dtype=object), np.full(n, -1, dtype=np.intp))
    if filings is None:
        if chosen is None:
            filed[at] = True
        else:
            pilots, periods = frame[pilot].to_numpy(), frame[period].to_numpy()
            everything = rows_of.find(pilots, periods)
            rows_of.refuse_unexpected(everything, pilots, periods, "frame")
            filed[everything] = True
    else:
        pilots, periods = filings[pilot].to_numpy(), filings[period].to_numpy()
        filed_at = rows_of.find(pilots, periods)
        rows_of.refuse_unexpected(filed_at, pilots, periods, "filings")
        filed[filed_at] = True
        if np.count_nonzero(filed) != len(filed_at):
            raise ValueError("filings: a (pilot, period) is listed twice")
        if not filed[cells].all():
            raise ValueError("frame: a value for a (pilot, period) that filings say was not filed")
        if days_late in filings.columns:
            late_parsed, late_values = text_floats(filings[days_late].to_numpy(), f"filings.{days_late}")
            late_where = np.full(n, -1, dtype=np.intp)
            late_where[filed_at] = np.arange(len(filed_at))
            late = np.append(late_parsed, math.nan)[late_where]
            late_exact = DecimalText(late_values, np.where(np.isnan(late), -1, late_where))

    quota_floats, quota_exact = ({}, {}) if quotas is None else _lookup(quotas, rows_of, pilot, period, "quotas")
    bank_floats, bank_exact = (
        ({}, {}) if institution is None else _lookup(institution, rows_of, pilot, period, "institution")
    )
    return Panel(
        pilot=rows_of.pilot_keys,
        metrics={name: floats[k] for k, name in enumerate(names)},
        exact={name: DecimalText(values, where[k]) for k, name in enumerate(names)},
        quotas=quota_floats,
        quotas_exact=quota_exact,
        institution=bank_floats,
        institution_exact=bank_exact,
        days_late=late,
        days_late_exact=late_exact,
        filed=filed,
    )


# -- evaluation ------------------------------------------------------------------------------------

# The exact values of a number at given rows of a block, computed by the scalar evaluator's own
# arithmetic: only asked for rows where the number is certainly neither missing nor an error.
ExactAt = Callable[[npt.NDArray[np.intp]], list[Value]]
# One rounding (or a correctly rounded conversion) moves a float by at most half an ulp, and an ulp
# is at most |x| * 2**-52: so |x| * EPS bounds it with a factor two to spare. TINY covers what
# magnitude-relative bounds miss in the subnormal range (each op errs there by < 2**-1074; an
# expression has at most 200 of them).
EPS = 2.0**-52
TINY = 1e-300


@dataclass
class _Num:
    v: Floats  # the value in floats (meaningless where missing or error)
    e: Floats  # |exact - v| <= e
    # Row flags; None stands for "no row" (the common case, which then costs nothing).
    miss: Flags | None
    err: Flags | None  # division by zero (certain)
    unc: Flags | None  # status not decidable here: re-decided by evaluate_scalar
    exact: ExactAt | None = None
    held: Flags | None = None  # rows where v is exactly the value (None: no row known to be)


@dataclass
class _Bool:
    st: Codes
    unc: Flags | None


@dataclass(frozen=True)
class VectorOutcome:
    status: Codes
    rechecked: npt.NDArray[np.intp]  # rows that were re-decided by evaluate_scalar
    exact_decisions: int = 0  # comparisons decided on exact decimals (close calls), over all rows


def evaluate_vector(expr: Expression, panel: Panel) -> Codes:
    """The status of every row (STATUS_*), equal to ``evaluate_scalar`` on
    ``panel.scalar_context(row)``; STATUS_VALUE for number expressions that have a value."""
    return evaluate_vector_detailed(expr, panel).status


def evaluate_vector_detailed(expr: Expression, panel: Panel, *, block: int = BLOCK) -> VectorOutcome:
    """``evaluate_vector``, also telling which rows were re-decided by ``evaluate_scalar``."""
    n = len(panel)
    panel.layout  # noqa: B018  # checks the pilots are contiguous, once per panel
    status = np.empty(n, dtype=np.int8)
    doubtful: list[npt.NDArray[np.intp]] = []
    exact_decisions = 0
    with np.errstate(all="ignore"):
        windows = _windows(expr, panel)
        # Block by block: the temporaries of a block stay small enough to be reused from the heap
        # and to stay in cache, where whole-column temporaries would be fresh pages every time.
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            evaluator = _Evaluator(panel, lo, hi, windows)
            result = evaluator.node(expr.root)
            exact_decisions += evaluator.exact_decisions
            if isinstance(result, _Bool):
                status[lo:hi] = result.st
            else:
                part = status[lo:hi]
                part[:] = STATUS_VALUE
                if result.miss is not None:
                    part[result.miss] = STATUS_MISSING
                if result.err is not None:
                    part[result.err] = STATUS_ERROR
            if result.unc is not None:
                doubtful.append(np.flatnonzero(result.unc) + lo)
    rechecked = np.concatenate(doubtful) if doubtful else np.zeros(0, dtype=np.intp)
    for row in rechecked.tolist():
        status[row] = STATUS_CODES[evaluate_scalar(expr, panel.scalar_context(row, periods=expr.lookback)).status]
    return VectorOutcome(status, rechecked, exact_decisions)


def _or(a: Flags | None, b: Flags | None) -> Flags | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _without(a: Flags | None, b: Flags | None) -> Flags | None:
    if a is None or b is None:
        return a
    return a & ~b


def _some(flags: Flags) -> Flags | None:
    return flags if flags.any() else None


def _rounding(values: Floats) -> Floats:
    bound = np.abs(values)
    bound *= EPS
    return bound


def _windows(expr: Expression, panel: Panel) -> dict[str, _Num]:
    """The running sums over whole pilots, computed once over the whole panel (the blocks of the
    elementwise pass may cut a pilot's history)."""
    n = len(panel)
    found: dict[str, _Num] = {}
    for node in walk(expr.root):
        if not isinstance(node, Window) or node.function != "sum_to_date" or node.label in found:
            continue
        floats = panel.metrics.get(node.metric)
        if floats is None or node.metric not in panel.exact:
            found[node.label] = _Num(np.full(n, math.nan), np.zeros(n), np.ones(n, dtype=bool), None, None)
            continue
        x = np.asarray(floats, dtype=np.float64)
        x_e = _rounding(x)
        layout = panel.layout
        # NaN stands for missing all along: a sum over a window with a gap is NaN, which is exactly
        # "missing" (and a window never reaches into another pilot).
        v, e = _running_sums(x, x_e, layout)
        found[node.label] = _Num(v, e, _some(np.isnan(v)), None, None)
    return found


def _running_sums(x: Floats, x_e: Floats, layout: _Layout) -> tuple[Floats, Floats]:
    """Each row's sum over its pilot's periods so far, and its error bound: the conversion bounds
    of the terms plus the rounding of every partial sum."""
    n = len(x)
    groups = int(layout.group[-1]) + 1 if n else 0
    longest = len(layout.by_pos)
    if groups * longest == n:
        # Every pilot has as many periods: the rows already are a grid, one line per pilot, and a
        # cumsum along the lines sums pilot by pilot.
        sums = np.cumsum(x.reshape(groups, longest), axis=1)
        bounds = np.abs(sums)
        bounds *= EPS
        bounds += x_e.reshape(groups, longest)
        np.cumsum(bounds, axis=1, out=bounds)
        return sums.reshape(n), bounds.reshape(n)
    if groups * longest <= 4 * n + 1024:
        # The same on a grid padded after each pilot's last period.
        grid = np.zeros((groups, longest))
        grid[layout.group, layout.pos] = x
        sums = np.cumsum(grid, axis=1)
        bounds = np.abs(sums)
        bounds *= EPS
        grid[layout.group, layout.pos] = x_e
        bounds += grid
        np.cumsum(bounds, axis=1, out=bounds)
        return sums[layout.group, layout.pos], bounds[layout.group, layout.pos]
    # Very uneven pilots (a grid would be mostly padding): step period by period instead.
    v, e = x.copy(), x_e.copy()
    for rows in layout.by_pos[1:]:
        before = rows - 1
        total = v[before] + x[rows]
        v[rows] = total
        e[rows] = e[before] + x_e[rows] + _rounding(total)
    return v, e


class _Evaluator:
    """The elementwise pass over rows lo..hi of the panel."""

    def __init__(self, panel: Panel, lo: int, hi: int, windows: Mapping[str, _Num]) -> None:
        self.panel = panel
        self.lo = lo
        self.hi = hi
        self.n = hi - lo
        self.windows = windows
        self.leaves: dict[str, _Num] = {}
        self.exact_decisions = 0

    def node(self, node: Node) -> _Num | _Bool:
        if isinstance(node, Number):
            return self.literal(node.value)
        if isinstance(node, Boolean):
            return _Bool(np.full(self.n, STATUS_TRUE if node.value else STATUS_FALSE, dtype=np.int8), None)
        if isinstance(node, Input):
            if node.source == "filed":
                return _Bool(np.asarray(self.panel.filed[self.lo : self.hi], dtype=bool).astype(np.int8), None)
            return self.input(node)
        if isinstance(node, Window):
            return self.window(node)
        if isinstance(node, Negate):
            a = self.number(node.operand)
            exact = a.exact
            negated: ExactAt | None = None
            if exact is not None:

                def negated(rows: npt.NDArray[np.intp], exact: ExactAt = exact) -> list[Value]:
                    # copy_negate, as the scalar evaluator: exact whatever the digits
                    return [x.copy_negate() if isinstance(x, Decimal) else x for x in exact(rows)]

            return _Num(-a.v, a.e, a.miss, a.err, a.unc, negated, a.held)
        if isinstance(node, Arithmetic):
            return self.arithmetic(node.op, self.number(node.left), self.number(node.right), node)
        if isinstance(node, Compare):
            return self.compare(node.op, self.number(node.left), self.number(node.right))
        if isinstance(node, Not):
            operand = self.boolean(node.operand)
            return _Bool(_NOT[operand.st], operand.unc)
        assert isinstance(node, Logic)
        return self.logic(node.op, self.boolean(node.left), self.boolean(node.right))

    def number(self, node: Node) -> _Num:
        result = self.node(node)
        assert isinstance(result, _Num)
        return result

    def boolean(self, node: Node) -> _Bool:
        result = self.node(node)
        assert isinstance(result, _Bool)
        return result

    # values

    def literal(self, value: Decimal) -> _Num:
        v = float(value)
        # A literal whose float is exact carries no error bound.
        held = Decimal(v) == value
        e = 0.0 if held else abs(v) * EPS
        return _Num(
            np.full(self.n, v),
            np.full(self.n, e),
            None,
            None,
            None,
            lambda rows: [value] * len(rows),
            np.ones(self.n, dtype=bool) if held else None,
        )

    def column(self, floats: Floats | None, exact: Sequence[Decimal | None] | None) -> _Num:
        if floats is None or exact is None:
            return _Num(np.full(self.n, math.nan), np.zeros(self.n), np.ones(self.n, dtype=bool), None, None)
        lo = self.lo
        v = np.asarray(floats[lo : self.hi], dtype=np.float64)

        def exact_at(rows: npt.NDArray[np.intp]) -> list[Value]:
            return _values_at(exact, rows + lo)

        # Zero gets a zero bound: the float of a nonzero decimal is never 0, so a zero divisor
        # read as filed is certain, and a zero is held exactly.
        return _Num(v, _rounding(v), _some(np.isnan(v)), None, None, exact_at, v == 0)

    def input(self, node: Input) -> _Num:
        cached = self.leaves.get(node.label)
        if cached is not None:
            return cached
        panel = self.panel
        if node.source == "metric":
            result = self.column(panel.metrics.get(node.key), panel.exact.get(node.key))
        elif node.source == "quota":
            result = self.column(panel.quotas.get(node.key), panel.quotas_exact.get(node.key))
        elif node.source == "institution":
            result = self.column(panel.institution.get(node.key), panel.institution_exact.get(node.key))
        else:
            result = self.column(panel.days_late, panel.days_late_exact)
        self.leaves[node.label] = result
        return result

    def metric(self, name: str) -> _Num:
        cached = self.leaves.get(name)
        if cached is None:
            cached = self.leaves[name] = self.column(self.panel.metrics.get(name), self.panel.exact.get(name))
        return cached

    def previous(self, name: str) -> _Num:
        label = f"prev({name})"
        cached = self.leaves.get(label)
        if cached is not None:
            return cached
        floats, exact = self.panel.metrics.get(name), self.panel.exact.get(name)
        lo, hi = self.lo, self.hi
        if floats is None or exact is None or self.n == 0:
            result = self.column(None, None)
        else:
            v = np.empty(self.n)
            v[1:] = floats[lo : hi - 1]
            v[0] = floats[lo - 1] if lo else math.nan
            v[self.panel.layout.pos[lo:hi] == 0] = math.nan  # a pilot's first period has no previous

            def exact_at(rows: npt.NDArray[np.intp]) -> list[Value]:
                return _values_at(exact, rows + (lo - 1))

            result = _Num(v, _rounding(v), _some(np.isnan(v)), None, None, exact_at, v == 0)
        self.leaves[label] = result
        return result

    def window(self, node: Window) -> _Num:
        if node.function == "prev":
            return self.previous(node.metric)
        if node.function == "pct_change":
            current, prev = self.metric(node.metric), self.previous(node.metric)
            change = self.arithmetic("/", self.arithmetic("-", current, prev, None), prev, None)
            if current.exact is not None and prev.exact is not None:
                at_current, at_prev = current.exact, prev.exact

                def exact_change(rows: npt.NDArray[np.intp]) -> list[Value]:
                    pairs = zip(at_current(rows), at_prev(rows), strict=True)
                    return [pct_change_value(node, x, y) for x, y in pairs]

                change.exact = exact_change
            return change
        if node.function == "mean_last":
            result = self.mean_last(node.metric, node.periods)
        else:
            full = self.windows[node.label]
            lo, hi = self.lo, self.hi
            miss = None if full.miss is None else _some(full.miss[lo:hi])
            result = _Num(full.v[lo:hi], full.e[lo:hi], miss, None, None)
        column = self.panel.exact.get(node.metric)
        if column is not None:
            result.exact = self.window_exact(node, column)
        return result

    def window_exact(self, node: Window, column: Sequence[Decimal | None]) -> ExactAt:
        layout, lo = self.panel.layout, self.lo

        def exact_at(rows: npt.NDArray[np.intp]) -> list[Value]:
            values: list[Value] = []
            for row in (rows + lo).tolist():
                first = int(layout.start[row]) if node.function == "sum_to_date" else row - node.periods + 1
                if first < layout.start[row]:
                    values.append(MISSING)
                else:
                    values.append(window_value(node, column[first : row + 1]))
            return values

        return exact_at

    def mean_last(self, name: str, k: int) -> _Num:
        floats = self.panel.metrics.get(name)
        if floats is None or name not in self.panel.exact:
            return self.column(None, None)
        lo, hi = self.lo, self.hi
        first = lo - (k - 1)
        x = np.asarray(floats[max(first, 0) : hi], dtype=np.float64)
        if first < 0:  # rows before k-1 have no full window anyway; pad so the slices line up
            x = np.concatenate([np.full(-first, math.nan), x])
        # Row r's window is r-k+1..r, summed oldest first as the exact sum adds them; a gap makes
        # the sum NaN, which is exactly "missing".
        width = self.n
        total = x[:width].copy()
        bound = _rounding(total)
        for back in range(1, k):
            term = x[back : back + width]
            total += term
            bound += _rounding(term)
            bound += _rounding(total)
        mean = total
        mean /= k
        bound /= k
        bound += _rounding(mean)
        mean[self.panel.layout.pos[lo:hi] < k - 1] = math.nan
        return _Num(mean, bound, _some(np.isnan(mean)), None, None)

    def arithmetic(self, op: str, a: _Num, b: _Num, node: Arithmetic | None) -> _Num:
        unc = _or(a.unc, b.unc)
        err = _or(a.err, b.err)
        if op == "+":
            v = a.v + b.v
            e = a.e + b.e
        elif op == "-":
            v = a.v - b.v
            e = a.e + b.e
        elif op == "*":
            v = a.v * b.v
            e = np.abs(a.v) * b.e
            e += np.abs(b.v) * a.e
            e += a.e * b.e
        else:
            size = np.abs(b.v)
            zero = (b.v == 0) & (b.e == 0)
            # Where |b| is not clearly above its bound, b may or may not be 0: decided exactly.
            doubt = ~(size > 2 * b.e + TINY) & ~zero
            unusable = _or(b.miss, b.err)
            if unusable is not None:
                zero &= ~unusable
                doubt &= ~unusable
            unc = _or(unc, _some(doubt))
            err = _or(err, _some(zero))
            v = a.v / b.v
            # |a/b - va/vb| <= (|va| eb + |vb| ea) / (|vb| (|vb| - eb)) when |vb| > eb
            e = np.abs(a.v) * b.e
            e += size * a.e
            size *= size - b.e
            e /= size
        e += _rounding(v)
        exact: ExactAt | None = None
        if node is not None and a.exact is not None and b.exact is not None:
            at_a, at_b = a.exact, b.exact

            def exact(rows: npt.NDArray[np.intp]) -> list[Value]:
                return [arithmetic_value(op, x, y, node) for x, y in zip(at_a(rows), at_b(rows), strict=True)]

        return _Num(v, e, _without(_or(a.miss, b.miss), err), err, unc, exact)

    def compare(self, op: str, a: _Num, b: _Num) -> _Bool:
        err = _or(a.err, b.err)
        miss = _without(_or(a.miss, b.miss), err)
        status = _COMPARE[op](a.v, b.v).view(np.int8)
        if miss is not None:
            status[miss] = STATUS_MISSING
        if err is not None:
            status[err] = STATUS_ERROR
        bound = a.e + b.e
        bound *= SAFETY
        bound += TINY
        distance = a.v - b.v
        np.abs(distance, out=distance)
        # Not "distance <= bound": a NaN distance (an overflow) must count as doubtful too.
        doubt = ~(distance > bound)
        unc = _or(a.unc, b.unc)
        excluded = _or(_or(miss, err), unc)
        if excluded is not None:
            doubt &= ~excluded
        if a.held is not None and b.held is not None:
            # Both floats are the exact values (a count of 0 against the literal 0): their
            # comparison is already exact, even on a tie.
            doubt &= ~(a.held & b.held)
        if not doubt.any():
            return _Bool(status, unc)
        if a.exact is None or b.exact is None:
            return _Bool(status, _or(unc, doubt))
        # Too close for floats: these rows are decided on exact decimals, computed by the scalar
        # evaluator's arithmetic (both sides are certainly values here).
        rows = np.flatnonzero(doubt)
        self.exact_decisions += len(rows)
        undecided = []
        for row, x, y in zip(rows.tolist(), a.exact(rows), b.exact(rows), strict=True):
            if isinstance(x, Decimal) and isinstance(y, Decimal):
                status[row] = compare_decimals(op, x, y)
            else:  # pragma: no cover - a certain value is always a decimal; kept as a safety net
                undecided.append(row)
        if undecided:
            doubt[:] = False
            doubt[undecided] = True
            return _Bool(status, _or(unc, doubt))
        return _Bool(status, unc)

    def logic(self, op: str, a: _Bool, b: _Bool) -> _Bool:
        table = _AND if op == "and" else _OR
        status = table[a.st * 4 + b.st]
        if a.unc is None and b.unc is None:
            return _Bool(status, None)
        # Kleene: a certain deciding operand decides the row whatever the other one is.
        decisive = STATUS_FALSE if op == "and" else STATUS_TRUE
        unc = _or(a.unc, b.unc)
        assert unc is not None
        for side in (a, b):
            decides = side.st == decisive
            if side.unc is not None:
                decides &= ~side.unc
            unc = unc & ~decides
        return _Bool(status, _some(unc))


def _value(value: Decimal | None) -> Value:
    return MISSING if value is None else value


def _values_at(column: Sequence[Decimal | None], rows: npt.NDArray[np.intp]) -> list[Value]:
    if isinstance(column, DecimalText):
        return [_value(x) for x in column.take(rows)]
    return [_value(column[r]) for r in rows.tolist()]


def _kleene(op: str) -> Codes:
    decisive = STATUS_FALSE if op == "and" else STATUS_TRUE
    table = np.zeros(16, dtype=np.int8)
    for left in range(4):
        for right in range(4):
            if decisive in (left, right):
                code = decisive
            elif STATUS_ERROR in (left, right):
                code = STATUS_ERROR
            elif STATUS_MISSING in (left, right):
                code = STATUS_MISSING
            else:
                code = 1 - decisive
            table[left * 4 + right] = code
    return table


_AND = _kleene("and")
_OR = _kleene("or")
_NOT = np.array([STATUS_TRUE, STATUS_FALSE, STATUS_MISSING, STATUS_ERROR], dtype=np.int8)
_COMPARE: dict[str, Callable[[Floats, Floats], Flags]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
