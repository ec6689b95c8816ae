"""The server-wide data-change signal: commits reach open dashboards coalesced, sessions on
the same data share their queries, and a hidden tab does no work on new data."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from bokeh.document import Document
from tornado.ioloop import IOLoop

from workbench.config import utcnow
from workbench.models import AgentTelemetry
from workbench.models.cache import FrameCache, Frames
from workbench.server.signal import DataSignal
from workbench.store import Store
from workbench.views.agents_dashboard import AgentsDashboard

from .test_lazy_views import CountingStore

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


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


@contextmanager
def serving(store, setup):
    """An event loop on a thread of its own (as in a serve process), with a signal over
    ``store`` made on it and ``setup(signal, loop)`` run there first; yields the signal."""
    loop = IOLoop(make_current=False)
    ready = threading.Event()
    made: list[DataSignal] = []

    def serve() -> None:
        made.append(DataSignal(store, loop))
        setup(made[0], loop)
        ready.set()

    thread = threading.Thread(target=loop.start, daemon=True, name="the-loop")
    thread.start()
    loop.add_callback(serve)
    assert ready.wait(5)
    try:
        yield made[0]
    finally:
        loop.add_callback(loop.stop)
        thread.join(5)


def commit_for(store, seconds: float) -> None:
    """Telemetry commits, one every ~10 ms, for ``seconds``: busy ingest."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        store.write(lambda cur: cur.execute("SELECT 1"), topic="telemetry")
        time.sleep(0.01)


def test_commits_under_load_reach_each_session_once_per_interval(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSERVATORY_LIVE_INTERVAL", "0.2")
    refreshed: dict[int, list] = {0: [], 1: [], 2: []}

    def setup(signal, loop) -> None:
        for i in refreshed:
            signal.subscribe("telemetry", refreshed[i].append, SessionDoc(loop))
        signal.subscribe("tests", lambda v: refreshed.setdefault("tests", []).append(v),
                         SessionDoc(loop))

    with Store(tmp_path / "s.duckdb") as store, serving(store, setup) as signal:
        commit_for(store, 1.0)  # ~100 commits in a second
        time.sleep(0.5)
        counts = [len(refreshed[i]) for i in range(3)]
        # One refresh per interval (0.2 s) or so, never one per commit.
        assert all(2 <= n <= 8 for n in counts), counts
        assert store.versions["telemetry"] >= 50
        # Every session refreshed to the same versions, so their queries are the same.
        assert refreshed[0] == refreshed[1] == refreshed[2]
        assert "tests" not in refreshed  # no test data changed: that page did nothing
        # A write that names no topic changes nothing a page shows: no round at all.
        time.sleep(0.3)
        rounds = len(signal.rounds)
        store.write(lambda cur: cur.execute("SELECT 1"), topic=None)
        time.sleep(0.3)
        assert len(signal.rounds) == rounds
        # After a quiet spell, one commit shows at once (no waiting for an interval).
        before = len(refreshed[0])
        time.sleep(0.3)
        sent = time.monotonic()
        store.write(lambda cur: cur.execute("SELECT 1"), topic="telemetry")
        while len(refreshed[0]) == before and time.monotonic() - sent < 2:
            time.sleep(0.005)
        assert time.monotonic() - sent < 0.15


def _sharing_dashboards(store) -> tuple[list, object]:
    """Three Agents dashboards on ``store`` sharing one frame cache at version 1, and the
    time they refresh to."""
    shared = Frames(512)
    dashboards = [AgentsDashboard(model=AgentTelemetry(store=store), live=False)
                  for _ in range(3)]
    at = dashboards[0].model._cache.clock
    for dash in dashboards:
        dash.model._cache.share(shared, ("telemetry", 1), at)
    return dashboards, at


def test_sessions_on_the_same_data_version_share_every_query(demo_store):
    store = CountingStore(demo_store)
    dashboards, at = _sharing_dashboards(store)
    store.asked.clear()
    for version in (2, 3):
        for dash in dashboards:
            dash.model.refresh(("telemetry", version), at)
    per_version = len(store.asked) // 2
    assert per_version and len(store.asked) == 2 * per_version  # once per version, not 3x
    assert store.asked.count("agent_sessions") == 2


def test_sessions_on_one_version_share_what_the_agents_tab_shows(demo_store, monkeypatch):
    """The tab's rows are formatted once per data version and filters, not once per page."""
    from workbench.views.agents import AgentsOverview

    built = []
    shown = AgentsOverview._shown
    monkeypatch.setattr(AgentsOverview, "_shown", lambda self: built.append(1) or shown(self))
    dashboards, at = _sharing_dashboards(demo_store)
    built.clear()
    for dash in dashboards:
        dash.model.refresh(("telemetry", 2), at)
    assert len(built) == 1
    rows = {id(dash._views[0]._sessions.value) for dash in dashboards}
    assert len(rows) == 1 and not dashboards[0]._views[0]._sessions.value.empty
    dashboards[1].model.window = "24 hours"  # other filters: its own rows
    assert len(built) == 2
    assert dashboards[1]._views[0]._sessions.value is not dashboards[0]._views[0]._sessions.value


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


class AskingStore(CountingStore):
    """The real store, with a log of each question: name, parameters, and the thread."""

    def __init__(self, store):
        super().__init__(store)
        self.log: list[tuple[str, dict, str]] = []

    def query(self, name, /, **params):
        self.log.append((name, params, threading.current_thread().name))
        return super().query(name, **params)

    def on_commit(self, listener):
        self.store.on_commit(listener)


def test_the_next_versions_questions_are_answered_before_sessions_ask(demo_store):
    store = AskingStore(demo_store)
    shared = Frames(512)
    dashboards = [AgentsDashboard(model=AgentTelemetry(store=store), live=False)
                  for _ in range(2)]
    at1 = utcnow()
    for dash in dashboards:
        dash.model._cache.share(shared, ("telemetry", 1), at1)
        dash.model.refresh(("telemetry", 1), at1)
    asked = set(store.asked)
    assert "agent_sessions" in asked
    store.asked.clear()
    store.log.clear()

    at2 = at1 + timedelta(minutes=5)
    assert shared.warm(store, "telemetry", 2, at2) == len(asked)  # each question once
    sessions = next(p for name, p, _ in store.log if name == "agent_sessions")
    assert sessions["since"] == at2 - timedelta(days=7)  # the window moved with the clock
    store.asked.clear()
    for dash in dashboards:
        dash.model.refresh(("telemetry", 2), at2)
    assert store.asked == []  # every frame was ready

    # Nothing was asked at version 3 (the pages closed): nothing is asked ahead for 4,
    # and the questions of version 2 are forgotten.
    assert shared.warm(store, "telemetry", 4, utcnow()) == 0
    assert shared.warm(store, "telemetry", 3, utcnow()) == 0
    assert store.asked == []


def test_the_signal_runs_the_queries_off_the_loop(tmp_path, monkeypatch):
    """A served session's refresh, through the signal: after its first version, the
    questions it asks are answered on the worker thread, not on the event loop."""
    monkeypatch.setenv("OBSERVATORY_LIVE_INTERVAL", "0.1")
    refreshed: list[int] = []

    with Store(tmp_path / "s.duckdb") as real:
        store = AskingStore(real)

        def setup(signal, loop) -> None:
            from workbench.models.cache import SHARED

            cache = FrameCache()
            cache.share(SHARED, ("telemetry", 0), signal.current["telemetry"].at)

            def refresh(version) -> None:
                cache.clear(("telemetry", version.number), version.at)
                cache.get(store, "telemetry_agents", {})
                refreshed.append(version.number)

            signal.subscribe("telemetry", refresh, SessionDoc(loop))

        with serving(store, setup):
            for n in range(1, 4):
                real.write(lambda cur: cur.execute("SELECT 1"), topic="telemetry")
                start = time.monotonic()
                while len(refreshed) < n and time.monotonic() - start < 5:
                    time.sleep(0.01)
                time.sleep(0.15)
    assert refreshed == [1, 2, 3]
    threads = [t for name, _, t in store.log if name == "telemetry_agents"]
    assert threads[0] == "the-loop"  # version 1: nobody had asked before
    assert threads[1:] and all(t.startswith("observatory-warm") for t in threads[1:])
    assert len(threads) == 3  # once per version


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.mark.parametrize("work", ["cpu", "waiting"])
def test_refreshes_take_at_most_a_fifth_of_the_server(tmp_path, monkeypatch, work):
    """Refreshes that cost CPU space the rounds out (five times their cost from each start);
    a refresh that only waits (for the GIL, say) costs nothing and stretches nothing."""
    monkeypatch.setenv("OBSERVATORY_LIVE_INTERVAL", "0.1")
    starts: list[float] = []

    def refresh(version) -> None:
        starts.append(time.monotonic())
        _burn(0.05) if work == "cpu" else time.sleep(0.05)

    def setup(signal, loop) -> None:
        for _ in range(3):  # three sessions: 0.15 s of CPU a round
            signal.subscribe("telemetry", refresh, SessionDoc(loop))

    with Store(tmp_path / "s.duckdb") as store, serving(store, setup):
        commit_for(store, 3.0)
    rounds = starts[::3]
    gaps = [b - a for a, b in zip(rounds, rounds[1:], strict=False)]
    assert len(gaps) >= 2, starts
    if work == "cpu":
        # 0.15 s of refreshes: the next round begins at least 0.75 s after this one.
        assert min(gaps) >= 0.7, gaps
        assert len(rounds) <= 5, gaps
    else:
        assert max(gaps) < 0.5, gaps  # the interval (0.1 s) after 0.15 s of waiting
        assert len(rounds) >= 8, gaps
