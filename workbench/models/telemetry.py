"""Agent telemetry: agents, sessions, tokens, cost, traces and logs as DataFrames."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import param

from ..analysis import units
from ..analysis.histograms import quantile
from ..analysis.waterfall import layout
from .cache import FrameCache
from .tests import ALL, WINDOWS, set_choices, window_start

#: Parameters that change what every telemetry view shows (views re-query on each).
FILTER_PARAMS = ("agent", "service", "window", "refreshed")

#: Attributes shown in a log record's one-line summary, in this order.
SUMMARY_KEYS = ("model", "tool_name", "tool.name", "success", "decision", "status_code", "error",
                "input_tokens", "output_tokens", "cost_usd", "duration_ms", "prompt_length")


#: How a summary shows the numbers of these attributes (any other number: rounded).
_SUMMARY_FORMATS = {"cost_usd": units.money, "duration_ms": units.duration_ms}


def _summary_value(key: str, value: object) -> str:
    """An attribute's value as a summary shows it: numbers (sent as text too) rounded,
    costs in dollars and durations with their unit."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number):
            return value
        value = int(number) if number.is_integer() and "." not in value else number
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _SUMMARY_FORMATS.get(key, units.number)(value)
    return str(value)


def summarize(attributes: str | None) -> str:
    """``model=… tool_name=… cost_usd=$0.012`` from a record's attributes JSON."""
    if not isinstance(attributes, str):
        return ""
    try:
        attrs = json.loads(attributes)
    except ValueError:
        return ""
    return " ".join(f"{k}={_summary_value(k, attrs[k])}" for k in SUMMARY_KEYS if k in attrs)


def zero_fill(series: pd.DataFrame, bucket_s: int) -> pd.DataFrame:
    """Counter buckets without points are buckets without increase: add them as zeros
    (between each group's first and last bucket) so a chart does not draw a rate across
    a gap. Gauges are left alone: there a gap means no reading."""
    if series.empty:
        return series
    out = []
    for grp, part in series.groupby("grp", sort=False):
        span = pd.date_range(part["bucket"].min(), part["bucket"].max(), freq=f"{bucket_s}s")
        full = part.set_index("bucket").reindex(span)
        full[["increase", "rate_per_s", "points"]] = full[
            ["increase", "rate_per_s", "points"]].fillna(0)
        full["points"] = full["points"].astype("int64")
        full["grp"] = grp
        out.append(full.rename_axis("bucket").reset_index())
    return pd.concat(out, ignore_index=True)


#: OTLP severity numbers: each name is the lowest number of its range.
SEVERITY = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}


#: Metric types read as bucket counts (exponential ones are stored as explicit buckets too).
HISTOGRAMS = frozenset({"histogram", "exponential_histogram"})


class AgentTelemetry(param.Parameterized):
    """Filters as parameters, answers as DataFrames; ``store`` as in :class:`TestAnalytics`."""

    store = param.Parameter(doc="Where the data comes from (Store or RemoteStore).")
    agent = param.Selector(
        default=ALL,
        objects=[ALL],
        check_on_set=False,
        doc="Agent (gen_ai.agent.name or the emitting service).",
    )
    service = param.Selector(
        default=ALL, objects=[ALL], check_on_set=False, doc="Service (resource service.name)."
    )
    min_severity = param.Selector(
        default="any", objects=["any", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"],
        doc="Only log records at least this severe.",
    )
    window = param.Selector(
        default="7 days", objects=list(WINDOWS), doc="Only telemetry within this window."
    )
    session_id = param.String(default=None, allow_None=True, doc="The session opened in detail.")
    trace_id = param.String(default=None, allow_None=True, doc="The trace shown as a waterfall.")
    text = param.String(default="", doc="Search text for traces (span names, attributes).")
    log_text = param.String(default="", doc="Search text for logs (bodies, events, attributes); "
                            "its own box, so searching logs leaves the traces list alone.")
    errors_only = param.Boolean(default=False, doc="Only traces with an error span.")
    min_ms = param.Number(
        default=None, allow_None=True, bounds=(0, None), doc="Only traces at least this long (ms)."
    )
    now = param.Date(default=None, allow_None=True, doc="Clock for the window (None: now).")
    refreshed = param.Integer(default=0, doc="Bumped by refresh() so views re-query.")

    def __init__(self, cache: FrameCache | None = None, **params: Any):
        """``cache``: frames shared with a served page's other sessions from the start (its
        shell's ``frames``), so that the choices read here are read once per data version;
        a notebook passes none."""
        super().__init__(**params)
        self._cache = cache or FrameCache()
        self._refresh_agents()

    @param.depends("store", watch=True)
    def _refresh_agents(self) -> None:
        if self.store is None:
            return
        for name, query in (("agent", "telemetry_agents"), ("service", "telemetry_services")):
            set_choices(self, name, self._cache.get(self.store, query, {})[name])

    def refresh(self, version: Any = None, at: datetime | None = None) -> None:
        """Re-read the agent list and tell views to re-query (a dashboard passes the data
        ``version`` it refreshes to and that version's time ``at``)."""
        self._cache.clear(version, at)
        self._refresh_agents()
        self.refreshed += 1

    def filters(self) -> dict[str, Any]:
        return {
            "agent": None if self.agent == ALL else self.agent,
            "service": None if self.service == ALL else self.service,
            "since": window_start(self.window, self.now),
        }

    def _q(self, query: str, /, **extra: Any) -> pd.DataFrame:
        return self._cache.get(self.store, query, {**self.filters(), **extra})

    def derive(self, name: str, make: Callable[[], Any]) -> Any:
        """What a view ``make()``-s of this model's frames for the current filters, built
        once per data version and shared by the open dashboards (see ``FrameCache``)."""
        return self._cache.derive(self.store, name, self.filters(), make)

    def sessions(self, limit: int = 500) -> pd.DataFrame:
        """Per session: tokens by type, cost, models, tool calls and failures, API errors,
        lines changed, commits and pull requests."""
        return self._q("agent_sessions", limit=limit)

    def agents(self) -> pd.DataFrame:
        """Per agent: sessions and their totals, with the tool failure rate."""
        out = self._q("agent_totals")
        if out.empty:
            out["tool_failure_rate"] = []
            return out
        out = out.set_index("agent")
        out["tool_failure_rate"] = (
            out["tool_failures"] / out["tool_calls"].where(out["tool_calls"] > 0)
        ).fillna(0.0)
        return out.reset_index().sort_values("cost_usd", ascending=False, ignore_index=True)

    def token_usage(self) -> pd.DataFrame:
        """Tokens by type and cost per agent and model (the model mix)."""
        return self._q("token_usage")

    def traces(self, limit: int = 200) -> pd.DataFrame:
        """Traces matching the search, newest first."""
        return self._q(
            "trace_list",
            text=self.text or None,
            errors_only=self.errors_only,
            min_ms=self.min_ms,
            session=self.session_id,
            limit=limit,
        )

    def waterfall(self, trace_id: str | None = None) -> pd.DataFrame:
        """The spans of one trace laid out for a waterfall (depth, offset, row)."""
        trace_id = trace_id or self.trace_id
        if not trace_id:
            return layout(pd.DataFrame(columns=["span_id", "parent_span_id", "start_ns", "end_ns"]))
        return layout(self.store.query("trace_spans", trace_id=trace_id))

    def timeline_bucket_s(self, bins: int = 400) -> int:
        """Seconds per time slot of :meth:`timeline` (about ``bins`` slots per window); an
        hour or more is whole hours (a store adds whole hours up from its hourly rollup,
        without reading the records)."""
        days = WINDOWS[self.window] or 90
        seconds = max(int(days * 86400 / bins), 1)
        return seconds if seconds < 3600 else -(-seconds // 3600) * 3600

    def timeline(self, bins: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(sessions, buckets)``: session segments, and activity bucketed into about
        ``bins`` time slots so the amount drawn stays bounded however much was recorded."""
        bucket_s = self.timeline_bucket_s(bins)
        return (self._q("timeline_sessions"), self._q("timeline_buckets", bucket_s=bucket_s))

    def metric_names(self) -> pd.DataFrame:
        """Metrics in the window with their type, unit, point count and attribute keys."""
        return self._q("metric_names")

    def metric(self, name: str, group_by: str = "", bins: int = 120,
               kind: str | None = None) -> pd.DataFrame:
        """One metric over time, bucketed in DuckDB and grouped by an attribute.

        Counters (sums) come back as ``rate_per_s`` and ``increase`` per bucket (cumulative
        series are differenced, resets included); gauges as ``mean``/``max_value``;
        histograms as ``p50``/``p95``/``p99`` from their summed bucket counts. ``kind`` (the
        metric's type, from :meth:`metric_names`) saves looking it up.
        """
        days = WINDOWS[self.window] or 90
        bucket_s = max(int(days * 86400 / bins), 1)
        if kind is None:
            names = self.metric_names()
            found = names.loc[names["name"] == name, "type"]
            kind = found.iloc[0] if not found.empty else None
        if kind in HISTOGRAMS:
            h = self._q("metric_histogram", name=name, group_by=group_by, bucket_s=bucket_s)
            for q in (0.5, 0.95, 0.99):
                h[f"p{int(q * 100)}"] = [quantile(list(b), list(c), q)
                                         for b, c in zip(h["bounds"], h["counts"], strict=True)]
            return h.drop(columns=["bounds", "counts"])
        df = self._q("metric_series", name=name, group_by=group_by, bucket_s=bucket_s)
        return zero_fill(df, bucket_s) if kind == "sum" else df

    def logs(self, limit: int = 200) -> pd.DataFrame:
        """Log records and agent events matching the search, newest first, with a
        ``summary`` of the attributes a person scans for (model, tool, tokens, cost, ...)."""
        df = self._q("logs_search", text=self.log_text or None, session=self.session_id,
                     min_severity=SEVERITY.get(self.min_severity), limit=limit)
        df["summary"] = [summarize(a) for a in df["attributes"]] if not df.empty else []
        return df
