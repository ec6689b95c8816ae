"""The server-wide data-change signal: commits reach open dashboards coalesced, sessions on
the same data share their queries, and a hidden tab does no work on new data."""

from __future__ import annotations

import threading
import time

import pytest
from bokeh.document import Document
from tornado.ioloop import IOLoop

from workbench.models import AgentTelemetry
from workbench.models.cache import Frames
from workbench.server.signal import DataSignal
from workbench.store import Store
from workbench.views.agents_dashboard import AgentsDashboard

from .test_lazy_views import CountingStore


def test_the_writer_tells_listeners_which_topics_each_commit_changed(tmp_path):
    heard: list[frozenset[str]] = []
    with Store(tmp_path / "s.duckdb") as store:
        store.on_commit(heard.append)
        store.write(lambda cur: cur.execute("SELECT 1"))
        store.write(lambda cur: cur.execute("SELECT 1"), topic="telemetry")
        with pytest.raises(Exception, match="nope"):
            store.write(lambda cur: cur.execute("SELECT * FROM nope"))
        with pytest.raises(ValueError, match="unknown topic"):
            store.write(lambda cur: None, topic="weather")
        assert heard == [frozenset({"tests"}), frozenset({"telemetry"})]  # not the failure
        assert store.versions == {"tests": 1, "telemetry": 1, "control": 0}


class SessionDoc:
    """What the signal needs of a Bokeh document: ``add_next_tick_callback``, run on the
    loop (as a served session's document does)."""

    def __init__(self, loop: IOLoop):
        self.loop = loop

    def add_next_tick_callback(self, fn):
        self.loop.add_callback(fn)


def test_commits_under_load_reach_each_session_once_per_interval(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATORY_LIVE_INTERVAL", "0.2")
    store = Store(tmp_path / "s.duckdb")
    loop = IOLoop(make_current=False)
    ready = threading.Event()
    refreshed: dict[int, list] = {0: [], 1: [], 2: []}

    def serve() -> None:
        signal = DataSignal(store, loop)
        for i in refreshed:
            signal.subscribe("telemetry", refreshed[i].append, SessionDoc(loop))
        signal.subscribe("tests", lambda v: refreshed.setdefault("tests", []).append(v),
                         SessionDoc(loop))
        ready.set()

    thread = threading.Thread(target=loop.start, daemon=True)
    thread.start()
    loop.add_callback(serve)
    ready.wait(5)
    try:
        start = time.monotonic()
        while time.monotonic() - start < 1.0:  # ~100 commits in a second
            store.write(lambda cur: cur.execute("SELECT 1"), topic="telemetry")
            time.sleep(0.01)
        time.sleep(0.5)
        counts = [len(refreshed[i]) for i in range(3)]
        # One refresh per interval (0.2 s) or so, never one per commit.
        assert all(2 <= n <= 8 for n in counts), counts
        assert store.versions["telemetry"] >= 50
        # Every session refreshed to the same versions, so their queries are the same.
        assert refreshed[0] == refreshed[1] == refreshed[2]
        assert "tests" not in refreshed  # no test data changed: that page did nothing
        # After a quiet spell, one commit shows at once (no waiting for an interval).
        before = len(refreshed[0])
        time.sleep(0.3)
        sent = time.monotonic()
        store.write(lambda cur: cur.execute("SELECT 1"), topic="telemetry")
        while len(refreshed[0]) == before and time.monotonic() - sent < 2:
            time.sleep(0.005)
        assert time.monotonic() - sent < 0.15
    finally:
        loop.add_callback(loop.stop)
        thread.join(5)
        store.close()


def test_sessions_on_the_same_data_version_share_every_query(demo_store):
    store = CountingStore(demo_store)
    shared = Frames(512)
    dashboards = [AgentsDashboard(model=AgentTelemetry(store=store), live=False)
                  for _ in range(3)]
    at = dashboards[0].model._cache.clock
    for dash in dashboards:
        dash.model._cache.share(shared, 1, at)
    store.asked.clear()
    for version in (2, 3):
        for dash in dashboards:
            dash.model.refresh(version, at)
    per_version = len(store.asked) // 2
    assert per_version and len(store.asked) == 2 * per_version  # once per version, not 3x
    assert store.asked.count("agent_sessions") == 2


def test_a_hidden_tab_does_no_work_on_new_data(demo_store):
    dash = AgentsDashboard(model=AgentTelemetry(store=demo_store), live=False)
    timeline = dash._views[dash.tabs.index("Timeline")]
    panel = timeline.__panel__()
    panel.get_root(Document())  # rendered, as in a served page
    before = [id(o) for o in panel.select()]
    dash.model.refresh()
    dash.model.refresh()
    assert [id(o) for o in panel.select()] == before  # nothing rebuilt, nothing swapped
    dash.goto("Timeline")
    assert [id(o) for o in panel.select()] != before  # shown: drawn for real
