"""One authentication check for every API route."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import TYPE_CHECKING

from .. import config
from .guard import WRITES

#: The header a cookie-authenticated write must carry (see :func:`xsrf_token`).
XSRF_HEADER = "X-XSRF-Token"

if TYPE_CHECKING:
    from tornado.web import RequestHandler


def _loopback(ip: str | None) -> bool:
    try:
        return ipaddress.ip_address((ip or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def valid_token(given: str) -> bool:
    """Whether ``given`` is one of ``OBSERVATORY_TOKENS`` (compared in constant time, as
    bytes: ``compare_digest`` refuses non-ASCII str, which was a 500)."""
    raw = given.encode("utf-8", "surrogateescape")
    return any(hmac.compare_digest(raw, t.encode()) for t in config.api_tokens())


def login_user(handler: RequestHandler) -> str | None:
    """The user of a valid signed login cookie, or None."""
    user = handler.settings.get("cookie_secret") and handler.get_secure_cookie("user")
    return user.decode() if user else None


def check(handler: RequestHandler) -> tuple[int, str] | None:
    """``None`` when the request may proceed, else ``(status, reason)``.

    Accepted: a bearer token from ``OBSERVATORY_TOKENS``; the dashboard's signed login
    cookie (when the server runs with ``--basic-auth`` or OAuth); or, only while no
    authentication at all is configured, any request from a loopback address. One rule:
    once tokens or a login are configured, loopback is trusted no more (a same-host
    reverse proxy makes every client look like loopback).
    """
    tokens = config.api_tokens()
    login = bool(config.get("OBSERVATORY_BASIC_AUTH") or handler.settings.get("cookie_secret"))
    header = handler.request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return None if valid_token(header[7:].strip()) else (401, "invalid bearer token")
    if login_user(handler):
        if handler.request.method in WRITES and not hmac.compare_digest(
                handler.request.headers.get(XSRF_HEADER, "").encode("utf-8", "replace"),
                xsrf_token(handler).encode()):
            return 403, (f"a write with the login cookie needs the {XSRF_HEADER} header "
                         "(GET /api/session gives it)")
        return None
    if not tokens and not login and _loopback(handler.request.remote_ip):
        return None
    if login and not tokens:
        return 401, "authentication required: log in to the dashboard (or use a bearer token)"
    if not tokens:
        return 403, (
            "no API tokens configured: only loopback clients are accepted "
            "(set OBSERVATORY_TOKENS to allow remote clients)"
        )
    return 401, "missing bearer token (Authorization: Bearer <token>)"


def xsrf_token(handler: RequestHandler) -> str:
    """The anti-forgery token of the logged-in browser: derived from its signed login
    cookie, so it changes with every login and no other site can compute it."""
    secret = handler.settings["cookie_secret"]
    cookie = handler.get_cookie("user") or ""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, b"xsrf:" + cookie.encode(), hashlib.sha256).hexdigest()
