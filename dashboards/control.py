"""Agent control: `panel serve dashboards/control.py` (served by `observatory serve`)."""

from workbench.views.control_page import control_page
from workbench.views.page import serve

serve("Happy Observatory · Control", control_page)
