"""Test-failure investigation: `panel serve dashboards/tests.py`."""

from workbench.models import TestAnalytics
from workbench.views.dashboard import TestsDashboard
from workbench.views.page import serve

serve("Happy Observatory · Tests",
      lambda store: TestsDashboard(model=TestAnalytics(
          store=store, cache=TestsDashboard.frames(store))).template())
