"""The serve process's one store, opened on first use and shared by every session."""

from __future__ import annotations

import logging
import os
import threading

from .. import config
from ..demo import is_empty, load_demo
from ..store import Store

log = logging.getLogger("workbench.server")
_lock = threading.Lock()
_store: Store | None = None


def get_store() -> Store:
    """The process-wide store: ``OBSERVATORY_DB`` or ``data/observatory.duckdb``.

    On first open of an empty file the demo dataset is loaded unless
    ``OBSERVATORY_NO_DEMO`` is set. Sessions share the store (it is stateless to them);
    each builds its own models on top.
    """
    global _store
    with _lock:
        if _store is None:
            path = config.db_path()
            store = Store(path, max_pending=int(os.environ.get("OBSERVATORY_WRITE_QUEUE", 256)))
            if config.demo_enabled() and is_empty(store):
                log.warning(
                    "filling %s with the demo dataset (OBSERVATORY_NO_DEMO=1 skips this)", path
                )
                n = load_demo(store)
                log.warning("demo dataset: %d runs stored", n)
            _store = store
        return _store
