"""Test-failure investigation: `panel serve dashboards/tests.py`."""

import panel as pn

from workbench.models import TestAnalytics
from workbench.server.state import get_store
from workbench.views.dashboard import TestsDashboard

pn.extension("tabulator", notifications=True)

TestsDashboard(model=TestAnalytics(store=get_store())).template().servable()
