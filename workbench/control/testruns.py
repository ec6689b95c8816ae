"""Test runs started from the workbench (``observatory run-tests``, ``POST /api/test-runs``,
the projects page): pytest in the project's folder with the chosen node ids and the
workbench's plugin, which streams each result into the store as it ends — or, for another
runner, a configured command whose JUnit file is ingested when it ends.

Each run is its own process group, so a cancel stops pytest and everything it started.
Runs of one project wait in a queue (``OBSERVATORY_TEST_RUNS_PER_PROJECT`` at once, one by
default). Starting and cancelling are control actions: operators and admins, audited.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from .. import config, launcher
from ..config import utcnow
from ..store import control_writes
from . import access

STATES = ("queued", "running", "passed", "failed", "cancelled", "error", "lost")
DONE = frozenset(STATES[2:])
COLUMNS = ("id", "project", "folder", "state", "tests", "command", "junit", "requested_by",
           "created_at", "started_at", "ended_at", "exit_code", "pid", "run_id", "message",
           "pid_started")
#: The last run's output, in the project's folder.
LOG = ".observatory-test-run.log"
#: Seconds a cancelled run's process group has to stop after SIGTERM before SIGKILL.
GRACE_S = 5.0


class TestRuns:
    """The runs one serve process started, and the queue per project."""

    __test__ = False

    def __init__(self, store, server_url: str | None = None, token: str | None = None):
        self.store = store
        self.server_url = server_url
        self.token = token
        self._rows: dict[str, dict[str, Any]] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._leftovers()

    def _leftovers(self) -> None:
        """Runs a previous workbench left queued or running were lost with it; a run's
        pytest still running is stopped (its results had nowhere to go), and the run says
        so."""
        left = self.store.sql("SELECT id, pid, pid_started FROM test_runs "
                              "WHERE state IN ('queued', 'running')")
        for row in left.itertuples(index=False):
            pid = None if pd.isna(row.pid) else int(row.pid)
            started = None if pd.isna(row.pid_started) else float(row.pid_started)
            # (no start time stored: an older file's run; its pid may be another process)
            done = launcher.stop_group(pid, started, GRACE_S) if started else "gone"
            message = ("the workbench stopped" if done == "gone" else
                       f"the workbench restarted: its process group (pid {pid}) was "
                       f"{'stopped' if done == 'stopped' else 'killed'}")
            self.store.write(lambda cur, i=row.id, m=message: cur.execute(
                "UPDATE test_runs SET state = 'lost', message = ?, ended_at = ? WHERE id = ?",
                [m, utcnow(), i]), topic="control")

    # -- asking -------------------------------------------------------------------------
    def list(self, project: str | None = None, limit: int = 100) -> pd.DataFrame:
        self.store.settle()  # (rows are written through the queue: read what was said)
        return self.store.query("test_runs", project=project, limit=limit)

    def get(self, run: str) -> dict[str, Any]:
        self.store.settle()
        row = self.store.query("test_runs", id=run, limit=1)
        if row.empty:
            raise KeyError(f"no test run {run!r}")
        out = row.iloc[0].to_dict()
        for key in ("tests", "command"):
            out[key] = json.loads(out[key]) if isinstance(out[key], str) else out[key]
        return {k: (None if not isinstance(v, list | dict) and pd.isna(v) else v)
                for k, v in out.items()}

    # -- acting -------------------------------------------------------------------------
    def submit(self, principal: access.Principal, project: str, folder: str | Path,
               tests: list[str] | None = None, command: list[str] | None = None,
               junit: str | None = None) -> dict[str, Any]:
        """Queue a run: pytest with ``tests`` (node ids; none: the whole suite), or
        ``command`` (argv) whose JUnit file ``junit`` (relative to the folder) is ingested
        when it ends. Starts at once when the project's queue has room."""
        access.authorize(self.store, principal, "test-run", project)
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder")
        if command is not None:
            if not isinstance(command, list) or not command or \
                    not all(isinstance(c, str) for c in command):
                raise ValueError("command: a list of strings (argv)")
            if not junit or not isinstance(junit, str):
                raise ValueError("junit: the JUnit XML file the command writes")
        tests = [str(t) for t in (tests or [])]
        if any(t.startswith("-") for t in tests):
            raise ValueError("tests: node ids, not options")
        row = {"id": "tr-" + secrets.token_hex(6), "project": project, "folder": str(folder),
               "state": "queued", "tests": tests, "command": command, "junit": junit,
               "requested_by": principal.who, "created_at": utcnow(), "started_at": None,
               "ended_at": None, "exit_code": None, "pid": None, "run_id": None,
               "message": None, "pid_started": None}
        with self._lock:
            self._rows[row["id"]] = row
            self._save(row)
        access.record(self.store, principal, "test-run", project,
                      {"id": row["id"], "tests": len(tests), "command": command})
        self._next(project)
        return dict(row)

    def cancel(self, principal: access.Principal, run: str) -> dict[str, Any]:
        """Stop a run's process group (SIGTERM, then SIGKILL), or take it off the queue."""
        with self._lock:
            row = self._rows.get(run)
        if row is None:
            raise KeyError(f"no test run {run!r} of this workbench is queued or running")
        access.authorize(self.store, principal, "test-run", row["project"])
        with self._lock:
            if row["state"] in DONE:
                return dict(row)
            proc = self._procs.get(run)
            row["message"] = f"cancelled by {principal.who}"
            if proc is None:
                self._end(row, "cancelled", None)
        if proc is not None:
            row["cancelled"] = True
            _stop_group(proc)
        access.record(self.store, principal, "test-run-cancel", row["project"], {"id": run})
        return dict(row)

    # -- the queue ----------------------------------------------------------------------
    def _next(self, project: str) -> None:
        room = max(1, int(config.get("OBSERVATORY_TEST_RUNS_PER_PROJECT")))
        with self._lock:
            rows = [r for r in self._rows.values() if r["project"] == project]
            running = sum(r["state"] == "running" for r in rows)
            waiting = sorted((r for r in rows if r["state"] == "queued"),
                             key=lambda r: r["created_at"])
            for row in waiting[: max(0, room - running)]:
                self._start(row)

    def _start(self, row: dict[str, Any]) -> None:
        # The allow-listed environment (launcher.py) and this server's own ingest-only token
        # for the plugin: never the server's tokens or secrets.
        own = {"PYTHONUNBUFFERED": "1"}
        if self.token:
            own["OBSERVATORY_TOKEN"] = self.token
        if row["command"]:
            argv = list(row["command"])
        else:
            argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                    "--observatory-project", row["project"],
                    "--observatory-build", row["id"], *_commit_args(row["folder"])]
            argv += (["--observatory-url", self.server_url] if self.server_url else
                     ["--observatory-db", str(self.store.path)])
            argv += ["--", *row["tests"]] if row["tests"] else []
        log = Path(row["folder"]) / LOG
        try:
            out = log.open("w") if os.access(row["folder"], os.W_OK) else subprocess.DEVNULL
            proc = launcher.spawn(argv, cwd=row["folder"], env=launcher.child_env(own=own),
                                  stdout=out, stderr=subprocess.STDOUT)
        except (OSError, ValueError) as err:
            self._end(row, "error", None, f"could not start: {err}")
            return
        row.update(state="running", started_at=utcnow(), pid=proc.pid,
                   pid_started=launcher.identity(proc.pid))
        self._procs[row["id"]] = proc
        self._save(row)
        threading.Thread(target=self._wait, args=(row, proc), daemon=True,
                         name=f"test-run-{row['id']}").start()

    def _wait(self, row: dict[str, Any], proc: subprocess.Popen) -> None:
        code = proc.wait()
        message = None
        if row["command"] and not row.get("cancelled"):
            message = self._ingest_junit(row)
        with self._lock:
            self._procs.pop(row["id"], None)
            if row.get("cancelled"):
                state = "cancelled"
                self._close_live_run(row)
            elif message and message.startswith("JUnit file"):
                state = "error"
            elif code in (0, 1):  # pytest: all passed / some failed; other runners alike
                state = "passed" if code == 0 else "failed"
            else:
                state = "error"
                message = message or (f"exited with {code} (its output: "
                                      f"{Path(row['folder']) / LOG})")
            self._end(row, state, code, message or row["message"])
        self._next(row["project"])

    def _ingest_junit(self, row: dict[str, Any]) -> str | None:
        from ..intake import LocalIntake

        path = Path(row["folder"]) / row["junit"]
        if not path.is_file():
            return f"JUnit file {row['junit']} was not written"
        from ..ingest import IngestError

        flags = {"project": row["project"], "build": row["id"]}
        commit = _commit_args(row["folder"])
        if commit:
            flags["commit"] = commit[1]
        try:
            LocalIntake(self.store, ci_env={}).report(path.read_bytes(), str(path), flags)
        except IngestError as err:
            return f"JUnit file {row['junit']}: {err}"
        return None

    def _close_live_run(self, row: dict[str, Any]) -> None:
        """The live run a stopped pytest left running: mark it cancelled."""
        from ..store.writes import finish_live_run

        stored = self.store.query("test_runs", id=row["id"], limit=1)
        for run_id in stored.loc[stored["run_status"] == "running", "run_id"]:
            try:
                finish_live_run(self.store, run_id, None, status="cancelled")
            except Exception:  # noqa: BLE001  (it may have ended by itself meanwhile)
                pass

    def _end(self, row: dict[str, Any], state: str, code: int | None,
             message: str | None = None) -> None:
        row.update(state=state, ended_at=utcnow(), exit_code=code, message=message)
        self._save(row)

    def _save(self, row: dict[str, Any]) -> None:
        values = [json.dumps(row[c]) if c in ("tests", "command") else row[c] for c in COLUMNS]
        control_writes.submit(self.store, f"INSERT OR REPLACE INTO test_runs VALUES "
                              f"({', '.join('?' * len(COLUMNS))})", values)


def _commit_args(folder: str) -> list[str]:
    from ..projects.git import GitError, git

    try:
        return ["--observatory-commit", git(folder, "rev-parse", "HEAD").strip()]
    except GitError:
        return []


def _stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return

    def kill_later() -> None:
        try:
            proc.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    threading.Thread(target=kill_later, daemon=True).start()
