"""CSV export that a spreadsheet opens safely.

Text a spreadsheet would run as a formula (OWASP "CSV injection": a cell starting with ``=``,
``+``, ``-``, ``@``, tab or carriage return) gets a leading apostrophe, so it shows as the text it
is. Numbers in the exact number grammar are left alone: ``-5`` is a number, not a formula;
``-5+cmd|' /C calc'!A0`` is not a number and is guarded. The file starts with a UTF-8 BOM so
Excel reads Chinese text correctly."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from sandbox.rules.numbers import parse_exact

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UTF8_BOM = "\ufeff"


def safe_cell(text: str) -> str:
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _export_cell(text: str) -> str:
    if text.startswith(_FORMULA_START) and _is_number(text):
        return text
    return safe_cell(text)


def _is_number(text: str) -> bool:
    try:
        parse_exact(text)
    except ValueError:
        return False
    return True


def filings_to_csv(rows: Iterable[Mapping[str, str]], columns: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    buffer.write(_UTF8_BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(column) for column in columns])
    for row in rows:
        writer.writerow([_export_cell(row.get(column, "")) for column in columns])
    return buffer.getvalue().encode("utf-8")
