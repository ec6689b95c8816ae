"""Agent telemetry: `panel serve dashboards/agents.py`."""

from workbench.models.telemetry import AgentTelemetry
from workbench.views.agents_dashboard import AgentsDashboard
from workbench.views.page import serve

serve("Happy Observatory · Agents",
      lambda store: AgentsDashboard(model=AgentTelemetry(
          store=store, cache=AgentsDashboard.frames(store))).template())
