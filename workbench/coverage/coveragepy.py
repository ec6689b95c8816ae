"""coverage.py: its data file (``.coverage``, SQLite) read with coverage.py's own API, and
its JSON report (``coverage json [--show-contexts]``).

The data file holds only the lines that ran; which lines are statements comes from the
source, which coverage.py analyses — so the data file is read where the sources are, and
through coverage.py's own JSON reporter (with contexts), whose totals are its ``report``'s.
Per-test contexts: pytest-cov's ``--cov-context=test`` names each test by its node id
(``tests/test_x.py::test_y|run``); coverage.py's ``dynamic_context = test_function`` by
module and function (``tests.test_x.test_y``), mapped back to the node id here.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .model import CoverageError, CoverageReport, FileCoverage
from .paths import normalize

_PHASES = ("|run", "|setup", "|teardown", "|call")


def read_data_file(data: bytes, source: str, roots: list[str]) -> CoverageReport:
    doc, measured = _data_file_json(data, source)
    report = _from_json(doc, source, roots, "coveragepy")
    lost = measured - len(doc.get("files") or {})
    if lost:
        report.warnings.append(f"{lost} measured file(s) skipped: their source is not here "
                               "(statements come from the source)")
    return report


def as_json(data: bytes, source: str) -> bytes:
    """A data file as coverage.py's own JSON report (with contexts), read here — where its
    sources are — so that another machine can take it."""
    return json.dumps(_data_file_json(data, source)[0]).encode()


def _data_file_json(data: bytes, source: str) -> tuple[dict[str, Any], int]:
    """coverage.py's JSON report of a data file, and how many files it measured."""
    try:
        import coverage
        from coverage.exceptions import CoverageException
    except ImportError:  # pragma: no cover - a dependency of the package
        raise CoverageError(f"{source}: reading .coverage data needs coverage.py") from None
    with tempfile.TemporaryDirectory(prefix="observatory-cov-") as tmp:
        data_file = Path(tmp) / ".coverage"
        data_file.write_bytes(data)
        out = Path(tmp) / "coverage.json"
        # The measured files' paths are as recorded: analysed from the report's folder, so
        # that relative ones (relative_files = true) resolve.
        here = os.getcwd()
        try:
            os.chdir(Path(source).resolve().parent if source else here)
            cov = coverage.Coverage(data_file=str(data_file), config_file=False)
            cov.load()
            measured = cov.get_data().measured_files()
            if not measured:
                raise CoverageError(f"{source}: coverage.py data with no measured files")
            try:
                cov.json_report(outfile=str(out), show_contexts=True, ignore_errors=True)
            except CoverageException as err:
                raise CoverageError(f"{source}: coverage.py could not report: "
                                    f"{str(err).splitlines()[0]}") from None
        except Exception as err:  # a corrupt SQLite file, a data file of another version
            if isinstance(err, CoverageError):
                raise
            raise CoverageError(f"{source}: not readable as coverage.py data: "
                                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                                ) from None
        finally:
            os.chdir(here)
        doc = json.loads(out.read_text())
    if not doc.get("files"):
        raise CoverageError(f"{source}: none of the {len(measured)} measured files' sources "
                            "are here; ingest the data where the sources are, or ingest "
                            "`coverage json` / `coverage xml`")
    return doc, len(measured)


def read_json(data: bytes, source: str, roots: list[str]) -> CoverageReport:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CoverageError(f"{source}: not valid JSON: {err}") from None
    return _from_json(doc, source, roots, "coveragepy-json")


def _from_json(doc: Any, source: str, roots: list[str], fmt: str) -> CoverageReport:
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise CoverageError(f"{source}: not a coverage.py JSON report (no files object)")
    report = CoverageReport(fmt)
    names = {normalize(k, roots) for k in doc["files"]}
    for name, entry in doc["files"].items():
        if not isinstance(entry, dict):
            raise CoverageError(f"{source}: files[{name!r}] is not an object")
        path = normalize(name, roots)
        try:
            executed = {int(x) for x in entry.get("executed_lines") or []}
            missing = {int(x) for x in entry.get("missing_lines") or []}
        except (TypeError, ValueError):
            raise CoverageError(f"{source}: files[{name!r}]: line numbers must be integers") \
                from None
        fc = FileCoverage(path, statements=executed | missing, covered=executed)
        summary = entry.get("summary") or {}
        fc.branches = int(summary.get("num_branches") or 0)
        fc.branches_covered = int(summary.get("covered_branches") or 0)
        taken = {a for a, _ in entry.get("executed_branches") or []}
        fc.partial = {a for a, _ in entry.get("missing_branches") or [] if a in taken}
        functions = entry.get("functions") or {}
        fc.functions = sum(1 for f in functions if f)
        fc.functions_covered = sum(1 for f, v in functions.items() if f and isinstance(
            v, dict) and (v.get("summary") or {}).get("covered_lines"))
        report.add(fc)
        for line, contexts in (entry.get("contexts") or {}).items():
            for ctx in contexts or []:
                test = test_id(ctx, names, roots)
                if test:
                    report.contexts.setdefault(test, {}).setdefault(path, set()).add(
                        int(line))
    totals = doc.get("totals") or {}
    if "num_statements" in totals:
        report.claimed = {"statements": int(totals["num_statements"]),
                          "covered": int(totals.get("covered_lines") or 0)}
    return report


def test_id(context: str, files: set[str], roots: list[str] = ()) -> str | None:
    """The pytest node id a coverage context names, or None for the empty (no test)
    context. A ``module.function`` context names its module's file as measured, or as
    found under a root (test files are seldom measured)."""
    if not context:
        return None
    for phase in _PHASES:
        if context.endswith(phase):
            return context[: -len(phase)]
    if "::" in context or "/" in context:
        return context
    parts = context.split(".")  # dynamic_context = test_function: module.[Class.]function
    for cut in range(len(parts) - 1, 0, -1):
        module = "/".join(parts[:cut]) + ".py"
        match = next((f for f in files if f == module or f.endswith("/" + module)), None) \
            or next((module for root in roots if os.path.isfile(os.path.join(root, module))),
                    None)
        if match:
            return "::".join([match, *parts[cut:]])
    return context
