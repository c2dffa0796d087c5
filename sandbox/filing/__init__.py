"""Filings: one pilot's metrics for one reporting period (``2026-10`` monthly, ``2026-Q3``
quarterly), optionally with breakdown rows by scope dimension.

Invariants guarded here: a filing is never changed in place; filing the same pilot-period again
is refused unless it amends, with a reason, and an amendment is a new version that is evaluated
again; every version is kept and the latest counts. Values follow the one exact number grammar
(``sandbox.rules.numbers``) and are never coerced. An upload of many pilot-periods is accepted or
refused whole: ``ingest.read_upload`` reads the file (bounded in bytes, rows, columns and, for
XLSX, uncompressed size) into plain filings or reports every bad row and column, and nothing is
written unless every filing in the file passes. Text exported back to spreadsheets is never
exported as a formula (``export.safe_cell``).
"""
