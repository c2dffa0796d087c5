"""The filings pages and the due/overdue list behind them: what is due and overdue as the clock
moves, the spreadsheet upload page (accepted whole, or refused whole with every row's problem
listed), one filing with its versions and evaluation, and tenancy."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date
from html import unescape
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest
from fastapi.testclient import TestClient

from sandbox.clock import FixedClock
from sandbox.config import Settings
from sandbox.db import Database
from sandbox.filing.due import due_filings, overdue_filings, upload_template
from sandbox.main import create_app
from sandbox.pilot.service import activate_due
from sandbox.program.calendars import load_calendars
from sandbox.rules.calendar import WorkingCalendar
from sandbox.web.auth import COOKIE_NAME, encode_session, new_session
from tests.evaluation.conftest import BASE_METRICS, Live, at
from tests.filing.conftest import rows, start_live
from tests.support import ROOT, Login
from tests.web.conftest import Browser
from tests.world import World

CALENDARS: dict[str, WorkingCalendar] = load_calendars(ROOT / "policies")
MakeBrowser = Callable[[Login | None], Browser]


@pytest.fixture(name="live")
def live_world(world: World, clock: FixedClock, database: Database) -> Live:
    """The `live` world of tests/evaluation: an active BANK-A pilot from 2026-02, clock at 2026-11-20."""
    return start_live(world, clock, database)


# --- helpers -------------------------------------------------------------------------------------


def signed_in(browser: MakeBrowser, settings: Settings, live: Live, login: Login) -> Browser:
    """A browser signed in at the live world's clock (the fixture moves it away from NOW)."""
    page = browser(None)
    session = new_session(login.user.id, now=live.clock.now())
    page.client.cookies.set(COOKIE_NAME, encode_session(settings, session))
    return page


def listed(live: Live, login: Login, day: str) -> list[tuple[str, str, str, int]]:
    with live.database.sessions() as session:
        found = due_filings(session, actor=login.actor, as_of=date.fromisoformat(day), calendars=CALENDARS)
    return [(f.pilot_reference, f.period.label, f.status, f.days_overdue) for f in found]


def metric_values(live: Live, **values: str) -> dict[str, str]:
    return dict(live.body("2026-01", **values)["metrics"])


def long_csv(lines: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["pilot", "period", "metric", "value", "regions"])
    writer.writerows(lines)
    return out.getvalue().encode()


def period_lines(reference: str, period: str, values: dict[str, str]) -> list[list[str]]:
    return [[reference, period, name, value, ""] for name, value in values.items()]


def wide_xlsx(live: Live, lines: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    names = list(live.catalogue)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["pilot", "period", *names])
    for reference, period, values in lines:
        merged: dict[str, Any] = {**{n: BASE_METRICS.get(n, "0") for n in names}, **values}
        sheet.append([reference, period, *(merged[n] for n in names)])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def send(page: Browser, data: bytes | None, name: str = "filings.csv", *, csrf: bool = True) -> Any:
    """Post the upload form as a browser does: multipart, CSRF token from the page, Referer."""
    files = (
        {"file": (name, data, "application/octet-stream")}
        if data is not None
        else {"file": ("", b"", "application/octet-stream")}
    )
    if not csrf:
        return page.client.post(
            "/filings/upload",
            files=files,
            headers={"Referer": "http://testserver/filings/upload"},
            follow_redirects=False,
        )
    return page.submit("/filings/upload", "/filings/upload", {}, files=files)


def problem_rows(html: str) -> list[tuple[str, str, str, str]]:
    """The cells of the "Problems in the file" table."""
    table = html.split("<caption>Problems in the file</caption>", 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        found.append((cells[0], cells[1], cells[2], cells[3]))
    return found


def section(html: str, heading: str) -> str:
    """The part of a page from an <h2> to the next one."""
    return html.split(f">{heading}</h2>", 1)[1].split("<h2", 1)[0]


def bank_b_pilot(live: Live) -> dict[str, Any]:
    """An active BANK-B pilot in the same program, from June 2026."""
    now = live.clock.at
    live.clock.at = at("2026-01-05")
    pilot = live.world.to_pilot(
        live.world.bank_b, start_on="2026-06-01", end_on="2027-12-31", requested_quotas={"exposure_limit": "4000000000"}
    )
    with live.database.unit_of_work() as session:
        activate_due(session, as_of=date(2026, 6, 1), at=at("2026-06-01"))
    live.clock.at = now
    return pilot


# --- the due list ----------------------------------------------------------------------------------


def test_periods_become_due_then_overdue_as_the_clock_moves(live: Live) -> None:
    reference, filer = live.pilot["reference"], live.world.filer_a
    # Before February ends, the next period is shown with its due date: 10 working days after.
    assert listed(live, filer, "2026-02-10") == [(reference, "2026-02", "due", 0)]
    with live.database.sessions() as session:
        (first,) = due_filings(session, actor=filer.actor, as_of=date(2026, 2, 10), calendars=CALENDARS)
    assert (first.due_on, first.can_file, first.due_estimated) == (date(2026, 3, 13), False, False)
    assert (first.period.start, first.period.end) == (date(2026, 2, 1), date(2026, 2, 28))
    assert (first.institution_code, first.pilot_title) == ("BANK-A", live.pilot["title"])
    # On its due date it is still due (and can be filed); the day after, one day overdue, and
    # March is next.
    assert listed(live, filer, "2026-03-13") == [(reference, "2026-02", "due", 0)]
    assert listed(live, filer, "2026-03-14") == [(reference, "2026-02", "overdue", 1), (reference, "2026-03", "due", 0)]
    # On the fixture's date (2026-11-20): February to October overdue, the most overdue first.
    now = listed(live, filer, "2026-11-20")
    months = [f"2026-{m:02d}" for m in range(2, 11)]
    assert [p for _, p, s, _ in now if s == "overdue"] == months
    assert now[-1] == (reference, "2026-11", "due", 0)
    assert now[-2] == (reference, "2026-10", "overdue", 7)  # due 2026-11-13
    days = [d for _, _, s, d in now if s == "overdue"]
    assert days == sorted(days, reverse=True) and days[0] == (date(2026, 11, 20) - date(2026, 3, 13)).days


def test_filed_periods_leave_the_list_and_overdue_keeps_only_the_late_ones(live: Live) -> None:
    for period in ("2026-02", "2026-03", "2026-10"):
        assert live.file(period).status_code == 201
    filer, supervisor = live.world.filer_a, live.world.supervisor
    periods = [p for _, p, _, _ in listed(live, filer, "2026-11-20")]
    assert periods == ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-11"]
    with live.database.sessions() as session:
        overdue = overdue_filings(session, actor=supervisor.actor, as_of=date(2026, 11, 20), calendars=CALENDARS)
    assert [f.period.label for f in overdue] == ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]
    assert all(f.status == "overdue" and f.past_grace for f in overdue)
    # With every past period filed, only the next one is listed, as due.
    for period in ("2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"):
        assert live.file(period).status_code == 201
    assert listed(live, filer, "2026-11-20") == [(live.pilot["reference"], "2026-11", "due", 0)]
    with live.database.sessions() as session:
        assert overdue_filings(session, actor=filer.actor, as_of=date(2026, 11, 20), calendars=CALENDARS) == []


def test_institutions_see_their_own_pilots_and_the_bureau_sees_all(live: Live) -> None:
    other = bank_b_pilot(live)
    world = live.world
    mine = {r for r, _, _, _ in listed(live, world.filer_a, "2026-11-20")}
    theirs = {r for r, _, _, _ in listed(live, world.bank_b, "2026-11-20")}
    everyone = listed(live, world.supervisor, "2026-11-20")
    assert mine == {live.pilot["reference"]} and theirs == {other["reference"]}
    assert {r for r, _, _, _ in everyone} == mine | theirs
    assert listed(live, world.bank_c, "2026-11-20") == []
    # Across pilots, overdue first and the most overdue first: BANK-A's February leads.
    assert everyone[0][:2] == (live.pilot["reference"], "2026-02")
    statuses = [s for _, _, s, _ in everyone]
    assert statuses == sorted(statuses, key=lambda s: s != "overdue")


def test_pilots_that_take_no_filings_are_not_listed(live: Live) -> None:
    world = live.world
    suspended = world.client.post(
        f"/api/v1/pilots/{live.pilot['id']}/suspend", json={"reason": "complaints"}, headers=world.supervisor.headers
    )
    assert suspended.status_code == 200
    assert listed(live, world.supervisor, "2026-11-20")  # a suspended pilot still files
    ended = world.client.post(
        f"/api/v1/pilots/{live.pilot['id']}/terminate", json={"reason": "ended"}, headers=world.approver.headers
    )
    assert ended.status_code == 200, ended.text
    assert listed(live, world.supervisor, "2026-11-20") == []


def test_without_the_calendar_deadlines_are_counted_on_weekdays_and_marked_estimated(live: Live) -> None:
    with live.database.sessions() as session:
        found = due_filings(session, actor=live.world.filer_a.actor, as_of=date(2026, 2, 10), calendars={})
    assert [(f.period.label, f.due_estimated) for f in found] == [("2026-02", True)]
    assert found[0].due_on == date(2026, 3, 13)  # no holiday in between: the same day as the calendar's


def test_the_upload_template_lists_each_metric_of_each_period_to_file(live: Live) -> None:
    assert live.file("2026-02").status_code == 201
    with live.database.sessions() as session:
        template = upload_template(
            session, actor=live.world.filer_a.actor, as_of=date(2026, 3, 20), calendars=CALENDARS
        )
        bureau = upload_template(
            session, actor=live.world.supervisor.actor, as_of=date(2026, 3, 20), calendars=CALENDARS
        )
    # 2026-02 is filed, 2026-03 has not ended: nothing to fill in yet.
    assert template == [] and bureau == []
    with live.database.sessions() as session:
        template = upload_template(session, actor=live.world.filer_a.actor, as_of=date(2026, 4, 1), calendars=CALENDARS)
    assert [(r["pilot"], r["period"], r["metric"], r["value"]) for r in template] == [
        (live.pilot["reference"], "2026-03", name, "") for name in sorted(live.catalogue)
    ]


# --- GET /filings ----------------------------------------------------------------------------------


def test_an_institution_user_sees_filings_due_overdue_first_with_an_upload_link(
    live: Live, browser: MakeBrowser, settings: Settings
) -> None:
    assert live.file("2026-09").status_code == 201
    page = signed_in(browser, settings, live, live.world.filer_a).get("/filings")
    assert page.status_code == 200
    html = page.text
    assert html.count("<h1>") == 1 and "<h1>Filings</h1>" in html
    due = section(html, "Filings due").split("<tbody>", 1)[1]
    assert "Overdue: 7 days" in due and "2026-10" in due  # due 2026-11-13
    assert due.index("<td>2026-02 ") < due.index("<td>2026-10 ") < due.index("<td>2026-11 ")
    assert "<td>2026-09 " not in due
    assert '<span class="state state-due">Due</span>' in due
    assert 'Can be filed after the period ends on <time datetime="2026-11-30">2026-11-30</time>' in due
    assert due.count('<a href="/filings/upload">Upload a spreadsheet</a>') == 8  # 2026-02..08 and 10
    assert f'<a href="/pilots/{live.pilot["id"]}">{live.pilot["reference"]}</a>' in due
    recent = section(html, "Recent filings")
    assert "2026-09" in recent and "API" in recent
    assert "Overdue filings" not in html

    # Another bank's users see nothing of BANK-A's pilot.
    other = signed_in(browser, settings, live, live.world.bank_b).get("/filings").text
    assert live.pilot["reference"] not in other
    assert "Nothing is due" in other and "No filings yet." in other


def test_the_bureau_sees_overdue_filings_of_every_pilot_and_filters_recent_ones(
    live: Live, browser: MakeBrowser, settings: Settings
) -> None:
    other = bank_b_pilot(live)
    assert live.file("2026-02").status_code == 201
    supervisor = signed_in(browser, settings, live, live.world.supervisor)
    html = supervisor.get("/filings").text
    overdue = section(html, "Overdue filings")
    assert live.pilot["reference"] in overdue and other["reference"] in overdue
    assert "BANK-A" in overdue and "BANK-B" in overdue
    assert "<td>2026-11 " not in overdue  # not overdue: the bureau's list is the overdue queue
    assert "Filings due" not in html and "Upload a spreadsheet" not in html
    assert '<label for="pilot-filter">Pilot</label>' in html

    filtered = supervisor.get(f"/filings?pilot={other['id']}").text
    assert live.pilot["reference"] not in section(filtered, "Overdue filings")
    assert "No filings for this pilot yet." in filtered
    everything = supervisor.get("/filings?pilot=").text
    (filing_link,) = re.findall(r'href="/filings/([0-9a-f-]{36})"', section(everything, "Recent filings"))
    assert filing_link
    assert supervisor.get("/filings?pilot=not-an-id").status_code == 404
    # A bank user cannot filter on another bank's pilot.
    assert (
        signed_in(browser, settings, live, live.world.filer_a).get(f"/filings?pilot={other['id']}").status_code == 404
    )


# --- the upload page -------------------------------------------------------------------------------


def test_the_upload_page_has_the_form_the_columns_and_a_template(
    live: Live, browser: MakeBrowser, settings: Settings
) -> None:
    filer = signed_in(browser, settings, live, live.world.filer_a)
    html = filer.get("/filings/upload").text
    assert '<label for="upload-file">Spreadsheet (CSV or XLSX)</label>' in html
    assert 'type="file" id="upload-file" name="file" accept=".csv,.xlsx"' in html
    assert '<button type="submit">Upload</button>' in html
    assert 'enctype="multipart/form-data"' in html and 'name="csrf_token"' in html
    assert "Long format" in html and "Wide format" in html and "<code>metric</code>" in html
    template = filer.get("/filings/template.csv")
    assert template.status_code == 200 and template.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(template.content.decode("utf-8-sig"))))
    assert lines[0] == ["pilot", "period", "metric", "value"]
    assert {(line[0], line[1]) for line in lines[1:]} == {
        (live.pilot["reference"], f"2026-{m:02d}") for m in range(2, 11)
    }
    assert len(lines) == 1 + 9 * len(live.catalogue)

    # Bureau users do not upload: the upload service refuses them.
    supervisor = signed_in(browser, settings, live, live.world.supervisor)
    refused = supervisor.get("/filings/upload")
    assert refused.status_code == 403 and "Upload filings needs the role" in refused.text
    bureau_template = supervisor.get("/filings/template.csv")
    assert bureau_template.content.decode("utf-8-sig").splitlines() == ["pilot,period,metric,value"]


def test_a_good_csv_is_recorded_and_shown_in_the_list_and_on_the_filing_page(
    live: Live, browser: MakeBrowser, settings: Settings
) -> None:
    reference = live.pilot["reference"]
    before = rows(live.database)
    lines = period_lines(reference, "2026-03", metric_values(live, npl_ratio="0.032"))
    lines += period_lines(reference, "2026-02", metric_values(live, npl_ratio="0.031"))
    lines.append([reference, "2026-02", "exposure_outstanding", "1000000000", "上海"])
    filer = signed_in(browser, settings, live, live.world.filer_a)
    response = send(filer, long_csv(lines))
    assert response.status_code == 303 and response.headers["location"] == "/filings"
    after = rows(live.database)
    assert (after.filings, after.versions) == (before.filings + 2, before.versions + 2)
    page = filer.follow(response)
    notice = re.search(r'<p class="flash flash-notice"[^>]*>(.*?)</p>', page.text, re.S)
    assert notice is not None
    text = notice.group(1)
    assert f"The file was accepted: 2 filings recorded: {reference} 2026-02, {reference} 2026-03." in text
    # 上海 is not a granted region (Shanghai is): a scope breach; npl-trip trips on its second breach.
    assert f"2 breakers tripped: within-scope ({reference} 2026-02), npl-trip ({reference} 2026-03)." in text
    assert f"2 warnings: npl-warn ({reference} 2026-02), npl-warn ({reference} 2026-03)." in text
    recent = section(page.text, "Recent filings")
    assert "2026-02" in recent and "2026-03" in recent and "Spreadsheet upload" in recent
    due = section(page.text, "Filings due")
    assert "2026-02" not in due and "2026-03" not in due

    march = re.search(r'href="/filings/([0-9a-f-]{36})">2026-03<', recent)
    assert march is not None
    html = filer.get(f"/filings/{march.group(1)}").text
    assert f"<h1>Filing 2026-03 of {reference}</h1>" in html
    assert f'<a href="/pilots/{live.pilot["id"]}">{reference}</a>' in html
    assert '<time datetime="2026-03-01">2026-03-01</time> to <time datetime="2026-03-31">2026-03-31</time>' in html
    assert "<dt>Channel</dt>\n  <dd>Spreadsheet upload</dd>" in html
    assert '<th scope="row">npl_ratio</th><td class="number">0.032</td><td>ratio</td>' in html
    assert f'href="/audit?object_type=filing&amp;object_id={march.group(1)}">Audit trail</a>' in html
    evaluation = section(html, "Evaluation of 2026-03")
    npl_row = evaluation.split('<th scope="row">npl-trip</th>', 1)[1].split("</tr>", 1)[0]
    breaker = re.search(r'<a href="/breakers/([0-9a-f-]{36})">Breaker tripped</a>', npl_row)
    assert breaker is not None and breaker.group(1) == live.breaker("npl-trip")["id"]
    assert "NPL ratio 0.032 at or above the 3% trip level" in evaluation
    assert live.world.filer_a.user.email in section(html, "Versions")

    february = re.search(r'href="/filings/([0-9a-f-]{36})">2026-02<', recent)
    assert february is not None
    breakdown = filer.get(f"/filings/{february.group(1)}").text
    assert "regions: 上海" in breakdown


def test_a_good_xlsx_is_recorded(live: Live, browser: MakeBrowser, settings: Settings) -> None:
    reference = live.pilot["reference"]
    data = wide_xlsx(live, [(reference, "2026-05", {"npl_ratio": 0.015}), (reference, "2026-04", {"deals_count": 4})])
    filer = signed_in(browser, settings, live, live.world.filer_a)
    before = rows(live.database)
    response = send(filer, data, "filings.xlsx")
    assert response.status_code == 303, response.text
    assert rows(live.database).filings == before.filings + 2
    page = filer.follow(response).text
    assert f"2 filings recorded: {reference} 2026-04, {reference} 2026-05." in page
    assert "No breaker tripped and no warning was raised." in page


def test_a_bad_csv_is_refused_whole_with_every_row_problem_listed(
    live: Live, browser: MakeBrowser, settings: Settings
) -> None:
    reference = live.pilot["reference"]
    assert live.file("2026-02").status_code == 201
    before = rows(live.database)
    size = len(live.catalogue)
    lines = period_lines(reference, "2026-03", metric_values(live))  # good rows
    lines += period_lines(reference, "2026-04", metric_values(live, npl_ratio="1,000"))
    lines += [["SH-TECH-MA-2026-999", "2026-03", "npl_ratio", "0.01", ""]]
    lines += period_lines(reference, "2026-05", metric_values(live, deals_count="NaN"))
    lines += period_lines(reference, "2026-02", metric_values(live))  # already filed
    separator = 2 + size + list(live.catalogue).index("npl_ratio")
    unknown_pilot = 2 + 2 * size
    not_a_number = unknown_pilot + 1 + list(live.catalogue).index("deals_count")
    filed = unknown_pilot + 1 + size
    filer = signed_in(browser, settings, live, live.world.filer_a)
    response = send(filer, long_csv(lines))
    assert response.status_code == 422
    html = response.text
    assert "The file was not accepted: 4 problems in 4 rows. Nothing was recorded." in html
    found = problem_rows(html)
    assert [(row, column) for row, column, _, _ in found] == [
        (str(separator), "value"),
        (str(unknown_pilot), "pilot"),
        (str(not_a_number), "value"),
        (str(filed), "period"),
    ]
    by_row = {row: (value, problem) for row, _, value, problem in found}
    assert by_row[str(separator)][0] == "1,000" and "not a plain decimal number" in by_row[str(separator)][1]
    assert by_row[str(unknown_pilot)] == ("SH-TECH-MA-2026-999", "No pilot 'SH-TECH-MA-2026-999' of your institution")
    assert by_row[str(not_a_number)][0] == "NaN"
    assert by_row[str(filed)][0] == "2026-02" and "already filed" in by_row[str(filed)][1]
    assert '<label for="upload-file">Spreadsheet (CSV or XLSX)</label>' in html  # the form, to try again
    assert rows(live.database) == before


def test_problems_found_while_reading_are_listed_too(live: Live, browser: MakeBrowser, settings: Settings) -> None:
    reference = live.pilot["reference"]
    text = f"pilot,period,metric,value\n{reference},2026-03,,0.01\n,2026-03,npl_ratio,0.01\n{reference},2026-03,npl_ratio,\n"
    filer = signed_in(browser, settings, live, live.world.filer_a)
    response = send(filer, text.encode())
    assert response.status_code == 422
    assert "The file was not accepted: 3 problems in 3 rows. Nothing was recorded." in response.text
    assert [(row, column) for row, column, _, _ in problem_rows(response.text)] == [
        ("2", "metric"),
        ("3", "pilot"),
        ("4", "value"),
    ]


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "filings.csv", "The file was not accepted: the file is empty. Nothing was recorded."),
        (b"\x00\x01garbage\xff", "filings.xlsx", "not an XLSX workbook"),
        (b"\xff\xfe\x00garbage", "filings.csv", "not UTF-8 text"),
        (b"pilot,period,npl_ratio\n", "filings.txt", "only .csv and .xlsx files are accepted"),
        (None, "", "no file was chosen"),
    ],
)
def test_empty_garbage_wrong_type_and_missing_files_are_refused_with_a_clear_message(
    live: Live, browser: MakeBrowser, settings: Settings, data: bytes | None, name: str, message: str
) -> None:
    before = rows(live.database)
    filer = signed_in(browser, settings, live, live.world.filer_a)
    response = send(filer, data, name)
    assert response.status_code == 422
    assert message in response.text
    assert "Nothing was recorded." in response.text and "<caption>Problems in the file</caption>" in response.text
    assert rows(live.database) == before


def test_another_banks_pilot_reference_is_refused(live: Live, browser: MakeBrowser, settings: Settings) -> None:
    before = rows(live.database)
    lines = period_lines(live.pilot["reference"], "2026-03", metric_values(live))
    other = signed_in(browser, settings, live, live.world.bank_b)
    response = send(other, long_csv(lines))
    assert response.status_code == 422
    assert f"No pilot &#39;{live.pilot['reference']}&#39; of your institution" in response.text
    assert rows(live.database) == before


def test_an_upload_without_its_csrf_token_is_refused_before_anything_is_read(
    live: Live, browser: MakeBrowser, settings: Settings
) -> None:
    before = rows(live.database)
    filer = signed_in(browser, settings, live, live.world.filer_a)
    good = long_csv(period_lines(live.pilot["reference"], "2026-03", metric_values(live)))
    response = send(filer, good, csrf=False)
    assert response.status_code == 403 and "This form has expired" in response.text
    assert rows(live.database) == before


def test_a_bureau_upload_is_refused_by_the_upload_service(live: Live, browser: MakeBrowser, settings: Settings) -> None:
    before = rows(live.database)
    supervisor = signed_in(browser, settings, live, live.world.supervisor)
    good = long_csv(period_lines(live.pilot["reference"], "2026-03", metric_values(live)))
    token = signed_in(browser, settings, live, live.world.filer_a)  # a page with a form to take a token from
    assert token.get("/filings/upload").status_code == 200
    response = supervisor.client.post(
        "/filings/upload",
        data={"csrf_token": supervisor.csrf("/filings")},
        files={"file": ("filings.csv", good, "text/csv")},
        headers={"Referer": "http://testserver/filings"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "Upload filings needs the role" in supervisor.follow(response).text
    assert rows(live.database) == before


# --- one filing ------------------------------------------------------------------------------------


def test_the_filing_page_shows_corrections_and_is_refused_to_another_bank(
    live: Live, browser: MakeBrowser, settings: Settings
) -> None:
    world = live.world
    first = live.file("2026-02")
    assert first.status_code == 201
    filing_id = first.json()["id"]
    amended = world.client.post(
        f"/api/v1/pilots/{live.pilot['id']}/filings",
        json={**live.body("2026-02", npl_ratio="0.021"), "amends": True, "reason": "NPL ratio corrected after audit"},
        headers=world.bank_a.headers,
    )
    assert amended.status_code == 201, amended.text
    html = signed_in(browser, settings, live, world.filer_a).get(f"/filings/{filing_id}").text
    versions = section(html, "Versions")
    assert "npl_ratio: 0.01 → 0.021" in versions and "NPL ratio corrected after audit" in versions
    assert "First filing" in versions and world.bank_a.user.email in versions
    assert versions.index("<td>2</td>") < versions.index("<td>1</td>")  # the latest first
    assert '<td class="number">0.021</td>' in section(html, "Metric values")
    evaluation = section(html, "Evaluation of 2026-02")
    assert "Latest evaluation" in evaluation and "Earlier evaluation" in evaluation
    assert "Triggered by amendment of version 2" in evaluation and "npl-warn" in evaluation

    assert signed_in(browser, settings, live, world.supervisor).get(f"/filings/{filing_id}").status_code == 200
    refused = signed_in(browser, settings, live, world.bank_b).get(f"/filings/{filing_id}")
    assert refused.status_code == 404 and "No such filing" in refused.text
    assert signed_in(browser, settings, live, world.filer_a).get("/filings/not-an-id").status_code == 404
    assert signed_in(browser, settings, live, world.filer_a).get(f"/filings/{live.pilot['id']}").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(live: Live, browser: MakeBrowser) -> None:
    response = browser(None).get("/filings", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")


def test_a_form_sent_without_a_file_part_is_refused_with_the_upload_page(
    live: Live, browser: MakeBrowser, settings: Settings
) -> None:
    filer = signed_in(browser, settings, live, live.world.filer_a)
    response = filer.submit("/filings/upload", "/filings/upload", {})
    assert response.status_code == 422
    assert "The file was not accepted: no file was chosen" in response.text


def test_a_file_over_the_size_limit_gets_a_page_not_json(
    settings: Settings, database: Database, clock: FixedClock, world: World
) -> None:
    app = create_app(settings.model_copy(update={"max_upload_bytes": 2000}), database=database, clock=clock)
    with TestClient(app) as client:
        client.cookies.set(COOKIE_NAME, encode_session(settings, new_session(world.filer_a.user.id, now=clock.now())))
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/filings/upload").text)
        assert token is not None
        big = b"pilot,period,metric,value\n" + b"X,2026-03,npl_ratio,0.01\n" * 200
        response = client.post(
            "/filings/upload",
            data={"csrf_token": token.group(1)},
            files={"file": ("big.csv", big, "text/csv")},
            headers={"Accept": "text/html,application/xhtml+xml"},
        )
    assert response.status_code == 413 and response.headers["content-type"].startswith("text/html")
    assert "The upload exceeds the limit of 0.002 MB; nothing was recorded." in response.text
