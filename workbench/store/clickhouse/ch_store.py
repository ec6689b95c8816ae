"""The store over ClickHouse: shared data there, this node's control state in a file.

What a team shares (telemetry, test results, coverage, agents' events and samples, the
audit log) is in ClickHouse, where every ``observatory serve`` of the team and every
stock Collector reads and writes it. The control plane (agents, their queue and
approvals, alert rules, webhooks, workflows, tokens, settings) belongs to the one node
that runs the agents: it stays in a small DuckDB file beside that node
(:class:`~workbench.store.Store`, which this class is), and other nodes show it through
that node's API.

A named query is answered by ClickHouse when :mod:`.ch_queries` has a ClickHouse dialect
of it, else by the file: models and views never know which. A query of the file that
also reads runs (the projects overview: scans beside their last runs) gets the runs it
needs from ClickHouse, in its cursor under the table's name (:data:`.ch_test_queries.FEDERATED`).

Writes of shared data go through the file as an outbox (:mod:`.outbox`).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ... import config
from ..store import Store, StoreBusyError, StoreWriteError, _now
from . import (
    ch_queries,
    ch_record_queries,  # noqa: F401  (its dialects join ch_queries.QUERIES)
    ch_retention,
    ch_test_queries,
    connect,
    otel_rows,
    outbox,
    schema,
)
from .connect import first_line
from .shared_signal import SharedSignal

log = logging.getLogger("workbench.store")


def _naive(table):
    """Times in UTC without their zone, as the file's TIMESTAMP columns hold them."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(i, field.name,
                                     table.column(i).cast(pa.timestamp(field.type.unit)))
    return table


class ClickHouseStore(Store):
    """``url`` (``clickhouse://…`` or ``chdb:///folder``) for shared data, ``control`` (a
    DuckDB file) for this node's control state."""

    dialect = "clickhouse"

    def __init__(self, url: str, control: str | Path, max_pending: int = 256):
        self.target = connect.parse(url)
        self.url = self.target.shown
        # The driver logs each failed request with its traceback; the store's own errors
        # say it in one line (health, the API's 503, the page).
        logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
        try:
            self._ch = connect.client(self.target)
        except Exception as err:  # noqa: BLE001  (the client raises many kinds)
            raise self._refused("cannot open", err) from None
        self._ch_closing = False  # (set first by close(): no new insert is taken)
        self._news: set[str] = set()  # shared topics this batch changed (the writer's)
        try:
            schema.migrate(self._ch, self.url)
        except schema.NewerSchemaError as err:
            self._ch.close()
            raise StoreWriteError(str(err), path=self.url, reason=str(err)) from None
        except Exception as err:  # noqa: BLE001  (a read-only user, a server refusing DDL)
            self._ch.close()
            raise self._refused("cannot make the tables in", err) from None
        super().__init__(control, max_pending=max_pending)
        self._inserts: queue.Queue = queue.Queue(max_pending)
        self._ch_error: str | None = None
        self._ch_last: str | None = None
        try:
            self._signal = SharedSignal(self._ch, self.target.database, self._tell,
                                        config.get("OBSERVATORY_REDIS_URL"),
                                        config.get("OBSERVATORY_SHARED_POLL_S"))
        except Exception:
            Store.close(self)
            self._ch.close()
            raise
        try:  # (and send what the file holds: a copied file's runs, a write cut short)
            for topic in outbox.TOPICS:
                self.write(lambda cur: cur.execute(outbox.LOCAL), topic=topic)
        except Exception:
            self.close()
            raise
        self._inserter = threading.Thread(target=self._insert_loop, daemon=True,
                                          name="observatory-clickhouse-writer")
        self._inserter.start()

    def _refused(self, doing: str, err: BaseException) -> StoreWriteError:
        """What ClickHouse or the way to it refused, on one line (never the password)."""
        return StoreWriteError(f"{doing} {self.url}: {first_line(err)}", path=self.url,
                               reason=first_line(err))

    # -- reads ----------------------------------------------------------------------------
    def query(self, name: str, /, **params: Any) -> pd.DataFrame:
        if name in ch_queries.QUERIES:
            return ch_queries.shaped(self.query_arrow(name, **params))
        if name in ch_test_queries.FEDERATED:
            return self._federated(name, params, arrow=False)
        return super().query(name, **params)

    def query_arrow(self, name: str, /, **params: Any):
        if name in ch_test_queries.FEDERATED:
            return self._federated(name, params, arrow=True)
        if name not in ch_queries.QUERIES:
            return super().query_arrow(name, **params)
        sql, args = ch_queries.render(name, params)
        if callable(sql):  # (a procedure: statements that depend on the last one's answer)
            return sql(self.ch_arrow)
        return self.ch_arrow(sql, args)

    def _federated(self, name: str, params: dict[str, Any], arrow: bool):
        """A query of the file with the runs it reads fetched from ClickHouse first."""
        from ..queries import render

        sql, args = render(name, params)
        with self._reading() as cur:
            for table, fetch in ch_test_queries.FEDERATED[name](
                    params, lambda q: cur.execute(q).fetchall()).items():
                cur.register(table, _naive(self.ch_arrow(*fetch)))
            answer = cur.sql(sql, params=args)
            return answer.to_arrow_table() if arrow else answer.df()

    def ch_sql(self, sql: str, parameters: dict[str, Any] | None = None) -> pd.DataFrame:
        """Read-only SQL on ClickHouse, ad hoc (notebooks; ``sql`` is the control file)."""
        return ch_queries.shaped(self.ch_arrow(sql, parameters))

    def ch_arrow(self, sql: str, parameters: dict[str, Any] | None = None):
        """Read-only SQL on ClickHouse, as Arrow."""
        return self._ch_read(lambda: self._ch.query_arrow(sql, parameters=parameters or {}))

    def ch_command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        """A statement on ClickHouse (a write's, retention's deletes)."""
        with self._writing():
            self._ch.command(sql, parameters=parameters or {})

    #: The file's tables kept in ClickHouse, and the view with their columns there.
    SHARED_VIEWS = {"runs": "runs_v", "results": "results_v", "signatures": "signatures_v",
                    "coverage_reports": "coverage_reports_v",
                    "coverage_files": "coverage_files_v", "coverage_tests": "coverage_tests_v",
                    "agent_events": "agent_events_v", "agent_samples": "agent_samples_v",
                    "audit": "audit_v", "spans": "spans", "span_events": "span_events",
                    "logs": "logs", "metric_points": "metric_points"}

    def shared_views(self) -> dict[str, str]:
        return dict(self.SHARED_VIEWS)

    def shared_where(self, table, flt) -> tuple[str, dict[str, Any]]:
        """The export filter's condition over the views, with bound values."""
        from ..kinds import where

        a = ch_queries._Args()
        cond, _ = where(table, flt, names=self.SHARED_VIEWS,
                        bind=lambda v: a(v) if isinstance(v, str) else a.time(v))
        return cond.replace("TRUE", "1"), a

    def ch_stream(self, sql: str, parameters: dict[str, Any]):
        """``sql``'s rows as a stream of Arrow batches (times in UTC without their zone,
        as the file's), for DuckDB to read as it writes: memory stays one batch's."""
        import pyarrow as pa

        def batches():
            with self._ch_read(lambda: self._ch.query_arrow_stream(
                    sql, parameters=parameters)) as stream:
                for batch in stream:
                    yield _naive(pa.Table.from_batches([batch])).to_batches()[0] \
                        if batch.num_rows else None

        first = batches()
        head = next((b for b in first if b is not None), None)
        if head is None:  # (no rows: the schema from an empty answer)
            empty = _naive(self.ch_arrow(f"SELECT * FROM ({sql}) LIMIT 0", parameters))
            return pa.RecordBatchReader.from_batches(empty.schema, iter(()))

        def rest():
            yield head
            for b in first:
                if b is not None:
                    yield b.cast(head.schema) if b.schema != head.schema else b

        return pa.RecordBatchReader.from_batches(head.schema, rest())

    def shared_tables(self) -> dict[str, Any]:
        """ClickHouse's tables of this database: rows, bytes on disk and in memory, active
        parts and the TTL each has (the Storage page; ``GET /api/store``)."""
        parts = self.ch_sql("""
            SELECT table, toInt64(sum(rows)) AS rows,
                   toInt64(sum(data_compressed_bytes)) AS bytes,
                   toInt64(sum(data_uncompressed_bytes)) AS uncompressed,
                   toInt64(count()) AS parts, min(min_time) AS oldest
            FROM system.parts WHERE database = currentDatabase() AND active
            GROUP BY table ORDER BY bytes DESC""")
        ttl = dict(self.ch_sql(
            "SELECT name, extract(create_table_query, 'TTL (.*?)(?: SETTINGS|$)') AS ttl "
            "FROM system.tables WHERE database = currentDatabase()").values.tolist())
        tables = [{"table": r["table"], "rows": int(r["rows"]), "bytes": int(r["bytes"]),
                   "uncompressed": int(r["uncompressed"]), "parts": int(r["parts"]),
                   "ttl": ttl.get(r["table"]) or None}
                  for r in parts.to_dict(orient="records")]
        return {"url": self.url, "tables": tables,
                "bytes": sum(t["bytes"] for t in tables),
                "uncompressed": sum(t["uncompressed"] for t in tables)}

    # -- retention: the policies as TTL, applied now on demand (see .ch_retention) ---------
    def policies_changed(self) -> None:
        from ..retention import policies

        with self._writing():
            ch_retention.sync(self._ch, policies(self))

    def apply_shared_retention(self, todo, every, now, archive_dir) -> dict[str, Any]:
        out = ch_retention.apply(self, todo, every, now, archive_dir)
        if out["deleted"]:
            news = frozenset({"tests", "telemetry", "control"})
            self._signal.publish(news)
            self._tell(news)
        return out

    def _ch_read(self, run):
        """Run a read; the server or the network away is :class:`StoreWriteError` (the
        API's 503, the page's reason). What ClickHouse refused as such stays itself."""
        from clickhouse_connect.driver.exceptions import OperationalError

        try:
            return run()
        except OperationalError as err:
            raise self._refused("cannot read", err) from None

    def tables(self) -> list[str]:
        shared = self.ch_sql("SELECT name FROM system.tables WHERE database = currentDatabase()"
                             " ORDER BY name")["name"].tolist()
        return sorted({*shared, *super().tables()})

    # -- shared data: the file as an outbox (see .outbox) ----------------------------------
    def _before_commit(self, cur, batch: list) -> None:
        topics = {topic for _, _, topic in batch}
        outbox.ship(cur, self._insert_arrow, self._replace_reports, topics)

    def _replace_reports(self, report_ids: list[str]) -> None:
        with self._writing():
            there = self._ch.query_arrow(
                "SELECT DISTINCT report_id FROM wb_coverage_reports "
                "WHERE report_id IN {ids:Array(String)}",
                parameters={"ids": report_ids}).column("report_id").to_pylist()
        if there:
            for table in ("wb_coverage_tests", "wb_coverage_files", "wb_coverage_reports"):
                self.ch_command(f"DELETE FROM {table} WHERE report_id IN {{ids:Array(String)}}",
                                {"ids": there})

    def _insert_arrow(self, table: str, rows, topic: str) -> None:
        self._news.add(topic)
        with self._signal.lock:
            with self._writing():
                self._ch.insert_arrow(table, rows)
            if topic in self._signal.topics:
                self._signal.counted(rows.num_rows, topic)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """What ClickHouse or the way to it refused while a write talked to it, as the
        write's own :class:`StoreWriteError` (``shared``: the file is not at fault)."""
        try:
            yield
        except StoreWriteError:
            raise
        except Exception as err:  # noqa: BLE001  (the client raises many kinds)
            reason = first_line(err)
            raise StoreWriteError(f"could not write to {self.url}: {reason} (the write was "
                                  "not stored)", path=self.url, reason=reason,
                                  shared=True) from None

    def runs_known(self, cur, run_ids, columns=("status",)):
        known = super().runs_known(cur, run_ids, columns)  # (running: in the file)
        rest = [r for r in run_ids if r not in known]
        if rest:
            with self._writing():
                table = self._ch.query_arrow(
                    f"SELECT run_id, {', '.join(columns)} FROM runs_v "
                    "WHERE run_id IN {ids:Array(String)}", parameters={"ids": rest})
            for row in table.to_pylist():
                known[row.pop("run_id")] = row
        return known

    def forget_run(self, cur, run_id: str) -> None:
        self._news.add("tests")
        for table in ("wb_results", "wb_runs"):
            self.ch_command(f"DELETE FROM {table} WHERE run_id = {{r:String}}", {"r": run_id})

    def _committed(self, batch: list, results: list, wrote: bool) -> None:
        super()._committed(batch, results, wrote)
        # (the other nodes hear only of what changed there, not of this node's own state)
        news, self._news = frozenset(self._news), set()
        if news:
            self._signal.publish(news)

    # -- telemetry writes -----------------------------------------------------------------
    def submit_otlp(self, signal: str, msg) -> tuple[Any, cf.Future]:
        """Queue one decoded OTLP request's rows; ``(batch, future of rows stored)``.
        Never waits for a full queue (:class:`StoreBusyError`: the receiver's 503)."""
        if self._ch_closing:
            raise self._write_error("the store is closed")
        out = otel_rows.rows(signal, msg)
        fut: cf.Future = cf.Future()
        # The request's own bytes name it: the same request sent again is the same block.
        token = hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()
        try:
            self._inserts.put_nowait((out.tables, token, fut))
        except queue.Full:
            raise StoreBusyError("write queue is full") from None
        return out.batch, fut

    def _insert_loop(self) -> None:
        while True:
            item = self._inserts.get()
            if item is None:
                return
            tables, token, fut = item
            if not tables:  # (a settle() marker: everything before it is stored)
                fut.set_result(0)
                continue
            stored = 0
            try:
                with self._signal.lock:
                    for table, cols in tables.items():
                        names = list(cols)
                        self._ch.insert(
                            table, [cols[n] for n in names], column_names=names,
                            column_oriented=True,
                            settings={"insert_deduplication_token": f"{token}:{table}"})
                        stored += len(cols[names[0]])
                        self._signal.counted(len(cols[names[0]]), "telemetry")
            except Exception as err:  # noqa: BLE001
                reason = first_line(err)
                self._ch_error = reason
                fut.set_exception(StoreWriteError(
                    f"could not write to {self.url}: {reason} (the request was not stored)",
                    path=self.url, reason=reason))
                continue
            self._ch_error, self._ch_last = None, _now()
            self._signal.publish(frozenset({"telemetry"}))
            self._tell(frozenset({"telemetry"}))
            fut.set_result(stored)

    def settle(self) -> None:
        """Wait until every write queued before now is stored (telemetry included)."""
        if not self._ch_closing:
            done: cf.Future = cf.Future()
            self._inserts.put(({}, "", done))
            done.result()
        super().settle()

    # -- state ----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        out = super().health()
        if self.target.path is None and not self._closing:
            try:  # (a server that went away says so before the next write finds out)
                reachable = self._ch.ping()
            except Exception:  # noqa: BLE001
                reachable = False
        else:
            reachable = True
        error = self._ch_error or (None if reachable else "the server does not answer")
        out["clickhouse"] = {"url": self.url, "error": error,
                             "pending": self._inserts.qsize(), "last_insert": self._ch_last,
                             "redis": None if self._signal._redis is None else (
                                 self._signal.redis_error or "ok")}
        if error and out["store"] == "ok":
            out.update(store="error", error=f"{self.url}: {error}")
        return out

    def close(self, timeout: float | None = 5.0) -> None:
        """Store what is queued (within ``timeout``), fail what is left, then close."""
        with self._lock:
            if self._ch_closing:
                return
            self._ch_closing = True  # (submit_otlp and settle refuse from now on)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._inserter.is_alive():
            try:
                self._inserts.put(None, timeout=0.2)
                break
            except queue.Full:
                if deadline is not None and time.monotonic() > deadline:
                    break
        self._inserter.join(None if deadline is None else max(0.1, deadline - time.monotonic()))
        while True:  # what the writer did not reach: its callers hear so
            try:
                item = self._inserts.get_nowait()
            except queue.Empty:
                break
            if item is not None and not item[2].done():
                item[2].set_exception(self._write_error(
                    "the store closed before this request was stored"))
        self._signal.close()
        super().close(timeout)
        if not self._inserter.is_alive():
            try:
                self._ch.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the ClickHouse client failed", exc_info=True)

    def __repr__(self) -> str:
        return f"ClickHouseStore({self.url!r}, control={str(self.path)!r})"
