"""The control plane's writes (agents, their events and samples, approvals, the audit log):
queued on the store's writer under the ``control`` topic, never waited for — a control
action must not stall on a busy store, and the writer keeps their order.

Agents' events and shell commands come in floods (20 agents printing 100 lines a second
are 2,000 events a second), so they are write-combined: a row joins the store's pending
rows of its table, and one writer job, queued only when none is waiting already, inserts
every row pending when the writer reaches it as one Arrow table, in the order they came.
Nothing waits for a timer; under load, rows that arrive while the writer is busy share
one insert, one job and one transaction instead of taking a queue slot each. A reader that
hands on many agents' lines at once does so inside :func:`gathered`, so they share one
even when the writer is idle."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .writes import _insert_arrow

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("workbench.store")

AGENT_COLUMNS = ("agent_id", "name", "backend", "project", "spec", "state", "pid", "pid_started",
                 "session_id", "last_error", "exit_code", "cost_usd", "restarts", "created_at",
                 "updated_at")
APPROVAL_COLUMNS = ("approval_id", "agent_id", "session_id", "project", "tool", "input",
                    "state", "message", "decided_by", "created_at", "decided_at")

_TEXT, _TIME = pa.string(), pa.timestamp("us")
#: The write-combined tables and their rows' columns, in the order callers give them.
COMBINED = {
    "agent_events": pa.schema([("agent_id", _TEXT), ("ts", _TIME), ("kind", _TEXT),
                               ("state", _TEXT), ("text", _TEXT), ("data", _TEXT)]),
    "console_history": pa.schema([("ts", _TIME), ("who", _TEXT), ("project", _TEXT),
                                  ("command", _TEXT), ("console", _TEXT)]),
}


def submit(store: Store, sql: str, values: list[Any]) -> Future:
    """Queue one control-plane statement; a failure is logged. Returns its future, for the
    few callers that must not answer before it is stored (a new agent, a new task)."""
    fut = store.submit(lambda cur: cur.execute(sql, values), topic="control")
    fut.add_done_callback(_log_failure)
    return fut


def _log_failure(fut) -> None:
    if fut.exception() is not None:
        log.error("control write failed: %s", fut.exception())


class _Pending:
    """One store's rows of one write-combined table that no writer job has taken yet, and
    the queued job that will take them (None when there is none)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.lock = threading.Lock()
        self.rows: list[list[Any]] = []
        self.queued: Future | None = None
        #: Writer jobs queued and rows they inserted (for tests and benchmarks).
        self.jobs = self.inserted = 0

    def add(self, store: Store, rows: list[list[Any]]) -> Future:
        with self.lock:
            self.rows.extend(rows)
            gathering = getattr(_gathering, "promises", None)
            if gathering is not None and self.queued is None:
                # (inside gathered(): the block's end queues one job for all its rows)
                return gathering.setdefault(self, (store, Future()))[1]
            try:
                fut, new = self._queue(store)
            except BaseException:
                del self.rows[len(self.rows) - len(rows):]  # (its caller hears why)
                raise
        if new:  # (outside the lock: a future already done calls back at once)
            fut.add_done_callback(self._done)
        return fut

    def _queue(self, store: Store) -> tuple[Future, bool]:
        """The queued job that takes the pending rows (queued now if none is): ``(its
        future, whether it is new)``. Call holding the lock."""
        if self.queued is not None:
            return self.queued, False
        self.queued = store.submit(self._job(), topic="control")
        self.jobs += 1
        return self.queued, True

    def release(self, store: Store, promise: Future) -> None:
        """The end of a :func:`gathered` block: queue the job for the rows it added, and
        keep ``promise`` (what the block's callers were given) with that job's outcome."""
        with self.lock:
            if not self.rows and self.queued is None:  # another thread's job took them
                promise.set_result(0)
                return
            try:
                fut, new = self._queue(store)
            except BaseException as err:  # (the rows stay: the next row queues them)
                promise.set_exception(err)
                return
        if new:
            fut.add_done_callback(self._done)
        fut.add_done_callback(lambda f: promise.set_exception(f.exception())
                              if f.exception() is not None else promise.set_result(f.result()))

    def _job(self):
        taken: list[list[Any]] | None = None

        def insert(cur) -> int:
            nonlocal taken
            if taken is None:  # its first run takes the rows; a retry inserts the same
                with self.lock:
                    taken, self.rows, self.queued = self.rows, [], None
                    self.inserted += len(taken)
            schema = COMBINED[self.table]
            _insert_arrow(cur, self.table, pa.Table.from_arrays(
                [pa.array(column, t) for column, t in
                 zip(zip(*taken, strict=True), schema.types, strict=True)], schema=schema))
            return len(taken)
        return insert

    def _done(self, fut: Future) -> None:
        if fut.exception() is None:
            return
        with self.lock:
            if self.queued is fut:  # failed before it ran (the store closed): the next
                self.queued = None  # row queues a job of its own
        log.error("control write failed (%s): %s", self.table, fut.exception())


_gathering = threading.local()


@contextmanager
def gathered() -> Iterator[None]:
    """Rows this thread appends inside the block are queued together when it ends: one
    writer job (one transaction) per table, not one per caller. The agents' output reader
    hands on every agent's lines of a tick inside one: otherwise the idle writer took the
    first agent's rows at once, and a tick of 20 agents was several transactions
    (each ~5 ms of the server's CPU on a small machine)."""
    if getattr(_gathering, "promises", None) is not None:
        yield  # (nested: the outer block queues)
        return
    _gathering.promises = promises = {}
    try:
        yield
    finally:
        _gathering.promises = None
        for pending_rows, (store, promise) in promises.items():
            pending_rows.release(store, promise)


_pending: weakref.WeakKeyDictionary[Store, dict[str, _Pending]] = weakref.WeakKeyDictionary()
_pending_lock = threading.Lock()


def pending(store: Store, table: str) -> _Pending:
    """``store``'s pending rows of the write-combined ``table``."""
    with _pending_lock:
        tables = _pending.setdefault(store, {})
        if table not in tables:
            tables[table] = _Pending(table)
        return tables[table]


def append(store: Store, table: str, rows: list[list[Any]]) -> Future:
    """Add ``rows`` (one of :data:`COMBINED`'s tables) to what the store's writer inserts
    next in one statement; returns the future of that insert (a failure is logged)."""
    return pending(store, table).add(store, rows)


def save_agent(store: Store, row: dict[str, Any]) -> Future:
    return submit(store, f"INSERT OR REPLACE INTO agents VALUES ({', '.join('?' * 15)})",
            [row[c] for c in AGENT_COLUMNS])


def agent_event(store: Store, values: list[Any]) -> Future:
    """``[agent_id, at, kind, state, text, data_json]``, write-combined with the other
    events pending; the future is the insert's that stores it."""
    return append(store, "agent_events", [values])


def agent_events(store: Store, rows: list[list[Any]]) -> Future:
    """Several events, as :func:`agent_event` (lines of output read together)."""
    return append(store, "agent_events", rows)


def console_commands(store: Store, rows: list[list[Any]]) -> Future:
    """``[at, who, project, command, console]`` per command typed in a project shell,
    write-combined like agents' events."""
    return append(store, "console_history", rows)


def save_approval(store: Store, row: dict[str, Any]) -> None:
    submit(store, f"INSERT OR REPLACE INTO approvals VALUES ({', '.join('?' * 11)})",
            [row[c] for c in APPROVAL_COLUMNS])


def agent_samples(store: Store, rows: list[list[Any]]) -> None:
    """``[agent_id, at, cpu_percent, rss_bytes, threads]`` per live agent, in one insert."""
    table = pa.table(list(zip(*rows, strict=True)),
                     names=["agent_id", "ts", "cpu_percent", "rss_bytes", "threads"])
    fut = store.submit(lambda cur: _insert_arrow(cur, "agent_samples", table), topic="control")
    fut.add_done_callback(_log_failure)


def audit(store: Store, values: list[Any]) -> None:
    """One audit line: ``[at, who, role, action, target, params_json, outcome, client]``.
    Appended only: no interface updates or deletes it."""
    submit(store, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
