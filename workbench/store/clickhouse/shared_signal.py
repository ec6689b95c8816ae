"""News of writes that other processes made to a shared ClickHouse.

A DuckDB file has one writer, so its commit news is local (:meth:`Store.on_commit`). A
ClickHouse store is written by every ``observatory serve`` of a team and by stock
OpenTelemetry Collectors; a page open on one node must still refresh when another wrote.
Two ways, both on:

- **Redis pub/sub** (``OBSERVATORY_REDIS_URL``): each node publishes its writes' topics on
  one channel per database and hears the others' at once.
- **A look at the tables** every ``OBSERVATORY_SHARED_POLL_S`` (1 s): the rows in the
  active parts of each topic's tables (telemetry; runs and coverage; agents' records),
  from ``system.parts`` (metadata: no table is read). A merge that folds a run's older
  rows away is news too (a refresh too many). A
  Collector publishes nothing, so this is how its writes are seen; it also stands in for
  Redis when there is none. Rows this node added itself are not news twice.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable

from .connect import first_line
from .otel_ddl import METRIC_TABLES

log = logging.getLogger("workbench.store")

#: The tables of each topic (the lookup table the view fills is not news).
WATCHED = {"telemetry": ("otel_traces", "otel_logs", *METRIC_TABLES.values()),
           "tests": ("wb_runs", "wb_results", "wb_coverage_reports"),
           "control": ("wb_agent_events", "wb_agent_samples", "wb_audit")}


class SharedSignal:
    """Hands other writers' news to ``notify(topics)``; :meth:`wrote` says this node's."""

    def __init__(self, client, database: str, notify: Callable[[frozenset[str]], None],
                 redis_url: str | None = None, poll_s: float = 1.0):
        self.node = uuid.uuid4().hex
        self.channel = f"observatory:{database}:commits"
        self._client, self._notify, self._poll_s = client, notify, poll_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._own = dict.fromkeys(WATCHED, 0)  # rows this node added since the last look
        self._seen: dict[str, int] | None = None
        self.redis_error: str | None = None
        self._redis = None
        self._pending: set[str] = set()
        self._lock_pending = threading.Lock()
        self._wake = threading.Event()
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=2,
                                               socket_connect_timeout=2)
            threading.Thread(target=self._listen, daemon=True,
                             name="observatory-redis-signal").start()
            threading.Thread(target=self._publisher, daemon=True,
                             name="observatory-redis-publish").start()
        if poll_s > 0:
            threading.Thread(target=self._poll, daemon=True,
                             name="observatory-shared-poll").start()

    # -- this node's writes ---------------------------------------------------------------
    #: Held by this node's writer while it inserts and counts, and by the look at the
    #: tables: a look never falls between an insert and its count (which made this node's
    #: own rows look like someone else's).
    @property
    def lock(self) -> threading.Lock:
        return self._lock

    #: The topics whose tables are looked at.
    topics = frozenset(WATCHED)

    def counted(self, rows: int, topic: str) -> None:
        """This node stored ``rows`` rows of ``topic`` (call with :attr:`lock` held, right
        after)."""
        self._own[topic] += rows

    def publish(self, topics: frozenset[str]) -> None:
        """Tell the other nodes (through Redis, when there is one). Never waits: a thread
        of its own sends, the topics of writes in between gathered into one message (a
        Redis that does not answer must not hold the writer)."""
        if self._redis is None:
            return
        with self._lock_pending:
            self._pending |= topics
        self._wake.set()

    def _publisher(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            with self._lock_pending:
                topics, self._pending = self._pending, set()
            if not topics:
                continue
            try:
                self._redis.publish(self.channel, json.dumps(
                    {"node": self.node, "topics": sorted(topics)}))
                self.redis_error = None
            except Exception as err:  # noqa: BLE001  (the look at the tables carries it)
                self._redis_failed(err)

    # -- Redis ----------------------------------------------------------------------------
    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self.redis_error = None
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=0.5)
                    if msg and msg.get("type") == "message":
                        self._heard(msg["data"])
            except Exception as err:  # noqa: BLE001
                self._redis_failed(err)
                self._stop.wait(2.0)  # (and try again)

    def _heard(self, data: bytes) -> None:
        try:
            news = json.loads(data)
            if news.get("node") == self.node:
                return
            topics = frozenset(t for t in news.get("topics", ()) if isinstance(t, str))
        except (ValueError, AttributeError, TypeError):
            log.warning("%s: a message that is not the workbench's: %.80r", self.channel, data)
            return
        if topics:
            self._notify(topics)

    def _redis_failed(self, err: BaseException) -> None:
        reason = first_line(err, 200)
        if reason != self.redis_error:
            log.warning("Redis signal: %s (the tables are still looked at every %s s)",
                        reason, self._poll_s)
        self.redis_error = reason

    # -- the tables -----------------------------------------------------------------------
    def rows(self) -> dict[str, int]:
        """The rows in each topic's tables' active parts."""
        topic = {t: name for name, tables in WATCHED.items() for t in tables}
        names = ", ".join(f"'{t}'" for t in topic)
        found = self._client.query(
            "SELECT table, sum(rows) FROM system.parts WHERE database = currentDatabase() "
            f"AND active AND table IN ({names}) GROUP BY table").result_rows
        out = dict.fromkeys(WATCHED, 0)
        for table, rows in found:
            out[topic[table]] += int(rows or 0)
        return out

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_s):
            with self._lock:
                try:
                    total = self.rows()
                except Exception:  # noqa: BLE001  (a store being closed, a server away)
                    log.debug("shared poll failed", exc_info=True)
                    continue
                own, self._own = self._own, dict.fromkeys(WATCHED, 0)
                before, self._seen = self._seen, total
            if before is not None:
                news = frozenset(t for t in WATCHED if total[t] != before[t] + own[t])
                if news:
                    self._notify(news)

    def close(self) -> None:
        self._stop.set()
        if self._redis is not None:
            try:
                self._redis.close()
            except Exception:  # noqa: BLE001
                log.debug("closing Redis failed", exc_info=True)
