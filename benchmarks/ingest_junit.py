"""End-to-end ingest throughput and peak memory of `observatory ingest tests`.

Scenarios: one JUnit file of 100,000 test cases; 1,000 files of 100 cases each. Each runs
the real command in a fresh process on a fresh DuckDB file; wall time includes process
start-up, parsing, and the committed write. Peak RSS is the child's ru_maxrss. The stored
row count is checked against what was generated.

    python benchmarks/ingest_junit.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from gen import write_set  # noqa: E402

OUT = Path(__file__).parent / "out"


def run_cli(paths: list[str], db: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `ingest tests` process."""
    cmd = [
        sys.executable,
        "-m",
        "workbench",
        "ingest",
        "tests",
        *paths,
        "--db",
        str(db),
        "--project",
        "bench",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return wall, usage.ru_maxrss / 1024


def stored_rows(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM results").fetchall()[0][0]


def scenario(name: str, paths: list[Path], cases: int, repeat: int) -> None:
    best = None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.duckdb"
            wall, rss = run_cli([str(p) for p in paths], db)
            rows = stored_rows(db)
            if rows != cases:
                raise SystemExit(f"{name}: stored {rows} rows, expected {cases}")
        if best is None or wall < best[0]:
            best = (wall, rss)
    wall, rss = best
    print(
        f"{name:<28} {cases:>8} cases  {wall:6.2f} s  {cases / wall:>9,.0f} cases/s  "
        f"peak RSS {rss:6.0f} MB"
    )


def in_process(paths: list[Path], cases: int) -> None:
    """The same work without interpreter start-up and imports (warm, one process)."""
    from workbench.ingest import parse_file
    from workbench.store import Store
    from workbench.store.writes import submit_runs

    parse_file(paths[0]).tables()  # warm imports (pyarrow loads pandas on first use)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "w.duckdb") as store:
        start = time.perf_counter()
        for i in range(0, len(paths), 128):
            runs = [(parse_file(p), {"project": "bench"}) for p in paths[i : i + 128]]
            submit_runs(store, runs)[1].result()
        wall = time.perf_counter() - start
    print(
        f"  in-process (no start-up)   {cases:>8} cases  {wall:6.2f} s  {cases / wall:>9,.0f} cases/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (best is kept)")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, duckdb {duckdb.__version__}"
    )
    big = OUT / "one-100k"
    many = OUT / "many-1000x100"
    big_files = sorted(big.glob("*.xml")) or write_set(big, 1, 100_000)
    many_files = sorted(many.glob("*.xml")) or write_set(many, 1000, 100)
    scenario("1 file x 100,000 cases", big_files, 100_000, args.repeat)
    in_process(big_files, 100_000)
    scenario("1,000 files x 100 cases", many_files, 100_000, args.repeat)
    in_process(many_files, 100_000)


if __name__ == "__main__":
    main()
