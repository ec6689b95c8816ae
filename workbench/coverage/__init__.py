"""Coverage reports: read from the tools that write them (coverage.py's data file and JSON,
Cobertura XML, LCOV, JaCoCo XML) into one shape, :class:`~.model.CoverageReport`, whatever
the tool — lines, partial branches, functions where the format has them, and the lines each
test ran when the report keeps per-test contexts."""

from __future__ import annotations

from .model import CoverageError, CoverageReport, FileCoverage
from .read import FORMATS, agreement, read_coverage

__all__ = ["FORMATS", "CoverageError", "CoverageReport", "FileCoverage", "agreement",
           "read_coverage"]
