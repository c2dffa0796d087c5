from __future__ import annotations

import csv
import io

import pytest

from sandbox.filing.export import filings_to_csv, safe_cell


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("plain text", "plain text"),
        ("江苏分行", "江苏分行"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_safe_cell_neutralises_text_a_spreadsheet_would_run(text: str, expected: str) -> None:
    assert safe_cell(text) == expected


def read_back(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def test_export_guards_text_but_keeps_numbers_as_numbers() -> None:
    rows = [
        {"pilot": "SH-TECH-MA-2025-001", "metric": "npl_ratio", "value": "0.031", "note": "=cmd|' /C calc'!A0"},
        {"pilot": "SH-TECH-MA-2025-001", "metric": "net_flow", "value": "-5", "note": "+1+1"},
        {"pilot": "SH-TECH-MA-2025-001", "metric": "tiny", "value": "-1e-7", "note": "@SUM(A1)"},
        {"pilot": "-5+cmd|' /C calc'!A0", "metric": "x", "value": "-5+cmd|' /C calc'!A0", "note": "江苏, 浙江"},
    ]
    data = filings_to_csv(rows, ["pilot", "metric", "value", "note"])
    assert read_back(data) == [
        ["pilot", "metric", "value", "note"],
        ["SH-TECH-MA-2025-001", "npl_ratio", "0.031", "'=cmd|' /C calc'!A0"],
        ["SH-TECH-MA-2025-001", "net_flow", "-5", "'+1+1"],
        ["SH-TECH-MA-2025-001", "tiny", "-1e-7", "'@SUM(A1)"],
        ["'-5+cmd|' /C calc'!A0", "x", "'-5+cmd|' /C calc'!A0", "江苏, 浙江"],
    ]


def test_export_writes_crlf_rows_a_missing_key_as_empty_and_guards_headers() -> None:
    data = filings_to_csv([{"a": "1"}], ["a", "=b"])
    assert data == "\ufeffa,'=b\r\n1,\r\n".encode()
