"""The serve process's one store and intake, opened on first use and shared by every session."""

from __future__ import annotations

import logging
import sys
import threading

from .. import config
from ..demo import is_empty, load_demo
from ..discovery import advertise, client_url
from ..intake import LocalIntake
from ..store import Store
from ..store.opening import open_store
from . import bearer

log = logging.getLogger("workbench.server")
_lock = threading.Lock()
_store: Store | None = None
_intake: LocalIntake | None = None
_supervisor = None
_test_runs = None
_workflows = None


def served_url(argv: list[str] | None = None) -> str:
    """The URL this server answers on: ``OBSERVATORY_SERVER_URL`` (set by ``observatory
    serve``), else read from ``panel serve``'s own ``--address``/``--port`` arguments."""
    explicit = config.get("OBSERVATORY_SERVER_URL")
    if explicit:
        return explicit.rstrip("/")
    argv = sys.argv if argv is None else argv
    opts = {"--port": str(config.DEFAULT_PORT), "--address": "127.0.0.1"}
    for i, arg in enumerate(argv):
        for key in opts:
            if arg == key and i + 1 < len(argv):
                opts[key] = argv[i + 1]
            elif arg.startswith(key + "="):
                opts[key] = arg.split("=", 1)[1]
    return client_url(opts["--address"], opts["--port"], tls=config.tls() is not None)


def get_store() -> Store:
    """The process-wide store: ``OBSERVATORY_DB`` or the default file.

    On first open of an empty file the demo dataset is loaded unless
    ``OBSERVATORY_NO_DEMO`` is set, and the server advertises its URL beside the file so
    that every client on this machine finds it. Sessions share the store (it is stateless
    to them); each builds its own models on top.
    """
    global _store
    with _lock:
        if _store is None:
            path = config.db_path()
            store = open_store(max_pending=config.get("OBSERVATORY_WRITE_QUEUE"))
            if config.demo_enabled() and is_empty(store):
                log.warning(
                    "filling %s with the demo dataset (OBSERVATORY_NO_DEMO=1 skips this)", path
                )
                n = load_demo(store)
                log.warning("demo dataset: %d runs stored", n)
            advertise(path, served_url())
            bearer.load_revoked(store)  # (signed tokens revoked before this start)
            _store = store
        return _store


def get_supervisor():
    """The process-wide agent supervisor: agents it starts send their telemetry here with a
    token of this process's own (ingest: it writes, reads nothing)."""
    global _supervisor
    store = get_store()
    with _lock:
        if _supervisor is None:
            from ..control.supervisor import Supervisor
            from .bearer import own_token

            _supervisor = Supervisor(store, server_url=served_url(),
                                     telemetry_token=own_token("ingest"))
        return _supervisor


def get_test_runs():
    """The process-wide test runs (results come back through a file each run's reporter
    writes, not through the API: the project's Python has no workbench to call it with)."""
    global _test_runs
    store = get_store()
    with _lock:
        if _test_runs is None:
            from ..control.testruns import TestRuns
            _test_runs = TestRuns(store)
        return _test_runs


def get_intake() -> LocalIntake:
    """The server's write side: the store's queue, refusing (503) rather than waiting."""
    global _intake
    store = get_store()
    with _lock:
        if _intake is None or _intake.store is not store:
            _intake = LocalIntake(store, ci_env={}, block=False)
            _intake.use_inbox()  # overlapping OTLP requests are answered once stored
        return _intake


def get_workflows():
    """The process-wide workflows: runs left unfinished by a previous process resume from
    their checkpoints when it is made (the plugin makes it at start)."""
    global _workflows
    supervisor, test_runs, intake = get_supervisor(), get_test_runs(), get_intake()
    with _lock:
        if _workflows is None:
            from ..workflows.runs import Workflows
            _workflows = Workflows(supervisor, test_runs, intake)
        return _workflows


_housekeeping = None


def get_housekeeping():
    """The process-wide upkeep of the file (retention, compaction, backups, the storage
    alert rules), started with the server."""
    global _housekeeping
    supervisor = get_supervisor()
    with _lock:
        if _housekeeping is None:
            from .housekeeping import Housekeeping
            _housekeeping = Housekeeping(supervisor.store, supervisor.alerts).start()
        return _housekeeping


def housekeeping_for(store):
    """The housekeeping of ``store`` when it is this server's own file, else None (a page
    reading another workbench through its API)."""
    return get_housekeeping() if store is _store and store is not None else None
