"""Sustained OTLP/HTTP span ingest, verified by counting, against Arize Phoenix in the same run.

Drives each receiver with the shared load generator (../shared/tools/otlp_load.py, run
as is) and reports the *stored* rate: spans divided by the time from the first request
until every span carrying the run's marker is countable in the receiver's own store
(the workbench's API; Phoenix's SQLite file). Peak RSS is the server's process tree,
sampled with psutil.

Phoenix is optional: install it into its own virtual environment and pass that::

    python -m venv /tmp/phoenix-venv && /tmp/phoenix-venv/bin/pip install arize-phoenix
    python benchmarks/otlp_ingest.py --phoenix /tmp/phoenix-venv

Everything listens on 127.0.0.1 only (Phoenix's gRPC port is moved to a free port).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT.parent / "shared" / "tools" / "otlp_load.py"
#: How often the store is counted while the spans are written.
POLL_S = 0.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeakRSS:
    """Samples a process tree's resident memory until stopped."""

    def __init__(self, pid: int):
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> float:
        self._stop.set()
        return self.peak / 2**20


def wait_http(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            # (a quick connect, but a page may take seconds to build: a short read
            # timeout asked again and again, and the builds queued behind each other)
            if httpx.get(url, timeout=httpx.Timeout(60, connect=1)).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{url} did not come up")


def run_load(
    tool: Path,
    url: str,
    spans: int,
    concurrency: int,
    gz: bool,
    marker: str,
    count: Callable[[str], int],
) -> dict:
    """Send, then poll the store until every span is there; return the figures."""
    cmd = [
        sys.executable,
        str(tool),
        "--url",
        url,
        "--spans",
        str(spans),
        "--batch",
        "512",
        "--concurrency",
        str(concurrency),
        "--marker",
        marker,
        *(["--gzip"] if gz else []),
    ]
    start = time.monotonic()
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    deadline = time.monotonic() + 1800
    while (stored := count(marker)) < spans and time.monotonic() < deadline:
        time.sleep(POLL_S)
    # From the tool's first request (its epoch clock: this machine's) until the count
    # came back whole. (Until 2026-12-08 the clock started before the tool's process did,
    # less its body-building time, so its start-up, ~0.4 s, was counted, and the store
    # was polled every 0.5 s: both printed as "as before".)
    elapsed = time.time() - out["t_start_epoch"]
    before = time.monotonic() - start - out["build_seconds"]
    return {
        "stored": stored,
        "seconds": elapsed,
        "rate": stored / elapsed,
        "seconds_as_before": before,
        "acked_rate": out["acked_spans_per_s"],
        "statuses": out["status_codes"],
    }


def workbench(tool: Path, spans: int, store: str = "duckdb",
              runs: tuple[tuple[int, bool], ...] = ((4, False), (8, False), (4, True)),
              ) -> list[tuple[str, dict]]:
    """The workbench's receiver writing to ``store``: ``duckdb`` (a file) or ``chdb``
    (ClickHouse's engine in the server's process, the Collector's tables)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = (str(Path(tmp) / "otlp.duckdb") if store == "duckdb"
              else f"chdb://{Path(tmp) / 'clickhouse'}?database=bench")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench",
                "serve",
                "--address",
                "127.0.0.1",
                "--port",
                str(port),
                "--db",
                db,
                "--no-demo",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/api/health")
        rss = PeakRSS(server.pid)

        def count(marker: str) -> int:
            from workbench.client import RemoteStore

            with RemoteStore(url) as remote:
                return int(remote.query("span_count_like", text=marker)["n"].iloc[0])

        results = []
        try:
            for concurrency, gz in runs:
                name = f"c{concurrency}{'-gzip' if gz else ''}"
                results.append(
                    (
                        name,
                        run_load(
                            tool, url + "/v1/traces", spans, concurrency, gz, f"wb{name}", count
                        ),
                    )
                )
        finally:
            peak = rss.stop()
            server.terminate()
            server.wait(30)
        for _, r in results:
            r["peak_mb"] = peak
        return results


def phoenix(tool: Path, venv: Path, spans: int) -> dict:
    port, grpc = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": tmp,
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc),
        }
        server = subprocess.Popen(
            [str(venv / "bin" / "phoenix"), "serve"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/")
        rss = PeakRSS(server.pid)
        db = Path(tmp) / "phoenix.db"

        def count(marker: str) -> int:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                return con.execute(
                    "SELECT count(*) FROM spans WHERE name LIKE ?", (f"%{marker}%",)
                ).fetchone()[0]

        try:
            result = run_load(tool, url + "/v1/traces", spans, 4, False, "phoenix", count)
        finally:
            result_peak = rss.stop()
            server.terminate()
            server.wait(30)
        result["peak_mb"] = result_peak
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000, help="spans per workbench run")
    parser.add_argument("--phoenix", type=Path, help="virtualenv with arize-phoenix installed")
    parser.add_argument(
        "--phoenix-spans",
        type=int,
        default=10_000,
        help="spans sent to Phoenix (it stores a few hundred per second)",
    )
    parser.add_argument("--tool", type=Path, default=TOOL, help="path to otlp_load.py")
    parser.add_argument("--stores", nargs="+", default=["duckdb"], choices=["duckdb", "chdb"],
                        help="the stores the workbench writes to, in turn (default duckdb)")
    args = parser.parse_args()
    if not args.tool.exists():
        raise SystemExit(f"{args.tool}: the shared load generator is not here")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; batches of 512 spans, the load tool on the same machine"
    )
    for store in args.stores:
        results = workbench(args.tool, args.spans, store)
        if store == args.stores[0]:
            ours = results
        for name, r in results:
            print(
                f"workbench {store:<6} {name:<9} {r['stored']:>8,} spans stored in "
                f"{r['seconds']:6.2f} s = {r['rate']:>9,.0f} spans/s  "
                f"(peak RSS {r['peak_mb']:,.0f} MB) {r['statuses']}; as before: "
                f"{r['seconds_as_before']:.2f} s = {r['stored'] / r['seconds_as_before']:,.0f}"
            )
    if args.phoenix:
        p = phoenix(args.tool, args.phoenix, args.phoenix_spans)
        print(
            f"phoenix   c4        {p['stored']:>8,} spans stored in {p['seconds']:6.2f} s = "
            f"{p['rate']:>9,.0f} spans/s  (peak RSS {p['peak_mb']:,.0f} MB; acknowledged at "
            f"{p['acked_rate']:,.0f}/s before storing) {p['statuses']}"
        )
        c4 = dict(ours)["c4"]
        print(f"ratio at concurrency 4: {c4['rate'] / p['rate']:,.0f}x (as before: "
              f"{(c4['stored'] / c4['seconds_as_before']) / (p['stored'] / p['seconds_as_before']):,.0f}x)")


if __name__ == "__main__":
    main()
