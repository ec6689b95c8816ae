"""The OTLP receiver's inbox: under load, a request is acknowledged once its bytes are
on disk, and its rows are written behind.

An SDK exporter sends its next batch only when the last one is answered, and the receiver
answers only once a request is stored (exactly-once: nothing acknowledged is ever lost).
Flattening a request into rows costs the server ~15 times what reading it costs, and on a
small machine the exporters and the server share the same cores: answering only after the
rows were written ran exporters at a third of their own pace. So when requests overlap, a
request's protobuf body is appended to the inbox's journal (:mod:`.otlp_journal`: segment
files beside the database, synced before the answer) and answered; a worker thread
flattens the waiting requests into rows later, and deletes a segment once all of its
requests are written. What is acknowledged is on disk either way; a crash leaves the
journal to be written at the next start; a request written twice (sent again, or written
again after a crash) is stored once (the rows' own de-duplication).

The journal replaced a DuckDB table (``otlp_inbox``, schema 19): a row of a 150 KB body and
its COMMIT cost the writer ~6 ms a request, the file ~0.9 ms. Rows a previous version left
in that table are moved into the journal at start.

The worker waits for a quiet moment (no new request for ``QUIET_S``), or until the oldest
waiting request is ``OBSERVATORY_OTLP_DEFER_S`` old, or the inbox holds more than half of
``OBSERVATORY_OTLP_INBOX_BYTES``; past that limit requests are written before they are
answered again, as when they do not overlap. A lone request is always written first, so
a client that sends and then reads finds its rows.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import config
from .otlp_journal import Journal, folder_for

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("workbench.store")

QUIET_S = 0.25  # no new request for this long: the receiver is idle, drain now
EXIT_S = 3.0  # at exit, write waiting requests' rows for this long at most
TAKE = 32  # waiting requests read per round
#: Requests written in one transaction. Written one by one, a request's own statements
#: (the resend check, the insert, the rollup stamp, the inbox delete) and its commit cost
#: more than its rows: 40 % of the writer's time was COMMIT while 100k spans drained. In
#: groups, the writer writes one while the worker flattens the next.
GROUP = 8
#: Groups queued for the writer when a round starts, at most (the worker waits for the
#: oldest first).
PENDING = 4


class Waiting(NamedTuple):
    """A request answered and not yet written as rows, and where its body is."""

    arrived: float  # (time.monotonic())
    size: int
    signal: str
    segment: int
    offset: int


class Inbox:
    """The inbox of one store: :meth:`put` a request, and a worker writes its rows later.

    Parameters
    ----------
    store
        The open DuckDB store (a ClickHouse store writes each request at once).
    flatten_write
        ``([[(signal, body), ...], ...]) -> [Future, ...]``: flatten each group of protobuf
        requests and queue its rows' write as one transaction.
    """

    def __init__(self, store: Store, flatten_write) -> None:
        self.store = store
        self._write = flatten_write
        self.defer_s = float(config.get("OBSERVATORY_OTLP_DEFER_S"))
        self.limit = int(config.get("OBSERVATORY_OTLP_INBOX_BYTES"))
        self.quiet_s = QUIET_S
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._forced = False  # settle() asked: drain now, whatever the load
        self._closed = False
        self._in_flight = 0
        self._last_arrival = 0.0
        self._waiting: dict[int, Waiting] = {}  # by request id
        # (the worker's own: groups queued for the writer, and their requests' ids)
        self._pending: deque[tuple[list, Future]] = deque()
        self._taken: set[int] = set()
        self._per_segment: dict[int, int] = {}  # segment -> its requests still waiting
        path = getattr(store, "path", None)
        self._scratch = None  # (an in-memory store's journal: as lasting as the store)
        if isinstance(path, Path):
            folder = folder_for(path)
        else:
            self._scratch = folder = Path(tempfile.mkdtemp(prefix="otlp-inbox-"))
        self.journal = Journal(folder)
        # requests a previous process acknowledged and did not write: due at once
        due = time.monotonic() - self.defer_s
        records = self.journal.recover()
        self._next = max((r[0] for r in records), default=0) + 1
        for rid, signal, seg, offset, length in records:
            self._track(rid, due, length, signal, seg, offset)
        self._adopt_table(due)
        self._bytes = sum(w.size for w in self._waiting.values())
        self._drained = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="observatory-otlp-inbox",
                                        daemon=True)
        self._thread.start()
        # At exit (a SIGTERM of the server ends there), before the store closes (atexit
        # runs the last registered first): write what is waiting, for a few seconds; the
        # rest is written at the next start.
        atexit.register(self._at_exit)

    def _track(self, rid: int, arrived: float, size: int, signal: str, seg: int,
               offset: int) -> None:
        self._waiting[rid] = Waiting(arrived, size, signal, seg, offset)
        self._per_segment[seg] = self._per_segment.get(seg, 0) + 1

    def _adopt_table(self, due: float) -> None:
        """Move what a version before the journal left in ``otlp_inbox`` into the journal
        (synced), then empty the table. A crash in between leaves a request in both: it is
        written twice, which stores it once."""
        rows = self.store.sql("SELECT id, signal, body FROM otlp_inbox ORDER BY id")
        if rows.empty:
            return
        segments = set()
        for _, signal, body in rows.itertuples(index=False):
            body = bytes(body)
            rid, self._next = self._next, self._next + 1
            seg, offset = self.journal.append(rid, signal, body)
            self._track(rid, due, len(body), signal, seg, offset)
            segments.add(seg)
        for seg in segments:  # (more than one when they fill a segment)
            self.journal.sync(seg)
        self.store.submit(lambda cur: cur.execute("DELETE FROM otlp_inbox"),
                          block=True, topic=None).result()
        log.info("OTLP inbox: %d waiting requests moved from the table to %s", len(rows),
                 self.journal.folder)

    # -- the receiver's side ---------------------------------------------------------------

    def arriving(self) -> bool:
        """A request arrives: whether it may be answered before its rows are written (other
        requests are in flight, and the inbox has room). Pair with :meth:`left`."""
        with self._lock:
            self._in_flight += 1
            self._last_arrival = time.monotonic()
            # (a burst is on while the inbox holds requests: a lone request then goes
            # there too, or each exporter's next request would wait for its rows)
            return (self.defer_s > 0 and (self._in_flight > 1 or bool(self._waiting))
                    and not self._closed and self._bytes < self.limit)

    def left(self, _fut: Future | None = None) -> None:
        with self._lock:
            self._in_flight -= 1

    def put(self, signal: str, body: bytes) -> Future:
        """Append ``body`` (a protobuf export request) to the journal and sync it; a future
        that is done (it is on disk: the request may be answered). Raises
        :class:`~workbench.store.StoreWriteError` when the disk refuses it (a 503)."""
        from .store import StoreWriteError

        size = len(body)
        try:
            with self._lock:  # (appended and counted as one: a segment is dropped only
                # once every request in it is written)
                rid, self._next = self._next, self._next + 1
                seg, offset = self.journal.append(rid, signal, body)
                self._track(rid, time.monotonic(), size, signal, seg, offset)
                self._bytes += size
            # Outside the lock: concurrent requests' syncs overlap (one flush of the
            # segment covers every record appended before it).
            self.journal.sync(seg)
        except OSError as err:
            raise StoreWriteError(f"could not write to {self.journal.folder}: {err}",
                                  path=str(self.journal.folder), reason=str(err)) from err
        self._wake.set()
        fut: Future = Future()
        fut.set_result(rid)
        return fut

    # -- state -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """For ``/api/health``: requests acknowledged and not yet written as rows."""
        with self._lock:
            oldest = min((w.arrived for w in self._waiting.values()), default=None)
            return {"requests": len(self._waiting), "bytes": self._bytes,
                    "oldest_s": round(time.monotonic() - oldest, 3) if oldest else None}

    def backlog(self) -> int:
        """Requests acknowledged and not yet written as rows."""
        with self._lock:
            return len(self._waiting)

    def settle(self, timeout: float = 60.0) -> bool:
        """Wait until every acknowledged request's rows are written; whether they are."""
        self._forced = True
        self._wake.set()
        end = time.monotonic() + timeout
        with self._drained:
            while self._waiting:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._drained.wait(min(left, 0.1))
                self._wake.set()
        self._forced = False
        return True

    def close(self) -> None:
        atexit.unregister(self._at_exit)
        self._closed = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(10)
        with self._lock:
            self.journal.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _at_exit(self) -> None:
        if not self._closed and not self.store._closed:
            self.settle(EXIT_S)
        self.close()

    # -- the worker ------------------------------------------------------------------------

    def _due(self) -> bool:
        with self._lock:
            if not self._waiting:
                return False
            if self._forced:
                return True
            now = time.monotonic()
            oldest = min(w.arrived for w in self._waiting.values())
            return (now - self._last_arrival >= self.quiet_s or now - oldest >= self.defer_s
                    or self._bytes >= self.limit / 2)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.quiet_s)
            self._wake.clear()
            if self._closed or not self._due():
                continue
            try:
                self._drain()
            except Exception as err:  # noqa: BLE001  (the worker outlives a bad round)
                if self.store._closed:
                    return
                log.warning("OTLP inbox: rows not written yet (%s); retrying", err)
                time.sleep(1.0)
        try:  # (closing: account for what the writer has in hand, so that it is not
            self._settle_pending(keep=0)  # written again at the next start)
        except Exception:  # noqa: BLE001, S110  (then it is: stored once all the same)
            pass

    def _drain(self) -> None:
        # The groups of a round are written while the next round is made (waiting for each
        # round's last write left the flattening idle a fifth of the time): a round starts
        # with at most PENDING groups queued for the writer.
        self._settle_pending(keep=PENDING)
        with self._lock:
            ids = sorted(rid for rid in self._waiting if rid not in self._taken)[:TAKE]
            places = [(rid, self._waiting[rid]) for rid in ids]
        if not places:  # every waiting request is being written: wait for those
            self._settle_pending(keep=0)
            return
        requests = [(rid, w.signal, self.journal.read(w.segment, w.offset, w.size))
                    for rid, w in places]
        groups = [requests[i:i + GROUP] for i in range(0, len(requests), GROUP)]
        futures = self._write([[(signal, body) for _, signal, body in group]
                               for group in groups])
        for group, fut in zip(groups, futures, strict=True):
            self._taken.update(rid for rid, _, _ in group)
            self._pending.append((group, fut))
        self._wake.set()  # more may be waiting: look again at once

    def _settle_pending(self, keep: int) -> None:
        """Account for the written groups, waiting for the oldest until at most ``keep``
        are left: their requests leave the inbox, and their segments once empty."""
        while self._pending and (len(self._pending) > keep or self._pending[0][1].done()):
            group, fut = self._pending.popleft()
            rids = [rid for rid, _, _ in group]
            try:
                try:
                    fut.result()
                except Exception:  # noqa: BLE001
                    if len(group) == 1:
                        raise
                    # One request's rows may be what failed: write each alone, so that it
                    # cannot hold the others back (it raises, and is tried again later).
                    for one in group:
                        self._submit([one]).result()
            finally:
                self._taken.difference_update(rids)
            self._written(rids)

    def _submit(self, group: list[tuple[int, str, bytes]]) -> Future:
        return self._write([[(signal, body) for _, signal, body in group]])[0]

    def _written(self, rids: list[int]) -> None:
        with self._drained:
            for rid in rids:
                gone = self._waiting.pop(rid, None)
                if gone is None:
                    continue
                self._bytes -= gone.size
                self._per_segment[gone.segment] -= 1
                if not self._per_segment[gone.segment]:  # all in it written: give it back
                    del self._per_segment[gone.segment]
                    self.journal.drop(gone.segment)
            self._drained.notify_all()
