"""One authentication check for every API route."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import TYPE_CHECKING

from .. import config, tokens
from ..control.access import Principal
from .bearer import jwt_role, own_tokens
from .guard import WRITES

#: The signed cookie in which single sign-on (server/oidc.py) gives a user their role, as
#: ``user`` NUL ``role`` (bound to the user, so it cannot be carried to another login).
ROLE_COOKIE = "observatory_role"

#: The header a cookie-authenticated write must carry (see :func:`xsrf_token`).
XSRF_HEADER = "X-XSRF-Token"

if TYPE_CHECKING:
    from tornado.web import RequestHandler


def _loopback(ip: str | None) -> bool:
    try:
        return ipaddress.ip_address((ip or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def static_role(given: str) -> str | None:
    """The role of ``given`` if it is a static token (``OBSERVATORY_TOKENS`` or one of
    this process's own), else None. Compared in constant time, as bytes:
    ``compare_digest`` refuses non-ASCII str, which was a 500."""
    raw = given.encode("utf-8", "surrogateescape")
    role = None
    for token, r in [*config.api_token_roles().items(), *own_tokens.items()]:
        if hmac.compare_digest(raw, token.encode()):
            role = r
    return role


def bearer(given: str) -> tuple[str | None, str, str]:
    """``(role or None, who, why not)`` of a bearer token: a static one, or a signed,
    unexpired, unrevoked JWT when signed tokens are configured."""
    role = static_role(given)
    if role is not None:
        return role, token_user(given), ""
    if tokens.configured() and tokens.looks_like_jwt(given):
        return jwt_role(given)
    return None, "", "invalid bearer token"


def token_role(given: str) -> str | None:
    """The role of a valid bearer token, else None."""
    return bearer(given)[0]


def valid_token(given: str) -> bool:
    return token_role(given) is not None


def principal(handler: RequestHandler) -> Principal:
    """Who an authenticated request is, with its role (call after :func:`check`)."""
    client = handler.request.remote_ip or ""
    header = handler.request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        role, who, _ = bearer(header[7:].strip())
        return Principal(who or "token:invalid", role or "viewer", client)
    user = login_user(handler)
    if user:
        return Principal(user, handler_role(handler, user), client)
    return Principal("loopback", "admin", client)  # check() let it in: nothing configured


def token_user(token: str) -> str:
    """The name a token acts under: ``token:`` and a fingerprint (never the token)."""
    return "token:" + hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def role_cookie_value(user: str, role: str) -> str:
    return f"{user}\x00{role}"


def signed_role(user: str, raw: str | None, secret: str | bytes | None) -> str | None:
    """The role a single sign-on login gave ``user``: the signed role cookie's ``raw``
    value, checked with the cookie ``secret`` and bound to this user; else None."""
    if not raw or not secret:
        return None
    from tornado.web import decode_signed_value

    value = decode_signed_value(secret, ROLE_COOKIE, raw, max_age_days=366)
    if not value:
        return None
    who, _, role = value.decode("utf-8", "replace").partition("\x00")
    return role if who == user and role in config.GRANTS else None


def login_role(user: str, raw: str | None, secret: str | bytes | None) -> str:
    """The role of a logged-in ``user``: single sign-on's (the signed role cookie's
    ``raw`` value); else, with single sign-on configured, its default role or a viewer's
    (a login whose role cookie went missing never falls back to the configured default,
    admin); else the configured one."""
    role = signed_role(user, raw, secret)
    if role:
        return role
    if config.get("OBSERVATORY_OIDC_ISSUER") and not user.startswith("token:"):
        default = config.get("OBSERVATORY_OIDC_DEFAULT_ROLE")
        return default if default in config.GRANTS else "viewer"
    return user_role(user)


def handler_role(handler: RequestHandler, user: str) -> str:
    """The role of the logged-in ``user`` of a request (:func:`login_role`)."""
    return login_role(user, handler.get_cookie(ROLE_COOKIE),
                      handler.settings.get("cookie_secret"))


def user_role(user: str) -> str:
    """The role of a logged-in user; one who logged in with a token has the token's role
    (the login page names such a session after the token's fingerprint)."""
    if user.startswith("token:"):
        for token, role in [*config.api_token_roles().items(), *own_tokens.items()]:
            if hmac.compare_digest(token_user(token), user):
                return role
        return "viewer"  # the token was removed since: the least role
    return config.user_role(user)


def login_user(handler: RequestHandler) -> str | None:
    """The user of a valid signed login cookie, or None."""
    user = handler.settings.get("cookie_secret") and handler.get_secure_cookie("user")
    return user.decode() if user else None


def check(handler: RequestHandler) -> tuple[int, str] | None:
    """``None`` when the request may proceed, else ``(status, reason)``.

    Accepted: a bearer token from ``OBSERVATORY_TOKENS`` or a signed one (JWT, when a key
    is configured: workbench/tokens.py); the dashboard's signed login
    cookie (when the server runs with ``--basic-auth`` or OAuth); or, only while no
    authentication at all is configured, any request from a loopback address. One rule:
    once tokens or a login are configured, loopback is trusted no more (a same-host
    reverse proxy makes every client look like loopback).
    """
    bearers = config.api_tokens() or tokens.configured()
    login = bool(config.get("OBSERVATORY_BASIC_AUTH") or handler.settings.get("cookie_secret"))
    header = handler.request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        role, _, why = bearer(header[7:].strip())
        return None if role is not None else (401, why)
    if login_user(handler):
        if handler.request.method in WRITES and not hmac.compare_digest(
                handler.request.headers.get(XSRF_HEADER, "").encode("utf-8", "replace"),
                xsrf_token(handler).encode()):
            return 403, (f"a write with the login cookie needs the {XSRF_HEADER} header "
                         "(GET /api/session gives it)")
        return None
    if not bearers and not login and _loopback(handler.request.remote_ip):
        return None
    if login and not bearers:
        return 401, "authentication required: log in to the dashboard (or use a bearer token)"
    if not bearers:
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
