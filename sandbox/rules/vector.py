"""Batch evaluation of a compiled expression over many pilots and periods at once (bulk uploads,
backtests, replays), in numpy, agreeing exactly with ``evaluate_scalar`` on every row.

How floats are made to agree with exact decimals. Every number is carried as a float64 with a
bound on its distance from the exact value: a decimal's nearest float is off by at most half an
ulp; each +, -, *, / propagates its operands' bounds and adds one rounding; window sums
accumulate theirs. A comparison is decided in floats only where its two sides are further apart
than four times their combined bound, which no rounding can cross. The rows too close to call
(ties such as 0.03 against 0.03, or 0.1 + 0.2 against 0.3) are decided on exact decimals,
computed for those rows only by the scalar evaluator's own arithmetic (``arithmetic_value``,
``pct_change_value``, ``window_value``). A row whose divisor might be zero (its interval holds
0 although it is not a zero read as filed) is re-decided whole by ``evaluate_scalar`` on
``panel.scalar_context(row)``. Missing values and zero divisors are exact (NaN stands for a
missing decimal, and the float of a nonzero decimal is nonzero), so statuses never depend on
rounding. Only rows near a threshold leave the float path, and no row is ever decided on a
float that could be wrong."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

import numpy as np
import numpy.typing as npt

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
    data, as ``decimal_floats`` makes them."""

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

            return _Num(-a.v, a.e, a.miss, a.err, a.unc, negated)
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
        e = 0.0 if Decimal(v) == value else abs(v) * EPS
        return _Num(np.full(self.n, v), np.full(self.n, e), None, None, None, lambda rows: [value] * len(rows))

    def column(self, floats: Floats | None, exact: Sequence[Decimal | None] | None) -> _Num:
        if floats is None or exact is None:
            return _Num(np.full(self.n, math.nan), np.zeros(self.n), np.ones(self.n, dtype=bool), None, None)
        lo = self.lo
        v = np.asarray(floats[lo : self.hi], dtype=np.float64)

        def exact_at(rows: npt.NDArray[np.intp]) -> list[Value]:
            return [_value(exact[r]) for r in (rows + lo).tolist()]

        # Zero gets a zero bound: the float of a nonzero decimal is never 0, so a zero divisor
        # read as filed is certain.
        return _Num(v, _rounding(v), _some(np.isnan(v)), None, None, exact_at)

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
                return [_value(exact[r]) for r in (rows + (lo - 1)).tolist()]

            result = _Num(v, _rounding(v), _some(np.isnan(v)), None, None, exact_at)
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
