"""The agents dashboard: filters, overview, traces, logs, live refresh."""

from __future__ import annotations

import panel as pn
import param

from ..models.telemetry import AgentTelemetry
from .agents import AgentsOverview, session_banner
from .common import nav
from .metrics import MetricsExplorer
from .timeline import AgentTimeline
from .traces import LogExplorer, TraceExplorer

TABS = ("Agents", "Timeline", "Traces", "Logs", "Metrics")


class AgentsDashboard(pn.viewable.Viewer):
    model = param.ClassSelector(class_=AgentTelemetry, doc="The telemetry model.")
    live_ms = param.Integer(default=2000, doc="How often (ms) to look for new data; 0 = never.")

    def __init__(self, **params):
        super().__init__(**params)
        m = self.model
        self._tabs = pn.Tabs(
            ("Agents", AgentsOverview(model=m)),
            ("Timeline", AgentTimeline(model=m)),
            ("Traces", TraceExplorer(model=m)),
            ("Logs", LogExplorer(model=m)),
            ("Metrics", MetricsExplorer(model=m)),
            dynamic=True,
            sizing_mode="stretch_width",
        )
        traces = TABS.index("Traces")
        m.param.watch(lambda e: setattr(self._tabs, "active", traces), "trace_id")
        m.param.watch(lambda e: e.new and setattr(self._tabs, "active", traces), "session_id")
        self._version = None

    def filters(self) -> pn.Column:
        m = self.model
        refresh = pn.widgets.Button(name="Refresh", button_type="primary")
        refresh.on_click(lambda e: m.refresh())
        return pn.Column(
            pn.widgets.Select.from_param(m.param.agent, name="Agent", width=230),
            pn.widgets.RadioButtonGroup.from_param(
                m.param.window, name="Window", orientation="vertical", button_type="light"
            ),
            refresh,
            session_banner(m),
            pn.pane.Markdown(
                "New telemetry appears by itself while this page is open.",
                styles={"font-size": "12px", "color": "#667"},
            ),
            width=250,
        )

    def _poll(self) -> None:
        version = tuple(self.model.store.query("telemetry_version").iloc[0].tolist())
        if self._version is not None and version != self._version:
            self.model.refresh()
        self._version = version

    def template(self) -> pn.template.BaseTemplate:
        if self.live_ms:
            self._poll()
            pn.state.add_periodic_callback(self._poll, period=self.live_ms)
        return pn.template.BootstrapTemplate(
            title="Happy Observatory · Agents",
            sidebar=[self.filters()],
            main=[self._tabs],
            header=[nav("agents")],
            header_background="#2b6a4f",
            sidebar_width=280,
        )

    def __panel__(self):
        return pn.Row(self.filters(), self._tabs, sizing_mode="stretch_width")
