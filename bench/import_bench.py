"""Bulk CSV import, rows per second, against a plain pandas read of the same file.

The file is a long-format CSV (``pilot, period, metric, value``) of one institution's pilots:
``--sizes 50x24`` is 50 pilots x 24 months x the 8 metrics of SH-TECH-MA's catalogue, 9,600 rows,
each value decimal text as a bank writes it (``filing_latency.metrics_for``), month by month, all
the pilots' rows for a month before the next month. Four things are timed on the same bytes:

- (a) ``pandas.read_csv(BytesIO(data), dtype=str)``: the floor, reading text into a DataFrame;
  and, as a second line, ``read_csv`` with the options ``read_upload`` passes it (no NA detection,
  blank lines kept, the C engine) on the decoded text;
- (b) ``read_upload`` alone: decoding, pandas, and every row's checks, into ``ParsedFiling``s;
- (c) the whole import in one unit of work, as ``sandbox filings import`` runs it: ``read_upload``,
  then ``import_filings`` (the pilots locked, every value parsed exactly and every filing
  admitted, then each written with its audit entry and judged under the program's rules, its
  breakers stepped and its alerts written, in period order per pilot), then the commit. Once on
  a fresh SQLite file and once on a fresh PostgreSQL database.

(a) and (b) are each the best of ``--repeat`` runs, interleaved round by round so they see the
same load; (c) runs once per backend and size (a second run needs a fresh database).

The pilots are set up through the services (``filing_latency.set_up``: the shipped SH-TECH-MA
rules, no aggregate quota cap). The import's clock is five days after December 2026 ends, so
only December is on time; every earlier month is late and breaches the ``filing-late`` warn rule,
which writes a ``rule.warning`` alert with its filing (the API path does the same).

    .venv/bin/python bench/import_bench.py [--sizes 50x24[,200x24] --repeat 5 --seed 1]
                                           [--backend sqlite|postgresql|both]

PostgreSQL: ``SANDBOX_TEST_POSTGRES_URL`` (the tests' default:
postgresql+psycopg://postgres@127.0.0.1:5432/postgres); the benchmark creates its own database
there and drops it afterwards, and skips PostgreSQL, saying why, when no server answers.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from filing_latency import (
    LAST_PERIOD,
    RESULTS,
    ROOT,
    BenchPilot,
    at,
    metrics_for,
    postgres_reachable,
    set_up,
    temp_database,
)
from sqlalchemy import func, select

from sandbox.config import Settings
from sandbox.db import Database
from sandbox.filing.ingest import read_upload
from sandbox.filing.upload import import_filings
from sandbox.models import Alert, AuditEntry, Evaluation, Filing
from sandbox.program.calendars import load_calendars
from sandbox.rules.periods import Period

MAX_BYTES = int(Settings.model_fields["max_upload_bytes"].default)
MAX_ROWS = int(Settings.model_fields["max_upload_rows"].default)
FILENAME = "filings.csv"


def long_csv(pilots: list[BenchPilot], periods: list[Period], rng: np.random.Generator) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # as Excel saves "CSV UTF-8"
    writer.writerow(["pilot", "period", "metric", "value"])
    npl = {pilot.reference: float(rng.uniform(0.005, 0.02)) for pilot in pilots}
    for period in periods:
        for pilot in pilots:
            npl[pilot.reference] = max(0.0, npl[pilot.reference] + float(rng.normal(0.0003, 0.003)))
            for metric, value in metrics_for(rng, npl[pilot.reference]).items():
                writer.writerow([pilot.reference, period.label, metric, value])
    return out.getvalue().encode()


def pandas_floor(data: bytes) -> int:
    return len(pd.read_csv(io.BytesIO(data), dtype=str))


def pandas_as_read_upload(data: bytes) -> int:
    frame = pd.read_csv(
        io.StringIO(data.decode("utf-8").rstrip("\r\n"), newline=""),
        header=None,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        engine="c",
    )
    return len(frame) - 1


def parse_only(data: bytes) -> int:
    return sum(len(p.rows) for p in read_upload(data, FILENAME, max_bytes=MAX_BYTES, max_rows=MAX_ROWS))


def time_rounds(
    paths: dict[str, Callable[[bytes], int]], data: bytes, rows: int, repeat: int
) -> dict[str, list[float]]:
    """Each path's wall times, the paths run in turn in every round."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeat):
        for name, path in paths.items():
            t0 = time.perf_counter()
            counted = path(data)
            times[name].append(time.perf_counter() - t0)
            if counted != rows:
                raise SystemExit(f"{name} read {counted} rows, not {rows}")
    return times


@dataclass
class Marks:
    """A progress callback: when import_filings had written its first filing (so every row was
    checked and every filing admitted) and half of them."""

    first: float | None = None
    half: float | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        if self.half is None and done >= total // 2:
            self.half = time.perf_counter()


def count_rows(database: Database) -> dict[str, int]:
    with database.unit_of_work() as session:
        return {
            name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in (
                ("filings", Filing),
                ("evaluations", Evaluation),
                ("alerts", Alert),
                ("audit_entries", AuditEntry),
            )
        }


def run_size(
    n_pilots: int,
    n_periods: int,
    backends: list[str],
    repeat: int,
    seed: int,
    profile: bool,
    profiles: dict[str, cProfile.Profile],
) -> dict[str, Any]:
    result: dict[str, Any] = {"pilots": n_pilots, "periods": n_periods, "imports": []}
    for backend in backends:
        with (
            tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder,
            temp_database(backend, Path(folder)) as target,
        ):
            database = Database(target.engine)
            print(f"{n_pilots} pilots x {n_periods} months on {backend}: setting up...", flush=True)
            started = time.perf_counter()
            setup = set_up(database, 1, n_pilots, n_periods, lift_cap=True)
            setup_seconds = time.perf_counter() - started
            # The same seed gives the same figures on each backend; only the pilots' ids differ.
            data = long_csv(setup.pilots, setup.periods, np.random.default_rng(seed))
            rows = data.count(b"\n") - 1
            if "best_seconds" not in result:
                print(f"{rows} rows, {len(data) / 1e6:.2f} MB: pandas and read_upload, {repeat} rounds...", flush=True)
                result.update(rows=rows, bytes=len(data), load_average_before_reads=os.getloadavg())
                times = time_rounds(
                    {
                        "pandas_floor": pandas_floor,
                        "pandas_as_read_upload": pandas_as_read_upload,
                        "read_upload": parse_only,
                    },
                    data,
                    rows,
                    repeat,
                )
                result["seconds"] = times
                result["best_seconds"] = {name: min(values) for name, values in times.items()}
                result["median_seconds"] = {name: statistics.median(values) for name, values in times.items()}
            print(f"importing on {backend}...", flush=True)
            before = count_rows(database)
            filer = setup.pilots[0].filer
            now = at(date.fromordinal(LAST_PERIOD.end.toordinal() + 5))
            calendars = load_calendars(ROOT / "policies")
            marks = Marks()
            expected = n_pilots * n_periods
            load_before = os.getloadavg()
            profiler = cProfile.Profile() if profile else None
            t0 = time.perf_counter()
            with database.unit_of_work() as session:
                parsed = read_upload(data, FILENAME, max_bytes=MAX_BYTES, max_rows=MAX_ROWS)
                t1 = time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                written = import_filings(session, parsed, actor=filer, at=now, calendars=calendars, progress=marks)
                if profiler is not None:
                    profiler.disable()
                t2 = time.perf_counter()
            t3 = time.perf_counter()
            if profiler is not None:
                profiles[f"{n_pilots}x{n_periods}-{backend}"] = profiler
            load_after = os.getloadavg()
            after = count_rows(database)
        added = {name: after[name] - before[name] for name in after}
        if len(written) != expected or added["filings"] != expected:
            raise SystemExit(f"{backend}: {len(written)} filings written, {added['filings']} stored, not {expected}")
        result["imports"].append(
            {
                "backend": backend,
                "setup_seconds": setup_seconds,
                "read_upload_seconds": t1 - t0,
                "import_filings_seconds": t2 - t1,
                # Checking and admitting every filing, up to the first one written and judged.
                "admit_seconds": (marks.first or t2) - t1,
                # The later filings each have a longer history to load and judge.
                "write_first_half_seconds": (marks.half or t2) - (marks.first or t2),
                "write_second_half_seconds": t2 - (marks.half or t2),
                "commit_seconds": t3 - t2,
                "total_seconds": t3 - t0,
                "rows_per_second": rows / (t3 - t0),
                "filings_per_second": expected / (t3 - t0),
                "written": added,
                "load_average_before": load_before,
                "load_average_after": load_after,
            }
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bulk CSV import rows/s against a plain pandas read.")
    parser.add_argument("--sizes", default="50x24", help="PILOTSxMONTHS, comma separated (8 rows per pilot-month)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of (a) and (b); the best counts")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile import_filings; saved next to the JSON")
    args = parser.parse_args(argv)
    try:
        sizes = [tuple(int(n) for n in size.lower().split("x")) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes takes PILOTSxMONTHS pairs, such as 50x24,200x24")
    if any(len(s) != 2 or not (1 <= s[0] <= 1000 and 1 <= s[1] <= 60) for s in sizes) or args.repeat < 1:
        parser.error("need 1 to 1000 pilots, 1 to 60 months and --repeat >= 1")

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    skipped: dict[str, str] = {}
    if "postgresql" in backends and (why := postgres_reachable()) is not None:
        skipped["postgresql"] = why
        backends.remove("postgresql")
        print(f"postgresql: skipped ({why}); set SANDBOX_TEST_POSTGRES_URL")
    profiles: dict[str, cProfile.Profile] = {}
    results = [run_size(p, m, backends, args.repeat, args.seed, args.profile, profiles) for p, m in sizes]

    print()
    print(
        f"long-format CSV of one institution's pilots; (a), (b) best of {args.repeat} (median in brackets); "
        "(c) once, in one unit of work"
    )
    print(f"{'file':<16}{'path':<44}{'s':>9}{'rows/s':>12}{'x pandas':>10}")
    for r in results:
        name = f"{r['pilots']}x{r['periods']}x8"
        floor = r["best_seconds"]["pandas_floor"]
        lines = [
            ("(a) pandas.read_csv(dtype=str)", floor),
            ("(a) pandas.read_csv, read_upload's options", r["best_seconds"]["pandas_as_read_upload"]),
            ("(b) read_upload", r["best_seconds"]["read_upload"]),
        ]
        medians = r["median_seconds"]
        for run in r["imports"]:
            lines.append((f"(c) import, {run['backend']}: total", run["total_seconds"]))
            lines.append(("      read_upload", run["read_upload_seconds"]))
            lines.append(("      import_filings (admit, write, judge)", run["import_filings_seconds"]))
            lines.append(("      commit", run["commit_seconds"]))
        for label, seconds in lines:
            rate = "" if label.startswith(" ") else f"{r['rows'] / seconds:,.0f}"  # whole paths only
            print(f"{name:<16}{label:<44}{seconds:>9.3f}{rate:>12}{seconds / floor:>10.1f}")
            name = ""
        for run in r["imports"]:
            print(
                f"{'':<16}{run['backend']}: {run['written']['filings']} filings, {run['written']['evaluations']} "
                f"evaluations, {run['written']['alerts']} alerts, {run['written']['audit_entries']} audit entries; "
                f"{run['filings_per_second']:.1f} filings/s; import_filings: admit {run['admit_seconds']:.1f} s, "
                f"write and judge {run['write_first_half_seconds']:.1f} s + {run['write_second_half_seconds']:.1f} s "
                "(first, second half); "
                f"load {run['load_average_before'][0]:.2f} before, {run['load_average_after'][0]:.2f} after"
            )
        print(
            f"{'':<16}medians of (a), (a) with read_upload's options, (b): "
            + ", ".join(f"{medians[k]:.3f} s" for k in ("pandas_floor", "pandas_as_read_upload", "read_upload"))
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"import_bench-{stamp}.json"
    for name, profiler in profiles.items():
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
        target = RESULTS / f"import_bench-{stamp}-{name}-profile.txt"
        target.write_text(text.getvalue())
        print(f"saved {target}")
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(),
        "pandas": pd.__version__,
    }
    out.write_text(
        json.dumps(
            {"when": stamp, "arguments": vars(args), "machine": machine, "results": results, "skipped": skipped},
            indent=2,
        )
    )
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
