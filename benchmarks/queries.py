"""Latency of the analysis queries over 1,000,000 stored results.

Builds (or reuses) benchmarks/out/queries-1M.duckdb: 2,000 runs x 500 tests over 60 days,
2 projects, 4 branches, with flaky tests (some passing on retry), broken tests, recurring
failure clusters and per-test durations. Then times, median of 5 after a warm-up, each model
call a dashboard makes (query + pure analysis + DataFrame).

    python benchmarks/queries.py [--runs 2000] [--tests 500]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from _timing import timed  # noqa: E402

from workbench.ingest import ParsedRun
from workbench.models import TestAnalytics
from workbench.store import Store
from workbench.store.writes import submit_runs

OUT = Path(__file__).parent / "out"
TRACES = [
    (
        "ConnectionResetError: reset by peer (127.0.0.1:{p})",
        'File "/ci/tests/test_db.py", line {l}, in test_x\n  File "/ci/src/app/pool.py", line {l}, '
        "in acquire\nConnectionResetError: reset by peer (127.0.0.1:{p})",
    ),
    (
        "TimeoutError: gateway timed out after {p}ms",
        'File "/ci/tests/test_pay.py", line {l}, in test_y\n  File "/ci/src/app/gateway.py", line {l}, '
        "in charge\nTimeoutError: gateway timed out after {p}ms",
    ),
    (
        "AssertionError: assert {p} == {l}",
        "tests/test_calc.py:{l}: in test_z\nE   AssertionError: assert {p} == {l}",
    ),
]


def build(path: Path, runs: int, tests: int) -> None:
    rng = random.Random(7)
    flaky = set(rng.sample(range(tests), tests // 25))
    broken = set(rng.sample(range(tests), 5))
    end = datetime.now().replace(microsecond=0)
    with Store(path) as store:
        batch = []
        for r in range(runs):
            project = f"proj-{r % 2}"
            branch = ["main", "main", "dev", f"feature/{r % 7}"][r % 4]
            run = ParsedRun(
                "junit",
                f"bench/{r}",
                f"{r:016x}".ljust(64, "0"),
                end - timedelta(minutes=(runs - r) * 43),
            )
            for t in range(tests):
                tid = f"tests.test_m{t // 50}::test_{t}"
                name = f"test_{t}"
                dur = 0.01 + (t % 37) * 0.003 * (2.5 if t % 97 == 0 and r > runs * 0.8 else 1)
                fail = (t in flaky and rng.random() < 0.15) or (t in broken and r > runs * 0.9)
                if not fail and rng.random() < 0.002:
                    fail = True
                if fail:
                    msg, tb = TRACES[t % 3]
                    p, ln = rng.randint(1000, 60000), rng.randint(10, 300)
                    run.add_row(
                        tid,
                        "s",
                        f"tests.test_m{t // 50}",
                        name,
                        None,
                        "failed",
                        dur,
                        msg.format(p=p, l=ln),
                        None,
                        tb.format(p=p, l=ln),
                    )
                    if t in flaky and rng.random() < 0.5:
                        run.add_row(tid, "s", f"tests.test_m{t // 50}", name, None, "passed", dur)
                else:
                    run.add_row(tid, "s", f"tests.test_m{t // 50}", name, None, "passed", dur)
            batch.append((run, {"project": project, "branch": branch, "commit": f"c{r // 3}"}))
            if len(batch) == 100:
                submit_runs(store, batch)[1].result()
                batch = []
        if batch:
            submit_runs(store, batch)[1].result()




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--tests", type=int, default=500)
    args = parser.parse_args()
    path = OUT / f"queries-{args.runs}x{args.tests}.duckdb"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        start = time.perf_counter()
        build(path, args.runs, args.tests)
        print(f"built {path.name} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM results").fetchall()[0][0]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, duckdb {duckdb.__version__}; "
        f"{rows:,} stored results"
    )
    with Store(path) as store:
        m = TestAnalytics(store=store, window="90 days")
        m.run_id = m.runs().run_id.iloc[0]
        calls = {
            "failure clusters (all projects)": m.clusters,
            "flaky/broken labels (all projects)": m.flaky_tests,
            "runs page": lambda: m.runs(limit=15),
            "run detail vs base": m.run_failures,
            "duration regressions": m.duration_regressions,
            "slowest tests": m.slowest_tests,
        }
        for name, fn in calls.items():
            print(f"{name:<38} {timed(fn) * 1000:8.0f} ms")
        m.project = "proj-0"
        print(f"{'flaky labels (one project)':<38} {timed(m.flaky_tests) * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
