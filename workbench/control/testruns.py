"""Test runs started from the workbench (``observatory run-tests``, ``POST /api/test-runs``,
the projects page): pytest in the project's folder with the chosen node ids — or, for
another runner, a configured command whose JUnit file is ingested when it ends.

pytest runs under the project's own Python (:func:`interpreter`: the one set for the
project, else its ``.venv``/``venv``, else the active virtualenv, else the workbench's own,
and the run says which), where the workbench is not installed: a reporter of the standard
library alone (workbench/pytest_stream.py) writes each test's phases to a file of the
workbench's data folder, which the run follows into the store as each test ends
(testrun_stream.py). The run's output goes beside it (``<database folder>/test-runs/<id>.log``),
never into the project. A run whose pytest never started (not installed in that
interpreter, a broken configuration) is an ``error`` that says why.

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
from .testrun_stream import Follower

STATES = ("queued", "running", "passed", "failed", "cancelled", "error", "lost")
DONE = frozenset(STATES[2:])
COLUMNS = ("id", "project", "folder", "state", "tests", "command", "junit", "requested_by",
           "created_at", "started_at", "ended_at", "exit_code", "pid", "run_id", "message",
           "pid_started")
#: Seconds a cancelled run's process group has to stop after SIGTERM before SIGKILL.
GRACE_S = 5.0
#: Seconds between looks at a running pytest's results file.
POLL_S = 0.25
#: The newest runs whose log and results files are kept in the data folder.
KEEP_RUNS = 200
#: The module name the reporter is loaded as in the project's Python (``-p``).
REPORTER = "observatory_stream"
#: pytest's exit statuses that are not "some tests failed".
EXIT = {2: "pytest was interrupted", 3: "pytest failed internally",
        4: "pytest did not understand its command line", 5: "no tests were collected"}


def run_files(store) -> Path:
    """The folder of test runs' logs and results files: beside the database."""
    return Path(store.path).resolve().parent / "test-runs"


def interpreter(store, project: str, folder: str | Path) -> tuple[str, str]:
    """The Python a project's tests run under, and why that one: the interpreter set for
    the project (``observatory projects set NAME --python PATH``), else its folder's
    ``.venv`` or ``venv``, else the active virtualenv (``$VIRTUAL_ENV``), else the
    workbench's own."""
    rows = store.query("scanned_projects")
    rows = rows[(rows["path"] == str(folder)) & rows["python"].notna()]
    if not rows.empty:
        return str(rows["python"].iloc[-1]), "set for the project"
    for venv in (".venv", "venv"):
        for exe in ("bin/python", "bin/python3", "Scripts/python.exe"):
            if (Path(folder) / venv / exe).is_file():
                return str(Path(folder) / venv / exe), f"the project's {venv}"
    active = launcher.child_env().get("VIRTUAL_ENV")
    if active and (Path(active) / "bin" / "python").is_file():
        return str(Path(active) / "bin" / "python"), f"the active virtualenv {active}"
    return sys.executable, (f"the workbench's own: none set for {project} (observatory "
                            "projects set), no .venv or venv in its folder, no active "
                            "virtualenv")


def _activated(python: str, env: dict[str, str]) -> dict[str, str]:
    """What activating ``python``'s virtual environment sets (VIRTUAL_ENV, PATH), so that
    the tests' own ``python`` and tools are the environment's."""
    venv = Path(python).parent.parent
    if not (venv / "pyvenv.cfg").is_file():
        return {}
    return {"VIRTUAL_ENV": str(venv),
            "PATH": os.pathsep.join(filter(None, [str(Path(python).parent),
                                                  env.get("PATH", "")]))}


def _reporter(folder: Path) -> Path:
    """A folder holding only the reporter (the child's PYTHONPATH: nothing else of the
    workbench, whose modules — ``http``, ``config`` — would shadow others)."""
    plugin = folder / "plugin"
    plugin.mkdir(parents=True, exist_ok=True)
    source = (Path(__file__).resolve().parent.parent / "pytest_stream.py").read_bytes()
    target = plugin / f"{REPORTER}.py"
    if not target.is_file() or target.read_bytes() != source:
        target.write_bytes(source)
    return plugin


def _prune(folder: Path) -> None:
    files = sorted((f for f in folder.glob("tr-*.*") if f.is_file()),
                   key=lambda f: f.stat().st_mtime, reverse=True)
    for old in files[2 * KEEP_RUNS:]:
        old.unlink(missing_ok=True)


class TestRuns:
    """The runs one serve process started, and the queue per project."""

    __test__ = False

    def __init__(self, store):
        self.store = store
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
            self._close_live_run({"id": row.id})  # (its stored run says so too)

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
        # The allow-listed environment (launcher.py): never the server's tokens or secrets,
        # and no token of its own either — the child reports through its results file.
        files = run_files(self.store)
        log, stream = files / f"{row['id']}.log", files / f"{row['id']}.jsonl"
        follower = None
        try:
            files.mkdir(parents=True, exist_ok=True)
            _prune(files)
            env = launcher.child_env(own={"PYTHONUNBUFFERED": "1"})
            if row["command"]:
                argv, where = list(row["command"]), f"log: {log}"
            else:
                python, why = interpreter(self.store, row["project"], row["folder"])
                env.update(_activated(python, env))
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [
                    str(_reporter(files)), env.get("PYTHONPATH")]))
                argv = [python, "-m", "pytest", "-p", "no:cacheprovider", "-p", REPORTER,
                        f"--observatory-stream={stream}"]
                argv += ["--", *row["tests"]] if row["tests"] else []
                where = f"python: {python} ({why}); log: {log}"
                row["python"] = python
                follower = Follower(self.store, stream, {
                    "project": row["project"], "build": row["id"],
                    **git_checkout(row["folder"])})
            row["where"] = where
            with log.open("wb") as out:
                proc = launcher.spawn(argv, cwd=row["folder"], env=env, stdout=out,
                                      stderr=subprocess.STDOUT)
        except (OSError, ValueError) as err:
            self._end(row, "error", None, f"could not start: {err}")
            return
        row.update(state="running", started_at=utcnow(), pid=proc.pid,
                   pid_started=launcher.identity(proc.pid), message=where)
        self._procs[row["id"]] = proc
        self._save(row)
        threading.Thread(target=self._wait, args=(row, proc, follower, log), daemon=True,
                         name=f"test-run-{row['id']}").start()

    def _wait(self, row: dict[str, Any], proc: subprocess.Popen, follower: Follower | None,
              log: Path) -> None:
        problem = None
        while True:
            try:
                code = proc.wait(POLL_S)
                break
            except subprocess.TimeoutExpired:
                problem = _follow(follower, problem)
        problem = _follow(follower, problem)
        cancelled = bool(row.get("cancelled"))
        if follower is None:
            state, cause = self._ended_command(row, code, cancelled)
        else:
            state, cause = _ended_pytest(row, code, follower, log, cancelled)
            try:
                follower.close("cancelled" if cancelled else "complete")
            except Exception as err:  # noqa: BLE001  (the run must still end, saying why)
                problem = problem or f"results not stored: {err}"
            if problem and state in ("passed", "failed"):
                state = "error"
            cause = "; ".join(filter(None, [cause, problem]))
        with self._lock:
            self._procs.pop(row["id"], None)
            said = row["message"] if cancelled else None  # (who cancelled it)
            self._end(row, state, code, " — ".join(filter(None, [said or cause,
                                                                 row.get("where")])))
        self._next(row["project"])

    def _ended_command(self, row: dict[str, Any], code: int,
                       cancelled: bool) -> tuple[str, str | None]:
        """Another runner's end: its JUnit file ingested, its exit status read."""
        if cancelled:
            self._close_live_run(row)
            return "cancelled", None
        message = self._ingest_junit(row)
        if message:
            return "error", message
        if code in (0, 1):  # (all passed / some failed, as runners say it)
            return ("passed" if code == 0 else "failed"), None
        return "error", f"exited with {code}"

    def _ingest_junit(self, row: dict[str, Any]) -> str | None:
        from ..intake import LocalIntake

        path = Path(row["folder"]) / row["junit"]
        if not path.is_file():
            return f"JUnit file {row['junit']} was not written"
        from ..ingest import IngestError

        flags = {"project": row["project"], "build": row["id"],
                 **git_checkout(row["folder"])}
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


def git_checkout(folder: str) -> dict[str, str]:
    """The commit and branch checked out in the project's folder (a run's metadata)."""
    from ..git import checked_out

    return checked_out(folder)


def _follow(follower: Follower | None, problem: str | None) -> str | None:
    """One look at a run's results file; a store that cannot take them is noted once (the
    run goes on: its tests are the user's, the problem is the workbench's)."""
    if follower is None:
        return problem
    try:
        follower.poll()
    except Exception as err:  # noqa: BLE001
        return problem or f"results not stored: {err}"
    return problem


def _ended_pytest(row: dict[str, Any], code: int, follower: Follower, log: Path,
                  cancelled: bool) -> tuple[str, str | None]:
    """A pytest run's state and, unless it simply passed or failed, why."""
    if cancelled:
        return "cancelled", None
    if follower.started is None:  # its session never began: pytest itself could not run
        return "error", _cause(log, row.get("python") or "python", row["project"])
    if follower.collect_errors:
        nodeid, message = follower.collect_errors[0]
        more = len(follower.collect_errors) - 1
        return "error", (f"collection failed: {nodeid}: {message}"
                         + (f" (and {more} more)" if more else ""))
    if code in (0, 1):
        return ("passed" if code == 0 else "failed"), None
    return "error", f"{EXIT.get(code, f'pytest exited with {code}')}: {_last_line(log)}"


def _cause(log: Path, python: str, project: str) -> str:
    """Why pytest did not start, from its output."""
    text = _tail(log)
    if "No module named pytest" in text:
        return (f"pytest is not installed in {python}: install it there ({python} -m pip "
                f"install pytest) or run the tests with another interpreter (observatory "
                f"projects set {project} --python PATH)")
    return f"pytest did not start under {python}: {_last_line(log) or 'no output'}"


def _tail(log: Path, size: int = 8192) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, log.stat().st_size - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _last_line(log: Path) -> str:
    lines = [x.strip() for x in _tail(log).splitlines() if x.strip() and not set(x) <= set("=- ")]
    return lines[-1][:300] if lines else ""


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
