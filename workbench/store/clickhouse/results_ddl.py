"""Test results in ClickHouse: runs, their results and the failure signatures.

Laid out as the peers lay out what a fleet sends (one row per event, partitioned by day,
sorted by project then time), with ``ReplacingMergeTree`` so that a run sent again (the
same report uploaded twice, to two nodes, or a live run's row shipped at each batch with
newer counts) is one row: the newest ``_version`` wins, and reads say ``FINAL``.

A result carries its run's project and start (denormalised, the ClickHouse way): the
results of a project's week are one range of the sort key, without a join to find it.
A run deleted by hand goes with its results by a lightweight ``DELETE`` (rare).

The views (``runs_v``, ``results_v``, ``signatures_v``) are the tables as the node's file
has them: ``FINAL`` (one row per run, per attempt), the file's column names, order and
types (no LowCardinality in answers), so the ClickHouse dialect of a query reads like
its DuckDB original.
"""

from __future__ import annotations

_Z = "CODEC(ZSTD(1))"
_S = f"Nullable(String) {_Z}"
_N = "Nullable(Int32)"
_TIME = "DateTime64(6, 'UTC')"

RUNS = f"""
CREATE TABLE IF NOT EXISTS wb_runs (
    run_id String, project LowCardinality(String),
    branch {_S}, commit_sha {_S}, build {_S}, build_url {_S}, ci_provider {_S},
    variant {_S}, source {_S}, format {_S},
    started_at {_TIME}, duration_s Nullable(Float64), ingested_at {_TIME},
    status LowCardinality(String),
    tests {_N}, passed {_N}, failed {_N}, errors {_N}, skipped {_N}, attempts {_N},
    header_tests {_N}, warnings {_S},
    _version UInt64,
    INDEX idx_run_id run_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ReplacingMergeTree(_version)
PARTITION BY toDate(started_at)
ORDER BY (project, started_at, run_id)
"""

RESULTS = f"""
CREATE TABLE IF NOT EXISTS wb_results (
    project LowCardinality(String), started_at {_TIME}, run_id String,
    test_id String {_Z}, suite {_S}, classname {_S}, name {_S}, params {_S}, file {_S},
    attempt Int16, final Bool, outcome LowCardinality(Nullable(String)),
    duration_s Nullable(Float64), message {_S}, error_type {_S}, details {_S},
    signature {_S},
    _version UInt64,
    INDEX idx_run_id run_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_test_id test_id TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplacingMergeTree(_version)
PARTITION BY toDate(started_at)
ORDER BY (project, started_at, run_id, test_id, attempt)
"""

SIGNATURES = f"""
CREATE TABLE IF NOT EXISTS wb_signatures (
    signature String, exception {_S}, normalized {_S}, suspect {_S}, _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY signature
"""


#: The columns of each, in the order of the node's file (``workbench/store/schema.py``).
RUN_COLUMNS = ("run_id", "project", "branch", "commit_sha", "build", "build_url",
               "ci_provider", "variant", "source", "format", "started_at", "duration_s",
               "ingested_at", "status", "tests", "passed", "failed", "errors", "skipped",
               "attempts", "header_tests", "warnings")
RESULT_COLUMNS = ("run_id", "test_id", "suite", "classname", "name", "params", "file",
                  "attempt", "final", "outcome", "duration_s", "message", "error_type",
                  "details", "signature")
SIGNATURE_COLUMNS = ("signature", "exception", "normalized", "suspect")


def _view(name: str, table: str, columns: tuple[str, ...], casts: dict[str, str]) -> str:
    cols = ", ".join(f"CAST({c} AS {casts[c]}) AS {c}" if c in casts else c for c in columns)
    return f"CREATE OR REPLACE VIEW {name} AS SELECT {cols} FROM {table} FINAL"


VIEWS = (
    _view("runs_v", "wb_runs", RUN_COLUMNS,
          {"project": "String", "status": "String"}),
    _view("results_v", "wb_results", ("project", "started_at", *RESULT_COLUMNS),
          {"project": "String", "outcome": "Nullable(String)"}),
    _view("signatures_v", "wb_signatures", SIGNATURE_COLUMNS, {}),
)
STATEMENTS = (RUNS, RESULTS, SIGNATURES, *VIEWS)
