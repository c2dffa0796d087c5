"""Uploads of many pilot-periods (CSV long, XLSX wide), through the API and `sandbox filings
import`: all written and judged in period order, or refused whole with every bad row listed."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest

from sandbox.config import Settings
from tests.application.test_applications_api import assert_problem
from tests.evaluation.conftest import BASE_METRICS, Live
from tests.filing.conftest import Committed, rows
from tests.support import Login

MAX_UPLOAD = 64 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A small upload limit, so "too large" is a small file."""
    return settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD})


def metrics(live: Live, **values: str) -> dict[str, str]:
    return dict(live.body("2026-01", **values)["metrics"])


def long_csv(
    lines: list[list[str]], header: tuple[str, ...] = ("pilot", "period", "metric", "value", "regions")
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return out.getvalue().encode()


def period_lines(reference: str, period: str, values: dict[str, str]) -> list[list[str]]:
    return [[reference, period, name, value, ""] for name, value in values.items()]


def wide_xlsx(lines: list[list[Any]], names: list[str]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["pilot", "period", *names])
    for line in lines:
        sheet.append(line)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(live: Live, data: bytes, name: str, login: Login | None = None) -> Any:
    return live.world.client.post(
        "/api/v1/filings/upload",
        files={"file": (name, data, "application/octet-stream")},
        headers=(login or live.world.filer_a).headers,
    )


def where(response: Any) -> list[tuple[int | None, str | None]]:
    return [(e["row"], e["column"]) for e in response.json()["errors"]]


def test_long_csv_and_wide_xlsx_are_written_and_judged_in_period_order(live: Live) -> None:
    world, reference = live.world, live.pilot["reference"]
    # March before February in the file: judged February first, so March's breach is the second.
    lines = period_lines(reference, "2026-03", metrics(live, npl_ratio="0.032"))
    lines += period_lines(reference, "2026-02", metrics(live, npl_ratio="0.031"))
    lines.append([reference, "2026-02", "exposure_outstanding", "3000000000", "Shanghai"])
    response = upload(live, long_csv(lines), "filings.csv")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["count"] == 2
    assert [(f["period"], f["version"], f["tripped"]) for f in result["filings"]] == [
        ("2026-02", 1, []),
        ("2026-03", 1, ["npl-trip"]),
    ]
    assert "npl-warn" in result["filings"][0]["breaches"]
    pilot = live.get_pilot()
    assert pilot["state"] == "suspended" and "npl-trip" in pilot["state_reason"]
    february = world.client.get(
        f"/api/v1/filings/{result['filings'][0]['id']}", headers=world.supervisor.headers
    ).json()
    assert february["current"]["channel"] == "upload"
    assert february["current"]["metrics"]["npl_ratio"] == "0.031"
    assert february["current"]["breakdown"] == [
        {"metric": "exposure_outstanding", "value": "3000000000", "dimensions": {"regions": "Shanghai"}}
    ]

    # Wide XLSX: numbers as Excel stores them, one row per pilot-period; a suspended pilot still files.
    names = list(live.catalogue)

    def row(period: str, **values: Any) -> list[Any]:
        merged: dict[str, Any] = {**{n: BASE_METRICS.get(n, "0") for n in names}, **values}
        return [reference, period, *merged.values()]

    data = wide_xlsx(
        [
            row("2026-05", npl_ratio=0.02, exposure_outstanding=3000000000),
            row("2026-04", npl_ratio=0.027, deals_count=4),
        ],
        names,
    )
    response = upload(live, data, "filings.xlsx")
    assert response.status_code == 201, response.text
    assert [f["period"] for f in response.json()["filings"]] == ["2026-04", "2026-05"]
    listed = world.client.get(f"/api/v1/pilots/{live.pilot['id']}/filings", headers=world.filer_a.headers).json()
    assert [(f["period"], f["current"]["metrics"]["npl_ratio"]) for f in listed["items"]] == [
        ("2026-05", "0.02"),
        ("2026-04", "0.027"),
        ("2026-03", "0.032"),
        ("2026-02", "0.031"),
    ]
    evaluations = world.client.get(
        f"/api/v1/pilots/{live.pilot['id']}/evaluations", headers=world.supervisor.headers
    ).json()
    assert sorted((e["period"], e["trigger"]) for e in evaluations["items"]) == [
        ("2026-02", "filing"),
        ("2026-03", "filing"),
        ("2026-04", "filing"),
        ("2026-05", "filing"),
    ]
    # The band 0.025-0.03 neither breaches nor clears: April kept the breaker tripped; May cleared.
    npl = live.breaker("npl-trip")
    assert npl["state"] == "tripped"


def test_a_file_with_bad_rows_is_refused_whole_and_lists_every_row(live: Live) -> None:
    world, reference = live.world, live.pilot["reference"]
    assert live.file("2026-02").status_code == 201
    before = rows(live.database)
    size = len(live.catalogue)
    lines = period_lines(reference, "2026-03", metrics(live))  # good rows
    lines += period_lines(reference, "2026-04", metrics(live, npl_ratio="1,000"))  # a thousands separator
    lines += [["SH-TECH-MA-2026-999", "2026-03", "npl_ratio", "0.01", ""]]  # no such pilot
    lines += [*period_lines(reference, "2026-05", metrics(live)), [reference, "2026-05", "loan_loss_ratio", "0.1", ""]]
    lines += period_lines(reference, "2026-02", metrics(live))  # already filed
    lines += [[reference, "2026-06", "npl_ratio", "0.01", ""]]  # the other metrics are missing
    # Spreadsheet row numbers: the header is row 1.
    separator = 2 + size + list(live.catalogue).index("npl_ratio")
    unknown_pilot = 2 + 2 * size
    unknown_metric = unknown_pilot + size + 1
    filed = unknown_metric + 1
    incomplete = filed + size
    response = upload(live, long_csv(lines), "filings.csv")
    body = assert_problem(response, 422, "validation-error")
    assert "nothing was written" in body["detail"]
    messages = {(e["row"], e["column"]): e["msg"] for e in body["errors"]}
    assert "'1,000' is not a plain decimal number" in messages[(separator, "value")]
    assert "SH-TECH-MA-2026-999" in messages[(unknown_pilot, "pilot")]
    assert "unknown metric 'loan_loss_ratio'" in messages[(unknown_metric, "value")]
    assert "already filed" in messages[(filed, "period")]
    missing = {
        e["msg"].removeprefix(f"{reference} 2026-06: ").split()[0] for e in body["errors"] if e["row"] == incomplete
    }
    assert missing == set(live.catalogue) - {"npl_ratio"} and len(body["errors"]) == 4 + len(missing)
    assert not any(row is not None and 2 <= row <= 1 + size for row, _ in messages)  # the good rows are not blamed
    assert rows(live.database) == before

    # Another institution's pilot reads exactly like one that does not exist.
    other = upload(live, long_csv([[reference, "2026-03", "npl_ratio", "0.01", ""]]), "filings.csv", world.bank_b)
    assert (
        assert_problem(other, 422, "validation-error")["errors"][0]["msg"]
        == f"no pilot {reference!r} of your institution"
    )

    # Wide XLSX: a bad cell is named by its row and column header.
    names = list(live.catalogue)
    bad = wide_xlsx([[reference, "2026-03", *(("12 %" if n == "top1_share" else "0") for n in names)]], names)
    refused = upload(live, bad, "filings.xlsx")
    assert_problem(refused, 422, "validation-error")
    assert where(refused) == [(2, "top1_share")]
    assert rows(live.database) == before


def test_too_large_not_utf8_and_bureau_uploads_are_refused(live: Live) -> None:
    world, reference = live.world, live.pilot["reference"]
    before = rows(live.database)
    good = long_csv(period_lines(reference, "2026-03", metrics(live)))
    padded = good + b"\n" * (MAX_UPLOAD + 1)
    assert_problem(upload(live, padded, "filings.csv"), 413, "payload-too-large")
    gbk = long_csv([[reference, "2026-03", "npl_ratio", "0.01", "上海"]]).decode().encode("gbk")
    refused = upload(live, gbk, "filings.csv")
    body = assert_problem(refused, 422, "validation-error")
    assert "not UTF-8" in body["errors"][0]["msg"]
    assert_problem(upload(live, good, "filings.csv", world.supervisor), 403, "forbidden")
    assert_problem(upload(live, good, "filings.txt"), 422, "validation-error")
    assert rows(live.database) == before
    assert upload(live, good, "filings.csv").status_code == 201


def test_cli_import_writes_a_good_file_and_refuses_a_bad_one_whole(committed: Committed, tmp_path: Path) -> None:
    live, reference = committed.live, committed.live.pilot["reference"]
    email = live.world.filer_a.user.email
    bad = tmp_path / "bad.csv"
    lines = period_lines(reference, "2026-02", metrics(live, npl_ratio="0.031"))
    lines += period_lines(reference, "2026-03", metrics(live, npl_ratio="NaN"))
    lines += [["SH-TECH-MA-2026-999", "2026-03", "npl_ratio", "0.01", ""]]
    unknown_pilot = 2 + 2 * len(live.catalogue)
    bad.write_bytes(long_csv(lines))
    before = committed.rows()
    result = committed.sandbox("filings", "import", str(bad), "--user", email)
    assert result.exit_code == 2, result.output
    npl_row = 2 + len(live.catalogue) + list(live.catalogue).index("npl_ratio")
    assert f"bad.csv:{npl_row}: value:" in result.stderr and f"bad.csv:{unknown_pilot}: pilot:" in result.stderr
    assert "nothing was written" in result.stderr
    assert committed.rows() == before

    good = tmp_path / "good.csv"
    lines = period_lines(reference, "2026-03", metrics(live, npl_ratio="0.032"))
    lines += period_lines(reference, "2026-02", metrics(live, npl_ratio="0.031"))
    good.write_bytes(long_csv(lines))
    result = committed.sandbox("filings", "import", str(good), "--user", email)
    assert result.exit_code == 0, result.output
    assert "imported 2 filing(s) from good.csv; 1 breaker(s) tripped" in result.stdout
    after = committed.rows()
    assert (after.filings, after.versions, after.evaluations) == (
        before.filings + 2,
        before.versions + 2,
        before.evaluations + 2,
    )
    assert live.get_pilot()["state"] == "suspended"

    # The same file again: every period is already filed, so nothing more is written.
    again = committed.sandbox("filings", "import", str(good), "--user", email)
    assert again.exit_code == 2 and "already filed" in again.stderr
    bureau = committed.sandbox("filings", "import", str(good), "--user", live.world.supervisor.user.email)
    assert bureau.exit_code == 3
    assert committed.rows() == after
