"""pytest plugin: record a run into the workbench as its tests finish.

Off unless asked for::

    pytest --observatory                      # into $OBSERVATORY_DB or data/observatory.duckdb
    pytest --observatory-db path/to.duckdb
    pytest --observatory-url http://localhost:5006   # a running workbench (live dashboards)

Retries by pytest-rerunfailures are kept as attempts of one test.
"""

from __future__ import annotations

import time
import uuid
import warnings
from typing import Any

import pytest

from .analysis.identity import from_nodeid
from .ingest.reportlog import PhaseAssembler

FLUSH_TESTS = 50
FLUSH_SECONDS = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("observatory", "record results in Happy Observatory")
    group.addoption(
        "--observatory",
        action="store_true",
        help="record this run in the workbench database ($OBSERVATORY_DB or "
        "data/observatory.duckdb)",
    )
    group.addoption("--observatory-db", metavar="PATH", help="record into this DuckDB file")
    group.addoption(
        "--observatory-url",
        metavar="URL",
        help="send to a running workbench, e.g. http://localhost:5006 "
        "(token from $OBSERVATORY_TOKEN)",
    )
    for key in ("project", "branch", "commit", "variant", "build"):
        group.addoption(
            f"--observatory-{key}",
            metavar=key.upper(),
            help=f"run {key} (default: from CI environment variables)",
        )


def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    if not (opt.observatory or opt.observatory_db or opt.observatory_url):
        return
    if hasattr(config, "workerinput"):  # xdist workers: the controller records
        return
    config.pluginmanager.register(Recorder(config), "observatory-recorder")


class _LocalSink:
    def __init__(self, path: str | None):
        from .config import db_path
        from .store import Store, StoreLockedError

        try:
            self.store = Store(db_path(path))
        except StoreLockedError as err:
            raise pytest.UsageError(
                f"--observatory: {err} Use --observatory-url instead."
            ) from None

    def start(self, run_id: str, meta: dict) -> str:
        from .store.writes import start_live_run

        return start_live_run(self.store, run_id, meta)

    def send(self, run_id: str, tests: list[dict]) -> None:
        from .ingest.live import parse_batch
        from .store.writes import append_results

        append_results(self.store, run_id, parse_batch({"tests": tests}, f"live run {run_id}"))

    def finish(self, run_id: str, duration_s: float) -> None:
        from .store.writes import finish_live_run

        finish_live_run(self.store, run_id, duration_s)
        self.store.close()


class _HttpSink:
    def __init__(self, url: str):
        from .client import http_client

        self.http = http_client(url, timeout=30)

    def _post(self, path: str, body: dict) -> dict:
        resp = self.http.post(path, json=body)
        if resp.status_code != 200:
            raise RuntimeError(
                f"{self.http.base_url}{path}: HTTP {resp.status_code}: {resp.text[:200]}"
            )
        return resp.json()

    def start(self, run_id: str, meta: dict) -> str:
        return self._post("/api/tests/live", meta)["run_id"]

    def send(self, run_id: str, tests: list[dict]) -> None:
        self._post(f"/api/tests/live/{run_id}/results", {"tests": tests})

    def finish(self, run_id: str, duration_s: float) -> None:
        self._post(f"/api/tests/live/{run_id}/finish", {"duration_s": duration_s})
        self.http.close()


class Recorder:
    """Collects each test's phases into attempts and ships finished tests in batches."""

    def __init__(self, config: pytest.Config):
        from .ingest.ci_env import run_metadata

        opt = config.option
        self.sink = (
            _HttpSink(opt.observatory_url)
            if opt.observatory_url
            else _LocalSink(opt.observatory_db)
        )
        flags = {
            k: getattr(opt, f"observatory_{k}")
            for k in ("project", "branch", "commit", "variant", "build")
        }
        flags.setdefault("project", None)
        self.meta: dict[str, Any] = run_metadata({"project": config.rootpath.name}, flags)
        self.meta["source"] = f"pytest {config.rootpath}"
        self.run_id: str | None = None
        self.attempts: dict[str, list[dict]] = {}
        self.phases = PhaseAssembler()
        self.batch: list[dict] = []
        self.last_flush = time.monotonic()
        self.started = time.monotonic()
        self.broken: str | None = None

    def _guard(self, fn, *args) -> Any:
        # A recording problem must never fail the user's test run.
        if self.broken:
            return None
        try:
            return fn(*args)
        except Exception as err:  # noqa: BLE001
            self.broken = str(err)
            warnings.warn(f"observatory: recording stopped: {err}", stacklevel=1)
            return None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.run_id = self._guard(self.sink.start, "live-" + uuid.uuid4().hex[:12], self.meta)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        done = self.phases.feed(report.nodeid, report.when, report.outcome, report.duration,
                                lambda: _describe(report))
        if done is None:
            return
        attempt, final = done
        self.attempts.setdefault(report.nodeid, []).append({
            "outcome": attempt.outcome, "duration_s": attempt.duration_s,
            "message": attempt.message, "details": attempt.details})
        if final:
            self._finished(report.nodeid)

    def _finished(self, nodeid: str) -> None:
        classname, file, name = from_nodeid(nodeid)
        self.batch.append(
            {
                "classname": classname,
                "file": file,
                "name": name,
                "suite": file,
                "attempts": self.attempts.pop(nodeid),
            }
        )
        now = time.monotonic()
        if len(self.batch) >= FLUSH_TESTS or now - self.last_flush >= FLUSH_SECONDS:
            self._flush()

    def _flush(self) -> None:
        if self.batch and self.run_id:
            self._guard(self.sink.send, self.run_id, self.batch)
        self.batch = []
        self.last_flush = time.monotonic()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for nodeid in list(self.attempts):
            self._finished(nodeid)
        self._flush()
        if self.run_id:
            self._guard(self.sink.finish, self.run_id, time.monotonic() - self.started)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.run_id and not self.broken:
            terminalreporter.write_line(f"observatory: recorded run {self.run_id}")
        elif self.broken:
            terminalreporter.write_line(f"observatory: recording failed: {self.broken}", red=True)


def _describe(report: pytest.TestReport) -> tuple[str | None, str | None]:
    """``(message, details)`` of the phase that decided an attempt."""
    if isinstance(report.longrepr, tuple):  # skip: (path, lineno, reason)
        return str(report.longrepr[-1]).removeprefix("Skipped: "), None
    if report.longrepr is None:
        return None, None
    text = report.longreprtext
    return _crash_message(report) or (text.strip().splitlines() or [""])[-1], text


def _crash_message(report: pytest.TestReport) -> str | None:
    crash = getattr(report.longrepr, "reprcrash", None)
    return getattr(crash, "message", None)
