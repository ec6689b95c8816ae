"""Every named query answers the same values with the same dtypes on the file and through
a running server (a notebook must not behave differently when a server holds the file)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from workbench.client import RemoteStore
from workbench.store import Store
from workbench.store.queries import QUERIES

from .conftest import Served

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(demo_path, tmp_path_factory):
    """The demo dataset twice: one copy opened here, one held by a real server."""
    folder = tmp_path_factory.mktemp("parity")
    local, served = folder / "local.duckdb", folder / "served.duckdb"
    shutil.copy(demo_path, local)
    shutil.copy(demo_path, served)
    server = Served(served, ready_path="/api/health")
    with Store(local) as store, RemoteStore(server.url) as remote:
        yield store, remote
    server.stop()


def _params(store: Store) -> dict[str, dict]:
    """Parameters that make each query return rows from the demo data."""
    run = store.sql("SELECT run_id FROM runs WHERE failed > 0 ORDER BY run_id LIMIT 1").run_id[0]
    failing = store.sql("SELECT test_id, signature FROM results WHERE signature IS NOT NULL "
                        "ORDER BY test_id LIMIT 1")
    trace = store.sql("SELECT trace_id FROM spans ORDER BY trace_id LIMIT 1").trace_id[0]
    hist = store.sql("SELECT name FROM metric_points WHERE type = 'histogram' LIMIT 1")
    counter = store.sql("SELECT name FROM metric_points WHERE type = 'sum' LIMIT 1").name[0]
    return {
        "base_run": {"run_id": run}, "final_outcomes": {"run_id": run}, "run": {"run_id": run},
        "running_tests": {"run_id": run},
        "run_results": {"run_id": run},
        "cluster_failures": {"signature": failing.signature[0]},
        "duration_trend": {"test_id": failing.test_id[0]},
        "test_history": {"test_id": failing.test_id[0]},
        "metric_histogram": {"name": hist.name[0] if len(hist) else counter},
        "metric_series": {"name": counter},
        "span_count_like": {"text": "tool"},
        "trace_spans": {"trace_id": trace},
        "agent_events": {"agent_id": "ag-demo"}, "agent_samples": {"agent_id": "ag-demo"},
        "webhook_deliveries": {"webhook_id": "wh-demo"},
        "console_history": {"who": "loopback", "q": "echo"},
        "project_folder": {"name": "checkout-service"},
        "coverage_files": {"project": "checkout-service"},
        "project_agents": {"project": "checkout"},
        "coverage_file_tests": {"project": "checkout-service",
                                "path": "src/checkout/cart/rules.py"},
        "coverage_report": {"report_id": store.sql(
            "SELECT report_id FROM coverage_reports LIMIT 1").report_id[0]},
        "coverage_tests": {"project": "checkout-service"},
        "coverage_file_totals": {"report_id": store.sql(
            "SELECT report_id FROM coverage_reports LIMIT 1").report_id[0]},
        "last_outcomes": {"project": "checkout-service"},
        "mcp_approval": {"project": "/nowhere", "server": "x", "fingerprint": "y"},
        "selection_stats": {"project": "checkout-service"},
        "selection_history": {"project": "checkout-service", "limit": 5},
        "coverage_tests_in": {"project": "checkout-service",
                              "paths": ["src/checkout/cart/rules.py"]},
        "runs_ingested_since": {"project": "checkout-service", "since": "2020-01-01"},
        "final_failures": {"run_ids": [run]},
        "last_pass": {"project": "checkout-service"},
        "agent_events_between": {"agent_ids": ["ag-demo"]},
        "alert_preview_events": {"since": "2020-01-01", "kinds": ["log", "state"],
                                 "agent_ids": ["ag-demo"]},
        "alert_preview_samples": {"since": "2020-01-01", "agent_ids": ["ag-demo"],
                                  "bucket_s": 60},
        "alert_preview_quiet": {"since": "2020-01-01", "agent_ids": ["ag-demo"],
                                "end": 2e9, "seconds": 10},
    }


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_parity_file_and_server(pair, name):
    store, remote = pair
    params = _params(store).get(name, {})
    local = store.query(name, **params)
    served = remote.query(name, **params)
    pd.testing.assert_frame_equal(local, served, check_dtype=True)


def test_histogram_model_through_the_server(pair):
    """The report that started this: float + Decimal through the server."""
    from workbench.models import AgentTelemetry

    store, remote = pair
    name = _params(store)["metric_histogram"]["name"]
    a = AgentTelemetry(store=store, window="all time").metric(name, kind="histogram")
    b = AgentTelemetry(store=remote, window="all time").metric(name, kind="histogram")
    pd.testing.assert_frame_equal(a, b)
