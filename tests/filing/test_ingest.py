from __future__ import annotations

import io
import re
import struct
import time
import zipfile
from datetime import date, datetime
from typing import Any

import openpyxl
import pytest

from sandbox.filing import ingest
from sandbox.filing.ingest import (
    MAX_COLUMNS,
    MAX_ERRORS,
    BreakdownCell,
    Cell,
    ParsedFiling,
    RowError,
    UploadRefused,
    read_upload,
)

LIMITS: dict[str, int] = {"max_bytes": 1_000_000, "max_rows": 10_000}
PILOT = "SH-TECH-MA-2025-001"
OTHER = "SH-TECH-MA-2025-002"


def read(data: bytes, filename: str = "filings.csv", **limits: int) -> list[ParsedFiling]:
    return read_upload(data, filename, **{**LIMITS, **limits})


def refusal(data: bytes, filename: str = "filings.csv", **limits: int) -> list[RowError]:
    with pytest.raises(UploadRefused) as caught:
        read(data, filename, **limits)
    assert caught.value.errors
    return caught.value.errors


def where(errors: list[RowError]) -> list[tuple[int | None, str | None]]:
    return [(e.row, e.column) for e in errors]


def csv_bytes(text: str) -> bytes:
    return text.encode("utf-8")


def xlsx_bytes(*sheets: list[list[Any]], titles: tuple[str, ...] = ()) -> bytes:
    book = openpyxl.Workbook()
    for index, rows in enumerate(sheets):
        sheet = book.active if index == 0 else book.create_sheet()
        assert sheet is not None
        if index < len(titles):
            sheet.title = titles[index]
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """The same zip with members replaced or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename not in replace:
                target.writestr(info, source.read(info.filename))
        for name, content in replace.items():
            target.writestr(name, content)
    return out.getvalue()


def patch_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size a member declares in the central directory."""
    raw = bytearray(data)
    at = raw.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", raw, at + 28)[0]
        name = bytes(raw[at + 46 : at + 46 + name_length]).decode()
        if name == member:
            struct.pack_into("<I", raw, at + 24, size)
            return bytes(raw)
        at = raw.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} not in the archive")


# --- Happy paths ---------------------------------------------------------------------------

LONG_CSV = f"""pilot,period,metric,value,currencies,regions
{PILOT},2026-10,exposure_outstanding,3200000000,,
{PILOT},2026-10,exposure_outstanding,1000000.50,USD,江苏
{PILOT},2026-10,exposure_outstanding,2000000,USD,浙江
{PILOT},2026-10,npl_ratio,0.012,,
{OTHER},2026-10,npl_ratio,0.031,,
"""


def test_long_csv_reads_headline_values_and_breakdown_rows_with_chinese_dimensions() -> None:
    first, second = read(csv_bytes(LONG_CSV))

    assert (first.pilot, first.period, first.rows) == (PILOT, "2026-10", [2, 3, 4, 5])
    assert first.metrics == {
        "exposure_outstanding": Cell("3200000000", 2, "value"),
        "npl_ratio": Cell("0.012", 5, "value"),
    }
    assert first.breakdown == [
        BreakdownCell("exposure_outstanding", Cell("1000000.50", 3, "value"), {"currencies": "USD", "regions": "江苏"}),
        BreakdownCell("exposure_outstanding", Cell("2000000", 4, "value"), {"currencies": "USD", "regions": "浙江"}),
    ]
    assert (second.pilot, second.metrics, second.breakdown, second.rows) == (
        OTHER,
        {"npl_ratio": Cell("0.031", 6, "value")},
        [],
        [6],
    )


def test_parsed_filings_are_plain_python_values_with_no_pandas_inside() -> None:
    for filing in read(csv_bytes(LONG_CSV)):
        cells = [*filing.metrics.values(), *(b.value for b in filing.breakdown)]
        assert all(type(c.text) is str and type(c.row) is int and type(c.column) is str for c in cells)
        assert all(type(v) is str for b in filing.breakdown for v in b.dimensions.values())
        assert type(filing.pilot) is str and type(filing.period) is str


def test_a_dimension_left_empty_on_a_breakdown_row_is_simply_absent() -> None:
    (filing,) = read(csv_bytes(f"pilot,period,metric,value,currencies,regions\n{PILOT},2026-10,x,5,USD,\n"))
    assert filing.metrics == {}
    assert filing.breakdown == [BreakdownCell("x", Cell("5", 2, "value"), {"currencies": "USD"})]


def test_wide_csv_reads_one_filing_per_row_and_an_empty_cell_is_not_filed() -> None:
    data = csv_bytes(
        f" Pilot ,PERIOD, Exposure_Outstanding ,npl_ratio\n{PILOT},2026-10,3200000000,0.012\n{OTHER}, 2026-10 ,,0.031\n"
    )
    first, second = read(data)
    assert (first.pilot, first.period, first.rows) == (PILOT, "2026-10", [2])
    assert first.metrics == {
        "exposure_outstanding": Cell("3200000000", 2, "Exposure_Outstanding"),
        "npl_ratio": Cell("0.012", 2, "npl_ratio"),
    }
    assert (second.period, second.metrics) == ("2026-10", {"npl_ratio": Cell("0.031", 3, "npl_ratio")})


def test_values_stay_the_exact_text_for_the_number_grammar_to_judge() -> None:
    data = csv_bytes(f'pilot,period,a,b,c,d,e\n{PILOT},2026-10,NaN,"1,000", 5,true,0012\n')
    (filing,) = read(data)
    assert {name: cell.text for name, cell in filing.metrics.items()} == {
        "a": "NaN",
        "b": "1,000",
        "c": " 5",
        "d": "true",
        "e": "0012",
    }


def test_a_utf8_bom_is_dropped() -> None:
    (filing,) = read(b"\xef\xbb\xbf" + csv_bytes(f"pilot,period,npl_ratio\n{PILOT},2026-10,0.01\n"))
    assert (filing.pilot, filing.metrics["npl_ratio"].text) == (PILOT, "0.01")


def test_quoted_fields_follow_rfc_4180_and_row_numbers_count_what_a_person_sees() -> None:
    data = csv_bytes(
        "pilot,period,metric,value,products\r\n"
        f'{PILOT},2026-10,x,1,"loans, syndicated"\r\n'
        f'{PILOT},2026-10,x,2,"say ""hi"""\r\n'
        f'{PILOT},2026-10,note,"two\r\nlines",\r\n'
        "\r\n"
        f"{PILOT},2026-10,x,3,\r\n"
    )
    (filing,) = read(data)
    assert [(b.value.row, b.dimensions) for b in filing.breakdown] == [
        (2, {"products": "loans, syndicated"}),
        (3, {"products": 'say "hi"'}),
    ]
    assert filing.metrics == {"note": Cell("two\r\nlines", 4, "value"), "x": Cell("3", 6, "value")}


def test_long_xlsx_reads_numeric_cells_as_their_shortest_text() -> None:
    data = xlsx_bytes(
        [
            ["pilot", "period", "metric", "value", "currencies", "regions"],
            [PILOT, "2026-10", "exposure_outstanding", 3200000000, None, None],
            [PILOT, "2026-10", "npl_ratio", 0.031, None, None],
            [PILOT, "2026-10", "exposure_outstanding", 1000000.5, "USD", "江苏"],
            [PILOT, "2026-10", "borrowers_count", "1,000", None, None],
            [PILOT, "2026-10", "tiny", 1e-7, None, None],
        ]
    )
    (filing,) = read(data, "filings.xlsx")
    assert {name: cell.text for name, cell in filing.metrics.items()} == {
        "exposure_outstanding": "3200000000",
        "npl_ratio": "0.031",
        "borrowers_count": "1,000",
        "tiny": "1e-07",
    }
    assert filing.breakdown == [
        BreakdownCell("exposure_outstanding", Cell("1000000.5", 4, "value"), {"currencies": "USD", "regions": "江苏"})
    ]
    assert filing.rows == [2, 3, 4, 5, 6]


def test_wide_xlsx_with_chinese_text_and_an_empty_second_sheet() -> None:
    data = xlsx_bytes(
        [
            ["Pilot", "Period", "exposure_outstanding", "remark"],
            [PILOT, "2026-Q3", 5, "江苏分行"],
            [],
            [OTHER, "2026-Q3", None, "浙江"],
        ],
        [],
        titles=("填报", "Sheet2"),
    )
    first, second = read(data, "季度.XLSX")
    assert (first.pilot, first.period, first.metrics) == (
        PILOT,
        "2026-Q3",
        {"exposure_outstanding": Cell("5", 2, "exposure_outstanding"), "remark": Cell("江苏分行", 2, "remark")},
    )
    assert (second.rows, second.metrics) == ([4], {"remark": Cell("浙江", 4, "remark")})


def test_xlsx_with_a_stale_dimension_claiming_the_whole_sheet_reads_only_its_cells() -> None:
    data = xlsx_bytes([["pilot", "period", "x"], [PILOT, "2026-10", 1]])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    forged = re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD1048576"', sheet)
    assert "XFD1048576" in forged
    started = time.perf_counter()
    (filing,) = read(rezip(data, {"xl/worksheets/sheet1.xml": forged.encode()}), "f.xlsx")
    assert time.perf_counter() - started < 2
    assert filing.metrics == {"x": Cell("1", 2, "x")}


# --- Refusals: encoding, format, header ----------------------------------------------------


def test_gbk_bytes_are_refused_naming_the_byte_offset() -> None:
    data = f"pilot,period,metric,value,regions\n{PILOT},2026-10,x,1,江苏\n".encode("gbk")
    offset = data.index("江苏".encode("gbk"))
    (error,) = refusal(data)
    assert (error.row, error.column) == (None, None)
    assert f"not UTF-8 text: byte {offset} " in error.message and "CSV UTF-8" in error.message


def test_the_byte_offset_counts_the_bom() -> None:
    (error,) = refusal(b"\xef\xbb\xbfpilot,period,x\n\xff")
    assert "byte 18 (0xFF)" in error.message


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("filings.xls", "a .xls file is not accepted; save it as .xlsx"),
        ("filings.xlsm", "a .xlsm file is not accepted"),
        ("filings.txt", "only .csv and .xlsx files are accepted"),
        ("filings", "only .csv and .xlsx files are accepted"),
    ],
)
def test_other_file_kinds_are_refused(filename: str, expected: str) -> None:
    (error,) = refusal(b"pilot,period,x\nP,2026-10,1\n", filename)
    assert expected in error.message


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf  \r\n"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    (error,) = refusal(data)
    assert error.message == "the file is empty"


def test_a_header_without_data_rows_is_refused() -> None:
    assert [e.message for e in refusal(b"pilot,period,metric,value\n,,,\n\n")] == [
        "the file has a header but no data rows"
    ]


def test_the_header_must_be_on_the_first_row() -> None:
    (csv_error,) = refusal(csv_bytes(f"\npilot,period,x\n{PILOT},2026-10,1\n"))
    (xlsx_error,) = refusal(xlsx_bytes([[], ["pilot", "period", "x"], [PILOT, "2026-10", 1]]), "f.xlsx")
    assert csv_error.message.startswith("the first row must be the header")
    assert xlsx_error.message.startswith("the first row must be the header")


def test_a_missing_required_column_is_named() -> None:
    errors = refusal(b"pilot,metric,value\nP,x,1\n")
    assert [(e.row, e.message) for e in errors] == [(1, "the header has no 'period' column")]


def test_metric_without_value_column_is_refused_with_both_formats_explained() -> None:
    (error,) = refusal(b"pilot,period,Metric,currencies\nP,2026-10,x,USD\n")
    assert (error.row, error.column) == (1, "Metric")
    assert "a 'metric' column without a 'value' column" in error.message


def test_header_names_must_be_policy_names_and_every_bad_one_is_reported() -> None:
    errors = refusal("pilot,period,Exposure Outstanding,npl-ratio,2026,风险\nP,2026-10,1,2,3,4\n".encode())
    assert where(errors) == [(1, "Exposure Outstanding"), (1, "npl-ratio"), (1, "2026"), (1, "风险")]
    assert "letters, digits and underscores" in errors[0].message


def test_duplicate_header_names_are_refused_even_when_case_and_spaces_differ() -> None:
    (error,) = refusal(b"pilot,period,npl_ratio, NPL_Ratio \nP,2026-10,1,2\n")
    assert (error.row, error.column) == (1, "NPL_Ratio")
    assert error.message == "the column name 'npl_ratio' appears twice (columns C and D)"


def test_a_wide_header_without_metric_columns_is_refused() -> None:
    (error,) = refusal(b"pilot,period\nP,2026-10\n")
    assert error.row == 1 and "no metric columns" in error.message


# --- Refusals: rows ------------------------------------------------------------------------


def test_a_repeated_headline_value_is_refused_naming_both_rows() -> None:
    data = csv_bytes(
        f"pilot,period,metric,value\n{PILOT},2026-10,npl_ratio,0.01\n{PILOT},2026-10,x,1\n{PILOT},2026-10,NPL_RATIO,0.02\n"
    )
    (error,) = refusal(data)
    assert (error.row, error.column) == (4, "metric")
    assert f"npl_ratio for {PILOT} 2026-10 is given twice (rows 2 and 4)" in error.message


def test_a_repeated_breakdown_row_is_refused_but_other_dimensions_are_not_repeats() -> None:
    data = csv_bytes(
        "pilot,period,metric,value,currencies,regions\n"
        f"{PILOT},2026-10,x,1,USD,江苏\n"
        f"{PILOT},2026-10,x,2,USD,\n"
        f"{PILOT},2026-10,x,3,EUR,江苏\n"
        f"{PILOT},2026-10,x,4, USD ,江苏\n"
    )
    (error,) = refusal(data)
    assert (error.row, error.column) == (5, "metric")
    assert "currencies=USD, regions=江苏 is given twice (rows 2 and 5)" in error.message


def test_empty_pilot_period_metric_and_value_cells_are_each_reported() -> None:
    data = csv_bytes(
        f"pilot,period,metric,value\n ,2026-10,x,1\n{PILOT},,x,1\n{PILOT},2026-10,,1\n{PILOT},2026-10,x,  \n"
    )
    errors = refusal(data)
    assert [(e.row, e.column, e.message) for e in errors] == [
        (2, "pilot", "the pilot is empty"),
        (3, "period", "the period is empty"),
        (4, "metric", "the metric is empty"),
        (5, "value", "the value is empty (leave the row out to not file the metric)"),
    ]


def test_a_long_row_missing_its_trailing_fields_has_an_empty_value() -> None:
    assert where(refusal(csv_bytes(f"pilot,period,metric,value\n{PILOT},2026-10,x\n"))) == [(2, "value")]


def test_a_metric_name_cell_must_be_a_policy_name() -> None:
    (error,) = refusal(csv_bytes(f"pilot,period,metric,value\n{PILOT},2026-10,NPL ratio,1\n"))
    assert (error.row, error.column) == (2, "metric") and "'NPL ratio' is not a metric name" in error.message


def test_a_pilot_period_on_two_wide_rows_is_refused() -> None:
    data = csv_bytes(f"pilot,period,x,y\n{PILOT},2026-10,1,\n{PILOT},2026-11,1,\n{PILOT},2026-10,,2\n")
    (error,) = refusal(data)
    assert (error.row, error.column) == (4, "pilot")
    assert f"{PILOT} 2026-10 is on rows 2 and 4" in error.message


def test_a_wide_row_without_any_value_is_refused() -> None:
    (error,) = refusal(csv_bytes(f"pilot,period,x,y\n{PILOT},2026-10,,\n"))
    assert (error.row, error.column) == (2, None) and "no metric values" in error.message


def test_every_row_with_more_fields_than_the_header_is_refused() -> None:
    data = csv_bytes(f'pilot,period,x\n{PILOT},2026-10,1,000\n{PILOT},"2026\n-11",\n{PILOT},2026-12,1,2,3\n')
    errors = refusal(data)
    assert where(errors) == [(2, None), (4, None)]
    assert errors[0].message == "the row has 4 fields but the header has 3 (quote any value that contains a comma)"
    assert errors[1].message.startswith("the row has 5 fields")


def test_values_in_a_column_without_a_header_are_refused() -> None:
    data = csv_bytes(f"pilot,period,x,\n{PILOT},2026-10,1,\n{PILOT},2026-11,2,oops\n")
    (error,) = refusal(data)
    assert (error.row, error.column) == (1, None)
    assert error.message == "column D has values (first on row 3) but no header"


def test_control_characters_in_identifiers_and_dimension_values_are_refused() -> None:
    data = csv_bytes(f'pilot,period,metric,value,regions\n{PILOT},2026-10,x,1,"江\n苏"\n{PILOT}\x00,2026-10,x,1,\n')
    assert where(refusal(data)) == [(2, "regions"), (3, "pilot")]


@pytest.mark.parametrize("tail", ["", "\n", f"\n{OTHER},2026-10,2\n{OTHER},2026-11,3"])
def test_an_unclosed_quote_is_refused_naming_its_row_and_no_row_is_dropped(tail: str) -> None:
    (error,) = refusal(csv_bytes(f'pilot,period,x\n{PILOT},2026-09,1\n{PILOT},2026-10,"1{tail}'))
    assert (error.row, error.column) == (3, None)
    assert error.message == 'a quoted value starts on this row and is never closed (a stray " ?)'


def test_every_bad_row_is_reported_not_just_the_first() -> None:
    data = csv_bytes(
        "pilot,period,metric,value,currencies\n"
        f"{PILOT},2026-10,x,1,\n"
        f",2026-10,x,1,\n"
        f"{PILOT},2026-10,x,2,\n"
        f"{PILOT},2026-10,y,,\n"
        f"{PILOT},2026-10,y,1,USD\n"
        f"{PILOT},,z,,USD\n"
    )
    assert [(e.row, e.column) for e in refusal(data)] == [
        (3, "pilot"),
        (4, "metric"),
        (5, "value"),
        (7, "period"),
        (7, "value"),
    ]


def test_the_error_list_is_capped_with_a_count_of_the_rest() -> None:
    rows = "".join(",2026-10,x,\n" for _ in range(MAX_ERRORS))  # two problems per row
    errors = refusal(csv_bytes("pilot,period,metric,value\n" + rows))
    assert len(errors) == MAX_ERRORS + 1
    assert errors[-1] == RowError(None, None, f"and {MAX_ERRORS} more problems not listed")


# --- Limits --------------------------------------------------------------------------------


def test_the_byte_limit_is_checked_before_anything_else() -> None:
    (error,) = refusal(b"\xff" * 101, "anything.exe", max_bytes=100)
    assert error.message == "the file is 101 bytes; the limit is 100"
    assert read(b"pilot,period,x\nP,2026-10,1\n", max_bytes=27)


def test_a_file_of_exactly_max_rows_rows_is_accepted() -> None:
    data = csv_bytes("pilot,period,x\n" + "".join(f"P{i},2026-10,{i}\n" for i in range(100)) + "\n\n")
    assert len(read(data, max_rows=100)) == 100


def test_a_csv_past_the_row_limit_is_refused_without_reading_the_rest() -> None:
    rows = "".join(f"P{i},2026-10,exposure_outstanding,{i}\n" for i in range(10_001))
    # Past the limit the file is unreadable; reading it at all would give another answer.
    data = csv_bytes("pilot,period,metric,value\n" + rows + 'P,2026-10,x,"unterminated\n' * 50_000)
    started = time.perf_counter()
    (error,) = refusal(data, max_bytes=10_000_000, max_rows=10_000)
    assert time.perf_counter() - started < 2
    assert error == RowError(
        None, None, "the file has more than 10000 rows after the header; the limit is 10000 (split it)"
    )


def test_an_xlsx_past_the_row_limit_is_refused() -> None:
    data = xlsx_bytes([["pilot", "period", "x"], *([PILOT, f"2026-{i:02d}", 1] for i in range(1, 7))])
    assert len(read(data, "f.xlsx", max_rows=6)) == 6
    (error,) = refusal(data, "f.xlsx", max_rows=5)
    assert "more than 5 rows after the header" in error.message


def test_too_many_columns_are_refused() -> None:
    header = "pilot,period," + ",".join(f"m{i}" for i in range(MAX_COLUMNS))
    (error,) = refusal(csv_bytes(header + "\nP,2026-10\n"))
    assert error.message == f"the file has {MAX_COLUMNS + 2} columns; at most {MAX_COLUMNS}"


def test_an_xlsx_row_with_a_cell_far_to_the_right_is_refused() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["pilot", "period", "x"])
    sheet.append([PILOT, "2026-10", 1])
    sheet.cell(row=2, column=MAX_COLUMNS + 1, value="stray")
    buffer = io.BytesIO()
    book.save(buffer)
    (error,) = refusal(buffer.getvalue(), "f.xlsx")
    assert error.row is None and f"at most {MAX_COLUMNS} columns" in error.message


# --- XLSX cell types -----------------------------------------------------------------------


def test_formula_error_and_boolean_cells_are_refused_with_row_and_column() -> None:
    data = xlsx_bytes(
        [
            ["pilot", "period", "metric", "value", "currencies"],
            [PILOT, "2026-10", "a", "=1/0", None],
            [PILOT, "2026-10", "b", "#DIV/0!", None],
            [PILOT, "2026-10", "c", "#N/A", None],
            [PILOT, "2026-10", "d", True, None],
            [PILOT, "2026-10", "e", 1, '=CONCAT("U","SD")'],
        ]
    )
    errors = refusal(data, "f.xlsx")
    assert where(errors) == [(2, "value"), (3, "value"), (4, "value"), (5, "value"), (6, "currencies")]
    assert errors[0].message == "formulas are not accepted; paste values (the cell holds =1/0)"
    assert "the error #DIV/0!" in errors[1].message and "the error #N/A" in errors[2].message
    assert "TRUE/FALSE (TRUE)" in errors[3].message


def test_a_formula_in_the_header_is_refused() -> None:
    errors = refusal(xlsx_bytes([["pilot", "period", '="x"'], [PILOT, "2026-10", 1]]), "f.xlsx")
    assert where(errors) == [(1, "C")]


def test_a_date_in_the_value_column_is_refused() -> None:
    data = xlsx_bytes([["pilot", "period", "metric", "value"], [PILOT, "2026-10", "x", date(2026, 10, 31)]])
    (error,) = refusal(data, "f.xlsx")
    assert (error.row, error.column) == (2, "value") and "is not a metric value" in error.message


def test_a_period_excel_turned_into_a_date_is_refused_with_a_hint_to_type_it_as_text() -> None:
    data = xlsx_bytes(
        [
            ["pilot", "Period", "x"],
            [PILOT, datetime(2026, 10, 1), 1],
            [OTHER, datetime(2026, 10, 26), 1],
            [PILOT, "2026-11", 1],
        ]
    )
    first, second = refusal(data, "f.xlsx")
    assert (first.row, first.column, second.row) == (2, "Period", 3)
    assert "format the period column as Text and type 2026-10" in first.message
    assert "such as 2026-10 or 2026-Q3" in second.message


def test_data_on_two_sheets_is_refused_naming_them() -> None:
    data = xlsx_bytes(
        [["pilot", "period", "x"], [PILOT, "2026-10", 1]],
        [["pilot", "period", "x"], [OTHER, "2026-10", 1]],
        titles=("十月", "hidden"),
    )
    (error,) = refusal(data, "f.xlsx")
    assert error.message.startswith("data on more than one sheet ('十月', 'hidden')")


def test_a_workbook_whose_only_data_is_on_a_later_sheet_is_read() -> None:
    data = xlsx_bytes([], [["pilot", "period", "x"], [PILOT, "2026-10", 1]])
    (filing,) = read(data, "f.xlsx")
    assert filing.metrics == {"x": Cell("1", 2, "x")}


# --- XLSX as a container -------------------------------------------------------------------


def test_a_file_named_xlsx_that_is_not_a_zip_is_refused() -> None:
    (error,) = refusal(b"pilot,period,x\n", "f.xlsx")
    assert "not an XLSX workbook" in error.message


def test_a_zip_bomb_that_inflates_far_past_the_upload_limit_is_refused_before_opening() -> None:
    small = xlsx_bytes([["pilot", "period", "x"], [PILOT, "2026-10", 1]])
    bomb = rezip(small, {"xl/media/padding.bin": bytes(30_000_000)})
    assert len(bomb) < 100_000
    started = time.perf_counter()
    (error,) = refusal(bomb, "f.xlsx", max_bytes=1_000_000)
    assert time.perf_counter() - started < 1
    assert "the workbook expands to" in error.message and "at most 20000000" in error.message


def test_a_member_claiming_a_huge_size_is_refused_without_inflating_anything() -> None:
    small = xlsx_bytes([["pilot", "period", "x"], [PILOT, "2026-10", 1]])
    forged = patch_declared_size(small, "xl/worksheets/sheet1.xml", 4_000_000_000)
    (error,) = refusal(forged, "f.xlsx")
    assert "the workbook expands to" in error.message


def test_a_member_that_inflates_past_its_declared_size_is_cut_off_and_refused() -> None:
    rows = [["pilot", "period", "x"], *([PILOT, f"2026-{i % 12 + 1:02d}", i] for i in range(2000))]
    lying = patch_declared_size(xlsx_bytes(rows), "xl/worksheets/sheet1.xml", 100)
    started = time.perf_counter()
    (error,) = refusal(lying, "f.xlsx")
    assert time.perf_counter() - started < 1
    assert error.message.startswith("the workbook could not be read (BadZipFile)")


def test_a_zip_with_too_many_entries_is_refused() -> None:
    small = xlsx_bytes([["pilot", "period", "x"], [PILOT, "2026-10", 1]])
    crowded = rezip(small, {f"xl/junk/{i}.txt": b"" for i in range(ingest.MAX_ZIP_ENTRIES)})
    (error,) = refusal(crowded, "f.xlsx")
    assert f"at most {ingest.MAX_ZIP_ENTRIES}" in error.message


def test_xml_entity_expansion_in_a_sheet_is_refused_by_defusedxml() -> None:
    small = xlsx_bytes([["pilot", "period", "x"], [PILOT, "2026-10", 1]])
    with zipfile.ZipFile(io.BytesIO(small)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    )
    hostile = laughs + sheet.replace("<t>2026-10</t>", "<t>&c;</t>")
    assert "&c;" in hostile
    (error,) = refusal(rezip(small, {"xl/worksheets/sheet1.xml": hostile.encode()}), "f.xlsx")
    assert error.message.startswith("the workbook could not be read (EntitiesForbidden)")


def test_openpyxl_parses_with_defusedxml_and_xlsx_is_not_read_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert openpyxl.DEFUSEDXML is True
    monkeypatch.setattr(openpyxl, "DEFUSEDXML", False)
    with pytest.raises(RuntimeError, match="defusedxml"):
        read(xlsx_bytes([["pilot", "period", "x"], [PILOT, "2026-10", 1]]), "f.xlsx")
