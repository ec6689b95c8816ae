"""The OTLP receiver's inbox: under load, a request is acknowledged once its bytes are
committed, and its rows are written behind.

An SDK exporter sends its next batch only when the last one is answered, and the receiver
answers only once a request is stored (exactly-once: nothing acknowledged is ever lost).
Flattening a request into rows costs the server ~15 times what reading it costs, and on a
small machine the exporters and the server share the same cores: answering only after the
rows were written ran exporters at a third of their own pace. So when requests overlap, a
request's protobuf body goes into ``otlp_inbox`` in one committed row (the writer commits
many of them together) and is answered; a worker thread flattens the inbox into rows later
and deletes each inbox row in the transaction that writes its rows. What is acknowledged
is on disk either way; a crash leaves the inbox to be drained at the next start; a request
sent again is stored once, as before (the rows' own de-duplication).

The worker waits for a quiet moment (no new request for ``QUIET_S``), or until the oldest
waiting request is ``OBSERVATORY_OTLP_DEFER_S`` old, or the inbox holds more than half of
``OBSERVATORY_OTLP_INBOX_BYTES``; past that limit requests are written before they are
answered again, as when they do not overlap. A lone request is always written first, so
a client that sends and then reads finds its rows.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .. import config

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("workbench.store")

QUIET_S = 0.25  # no new request for this long: the receiver is idle, drain now
EXIT_S = 3.0  # at exit, write waiting requests' rows for this long at most
TAKE = 32  # inbox rows read per round
#: Requests written in one transaction. Written one by one, a request's own statements
#: (the resend check, the insert, the rollup stamp, the inbox delete) and its commit cost
#: more than its rows: 40 % of the writer's time was COMMIT while 100k spans drained. In
#: groups, the writer writes one while the worker flattens the next.
GROUP = 8


class Inbox:
    """The inbox of one store: :meth:`put` a request, and a worker writes its rows later.

    Parameters
    ----------
    store
        The open DuckDB store (a ClickHouse store writes each request at once).
    flatten_write
        ``([(signal, body), ...], also) -> Future``: flatten protobuf requests and queue
        their rows' write as one, with the extra statement the caller passes as ``also``
        (the inbox rows' deletion) in the same transaction.
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
        self._waiting: dict[int, tuple[float, int]] = {}  # inbox id -> (arrived, bytes)
        # requests a previous process acknowledged and did not write: due at once
        due = time.monotonic() - self.defer_s
        for rid, size in store.sql("SELECT id, octet_length(body) AS n FROM otlp_inbox")\
                .itertuples(index=False):
            self._waiting[int(rid)] = (due, int(size))
        self._bytes = sum(size for _, size in self._waiting.values())
        self._drained = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="observatory-otlp-inbox",
                                        daemon=True)
        self._thread.start()
        # At exit (a SIGTERM of the server ends there), before the store closes (atexit
        # runs the last registered first): write what is waiting, for a few seconds; the
        # rest is written at the next start.
        atexit.register(self._at_exit)

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
        """Queue ``body`` (a protobuf export request) for the inbox; a future that is done
        once it is committed."""
        size = len(body)

        def write(cur) -> int:
            return cur.execute(
                "INSERT INTO otlp_inbox (received_at, signal, body) "
                "VALUES (now(), ?, ?) RETURNING id", [signal, body]).fetchone()[0]

        fut = self.store.submit(write, block=False, topic=None)
        fut.add_done_callback(lambda f: self._put_done(f, size))
        return fut

    def _put_done(self, fut: Future, size: int) -> None:
        if fut.exception() is not None:
            return
        with self._lock:
            self._waiting[fut.result()] = (time.monotonic(), size)
            self._bytes += size
        self._wake.set()

    # -- state -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """For ``/api/health``: requests acknowledged and not yet written as rows."""
        with self._lock:
            oldest = min((t for t, _ in self._waiting.values()), default=None)
            return {"requests": len(self._waiting), "bytes": self._bytes,
                    "oldest_s": round(time.monotonic() - oldest, 3) if oldest else None}

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
            oldest = min(t for t, _ in self._waiting.values())
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

    def _drain(self) -> None:
        with self._lock:
            ids = sorted(self._waiting)[:TAKE]
        rows = self.store.sql("SELECT id, signal, body FROM otlp_inbox WHERE id IN "
                              f"({', '.join(map(str, ids))}) ORDER BY id")
        with self._drained:  # (gone already: a previous round wrote it, then failed)
            for rid in set(ids) - set(rows["id"].astype(int)):
                self._bytes -= self._waiting.pop(rid, (0.0, 0))[1]
        requests = [(int(rid), signal, bytes(body))
                    for rid, signal, body in rows.itertuples(index=False)]
        groups = [requests[i:i + GROUP] for i in range(0, len(requests), GROUP)]
        pending = [(group, self._submit(group)) for group in groups]
        for group, fut in pending:
            try:
                fut.result()
            except Exception:  # noqa: BLE001
                if len(group) == 1:
                    raise
                # One request's rows may be what failed: write each alone, so that it
                # cannot hold the others back (it raises, and is tried again later).
                for one in group:
                    self._submit([one]).result()
            self._written([rid for rid, _, _ in group])
        self._wake.set()  # more may be waiting: look again at once

    def _submit(self, group: list[tuple[int, str, bytes]]) -> Future:
        return self._write([(signal, body) for _, signal, body in group],
                           _deleting([rid for rid, _, _ in group]))

    def _written(self, rids: list[int]) -> None:
        with self._drained:
            for rid in rids:
                self._bytes -= self._waiting.pop(rid, (0.0, 0))[1]
            self._drained.notify_all()


def _deleting(rids: list[int]):
    def also(cur) -> None:
        cur.execute(f"DELETE FROM otlp_inbox WHERE id IN ({', '.join(map(str, rids))})")
    return also
