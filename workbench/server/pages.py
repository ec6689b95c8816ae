"""What the serve process adds to the pages Panel and Bokeh serve (not only the API).

Loaded by the plugin module, so it applies to ``observatory serve`` and to plain
``panel serve ... --plugins workbench.server.plugin`` alike. Two changes to library
handlers, each narrow and named here rather than scattered:

- every HTTP answer of this process carries the security headers (a CSP that still lets
  Bokeh and Panel run: inline page scripts, ``new Function`` and modules loaded from
  ``blob:`` URLs — all from this origin);
- Panel's ``/components/<module>/...`` route may serve resources of modules that are already
  loaded, but no longer imports a module an unauthenticated request names.
"""

from __future__ import annotations

import sys

from tornado.web import HTTPError, RequestHandler

from .guard import SECURITY_HEADERS

PAGE_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
        "worker-src 'self' blob:; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "font-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'"
    ),
    "Referrer-Policy": "same-origin",
}


def _page_headers(handler: RequestHandler) -> None:
    for name, value in PAGE_HEADERS.items():
        handler.set_header(name, value)


def install() -> None:
    """Apply both changes (idempotent)."""
    if getattr(RequestHandler.set_default_headers, "_observatory", False):
        return
    _page_headers._observatory = True  # type: ignore[attr-defined]
    RequestHandler.set_default_headers = _page_headers  # type: ignore[method-assign]

    from panel.io.server import ComponentResourceHandler

    resolve = ComponentResourceHandler.parse_url_path

    def parse_url_path(self, path: str) -> str:
        module = path.split("/", 1)[0]
        if module not in sys.modules:
            raise HTTPError(404, "Module not found")  # never import on a request's say-so
        return resolve(self, path)

    ComponentResourceHandler.parse_url_path = parse_url_path  # type: ignore[method-assign]
