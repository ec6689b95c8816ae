"""What a team shares reaches ClickHouse through the node's file: a transactional outbox.

Every write about runs, coverage, agents' events and samples or the audit log runs as on
the DuckDB store, in a transaction on the node's file, where the parsers' tables, attempt
numbers, final flags and counts are made with the SQL that makes them there. Just before
that transaction commits (``Store._before_commit``: once per batch of writes), :func:`ship`
sends the rows the file holds to ClickHouse and removes from the file what is final:

- runs: signatures, then results, then the run (a run is listed only once its results
  are there); a run still running stays in the file (its counts are made from its rows),
  which remembers which of its results it sent (``ch_shipped``);
- coverage: a report's tests, files, then the report;
- agents' events and samples and the audit log: appended, then gone from the file.

If ClickHouse refuses, the transaction rolls back and the writes fail whole, with
ClickHouse's reason. If ClickHouse took the rows and the file then failed to commit, a
resend (a report, a live batch) is one row again (``ReplacingMergeTree``).

So the file holds only what is in flight, whatever the size of what the team stores.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from .records_ddl import (
    AUDIT_COLUMNS,
    COVERAGE_FILE_COLUMNS,
    COVERAGE_REPORT_COLUMNS,
    COVERAGE_TEST_COLUMNS,
    EVENT_COLUMNS,
    SAMPLE_COLUMNS,
)
from .results_ddl import RESULT_COLUMNS, RUN_COLUMNS, SIGNATURE_COLUMNS

#: The topics whose writes are shipped.
TOPICS = ("tests", "control")

#: The node's own table of what it sent of its running runs.
LOCAL = """
CREATE TABLE IF NOT EXISTS ch_shipped (
    run_id VARCHAR NOT NULL, test_id VARCHAR NOT NULL, attempt SMALLINT
)
"""

_UNSENT = """
    FROM results r JOIN runs ru USING (run_id)
    ANTI JOIN ch_shipped s
      ON s.run_id = r.run_id AND s.test_id = r.test_id AND s.attempt = r.attempt
"""

#: ``insert(ClickHouse table, rows, topic)``.
Insert = Callable[[str, pa.Table, str], None]
#: ``replace(report ids)``: remove those coverage reports from ClickHouse, if there.
Replace = Callable[[list[str]], None]


#: The columns sent as something else than themselves: a list is never NULL in
#: ClickHouse (the file's NULL list is sent empty), JSON is kept as its text.
_AS = {**dict.fromkeys(("statement_ranges", "covered_ranges", "partial_lines", "ranges"),
                       "coalesce({}, [])"),
       "data": "{}::VARCHAR", "params": "{}::VARCHAR"}


def _cols(columns: tuple[str, ...], alias: str = "", **exprs: str) -> str:
    """``columns`` as the select list that sends them (``exprs``: a column's own)."""
    dot = f"{alias}." if alias else ""
    forms = {**_AS, **exprs}
    return ", ".join(f"{forms[c].format(dot + c)} AS {c}" if c in forms else dot + c
                     for c in columns)


def _arrow(cur, sql: str, params: list | None = None) -> pa.Table:
    """``sql``'s answer on the writer's cursor (its transaction) as Arrow. (``cur.sql``
    would refuse while the write's last statement has a result left unread; the copy
    DuckDB warns of is the size of one write's rows.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return cur.execute(sql, params).to_arrow_table()


def _any(cur, table: str) -> bool:
    return cur.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]


def _send(insert: Insert, topic: str, tables: list[tuple[str, pa.Table]],
          stamp: bool = True) -> int:
    version = time.time_ns()
    sent = 0
    for name, rows in tables:
        if rows.num_rows:
            if stamp:
                rows = rows.append_column("_version",
                                          pa.array([version] * rows.num_rows, pa.uint64()))
            insert(name, rows, topic)
            sent += rows.num_rows
    return sent


def ship(cur, insert: Insert, replace: Replace, topics: set[str]) -> int:
    """Send what the file holds for ``topics`` and ClickHouse does not; return the rows."""
    sent = 0
    if "tests" in topics:
        sent += _runs(cur, insert) + _coverage(cur, insert, replace)
    if "control" in topics:
        sent += _records(cur, insert)
    return sent


def _runs(cur, insert: Insert) -> int:
    if not _any(cur, "runs"):
        return 0
    started = "coalesce({}, ingested_at)"
    results = _arrow(cur, f"SELECT ru.project, coalesce(ru.started_at, ru.ingested_at) AS "
                          f"started_at, {_cols(RESULT_COLUMNS, 'r')} {_UNSENT}")
    # (the failures' signatures: those the results being sent name)
    named = pc.unique(results.column("signature").drop_null()).to_pylist()
    signatures = _arrow(cur, f"SELECT {_cols(SIGNATURE_COLUMNS)} FROM signatures WHERE "
                             "signature IN (SELECT unnest(?::VARCHAR[]))", [named])
    runs = _arrow(cur, f"SELECT {_cols(RUN_COLUMNS, started_at=started)} FROM runs")
    sent = _send(insert, "tests", [("wb_signatures", signatures), ("wb_results", results),
                                   ("wb_runs", runs)])
    # What is final leaves the file; of a running run, the file remembers what it sent.
    cur.execute("DELETE FROM ch_shipped WHERE run_id IN "
                "(SELECT run_id FROM runs WHERE status <> 'running')")
    cur.execute("DELETE FROM results WHERE run_id IN "
                "(SELECT run_id FROM runs WHERE status <> 'running')")
    cur.execute("DELETE FROM runs WHERE status <> 'running'")
    cur.execute(f"INSERT INTO ch_shipped SELECT r.run_id, r.test_id, r.attempt {_UNSENT}")
    return sent


def _coverage(cur, insert: Insert, replace: Replace) -> int:
    if not _any(cur, "coverage_reports"):
        return 0
    # A report stored again replaces the one stored before (as on the file), whose time,
    # part of the sort key, was another: its rows go first.
    replace([r[0] for r in cur.execute("SELECT report_id FROM coverage_reports").fetchall()])
    created = "coalesce({}, TIMESTAMP '1970-01-01')"
    head = _cols(("project", "created_at"), "r", created_at=created)
    tests = _arrow(cur, f"SELECT {head}, {_cols(COVERAGE_TEST_COLUMNS, 't')} "
                        "FROM coverage_tests t JOIN coverage_reports r USING (report_id)")
    files = _arrow(cur, f"SELECT {head}, {_cols(COVERAGE_FILE_COLUMNS, 'f')} "
                        "FROM coverage_files f JOIN coverage_reports r USING (report_id)")
    reports = _arrow(cur, f"SELECT {_cols(COVERAGE_REPORT_COLUMNS, created_at=created)} "
                          "FROM coverage_reports")
    sent = _send(insert, "tests", [("wb_coverage_tests", tests), ("wb_coverage_files", files),
                                   ("wb_coverage_reports", reports)])
    for table in ("coverage_tests", "coverage_files", "coverage_reports"):
        cur.execute(f"DELETE FROM {table}")
    return sent


_RECORDS = (("agent_events", "wb_agent_events", EVENT_COLUMNS),
            ("agent_samples", "wb_agent_samples", SAMPLE_COLUMNS),
            ("audit", "wb_audit", AUDIT_COLUMNS))


def _records(cur, insert: Insert) -> int:
    sent = 0
    for table, target, columns in _RECORDS:
        if not _any(cur, table):
            continue
        rows = _arrow(cur, f"SELECT {_cols(columns)} FROM {table}")
        sent += _send(insert, "control", [(target, rows)], stamp=False)
        cur.execute(f"DELETE FROM {table}")
    return sent
