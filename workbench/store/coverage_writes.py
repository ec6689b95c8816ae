"""Storing a coverage report: its totals, each file's lines and each test's lines, in one
transaction (a report is all there or not at all). The same report again replaces itself."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..config import utcnow
from .writes import _insert_arrow

if TYPE_CHECKING:
    from ..coverage import CoverageReport
    from .store import Store


def ranges(lines: set[int] | list[int]) -> list[int]:
    """Sorted lines as run-length ranges ``[first, last, first, last, ...]``."""
    out: list[int] = []
    for n in sorted(lines):
        if out and n == out[-1] + 1:
            out[-1] = n
        else:
            out += [n, n]
    return out


def expand(flat: list[int] | None) -> set[int]:
    """The lines of ``[first, last, ...]`` ranges."""
    flat = [] if flat is None else list(flat)
    return {n for i in range(0, len(flat), 2) for n in range(flat[i], flat[i + 1] + 1)}


def pairs(flat: list[int]) -> list[list[int]]:
    """``[first, last, first, last]`` as ``[[first, last], ...]`` (what JSON readers want)."""
    return [list(flat[i:i + 2]) for i in range(0, len(flat), 2)]


def contains(flat, line: int) -> bool:
    """Whether ``[first, last, ...]`` ranges hold ``line``."""
    flat = list(flat)
    return any(flat[i] <= line <= flat[i + 1] for i in range(0, len(flat), 2))


def report_id(data: bytes, meta: dict[str, Any]) -> str:
    digest = hashlib.sha256(data)
    digest.update(repr(sorted((k, str(v)) for k, v in meta.items())).encode())
    return "cov-" + digest.hexdigest()[:16]


def store_report(store: Store, report: CoverageReport, rid: str, meta: dict[str, Any],
                 source: str) -> dict[str, Any]:
    """Queue the report's rows (one transaction); returns its totals."""
    totals = report.totals()
    files = sorted(report.files.values(), key=lambda f: f.path)
    file_table = pa.table({
        "report_id": [rid] * len(files), "path": [f.path for f in files],
        "statements": [len(f.statements) for f in files],
        "covered": [len(f.covered & f.statements) for f in files],
        "percent": [round(100.0 * len(f.covered & f.statements) / len(f.statements), 2)
                    if f.statements else None for f in files],
        "branches": [f.branches for f in files],
        "branches_covered": [f.branches_covered for f in files],
        "functions": [f.functions for f in files],
        "functions_covered": [f.functions_covered for f in files],
        "statement_ranges": [ranges(f.statements) for f in files],
        "covered_ranges": [ranges(f.covered & f.statements) for f in files],
        "partial_lines": [sorted(f.partial) for f in files]},
        schema=pa.schema([("report_id", pa.string()), ("path", pa.string()),
                          ("statements", pa.int32()), ("covered", pa.int32()),
                          ("percent", pa.float64()), ("branches", pa.int32()),
                          ("branches_covered", pa.int32()), ("functions", pa.int32()),
                          ("functions_covered", pa.int32()),
                          ("statement_ranges", pa.list_(pa.int32())),
                          ("covered_ranges", pa.list_(pa.int32())),
                          ("partial_lines", pa.list_(pa.int32()))]))
    tests = [(t, path, ranges(lines)) for t, by_file in sorted(report.contexts.items())
             for path, lines in sorted(by_file.items())]
    test_table = pa.table({"report_id": [rid] * len(tests), "test_id": [t for t, _, _ in tests],
                           "path": [p for _, p, _ in tests], "ranges": [r for _, _, r in tests]},
                          schema=pa.schema([("report_id", pa.string()),
                                            ("test_id", pa.string()), ("path", pa.string()),
                                            ("ranges", pa.list_(pa.int32()))]))
    row = [rid, meta["project"], meta.get("commit"), meta.get("branch"), report.format, source,
           meta.get("created_at") or utcnow(), totals["files"], totals["statements"],
           totals["covered"],
           totals["percent"], totals["branches"], totals["branches_covered"],
           totals["contexts"], "; ".join(report.warnings)[:2000] or None]

    def write(cur) -> None:
        for table in ("coverage_tests", "coverage_files", "coverage_reports"):
            cur.execute(f"DELETE FROM {table} WHERE report_id = ?", [rid])
        cur.execute(f"INSERT INTO coverage_reports VALUES ({', '.join('?' * len(row))})", row)
        _insert_arrow(cur, "coverage_files", file_table)
        if len(test_table):
            _insert_arrow(cur, "coverage_tests", test_table)

    store.write(write, topic="tests")
    return totals
