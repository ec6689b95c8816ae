"""Every view re-queries when any of its model's filters changes."""

from __future__ import annotations

import pytest

from workbench.models import AgentTelemetry, TestAnalytics
from workbench.models.telemetry import FILTER_PARAMS as TELEMETRY_FILTERS
from workbench.models.tests import FILTER_PARAMS as TEST_FILTERS
from workbench.views.agents import AgentsOverview
from workbench.views.clusters import FailureClusters
from workbench.views.flaky import FlakyTests
from workbench.views.metrics import MetricsExplorer
from workbench.views.runs import RunHistory
from workbench.views.testdetail import Durations
from workbench.views.traces import LogExplorer, TraceExplorer

# (view, the attribute holding what it shows, a filter change that must change it)
TEST_VIEWS = [(RunHistory, "_table"), (FailureClusters, "_clusters"), (FlakyTests, "_table"),
              (Durations, "_slow")]
TELEMETRY_VIEWS = [(AgentsOverview, "_sessions"), (TraceExplorer, "_traces"),
                   (LogExplorer, "_logs"), (MetricsExplorer, "_table")]


def _shown(view, attr):
    return getattr(view, attr).value.to_csv()


@pytest.mark.parametrize("view_cls,attr", TEST_VIEWS, ids=lambda v: getattr(v, "__name__", v))
def test_test_views_follow_every_filter(demo_store, view_cls, attr):
    assert set(TEST_FILTERS) >= {"project", "branch", "variant", "window"}
    m = TestAnalytics(store=demo_store, window="all time")
    view = view_cls(model=m)
    before = _shown(view, attr)
    m.project = "ledger-jvm"
    assert _shown(view, attr) != before


@pytest.mark.parametrize("view_cls,attr", TELEMETRY_VIEWS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("change", [{"agent": "codex"}, {"service": "codex"}])
def test_telemetry_views_follow_every_filter(demo_store, view_cls, attr, change):
    assert set(change) <= set(TELEMETRY_FILTERS)
    m = AgentTelemetry(store=demo_store, window="all time")
    view = view_cls(model=m)
    before = _shown(view, attr)
    m.param.update(**change)
    assert _shown(view, attr) != before


def test_run_chart_draws_one_bar_per_run(store):
    """Runs in the same minute without a build number are separate bars (and clickable)."""
    from datetime import datetime

    from workbench.ingest import parse_bytes
    from workbench.store.writes import insert_run

    started = datetime(2026, 11, 26, 7, 20, 5)
    for i in range(3):
        xml = f'<testsuite><testcase name="t{i}"><failure message="x"/></testcase></testsuite>'
        run = parse_bytes(xml.encode(), f"r{i}.xml")
        insert_run(store, run, {"project": "p", "started_at": started})
    m = TestAnalytics(store=store, window="all time")
    view = RunHistory(model=m)
    bars = view._chart.categories
    assert len(set(bars)) == 3
    clicked = sorted(bars)[1]
    view._chart.tap(clicked)
    assert m.run_id in set(m.runs().run_id)
    assert m.run_id == view._bars.set_index("run").loc[clicked, "run_id"]
