"""The only owner of the DuckDB connection: migrations, the write queue, reads."""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
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


class StoreWriteError(RuntimeError):
    """A write was not stored through no fault of its own: the disk refused it (full,
    read-only, an I/O error, a database DuckDB invalidated after such an error) or the store
    is closed. The HTTP API answers 503; the same write may succeed later.

    The message reads ``could not write to <file>: <reason> (<outcome>)``; ``path`` and
    ``reason`` are the file and the reason alone. (Reads raise it too while the store has
    lost its file and not yet reopened it.)
    """

    def __init__(self, message: str, *, path: str = "", reason: str = "",
                 shared: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason
        #: A shared store (ClickHouse) refused, not this node's file: the write fails
        #: alone, and the file is neither reopened nor reported broken.
        self.shared = shared


#: Errors that say the disk (not a write's own SQL) failed. Inside a write function only
#: these count; at BEGIN/COMMIT any I/O error does too.
_DISK_TROUBLE = re.compile(
    r"no space left|read-only file system|input/output error|file too large|disk quota"
    r"|could not (?:write|sync|fsync|truncate)|has been invalidated", re.IGNORECASE)
_NOISE = re.compile(r"^(?:TransactionContext Error|FATAL Error|IO Error|Failed to commit)"
                    r":\s*", re.IGNORECASE)


def _storage_error(err: BaseException, in_write_fn: bool) -> bool:
    if isinstance(err, StoreWriteError):
        return not err.shared
    if isinstance(err, duckdb.FatalException):
        return True
    if not isinstance(err, duckdb.Error):
        return False  # a Python error a write function raised: that write's own
    if not in_write_fn and isinstance(err, duckdb.IOException):
        return True
    return bool(_DISK_TROUBLE.search(str(err)))


def _invalidated(err: BaseException) -> bool:
    """DuckDB gave up on the database (reads fail too) until it is opened again."""
    return isinstance(err, duckdb.FatalException) or "has been invalidated" in str(err)


def _reason(err: BaseException) -> str:
    """DuckDB's reason, on one line, without its boilerplate prefixes."""
    if isinstance(err, StoreWriteError) and err.reason:
        return err.reason
    text = " ".join(str(err).split())
    while (stripped := _NOISE.sub("", text)) != text:
        text = stripped
    return text or type(err).__name__


def _claim(fut: cf.Future) -> bool:
    """Take a queued write's future (PENDING → RUNNING); False if someone else did (the
    writer, a closing store) or its caller cancelled it."""
    try:
        return fut.set_running_or_notify_cancel()
    except RuntimeError:  # already running or finished
        return False


def _resolve(fut: cf.Future, result: Any = None, exc: BaseException | None = None) -> None:
    """Answer a future unless it was answered already (a store that closed meanwhile)."""
    try:
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
    except (cf.InvalidStateError, RuntimeError):
        pass


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Exclusive:
    """A job the writer runs alone, outside any transaction (Store.exclusive)."""

    def __init__(self, fn: Callable[[Store], Any]) -> None:
        self.fn = fn


class _Abandoned(Exception):
    """The store closed while this batch ran: roll it back, whatever it did."""


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

    The writer survives its disk: when a commit fails for the disk (full, read-only, an I/O
    error) every caller of that batch gets :class:`StoreWriteError`, reads go on,
    :meth:`health` says ``error`` until a write reaches the disk again, and the file is
    opened anew when DuckDB gave up on it (or kept a handle the disk no longer honours).

    Parameters
    ----------
    path
        The database file, or ``":memory:"``.
    read_only
        Open without migrating or writing (a notebook peeking at a file).
    max_pending
        Writes that may wait in the queue before :class:`StoreBusyError` is raised.
    """

    #: Seconds between attempts to open the file again while the store has lost it.
    REOPEN_EVERY_S = 1.0
    #: Seconds a reopen waits for the reads in flight before it tries again later.
    READS_WAIT_S = 30.0
    #: Seconds the idle writer sleeps between looks at the store's state.
    POLL_S = 0.5

    def __init__(self, path: str | Path, read_only: bool = False, max_pending: int = 256):
        self.path = Path(path) if str(path) != ":memory:" else path
        self.read_only = read_only
        if isinstance(self.path, Path) and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con: duckdb.DuckDBPyConnection | None = self._connect()
        except duckdb.IOException as err:
            if "lock" in str(err).lower():
                raise StoreLockedError(_locked_message(Path(str(path)), err)) from None
            raise
        self._queue: queue.Queue[tuple[WriteFn, cf.Future, str | None] | None] = queue.Queue(
            max_pending)
        self._writer: threading.Thread | None = None
        self._writer_done = False  # the current writer thread has left its loop
        self._writer_closes = False  # close() left closing the file to the (stuck) writer
        self._wcur: duckdb.DuckDBPyConnection | None = None  # the writer thread's cursor
        #: Commits per topic since this process opened the file: the data-change signal.
        self.versions: dict[str, int] = dict.fromkeys(TOPICS, 0)
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        self._lock = threading.Lock()
        self._closing = False  # no new writes; the writer finishes the queue
        self._closed = False  # the file is (being) closed
        self._abandoned = False  # close() gave up waiting: nothing may commit any more
        self._commit_lock = threading.Lock()  # COMMIT against close() giving up
        self._inflight: list | None = None  # the batch between BEGIN and COMMIT
        # Readers in flight, so that a reopen never closes the file under one.
        self._cond = threading.Condition()
        self._readers = 0
        self._swapping = False
        # What health() reports.
        self._health_lock = threading.Lock()
        self._error: str | None = None
        self._since: str | None = None
        self._failed_writes = 0
        self._last_commit: str | None = None
        self._invalid = False  # DuckDB invalidated the database: reopen before anything
        self._lost: str | None = None  # why there is no connection (a reopen failed)
        self._reopened = 0
        self._next_reopen = 0.0
        if not read_only:
            self._migrate()
        atexit.register(self.close)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(self.path), read_only=self.read_only)
        # DuckDB's default (80 % of RAM) lets one big insert keep gigabytes of written
        # blocks cached; the workbench's queries need far less.
        try:
            con.execute("SET memory_limit = ?", [config.get("OBSERVATORY_DUCKDB_MEMORY")])
        except duckdb.Error as err:
            con.close()
            raise ValueError(f"OBSERVATORY_DUCKDB_MEMORY: {err}") from None
        return con

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        current = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0
        pending = [(v, statements) for v, statements in MIGRATIONS if v > current]
        # A new file takes every version in one transaction (one commit, not one per
        # version: part of every `ingest` into a new file); a file with data takes them one
        # by one, each version stored or not.
        steps = [pending] if current == 0 and pending else [[m] for m in pending]
        for step in steps:
            con.execute("BEGIN")
            try:
                for version, statements in step:
                    for sql in statements:
                        con.execute(sql)
                    con.execute("INSERT INTO schema_version VALUES (?)", [version])
                con.execute("COMMIT")
            except Exception:
                self._rollback(con)  # (a failed COMMIT has ended the transaction already)
                raise

    @property
    def schema_version(self) -> int:
        """The newest migration applied to this file."""
        with self._reading() as cur:
            return cur.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0

    # -- reads ----------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor for the calling thread (close it soon: a reopen after a disk
        failure waits only for the store's own reads)."""
        if self._closed:
            raise RuntimeError(f"store {self.path} is closed")
        con = self._con
        if con is None:
            raise self._unreadable()
        return con.cursor()

    def _unreadable(self) -> StoreWriteError:
        reason = self._lost or "the file is not open"
        return StoreWriteError(f"cannot read {self.path}: {reason}", path=str(self.path),
                               reason=reason)

    def reading(self):
        """A cursor for a long read (an export, a backup's copy) as a context manager: a
        reopen or a compaction's swap waits until it is closed."""
        return self._reading()

    @contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one read; a reopen waits until it is closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._swapping, self.READS_WAIT_S):
                raise self._unreadable()
            if self._closed:
                raise RuntimeError(f"store {self.path} is closed")
            con = self._con
            if con is None:
                raise self._unreadable()
            self._readers += 1
        try:
            cur = con.cursor()
            try:
                yield cur
            except duckdb.FatalException as err:
                self._invalid = True  # the writer opens the file again
                reason = _reason(err)
                raise StoreWriteError(f"cannot read {self.path}: {reason}",
                                      path=str(self.path), reason=reason) from err
            finally:
                cur.close()
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    def query(self, name: str, /, **params: Any) -> pd.DataFrame:
        """Run the named query from :mod:`workbench.store.queries` with bound parameters."""
        sql, args = queries.render(name, params)
        with self._reading() as cur:
            return cur.execute(sql, args).df()

    def query_arrow(self, name: str, /, **params: Any):
        """Like :meth:`query` but returns a ``pyarrow.Table`` (used by the HTTP API)."""
        sql, args = queries.render(name, params)
        with self._reading() as cur:
            return cur.sql(sql, params=args).to_arrow_table()

    def sql(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run read-only SQL ad hoc (notebooks). Writes must use :meth:`write`."""
        with self._reading() as cur:
            return cur.execute(sql, params or []).df()

    # -- the runs a write looks up (a shared store keeps finished runs elsewhere) -------
    def runs_known(self, cur: duckdb.DuckDBPyConnection, run_ids: list[str],
                   columns: tuple[str, ...] = ("status",)) -> dict[str, dict[str, Any]]:
        """``{run_id: {column: value}}`` of the stored runs among ``run_ids``, read inside
        a write (``cur``: the writer's cursor)."""
        if not run_ids:
            return {}
        cols = ", ".join(("run_id", *columns))
        marks = ", ".join("?" * len(run_ids))
        rows = cur.execute(f"SELECT {cols} FROM runs WHERE run_id IN ({marks})",
                           list(run_ids)).fetchall()
        return {r[0]: dict(zip(columns, r[1:], strict=True)) for r in rows}

    def forget_run(self, cur: duckdb.DuckDBPyConnection, run_id: str) -> None:
        """Remove a run from wherever else it is kept (here: nowhere; the write has
        deleted it from the file)."""

    def shared_views(self) -> dict[str, str]:
        """``{table: where the shared store keeps it}`` (an export reads those there)."""
        return {}

    def shared_tables(self) -> dict[str, Any] | None:
        """Where else data is kept and its tables' figures (None: only in the file)."""
        return None

    # -- retention of what is kept elsewhere (a shared store) -------------------------------
    def policies_changed(self) -> None:
        """The retention policies changed (here: the file's own rows say it all)."""

    def apply_shared_retention(self, todo, every, now, archive_dir) -> dict[str, Any]:
        """Apply the policies ``todo`` (of ``every``) where else data is kept: nowhere."""
        return {}

    def tables(self) -> list[str]:
        """Names of the user tables."""
        return self.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1")["table_name"].tolist()

    def schema(self, table: str) -> pd.DataFrame:
        """Column names and types of one table."""
        return self.sql(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?", [table]
        )

    # -- health ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The store's state for ``/api/health``, JSON-ready.

        ``store`` is ``"ok"``, ``"error"`` (writes fail: ``error`` says why, ``since`` is
        when the first of ``failed_writes`` failed; it stays so until a write reaches the
        disk again) or ``"closed"``. ``connection`` is ``"open"``, ``"invalidated"`` (DuckDB
        gave up on the file; it is being opened again), ``"lost"`` (opening it again failed;
        retried every second; reads fail meanwhile) or ``"closed"``; ``reopened`` counts
        the times it was opened again. ``writer`` is ``"alive"``, ``"not started"`` or
        ``"stopped"``; ``pending`` the writes queued; ``last_commit`` the last commit's time.
        """
        with self._health_lock:
            error, since, failed = self._error, self._since, self._failed_writes
            last_commit = self._last_commit
        writer = self._writer
        if writer is None:
            writer_state = "not started"
        elif self._writer_done or not writer.is_alive():
            writer_state = "stopped"
        else:
            writer_state = "alive"
        pending = self._queue.qsize()
        if self._closed:
            status, connection = "closed", "closed"
        else:
            connection = ("lost" if self._con is None else
                          "invalidated" if self._invalid else "open")
            status = "error" if error else "ok"
            if connection != "open" and not error:
                status, error = "error", self._lost or "DuckDB invalidated the database"
                since = since or last_commit
            if writer_state == "stopped" and pending and not error:
                status, error = "error", f"the writer stopped with {pending} writes queued"
        return {
            "store": status,
            "path": str(self.path),
            "error": error,
            "since": since if error else None,
            "failed_writes": failed if error else 0,
            "connection": connection,
            "reopened": self._reopened,
            "writer": writer_state,
            "pending": pending,
            "last_commit": last_commit,
        }

    # -- writes ---------------------------------------------------------------------------
    def _write_error(self, reason: str,
                     outcome: str = "the write was not stored") -> StoreWriteError:
        return StoreWriteError(f"could not write to {self.path}: {reason} ({outcome})",
                               path=str(self.path), reason=reason)

    def submit(self, fn: WriteFn, block: bool = True,
               topic: str | None = "tests") -> cf.Future:
        """Queue ``fn(cursor)`` to run inside a write transaction; return its future.

        With ``block=False`` a full queue raises :class:`StoreBusyError` instead of waiting
        (the HTTP API turns that into 503 + Retry-After). ``topic`` (one of :data:`TOPICS`)
        names what the write changes, for :meth:`on_commit` listeners. A store that is
        closed raises :class:`StoreWriteError` at once; the future fails with it when the
        disk refuses the write.
        """
        if self.read_only:
            raise RuntimeError(f"{self.path} is open read-only")
        if topic is not None and topic not in self.versions:
            raise ValueError(f"unknown topic {topic!r} (one of {', '.join(TOPICS)})")
        if self._closing:
            raise self._write_error("the store is closed")
        self._ensure_writer()
        fut: cf.Future = cf.Future()
        while True:
            try:
                self._queue.put((fn, fut, topic), block=block,
                                timeout=self.POLL_S if block else None)
                break
            except queue.Full:
                if not block:
                    raise StoreBusyError("write queue is full") from None
                if self._closing:
                    raise self._write_error("the store is closed") from None
        if self._closing and _claim(fut):  # closed meanwhile, and nobody took it: never runs
            raise self._write_error("the store is closed")
        return fut

    def write(self, fn: WriteFn, block: bool = True, topic: str | None = "tests") -> Any:
        """Queue ``fn`` and wait for its transaction to commit; return what it returned.

        ``block=False``: raise :class:`StoreBusyError` at once if the queue is full.
        :class:`StoreWriteError`: the disk refused the write, or the store is closed.
        """
        return self.submit(fn, block=block, topic=topic).result()

    def exclusive(self, fn: Callable[[Store], Any]) -> Any:
        """Run ``fn(store)`` on the writer thread with no transaction open and no write
        running, and return what it returned: for what must not interleave with writes
        (swapping the file for a compacted copy). Writes queue meanwhile. ``fn`` may call
        :meth:`writer_cursor` and :meth:`swap_file`, and must not :meth:`write`."""
        if self.read_only:
            raise RuntimeError(f"{self.path} is open read-only")
        if self._closing:
            raise self._write_error("the store is closed")
        self._ensure_writer()
        fut: cf.Future = cf.Future()
        self._queue.put((_Exclusive(fn), fut, None))
        return fut.result()

    def _run_exclusive(self, job: _Exclusive, fut: cf.Future, _topic: None) -> None:
        try:
            result = job.fn(self)
        except BaseException as err:  # noqa: BLE001  (its caller hears it, not the writer)
            _resolve(fut, exc=err)
        else:
            _resolve(fut, result=result)

    def writer_cursor(self) -> duckdb.DuckDBPyConnection:
        """The writer's own cursor (inside :meth:`exclusive` only)."""
        if threading.current_thread() is not self._writer:
            raise RuntimeError("writer_cursor() belongs to the writer thread (exclusive())")
        return self._writer_cursor()

    def swap_file(self, replacement: Path) -> None:
        """Put the file ``replacement`` where the store's file is and open it (inside
        :meth:`exclusive`): once no read is in flight, the file is closed, renamed over
        (atomically: the old file or the new one, never neither) and opened again."""
        if threading.current_thread() is not self._writer or not isinstance(self.path, Path):
            raise RuntimeError("swap_file() runs on the writer thread of a file store")
        with self._cond:
            self._swapping = True
            if not self._cond.wait_for(lambda: self._readers == 0, self.READS_WAIT_S):
                self._swapping = False
                self._cond.notify_all()
                raise self._write_error("reads did not finish", "the file was not replaced")
        try:
            self._drop_writer_cursor()
            old, self._con = self._con, None
            if old is not None:
                old.close()  # (checkpoints: no log is left beside the old file)
            os.replace(replacement, self.path)
            self._con = self._connect()
        except Exception as err:
            self._lost = f"opening the replaced file failed: {_reason(err)}"
            raise
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()

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
            if self._closing:
                return
            if self._writer is None or self._writer_done:  # (one that stopped is replaced)
                self._writer_done = False
                self._writer = threading.Thread(
                    target=self._drain, name="observatory-store-writer", daemon=True
                )
                self._writer.start()

    def _drain(self) -> None:
        try:
            while not self._abandoned:
                if (self._invalid or self._con is None) and not self._closing \
                        and time.monotonic() >= self._next_reopen:
                    self._reopen()
                try:
                    item = self._queue.get(timeout=self.POLL_S)
                except queue.Empty:
                    if self._closing:
                        break
                    continue
                if item is None:
                    break
                alone = None  # an exclusive job: it runs after the batch, by itself
                if isinstance(item[0], _Exclusive):
                    alone, batch = item, []
                else:
                    batch = [item] if _claim(item[1]) else []
                # Batch whatever else is already waiting into the same transaction.
                while alone is None and len(batch) < 64:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._queue.put(None)
                        break
                    if isinstance(nxt[0], _Exclusive):
                        alone = nxt
                    elif _claim(nxt[1]):
                        batch.append(nxt)
                if batch:
                    try:
                        self._run_batch(batch)
                    except BaseException as err:  # noqa: BLE001  (the writer must outlive it)
                        log.exception("store writer: a batch failed unexpectedly")
                        for _, fut, _ in batch:
                            _resolve(fut, exc=self._write_error(f"internal error: {err!r}"))
                    finally:
                        self._inflight = None
                if alone is not None and _claim(alone[1]):
                    self._run_exclusive(*alone)
            if self._abandoned:
                self._fail_queued()
        finally:
            self._drop_writer_cursor()
            with self._lock:
                self._writer_done = True
                close_file = self._writer_closes
            if close_file:
                self._close_file(self.READS_WAIT_S)

    def _writer_cursor(self) -> duckdb.DuckDBPyConnection:
        if self._wcur is None:
            con = self._con
            if con is None:
                raise self._write_error(self._lost or "the file is not open")
            self._wcur = con.cursor()
        return self._wcur

    def _drop_writer_cursor(self) -> None:
        cur, self._wcur = self._wcur, None
        if cur is not None:
            try:
                cur.close()
            except Exception:  # noqa: BLE001  (a cursor of a connection already gone)
                log.debug("closing the writer's cursor failed", exc_info=True)

    def _rollback(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Roll back whatever is open; never raises (a failed COMMIT has already ended the
        transaction: "no transaction is active" is the normal answer then)."""
        try:
            cur.execute("ROLLBACK")
        except Exception as err:  # noqa: BLE001
            if _invalidated(err):
                self._invalid = True
            elif "no transaction is active" not in str(err):
                log.debug("ROLLBACK failed: %s", err)
                if cur is self._wcur:
                    self._drop_writer_cursor()  # a fresh cursor for the next batch

    def _disk_mark(self) -> tuple | None:
        """What the file and its log look like on disk: a commit that changed neither
        wrote nothing, and proves nothing about the disk."""
        if not isinstance(self.path, Path):
            return None
        marks = []
        for path in (self.path, Path(f"{self.path}.wal")):
            try:
                st = path.stat()
            except OSError:
                marks.append(None)
            else:
                marks.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(marks)

    def _attempt(self, batch: list) -> tuple[str, Any]:
        """Run ``batch`` in one transaction: ``("ok", (results, wrote))``, or ``("write",
        err)`` (a write's own error), ``("disk", err)``, ``("closed", None)``."""
        self._inflight = batch
        if self._abandoned:
            return "closed", None
        try:
            cur = self._writer_cursor()
        except StoreWriteError as err:
            return "disk", err
        degraded = self._error is not None
        before = self._disk_mark() if degraded else None
        in_write_fn = False
        try:
            cur.execute("BEGIN")
            in_write_fn = True
            results = [fn(cur) for fn, _, _ in batch]
            self._before_commit(cur, batch)
            in_write_fn = False
            with self._commit_lock:
                if self._abandoned:
                    raise _Abandoned
                cur.execute("COMMIT")
                self._inflight = None  # committed: close() no longer answers for them
        except _Abandoned:
            self._rollback(cur)
            return "closed", None
        except BaseException as err:  # noqa: BLE001  (whatever a write raises goes to its caller)
            self._rollback(cur)
            if _storage_error(err, in_write_fn):
                if _invalidated(err):
                    self._invalid = True
                return "disk", err
            return "write", err
        wrote = not degraded or not isinstance(self.path, Path) or self._disk_mark() != before
        return "ok", (results, wrote)

    def _before_commit(self, cur: duckdb.DuckDBPyConnection, batch: list) -> None:
        """The batch's writes all ran; its transaction is about to commit. (A store that
        keeps data elsewhere too sends it there now: an error here fails the batch.)"""

    def _run_batch(self, batch: list, may_reopen: bool = True) -> None:
        kind, payload = self._attempt(batch)
        if kind == "disk" and (may_reopen or self._invalid) and self._recover(payload) \
                and may_reopen and not self._closing:
            kind, payload = self._attempt(batch)  # once more, on the file opened anew
        if kind == "ok":
            self._committed(batch, *payload)
        elif kind == "disk":
            self._failed(batch, payload)
        elif kind == "closed":
            for _, fut, _ in batch:
                _resolve(fut, exc=self._write_error(
                    "the store closed before this write committed"))
        elif len(batch) > 1:
            # A write's own error: retry one by one so only the bad write fails.
            for one in batch:
                self._run_batch([one], may_reopen=False)
        else:
            _resolve(batch[0][1], exc=payload)

    def _committed(self, batch: list, results: list, wrote: bool) -> None:
        with self._health_lock:
            self._last_commit = _now()
            if self._error is not None and wrote:
                log.warning("%s: writes reach the disk again (%d failed since %s)",
                            self.path, self._failed_writes, self._since)
                self._error, self._since, self._failed_writes = None, None, 0
        self._tell(frozenset(topic for _, _, topic in batch if topic))
        for (_, fut, _), res in zip(batch, results, strict=True):
            _resolve(fut, result=res)

    def _tell(self, topics: frozenset[str]) -> None:
        """Commit news: move the topics' versions and tell every listener."""
        for topic in topics:
            if topic in self.versions:
                self.versions[topic] += 1
        for listener in self._listeners:
            try:
                listener(topics)
            except BaseException:  # noqa: BLE001  (a listener must never fail a commit)
                log.exception("data-change listener failed")

    def _failed(self, batch: list, err: BaseException) -> None:
        """The disk refused the batch: every caller hears why; health says so."""
        reason = _reason(err)
        with self._health_lock:
            if self._error is None:
                self._since = _now()
                log.error("%s: writes fail: %s", self.path, reason)
            self._error = reason
            self._failed_writes += len(batch)
        for _, fut, _ in batch:
            exc = self._write_error(reason)
            exc.__cause__ = err
            _resolve(fut, exc=exc)

    def _recover(self, err: BaseException) -> bool:
        """Open the file again when that can help: DuckDB invalidated it, or the disk takes
        writes again (the connection may hold a handle the disk no longer honours)."""
        if not isinstance(self.path, Path) or self._closing:
            return False
        if not self._invalid and not self._disk_takes_writes():
            return False
        return self._reopen()

    def _disk_takes_writes(self) -> bool:
        probe = self.path.with_name(f".{self.path.name}.probe-{os.getpid()}")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"\0" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            return False
        finally:
            try:
                probe.unlink()
            except OSError:
                pass
        return True

    def _reopen(self) -> bool:
        """Close the file and open it again (writer thread only), once no read is in flight."""
        if not isinstance(self.path, Path):
            return False
        with self._cond:
            self._swapping = True
            if not self._cond.wait_for(lambda: self._readers == 0, self.READS_WAIT_S):
                self._swapping = False
                self._cond.notify_all()
                log.warning("%s: not reopened: reads still running", self.path)
                self._next_reopen = time.monotonic() + self.REOPEN_EVERY_S
                return False
        try:
            self._drop_writer_cursor()
            old, self._con = self._con, None
            if old is not None:
                try:
                    old.close()
                except Exception:  # noqa: BLE001  (an invalidated database may object)
                    log.debug("closing the failed connection failed", exc_info=True)
            try:
                self._con = self._connect()
            except Exception as err:  # noqa: BLE001
                self._lost = f"opening the file again failed: {_reason(err)}"
                self._next_reopen = time.monotonic() + self.REOPEN_EVERY_S
                log.error("%s: %s", self.path, self._lost)
                return False
            self._invalid, self._lost = False, None
            self._reopened += 1
            self._next_reopen = 0.0
            log.warning("%s: opened again after a failed write", self.path)
            return True
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()

    def _fail_queued(self) -> None:
        """Fail every write still queued (the store closed before it ran)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and _claim(item[1]):
                _resolve(item[1], exc=self._write_error("the store closed before it ran"))

    # -- closing --------------------------------------------------------------------------
    def close(self, timeout: float | None = 5.0) -> None:
        """Finish queued writes, then close the file, within ``timeout`` seconds.

        Writes still queued when the grace is over fail with :class:`StoreWriteError`; a
        write still running then is abandoned (it fails, and will not commit after all) and
        the writer closes the file when it returns. New writes fail at once. ``None`` waits
        as long as the queue takes. Runs at exit too (SIGTERM of the server ends here).
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
        atexit.unregister(self.close)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)

        # Keep a little of the grace for a write that has to be abandoned.
        reserve = 0.0 if timeout is None else min(0.5, max(0.0, timeout) * 0.2)

        def left(keep: float = 0.0) -> float | None:
            return None if deadline is None else max(0.0, deadline - keep - time.monotonic())

        writer = self._writer
        me = threading.current_thread()
        if writer is not None and writer is not me:
            try:
                self._queue.put_nowait(None)  # (a full queue: the writer polls _closing)
            except queue.Full:
                pass
            writer.join(left(reserve))
        with self._lock:
            stuck = writer is not None and not self._writer_done
            self._closed = True
            self._writer_closes = stuck
        if stuck:
            # The grace is over: what runs now must not commit after close() returned.
            committing = not self._commit_lock.acquire(timeout=0.1)
            self._abandoned = True
            inflight = self._inflight or []
            if not committing:
                self._commit_lock.release()
            for _, fut, _ in inflight:
                _resolve(fut, exc=self._write_error(
                    "the store closed while this write was committing",
                    "whether it was stored is unknown") if committing else self._write_error(
                    "the store closed before this write committed"))
            log.warning("%s: closed with a write still running after %s s", self.path, timeout)
            wcur = self._wcur
            if wcur is not None and not committing:
                try:
                    wcur.interrupt()  # a long statement stops now, and rolls back
                except Exception:  # noqa: BLE001
                    log.debug("interrupting the writer failed", exc_info=True)
            if writer is not me:
                writer.join(left())  # it closes the file itself when it is done
        self._fail_queued()
        if not stuck:
            self._close_file(left())

    def _close_file(self, wait: float | None) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._readers == 0, wait)
            con, self._con = self._con, None
        if con is not None:
            try:
                con.close()
            except Exception:  # noqa: BLE001
                log.exception("%s: closing the file failed", self.path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, schema v{LATEST})"
