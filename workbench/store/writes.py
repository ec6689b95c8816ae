"""Write transactions run by the store's writer thread (each receives the writer's cursor)."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..config import to_utc, utcnow
from ..ingest import arrow
from ..ingest.base import CHUNK_ROWS, RESULT_SCHEMA, signature_table
from . import rollup

if TYPE_CHECKING:
    from concurrent.futures import Future

    import duckdb

    from ..ingest.base import ParsedRun
    from .store import Store

_RUN_COLUMNS = (
    "run_id",
    "project",
    "branch",
    "commit_sha",
    "build",
    "build_url",
    "ci_provider",
    "variant",
    "source",
    "format",
    "started_at",
    "duration_s",
    "status",
    "tests",
    "passed",
    "failed",
    "errors",
    "skipped",
    "attempts",
    "header_tests",
    "warnings",
)
_names = itertools.count()


@contextmanager
def _view(cur: duckdb.DuckDBPyConnection, data: pa.Table) -> Iterator[str]:
    """``data`` registered under a unique view name for the block's SQL (batched writes
    share one cursor, so names must not collide)."""
    name = f"_arrow_{next(_names)}"
    cur.register(name, data)
    try:
        yield name
    finally:
        cur.unregister(name)


def _insert_arrow(
    cur: duckdb.DuckDBPyConnection, table: str, data: pa.Table, conflict: str = ""
) -> None:
    with _view(cur, data) as name:
        cur.execute(f"INSERT {conflict} INTO {table} BY NAME SELECT * FROM {name}")


def _with_run_id(results: pa.Table, run_id: str) -> pa.Table:
    return results.append_column("run_id", arrow.repeat(run_id, results.num_rows))


_RUN_TYPES = {"started_at": pa.timestamp("us"), "duration_s": pa.float64(),
              **dict.fromkeys(("tests", "passed", "failed", "errors", "skipped", "attempts",
                               "header_tests"), pa.int64())}
_RUN_SCHEMA = pa.schema([(c, _RUN_TYPES.get(c, pa.string())) for c in _RUN_COLUMNS])


def _insert_runs(cur: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Insert rows of :func:`_run_row` (an Arrow table built without pandas: see
    :mod:`workbench.ingest.arrow`; as parameters, 128 rows took 0.15 s)."""
    _insert_arrow(cur, "runs", arrow.table({c: [r[c] for r in rows] for c in _RUN_COLUMNS},
                                           _RUN_SCHEMA))


def insert_run(
    store: Store, run: ParsedRun, meta: dict[str, Any], status: str = "complete",
    block: bool = True,
) -> tuple[str, bool]:
    """Store a parsed report as one run in one transaction.

    Returns ``(run_id, created)``; a report whose bytes were stored before is not stored
    again (``created`` is False) whatever metadata it comes with. ``block=False`` raises
    :class:`~workbench.store.StoreBusyError` instead of waiting for a full queue.
    """
    (run_id,), fut = submit_runs(store, [(run, meta)], status, block=block)
    return run_id, fut.result()[0]


def _run_row(run_id: str, run: ParsedRun, meta: dict[str, Any], status: str) -> dict[str, Any]:
    # A streamed run's counts are computed in the store afterwards (_refresh_counts).
    counts = run.counts() if run.sink is None else dict.fromkeys(_COUNTS, 0)
    if meta.get("started_at"):
        started = to_utc(meta["started_at"])
    elif run.started_at:
        started = to_utc(run.started_at, assume=meta.get("report_tz"))
    else:
        started = utcnow()
    return {
        "run_id": run_id,
        "project": meta.get("project"),
        "branch": meta.get("branch"),
        "commit_sha": meta.get("commit"),
        "build": meta.get("build"),
        "build_url": meta.get("build_url"),
        "ci_provider": meta.get("ci_provider"),
        "variant": meta.get("variant"),
        "source": run.source,
        "format": run.format,
        "started_at": started,
        "duration_s": run.duration_s,
        "status": status,
        "tests": counts["tests"],
        "passed": counts["passed"],
        "failed": counts["failed"],
        "errors": counts["errors"],
        "skipped": counts["skipped"],
        "attempts": run.attempt_count,
        "header_tests": run.header_tests,
        "warnings": "; ".join(run.warnings) or None,
    }


def submit_runs(
    store: Store, runs: list[tuple[ParsedRun, dict[str, Any]]], status: str = "complete",
    block: bool = True,
) -> tuple[list[str], Future]:
    """Queue many parsed reports as one transaction of a few bulk inserts.

    Returns their run ids and a future of a list of ``created`` flags (False for a report
    stored before, or repeated within ``runs``).
    """
    ids = [run.content_hash[:16] for run, _ in runs]
    rows = [_run_row(i, run, meta, status) for i, (run, meta) in zip(ids, runs, strict=True)]
    # Reports held in one piece are made into tables here, beside the writer; a report
    # packed into chunks (a big one) is made chunk by chunk by the writer as it inserts,
    # so that its memory is one chunk's, not the whole report's.
    sigs: dict[str, tuple] = {}
    ready = {i: [_with_run_id(t, ids[i]) for t in run.result_chunks(sigs)]
             for i, (run, _) in enumerate(runs) if not run.chunked}

    def write(cur: duckdb.DuckDBPyConnection) -> list[bool]:
        existing = set(store.runs_known(cur, ids))
        created, seen = [], set(existing)
        for run_id in ids:
            created.append(run_id not in seen)
            seen.add(run_id)
        keep = [i for i, c in enumerate(created) if c]
        if not keep:
            return created
        _insert_runs(cur, [rows[i] for i in keep])
        # Small reports go in together, a big one chunk by chunk (one transaction all the
        # same: a run is there whole or not at all).
        late: dict[str, tuple] = {}
        batch: list[pa.Table] = []
        for i in keep:
            chunks = ready.get(i) or (_with_run_id(t, ids[i])
                                      for t in runs[i][0].result_chunks(late))
            for chunk in chunks:
                batch.append(chunk)
                if sum(t.num_rows for t in batch) >= CHUNK_ROWS:
                    _insert_arrow(cur, "results", pa.concat_tables(batch))
                    batch = []
        if batch:
            _insert_arrow(cur, "results", pa.concat_tables(batch))
        if sigs or late:
            _insert_arrow(cur, "signatures", signature_table({**sigs, **late}), "OR IGNORE")
        return created

    return ids, store.submit(write, block=block)


def _require_running(store: Store, cur: duckdb.DuckDBPyConnection, run_id: str) -> None:
    from .store import RunStateError

    known = store.runs_known(cur, [run_id])
    if not known:
        raise KeyError(f"no run {run_id!r}")
    status = known[run_id]["status"]
    if status != "running":
        raise RunStateError(f"run {run_id!r} is {status}: results are taken only while a "
                            "run is running")


def live_writer_hash(store: Store, run_id: str) -> str | None:
    """The secret hash a live run's writer must match; not a named query, so the query API
    never serves it."""
    cur = store.cursor()
    try:
        row = cur.execute("SELECT secret_sha256 FROM live_writers WHERE run_id = ?",
                          [run_id]).fetchall()
    finally:
        cur.close()
    return row[0][0] if row else None


def append_results(store: Store, run_id: str, run: ParsedRun, block: bool = True,
                   running: list[str] | None = None) -> int:
    """Add a batch of finished tests to a live run and refresh its counts.

    Only while the run is ``running`` (a complete report or a finished run is final).
    ``running``: the tests started and not finished yet (replaces the previous list).
    """
    results, sigs = run.tables()

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        _require_running(store, cur, run_id)
        if running is not None:
            cur.execute("DELETE FROM live_running WHERE run_id = ?", [run_id])
            if running:
                now = utcnow()
                cur.executemany("INSERT INTO live_running VALUES (?, ?, ?)",
                                [[run_id, t, now] for t in running])
        _insert_arrow(cur, "results", _with_run_id(results, run_id))
        if sigs.num_rows:
            _insert_arrow(cur, "signatures", sigs, "OR IGNORE")
        _refresh_counts(cur, run_id)
        return results.num_rows

    return store.write(write, block=block)


_COUNTS = ("tests", "passed", "failed", "errors", "skipped")


def stream_report(
    store: Store, data: bytes, name: str, fmt: str | None,
    meta_for: Callable[[ParsedRun], dict[str, Any]], block: bool = True,
) -> tuple[str, bool, dict[str, Any]]:
    """Store a big report without holding it parsed: the parser's chunks of results go to
    a Parquet staging file as they are read, then one transaction inserts the file and
    computes the attempt numbers, final flags and the run's counts in SQL.

    Parsing happens before the transaction, so a big report keeps the writer (and every
    other client's writes) waiting for the insert only, not for the parse. Inserting one
    Parquet scan also costs DuckDB far less memory than appending chunks to an open
    transaction (about 300 bytes per row held until the commit).

    Returns ``(run_id, created, summary)`` with the run's counts and warnings as stored
    (those of the earlier run when the same bytes were stored before). A bad report raises
    :class:`~workbench.ingest.IngestError` and stores nothing.
    """
    import pyarrow.parquet as pq

    from ..ingest import parse_bytes

    with tempfile.TemporaryDirectory(prefix="observatory-stage-") as tmp:
        staged = Path(tmp) / "results.parquet"
        with pq.ParquetWriter(staged, RESULT_SCHEMA) as out:
            run = parse_bytes(data, name, fmt, sink=out.write_table)
            run.compact()  # the rows since the last chunk
        # The parser hashed the bytes as it went: no second pass over a big report.
        run_id = run.content_hash[:16]
        meta = meta_for(run)

        def write(cur: duckdb.DuckDBPyConnection) -> tuple[bool, dict[str, Any]]:
            created = not store.runs_known(cur, [run_id])
            if created:
                _insert_staged(cur, staged, run_id)
                if run.signatures:
                    _insert_arrow(cur, "signatures", signature_table(run.signatures),
                                  "OR IGNORE")
                _insert_runs(cur, [_run_row(run_id, run, meta, "complete")])
                _refresh_counts(cur, run_id)
            summary = store.runs_known(cur, [run_id], (*_COUNTS, "warnings"))[run_id]
            summary["warnings"] = summary["warnings"].split("; ") if summary["warnings"] else []
            return created, summary

        created, summary = store.write(write, block=block)
    return run_id, created, summary


def _insert_staged(cur: duckdb.DuckDBPyConnection, staged: Path, run_id: str) -> None:
    """Insert a staged run's results, every row first taken as a test's only attempt; then
    number the attempts of the tests that occur more than once (usually few: a window over
    all rows would cost as much memory again as the insert)."""
    # One scan inserted in one statement keeps the file's order in rowid (insertion order
    # is preserved): attempts in document order, the last one final.
    cur.execute(
        "INSERT INTO results BY NAME SELECT * EXCLUDE (attempt, final), 1 AS attempt,"
        " true AS final, ? AS run_id FROM read_parquet(?)", [run_id, str(staged)])
    cur.execute(
        """
        UPDATE results SET attempt = w.attempt, final = w.final
        FROM (SELECT rowid AS rid,
                     row_number() OVER (PARTITION BY test_id ORDER BY rowid) AS attempt,
                     row_number() OVER (PARTITION BY test_id ORDER BY rowid DESC) = 1 AS final
              FROM results
              WHERE run_id = ? AND test_id IN (
                SELECT test_id FROM results WHERE run_id = ?
                GROUP BY test_id HAVING count(*) > 1)) w
        WHERE results.rowid = w.rid
        """,
        [run_id, run_id],
    )


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


def start_live_run(store: Store, run_id: str, meta: dict[str, Any], block: bool = True,
                   secret_sha256: str | None = None) -> str:
    """Create an empty run in status ``running`` (the pytest plugin's first call).

    ``secret_sha256``: the hash of the secret its writer must present (server API).
    """
    row = {c: None for c in _RUN_COLUMNS}
    row.update(
        run_id=run_id,
        project=meta.get("project") or "default",
        branch=meta.get("branch"),
        commit_sha=meta.get("commit"),
        build=meta.get("build"),
        build_url=meta.get("build_url"),
        ci_provider=meta.get("ci_provider"),
        variant=meta.get("variant"),
        source=meta.get("source"),
        format="pytest-live",
        started_at=utcnow(),
        status="running",
        tests=0,
        passed=0,
        failed=0,
        errors=0,
        skipped=0,
        attempts=0,
    )

    def write(cur: duckdb.DuckDBPyConnection) -> str:
        cols = ", ".join(_RUN_COLUMNS)
        marks = ", ".join("?" * len(_RUN_COLUMNS))
        cur.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", [row[c] for c in _RUN_COLUMNS])
        if secret_sha256:
            cur.execute("INSERT INTO live_writers VALUES (?, ?)", [run_id, secret_sha256])
        return run_id

    return store.write(write, block=block)


def finish_live_run(
    store: Store, run_id: str, duration_s: float | None, block: bool = True,
    status: str = "complete",
) -> None:
    """Mark a live run complete (or ``status``: ``cancelled`` when its process was
    stopped before it could say it ended)."""

    def write(cur: duckdb.DuckDBPyConnection) -> None:
        _require_running(store, cur, run_id)
        cur.execute("DELETE FROM live_running WHERE run_id = ?", [run_id])
        _refresh_counts(cur, run_id)
        cur.execute(
            "UPDATE runs SET status = ?, duration_s = ? WHERE run_id = ?",
            [status, duration_s, run_id],
        )

    store.write(write, block=block)


def delete_run(store: Store, run_id: str, block: bool = True) -> bool:
    """Remove a run and its results in one transaction; False when there is no such run.

    Failure signatures stay: they are shared by every run whose failures have them.
    """

    def write(cur: duckdb.DuckDBPyConnection) -> bool:
        if not store.runs_known(cur, [run_id]):
            return False
        cur.execute("DELETE FROM results WHERE run_id = ?", [run_id])
        cur.execute("DELETE FROM live_writers WHERE run_id = ?", [run_id])
        cur.execute("DELETE FROM live_running WHERE run_id = ?", [run_id])
        cur.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        store.forget_run(cur, run_id)
        return True

    return store.write(write, block=block)


#: What makes a telemetry row the same row when an exporter sends it again (a retry after
#: a lost reply): (identity columns, the time column whose range bounds the search). A
#: span is its trace and span id; the rest are their content. The time column is part of
#: every identity, so a resend is looked for only among rows of the batch's time range
#: (DuckDB skips the other row groups by their min/max).
_IDENTITY = {
    "spans": (("trace_id", "span_id", "start_ns"), "start_ns"),
    "span_events": (("trace_id", "span_id", "time_ns", "name", "attributes"), "time_ns"),
    "logs": (("time_ns", "observed_ns", "severity_number", "body", "trace_id", "span_id",
              "event_name", "resource", "attributes"), "time_ns"),
    "metric_points": (("name", "time_ns", "start_ns", "type", "value", "count", "sum",
                       "resource", "attributes"), "time_ns"),
}


#: Identity columns never null in that table, compared with plain equality (a hash join);
#: the others with IS NOT DISTINCT FROM (a log's trace id, say, is often null).
_NOT_NULL = {
    "spans": {"trace_id", "span_id", "start_ns"},
    "span_events": {"trace_id", "span_id", "time_ns"},
    "logs": {"time_ns"},
    "metric_points": {"name", "time_ns"},
}


def _insert_new(cur: duckdb.DuckDBPyConnection, table: str, data: pa.Table,
                seq: int | None = None) -> int:
    """Insert the rows of ``data`` that are not stored yet (nor repeated within it),
    stamped with ``seq`` when the table has the column (see :mod:`.rollup`)."""
    import pyarrow.compute as pc

    keys, when = _IDENTITY[table]
    keys = [k for k in keys if k in data.column_names]  # a batch has the columns it uses
    bounds = pc.min_max(data.column(when))
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    match = " AND ".join(
        f"s.{k} = n.{k}" if k in _NOT_NULL[table] else f"s.{k} IS NOT DISTINCT FROM n.{k}"
        for k in keys)
    # Repeats inside one request are rare; only then is the window needed.
    repeated = data.group_by(keys).aggregate([]).num_rows < data.num_rows
    once = (f"QUALIFY row_number() OVER (PARTITION BY {', '.join('n.' + k for k in keys)}) = 1"
            if repeated else "")
    stamp = f", {int(seq)} AS seq" if table in rollup.TIME_COLUMN else ""
    with _view(cur, data) as name:
        # First look for stored rows at any of the batch's times: one integer column,
        # ~6x cheaper than comparing every identity column of every row in the time range,
        # which is what made ingest slow down as the file grew when a batch's times spread
        # over the last hour. Only a batch with such a row (a resend, or a rare equal
        # timestamp) pays for the exact comparison.
        clash = cur.execute(
            f"SELECT 1 FROM {table} s SEMI JOIN {name} n ON s.{when} = n.{when} "
            f"WHERE s.{when} BETWEEN $lo AND $hi LIMIT 1", {"lo": lo, "hi": hi}).fetchall()
        new = (f"""WHERE NOT EXISTS (
                SELECT 1 FROM {table} s
                WHERE s.{when} BETWEEN $lo AND $hi AND {match}
            )""" if clash else "")
        cur.execute(f"INSERT INTO {table} BY NAME SELECT n.*{stamp} FROM {name} n {new} {once}",
                    {"lo": lo, "hi": hi} if clash else None)
        return cur.fetchone()[0]


def submit_telemetry(store: Store, tables: dict[str, list[dict[str, Any]]],
                     block: bool = False) -> Future:
    """Queue decoded OTLP rows (one request, or the OTLP inbox's group of them) as one
    write; never blocks unless ``block``.

    A request sent again (an exporter retrying after a lost reply) stores nothing twice:
    spans are identified by trace and span id, events, log records and metric points by
    their content; links are stored with their span, once. The future holds the number of
    rows that were new.

    Raises :class:`~workbench.store.StoreBusyError` when the write queue is full, which the
    receiver answers with 503 and ``Retry-After``.
    """
    return submit_arrow(store, {t: arrow.rows_table(rows) for t, rows in tables.items() if rows},
                        block=block)


def submit_arrow(store: Store, tables: dict[str, pa.Table], block: bool = False) -> Future:
    """:func:`submit_telemetry` of rows already made into Arrow tables (by the OTLP
    inbox's flattening process)."""

    def write(cur: duckdb.DuckDBPyConnection) -> int:
        stored = 0
        seq, folded = rollup.stamp(cur)
        links = tables.get("span_links")
        if links is not None and "spans" in tables:
            # A link belongs to its span: keep those of spans this request adds.
            known = _stored_span_keys(cur, tables["spans"])
            if known:
                keep = [(t, s) not in known for t, s in zip(
                    links.column("trace_id").to_pylist(), links.column("span_id").to_pylist(),
                    strict=True)]
                links = links.filter(pa.array(keep))
        for table, data in tables.items():
            if table == "span_links":
                continue
            stored += _insert_new(cur, table, data, seq)
        if links is not None and links.num_rows:
            _insert_arrow(cur, "span_links", links)
            stored += links.num_rows
        rollup.fold_if_due(cur, seq, folded, stored)
        return stored

    return store.submit(write, block=block, topic="telemetry")


def _stored_span_keys(cur: duckdb.DuckDBPyConnection, spans: pa.Table) -> set[tuple]:
    with _view(cur, spans) as name:
        lo, hi = cur.execute(f"SELECT min(start_ns), max(start_ns) FROM {name}").fetchone()
        rows = cur.execute(
            f"""SELECT DISTINCT s.trace_id, s.span_id FROM spans s JOIN {name} n
                ON s.trace_id = n.trace_id AND s.span_id = n.span_id
                AND s.start_ns IS NOT DISTINCT FROM n.start_ns
                WHERE s.start_ns BETWEEN ? AND ?""", [lo, hi]).fetchall()
    return set(rows)
