"""pytest plugin: record a run into the workbench as its tests finish.

Off unless asked for::

    pytest --observatory                      # the workbench's database, or the server holding it
    pytest --observatory-db path/to.duckdb
    pytest --observatory-url http://localhost:5006   # a running workbench (live dashboards)

Retries by pytest-rerunfailures are kept as attempts of one test. The run's branch and
commit come from the flags, else the CI environment, else the git repository pytest runs
in.

``--observatory-db PATH`` works as written as well as ``--observatory-db=PATH``: pytest
finds its rootdir (and so its configuration: ``pythonpath``, ``testpaths``, ``addopts``)
before a plugin's options are known, taking an option's value that names an existing path
for a path to test (pytest-dev/pytest#8846); :func:`pytest_load_initial_conftests` finds
them again without our values, as pytest would have.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import warnings
from typing import Any

import pytest

# Imported by every pytest session on a machine with the package installed: nothing
# heavy (DuckDB, pyarrow) is imported and nothing happens until --observatory* is given.

FLUSH_TESTS = 50
FLUSH_SECONDS = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("observatory", "record results in Happy Observatory")
    group.addoption(
        "--observatory",
        action="store_true",
        help="record this run in the workbench: the server holding its database when one "
        "runs, else the file ($OBSERVATORY_DB, else observatory.duckdb in $OBSERVATORY_HOME)",
    )
    group.addoption("--observatory-db", metavar="PATH", help="record into this DuckDB file")
    group.addoption(
        "--observatory-url",
        metavar="URL",
        help="send to a running workbench, e.g. http://localhost:5006 "
        "(token from $OBSERVATORY_TOKEN)",
    )
    for key in META:
        group.addoption(
            f"--observatory-{key}",
            metavar=key.upper(),
            help=f"run {key} (default: from CI environment variables"
            + (", else the git repository)" if key in ("branch", "commit") else ")"),
        )


META = ("project", "branch", "commit", "variant", "build")
#: The options that take a value (which pytest may take for a path before it knows them).
VALUED = ("--observatory-db", "--observatory-url", *(f"--observatory-{k}" for k in META))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """Undo pytest's mistaking one of our option values for a path to test.

    Before any plugin is loaded pytest reads the command line without knowing our options,
    so ``--observatory-db path/to/db.duckdb`` gives it an argument ``path/to/db.duckdb``;
    when that file exists, pytest looks for the rootdir and configuration from the
    database's folder, and a ``src/`` project's ``pythonpath`` is lost. Here (our options
    known, conftests not loaded yet) the rootdir and configuration are found again from the
    true arguments; when they differ, they replace what pytest found, with the
    configuration's ``addopts``, ``pythonpath`` and ``-p`` plugins — what pytest itself
    would have done with ``--observatory-db=PATH``."""
    if not any(opt in VALUED and os.path.exists(value.split("::")[0])
               for opt, value in zip(args, args[1:], strict=False)):
        return
    try:
        _find_setup_again(early_config, args)
    except (AttributeError, TypeError, ImportError) as err:  # (a pytest that differs)
        raise pytest.UsageError(
            "--observatory-*: pytest took an option's value for a path to test and this "
            f"pytest cannot be corrected ({err}); write the option as --observatory-db=PATH"
        ) from None


def _find_setup_again(config: pytest.Config, args: list[str]) -> None:
    import inspect

    from _pytest.config import findpaths

    ns = config.known_args_namespace  # (parsed again once our options were known)
    given = {"inifile": ns.inifilename, "override_ini": getattr(ns, "override_ini", None),
             "args": ns.file_or_dir, "rootdir_cmd_arg": ns.rootdir or None,
             "invocation_dir": config.invocation_params.dir}
    wanted = inspect.signature(findpaths.determine_setup).parameters
    found = findpaths.determine_setup(**{k: v for k, v in given.items() if k in wanted})
    rootpath, inipath, inicfg = found[:3]
    if rootpath == config.rootpath and inipath == config.inipath:
        return
    wrong = list(config.getini("addopts"))
    if wrong and args[:len(wrong)] == wrong:
        del args[:len(wrong)]
    config._unconfigure_python_path()
    config._rootpath, config._inipath, config._inicfg = rootpath, inipath, inicfg
    if len(found) > 3 and hasattr(config, "_ignored_config_files"):
        config._ignored_config_files = found[3]
    config._inicache.clear()
    config._parser.extra_info.update(rootdir=str(rootpath), inifile=str(inipath))
    addopts = list(config.getini("addopts"))
    args[:0] = addopts
    config.pluginmanager.consider_preparse(addopts, exclude_only=False)
    config.known_args_namespace = config._parser.parse_known_args(
        args, namespace=copy.copy(config.option))
    if config.known_args_namespace.confcutdir is None:
        config.known_args_namespace.confcutdir = str(inipath.parent if inipath else rootpath)
    config._configure_python_path()


def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    if not (opt.observatory or opt.observatory_db or opt.observatory_url):
        return
    if hasattr(config, "workerinput"):  # xdist workers: the controller records
        return
    config.pluginmanager.register(Recorder(config), "observatory-recorder")


class Recorder:
    """Collects each test's phases into attempts and ships finished tests in batches."""

    def __init__(self, config: pytest.Config):
        from .ingest.ci_env import run_metadata
        from .intake import open_intake
        from .store import StoreLockedError

        opt = config.option
        try:
            # One rule for every client: a server holding the file wins (it advertises
            # itself beside it); else the file.
            self.intake = open_intake(opt.observatory_db, opt.observatory_url)
        except StoreLockedError as err:
            raise pytest.UsageError(f"--observatory: {err}") from None
        flags = {k: getattr(opt, f"observatory_{k}") for k in META}
        self.meta: dict[str, Any] = run_metadata({"project": config.rootpath.name}, flags,
                                                 folder=config.rootpath)
        self.meta["source"] = f"pytest {config.rootpath}"
        self.run_id: str | None = None
        self.attempts: dict[str, list[dict]] = {}
        from .ingest.reportlog import PhaseAssembler

        self.phases = PhaseAssembler()
        self.batch: list[dict] = []
        self.running: dict[str, None] = {}  # node ids started and not finished, in order
        self.running_changed = False
        self.last_flush = time.monotonic()
        self.started = time.monotonic()
        self.broken: str | None = None
        # The flusher thread and the test thread share the batch and the running list.
        self._lock = threading.RLock()
        self._stop = threading.Event()

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
        self.run_id = self._guard(self.intake.live_start, self.meta)
        if self.run_id:
            threading.Thread(target=self._tick, name="observatory-flush", daemon=True).start()

    def _tick(self) -> None:
        """A test that runs long sends nothing by itself: every second, whatever has
        changed (tests started, tests finished) is sent."""
        while not self._stop.wait(FLUSH_SECONDS / 2):
            if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
                try:
                    self._flush()
                except Exception:  # noqa: BLE001  (never disturb the test run)
                    return

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        # A test that starts is shown as running until it finishes.
        with self._lock:
            self.running[nodeid] = None
            self.running_changed = True

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
        from .analysis.identity import from_nodeid

        classname, file, name = from_nodeid(nodeid)
        with self._lock:
            if self.running.pop(nodeid, False) is None:
                self.running_changed = True
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
        with self._lock:
            if (self.batch or self.running_changed) and self.run_id:
                from .analysis.identity import from_nodeid, test_id

                running = [test_id(c, f, n) for c, f, n in map(from_nodeid, self.running)]
                self._guard(self.intake.live_append, self.run_id, self.batch, running)
                self.running_changed = False
            self.batch = []
            self.last_flush = time.monotonic()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._stop.set()
        for nodeid in list(self.attempts):
            self._finished(nodeid)
        self._flush()
        if self.run_id:
            self._guard(self.intake.live_finish, self.run_id, time.monotonic() - self.started)
        self._guard(self.intake.close)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.intake.created:
            terminalreporter.write_line(
                f"observatory: created a new database {self.intake.where}", yellow=True)
        if self.run_id and not self.broken:
            terminalreporter.write_line(
                f"observatory: recorded run {self.run_id} in {self.intake.where}")
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
