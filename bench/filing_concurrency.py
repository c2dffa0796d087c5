"""Filing throughput and latency under concurrent filers: the real server (uvicorn, in its own
process, on loopback) over a fresh PostgreSQL database, and over a fresh SQLite file for
contrast (SQLite takes one writer at a time; every transaction begins with BEGIN IMMEDIATE).

Set-up, through the services (as ``filing_latency.py`` does): the SH-TECH-MA policy with its
shipped rules under a benchmark version (and no aggregate quota cap), and banks of four active
pilots each, each bank with one filer, every pilot's first month being as many months before
December 2026 as a run needs. The pilots are split into one group per client count K (plus a
small warm-up group), so every run files the same months on pilots with no history yet: the runs
do the same work, and a later run is not slowed by the history an earlier one wrote.

The server's clock is fixed (``SANDBOX_NOW``) five days after December 2026 ends, so every month
filed is in the past. Only December is on time: the earlier months are late, so each of their
filings also breaches the ``filing-late`` warn rule and writes a ``rule.warning`` alert to the
outbox in its transaction (nothing delivers it: uvicorn alone runs no worker).

Then, for each K, K client threads (one ``httpx.Client`` each, keep-alive, in this process)
start together; client k owns the group's pilots k, k+K, k+2K... and files month after month,
each of its pilots' filing for a month before the next month, one request at a time, until its
share of ``--requests`` is done or ``--max-seconds`` has passed. A request's latency is measured
around ``client.post``; throughput is the 201s divided by the run's wall time.

    .venv/bin/python bench/filing_concurrency.py [--clients 1,4,8,16 --requests 320 --pilots 16]
                                                 [--backend sqlite|postgresql|both] [--workers 1]
                                                 [--max-seconds 240 --seed 1]

PostgreSQL: ``SANDBOX_TEST_POSTGRES_URL`` (the tests' default:
postgresql+psycopg://postgres@127.0.0.1:5432/postgres); the benchmark creates its own database
there and drops it afterwards, and skips PostgreSQL, saying why, when no server answers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from filing_latency import (  # bench/ is the script's own folder, so first on sys.path
    LAST_PERIOD,
    RESULTS,
    ROOT,
    BenchPilot,
    at,
    metrics_for,
    percentile,
    postgres_reachable,
    set_up,
    temp_database,
)

from sandbox.db import Database

WARM_UP_PILOTS = 4
WARM_UP_PERIODS = 2
SECRET = "bench-secret-key-that-is-long-enough-0123"
PILOTS_EACH = 4  # pilots per institution


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """``uvicorn --factory sandbox.main:create_app`` in a subprocess, configured by environment
    as a deployment would be (Settings reads SANDBOX_*)."""

    def __init__(self, url: str, now: datetime, folder: Path, workers: int) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("SANDBOX_")}
        env.update(
            SANDBOX_ENVIRONMENT="test",
            SANDBOX_DATABASE_URL=url,
            SANDBOX_NOW=now.isoformat(),
            SANDBOX_POLICIES_DIR=str(ROOT / "policies"),
            SANDBOX_VAR_DIR=str(folder / "var"),
            SANDBOX_SECRET_KEY=SECRET,
            SANDBOX_LOG_REQUESTS="false",
        )
        self.log = (folder / "server.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "sandbox.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the server did not answer /healthz within {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --- CPU accounting (Linux /proc; figures are None elsewhere) --------------------------------

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu_seconds(root: int) -> float | None:
    """User + system CPU of a process and its live descendants (uvicorn's workers)."""
    try:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            cpu[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    except OSError:
        return None
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot."""
    try:
        values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return None
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


# --- One run of K clients -------------------------------------------------------------------


@dataclass
class ClientLog:
    latencies: list[float] = field(default_factory=list)  # seconds, 201s only
    statuses: Counter[str] = field(default_factory=Counter)
    first_failure: str | None = None


def client_loop(
    base_url: str,
    work: list[tuple[str, str, dict[str, Any]]],
    start: threading.Barrier,
    deadline: list[float],
    log: ClientLog,
) -> None:
    with httpx.Client(base_url=base_url, timeout=120.0) as client:
        client.get("/healthz")  # open the keep-alive connection before the clock starts
        start.wait()
        for path, token, body in work:
            if time.perf_counter() > deadline[0]:
                log.statuses["not sent (time limit)"] += 1
                continue
            t0 = time.perf_counter()
            try:
                response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                log.statuses[type(exc).__name__] += 1
                log.first_failure = log.first_failure or repr(exc)
                continue
            elapsed = time.perf_counter() - t0
            log.statuses[str(response.status_code)] += 1
            if response.status_code == 201:
                log.latencies.append(elapsed)
            elif log.first_failure is None:
                log.first_failure = f"{response.status_code} {response.text[:300]}"


def plan(
    pilots: list[BenchPilot], periods: list[str], k: int, rng: np.random.Generator
) -> list[list[tuple[str, str, dict[str, Any]]]]:
    """Each client's requests, in order: month by month, its own pilots within a month."""
    npl = {pilot.id: float(rng.uniform(0.005, 0.02)) for pilot in pilots}
    work: list[list[tuple[str, str, dict[str, Any]]]] = [[] for _ in range(k)]
    for period in periods:
        for index, pilot in enumerate(pilots):
            npl[pilot.id] = max(0.0, npl[pilot.id] + float(rng.normal(0.0003, 0.003)))
            body = {"period": period, "metrics": metrics_for(rng, npl[pilot.id])}
            work[index % k].append((f"/api/v1/pilots/{pilot.id}/filings", pilot.token, body))
    return work


def run_clients(
    base_url: str, work: list[list[tuple[str, str, dict[str, Any]]]], max_seconds: float, server_pid: int
) -> dict[str, Any]:
    k = len(work)
    logs = [ClientLog() for _ in range(k)]
    start = threading.Barrier(k + 1)
    deadline = [float("inf")]
    threads = [
        threading.Thread(target=client_loop, args=(base_url, work[i], start, deadline, logs[i]), daemon=True)
        for i in range(k)
    ]
    for thread in threads:
        thread.start()
    load_before = os.getloadavg()
    server_cpu_0, own_cpu_0, ticks_0 = tree_cpu_seconds(server_pid), time.process_time(), machine_ticks()
    deadline[0] = time.perf_counter() + max_seconds
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    server_cpu_1, own_cpu_1, ticks_1 = tree_cpu_seconds(server_pid), time.process_time(), machine_ticks()

    latencies = sorted(x * 1000 for log in logs for x in log.latencies)
    statuses: Counter[str] = Counter()
    for log in logs:
        statuses.update(log.statuses)
    ok = len(latencies)
    sent = sum(n for status, n in statuses.items() if status != "not sent (time limit)")
    result: dict[str, Any] = {
        "clients": k,
        "requests_planned": sum(len(w) for w in work),
        "requests_sent": sent,
        "created": ok,
        "errors": {status: n for status, n in sorted(statuses.items()) if status != "201"},
        "first_failure": next((log.first_failure for log in logs if log.first_failure), None),
        "wall_seconds": wall,
        "filings_per_second": ok / wall if wall > 0 else 0.0,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    if latencies:
        result.update(
            ms_p50=percentile(latencies, 50),
            ms_p95=percentile(latencies, 95),
            ms_p99=percentile(latencies, 99),
            ms_max=latencies[-1],
            ms_mean=statistics.fmean(latencies),
        )
    if server_cpu_0 is not None and server_cpu_1 is not None:
        result["server_cpu_seconds"] = server_cpu_1 - server_cpu_0
        result["server_cpu_ms_per_filing"] = 1000 * (server_cpu_1 - server_cpu_0) / max(ok, 1)
    result["client_cpu_seconds"] = own_cpu_1 - own_cpu_0
    if ticks_0 is not None and ticks_1 is not None and ticks_1[1] > ticks_0[1]:
        result["machine_busy"] = (ticks_1[0] - ticks_0[0]) / (ticks_1[1] - ticks_0[1])
    return result


def run_backend(
    backend: str, clients: list[int], n_requests: int, n_pilots: int, workers: int, max_seconds: float, seed: int
) -> dict[str, Any]:
    n_periods = -(-n_requests // n_pilots)
    rng = np.random.default_rng(seed)
    with (
        tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder,
        temp_database(backend, Path(folder)) as target,
    ):
        database = Database(target.engine)
        started = time.perf_counter()
        total = WARM_UP_PILOTS + n_pilots * len(clients)
        setup = set_up(database, -(-total // PILOTS_EACH), PILOTS_EACH, n_periods, lift_cap=True)
        setup_seconds = time.perf_counter() - started
        target.engine.dispose()  # the server holds the only connections from here on
        labels = [p.label for p in setup.periods]
        now = at(date.fromordinal(LAST_PERIOD.end.toordinal() + 5))
        server = Server(target.url, now, Path(folder), workers)
        try:
            server.wait_ready()
            warm_up = setup.pilots[:WARM_UP_PILOTS]
            warm = run_clients(
                server.base_url,
                plan(warm_up, labels[:WARM_UP_PERIODS], WARM_UP_PILOTS, rng),
                max_seconds,
                server.process.pid,
            )
            if warm["created"] != WARM_UP_PILOTS * WARM_UP_PERIODS:
                raise SystemExit(f"{backend}: the warm-up filings failed: {warm['errors']} {warm['first_failure']}")
            runs = []
            for index, k in enumerate(clients):
                offset = WARM_UP_PILOTS + index * n_pilots
                group = setup.pilots[offset : offset + n_pilots]
                work = plan(group, labels, k, rng)
                # Exactly --requests: the last month may be filed by only some of the pilots.
                extra = sum(len(w) for w in work) - n_requests
                for w in sorted(work, key=len, reverse=True)[: max(extra, 0)]:
                    w.pop()
                print(f"{backend}: {k} client(s), {n_requests} filings over {n_pilots} pilots...", flush=True)
                runs.append(run_clients(server.base_url, work, max_seconds, server.process.pid))
        finally:
            server.stop()
    return {
        "backend": backend,
        "server": f"uvicorn, {workers} worker process(es)",
        "pilots_per_run": n_pilots,
        "periods_per_pilot": n_periods,
        "setup_seconds": setup_seconds,
        "server_now": now.isoformat(),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Filing throughput and latency under concurrent filers.")
    parser.add_argument("--clients", default="1,4,8,16", help="client counts, comma separated")
    parser.add_argument("--requests", type=int, default=320, help="filings per client count")
    parser.add_argument("--pilots", type=int, default=16, help="pilots per client count (at least the most clients)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="time limit of one client count's run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        clients = [int(x) for x in args.clients.split(",")]
    except ValueError:
        parser.error("--clients takes whole numbers separated by commas, such as 1,4,8,16")
    if not clients or min(clients) < 1 or max(clients) > 64:
        parser.error("client counts must be between 1 and 64")
    if args.pilots < max(clients) or args.requests < args.pilots or -(-args.requests // args.pilots) > 60:
        parser.error("need --pilots >= the most clients, --requests >= --pilots, at most 60 months per pilot")
    if not 1 <= args.workers <= 8 or args.max_seconds <= 0:
        parser.error("need 1 to 8 --workers and a positive --max-seconds")

    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for backend in backends:
        if backend == "postgresql":
            why = postgres_reachable()
            if why is not None:
                skipped[backend] = why
                print(f"postgresql: skipped ({why}); set SANDBOX_TEST_POSTGRES_URL")
                continue
        results.append(
            run_backend(backend, clients, args.requests, args.pilots, args.workers, args.max_seconds, args.seed)
        )

    print()
    print("K clients filing at once through uvicorn on loopback; latency of the 201s; throughput = 201s / wall time")
    print(
        f"{'backend':<12}{'K':>4}{'sent':>6}{'201':>6}{'filings/s':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'srv cpu ms/filing':>19}{'busy':>7}{'load 1m':>9}  errors"
    )
    for r in results:
        for run in r["runs"]:
            busy = f"{run['machine_busy']:.0%}" if "machine_busy" in run else "-"
            cpu = f"{run['server_cpu_ms_per_filing']:.1f}" if "server_cpu_ms_per_filing" in run else "-"
            print(
                f"{r['backend']:<12}{run['clients']:>4}{run['requests_sent']:>6}{run['created']:>6}"
                f"{run['filings_per_second']:>11.1f}{run.get('ms_p50', 0):>9.1f}{run.get('ms_p95', 0):>9.1f}"
                f"{run.get('ms_p99', 0):>9.1f}{run.get('ms_max', 0):>9.1f}{cpu:>19}{busy:>7}"
                f"{run['load_average_before'][0]:>9.2f}  {run['errors'] or '-'}"
            )
            if run["first_failure"]:
                print(f"{'':<16}first failure: {run['first_failure']}")
    if results:
        r = results[0]
        print(f"({r['pilots_per_run']} pilots x {r['periods_per_pilot']} months per K; {r['server']})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"filing_concurrency-{stamp}.json"
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(),
    }
    arguments = vars(args)
    out.write_text(
        json.dumps(
            {"when": stamp, "arguments": arguments, "machine": machine, "results": results, "skipped": skipped},
            indent=2,
        )
    )
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
