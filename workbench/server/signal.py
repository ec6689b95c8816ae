"""The one data-change signal of a serve process, and each open dashboard's subscription.

The store's writer calls in after every commit (nothing polls); the news hops once onto the
server's event loop. There it is published at most once per interval, to every subscribed
session at once: under busy ingest (dozens of commits a second) each open dashboard
refreshes once per interval, not once per commit, and a quiet workbench shows a new run at
once. The interval is ``OBSERVATORY_LIVE_INTERVAL`` seconds, stretched when the sessions'
refreshes are slow so that they take at most a fifth of the event loop, which ingest needs
for its requests.

All sessions refresh to the same version, whose time is their clock: their queries are
identical, and the models' shared frame cache answers all but the first.

When the dashboards read another workbench's API (that workbench holds the file), there is
no commit to hear: one thread per process asks that server for its versions each second,
instead of every session asking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from tornado.ioloop import IOLoop

from .. import config
from ..config import utcnow
from ..store.store import TOPICS

log = logging.getLogger("workbench.server")

#: For a store without commit news (the API of another workbench): a cheap query per topic
#: whose answer changes whenever that topic's data does.
VERSION_QUERIES = {"tests": "data_version", "telemetry": "telemetry_version"}


class Version(NamedTuple):
    """A topic's data version: how many times this process has published news of it, and
    when it last did (the clock of every view refreshed to it)."""

    number: int
    at: datetime


class DataSignal:
    """Commit news for one store, fanned out to the sessions on one event loop."""

    def __init__(self, store: Any, loop: IOLoop):
        self._loop = loop
        self._subs: dict[str, set[Subscription]] = {t: set() for t in TOPICS}
        start = utcnow()
        self.current = {t: Version(0, start) for t in TOPICS}
        self.interval = config.get("OBSERVATORY_LIVE_INTERVAL")
        self._heard: set[str] = set()  # topics committed since the last publish
        self._scheduled = False
        self._last_publish = 0.0
        self._due: deque[Subscription] = deque()  # sessions still to refresh, in turn
        self._busy: Subscription | None = None
        self._round_cost = 0.0  # seconds the current round's refreshes took
        self.wait = self.interval  # the current interval, stretched by slow rounds
        if hasattr(store, "on_commit"):
            store.on_commit(self._committed)
        else:
            threading.Thread(target=self._poll, args=(store,), daemon=True,
                             name="observatory-version-poll").start()

    def _committed(self, topics: frozenset[str]) -> None:
        """Any thread: hand the news to the loop (``add_callback`` is thread-safe)."""
        self._loop.add_callback(self._heard_of, topics)

    def _heard_of(self, topics: frozenset[str]) -> None:
        """On the loop: publish now, or once the interval since the last publish is over."""
        self._heard |= topics
        if self._scheduled or self._busy is not None:
            return  # a publish is due, or a round is on: its end schedules the next
        self._scheduled = True
        delay = max(0.0, self._last_publish + self.wait - time.monotonic())
        self._loop.call_later(delay, self._publish)

    def _publish(self) -> None:
        topics, self._heard, self._scheduled = self._heard, set(), False
        now = utcnow()
        for topic in topics:
            self.current[topic] = Version(self.current[topic].number + 1, now)
            self._due.extend(s for s in self._subs[topic] if s not in self._due)
        if self._busy is None:
            self._next()

    def _next(self) -> None:
        """Refresh the sessions one per turn of the loop, so that requests (ingest) are
        served between two sessions' refreshes rather than after all of them."""
        self._busy = None
        while self._due:
            sub = self._due.popleft()
            if sub.open:
                self._busy = sub
                sub.notify()
                return
        # The interval counts from the end of the round, and is at least four times what
        # the round cost: dashboards get at most a fifth of the loop, however many are open.
        self._last_publish = time.monotonic()
        self.wait = max(self.interval, 4 * self._round_cost)
        self._round_cost = 0.0
        if self._heard:  # commits heard during the round: schedule the next publish
            self._heard_of(frozenset())

    def _done(self, sub: Subscription, seconds: float = 0.0) -> None:
        self._round_cost += seconds
        if sub is self._busy:
            self._loop.add_callback(self._next)

    def _poll(self, store: Any) -> None:
        seen: dict[str, tuple] = {}
        while True:
            changed = set()
            for topic, name in VERSION_QUERIES.items():
                try:
                    now = tuple(store.query(name).iloc[0].tolist())
                except Exception as err:  # noqa: BLE001  (the other server may be restarting)
                    log.debug("version poll: %s", err)
                    continue
                if seen.get(topic, now) != now:
                    changed.add(topic)
                seen[topic] = now
            if changed:
                self._committed(frozenset(changed))
            time.sleep(1.0)

    def subscribe(self, topic: str, refresh: Callable[[Version], None],
                  doc: Any) -> Subscription:
        """Call ``refresh(version)`` on ``doc``'s session after data of ``topic`` changes."""
        sub = Subscription(self, topic, refresh, doc)
        self._subs[topic].add(sub)
        return sub

    def _drop(self, sub: Subscription) -> None:
        self._subs[sub.topic].discard(sub)


class Subscription:
    """One session's interest in one topic."""

    def __init__(self, signal: DataSignal, topic: str, refresh: Callable[[Version], None],
                 doc: Any):
        self.signal, self.topic, self._refresh, self._doc = signal, topic, refresh, doc
        self.open = True

    def notify(self) -> None:
        """On the loop: refresh on the session's next tick."""
        # Through the document, so the refresh runs with the session's lock and document
        # (Panel pushes the changes as one patch) — and not at all once the session is gone.
        self._doc.add_next_tick_callback(self._fire)

    def _fire(self) -> None:
        start = time.perf_counter()
        try:
            self._refresh(self.signal.current[self.topic])
        finally:
            self.signal._done(self, time.perf_counter() - start)

    def close(self) -> None:
        """The session is gone (its pending refresh, if any, will never run)."""
        self.open = False
        self.signal._drop(self)
        self.signal._done(self)


_signals: dict[int, DataSignal] = {}
_lock = threading.Lock()


def signal_for(store: Any) -> DataSignal:
    """The signal of ``store``, created on the calling session's event loop the first time."""
    with _lock:
        sig = _signals.get(id(store))
        if sig is None:
            sig = _signals[id(store)] = DataSignal(store, IOLoop.current())
        return sig
