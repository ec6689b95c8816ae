"""Write transactions run by the store's writer thread (each receives the writer's cursor)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import duckdb

    from ..ingest.base import ParsedRun
    from .store import Store

_RUN_COLUMNS = (
    "run_id", "project", "branch", "commit_sha", "build", "build_url", "ci_provider", "variant",
    "source", "format", "started_at", "duration_s", "status", "tests", "passed", "failed",
    "errors", "skipped", "attempts", "header_tests", "warnings",
)
_names = itertools.count()


def _insert_arrow(cur: duckdb.DuckDBPyConnection, table: str, data: pa.Table,
                  conflict: str = "") -> None:
    # A unique view name per call: batched writes share one cursor.
    name = f"_arrow_{next(_names)}"
    cur.register(name, data)
    try:
        cur.execute(f"INSERT {conflict} INTO {table} BY NAME SELECT * FROM {name}")
    finally:
        cur.unregister(name)


def _with_run_id(results: pa.Table, run_id: str) -> pa.Table:
    return results.append_column("run_id", pa.array([run_id] * results.num_rows, pa.string()))


def insert_run(store: Store, run: ParsedRun, meta: dict[str, Any],
               status: str = "complete") -> tuple[str, bool]:
    """Store a parsed report as one run in one transaction.

    Returns ``(run_id, created)``; a report whose bytes were stored before is not stored
    again (``created`` is False) whatever metadata it comes with.
    """
    run_id = run.content_hash[:16]
    counts = run.counts()
    results, sigs = run.tables()
    row = {
        "run_id": run_id, "project": meta.get("project"), "branch": meta.get("branch"),
        "commit_sha": meta.get("commit"), "build": meta.get("build"),
        "build_url": meta.get("build_url"), "ci_provider": meta.get("ci_provider"),
        "variant": meta.get("variant"), "source": run.source, "format": run.format,
        "started_at": meta.get("started_at") or run.started_at or datetime.now(),
        "duration_s": run.duration_s, "status": status, "tests": counts["tests"],
        "passed": counts["passed"], "failed": counts["failed"], "errors": counts["errors"],
        "skipped": counts["skipped"], "attempts": run.attempt_count,
        "header_tests": run.header_tests, "warnings": "; ".join(run.warnings) or None,
    }
    if isinstance(row["started_at"], datetime) and row["started_at"].tzinfo is not None:
        row["started_at"] = row["started_at"].astimezone().replace(tzinfo=None)

    def write(cur: duckdb.DuckDBPyConnection) -> bool:
        if cur.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            return False
        cols = ", ".join(_RUN_COLUMNS)
        marks = ", ".join("?" * len(_RUN_COLUMNS))
        cur.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", [row[c] for c in _RUN_COLUMNS])
        _insert_arrow(cur, "results", _with_run_id(results, run_id))
        if sigs.num_rows:
            _insert_arrow(cur, "signatures", sigs, "OR IGNORE")
        return True

    return run_id, store.write(write)


def append_results(store: Store, run_id: str, run: ParsedRun) -> int:
    """Add a batch of finished tests to a live run and refresh its counts."""
    results, sigs = run.tables()

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        if not cur.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            raise KeyError(f"no run {run_id!r}")
        _insert_arrow(cur, "results", _with_run_id(results, run_id))
        if sigs.num_rows:
            _insert_arrow(cur, "signatures", sigs, "OR IGNORE")
        _refresh_counts(cur, run_id)
        return results.num_rows

    return store.write(write)


def _refresh_counts(cur: duckdb.DuckDBPyConnection, run_id: str) -> None:
    cur.execute(
        """
        UPDATE runs SET
          tests = c.tests, passed = c.passed, failed = c.failed, errors = c.errors,
          skipped = c.skipped, attempts = c.attempts
        FROM (
          SELECT count(*) FILTER (WHERE final) AS tests,
                 count(*) FILTER (WHERE final AND outcome = 'passed') AS passed,
                 count(*) FILTER (WHERE final AND outcome = 'failed') AS failed,
                 count(*) FILTER (WHERE final AND outcome = 'error') AS errors,
                 count(*) FILTER (WHERE final AND outcome = 'skipped') AS skipped,
                 count(*) AS attempts
          FROM results WHERE run_id = ?
        ) c WHERE runs.run_id = ?
        """,
        [run_id, run_id],
    )


def start_live_run(store: Store, run_id: str, meta: dict[str, Any]) -> str:
    """Create an empty run in status ``running`` (the pytest plugin's first call)."""
    row = {c: None for c in _RUN_COLUMNS}
    row.update(
        run_id=run_id, project=meta.get("project") or "default", branch=meta.get("branch"),
        commit_sha=meta.get("commit"), build=meta.get("build"), build_url=meta.get("build_url"),
        ci_provider=meta.get("ci_provider"), variant=meta.get("variant"),
        source=meta.get("source"), format="pytest-live", started_at=datetime.now(),
        status="running", tests=0, passed=0, failed=0, errors=0, skipped=0, attempts=0,
    )

    def write(cur: duckdb.DuckDBPyConnection) -> str:
        cols = ", ".join(_RUN_COLUMNS)
        marks = ", ".join("?" * len(_RUN_COLUMNS))
        cur.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", [row[c] for c in _RUN_COLUMNS])
        return run_id

    return store.write(write)


def finish_live_run(store: Store, run_id: str, duration_s: float | None) -> None:
    """Mark a live run complete."""

    def write(cur: duckdb.DuckDBPyConnection) -> None:
        _refresh_counts(cur, run_id)
        cur.execute("UPDATE runs SET status = 'complete', duration_s = ? WHERE run_id = ?",
                    [duration_s, run_id])

    store.write(write)
