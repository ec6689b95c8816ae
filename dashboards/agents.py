"""Agent telemetry: `panel serve dashboards/agents.py`."""

import panel as pn

from workbench.models.telemetry import AgentTelemetry
from workbench.server.state import get_store
from workbench.views.agents_dashboard import AgentsDashboard

pn.extension("tabulator", notifications=True)

AgentsDashboard(model=AgentTelemetry(store=get_store())).template().servable()
