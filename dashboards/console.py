"""Console: `panel serve dashboards/console.py` (served by `observatory serve`)."""

from workbench.views.console import console_page
from workbench.views.page import serve

serve("Happy Observatory · Console", console_page)
