"""Single sign-on with any OpenID Connect provider, through Panel's own OAuth login.

Panel's generic OAuth handler runs the authorization-code flow; this provider
(``--oauth-provider observatory-oidc``, registered with Panel by :func:`register`) adds
what OIDC asks for on top of it:

- the endpoints come from the issuer's discovery document (``OBSERVATORY_OIDC_ISSUER``
  + ``/.well-known/openid-configuration``), not from four settings;
- the ``id_token`` is checked — signature against the provider's JWKS, ``iss``, ``aud``
  (the client id), ``exp`` — where Panel's generic handler only decodes it;
- the user's groups (``OBSERVATORY_OIDC_GROUPS_CLAIM``, default ``groups``) are mapped to a
  role (``OBSERVATORY_OIDC_ROLES``: ``group:role,...``; the highest wins). A user in no
  mapped group is refused unless ``OBSERVATORY_OIDC_DEFAULT_ROLE`` names a role. The role
  travels in a signed cookie bound to the user (:data:`auth.ROLE_COOKIE`).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop
from tornado.web import HTTPError

from .. import config

log = logging.getLogger("workbench.server")
PROVIDER = "observatory-oidc"
_lock = threading.Lock()
_discovered: dict[str, Any] = {}
_jwks: dict[str, Any] = {}


def enabled() -> bool:
    return bool(config.get("OBSERVATORY_OIDC_ISSUER"))


def discovery() -> dict[str, Any]:
    """The issuer's discovery document (fetched once)."""
    import httpx

    issuer = config.get("OBSERVATORY_OIDC_ISSUER").rstrip("/")
    with _lock:
        if _discovered.get("issuer_url") != issuer:
            url = f"{issuer}/.well-known/openid-configuration"
            try:
                doc = httpx.get(url, timeout=10).raise_for_status().json()
            except (httpx.HTTPError, ValueError) as err:
                raise HTTPError(502, f"OIDC discovery at {url} failed: {err}") from None
            missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri",
                                   "issuer") if not doc.get(k)]
            if missing:
                raise HTTPError(502, f"OIDC discovery at {url}: no {missing[0]}")
            _discovered.clear()
            _discovered.update(doc, issuer_url=issuer)
        return dict(_discovered)


def role_of(claims: dict[str, Any]) -> str | None:
    """The highest role the user's groups map to, else the default (None: refused)."""
    from ..config import GRANTS

    groups = claims.get(config.get("OBSERVATORY_OIDC_GROUPS_CLAIM"), [])
    if isinstance(groups, str):
        groups = [groups]
    mapping = {}
    for item in config.get("OBSERVATORY_OIDC_ROLES").split(","):
        group, _, role = item.strip().rpartition(":")
        if group and role in GRANTS:
            mapping[group] = role
    order = ["ingest", "viewer", "operator", "admin"]
    found = [mapping[g] for g in groups if isinstance(g, str) and g in mapping]
    if found:
        return max(found, key=order.index)
    default = config.get("OBSERVATORY_OIDC_DEFAULT_ROLE")
    return default if default in GRANTS else None


def verify_id_token(token: str) -> dict[str, Any]:
    """The claims of a valid id_token (signature by a key of the provider's JWKS, issuer,
    audience, expiry); HTTPError 401 saying why not."""
    import jwt

    doc = discovery()
    with _lock:
        client = _jwks.get(doc["jwks_uri"])
        if client is None:
            client = _jwks[doc["jwks_uri"]] = jwt.PyJWKClient(doc["jwks_uri"], timeout=10)
    try:
        key = client.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=doc.get(
            "id_token_signing_alg_values_supported") or ["RS256"],
            audience=config.get("OBSERVATORY_OIDC_CLIENT_ID"), issuer=doc["issuer"],
            options={"require": ["exp", "iss", "aud", "sub"]})
    except jwt.PyJWTError as err:
        log.warning("OIDC: id_token refused: %s", err)
        raise HTTPError(401, f"the identity provider's id_token was refused: {err}",
                        reason="invalid id_token") from None


def _handler_class():
    from panel.auth import GenericLoginHandler, OAuthLoginHandler

    from . import auth

    class OIDCLoginHandler(GenericLoginHandler):
        """Panel's generic OAuth login, made OpenID Connect (see the module)."""

        @property
        def _SCOPE(self):  # noqa: N802
            return [s for s in config.get("OBSERVATORY_OIDC_SCOPES").split(",") if s]

        @property
        def _OAUTH_AUTHORIZE_URL(self):  # noqa: N802
            return discovery()["authorization_endpoint"]

        @property
        def _OAUTH_ACCESS_TOKEN_URL(self):  # noqa: N802
            return discovery()["token_endpoint"]

        @property
        def _OAUTH_USER_URL(self):  # noqa: N802
            return discovery().get("userinfo_endpoint")

        @property
        def _OAUTH_LOGOUT_URL(self):  # noqa: N802
            return discovery().get("end_session_endpoint") or ""

        @property
        def _USER_KEY(self):  # noqa: N802
            return config.get("OBSERVATORY_OIDC_USER_CLAIM")

        async def _fetch_access_token(self, client_id, redirect_uri=None, client_secret=None,
                                      code=None, refresh_token=None, **kw):
            if not code:  # (refreshing: Panel's own way)
                return await super()._fetch_access_token(
                    client_id, redirect_uri, client_secret, code, refresh_token, **kw)
            params = {"client_id": client_id, "grant_type": "authorization_code",
                      "code": code, "redirect_uri": redirect_uri,
                      "client_secret": client_secret or ""}
            request = HTTPRequest(self._OAUTH_ACCESS_TOKEN_URL, method="POST",
                                  body=urlencode(params), headers=self._API_BASE_HEADERS)
            try:
                response = await self.get_auth_http_client().fetch(request)
            except HTTPClientError as err:
                body = err.response.body[:300] if err.response else b""
                raise HTTPError(401, f"the identity provider refused the code: "
                                f"{body.decode(errors='replace')}", reason="token") from None
            try:
                body = json.loads(response.body)
            except ValueError:
                raise HTTPError(502, "the token endpoint did not answer JSON") from None
            if not body.get("id_token") or not body.get("access_token"):
                raise HTTPError(401, "the token endpoint gave no id_token: is 'openid' in "
                                "the scopes (OBSERVATORY_OIDC_SCOPES)?", reason="token")
            claims = await IOLoop.current().run_in_executor(
                None, verify_id_token, body["id_token"])
            user_key = self._USER_KEY
            user = claims.get(user_key) or claims.get("sub")
            role = role_of(claims)
            if role is None:
                log.warning("OIDC: %s is in no group with a role", user)
                raise HTTPError(403, f"{user} is in no group that has a role here "
                                "(OBSERVATORY_OIDC_ROLES)", reason="no role")
            expires = int(body["expires_in"]) if body.get("expires_in") else None
            user = OAuthLoginHandler.set_auth_cookies(
                self, {**claims, user_key: user}, body["access_token"],
                body.get("refresh_token"), expires)
            self.set_secure_cookie(auth.ROLE_COOKIE, auth.role_cookie_value(user, role),
                                   expires_days=config.get("OBSERVATORY_OIDC_EXPIRY_DAYS"),
                                   httponly=True)
            log.warning("OIDC: %s logged in as %s", user, role)
            return user, body["access_token"], body.get("refresh_token"), expires

    return OIDCLoginHandler


def register() -> None:
    """Make the provider one Panel knows (``--oauth-provider observatory-oidc``)."""
    from panel.auth import AUTH_PROVIDERS
    from panel.config import config as panel_config

    if PROVIDER in AUTH_PROVIDERS:
        return
    AUTH_PROVIDERS[PROVIDER] = _handler_class()
    panel_config.param.objects(False)["_oauth_provider"].objects = list(AUTH_PROVIDERS)
