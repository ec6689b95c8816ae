"""Compute once, show many: a model answers the same question once per data version."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import pandas as pd

from ..config import utcnow

log = logging.getLogger("workbench.models")


class Ago(NamedTuple):
    """A query parameter: the time ``delta`` before the model's clock (a window's start).

    It stays a marker in cache keys and is resolved only when the query runs, so that a
    question asked at one data version can be asked again at the next (see
    :meth:`Frames.warm`): an absolute time would differ from one version to the next.
    """

    delta: timedelta


def resolve(params: dict[str, Any], clock: datetime) -> dict[str, Any]:
    """``params`` with every :class:`Ago` turned into the time it names."""
    return {k: clock - v.delta if isinstance(v, Ago) else v for k, v in params.items()}


def _params_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


class Frames:
    """A bounded least-recently-used map of query results, safe to share between threads."""

    def __init__(self, size: int):
        self.size = size
        self._frames: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
        #: What sessions asked, and at which version: (store id, name, params key) ->
        #: (store, name, params, version). Versions here are ``(topic, number)``.
        self._asked: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> pd.DataFrame | None:
        with self._lock:
            frame = self._frames.get(key)
            if frame is not None:
                self._frames.move_to_end(key)
            return frame

    def put(self, key: tuple, frame: pd.DataFrame) -> None:
        with self._lock:
            self._frames[key] = frame
            while len(self._frames) > self.size:
                self._frames.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._asked.clear()

    def asked(self, store: Any, name: str, params: dict[str, Any], pkey: tuple,
              version: Any) -> None:
        """Note that a session asked ``name(**params)`` (``pkey``: its parameters' key) of
        ``store`` at ``version``."""
        key = (id(store), name, pkey)
        with self._lock:
            self._asked[key] = (store, name, params, version)
            self._asked.move_to_end(key)
            while len(self._asked) > self.size:
                self._asked.popitem(last=False)

    def warm(self, store: Any, topic: str, number: int, at: datetime) -> int:
        """Answer now, for version ``(topic, number)`` at time ``at``, every question that
        sessions asked of ``store`` at the version before; return how many were run.

        The data-change signal calls this from a worker thread before it tells the
        sessions: their refreshes then find every frame ready, and the queries ran off the
        event loop, which serves ingest meanwhile (DuckDB lets go of the GIL while it
        works). Questions last asked before that version are forgotten: their sessions
        are gone, or look at something else now.
        """
        with self._lock:
            todo = []
            for key, (owner, name, params, (of, asked_at)) in list(self._asked.items()):
                if owner is not store or of != topic:
                    continue
                if asked_at == number - 1:
                    todo.append((name, params, key[2]))
                elif asked_at < number - 1:
                    del self._asked[key]
        ran = 0
        for name, params, pkey in todo:
            key = ((topic, number), id(store), name, pkey)
            if self.get(key) is not None:
                continue
            try:
                frame = store.query(name, **resolve(params, at))
            except Exception as err:  # noqa: BLE001  (the session will ask, and show why)
                log.debug("warming %s: %s", name, err)
                continue
            self.put(key, frame)
            ran += 1
        return ran


#: The frames every dashboard session of a serve process shares: keyed by data version,
#: so that N open dashboards on the same data run each query once, not N times.
SHARED = Frames(512)


class FrameCache:
    """Frames a model has fetched, keyed by query and parameters, dropped on new data.

    Several views of one model ask for the same frame (a chart and a table of the same
    runs); with this they share one query. The time window is measured from the model's
    clock, which moves at each refresh (new data), so that keys repeat between refreshes.
    Served dashboards go further (:meth:`share`): the clock is the data version's time and
    the version is part of the key, so sessions on the same data share one query too.
    """

    SIZE = 64

    def __init__(self) -> None:
        self._frames = Frames(self.SIZE)
        self._shared = False
        self._version: Any = None
        self._clock: datetime = utcnow()
        #: Off for notebooks (every call reads the store as it is now); dashboards turn it
        #: on and call ``refresh()`` when the data version changes.
        self.enabled = False

    @property
    def clock(self) -> datetime:
        """The end of the time window: the last refresh, or now when caching is off."""
        return self._clock if self.enabled else utcnow()

    def share(self, frames: Frames, version: tuple[str, int], at: datetime) -> None:
        """Keep frames in ``frames`` (shared with other sessions), keyed by ``version``
        (a topic and its data version number: two topics' numbers are unrelated)."""
        self._frames, self._shared, self.enabled = frames, True, True
        self.clear(version, at)

    def clear(self, version: Any = None, at: datetime | None = None) -> None:
        """New data: forget every frame and move the clock to ``at`` (default now). A
        shared cache forgets nothing: the new ``version`` makes new keys."""
        if not self._shared:
            self._frames.clear()
        self._version = version
        self._clock = at or utcnow()

    def derive(self, store: Any, name: str, params: dict[str, Any],
               make: Callable[[], Any]) -> Any:
        """What ``make()`` builds from this version's frames (a view's rows as shown,
        formatted), under ``name`` and ``params``: built once per data version and shared
        by the sessions, as is — callers must not change it. Formatting the same rows for
        each open page was a third of a live refresh (benchmarks/dashboards_vs_ingest.py).
        """
        if not self.enabled:
            return make()
        key = (self._version, id(store), "derived:" + name, _params_key(params))
        out = self._frames.get(key)
        if out is None:
            out = make()
            self._frames.put(key, out)
        return out

    def get(self, store: Any, name: str, params: dict[str, Any]) -> pd.DataFrame:
        """``store.query(name, **params)``, from the cache when asked before."""
        if not self.enabled:
            return store.query(name, **resolve(params, self.clock))
        pkey = _params_key(params)
        key = (self._version, id(store), name, pkey)
        if self._shared:
            self._frames.asked(store, name, params, pkey, self._version)
        frame = self._frames.get(key)
        if frame is None:
            frame = store.query(name, **resolve(params, self._clock))
            self._frames.put(key, frame)
        # A shallow copy: a view that adds a column must not change what others see.
        return frame.copy(deep=False)
