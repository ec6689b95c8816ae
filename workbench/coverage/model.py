"""One coverage report, whatever tool wrote it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class CoverageError(ValueError):
    """A report that cannot be read; the message is one line naming the file and why."""


@dataclass
class FileCoverage:
    """One source file: its executable lines, those run, and branch details.

    ``partial`` lines are those with a branch taken only some of the ways; ``branches`` and
    ``branches_covered`` count branch destinations where the format has them (else 0).
    """

    path: str
    statements: set[int] = field(default_factory=set)
    covered: set[int] = field(default_factory=set)
    partial: set[int] = field(default_factory=set)
    branches: int = 0
    branches_covered: int = 0
    functions: int = 0
    functions_covered: int = 0
    #: Line entries as listed, a line listed twice counted twice (readers whose format
    #: can repeat a line count them; else the sets' sizes).
    listed: tuple[int, int] | None = None

    @property
    def missing(self) -> set[int]:
        return self.statements - self.covered

    def merge(self, other: FileCoverage) -> None:
        """The same file twice in one report (Cobertura lists a file per class)."""
        self.statements |= other.statements
        self.covered |= other.covered
        self.partial |= other.partial
        self.branches += other.branches
        self.branches_covered += other.branches_covered
        self.functions += other.functions
        self.functions_covered += other.functions_covered


@dataclass
class CoverageReport:
    """Files by project-relative path; ``contexts``: test id → path → lines it ran;
    ``claimed``: the totals the report states about itself (checked against ours)."""

    format: str
    files: dict[str, FileCoverage] = field(default_factory=dict)
    contexts: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    claimed: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Lines and covered lines as the report lists them, a line listed twice counted twice
    #: (as the tools' own totals count them: a file split over classes or records).
    listed: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, fc: FileCoverage) -> None:
        listed = fc.listed or (len(fc.statements), len(fc.covered & fc.statements))
        self.listed[0] += listed[0]
        self.listed[1] += listed[1]
        if fc.path in self.files:
            self.files[fc.path].merge(fc)
        else:
            self.files[fc.path] = fc

    def totals(self) -> dict[str, Any]:
        statements = sum(len(f.statements) for f in self.files.values())
        covered = sum(len(f.covered & f.statements) for f in self.files.values())
        branches = sum(f.branches for f in self.files.values())
        return {"files": len(self.files), "statements": statements, "covered": covered,
                "percent": round(100.0 * covered / statements, 2) if statements else None,
                "branches": branches,
                "branches_covered": sum(f.branches_covered for f in self.files.values()),
                "contexts": len(self.contexts)}
