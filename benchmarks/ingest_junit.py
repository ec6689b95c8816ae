"""End-to-end ingest throughput and peak memory of `observatory ingest tests`.

Scenarios: one JUnit file of 100,000 test cases; 1,000 files of 100 cases each. Each runs
the real command in a fresh process on a fresh DuckDB file; wall time includes process
start-up, parsing, and the committed write. Peak RSS is the child's ru_maxrss. The stored
row count is checked against what was generated.

The floor for the one big file is a bare parse of the same file in a fresh process
(:data:`BARE`: lxml's iterparse reading every test case's attributes and failure text and
clearing each element): the end-to-end time is printed as a ratio of it (target: <= 2x).
Each process is run once unmeasured first; the figures are medians. Children cache their
bytecode under benchmarks/out/pycache, as an installed package has it compiled
(PYTHONDONTWRITEBYTECODE would make every run compile the workbench's modules again).

With ``--before REV`` both scenarios also run, in the same session, with the code of git
revision REV (exported to a temporary folder that goes first on the children's PYTHONPATH).

    python benchmarks/ingest_junit.py [--repeat 5] [--before REV]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from gen import write_set  # noqa: E402

OUT = Path(__file__).parent / "out"
#: Target: end to end at most this many times the bare parse of the same file.
TARGET_RATIO = 2.0
#: The fair floor: parse the report and read what a store needs of each test case.
BARE = """
import sys
from lxml import etree
n = 0
for _, el in etree.iterparse(sys.argv[1], tag="testcase"):
    el.get("classname"), el.get("name"), el.get("time")
    for child in el:
        child.get("message"), child.get("type"), child.text
    el.clear(keep_tail=False)
    n += 1
assert n
"""


#: Code the children import instead of this checkout's (``--before``).
CODE: list[str] = []


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    env["PYTHONSAFEPATH"] = "1"  # (`-m` run in the checkout: its code only if installed)
    if CODE:
        env["PYTHONPATH"] = os.pathsep.join([*CODE, *filter(None, [env.get("PYTHONPATH")])])
    return env


def export(rev: str, folder: Path) -> Path:
    """The tree of git revision ``rev``, written to ``folder``."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "workbench"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


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
    return _run(cmd)


def _run(cmd: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_env())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[1:4]} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return wall, usage.ru_maxrss / 1024


def stored_rows(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM results").fetchall()[0][0]


def scenario(name: str, paths: list[Path], cases: int, repeat: int) -> float:
    """Median wall seconds of the end-to-end command (after one unmeasured run)."""
    runs = []
    for i in range(repeat + 1):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.duckdb"
            wall, rss = run_cli([str(p) for p in paths], db)
            rows = stored_rows(db)
            if rows != cases:
                raise SystemExit(f"{name}: stored {rows} rows, expected {cases}")
        if i:
            runs.append((wall, rss))
    wall = statistics.median(w for w, _ in runs)
    rss = max(r for _, r in runs)
    print(
        f"{name:<28} {cases:>8} cases  {wall:6.2f} s  {cases / wall:>9,.0f} cases/s  "
        f"peak RSS {rss:6.0f} MB  (median of {repeat}; best {min(w for w, _ in runs):.2f} s)"
    )
    return wall


def bare_parse(path: Path, repeat: int) -> float:
    """Median wall seconds of :data:`BARE` over ``path`` in a fresh process."""
    walls = [_run([sys.executable, "-c", BARE, str(path)])[0] for _ in range(repeat + 1)][1:]
    wall = statistics.median(walls)
    print(f"{'  bare lxml parse, same file':<28} {'':>8}        {wall:6.2f} s  "
          f"(median of {repeat}; best {min(walls):.2f} s)")
    return wall


def in_process(paths: list[Path], cases: int) -> None:
    """The same work without interpreter start-up and imports (warm, one process)."""
    from workbench.ingest import parse_file
    from workbench.store import Store
    from workbench.store.writes import submit_runs

    parse_file(paths[0]).tables()  # warm imports
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
    parser.add_argument("--repeat", type=int, default=5,
                        help="measured runs per scenario (the median is kept)")
    parser.add_argument("--before", metavar="REV",
                        help="also time both scenarios with the code of this git revision")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, duckdb {duckdb.__version__}"
    )
    big = OUT / "one-100k"
    many = OUT / "many-1000x100"
    big_files = sorted(big.glob("*.xml")) or write_set(big, 1, 100_000)
    many_files = sorted(many.glob("*.xml")) or write_set(many, 1000, 100)
    end_to_end = scenario("1 file x 100,000 cases", big_files, 100_000, args.repeat)
    bare = bare_parse(big_files[0], args.repeat)
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            CODE.append(str(export(args.before, Path(tmp))))
            before = scenario(f"  same, code of {args.before}"[:28], big_files, 100_000,
                              args.repeat)
            CODE.clear()
        print(f"  before: end to end / bare   {before / bare:.2f}x")
    ratio = end_to_end / bare
    print(f"  end to end / bare parse     {ratio:.2f}x  (target <= {TARGET_RATIO:g}x: "
          f"{'met' if ratio <= TARGET_RATIO else 'not met'})")
    in_process(big_files, 100_000)
    scenario("1,000 files x 100 cases", many_files, 100_000, args.repeat)
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            CODE.append(str(export(args.before, Path(tmp))))
            scenario(f"  same, code of {args.before}"[:28], many_files, 100_000, args.repeat)
            CODE.clear()
    in_process(many_files, 100_000)


if __name__ == "__main__":
    main()
