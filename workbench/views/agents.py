"""Agents overview: per agent and per session — tokens, cost, models, tools, errors."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from ..analysis.units import money, number
from ..models.telemetry import FILTER_PARAMS as TELEMETRY_FILTERS
from ..models.telemetry import AgentTelemetry
from .common import (
    TITLES,
    Kpis,
    LiveHTML,
    LiveMarkdown,
    columns,
    empty,
    html_table,
    readable,
    watching,
)
from .escape import escape
from .lazy import LazyView, deferred
from .paged_table import PagedTable
from .stacked_bars import StackedBars

_NO_AGENTS = "No agent telemetry in this window."

#: Sessions listed in the Agents tab's table (the most recent; the totals count them all).
SESSION_ROWS = 500

_TOKEN_COLORS = {
    "input": "#3b7dd8",
    "output": "#2e9e5b",
    "cache_read": "#9ac1ef",
    "cache_creation": "#e08a1e",
    "reasoning": "#8a5ac8",
}


class AgentsOverview(LazyView):
    """Totals, tokens by type per agent, the model mix, and sessions (click to open)."""

    model = param.ClassSelector(class_=AgentTelemetry, doc="The telemetry model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._totals = Kpis()
        # One row per agent, and per agent and model: small, so plain HTML tables, which a
        # live refresh updates far more cheaply than a Tabulator on every open page.
        self._agents = LiveHTML("", sizing_mode="stretch_width")
        self._models = LiveHTML("", sizing_mode="stretch_width")
        # Many rows, paged and sorted on the server, as HTML too: redrawing a Tabulator was
        # half of each open browser's work per live refresh (see :mod:`.paged_table`).
        self._sessions = PagedTable("session_id", empty_text=(
            "No agent sessions in this window: point an agent's OpenTelemetry exporter at "
            "this workbench (/v1/traces, /v1/logs, /v1/metrics)."), on_open=self._open_session)
        # The open session's row stands out; "Show all sessions" clears it.
        self.model.param.watch(lambda e: self._sessions.mark(e.new), "session_id")
        self._sessions_title = LiveMarkdown("#### Sessions")
        self._chart = StackedBars("agent", _TOKEN_COLORS, "Tokens by type per agent",
                                  height=260, labels={k: TITLES.get(k, k) for k in _TOKEN_COLORS},
                                  empty_text=(
                                      "No agent telemetry in this window yet. Point an "
                                      "agent's OTEL_EXPORTER_OTLP_ENDPOINT at this server."))
        self._load()

    @param.depends(*watching(TELEMETRY_FILTERS), watch=True)
    @deferred
    def _load(self) -> None:
        shown = self.model.derive("agents-overview", self._shown)
        self._sessions_title.object = shown["title"]
        self._totals.update(shown["kpis"])
        self._agents.object = shown["agents"]
        self._models.object = shown["models"]
        self._sessions.value = shown["sessions"]
        self._chart.send(shown["tokens"])

    def _shown(self) -> dict:
        """Everything the tab shows, as shown: made once per data version and filters, and
        shared by every open page (see ``AgentTelemetry.derive``)."""
        agents = self.model.agents()  # every session in the window counts in the totals
        usage = self.model.token_usage()
        # The table lists the most recent sessions only: every row of it is formatted,
        # compared and paged on each live refresh of each open page, and with thousands of
        # sessions that alone held OTLP ingest to 59% of its idle rate with five pages open
        # (benchmarks/dashboards_vs_ingest.py).
        recent = self.model.sessions(limit=SESSION_ROWS)
        n = int(agents["sessions"].sum()) if not agents.empty else 0
        title = (
            f"#### Sessions (the {SESSION_ROWS:,} most recent of {n:,}; an agent or a "
            "shorter window shows others — click one to open its traces or logs)"
            if n > SESSION_ROWS else
            "#### Sessions (click one to open its traces or logs; a column title sorts)")
        total = agents.sum(numeric_only=True) if not agents.empty else pd.Series(dtype=float)
        kpis = [
            ("agents", len(agents), "#445"),
            ("sessions", int(total.get("sessions", 0)), "#3b5bdb"),
            ("cost", money(total.get("cost_usd", 0)), "#2e7d32"),
            ("input tokens", number(int(total.get("input_tokens", 0))), "#3b7dd8"),
            ("output tokens", number(int(total.get("output_tokens", 0))), "#2e9e5b"),
            ("tool calls", number(int(total.get("tool_calls", 0))), "#6d6d6d"),
            ("tool failures", number(int(total.get("tool_failures", 0))), "#d64545"),
            ("API errors", number(int(total.get("api_errors", 0))), "#e08a1e"),
        ]
        cols = [
            "last_seen",
            "agent",
            "session_id",
            "models",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",  # cache writes and model calls: in the tables per agent
            "tool_calls",
            "tool_failures",
            "api_errors",
            "lines_changed",
            "commits",
            "pull_requests",
        ]
        return {
            "title": title, "kpis": kpis,
            # Numbers, shares and money as the one formatting layer shows them (readable).
            "agents": html_table(agents, _NO_AGENTS),
            "models": html_table(usage, _NO_AGENTS),
            "sessions": readable(columns(recent, cols)),
            "tokens": self._tokens_per_agent(usage),
        }

    @staticmethod
    def _tokens_per_agent(usage: pd.DataFrame) -> pd.DataFrame:
        cols = list(_TOKEN_COLORS)
        if usage.empty:
            return pd.DataFrame(columns=["agent", *cols])
        return usage.groupby("agent")[cols].sum().reset_index()

    def _open_session(self, session_id: str) -> None:
        self.model.session_id = session_id

    def __panel__(self):
        return pn.Column(
            self._totals,
            self._chart,
            pn.pane.Markdown("#### Agents"),
            self._agents,
            self._sessions_title,
            self._sessions,
            pn.pane.Markdown("#### Model mix: tokens and cost per agent and model"),
            self._models,
            sizing_mode="stretch_width",
        )


def session_banner(model: AgentTelemetry) -> pn.viewable.Viewable:
    """Which session the traces and logs are filtered to, with a way back."""
    clear = pn.widgets.Button(label="Show all sessions", button_type="light", width=160)
    clear.on_click(lambda e: setattr(model, "session_id", None))

    @param.depends(model.param.session_id)
    def banner(session_id):
        if not session_id:
            return empty("All sessions.")
        # Stacked, not side by side: both fit the sidebar's width.
        return pn.Column(
            pn.pane.HTML(f"Filtered to session <code>{escape(session_id)}</code>",
                         width=230), clear
        )

    return pn.panel(banner)
