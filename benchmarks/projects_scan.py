"""How long does ``projects scan`` take over a big tree? 184k folders: 200 repositories of
400 folders each plus node_modules and a virtual environment in each (which the scan must
skip), and 100k plain folders between them (which it must read).

    python benchmarks/projects_scan.py [--repos 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402


def build(root: Path, repos: int) -> int:
    made = 0
    for r in range(repos):
        repo = root / f"team{r % 10}" / f"repo{r}"
        (repo / ".git").mkdir(parents=True)
        (repo / "pyproject.toml").write_text("")
        for d in range(400):
            (repo / f"pkg{d // 20}" / f"mod{d}").mkdir(parents=True, exist_ok=True)
        (repo / "node_modules" / "dep" / ".git").mkdir(parents=True)
        (repo / ".venv" / "lib").mkdir(parents=True)
        made += 420
    for d in range(100_000):
        (root / "plain" / f"a{d // 100}" / f"b{d}").mkdir(parents=True, exist_ok=True)
        made += 1
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    args = parser.parse_args()
    from workbench.projects.scan import scan

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        made = build(Path(tmp), args.repos)
        start = time.perf_counter()
        found, seen = scan([tmp])
        took = time.perf_counter() - start
        print(f"{made:,} folders made; scan read {seen:,} folders (stops at each repository's "
              f"root, skips node_modules and .venv), found {len(found)} projects in "
              f"{took:.2f} s")
        start = time.perf_counter()
        walked = sum(1 for _ in os.walk(tmp))
        print(f"for comparison, os.walk over all {walked:,} folders: "
              f"{time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
