"""Storage: `panel serve dashboards/storage.py` (served by `observatory serve`)."""

from workbench.server.state import housekeeping_for
from workbench.views.page import serve
from workbench.views.storage import storage_page

serve("Happy Observatory · Storage", lambda store: storage_page(store, housekeeping_for(store)))
