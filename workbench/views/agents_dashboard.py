"""The agents dashboard: overview, timeline, traces, logs, metrics."""

from __future__ import annotations

import panel as pn
import param

from ..models.telemetry import AgentTelemetry
from .agents import AgentsOverview, session_banner
from .metrics import MetricsExplorer
from .shell import DashboardShell
from .timeline import AgentTimeline
from .traces import LogExplorer, TraceExplorer


class AgentsDashboard(DashboardShell):
    """Opening a trace or a session switches to the trace explorer."""

    model = param.ClassSelector(class_=AgentTelemetry, doc="The telemetry model.")

    page, title, color = "agents", "Happy Observatory · Agents", "#2b6a4f"
    topic = "telemetry"
    live_note = "New telemetry appears by itself while this page is open."
    tabs = ("Agents", "Timeline", "Traces", "Logs", "Metrics")

    def __init__(self, **params):
        super().__init__(**params)
        m = self.model
        views = (AgentsOverview, AgentTimeline, TraceExplorer, LogExplorer, MetricsExplorer)
        self.build_tabs(views)
        m.param.watch(lambda e: self.goto("Traces"), "trace_id")
        m.param.watch(self._open_session, "session_id")

    def _open_session(self, event) -> None:
        """A chosen session opens its traces, or its logs when it sent only logs (as
        Claude Code and Codex do): never an empty Traces tab."""
        if event.new:
            self.goto("Traces" if not self.model.traces().empty else "Logs")

    def filter_widgets(self) -> list:
        m = self.model
        return [
            pn.widgets.Select.from_param(m.param.agent, name="Agent", width=230),
            pn.widgets.RadioButtonGroup.from_param(m.param.window, name="Window",
                                                   orientation="vertical", button_type="light"),
            session_banner(m),
        ]
