"""Metrics explorer: any metric, grouped by any attribute, bucketed in DuckDB."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param

from ..analysis.units import rate_unit
from ..models.telemetry import FILTER_PARAMS as TELEMETRY_FILTERS
from ..models.telemetry import HISTOGRAMS, AgentTelemetry
from .charts import number_ticks, time_axis_hook
from .common import columns, empty, header, series_color, watching
from .lazy import LazyView, deferred
from .paged_table import PagedTable


def _unit(unit: object) -> str:
    """A metric's unit as shown: UCUM annotations (``{token}``) and ``1`` say nothing."""
    text = str(unit or "").strip()
    return "" if text in ("1", "") or (text.startswith("{") and text.endswith("}")) else text


class MetricsExplorer(LazyView):
    """Counters as rates, gauges as means, histograms as p50/p95/p99."""

    model = param.ClassSelector(class_=AgentTelemetry, doc="The telemetry model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._metric = pn.widgets.Select(label="Metric", width=340)
        self._group = pn.widgets.Select(label="Group by attribute", width=220)
        self._metric.param.watch(self._on_metric, "value")
        self._group.param.watch(self._draw, "value")
        self._chart = pn.pane.HoloViews(sizing_mode="stretch_width", height=320)
        # Plain HTML, paged and sorted on the server: its columns change with the kind of
        # metric, which a Tabulator answers by building itself anew in the browser.
        self._table = PagedTable("bucket", empty_text="No points in this window.")
        self._names()

    @param.depends(*watching(TELEMETRY_FILTERS), watch=True)
    @deferred
    def _names(self) -> None:
        names = self.model.metric_names()
        self._catalog = names.set_index("name") if not names.empty else names
        options = names["name"].tolist()
        current = self._metric.value
        self._metric.options = options
        self._metric.value = current if current in options else (options[0] if options else None)
        self._draw()

    def _on_metric(self, event) -> None:
        keys = []
        if event.new and event.new in self._catalog.index:
            keys = sorted(k for k in list(self._catalog.at[event.new, "attribute_keys"]) if k)
        self._group.options = ["", *keys]
        self._group.value = "type" if "type" in keys else ""
        self._draw()

    def _draw(self, *_) -> None:
        name = self._metric.value
        if not name:
            self._chart.object = hv.Div("<i>No metrics in this window.</i>")
            self._table.value = pd.DataFrame()
            return
        kind = self._catalog.at[name, "type"]
        df = self.model.metric(name, group_by=self._group.value or "", kind=kind)
        unit = _unit(self._catalog.at[name, "unit"])
        # Readings in seconds or milliseconds read as durations (``250 ms``, ``1.5 s``).
        as_time = {"s": "duration_s", "ms": "duration_ms"}.get(unit)
        if kind in HISTOGRAMS:
            ys, label = ["p50", "p95", "p99"], f"{name} percentiles" + (f" ({unit})" * bool(unit))
            shown = ["bucket", "grp", *ys, "points"]
        elif kind == "sum":
            # Per second, minute, hour or day: whichever makes the peak at least 1.
            peak = df["rate_per_s"].max() if not df.empty else None
            per, seconds = rate_unit(peak)
            ys = [f"per_{per}"]
            df = df.assign(**{ys[0]: df["rate_per_s"] * seconds})
            label = f"{name}: rate per {per}"
            as_time = None  # a rate of seconds is not a duration
            shown = ["bucket", "grp", ys[0], "increase", "points"]
        else:
            ys, label = ["mean"], f"{name}" + (f" ({unit})" * bool(unit))
            shown = ["bucket", "grp", "mean", "max_value", "points"]
        curves = {}
        for grp, part in df.groupby("grp"):
            for y in ys:
                key = f"{grp} {y}" if len(ys) > 1 else str(grp)
                # Points as well as the line: a series with one bucket is still drawn.
                # One colour per series name (an agent's is the same on every chart).
                color = series_color(key)
                curves[key] = (hv.Curve(part, "bucket", y, label=key).opts(
                                   tools=["hover"], color=color)
                               * hv.Scatter(part, "bucket", y, label=key).opts(
                                   size=5, tools=["hover"], color=color))
        overlay = hv.NdOverlay(curves, kdims="series") if curves else hv.Div("<i>No points.</i>")
        self._chart.object = overlay.opts(
            responsive=True, height=320, title=label, legend_position="right", xlabel="",
            ylabel=header(ys[0])[0] if kind == "sum" else unit, yformatter=number_ticks(),
            hooks=[time_axis_hook]) if curves else overlay
        self._table.kinds = dict.fromkeys(("p50", "p95", "p99", "mean", "max_value"),
                                          as_time) if as_time else {}
        self._table.value = columns(df, shown)

    def __panel__(self):
        return pn.Column(pn.Row(self._metric, self._group), self._chart, self._table,
                         empty("Buckets and rates are computed in DuckDB; cumulative counters "
                               "are differenced per series, resets included."),
                         sizing_mode="stretch_width")
