"""The only owner of the DuckDB connection: migrations, the write queue, reads."""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import logging
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from .. import config
from . import control_queries, coverage_queries, queries, telemetry_queries  # noqa: F401
from .schema import LATEST, MIGRATIONS

if TYPE_CHECKING:
    import pandas as pd

WriteFn = Callable[[duckdb.DuckDBPyConnection], Any]
#: What a write can change; dashboards listen to the topics they show.
TOPICS = ("tests", "telemetry", "control")
log = logging.getLogger("workbench.store")


class StoreLockedError(RuntimeError):
    """Another process holds the DuckDB file read-write."""


class StoreBusyError(RuntimeError):
    """The write queue is full; the caller should retry later."""


class RunStateError(RuntimeError):
    """A write the run's state does not allow (results for a run that is not running)."""


def _locked_message(path: Path, err: Exception) -> str:
    import json

    from ..discovery import advert_path

    pid = re.search(r"PID (\d+)", str(err))
    holder = f"process {pid.group(1)}" if pid else "another process"
    try:
        url = json.loads(advert_path(path).read_text())["url"]
    except (OSError, ValueError, KeyError, TypeError):
        url = None
    if url:
        return (f"{path} is held by {holder}, the workbench at {url}: DuckDB lets only one "
                f"process open a file. Read and write through that server "
                f"(workbench.connect('{url}'), --url {url}), or stop it and retry.")
    return (
        f"{path} is held by {holder} (most likely a workbench served without its API "
        "plugin, or a notebook). DuckDB lets only one process open a file at a time: "
        "go through that server's URL, or stop the other process and retry."
    )


class Store:
    """One DuckDB file, opened once per process.

    Reads open a cursor per call (a DuckDB connection is not thread safe, a cursor is).
    Writes go through one queue drained by one thread, batched into transactions; a
    write that fails is rolled back alone and its caller gets the exception.

    Parameters
    ----------
    path
        The database file, or ``":memory:"``.
    read_only
        Open without migrating or writing (a notebook peeking at a file).
    max_pending
        Writes that may wait in the queue before :class:`StoreBusyError` is raised.
    """

    def __init__(self, path: str | Path, read_only: bool = False, max_pending: int = 256):
        self.path = Path(path) if str(path) != ":memory:" else path
        self.read_only = read_only
        if isinstance(self.path, Path) and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as err:
            if "lock" in str(err).lower():
                raise StoreLockedError(_locked_message(Path(str(path)), err)) from None
            raise
        # DuckDB's default (80 % of RAM) lets one big insert keep gigabytes of written
        # blocks cached; the workbench's queries need far less.
        try:
            self._con.execute("SET memory_limit = ?", [config.get("OBSERVATORY_DUCKDB_MEMORY")])
        except duckdb.Error as err:
            self._con.close()
            raise ValueError(f"OBSERVATORY_DUCKDB_MEMORY: {err}") from None
        if not read_only:
            self._migrate()
        self._queue: queue.Queue[tuple[WriteFn, cf.Future, str] | None] = queue.Queue(
            max_pending)
        self._writer: threading.Thread | None = None
        #: Commits per topic since this process opened the file: the data-change signal.
        self.versions: dict[str, int] = dict.fromkeys(TOPICS, 0)
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        current = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            con.execute("BEGIN")
            try:
                for sql in statements:
                    con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?)", [version])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        """The newest migration applied to this file."""
        cur = self.cursor()
        try:
            return cur.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0
        finally:
            cur.close()

    # -- reads ----------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor for the calling thread."""
        if self._closed:
            raise RuntimeError(f"store {self.path} is closed")
        return self._con.cursor()

    def query(self, name: str, /, **params: Any) -> pd.DataFrame:
        """Run the named query from :mod:`workbench.store.queries` with bound parameters."""
        sql, args = queries.render(name, params)
        cur = self.cursor()
        try:
            return cur.execute(sql, args).df()
        finally:
            cur.close()

    def query_arrow(self, name: str, /, **params: Any):
        """Like :meth:`query` but returns a ``pyarrow.Table`` (used by the HTTP API)."""
        sql, args = queries.render(name, params)
        cur = self.cursor()
        try:
            return cur.sql(sql, params=args).to_arrow_table()
        finally:
            cur.close()

    def sql(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run read-only SQL ad hoc (notebooks). Writes must use :meth:`write`."""
        cur = self.cursor()
        try:
            return cur.execute(sql, params or []).df()
        finally:
            cur.close()

    def tables(self) -> list[str]:
        """Names of the user tables."""
        return self.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1")["table_name"].tolist()

    def schema(self, table: str) -> pd.DataFrame:
        """Column names and types of one table."""
        return self.sql(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?", [table]
        )

    # -- writes ---------------------------------------------------------------------------
    def submit(self, fn: WriteFn, block: bool = True,
               topic: str | None = "tests") -> cf.Future:
        """Queue ``fn(cursor)`` to run inside a write transaction; return its future.

        With ``block=False`` a full queue raises :class:`StoreBusyError` instead of waiting
        (the HTTP API turns that into 503 + Retry-After). ``topic`` (one of :data:`TOPICS`)
        names what the write changes, for :meth:`on_commit` listeners.
        """
        if self.read_only:
            raise RuntimeError(f"{self.path} is open read-only")
        if topic is not None and topic not in self.versions:
            raise ValueError(f"unknown topic {topic!r} (one of {', '.join(TOPICS)})")
        self._ensure_writer()
        fut: cf.Future = cf.Future()
        try:
            self._queue.put((fn, fut, topic), block=block)
        except queue.Full:
            raise StoreBusyError("write queue is full") from None
        return fut

    def write(self, fn: WriteFn, block: bool = True, topic: str | None = "tests") -> Any:
        """Queue ``fn`` and wait for its transaction to commit; return what it returned.

        ``block=False``: raise :class:`StoreBusyError` at once if the queue is full.
        """
        return self.submit(fn, block=block, topic=topic).result()

    def settle(self) -> None:
        """Wait until every write queued before now is committed (reads after it see them);
        changes nothing itself."""
        self.write(lambda cur: None, topic=None)

    def on_commit(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Call ``listener(topics)`` after every commit, on the writer thread, with the
        topics the committed writes named (after :attr:`versions` moved). A listener must
        be quick and must not write: it only hands the news on."""
        self._listeners.append(listener)

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._drain, name="observatory-store-writer", daemon=True
                )
                self._writer.start()

    def _drain(self) -> None:
        cur = self._con.cursor()
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            # Batch whatever else is already waiting into the same transaction.
            while len(batch) < 64:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            self._run_batch(cur, batch)
        cur.close()

    def _run_batch(self, cur: duckdb.DuckDBPyConnection, batch: list) -> None:
        cur.execute("BEGIN")
        try:
            results = [fn(cur) for fn, _, _ in batch]
            cur.execute("COMMIT")
        except Exception as err:
            cur.execute("ROLLBACK")
            if len(batch) > 1:
                # Retry one by one so only the bad write fails.
                for one in batch:
                    self._run_batch(cur, [one])
                return
            batch[0][1].set_exception(err)
            return
        topics = frozenset(topic for _, _, topic in batch if topic)
        for topic in topics:
            self.versions[topic] += 1
        for listener in self._listeners:
            try:
                listener(topics)
            except Exception:  # noqa: BLE001  (a listener must never fail a commit)
                log.exception("data-change listener failed")
        for (_, fut, _), res in zip(batch, results, strict=True):
            fut.set_result(res)

    def close(self) -> None:
        """Finish queued writes, then close the file."""
        if self._closed:
            return
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
        self._closed = True
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, schema v{LATEST})"
