"""HTTP API routes served inside ``panel serve --plugins workbench.server.plugin``.

The routes, who may call them and what they take are declared in routes.py; every handler
checks authentication itself (Panel's login does not cover extra routes) through that
declaration, and does its parsing and writing off the event loop.
"""

from __future__ import annotations

import logging

from tornado.web import Application

from .. import config
from . import limits, pages, routes
from .state import get_housekeeping, get_store, get_supervisor, get_workflows

log = logging.getLogger("workbench.server")


#: Every route of the API, from the route table (routes.py): Tornado rules for Panel's
#: ``--plugins`` loader.
ROUTES = routes.tornado_rules()

pages.install()
limits.install()  # before Bokeh creates its HTTP server, and before the OTLP listener

# Open (and on first start fill) the database when the server starts, not on the first
# page view, so a locked or unreadable file stops the server with a clear message.
get_store()
get_supervisor()  # agents still running from before a restart are adopted (or marked lost)
get_workflows()  # workflow runs left unfinished resume from their last checkpoint
get_housekeeping()  # retention, compaction, backups and the storage alerts, on a schedule

# Agents configured with the default OTLP endpoint send to port 4318: listen there too.
_otlp_port = config.get("OBSERVATORY_OTLP_PORT")
if _otlp_port:
    Application(routes.otlp_rules()).listen(_otlp_port,
                                            address=config.get("OBSERVATORY_OTLP_ADDRESS"))
    log.warning("OTLP/HTTP receiver also on port %d", _otlp_port)
if not config.api_tokens():
    log.warning(
        "API open to loopback clients without a token (set OBSERVATORY_TOKENS to require one)"
    )
