"""Sustained OTLP/HTTP span ingest into a real `observatory serve`, verified by counting.

Drives the server with the shared load generator (../shared/tools/otlp_load.py, run as
is) at several concurrencies, then counts the stored spans carrying each run's marker:
the figure reported is *stored* spans per second (the server acknowledges a request only
after its rows are committed, so acknowledged == stored, which the count confirms). Peak
RSS is the server process's, sampled with psutil.

    python benchmarks/otlp_ingest.py [--spans 100000] [--tool ../shared/tools/otlp_load.py]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT.parent / "shared" / "tools" / "otlp_load.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--tool", type=Path, default=TOOL, help="path to otlp_load.py")
    args = parser.parse_args()
    if not args.tool.exists():
        raise SystemExit(f"{args.tool}: the shared load generator is not here")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "otlp.duckdb"
        server = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "--address", "127.0.0.1", "--port",
             str(port), "--db", str(db), "--no-demo"], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        proc = psutil.Process(server.pid)
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
                except psutil.Error:
                    break
                peak[0] = max(peak[0], rss)
                time.sleep(0.05)

        threading.Thread(target=sample, daemon=True).start()
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}; {args.spans:,} spans per run, batches of 512")
        try:
            for concurrency, gz in ((4, False), (8, False), (4, True)):
                marker = f"c{concurrency}{'gz' if gz else ''}"
                cmd = [sys.executable, str(args.tool), "--url", url + "/v1/traces", "--spans",
                       str(args.spans), "--batch", "512", "--concurrency", str(concurrency),
                       "--marker", marker, *(["--gzip"] if gz else [])]
                out = json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                                check=True).stdout)
                count = _count(url, marker)
                assert count == args.spans, f"{marker}: stored {count} of {args.spans}"
                print(f"concurrency {concurrency:>2}{' gzip' if gz else '     '}  "
                      f"{out['seconds']:6.2f} s  {args.spans / out['seconds']:>9,.0f} spans/s "
                      f"stored ({count:,} counted)  statuses {out['status_codes']}")
        finally:
            stop.set()
            server.terminate()
            server.wait(20)
        print(f"server peak RSS {peak[0] / 2**20:,.0f} MB")


def _count(url: str, marker: str) -> int:
    from workbench.client import RemoteStore

    with RemoteStore(url) as remote:
        df = remote.query("span_count_like", text=marker)
    return int(df["n"].iloc[0])


if __name__ == "__main__":
    main()
