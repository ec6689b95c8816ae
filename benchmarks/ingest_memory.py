"""Peak memory of ingesting one big JUnit report, by report size: the CLI (`observatory
ingest tests FILE --db`) and a server receiving the report as a gzip upload.

Peak RSS is measured with psutil over the whole process tree, sampled every 20 ms. Reports
come from benchmarks/gen.py (realistic names, 5% failures with tracebacks, ~100 bytes per
passing case).

    python benchmarks/ingest_memory.py [--cases 500000 1000000 2000000]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen import junit  # noqa: E402
from otlp_ingest import ROOT, PeakRSS, free_port, wait_http  # noqa: E402


def cli_peak(report: Path, db: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "ingest", "tests", str(report),
                             "--db", str(db), "--project", "memory"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rss = PeakRSS(proc.pid)
    _, err = proc.communicate()
    peak = rss.stop()
    if proc.returncode:
        raise SystemExit(err.decode())
    return peak, time.perf_counter() - start


def server_peak(body: bytes, db: Path) -> tuple[float, float, float]:
    """(peak MB while storing, idle MB before, seconds) for one gzip upload."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "workbench", "serve", "--address", "127.0.0.1", "--port",
         str(port), "--db", str(db), "--no-demo"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "OBSERVATORY_MAX_BODY_BYTES": str(1 << 30)})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/api/health")
        rss = PeakRSS(server.pid)
        time.sleep(0.5)
        idle = rss.peak / 2**20
        start = time.perf_counter()
        r = httpx.post(url + "/api/tests/reports", params={"project": "memory"},
                       content=gzip.compress(body, 1),
                       headers={"Content-Encoding": "gzip"}, timeout=600)
        r.raise_for_status()
        return rss.stop(), idle, time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[500_000, 1_000_000, 2_000_000])
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.cases:
            body = junit(n, seed=n)
            report = Path(tmp) / f"r{n}.xml"
            report.write_bytes(body)
            mb = len(body) / 2**20
            peak, secs = cli_peak(report, Path(tmp) / f"cli{n}.duckdb")
            print(f"{n:>9,} cases, {mb:6.0f} MB report: CLI peak {peak:6,.0f} MB "
                  f"({secs:5.1f} s)", flush=True)
            speak, idle, secs = server_peak(body, Path(tmp) / f"srv{n}.duckdb")
            print(f"{'':>9}  {'':>16}  upload (gzip): server peak {speak:6,.0f} MB, "
                  f"{idle:,.0f} MB before ({secs:5.1f} s)", flush=True)
            report.unlink()


if __name__ == "__main__":
    main()
