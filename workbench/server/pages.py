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
  loaded, but no longer imports a module an unauthenticated request names;
- pages fail closed (:func:`page_refusal`): with authentication configured and no login in
  front of them they are refused, as is a user whose role may not read, and a write a
  browser sends for another site's page;
- the login form carries an anti-forgery token of its own (a double-submit cookie).
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import sys

from tornado.web import Application, HTTPError, RequestHandler

from .. import config
from ..config import allows
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
    for name, value in {**PAGE_HEADERS, **guard.transport_headers()}.items():
        handler.set_header(name, value)


class MisdirectedHandler(RequestHandler):
    """421 for a request to a host name this workbench does not answer to."""

    def prepare(self) -> None:
        host = self.request.headers.get("Host", "")
        self.set_status(421)
        self.finish({"ok": False, "error": f"unknown Host {host[:80]!r}: this workbench "
                     "answers only its configured host names (serve --allow-host NAME)"})


class RefusedHandler(RequestHandler):
    """403 for a page request the workbench refuses (see :func:`page_refusal`)."""

    def initialize(self, message: str) -> None:
        self.message = message

    def prepare(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(self.message + "\n")


def _has_login(app: Application) -> bool:
    """Whether Panel serves a login (``--basic-auth``, OAuth) in front of the pages."""
    provider = getattr(app, "auth_provider", None)
    return provider is not None and (provider.get_user is not None
                                     or provider.get_user_async is not None)


#: The routes Bokeh and Panel serve (pages, their websockets, static files, the login), as
#: the patterns of the live application, with who may use them. Pages are protected by the
#: login whenever any authentication is configured (server/pages.py fails closed when
#: tokens are set but no login is); static files and the login page are public.
PAGES: dict[str, tuple[str, str]] = {}


def _declare_pages() -> None:
    page = ("viewer", "a dashboard page (login when authentication is configured)")
    public = ("public", "static files (scripts, styles, fonts) of Bokeh and Panel")
    for app in ("", "/tests", "/agents", "/control", "/projects", "/workflows", "/console",
                "/storage"):
        PAGES[f"{app}/?"] = page
        PAGES[f"{app}/ws"] = ("viewer", "a page's Bokeh websocket")
        PAGES[f"{app}/autoload.js"] = ("viewer", "a page's autoload script")
        PAGES[f"{app}/metadata"] = ("viewer", "a page's metadata")
        if app:
            PAGES[f"{app}/static/(.*)"] = public
    for pattern in ("/static/(.*)", "/static/(?!extensions/)(.*)", "/static/extensions/(.*)",
                    "/components/(.*)", "/favicon.ico"):
        PAGES[pattern] = public
    PAGES["/login"] = ("public", "the login form (with its own anti-forgery token)")
    PAGES["/logout"] = ("public", "log out")


_declare_pages()


def page_role(path: str) -> str:
    """The role a page path needs, from :data:`PAGES` (``public`` for static files and
    the login; ``viewer`` for pages, and for anything not listed)."""
    for pattern, (role, _) in PAGES.items():
        if re.fullmatch(pattern, path):
            return role
    return "viewer"


def page_refusal(app: Application, request) -> str | None:
    """Why a request for a page (not the API, which checks itself) is refused, or None.

    - a write (the login form) that a browser sends for another site's page;
    - fail closed: authentication is configured (``OBSERVATORY_TOKENS`` or
      ``OBSERVATORY_BASIC_AUTH``) but Panel serves no login in front of the pages — plain
      ``panel serve dashboards/*.py`` with tokens set would show every page to anyone;
    - a logged-in user whose role may not read (an ingest token used as a password).
    """
    handler = RequestHandler(app, request)
    denied = guard.check(handler, reads_too=False)
    if denied:
        return denied[1]
    if page_role(request.path) == "public":
        return None
    configured = bool(config.api_tokens() or config.get("OBSERVATORY_BASIC_AUTH")
                      or config.get("OBSERVATORY_OIDC_ISSUER"))
    if configured and not _has_login(app):
        return ("this workbench requires a login (OBSERVATORY_TOKENS or "
                "OBSERVATORY_BASIC_AUTH is set) but the server serves its pages without one: "
                "start it with `observatory serve` (or panel serve --basic-auth ... "
                "--cookie-secret ...)")
    user = auth.login_user(handler) if handler.settings.get("cookie_secret") else None
    if user and not allows(role := auth.handler_role(handler, user), "viewer"):
        return f"{user} ({role}) may not read the dashboards"
    return None


def _checked_find_handler(find_handler):
    def find(self: Application, request, **kwargs):
        if guard.hostname(request.headers.get("Host", "")) not in guard.allowed_hosts():
            return self.get_handler_delegate(request, MisdirectedHandler)
        delegate = find_handler(self, request, **kwargs)
        from .plugin_base import Declared

        handler = getattr(delegate, "handler_class", None)
        if isinstance(handler, type) and issubclass(handler, Declared):
            return delegate  # the API: the route table's own admission check
        refused = page_refusal(self, request)
        if refused:
            return self.get_handler_delegate(request, RefusedHandler,
                                             target_kwargs={"message": refused})
        return delegate
    return find


#: The login form's anti-forgery token: a cookie only this origin can set and read, and
#: the same value in a hidden field of the form (a page elsewhere can post the form, but
#: not know the value).
LOGIN_XSRF = "observatory_login_xsrf"


def _login_form_token(get):
    def render(self) -> None:
        token = secrets.token_urlsafe(24)
        self.set_cookie(LOGIN_XSRF, token, httponly=True, samesite="Strict")
        write = self.write

        def with_token(chunk):
            if isinstance(chunk, str | bytes):
                text = chunk if isinstance(chunk, str) else chunk.decode("utf-8", "replace")
                field = f'<input type="hidden" name="{LOGIN_XSRF}" value="{token}"></form>'
                chunk = text.replace("</form>", field, 1)
            return write(chunk)

        self.write = with_token
        return get(self)
    return render


def _login_form_checked(post):
    def check(self) -> None:
        given = self.get_body_argument(LOGIN_XSRF, "")
        expected = self.get_cookie(LOGIN_XSRF, "")
        if not expected or not hmac.compare_digest(given.encode("utf-8", "replace"),
                                                   expected.encode("utf-8", "replace")):
            self.set_status(403)
            self.finish("login refused: the form's anti-forgery token is missing or stale "
                        "(reload the login page)\n")
            return None
        return post(self)
    return check


def _lax_cookie(set_cookie):
    def set_with_defaults(self, name, value, *args, httponly=True, samesite="Lax", **kw):
        if config.tls():
            kw.setdefault("secure", True)  # (never sent back over plain HTTP)
        return set_cookie(self, name, value, *args, httponly=httponly, samesite=samesite, **kw)
    return set_with_defaults


def _token_as_password(validate):
    def check(self, username: str, password: str) -> bool:
        # A session opened with a token is named after the token's fingerprint, whatever
        # name was typed, so that it gets the token's role and no more; no password login
        # may take such a name.
        # Static tokens only: a signed one expires and may be revoked, which a login
        # session (a day) would outlive — signed tokens are for programs.
        if auth.static_role(password) is not None:
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
    BasicLoginHandler.get = _login_form_token(BasicLoginHandler.get)
    BasicLoginHandler.post = _login_form_checked(BasicLoginHandler.post)
    BasicLoginHandler.set_current_user = _token_session(BasicLoginHandler.set_current_user)

    from panel.io.server import ComponentResourceHandler

    resolve = ComponentResourceHandler.parse_url_path

    def parse_url_path(self, path: str) -> str:
        module = path.split("/", 1)[0]
        if module not in sys.modules:
            raise HTTPError(404, "Module not found")  # never import on a request's say-so
        return resolve(self, path)

    ComponentResourceHandler.parse_url_path = parse_url_path  # type: ignore[method-assign]
    _skip_document_validation()


def _skip_document_validation() -> None:
    """Build each session's document without Bokeh's integrity checks, unless
    ``BOKEH_VALIDATE_DOC`` asks for them. The checks only log warnings about how models
    are put together (a plot without renderers, duplicate names): nothing a visitor sees.
    On every new session they walked the whole model graph again: a tenth of the server's
    time to build the agents page (py-spy, 15 visits)."""
    from bokeh.settings import settings

    if "BOKEH_VALIDATE_DOC" not in os.environ:
        settings.perform_document_validation.set_value(False)
