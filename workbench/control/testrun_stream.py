"""Following a test run's results file (written by workbench/pytest_stream.py inside the
project's own Python) into a live run of the store, as each test ends.

The reporter in the child only appends JSON lines to a file of the workbench's data folder;
this side reads what was added since the last look, puts each test's phases together into
attempts (ingest.reportlog.PhaseAssembler, as the pytest plugin does) and hands finished
tests and the tests running now to the store's intake. The child holds no token and talks
to no server: what it can do to the store is what its lines say about its own tests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..analysis.identity import from_nodeid, test_id
from ..ingest.reportlog import PhaseAssembler

#: Bytes read from the file per look at most (a huge line is cut off, not read whole).
CHUNK = 4 << 20


class Follower:
    """One run's results file, followed into a live run stored under ``meta`` (project,
    build, commit, branch) once the child says its session started."""

    def __init__(self, store, path: Path, meta: dict[str, Any]):
        from ..intake import LocalIntake

        self.intake = LocalIntake(store, ci_env={})
        self.path = path
        self.meta = meta
        self.run_id: str | None = None
        self.started: dict[str, Any] | None = None  # the child's "start" line
        self.exitstatus: int | None = None
        self.collect_errors: list[tuple[str, str]] = []
        self.results = 0
        self._offset = 0
        self._rest = b""
        self._phases = PhaseAssembler()
        self._attempts: dict[str, list[dict[str, Any]]] = {}
        self._running: dict[str, None] = {}
        self._t0 = time.monotonic()

    def poll(self) -> None:
        """Read what was added to the file and store the tests that finished."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read(CHUNK)
        except OSError:
            return
        self._offset += len(data)
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        batch: list[dict[str, Any]] = []
        before = list(self._running)
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # (not a line of ours: nothing to store)
            if isinstance(rec, dict):
                self._take(rec, batch)
        if self.run_id and (batch or list(self._running) != before):
            self._send(batch)

    def _take(self, rec: dict[str, Any], batch: list[dict[str, Any]]) -> None:
        event, nodeid = rec.get("event"), rec.get("nodeid")
        if event == "start" and self.started is None:
            self.started = rec
            root = rec.get("rootdir")
            meta = {**self.meta, "source": f"pytest {root}" if isinstance(root, str)
                    else self.meta.get("source")}
            self.run_id = self.intake.live_start(meta)
        elif event == "finish" and isinstance(rec.get("exitstatus"), int):
            self.exitstatus = rec["exitstatus"]
        elif event == "collect-error" and isinstance(nodeid, str):
            self.collect_errors.append((nodeid, str(rec.get("message") or "")[:500]))
        elif not isinstance(nodeid, str) or not nodeid:
            return
        elif event == "test":
            self._running[nodeid] = None
        elif event == "phase" and rec.get("when") in ("setup", "call", "teardown"):
            duration = rec.get("duration")
            done = self._phases.feed(
                nodeid, rec["when"], str(rec.get("outcome")),
                duration if isinstance(duration, int | float) and duration >= 0 else 0.0,
                lambda: (_text(rec.get("message")), _text(rec.get("details"))))
            if done is None:
                return
            attempt, final = done
            self._attempts.setdefault(nodeid, []).append({
                "outcome": attempt.outcome, "duration_s": attempt.duration_s,
                "message": attempt.message, "details": attempt.details})
            if final:
                batch.append(self._test(nodeid))

    def _test(self, nodeid: str) -> dict[str, Any]:
        self._running.pop(nodeid, None)
        classname, file, name = from_nodeid(nodeid)
        self.results += 1
        return {"classname": classname, "file": file, "name": name, "suite": file,
                "attempts": self._attempts.pop(nodeid)}

    def _send(self, batch: list[dict[str, Any]]) -> None:
        running = [test_id(c, f, n) for c, f, n in map(from_nodeid, self._running)]
        self.intake.live_append(self.run_id, batch, running)

    def close(self, status: str = "complete") -> None:
        """The child ended: store what is left (a test cut off mid-way keeps the attempts
        it finished) and end the live run with ``status``."""
        from ..store.writes import finish_live_run

        self.poll()
        if not self.run_id:
            return
        left = [self._test(n) for n in list(self._attempts)]
        self._running.clear()
        self._send(left)
        finish_live_run(self.intake.store, self.run_id, time.monotonic() - self._t0,
                        status=status)


def _text(value: Any) -> str | None:
    return value[:100_000] if isinstance(value, str) else None
