"""How fast is a ranking on a large project? 10,000 tests over 5,000 files: a coverage
report with every test's contexts (each test runs lines in 12 files), 30 stored runs of all
10,000 tests (a few hundred failures, 200 flaky tests), in a real DuckDB file. A change
touches 40 lines in each of 20 files. Timed (median of 5 after a warm-up): the whole
ranking as ``observatory select`` computes it — the history query, the coverage of the
changed files, the evidence and the sort — without git (the change is given; co-change and
new-test discovery read the repository and are not part of this figure).

    python benchmarks/selection.py [--tests 10000] [--files 5000] [--runs 30]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import machine, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from workbench.coverage.model import CoverageReport, FileCoverage
    from workbench.ingest import parse_bytes
    from workbench.intake import LocalIntake
    from workbench.selection.select import gather, rank
    from workbench.store import Store
    from workbench.store.coverage_writes import store_report

    print(machine(), flush=True)
    rng = random.Random(5)
    files = [f"src/pkg{f % 50}/mod{f}.py" for f in range(args.files)]
    tests = [f"tests/test_m{t // 20}.py::test_{t}" for t in range(args.tests)]
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "sel.duckdb") as store:
        start = time.perf_counter()
        rep = CoverageReport("synthetic")
        for f in files:
            lines = set(range(1, 201))
            rep.add(FileCoverage(f, statements=lines, covered=lines))
        for t in tests:
            rep.contexts[t] = {}
            for f in rng.sample(files, 12):
                first = rng.randint(1, 180)
                rep.contexts[t][f] = set(range(first, first + rng.randint(3, 20)))
        store_report(store, rep, "cov-big", {"project": "big", "commit": "c0"}, "synthetic")
        intake = LocalIntake(store, ci_env={})
        flaky = set(rng.sample(range(args.tests), 200))
        pending = []
        for r in range(args.runs):
            cases = []
            for t in range(args.tests):
                bad = (t in flaky and rng.random() < 0.3) or rng.random() < 0.002
                cases.append(f'<testcase classname="tests.test_m{t // 20}" name="test_{t}" '
                             f'file="tests/test_m{t // 20}.py" time="{rng.random():.3f}">'
                             + ("<failure message='x'/>" if bad else "") + "</testcase>")
            xml = ('<testsuite name="big">' + "".join(cases) + "</testsuite>").encode()
            pending.append(intake.submit_parsed(parse_bytes(xml, f"r{r}.xml"), {
                "project": "big", "commit": f"c{r}", "build": str(r)}))
        intake.flush()
        assert all(f.result()["ok"] for f in pending)
        store.settle()
        store.sql("CHECKPOINT")  # as a serving workbench's file is between bursts
        print(f"{args.tests:,} tests × {args.files:,} files, {args.runs} runs stored in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        changed = {f: set(range(50, 90)) for f in rng.sample(files, 20)}

        def ranking():
            return rank(gather(store, "big", None, changed))

        result = ranking()
        took = timed(ranking)
        hits = sum(1 for r in result if "changed lines" in " ".join(r["reasons"]))
        print(f"ranking {len(result):,} tests for a change to 20 files: {took * 1000:.0f} ms "
              f"({hits} tests ran changed lines)")


if __name__ == "__main__":
    main()
