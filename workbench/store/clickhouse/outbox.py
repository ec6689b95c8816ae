"""Test results reach ClickHouse through the node's file: a transactional outbox.

Every write about runs (a report stored, a live run's batch, its end) runs as on the
DuckDB store, in a transaction on the node's file, where the parsers' tables, attempt
numbers, final flags and counts are made with the SQL that makes them there. Before that
transaction commits, :func:`ship` sends what it changed to ClickHouse (signatures, then
results, then the run: a run is listed only once its results are there) and removes from
the file what is final. If ClickHouse refuses, the transaction rolls back and the write
fails whole, with ClickHouse's reason; if the file then failed to commit, the rows sent
are sent again by the next write, and ``ReplacingMergeTree`` keeps one of each.

So the file holds only runs still running (a live run's counts are made from its rows)
and the keys of their results already sent (``ch_shipped``), whatever the size of what the
team stores.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import pyarrow as pa

from .results_ddl import RESULT_COLUMNS, RUN_COLUMNS, SIGNATURE_COLUMNS

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

Insert = Callable[[str, pa.Table], None]


def _cols(alias: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{c}" for c in columns)


def _arrow(cur, sql: str) -> pa.Table:
    """``sql``'s answer on the writer's cursor (its transaction) as Arrow. (``cur.sql``
    would refuse while the write's last statement has a result left unread; the copy
    DuckDB warns of is the size of one write's rows.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return cur.execute(sql).to_arrow_table()


def ship(cur, insert: Insert) -> int:
    """Send what the file holds and ClickHouse does not; return the rows sent."""
    if not cur.execute("SELECT count(*) FROM runs").fetchone()[0]:
        return 0
    version = pa.scalar(time.time_ns(), pa.uint64())
    results = _arrow(
        cur, f"SELECT ru.project, coalesce(ru.started_at, ru.ingested_at) AS started_at, "
        f"{_cols('r', RESULT_COLUMNS)} {_UNSENT}")
    signatures = _arrow(
        cur, f"SELECT {_cols('g', SIGNATURE_COLUMNS)} FROM signatures g WHERE g.signature IN "
        f"(SELECT r.signature {_UNSENT} WHERE r.signature IS NOT NULL)")
    cols = ", ".join("coalesce(started_at, ingested_at) AS started_at" if c == "started_at"
                     else c for c in RUN_COLUMNS)
    runs = _arrow(cur, f"SELECT {cols} FROM runs")
    sent = 0
    for table, rows in (("wb_signatures", signatures), ("wb_results", results),
                        ("wb_runs", runs)):
        if rows.num_rows:
            insert(table, rows.append_column(
                "_version", pa.array([version.as_py()] * rows.num_rows, pa.uint64())))
            sent += rows.num_rows
    # What is final leaves the file; of a running run, the file remembers what it sent.
    cur.execute("DELETE FROM ch_shipped WHERE run_id IN "
                "(SELECT run_id FROM runs WHERE status <> 'running')")
    cur.execute("DELETE FROM results WHERE run_id IN "
                "(SELECT run_id FROM runs WHERE status <> 'running')")
    cur.execute("DELETE FROM runs WHERE status <> 'running'")
    cur.execute(f"INSERT INTO ch_shipped SELECT r.run_id, r.test_id, r.attempt {_UNSENT}")
    return sent
