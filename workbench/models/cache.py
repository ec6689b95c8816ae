"""Compute once, show many: a model answers the same question once per data version."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

import pandas as pd

from ..config import utcnow


class Frames:
    """A bounded least-recently-used map of query results, safe to share between threads."""

    def __init__(self, size: int):
        self.size = size
        self._frames: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
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

    def share(self, frames: Frames, version: Any, at: datetime) -> None:
        """Keep frames in ``frames`` (shared with other sessions), keyed by ``version``."""
        self._frames, self._shared, self.enabled = frames, True, True
        self.clear(version, at)

    def clear(self, version: Any = None, at: datetime | None = None) -> None:
        """New data: forget every frame and move the clock to ``at`` (default now). A
        shared cache forgets nothing: the new ``version`` makes new keys."""
        if not self._shared:
            self._frames.clear()
        self._version = version
        self._clock = at or utcnow()

    def get(self, store: Any, name: str, params: dict[str, Any]) -> pd.DataFrame:
        """``store.query(name, **params)``, from the cache when asked before."""
        if not self.enabled:
            return store.query(name, **params)
        key = (self._version, id(store), name,
               tuple(sorted((k, repr(v)) for k, v in params.items())))
        frame = self._frames.get(key)
        if frame is None:
            frame = store.query(name, **params)
            self._frames.put(key, frame)
        # A shallow copy: a view that adds a column must not change what others see.
        return frame.copy(deep=False)
