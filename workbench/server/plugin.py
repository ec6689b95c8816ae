"""HTTP API routes served inside ``panel serve --plugins workbench.server.plugin``.

The routes, who may call them and what they take are declared in routes.py; every handler
checks authentication itself (Panel's login does not cover extra routes) through that
declaration, and does its parsing and writing off the event loop.
"""

from __future__ import annotations

import logging

from tornado.web import Application

from .. import config, plugins
from . import limits, oidc, pages, routes, static_assets
from .state import get_housekeeping, get_store, get_supervisor, get_workflows

log = logging.getLogger("workbench.server")


def tls_context():
    """The TLS context of the extra listeners (the pages' own is Bokeh's, from the same
    files), or None."""
    files = config.tls()
    if files is None:
        return None
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*files)
    return ctx


#: Every route of the API, from the route table (routes.py): Tornado rules for Panel's
#: ``--plugins`` loader.
ROUTES = routes.tornado_rules()

pages.install()
static_assets.install()  # gzip, caching, MathJax only for math (before Bokeh makes its app)
oidc.register()  # single sign-on: a provider Panel's --oauth-provider can name
limits.install()  # before Bokeh creates its HTTP server, and before the OTLP listener

# Open (and on first start fill) the database when the server starts, not on the first
# page view, so a locked or unreadable file stops the server with a clear message.
get_store()
get_supervisor()  # agents still running from before a restart are adopted (or marked lost)
get_workflows()  # workflow runs left unfinished resume from their last checkpoint
get_housekeeping()  # retention, compaction, backups and the storage alerts, on a schedule
# Every plugin group loaded now, so that a broken plugin is in the log at start (and
# skipped), not found by the first request that needs it.
_broken = [p for p in plugins.report() if not p["loaded"]]
if _broken:
    log.warning("%d plugin(s) skipped: %s", len(_broken),
                "; ".join(f"{p['name']} ({p['kind']}): {p['error']}" for p in _broken))

# Agents configured with the default OTLP endpoint send to port 4318: listen there too.
_otlp_port = config.get("OBSERVATORY_OTLP_PORT")
if _otlp_port:
    Application(routes.otlp_rules()).listen(_otlp_port,
                                            address=config.get("OBSERVATORY_OTLP_ADDRESS"),
                                            ssl_options=tls_context())
    log.warning("OTLP/HTTP receiver also on port %d", _otlp_port)
# OTLP over gRPC (4317 by convention): gRPC's own server, on its own threads.
_otlp_grpc_port = config.get("OBSERVATORY_OTLP_GRPC_PORT")
if _otlp_grpc_port:
    from . import otlp_grpc

    otlp_grpc.start(_otlp_grpc_port, config.get("OBSERVATORY_OTLP_ADDRESS"))
    log.warning("OTLP/gRPC receiver on port %d", _otlp_grpc_port)
if not config.api_tokens():
    log.warning(
        "API open to loopback clients without a token (set OBSERVATORY_TOKENS to require one)"
    )
