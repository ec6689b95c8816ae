"""Metrics explorer semantics: cumulative counters differenced (with resets), histograms
as percentiles, grouping by an attribute — on hand-made OTLP points."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from workbench.analysis.histograms import quantile
from workbench.ingest import otlp
from workbench.models import AgentTelemetry
from workbench.store.writes import submit_telemetry

T0 = datetime(2026, 3, 1, 12, 0)


def ns(t: datetime) -> int:
    return int((t - datetime(1970, 1, 1)).total_seconds() * 1e9)


def store_points(store, build) -> None:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="svc")))
    build(rm.scope_metrics.add())
    submit_telemetry(store, otlp.flatten("metrics", req).tables).result()


def test_cumulative_counter_rates_and_resets(store):
    def build(scope):
        m = scope.metrics.add()
        m.name, m.sum.aggregation_temporality, m.sum.is_monotonic = "requests", 2, True
        # route=/a: 5, 8, then the process restarts: 2, 6  → increases 5, 3, 2, 4
        for minute, value, route in (
            (0, 5, "/a"),
            (1, 8, "/a"),
            (2, 2, "/a"),
            (3, 6, "/a"),
            (0, 10, "/b"),
            (3, 40, "/b"),
        ):
            p = m.sum.data_points.add()
            p.time_unix_nano = ns(T0 + timedelta(minutes=minute))
            p.as_int = value
            p.attributes.append(KeyValue(key="route", value=AnyValue(string_value=route)))

    store_points(store, build)
    m = AgentTelemetry(store=store, window="all time")
    df = m.metric("requests", group_by="route", bins=100_000)  # tiny buckets: one per point
    totals = df.groupby("grp")["increase"].sum().to_dict()
    assert totals == {"/a": 14, "/b": 40}
    assert set(m.metric("requests")["grp"]) == {"(all)"}
    # /b has points at minutes 0 and 3 only: the buckets between are zero increase, and
    # every group's buckets are contiguous
    b = df[df.grp == "/b"].sort_values("bucket")
    assert len(b) > 2 and (b.bucket.diff().dropna().nunique() == 1)
    assert (b.increase.iloc[1:-1] == 0).all() and b["mean"].iloc[1:-1].isna().all()
    assert m.metric("requests")["increase"].sum() == 54


def test_histogram_percentiles(store):
    def build(scope):
        m = scope.metrics.add()
        m.name, m.unit, m.histogram.aggregation_temporality = "latency", "ms", 1
        p = m.histogram.data_points.add()
        p.time_unix_nano = ns(T0)
        p.count = 100
        p.explicit_bounds.extend([10, 100, 1000])
        p.bucket_counts.extend([50, 40, 10, 0])

    store_points(store, build)
    row = AgentTelemetry(store=store, window="all time").metric("latency").iloc[0]
    assert row.p50 == pytest.approx(10.0)
    assert row.p95 == pytest.approx(550.0)
    assert row.p99 == pytest.approx(910.0)


def test_a_histogram_after_a_counter_in_one_request_keeps_its_buckets(store):
    """The SDK sends every instrument in one request, a counter often first: the rows'
    columns must be every row's, not the first's (the histogram was stored empty)."""
    def build(scope):
        c = scope.metrics.add()
        c.name, c.sum.aggregation_temporality = "calls", 2
        c.sum.data_points.add(time_unix_nano=ns(T0), as_int=3)
        h = scope.metrics.add()
        h.name, h.histogram.aggregation_temporality = "latency", 1
        h.histogram.data_points.add(time_unix_nano=ns(T0), count=4,
                                    explicit_bounds=[10, 100], bucket_counts=[1, 2, 1])

    store_points(store, build)
    row = store.sql("SELECT count, bucket_counts FROM metric_points WHERE name = 'latency'")
    assert row["count"][0] == 4 and list(row["bucket_counts"][0]) == [1, 2, 1]
    assert AgentTelemetry(store=store, window="all time").metric("latency").iloc[0].p50 > 0


@pytest.mark.parametrize(
    "bounds,counts,q,expected",
    [
        ([1, 2], [0, 0, 4], 0.9, 2.0),  # overflow bucket: its lower bound
        ([5], [0, 0], 0.5, None),  # no observations
        ([10, 20], [4, 0, 0], 0.5, 5.0),  # first bucket starts at 0
        ([-10, 0], [0, 2, 0], 0.5, -5.0),
    ],
)
def test_quantile_edges(bounds, counts, q, expected):
    assert quantile(bounds, counts, q) == expected


def test_rate_unit_is_chosen_by_magnitude():
    from workbench.analysis.units import rate_unit

    assert rate_unit(6e-4) == ("hour", 3600)  # 2.2 commits per hour, not 6.000e-4 per second
    assert rate_unit(3.0) == ("second", 1)
    assert rate_unit(0.05) == ("minute", 60)
    assert rate_unit(1e-6) == ("day", 86400)
    assert rate_unit(None) == ("day", 86400) and rate_unit(float("nan")) == ("day", 86400)


def test_metrics_view_draws_a_single_bucket_and_readable_rates(demo_store):
    from workbench.models import AgentTelemetry
    from workbench.views.metrics import MetricsExplorer

    view = MetricsExplorer(model=AgentTelemetry(store=demo_store, window="all time"))
    view._metric.value = "claude_code.commit.count"
    title = view._chart.object.opts.get().kwargs["title"]
    assert title.endswith(("per minute", "per hour", "per day"))
    unit = title.rsplit(" ", 1)[-1]
    assert f"per_{unit}" in view._table.value.columns
