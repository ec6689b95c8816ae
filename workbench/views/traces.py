"""Trace explorer: search traces, open one as a span waterfall with attributes and events."""

from __future__ import annotations

import json

import holoviews as hv
import pandas as pd
import panel as pn
import param

from ..models.telemetry import FILTER_PARAMS as TELEMETRY_FILTERS
from ..models.telemetry import AgentTelemetry
from .charts import number_ticks
from .common import columns, empty, pre, table, watching
from .escape import escape
from .lazy import LazyView, deferred

TRACE_COLUMNS = ["started", "service", "root", "duration_ms", "spans", "errors", "agent",
                 "session_id", "cost_usd", "trace_id"]
SPAN_COLUMNS = ["name", "service_name", "offset_ms", "duration_ms", "status_code",
                "operation", "model", "tool_name", "input_tokens", "output_tokens",
                "cost_usd", "events"]
LOG_COLUMNS = ["time", "severity_text", "service_name", "event_name", "summary", "body",
               "session_id", "trace_id"]
WATERFALL_LIMIT = 2000  # spans sent to the browser at once; the rest stay on the server
VISIBLE_ROWS = 60  # rows in view when a trace opens


def visible_rows(full: pd.DataFrame, y_range=None):
    """The waterfall glyphs for the rows in ``y_range`` (all rows when None), thinned to
    WATERFALL_LIMIT evenly when a zoomed-out view holds more."""
    lo, hi = y_range if y_range and None not in y_range else (-1, VISIBLE_ROWS)
    lo, hi = min(lo, hi), max(lo, hi)
    part = full[(full["row"] >= lo - 1) & (full["row"] <= hi + 1)]
    if len(part) > WATERFALL_LIMIT:
        part = part.iloc[:: -(-len(part) // WATERFALL_LIMIT)]
    segs = hv.Segments(
        part,
        ["offset_ms", "row", "end_ms", "row"],
        ["label", "service_name", "duration_ms", "status"],
    ).opts(
        color="status", cmap={"ok": "#3b7dd8", "error": "#d64545"}, line_width=9, show_legend=False
    )
    labels = hv.Labels(part.assign(x=part["offset_ms"]), ["x", "row"], "label").opts(
        text_align="left",
        text_baseline="bottom",
        text_font_size="8pt",
        yoffset=-0.2,
        text_color="#333",
    )
    return segs * labels


class TraceExplorer(LazyView):
    model = param.ClassSelector(class_=AgentTelemetry, doc="The telemetry model.")

    def __init__(self, **params):
        super().__init__(**params)
        m = self.model
        self._search = pn.widgets.TextInput.from_param(
            m.param.text,
            name="Search names and attributes",
            placeholder="e.g. Bash, chat, 429",
            width=320,
        )
        self._errors = pn.widgets.Checkbox.from_param(m.param.errors_only, name="errors only")
        self._service = pn.widgets.Select.from_param(m.param.service, name="Service", width=200)
        self._min = pn.widgets.FloatInput.from_param(
            m.param.min_ms, name="min duration (ms)", width=160
        )
        self._traces = table(pd.DataFrame(columns=TRACE_COLUMNS), (
            "No traces match: widen the window, clear the search, or the agent sends only "
            "logs and metrics (see Logs)."), boxed=True, grow={"root": 1},
                             tips={"errors": "Spans that ended in an error",
                                   "started": "When the trace started"})
        self._traces_box = self._traces.box
        self._traces.param.watch(self._on_trace, "selection")
        self._spans = table(pd.DataFrame(columns=SPAN_COLUMNS),
                            "Select a trace above to see its spans.", boxed=True,
                            grow={"name": 2, "events": 1})
        self._spans_box = self._spans.box
        self._spans.param.watch(self._on_span, "selection")
        self._chart = pn.pane.HoloViews(sizing_mode="stretch_width", height=300)
        self._span_detail = pn.Column(sizing_mode="stretch_width")
        self._load()
        self._show()

    @param.depends(
        *watching(TELEMETRY_FILTERS, "text", "errors_only", "min_ms", "session_id"), watch=True
    )
    @deferred
    def _load(self) -> None:
        df = self.model.traces()
        self._frame = df
        self._traces.value = columns(df, TRACE_COLUMNS)

    def _on_trace(self, event) -> None:
        if event.new:
            self.model.trace_id = self._frame.iloc[event.new[0]]["trace_id"]

    @param.depends("model.trace_id", watch=True)
    @deferred
    def _show(self) -> None:
        spans = self.model.waterfall()
        self._span_detail[:] = []
        self._span_frame = spans
        if spans.empty:
            self._chart.object = hv.Div("<i>Select a trace to see its waterfall.</i>")
            self._spans.value = pd.DataFrame(columns=SPAN_COLUMNS)
            return
        full = spans.copy()
        full["end_ms"] = full["offset_ms"] + full["duration_ms"].fillna(0)
        full["label"] = ["  " * d + n for d, n in zip(full["depth"], full["name"], strict=True)]
        full["status"] = full["status_code"].map({2: "error"}).fillna("ok")
        self._full = full
        rows = min(len(full), VISIBLE_ROWS)
        # The whole layout stays here; the browser is sent the rows in view as it pans.
        dmap = hv.DynamicMap(self._visible, streams=[hv.streams.RangeY()])
        self._chart.height = min(100 + 22 * rows, 700)
        self._chart.object = dmap.opts(
            responsive=True,
            height=self._chart.height,
            invert_yaxis=True,
            ylim=(-0.5, rows - 0.5),
            xlabel="ms since the trace started",
            xformatter=number_ticks(),
            ylabel="",
            yaxis=None,
            tools=["hover", "xwheel_zoom", "xpan", "ypan"],
            active_tools=["ypan"],
            title=f"Trace {self.model.trace_id} ({len(full):,} spans"
            + (
                f"; drag up and down to page through, {VISIBLE_ROWS} at a time)"
                if len(full) > VISIBLE_ROWS
                else ")"
            ),
        )
        self._spans.value = spans[SPAN_COLUMNS]

    def _visible(self, y_range=None):
        """Segments and labels for the rows in ``y_range``, at most WATERFALL_LIMIT of them."""
        return visible_rows(self._full, y_range)

    def _on_span(self, event) -> None:
        if not event.new:
            return
        row = self._span_frame.iloc[event.new[0]]
        attrs = json.loads(row["attributes"]) if isinstance(row["attributes"], str) else {}
        self._span_detail[:] = [
            pn.pane.HTML(
                f"<b>{escape(row['name'])}</b> · span <code>{escape(row['span_id'])}</code>"
                + (
                    f" · {escape(row['status_message'])}"
                    if isinstance(row.get("status_message"), str)
                    else ""
                )
            ),
            pre(json.dumps(attrs, indent=2, sort_keys=True), max_height=260),
        ]

    def __panel__(self):
        return pn.Column(
            pn.Row(self._search, self._service, self._min, self._errors),
            self._traces_box,
            self._chart,
            self._spans_box,
            self._span_detail,
            sizing_mode="stretch_width",
        )


class LogExplorer(LazyView):
    """Log records and agent events; selecting one with a trace opens that trace."""

    model = param.ClassSelector(class_=AgentTelemetry, doc="The telemetry model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._search = pn.widgets.TextInput.from_param(
            self.model.param.log_text, name="Search bodies, events and attributes", width=320
        )
        self._severity = pn.widgets.Select.from_param(
            self.model.param.min_severity, name="Severity at least", width=160
        )
        self._logs = table(pd.DataFrame(columns=LOG_COLUMNS), (
            "No log records match: widen the window, lower the severity or clear the search."),
            boxed=True, grow={"summary": 2, "body": 1})
        self._logs_box = self._logs.box
        self._logs.param.watch(self._on_log, "selection")
        self._detail = pn.Column(sizing_mode="stretch_width")
        self._load()

    @param.depends(*watching(TELEMETRY_FILTERS, "log_text", "session_id", "min_severity"),
                   watch=True)
    @deferred
    def _load(self) -> None:
        df = self.model.logs()
        self._frame = df
        self._logs.value = columns(df, LOG_COLUMNS)

    def _on_log(self, event) -> None:
        if not event.new:
            return
        row = self._frame.iloc[event.new[0]]
        attrs = json.loads(row["attributes"]) if isinstance(row["attributes"], str) else {}
        self._detail[:] = [pre(json.dumps(attrs, indent=2, sort_keys=True), max_height=240)]
        if isinstance(row["trace_id"], str):
            self.model.trace_id = row["trace_id"]

    def __panel__(self):
        return pn.Column(
            pn.Row(self._search, self._severity),
            self._logs_box,
            self._detail,
            empty("Selecting a record with a trace id opens that trace."),
            sizing_mode="stretch_width",
        )
