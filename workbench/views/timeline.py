"""Agent timeline: a swimlane per agent with its sessions and bucketed activity."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from ..analysis.units import number
from ..models.telemetry import FILTER_PARAMS as TELEMETRY_FILTERS
from ..models.telemetry import AgentTelemetry
from .charts import time_axis_hook
from .common import series_color, watching
from .lazy import LazyView, drawn

KIND_COLORS = {
    "prompt": "#8a5ac8",
    "model call": "#3b7dd8",
    "tool call": "#2e9e5b",
    "error": "#d64545",
    "other": "#9aa3ad",
}
_OFFSETS = {"prompt": 0.3, "model call": 0.15, "tool call": 0.0, "error": -0.15, "other": -0.3}


class AgentTimeline(LazyView):
    """Zoom and pan on time; what is drawn is aggregated in DuckDB first."""

    model = param.ClassSelector(class_=AgentTelemetry, doc="The telemetry model.")

    @param.depends("shown", *watching(TELEMETRY_FILTERS))
    @drawn
    def _plot(self):
        sessions, buckets = self.model.timeline()
        if sessions.empty and buckets.empty:
            return pn.pane.Markdown("*No agent activity in this window.*")
        lanes = sorted(set(sessions["agent"]) | set(buckets["agent"]))
        lane = {a: i for i, a in enumerate(lanes)}
        sessions = sessions.assign(y=sessions["agent"].map(lane))
        segs = hv.Segments(
            sessions, ["start", "y", "end", "y"], ["agent", "session_id", "records", "errors"]
        ).opts(color="agent", cmap={a: series_color(a) for a in lanes}, line_width=18,
               alpha=0.35, tools=["hover"], show_legend=False)
        buckets = buckets.assign(
            y=buckets["agent"].map(lane) + buckets["kind"].map(_OFFSETS).fillna(0),
            size=4 + 3 * np.log2(buckets["records"].clip(lower=1)),
        )
        points = hv.Points(buckets, ["bucket", "y"], ["kind", "records", "agent", "size"]).opts(
            color="kind",
            cmap=KIND_COLORS,
            size="size",
            tools=["hover"],
            legend_position="right",
            show_legend=True,
        )
        ticks = [(i, a) for a, i in lane.items()]
        # At least a time slot either side of what was recorded: one short session alone
        # spanned milliseconds, and its axis read "200ms … 0ms 05:28:36".
        times = pd.concat([sessions["start"], sessions["end"], buckets["bucket"]]).dropna()
        slot = pd.Timedelta(seconds=self.model.timeline_bucket_s())
        lo, hi = times.min(), times.max() + slot
        if hi - lo < 4 * slot:
            middle = lo + (hi - lo) / 2
            lo, hi = middle - 2 * slot, middle + 2 * slot
        return (segs * points).opts(
            responsive=True,
            height=max(220, 90 * len(lanes)),
            yticks=ticks,
            ylabel="",
            xlabel="",
            ylim=(-0.6, len(lanes) - 0.4),
            xlim=(lo, hi),
            active_tools=["xwheel_zoom"],
            # Clock times at every zoom (never a bare "200ms"), the day on the first tick.
            hooks=[time_axis_hook],
            title=f"Agent activity: {number(len(sessions))} sessions, "
            f"{number(int(buckets['records'].sum()))} records (bucketed)",
        )

    def __panel__(self):
        return pn.Column(
            pn.param.ParamMethod(self._plot, lazy=True),
            pn.pane.Markdown(
                "Bars are sessions (first to last record); dots are prompts, model calls, tool "
                "calls and errors per time bucket, sized by count. Scroll to zoom, drag to pan.",
                styles={"color": "#667", "font-size": "12px"},
            ),
            sizing_mode="stretch_width",
        )
