"""Workflows: `panel serve dashboards/workflows.py` (served by `observatory serve`)."""

from workbench.views.page import serve
from workbench.views.workflows import workflows_page

serve("Happy Observatory · Workflows", workflows_page)
