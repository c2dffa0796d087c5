"""Reading a filing upload (CSV or XLSX) into plain filings, all or nothing.

Bytes in; either a list of ``ParsedFiling`` or ``UploadRefused`` listing every bad row and
column (the first ``MAX_ERRORS``, then a count). Values are kept as the exact text in the file;
the number grammar and the program's metric catalogue are applied later by the filing service.

Layout. Row 1 is the header; names are matched trimmed and case-insensitively and must look like
``[a-z][a-z0-9_]*`` (the policy's metric and dimension names). ``pilot`` and ``period`` are
required. With ``metric`` and ``value`` columns the file is in the long format: every other
column is a scope dimension, a row whose dimension cells are all empty is a headline value and
any other row a breakdown row. Without them it is in the wide format: every other column is a
metric, one row per pilot-period, an empty cell means the metric is not filed. Metric names in
long-format cells are matched like header names (trimmed, case-insensitive); pilot, period and
dimension values are trimmed and otherwise kept as written. Blank rows are skipped.

Limits. ``max_bytes`` is checked before anything else. ``max_rows`` counts the rows after the
header up to the last non-blank one (blank rows between data rows count: they are rows a person
sees; in a CSV a trailing ``,,,`` line counts too); reading stops as soon as it is passed. At
most ``MAX_COLUMNS`` columns. Row numbers are those a spreadsheet shows: the header is row 1 and a
quoted CSV value spanning lines is one row.

CSV: UTF-8 only (a BOM is dropped), comma separated, quoted per RFC 4180, read by pandas as text
with no type guessing and no NA detection, so ``NaN`` or ``1,000`` stay text for the number
grammar to refuse. A row with more fields than the header or a quote that is never closed breaks
the file's structure: then every such row is reported, and nothing else, because the other
cells cannot be trusted to be in their columns until it is fixed.

XLSX: before openpyxl sees the file, the zip is checked (entries, declared uncompressed total; a
member that inflates beyond its declared size is cut off by ``zipfile`` and fails its CRC), and
openpyxl parses XML through defusedxml. Only one sheet may hold data: data on a second sheet is
refused rather than silently ignored. Numeric cells become ``str(int)`` or ``repr(float)`` (the
shortest text that round-trips, which is the value Excel stored). Formula, error, boolean and
date/time cells are refused. A period that Excel turned into a date is refused too, with a hint:
accepting 1 October 2026 as ``2026-10`` would guess, and quarterly periods cannot survive the
conversion at all; text is what the bank meant.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, NoReturn

# Neither ships type information (no py.typed) and no stub package is installed.
import openpyxl  # type: ignore[import-untyped]
import pandas as pd  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

MAX_COLUMNS = 200
MAX_ERRORS = 1000
MAX_TEXT = 200
MAX_ZIP_ENTRIES = 500
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
# XML compresses well, but a real workbook does not inflate 20 times past the upload limit.
MAX_ZIP_RATIO = 20
EXCEL_MAX_ROW = 1_048_576

# The policy's Name: metric and dimension names.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_KNOWN = ("pilot", "period", "metric", "value")
_NO_HEADER = "the first row must be the header: pilot, period, then metric and value or one column per metric"


@dataclass(frozen=True)
class Cell:
    text: str  # exactly as in the file; an XLSX number as str(int) or repr(float)
    row: int  # as a spreadsheet shows it: the header is row 1
    column: str  # the header as written (trimmed)


@dataclass(frozen=True)
class BreakdownCell:
    metric: str
    value: Cell
    dimensions: dict[str, str]  # only the dimensions with a value on the row


@dataclass(frozen=True)
class ParsedFiling:
    pilot: str  # the reference as written, trimmed
    period: str  # as written, trimmed; not yet checked against the program
    metrics: dict[str, Cell]
    breakdown: list[BreakdownCell]
    rows: list[int]


@dataclass(frozen=True)
class RowError:
    row: int | None  # None: about the whole file
    column: str | None
    message: str


class UploadRefused(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        first = errors[0] if errors else RowError(None, None, "refused")
        where = f"row {first.row}: " if first.row is not None else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"upload refused: {where}{first.message}{more}")


def read_upload(data: bytes, filename: str, *, max_bytes: int, max_rows: int) -> list[ParsedFiling]:
    if len(data) > max_bytes:
        _refuse(f"the file is {len(data)} bytes; the limit is {max_bytes}")
    kind = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if kind == "csv":
        return _assemble(_csv_rows(data, max_rows), max_rows)
    if kind == "xlsx":
        _check_zip(data, max_bytes)
        with _Workbook(data) as workbook:
            return _assemble(_xlsx_rows(workbook), max_rows)
    if kind in ("xls", "xlsm", "xlsb", "ods", "numbers"):
        _refuse(f"a .{kind} file is not accepted; save it as .xlsx (Excel workbook) or .csv (CSV UTF-8)")
    _refuse("only .csv and .xlsx files are accepted")


def _refuse(message: str) -> NoReturn:
    raise UploadRefused([RowError(None, None, message)])


# --- Cells as the readers hand them over -------------------------------------------------------


@dataclass(frozen=True)
class _Refused:
    """A spreadsheet cell of a type we never take: what it showed, and what it was."""

    kind: Literal["formula", "error", "boolean", "date"]
    shown: str
    value: object = None


# None: an empty cell.
_Raw = str | _Refused | None
_Rows = Iterator[tuple[int, list[_Raw]]]


def _is_blank(raw: _Raw) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


# --- CSV -----------------------------------------------------------------------------------


def _csv_rows(data: bytes, max_rows: int) -> _Rows:
    body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + len(data) - len(body)
        _refuse(
            f"the file is not UTF-8 text: byte {offset} (0x{body[exc.start]:02X}) cannot be decoded; "
            "save it as 'CSV UTF-8' (GBK and other encodings are not accepted)"
        )
    # Trailing line breaks are not rows; without this a final blank line could pass the limit.
    text = text.rstrip("\r\n")
    if not text.strip():
        _refuse("the file is empty")
    try:
        # The C engine with on_bad_lines="error" never drops a row: the python engine silently
        # skips a row the csv module cannot read (an unclosed quote at the end, for one).
        frame = pd.read_csv(
            io.StringIO(text, newline=""),
            header=None,
            sep=",",
            quotechar='"',
            doublequote=True,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            on_bad_lines="error",
            nrows=max_rows + 2,
        )
    except pd.errors.ParserError as exc:
        raise UploadRefused(_csv_diagnosis(text, str(exc), max_rows)) from None
    except pd.errors.EmptyDataError:  # the text is not blank, so its first line is
        _refuse(_NO_HEADER)
    if len(frame.columns) > MAX_COLUMNS:
        _refuse(f"the file has {len(frame.columns)} columns; at most {MAX_COLUMNS}")
    records: list[list[Any]] = frame.to_numpy(dtype=object).tolist()
    del frame
    if len(records) > max_rows + 1:
        _refuse(f"the file has more than {max_rows} rows after the header; the limit is {max_rows} (split it)")
    for index, record in enumerate(records):
        yield index + 1, [value if isinstance(value, str) else None for value in record]


def _csv_diagnosis(text: str, failure: str, max_rows: int) -> list[RowError]:
    """Every row that broke pandas' reading: pandas stops at the first, the bank wants them all.
    The csv module splits records as pandas does for the quoting RFC 4180 allows."""
    errors = _Errors()
    width: int | None = None
    number = 0
    try:
        for number, record in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            if width is None:
                if not any(field.strip() for field in record):
                    return [RowError(None, None, _NO_HEADER)]
                width = len(record)
            elif len(record) > width:
                errors.add(
                    number,
                    None,
                    f"the row has {len(record)} fields but the header has {width} "
                    "(quote any value that contains a comma)",
                )
            if number > max_rows + 1:
                break
    except csv.Error as exc:
        errors.add(number + 1, None, f"the row cannot be read as CSV ({exc})")
    if "EOF inside string" in failure:
        errors.add(number, None, 'a quoted value starts on this row and is never closed (a stray " ?)')
    if not errors.items:
        errors.add(None, None, f"the CSV could not be read: {failure.strip()}")
    return errors.listed()


# --- XLSX ----------------------------------------------------------------------------------


def _check_zip(data: bytes, max_bytes: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        _refuse("the file is not an XLSX workbook (not a zip archive); save it as .xlsx or .csv")
    if len(members) > MAX_ZIP_ENTRIES:
        _refuse(f"the workbook has {len(members)} parts; at most {MAX_ZIP_ENTRIES}")
    limit = min(MAX_ZIP_RATIO * max_bytes, MAX_UNCOMPRESSED_BYTES)
    total = sum(member.file_size for member in members)
    if total > limit:
        _refuse(f"the workbook expands to {total} bytes; at most {limit} (a zip bomb, or too large)")
    if any(member.flag_bits & 0x1 for member in members):
        _refuse("the workbook is encrypted; remove the password and upload it again")


class _Workbook:
    def __init__(self, data: bytes) -> None:
        if not openpyxl.DEFUSEDXML:
            # A deployment problem, not the bank's: never parse workbook XML without defusedxml.
            raise RuntimeError("openpyxl is not using defusedxml; refusing to read XLSX")
        try:
            self.book = openpyxl.load_workbook(
                io.BytesIO(data), read_only=True, data_only=False, keep_links=False, rich_text=False
            )
        # openpyxl reports a damaged or hostile workbook with whatever its parser raised (zip,
        # XML, defusedxml, KeyError for a missing part...); to the bank it is one answer.
        except Exception as exc:
            _unreadable(exc)

    def __enter__(self) -> Any:
        return self.book

    def __exit__(self, *exc_info: object) -> None:
        self.book.close()


def _unreadable(exc: BaseException) -> NoReturn:
    # openpyxl wraps the parser's exception (ValueError "Unable to read workbook"); the innermost
    # one says what was wrong (BadZipFile, EntitiesForbidden, ParseError...).
    while exc.__cause__ is not None:
        exc = exc.__cause__
    _refuse(f"the workbook could not be read ({type(exc).__name__}); save it again as .xlsx")


def _xlsx_rows(book: Any) -> _Rows:
    try:
        with_data = [sheet for sheet in book.worksheets if _has_data(sheet)]
        if not with_data:
            _refuse("the workbook is empty")
        if len(with_data) > 1:
            names = ", ".join(f"'{sheet.title}'" for sheet in with_data)
            _refuse(f"data on more than one sheet ({names}); put all rows on one sheet and leave the others empty")
        with closing(_sheet_rows(with_data[0])) as rows:
            for number, row in rows:
                yield number, [_xlsx_cell(cell) for cell in row]
    except UploadRefused:
        raise
    except Exception as exc:  # as in _Workbook: damaged sheet XML surfaces while streaming
        _unreadable(exc)


def _sheet_rows(sheet: Any) -> Generator[tuple[int, tuple[Any, ...]]]:
    # Stored dimensions can claim A1:XFD1048576; without them each row is as wide as its cells.
    sheet.reset_dimensions()
    for number, row in enumerate(sheet.iter_rows(), start=1):
        if number > EXCEL_MAX_ROW:
            _refuse(f"sheet '{sheet.title}' has rows past Excel's last row {EXCEL_MAX_ROW}")
        if len(row) > MAX_COLUMNS:
            _refuse(
                f"row {number} of sheet '{sheet.title}' has cells in column {get_column_letter(len(row))}; "
                f"at most {MAX_COLUMNS} columns (clear the cells to the right of the data)"
            )
        yield number, row


def _has_data(sheet: Any) -> bool:
    with closing(_sheet_rows(sheet)) as rows:
        return any(cell.value is not None for _, row in rows for cell in row)


def _xlsx_cell(cell: Any) -> _Raw:
    value = cell.value
    if value is None:
        return None
    kind = cell.data_type
    if kind == "f":
        return _Refused("formula", value if isinstance(value, str) else "a formula")
    if kind == "e":
        return _Refused("error", str(value))
    if isinstance(value, bool):
        return _Refused("boolean", "TRUE" if value else "FALSE")
    if isinstance(value, datetime | date | time | timedelta):
        return _Refused("date", str(value), value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --- Header and rows -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    index: int
    name: str
    header: str


@dataclass
class _Layout:
    long: bool
    pilot: _Column
    period: _Column
    metric: _Column | None
    value: _Column | None
    others: list[_Column]  # dimensions (long) or metrics (wide)
    width: int
    unnamed: frozenset[int]  # positions with an empty header: they must stay empty


class _Errors:
    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.more = 0

    def add(self, row: int | None, column: str | None, message: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(row, column, message))
        else:
            self.more += 1

    def listed(self) -> list[RowError]:
        more = [RowError(None, None, f"and {self.more} more problems not listed")] if self.more else []
        return [*self.items, *more]

    def raise_if_any(self) -> None:
        if self.items:
            raise UploadRefused(self.listed())


@dataclass
class _Draft:
    pilot: str
    period: str
    metrics: dict[str, Cell] = field(default_factory=dict)
    breakdown: list[BreakdownCell] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    breakdown_rows: dict[tuple[str, tuple[tuple[str, str], ...]], int] = field(default_factory=dict)


def _assemble(rows: _Rows, max_rows: int) -> list[ParsedFiling]:
    errors = _Errors()
    first = next(rows, None)
    if first is None or all(_is_blank(raw) for raw in first[1]):
        _refuse(_NO_HEADER)
    layout = _read_header(first[1], errors)
    errors.raise_if_any()
    assert layout is not None

    drafts: dict[tuple[str, str], _Draft] = {}
    wide_rows: dict[tuple[str, str], int] = {}
    unnamed: dict[int, int] = {}  # column index without a header -> first row with a value in it
    seen_data = False
    for number, raw_row in rows:
        if all(_is_blank(raw) for raw in raw_row):
            continue
        if number > max_rows + 1:
            _refuse(f"the file has more than {max_rows} rows after the header; the limit is {max_rows} (split it)")
        seen_data = True
        for index, raw in enumerate(raw_row):
            if (index >= layout.width or index in layout.unnamed) and not _is_blank(raw):
                unnamed.setdefault(index, number)
        cells = raw_row + [None] * (layout.width - len(raw_row))
        if layout.long:
            _long_row(layout, number, cells, drafts, errors)
        else:
            _wide_row(layout, number, cells, drafts, wide_rows, errors)
    for index, number in sorted(unnamed.items()):
        errors.add(1, None, f"column {get_column_letter(index + 1)} has values (first on row {number}) but no header")
    if not seen_data:
        errors.add(None, None, "the file has a header but no data rows")
    errors.raise_if_any()
    return [
        ParsedFiling(
            pilot=draft.pilot,
            period=draft.period,
            metrics=draft.metrics,
            breakdown=draft.breakdown,
            rows=sorted(set(draft.rows)),
        )
        for draft in drafts.values()
    ]


def _read_header(cells: list[_Raw], errors: _Errors) -> _Layout | None:
    columns: list[_Column] = []
    first_at: dict[str, int] = {}
    for index, raw in enumerate(cells):
        letter = get_column_letter(index + 1)
        if raw is None:
            continue
        if isinstance(raw, _Refused):
            errors.add(1, letter, f"the header in column {letter} must be text: {_refused_message(raw, 'header')}")
            continue
        header = raw.strip()
        if not header:
            continue
        name = header.lower()
        if name in first_at:
            errors.add(
                1,
                header,
                f"the column name '{name}' appears twice (columns {get_column_letter(first_at[name] + 1)} and {letter})",
            )
            continue
        first_at[name] = index
        if name not in _KNOWN and not _NAME.match(name):
            errors.add(
                1,
                header,
                f"column name '{header[:60]}' must be letters, digits and underscores, starting with a letter "
                "(metric and dimension names as in the program's policy, such as exposure_outstanding or currencies)",
            )
            continue
        columns.append(_Column(index, name, header))
    by_name = {column.name: column for column in columns}
    for required in ("pilot", "period"):
        if required not in first_at:
            errors.add(1, None, f"the header has no '{required}' column")
    has_metric, has_value = "metric" in first_at, "value" in first_at
    if has_metric != has_value:
        present, missing = ("metric", "value") if has_metric else ("value", "metric")
        errors.add(
            1,
            by_name[present].header if present in by_name else present,
            f"a '{present}' column without a '{missing}' column: the long format needs both "
            "(pilot, period, metric, value), the wide format neither (pilot, period, one column per metric)",
        )
    others = [column for column in columns if column.name not in _KNOWN]
    if not has_metric and not has_value and not others and not errors.items:
        errors.add(
            1,
            None,
            "no metric columns: the wide format needs a column per metric after pilot and period; "
            "the long format needs metric and value columns",
        )
    if errors.items:
        return None
    return _Layout(
        long=has_metric,
        pilot=by_name["pilot"],
        period=by_name["period"],
        metric=by_name.get("metric"),
        value=by_name.get("value"),
        others=others,
        width=len(cells),
        unnamed=frozenset(range(len(cells))) - {column.index for column in columns},
    )


def _long_row(
    layout: _Layout, number: int, cells: list[_Raw], drafts: dict[tuple[str, str], _Draft], errors: _Errors
) -> None:
    assert layout.metric is not None and layout.value is not None
    before = len(errors.items) + errors.more
    pilot = _identifier(layout.pilot, cells, number, errors, "pilot")
    period = _identifier(layout.period, cells, number, errors, "period")
    metric = _metric_name(layout.metric, cells, number, errors)
    value = _value(layout.value, cells, number, errors)
    if value is None and not isinstance(cells[layout.value.index], _Refused):
        errors.add(number, layout.value.header, "the value is empty (leave the row out to not file the metric)")
    dimensions: dict[str, str] = {}
    for column in layout.others:
        text = _text(column, cells, number, errors, "dimension")
        if text:
            dimensions[column.name] = text
    if len(errors.items) + errors.more > before:
        return
    assert pilot and period and metric and value is not None
    draft = drafts.setdefault((pilot, period), _Draft(pilot, period))
    if not dimensions:
        earlier = draft.metrics.get(metric)
        if earlier is not None:
            errors.add(
                number,
                layout.metric.header,
                f"{metric} for {pilot} {period} is given twice (rows {earlier.row} and {number}); "
                "a headline value is one row without dimension values",
            )
            return
        draft.metrics[metric] = value
    else:
        key = (metric, tuple(sorted(dimensions.items())))
        earlier_row = draft.breakdown_rows.get(key)
        if earlier_row is not None:
            described = ", ".join(f"{name}={text}" for name, text in key[1])
            errors.add(
                number,
                layout.metric.header,
                f"{metric} for {pilot} {period} with {described} is given twice (rows {earlier_row} and {number})",
            )
            return
        draft.breakdown_rows[key] = number
        draft.breakdown.append(BreakdownCell(metric=metric, value=value, dimensions=dimensions))
    draft.rows.append(number)


def _wide_row(
    layout: _Layout,
    number: int,
    cells: list[_Raw],
    drafts: dict[tuple[str, str], _Draft],
    wide_rows: dict[tuple[str, str], int],
    errors: _Errors,
) -> None:
    before = len(errors.items) + errors.more
    pilot = _identifier(layout.pilot, cells, number, errors, "pilot")
    period = _identifier(layout.period, cells, number, errors, "period")
    metrics: dict[str, Cell] = {}
    for column in layout.others:
        value = _value(column, cells, number, errors)
        if value is not None:
            metrics[column.name] = value
    if len(errors.items) + errors.more > before:
        return
    assert pilot and period
    if not metrics:
        errors.add(number, None, f"no metric values on the row for {pilot} {period}")
        return
    earlier = wide_rows.get((pilot, period))
    if earlier is not None:
        errors.add(
            number,
            layout.pilot.header,
            f"{pilot} {period} is on rows {earlier} and {number}; the wide format has one row per pilot and period",
        )
        return
    wide_rows[(pilot, period)] = number
    drafts[(pilot, period)] = _Draft(pilot, period, metrics=metrics, rows=[number])


def _identifier(column: _Column, cells: list[_Raw], number: int, errors: _Errors, role: str) -> str | None:
    text = _text(column, cells, number, errors, role)
    if text == "":
        errors.add(number, column.header, f"the {role} is empty")
        return None
    return text


def _metric_name(column: _Column, cells: list[_Raw], number: int, errors: _Errors) -> str | None:
    text = _identifier(column, cells, number, errors, "metric")
    if text is None:
        return None
    name = text.lower()
    if not _NAME.match(name):
        errors.add(
            number,
            column.header,
            f"'{text[:60]}' is not a metric name (letters, digits and underscores, starting with a letter)",
        )
        return None
    return name


def _text(column: _Column, cells: list[_Raw], number: int, errors: _Errors, role: str) -> str | None:
    """A trimmed identifier or dimension value; "" when empty, None when refused."""
    raw = cells[column.index]
    if raw is None:
        return ""
    if isinstance(raw, _Refused):
        errors.add(number, column.header, _refused_message(raw, role))
        return None
    text = raw.strip()
    if _CONTROL.search(text):
        errors.add(number, column.header, "the text contains a control character (tab, line break or similar)")
        return None
    if len(text) > MAX_TEXT:
        errors.add(number, column.header, f"the text is {len(text)} characters long; at most {MAX_TEXT}")
        return None
    return text


def _value(column: _Column, cells: list[_Raw], number: int, errors: _Errors) -> Cell | None:
    """The value exactly as written (the number grammar judges it later); None when empty or refused."""
    raw = cells[column.index]
    if isinstance(raw, _Refused):
        errors.add(number, column.header, _refused_message(raw, "value"))
        return None
    if raw is None or not raw.strip():
        return None
    return Cell(text=raw, row=number, column=column.header)


def _refused_message(raw: _Refused, role: str) -> str:
    if raw.kind == "formula":
        return f"formulas are not accepted; paste values (the cell holds {raw.shown[:60]})"
    if raw.kind == "error":
        return f"the cell holds the error {raw.shown[:20]}; enter the value or leave the cell empty"
    if raw.kind == "boolean":
        return f"TRUE/FALSE ({raw.shown}) is not accepted; enter a number or text"
    if role == "period":
        moment = raw.value
        if isinstance(moment, datetime | date) and moment.day == 1:
            hint = f"type {moment.year:04d}-{moment.month:02d}"
        else:
            hint = "type the period, such as 2026-10 or 2026-Q3"
        return f"Excel turned the period into a date ({raw.shown}); format the period column as Text and {hint}"
    if role == "value":
        return f"a date or time ({raw.shown}) is not a metric value; enter a number"
    return f"a date or time ({raw.shown}) is not accepted here; format the column as Text"
