"""What the serve process adds to the pages Panel and Bokeh serve (not only the API).

Loaded by the plugin module, so it applies to ``observatory serve`` and to plain
``panel serve ... --plugins workbench.server.plugin`` alike. Changes to library handlers,
each narrow and named here rather than scattered:

- every HTTP answer of this process carries the security headers (a CSP that still lets
  Bokeh and Panel run: inline page scripts, ``new Function`` and modules loaded from
  ``blob:`` URLs — all from this origin);
- every request — pages, websockets, static files, API, OTLP, on every listener — with a
  ``Host`` this workbench does not answer to gets 421 (the precondition of DNS rebinding);
- every cookie this process sets is ``HttpOnly`` and ``SameSite=Lax`` unless its code says
  otherwise, so no page of another site can make a logged-in browser send it with a write;
- the login page accepts an API token as the password (any user name), so that a workbench
  protected only by tokens protects its dashboards too;
- Panel's ``/components/<module>/...`` route may serve resources of modules that are already
  loaded, but no longer imports a module an unauthenticated request names.
"""

from __future__ import annotations

import sys

from tornado.web import Application, HTTPError, RequestHandler

from . import auth, guard
from .guard import SECURITY_HEADERS

PAGE_HEADERS = {
    **SECURITY_HEADERS,
    # blob: in connect-src: Panel loads a custom component's module (views/paged_table.py)
    # by fetching a blob: URL the page itself made; nothing leaves the page.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
        "worker-src 'self' blob:; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "font-src 'self' data:; connect-src 'self' ws: wss: blob:; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'"
    ),
    "Referrer-Policy": "same-origin",
}


def _page_headers(handler: RequestHandler) -> None:
    for name, value in PAGE_HEADERS.items():
        handler.set_header(name, value)


class MisdirectedHandler(RequestHandler):
    """421 for a request to a host name this workbench does not answer to."""

    def prepare(self) -> None:
        host = self.request.headers.get("Host", "")
        self.set_status(421)
        self.finish({"ok": False, "error": f"unknown Host {host[:80]!r}: this workbench "
                     "answers only its configured host names (serve --allow-host NAME)"})


def _checked_find_handler(find_handler):
    def find(self: Application, request, **kwargs):
        if guard.hostname(request.headers.get("Host", "")) not in guard.allowed_hosts():
            return self.get_handler_delegate(request, MisdirectedHandler)
        return find_handler(self, request, **kwargs)
    return find


def _lax_cookie(set_cookie):
    def set_with_defaults(self, name, value, *args, httponly=True, samesite="Lax", **kw):
        return set_cookie(self, name, value, *args, httponly=httponly, samesite=samesite, **kw)
    return set_with_defaults


def _token_as_password(validate):
    def check(self, username: str, password: str) -> bool:
        # A session opened with a token is named after the token's fingerprint, whatever
        # name was typed, so that it gets the token's role and no more; no password login
        # may take such a name.
        if auth.valid_token(password):
            self._token_user = auth.token_user(password)
            return True
        return not username.startswith("token:") and validate(self, username, password)
    return check


def _token_session(set_current_user):
    def set_user(self, user):
        return set_current_user(self, (getattr(self, "_token_user", None) or user) if user
                                else user)
    return set_user


def install() -> None:
    """Apply every change (idempotent)."""
    if getattr(RequestHandler.set_default_headers, "_observatory", False):
        return
    _page_headers._observatory = True  # type: ignore[attr-defined]
    RequestHandler.set_default_headers = _page_headers  # type: ignore[method-assign]
    Application.find_handler = _checked_find_handler(Application.find_handler)
    RequestHandler.set_cookie = _lax_cookie(RequestHandler.set_cookie)

    from panel.auth import BasicLoginHandler

    BasicLoginHandler._validate = _token_as_password(BasicLoginHandler._validate)
    BasicLoginHandler.set_current_user = _token_session(BasicLoginHandler.set_current_user)

    from panel.io.server import ComponentResourceHandler

    resolve = ComponentResourceHandler.parse_url_path

    def parse_url_path(self, path: str) -> str:
        module = path.split("/", 1)[0]
        if module not in sys.modules:
            raise HTTPError(404, "Module not found")  # never import on a request's say-so
        return resolve(self, path)

    ComponentResourceHandler.parse_url_path = parse_url_path  # type: ignore[method-assign]
