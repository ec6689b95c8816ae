"""The reporter of test runs the workbench starts (control/testruns.py), loaded into the
project's own Python: pytest with ``-p observatory_stream --observatory-stream=FILE``.

It needs nothing but pytest and the standard library — not this package, not its
dependencies — because it runs under whatever interpreter the project's tests need (its
``.venv``), where the workbench is not installed. The workbench copies this file into a
folder of its data folder and puts only that folder on ``PYTHONPATH``; the workbench reads
FILE as it grows and stores each result as the test ends. One JSON object a line:

- ``{"event": "start", "pytest", "python", "rootdir"}`` when the session starts;
- ``{"event": "test", "nodeid"}`` when a test starts;
- ``{"event": "phase", "nodeid", "when", "outcome", "duration", "message", "details"}``
  for each setup, call and teardown (``message`` and ``details`` for the phase that
  failed, errored or skipped);
- ``{"event": "collect-error", "nodeid", "message"}`` for a module that did not import;
- ``{"event": "finish", "exitstatus"}`` when the session ends.

Keep it to Python 3.8 syntax and the standard library.
"""

from __future__ import annotations

import json
import sys
import threading

import pytest

_lock = threading.Lock()
_out = None


def pytest_addoption(parser):
    parser.addoption("--observatory-stream", metavar="FILE",
                     help="write each test's phases as JSON lines to FILE (the workbench's "
                     "test runs)")


def pytest_configure(config):
    global _out
    path = config.getoption("observatory_stream")
    if path and not hasattr(config, "workerinput"):  # (xdist workers: the controller)
        _out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115


def _write(record):
    if _out is None:
        return
    line = json.dumps(record, default=str)
    with _lock:
        _out.write(line + "\n")
        _out.flush()


def pytest_sessionstart(session):
    _write({"event": "start", "pytest": pytest.__version__, "python": sys.executable,
            "rootdir": str(getattr(session.config, "rootpath", None)
                           or session.config.rootdir)})


def pytest_runtest_logstart(nodeid, location):
    _write({"event": "test", "nodeid": nodeid})


def pytest_runtest_logreport(report):
    message = details = None
    if report.outcome != "passed" or report.longrepr is not None:
        message, details = _describe(report)
    _write({"event": "phase", "nodeid": report.nodeid, "when": report.when,
            "outcome": report.outcome, "duration": report.duration,
            "message": message, "details": details})


def pytest_collectreport(report):
    if report.failed:
        text = report.longreprtext or ""
        lines = [x for x in text.strip().splitlines() if x.strip()]
        last = next((x for x in reversed(lines) if x.startswith("E ")), lines[-1] if lines
                    else "collection failed")
        _write({"event": "collect-error", "nodeid": report.nodeid or ".",
                "message": (last[1:] if last.startswith("E ") else last).strip()[:500]})


def pytest_sessionfinish(session, exitstatus):
    global _out
    _write({"event": "finish", "exitstatus": int(exitstatus)})
    if _out is not None:
        _out.close()
        _out = None


def _describe(report):
    """``(message, details)`` of a phase, as the workbench's own plugin says them."""
    if isinstance(report.longrepr, tuple):  # a skip: (path, lineno, reason)
        reason = str(report.longrepr[-1])
        return (reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason,
                None)
    if report.longrepr is None:
        return None, None
    text = report.longreprtext
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    return message or (text.strip().splitlines() or [""])[-1], text
