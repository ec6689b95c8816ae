"""Coverage and the control plane's records in ClickHouse.

- **Coverage** (``wb_coverage_reports``, ``_files``, ``_tests``): like test results, by
  day and by project then time (a file's and a test's rows carry their report's project
  and time), ``ReplacingMergeTree`` so that a report stored again is one report.
- **What agents did and what people did to them** (``wb_agent_events``,
  ``wb_agent_samples``, ``wb_audit``): appended only, by day, each agent's rows together in
  time order (the audit log in time order); plain ``MergeTree``.

The views (``*_v``) are the node file's tables: its names, column order and types.
"""

from __future__ import annotations

from .results_ddl import _S, _TIME, _Z, _view

_N = "Nullable(Int32)"
_LIST = f"Array(Int32) {_Z}"

COVERAGE_REPORT_COLUMNS = (
    "report_id", "project", "commit_sha", "branch", "format", "source", "created_at",
    "files", "statements", "covered", "percent", "branches", "branches_covered", "contexts",
    "warnings")
COVERAGE_FILE_COLUMNS = (
    "report_id", "path", "statements", "covered", "percent", "branches", "branches_covered",
    "functions", "functions_covered", "statement_ranges", "covered_ranges", "partial_lines")
COVERAGE_TEST_COLUMNS = ("report_id", "test_id", "path", "ranges")
EVENT_COLUMNS = ("agent_id", "ts", "kind", "state", "text", "data")
SAMPLE_COLUMNS = ("agent_id", "ts", "cpu_percent", "rss_bytes", "threads")
AUDIT_COLUMNS = ("ts", "who", "role", "action", "target", "params", "outcome", "client")

COVERAGE_REPORTS = f"""
CREATE TABLE IF NOT EXISTS wb_coverage_reports (
    report_id String, project LowCardinality(String), commit_sha {_S}, branch {_S},
    format {_S}, source {_S}, created_at {_TIME}, files {_N}, statements {_N},
    covered {_N}, percent Nullable(Float64), branches {_N}, branches_covered {_N},
    contexts {_N}, warnings {_S}, _version UInt64,
    INDEX idx_report_id report_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ReplacingMergeTree(_version)
PARTITION BY toDate(created_at)
ORDER BY (project, created_at, report_id)
"""

COVERAGE_FILES = f"""
CREATE TABLE IF NOT EXISTS wb_coverage_files (
    project LowCardinality(String), created_at {_TIME}, report_id String, path String,
    statements {_N}, covered {_N}, percent Nullable(Float64), branches {_N},
    branches_covered {_N}, functions {_N}, functions_covered {_N},
    statement_ranges {_LIST}, covered_ranges {_LIST}, partial_lines {_LIST},
    _version UInt64
) ENGINE = ReplacingMergeTree(_version)
PARTITION BY toDate(created_at)
ORDER BY (project, created_at, report_id, path)
"""

COVERAGE_TESTS = f"""
CREATE TABLE IF NOT EXISTS wb_coverage_tests (
    project LowCardinality(String), created_at {_TIME}, report_id String,
    test_id String {_Z}, path String, ranges {_LIST}, _version UInt64
) ENGINE = ReplacingMergeTree(_version)
PARTITION BY toDate(created_at)
ORDER BY (project, created_at, report_id, path, test_id)
"""

AGENT_EVENTS = f"""
CREATE TABLE IF NOT EXISTS wb_agent_events (
    agent_id String, ts {_TIME}, kind LowCardinality(String), state {_S}, text {_S},
    data {_S}
) ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (agent_id, ts)
"""

AGENT_SAMPLES = f"""
CREATE TABLE IF NOT EXISTS wb_agent_samples (
    agent_id String, ts {_TIME}, cpu_percent Nullable(Float64), rss_bytes Nullable(Int64),
    threads {_N}
) ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (agent_id, ts)
"""

AUDIT = f"""
CREATE TABLE IF NOT EXISTS wb_audit (
    ts {_TIME}, who {_S}, role {_S}, action LowCardinality(String), target {_S},
    params {_S}, outcome {_S}, client {_S}
) ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY ts
"""


def _plain(name: str, table: str, columns: tuple[str, ...], casts: dict[str, str]) -> str:
    """A view of an appended-only table (no FINAL: nothing there is replaced)."""
    return _view(name, table, columns, casts).replace(" FINAL", "")


VIEWS = (
    _view("coverage_reports_v", "wb_coverage_reports", COVERAGE_REPORT_COLUMNS,
          {"project": "String"}),
    _view("coverage_files_v", "wb_coverage_files",
          ("project", "created_at", *COVERAGE_FILE_COLUMNS), {"project": "String"}),
    _view("coverage_tests_v", "wb_coverage_tests",
          ("project", "created_at", *COVERAGE_TEST_COLUMNS), {"project": "String"}),
    _plain("agent_events_v", "wb_agent_events", EVENT_COLUMNS, {"kind": "String"}),
    _plain("agent_samples_v", "wb_agent_samples", SAMPLE_COLUMNS, {}),
    _plain("audit_v", "wb_audit", AUDIT_COLUMNS, {"action": "String"}),
)
STATEMENTS = (COVERAGE_REPORTS, COVERAGE_FILES, COVERAGE_TESTS, AGENT_EVENTS, AGENT_SAMPLES,
              AUDIT, *VIEWS)
