"""A hidden tab runs no queries: a page load and a filter change cost the open tab only."""

from __future__ import annotations

from workbench.models import AgentTelemetry, TestAnalytics
from workbench.views.agents_dashboard import AgentsDashboard
from workbench.views.dashboard import TestsDashboard


class CountingStore:
    """The real store, with a log of the named queries asked of it."""

    def __init__(self, store):
        self.store = store
        self.asked: list[str] = []

    def query(self, name, /, **params):
        self.asked.append(name)
        return self.store.query(name, **params)


def test_tests_dashboard_queries_only_the_open_tab(demo_store):
    store = CountingStore(demo_store)
    dash = TestsDashboard(model=TestAnalytics(store=store, window="all time"), live=False)
    hidden = {"failure_clusters", "test_run_stats", "test_durations", "duration_medians"}
    assert "runs" in store.asked
    assert hidden.isdisjoint(store.asked)
    store.asked.clear()
    dash.model.project = "ledger-jvm"
    assert "runs" in store.asked and hidden.isdisjoint(store.asked)
    store.asked.clear()
    dash.goto("Failure clusters")
    assert store.asked.count("failure_clusters") == 1
    clusters = dash._views[dash.tabs.index("Failure clusters")]
    assert not clusters._clusters.value.empty
    store.asked.clear()
    dash.model.project = "checkout-service"  # the open tab reloads, the hidden Runs does not
    assert store.asked.count("failure_clusters") == 1 and "runs" not in store.asked


def test_agents_dashboard_queries_only_the_open_tab(demo_store):
    store = CountingStore(demo_store)
    dash = AgentsDashboard(model=AgentTelemetry(store=store, window="all time"), live=False)
    hidden = {"trace_list", "logs_search", "metric_names", "timeline_buckets"}
    assert "agent_sessions" in store.asked and hidden.isdisjoint(store.asked)
    dash.goto("Logs")
    assert "logs_search" in store.asked
    assert {"trace_list", "metric_names"}.isdisjoint(store.asked)


def test_a_frame_is_computed_once_per_data_change(demo_store):
    """The runs chart and the runs table share one query; new data asks again."""
    store = CountingStore(demo_store)
    m = TestAnalytics(store=store, window="all time")
    m.runs(limit=60)
    m.runs(limit=60)
    assert store.asked.count("runs") == 2  # a notebook always reads the store as it is now
    store.asked.clear()
    m._cache.enabled = True  # as every dashboard does
    first = m.runs(limit=60)
    m.runs(limit=60)
    assert store.asked.count("runs") == 1
    m.refresh()
    again = m.runs(limit=60)
    assert store.asked.count("runs") == 2
    assert list(again.run_id) == list(first.run_id)
