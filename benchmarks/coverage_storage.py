"""How compact is per-test coverage, and how fast is it stored? Two measurements:

1. A real suite: this project's own fast test modules run by pytest under coverage.py with
   per-test contexts (pytest-cov ``--cov-context=test``); the ``.coverage`` data file, the
   HTML report coverage.py writes from it with ``--show-contexts`` (the peer the issue
   names), and the same data stored here: ingest seconds, rows, database bytes.
2. At scale, synthetic: 5,000 tests over 1,000 files of 100 statements (100k lines), each
   test running a few runs of lines in 20 files — stored as run-length ranges; bytes and
   seconds, and the rows a row-per-line-per-test table would need instead.

    python benchmarks/coverage_storage.py [--tests 5000] [--files 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import machine  # noqa: E402

SUITE = ["tests/test_otlp_decode.py", "tests/test_ingest_junit.py", "tests/test_analysis.py",
         "tests/test_signatures.py", "tests/test_edits.py", "tests/test_ingest_formats.py"]


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def db_bytes(store_path: Path) -> int:
    return size(store_path) + sum(size(p) for p in store_path.parent.glob(
        store_path.name + ".wal"))


def real_suite(tmp: Path) -> dict:
    from workbench.intake import LocalIntake
    from workbench.store import Store

    data = tmp / ".coverage"
    env = {**os.environ, "COVERAGE_FILE": str(data)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-p", "no:observatory", "--cov=workbench", "--cov-context=test",
                    "--cov-report=", *SUITE], cwd=ROOT, env=env, capture_output=True,
                   check=True)
    ran = time.perf_counter() - start
    html = tmp / "html"
    subprocess.run([sys.executable, "-m", "coverage", "html", "--show-contexts", "-d",
                    str(html), f"--data-file={data}"], cwd=ROOT, capture_output=True,
                   check=True)
    store_path = tmp / "cov.duckdb"
    with Store(store_path) as store:
        store.settle()
        empty = db_bytes(store_path)
        start = time.perf_counter()
        result = LocalIntake(store).coverage(data.read_bytes(), str(data),
                                             {"project": "observatory"}, [str(ROOT)])
        store.settle()
        took = time.perf_counter() - start
        rows = store.sql("SELECT count(*) AS n FROM coverage_tests")["n"].item()
        lines = int(store.sql("SELECT sum(len(ranges)) AS n FROM coverage_tests")["n"].item())
        store.sql("CHECKPOINT")
    return {"suite_s": ran, "ok": result["ok"], "files": result["files"],
            "statements": result["statements"], "tests": result["contexts"],
            "data_bytes": size(data), "html_bytes": size(html), "ingest_s": took,
            "rows": rows, "range_numbers": lines, "db_bytes": db_bytes(store_path) - empty}


def synthetic(tmp: Path, n_tests: int, n_files: int, per_file: int = 100) -> dict:
    from workbench.coverage.model import CoverageReport, FileCoverage
    from workbench.store import Store
    from workbench.store.coverage_writes import store_report

    rng = random.Random(7)
    report = CoverageReport("synthetic")
    for f in range(n_files):
        lines = set(range(1, per_file + 1))
        report.add(FileCoverage(f"pkg/mod{f // 50}/file{f}.py", statements=lines,
                                covered=set(rng.sample(sorted(lines), per_file * 4 // 5))))
    line_rows = 0
    for t in range(n_tests):
        files = {}
        for f in rng.sample(range(n_files), 20):
            ran: set[int] = set()
            for _ in range(rng.randint(1, 4)):  # a few runs of lines: functions it calls
                first = rng.randint(1, per_file - 10)
                ran |= set(range(first, first + rng.randint(3, 25)))
            files[f"pkg/mod{f // 50}/file{f}.py"] = {x for x in ran if x <= per_file}
            line_rows += len(files[f"pkg/mod{f // 50}/file{f}.py"])
        report.contexts[f"tests/test_{t // 100}.py::test_{t}"] = files
    store_path = tmp / "synthetic.duckdb"
    with Store(store_path) as store:
        store.settle()
        empty = db_bytes(store_path)
        start = time.perf_counter()
        store_report(store, report, "cov-synthetic", {"project": "big"}, "synthetic")
        store.settle()
        took = time.perf_counter() - start
        store.sql("CHECKPOINT")
        rows = store.sql("SELECT count(*) AS n FROM coverage_tests")["n"].item()
    return {"tests": n_tests, "lines": n_files * per_file, "store_s": took, "rows": rows,
            "line_rows": line_rows, "db_bytes": db_bytes(store_path) - empty}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=5000)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        r = real_suite(Path(tmp))
        print(f"real suite: {r['tests']} tests over {r['files']} files, {r['statements']:,} "
              f"statements (suite ran in {r['suite_s']:.0f} s under coverage)")
        print(f"  .coverage {r['data_bytes'] / 1e6:.2f} MB · coverage html --show-contexts "
              f"{r['html_bytes'] / 1e6:.2f} MB · stored here {r['db_bytes'] / 1e6:.2f} MB "
              f"({r['rows']:,} test×file rows, {r['range_numbers']:,} range numbers) in "
              f"{r['ingest_s']:.2f} s")
        s = synthetic(Path(tmp), args.tests, args.files)
        print(f"synthetic: {s['tests']:,} tests × {s['lines']:,} lines: {s['rows']:,} rows "
              f"(a row per line per test would be {s['line_rows']:,}) · "
              f"{s['db_bytes'] / 1e6:.1f} MB · stored in {s['store_s']:.1f} s")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
