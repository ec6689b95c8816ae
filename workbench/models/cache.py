"""Compute once, show many: a model answers the same question once per data version."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

import pandas as pd

from ..config import utcnow


class FrameCache:
    """Frames a model has fetched, keyed by query and parameters, dropped on new data.

    Several views of one model ask for the same frame (a chart and a table of the same
    runs); with this they share one query. The time window is measured from the model's
    clock, which moves at each refresh (new data), so that keys repeat between refreshes.
    """

    SIZE = 64

    def __init__(self) -> None:
        self._frames: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
        self._clock: datetime = utcnow()
        #: Off for notebooks (every call reads the store as it is now); dashboards turn it
        #: on and call ``refresh()`` when the data version changes.
        self.enabled = False

    @property
    def clock(self) -> datetime:
        """The end of the time window: the last refresh, or now when caching is off."""
        return self._clock if self.enabled else utcnow()

    def clear(self) -> None:
        """New data: forget every frame and move the clock to now."""
        self._frames.clear()
        self._clock = utcnow()

    def get(self, store: Any, name: str, params: dict[str, Any]) -> pd.DataFrame:
        """``store.query(name, **params)``, from the cache when asked before."""
        if not self.enabled:
            return store.query(name, **params)
        key = (id(store), name, tuple(sorted((k, repr(v)) for k, v in params.items())))
        frame = self._frames.get(key)
        if frame is None:
            frame = store.query(name, **params)
            self._frames[key] = frame
            if len(self._frames) > self.SIZE:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(key)
        # A shallow copy: a view that adds a column must not change what others see.
        return frame.copy(deep=False)
