"""LCOV tracefiles (``lcov``, ``genhtml``'s input; Istanbul/nyc, c8, gcov, coverlet,
cargo-llvm-cov): ``SF:`` opens a file, ``DA:line,hits`` a line, ``BRDA:line,block,branch,
taken`` a branch destination, ``FN``/``FNDA`` functions, ``end_of_record`` closes it."""

from __future__ import annotations

from .model import CoverageError, CoverageReport, FileCoverage
from .paths import normalize


def read(data: bytes, source: str, roots: list[str]) -> CoverageReport:
    report = CoverageReport("lcov")
    text = data.decode("utf-8-sig", "replace")
    fc: FileCoverage | None = None
    branch_lines: dict[int, list[bool]] = {}
    functions: dict[str, int] = {}
    claimed_lf = claimed_lh = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("TN:"):
            continue
        key, _, value = line.partition(":")
        try:
            if key == "SF":
                fc = FileCoverage(normalize(value, roots), listed=(0, 0))
                branch_lines, functions = {}, {}
            elif fc is None:
                raise CoverageError(f"{source}:{n}: {key} outside a file record (no SF: "
                                    "before it)")
            elif key == "DA":
                parts = value.split(",")
                lineno, hits = int(parts[0]), int(float(parts[1]))
                fc.statements.add(lineno)
                fc.listed = (fc.listed[0] + 1, fc.listed[1] + (hits > 0))
                if hits > 0:
                    fc.covered.add(lineno)
            elif key == "BRDA":
                lineno, _block, _branch, taken = value.split(",", 3)
                branch_lines.setdefault(int(lineno), []).append(taken not in ("-", "0"))
            elif key == "FNDA":
                hits, name = value.split(",", 1)
                functions[name] = max(functions.get(name, 0), int(float(hits)))
            elif key == "FN":
                functions.setdefault(value.split(",", 1)[-1], 0)
            elif key == "LF":
                claimed_lf += int(value)
            elif key == "LH":
                claimed_lh += int(value)
            elif key == "end_of_record":
                for lineno, taken in branch_lines.items():
                    fc.branches += len(taken)
                    fc.branches_covered += sum(taken)
                    if 0 < sum(taken) < len(taken):
                        fc.partial.add(lineno)
                fc.functions = len(functions)
                fc.functions_covered = sum(1 for h in functions.values() if h > 0)
                report.add(fc)
                fc = None
        except (ValueError, IndexError):
            raise CoverageError(f"{source}:{n}: malformed {key} record: {line[:80]!r}") from None
    if fc is not None:
        raise CoverageError(f"{source}: the last file record ({fc.path}) has no end_of_record")
    if claimed_lf:
        report.claimed = {"statements": claimed_lf, "covered": claimed_lh}
    return report
