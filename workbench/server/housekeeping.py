"""The serve process's upkeep of its file, on a schedule: retention policies, compaction
when the file has grown well past its live data, scheduled backups, and the storage alert
rules (the write-ahead log's size, the disk's free space).

One thread; each job goes through the store's one writer (retention in bounded chunks,
compaction between two transactions), so ingest keeps flowing. What each job did last is
kept for ``GET /api/store``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from .. import config
from ..store import retention, upkeep

log = logging.getLogger("workbench.server")


def backup_dir(store) -> Path:
    return upkeep.backup_folder(store, config.get("OBSERVATORY_BACKUP_DIR"))


class Housekeeping:
    """Runs the jobs when they are due (checked every :attr:`TICK_S` seconds)."""

    TICK_S = 30.0

    def __init__(self, store, alerts=None) -> None:
        self.store = store
        self.alerts = alerts
        self.last: dict[str, Any] = {}
        self._due = {"retention": 0.0, "backup": time.monotonic() + self._every("backup"),
                     "storage": 0.0}
        self._lock = threading.Lock()  # one job at a time, from the tick or the API
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)

    def start(self) -> Housekeeping:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()

    @staticmethod
    def _every(job: str) -> float:
        if job == "retention":
            return config.get("OBSERVATORY_RETENTION_EVERY_S")
        if job == "backup":
            return config.get("OBSERVATORY_BACKUP_EVERY_H") * 3600
        return 60.0

    def _run(self) -> None:
        while not self._stop.wait(self.TICK_S):
            self.tick()

    def tick(self) -> None:
        now = time.monotonic()
        for job, fn in (("storage", self.check_storage), ("retention", self.retention),
                        ("backup", self.backup)):
            every = self._every(job)
            if every <= 0 or now < self._due[job]:
                continue
            self._due[job] = now + every
            try:
                fn()
            except Exception as err:  # noqa: BLE001  (the schedule outlives one bad run)
                log.error("housekeeping: %s failed: %s", job, err)
                self.last[job] = {"error": str(err), "at": time.time()}

    def _record(self, job: str, result: dict[str, Any]) -> dict[str, Any]:
        self.last[job] = {**result, "at": time.time()}
        return result

    def check_storage(self) -> dict[str, Any]:
        stats = upkeep.file_stats(self.store)
        if self.alerts is not None:
            self.alerts.check_storage(stats)
        return self._record("storage", stats)

    def retention(self) -> dict[str, Any]:
        """Apply the policies, then compact when the file is past the threshold, then look
        at the figures the storage rules watch (they have just changed)."""
        with self._lock:
            out = retention.apply(self.store).as_dict()
        self._record("retention", out)
        self.maybe_compact()
        self.check_storage()
        return out

    def maybe_compact(self) -> dict[str, Any] | None:
        ratio = config.get("OBSERVATORY_COMPACT_RATIO")
        stats = upkeep.file_stats(self.store)
        if ratio <= 0 or stats["bloat"] < ratio or \
                stats["free_bytes"] < config.get("OBSERVATORY_COMPACT_MIN_MB") * 2**20:
            return None
        return self.compact()

    def compact(self) -> dict[str, Any]:
        with self._lock:
            log.warning("compacting %s", self.store.path)
            return self._record("compaction", upkeep.compact(self.store))

    def backup(self, keep: int | None = None) -> dict[str, Any]:
        with self._lock:
            done = upkeep.backup(self.store, backup_dir(self.store),
                                 keep or config.get("OBSERVATORY_BACKUP_KEEP"))
        return self._record("backup", done.as_dict())

    def state(self) -> dict[str, Any]:
        return {**upkeep.state(self.store, backup_dir(self.store)), "last": self.last,
                "schedule": {"retention_every_s": self._every("retention"),
                             "backup_every_h": config.get("OBSERVATORY_BACKUP_EVERY_H"),
                             "backup_keep": config.get("OBSERVATORY_BACKUP_KEEP"),
                             "compact_ratio": config.get("OBSERVATORY_COMPACT_RATIO")}}
