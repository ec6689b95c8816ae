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


def test_a_hidden_tab_is_sent_to_the_browser_when_first_opened(demo_store):
    """A session's document holds the open tab's models only (a page's other tabs were
    most of its build); opening a tab puts its view in, filled, once."""
    from bokeh.document import Document

    dash = TestsDashboard(model=TestAnalytics(store=demo_store, window="all time"),
                          live=False)
    doc = Document()
    root = dash._tabs.get_root(doc)  # (the tabs: what a page of it sends)
    doc.add_root(root)
    ref = root.ref["id"]
    clusters = dash._views[dash.tabs.index("Failure clusters")]._clusters
    runs = dash._views[0]
    assert ref not in clusters._models  # hidden: no model of it in the document
    models = len(doc.models)
    dash.goto("Failure clusters")
    model = clusters._models[ref][0]
    assert model.document is doc and len(doc.models) > models
    sent = len(model.source.data["index"])  # (a page of it: the table pages on the server)
    assert 0 < sent == min(len(clusters.value), clusters.page_size)  # filled as sent
    grown = len(doc.models)
    dash.goto(dash.tabs[0])
    dash.goto("Failure clusters")
    assert len(doc.models) == grown  # sent once
    assert runs is dash._views[0]


def test_a_tab_s_view_is_made_when_first_opened_and_reads_the_model_as_it_is(demo_store):
    """A page load makes the open tab's view only; one opened later shows the filters and
    the run chosen meanwhile (it was not there to follow them)."""
    from workbench.views.lazy_tabs import Later
    from workbench.views.runs import RunDetail

    dash = TestsDashboard(model=TestAnalytics(store=demo_store, window="all time"), live=False)
    made = [not isinstance(v, Later) for v in dash._lazy.views]
    assert made == [True] + [False] * (len(dash.tabs) - 1)
    dash.model.project = "ledger-jvm"
    run_id = dash.model.runs(limit=5)["run_id"].iloc[0]
    dash.model.run_id = run_id  # (the tests page opens the run's tab for it)
    detail = dash._lazy.views[dash.tabs.index("Run detail")]
    assert isinstance(detail, RunDetail) and detail.shown
    assert dash._tabs.active == dash.tabs.index("Run detail")
    assert f"Run {run_id}" in detail._header[0].object  # the run chosen before it was made
    assert (detail._failures.value.empty
            == dash.model.run_failures().empty)  # (its failures, as the model has them)
    assert isinstance(dash._lazy.views[dash.tabs.index("Durations")], Later)  # still unmade
