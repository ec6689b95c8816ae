"""The one data-change signal of a serve process, and each open dashboard's subscription.

The store's writer calls in after every commit (nothing polls); the news hops once onto the
server's event loop. There it is published at most once per interval, to every subscribed
session at once: under busy ingest (dozens of commits a second) each open dashboard
refreshes once per interval, not once per commit, and a quiet workbench shows a new run at
once. The interval is ``OBSERVATORY_LIVE_INTERVAL`` seconds from one publish to the next,
and at least five times what the round of refreshes cost (:data:`BUDGET`), so that the
dashboards take at most a fifth of the server's time: the rest is ingest's.

All sessions refresh to the same version, whose time is their clock: their queries are
identical, and the models' shared frame cache answers them. Before the sessions are told,
a worker thread asks the new version the questions the sessions asked of the last one
(``Frames.warm``): the queries run off the loop, which keeps serving ingest meanwhile, and
the refreshes that follow only update their pages.

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
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, NamedTuple

from tornado.ioloop import IOLoop

from .. import config
from ..config import utcnow
from ..models.cache import SHARED
from ..store.store import TOPICS

log = logging.getLogger("workbench.server")

#: For a store without commit news (the API of another workbench): a cheap query per topic
#: whose answer changes whenever that topic's data does.
VERSION_QUERIES = {"tests": "data_version", "telemetry": "telemetry_version"}


#: The share of the server's time that live dashboards may take (their refreshes' CPU
#: time and the queries asked ahead, on the clock); the rest is ingest's.
BUDGET = 0.2


class Version(NamedTuple):
    """A topic's data version: how many times this process has published news of it, and
    when it last did (the clock of every view refreshed to it)."""

    number: int
    at: datetime


class DataSignal:
    """Commit news for one store, fanned out to the sessions on one event loop."""

    def __init__(self, store: Any, loop: IOLoop):
        self._store = store
        self._loop = loop
        self._subs: dict[str, set[Subscription]] = {t: set() for t in TOPICS}
        start = utcnow()
        self.current = {t: Version(0, start) for t in TOPICS}
        self.interval = config.get("OBSERVATORY_LIVE_INTERVAL")
        self._heard: set[str] = set()  # topics committed since the last publish
        self._scheduled = False
        self._round = False  # a publish is being warmed or refreshed
        self._not_before = 0.0  # monotonic time before which nothing is published
        self._started = 0.0  # when the round on (or the last one) was published
        self._due: deque[Subscription] = deque()  # sessions still to refresh, in turn
        self._busy: Subscription | None = None
        self._round_cost = 0.0  # what this round cost: its queries and its refreshes
        self._costs: deque[float] = deque(maxlen=3)  # the last rounds' costs
        self._warmer = ThreadPoolExecutor(1, thread_name_prefix="observatory-warm")
        self._log: dict[str, Any] = {}
        #: The last rounds: when each was published, when its queries began and when its
        #: last session refreshed (epoch seconds), its topics, sessions, cost, and the part
        #: of the cost its queries took, in seconds (``GET /api/live``).
        self.rounds: deque[dict[str, Any]] = deque(maxlen=100)
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
        if not self._heard:
            return  # a commit of nothing a page shows (a write with no topic)
        if self._scheduled or self._round:
            return  # a publish is due, or a round is on: its end schedules the next
        self._scheduled = True
        delay = max(0.0, self._not_before - time.monotonic())
        self._loop.call_later(delay, self._publish)

    def _publish(self) -> None:
        topics, self._heard, self._scheduled = self._heard, set(), False
        self._round = True
        self._started = time.monotonic()
        self._not_before = self._started + self.interval
        now_s = time.time()
        self._log = {"published": now_s, "asked": now_s, "topics": sorted(topics),
                     "sessions": 0}
        now = utcnow()
        numbers = {}
        for topic in topics:
            self.current[topic] = Version(self.current[topic].number + 1, now)
            numbers[topic] = self.current[topic].number
            self._due.extend(s for s in self._subs[topic] if s not in self._due)
        if not self._due:
            self._next()  # no page shows these topics: nothing to ask ahead
            return
        warmed = self._warmer.submit(self._warm, numbers, now)
        warmed.add_done_callback(lambda done: self._loop.add_callback(self._warmed, done))

    def _warm(self, numbers: dict[str, int], at: datetime) -> float:
        """On the worker thread: the new versions' frames, before any session asks.
        Returns the seconds it took: the dashboards' cost, like their refreshes. (On the
        clock, not this thread's CPU time: DuckDB runs a query on threads of its own.)"""
        start = time.monotonic()
        self._log["asked"] = time.time()  # what was committed before this is in the round
        for topic, number in numbers.items():
            try:
                SHARED.warm(self._store, topic, number, at)
            except Exception:  # a session then runs its own queries, and shows any error
                log.exception("warming the dashboards' frames for %s", topic)
        return time.monotonic() - start

    def _warmed(self, done: Future) -> None:
        seconds = done.result() if done.exception() is None else 0.0
        self._round_cost += seconds
        self._log["queries_s"] = round(seconds, 4)
        self._next()

    def _next(self) -> None:
        """Refresh the sessions one per turn of the loop, so that requests (ingest) are
        served between two sessions' refreshes rather than after all of them."""
        self._busy = None
        while self._due:
            sub = self._due.popleft()
            if sub.open:
                self._busy = sub
                self._log["sessions"] += 1
                sub.notify()
                return
        # The next publish is an interval after this one began, and at least five times
        # what a round costs after it began: dashboards get at most a fifth of the server,
        # however many are open. (While a round is on, the loop also serves ingest between
        # two sessions' refreshes, so the round's span on the clock is not all theirs.) A
        # round's cost is the mean of the last few: one dear round (the one that adds a new
        # agent to every page, say) does not hold back the next one alone.
        self._costs.append(self._round_cost)
        self._not_before = max(self._not_before, self._started
                               + sum(self._costs) / len(self._costs) / BUDGET)
        self._log.update(refreshed=time.time(), cost_s=round(self._round_cost, 4))
        self.rounds.append(self._log)
        self._round, self._round_cost = False, 0.0
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

    def stats(self) -> dict[str, Any]:
        """How live the open dashboards are: for ``GET /api/live``."""
        return _stats(self.interval,
                      {t: sum(s.open for s in subs) for t, subs in self._subs.items()},
                      {t: v.number for t, v in self.current.items()}, list(self.rounds))

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
        # The loop's CPU time, not the time on the clock: while ingest's threads hold the
        # GIL the refresh waits, which costs ingest nothing, and counting it would stretch
        # the interval the most exactly when the server is busiest.
        start = time.thread_time()
        try:
            self._refresh(self.signal.current[self.topic])
        finally:
            self.signal._done(self, time.thread_time() - start)

    def close(self) -> None:
        """The session is gone (its pending refresh, if any, will never run)."""
        self.open = False
        self.signal._drop(self)
        self.signal._done(self)


_signals: dict[int, DataSignal] = {}
_lock = threading.Lock()


def live_stats(store: Any) -> dict[str, Any]:
    """:meth:`DataSignal.stats` of ``store``'s signal; before any dashboard opened, none."""
    with _lock:
        sig = _signals.get(id(store))
    if sig is None:
        return _stats(config.get("OBSERVATORY_LIVE_INTERVAL"), dict.fromkeys(TOPICS, 0),
                      dict.fromkeys(TOPICS, 0), [])
    return sig.stats()


def _stats(interval: float, sessions: dict[str, int], versions: dict[str, int],
           rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return {"interval_s": interval, "budget": BUDGET, "sessions": sessions,
            "versions": versions, "rounds": rounds}


def signal_for(store: Any) -> DataSignal:
    """The signal of ``store``, created on the calling session's event loop the first time."""
    with _lock:
        sig = _signals.get(id(store))
        if sig is None:
            sig = _signals[id(store)] = DataSignal(store, IOLoop.current())
        return sig
