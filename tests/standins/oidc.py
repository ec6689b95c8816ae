"""A stand-in OpenID Connect provider on loopback, speaking the real protocol: discovery
(``/.well-known/openid-configuration``), the authorization endpoint (a sign-in page with a
button per user, which redirects back with a one-time code), the token endpoint
(authorization code → access token and an RS256-signed ``id_token``; the client's secret
checked), the JWKS the signature is checked with, and userinfo.

``users`` maps a name to its claims (``email``, ``groups``, ...). ``forge`` signs the next
id_token with a key the JWKS does not hold (a test of the relying party's check).
"""

from __future__ import annotations

import html
import json
import secrets
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .serving import Serving


class OIDCProvider(Serving):
    def __init__(self, client_id: str, client_secret: str,
                 users: dict[str, dict[str, Any]]) -> None:
        self.client_id, self.client_secret, self.users = client_id, client_secret, users
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.codes: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.forge = False
        self.serve(self._handler())
        self.issuer = f"http://127.0.0.1:{self.port}"

    def id_token(self, claims: dict[str, Any]) -> str:
        now = int(time.time())
        key = self.key
        if self.forge:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode({"iss": self.issuer, "aud": self.client_id, "iat": now,
                           "exp": now + 300, **claims}, key, algorithm="RS256",
                          headers={"kid": self.kid})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, ctype: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else (
                    body.encode() if isinstance(body, str) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                provider.requests.append(("GET", url.path))
                iss = provider.issuer
                if url.path == "/.well-known/openid-configuration":
                    return self._send(200, {
                        "issuer": iss, "authorization_endpoint": f"{iss}/authorize",
                        "token_endpoint": f"{iss}/token", "userinfo_endpoint": f"{iss}/userinfo",
                        "jwks_uri": f"{iss}/jwks", "response_types_supported": ["code"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "subject_types_supported": ["public"]})
                if url.path == "/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(provider.key.public_key()))
                    return self._send(200, {"keys": [{**jwk, "kid": provider.kid,
                                                      "use": "sig", "alg": "RS256"}]})
                if url.path == "/authorize":
                    if q.get("client_id") != provider.client_id or q.get(
                            "response_type") != "code":
                        return self._send(400, {"error": "invalid_request"})
                    if "user" in q:  # the person chose who they are
                        code = secrets.token_urlsafe(16)
                        provider.codes[code] = {"user": q["user"],
                                                "redirect_uri": q["redirect_uri"]}
                        sep = "&" if "?" in q["redirect_uri"] else "?"
                        self.send_response(302)
                        self.send_header("Location", q["redirect_uri"] + sep + urlencode(
                            {"code": code, "state": q.get("state", "")}))
                        self.end_headers()
                        return None
                    buttons = "".join(
                        f'<p><a href="/authorize?{html.escape(urlencode({**q, "user": u}))}">'
                        f"Sign in as {html.escape(u)}</a></p>" for u in provider.users)
                    return self._send(200, f"<html><body><h1>Stand-in IdP</h1>{buttons}"
                                           "</body></html>", "text/html")
                if url.path == "/userinfo":
                    token = self.headers.get("Authorization", "")[7:]
                    for code in provider.codes.values():
                        if code.get("access_token") == token:
                            return self._send(200, {"sub": code["user"],
                                                    **provider.users[code["user"]]})
                    return self._send(401, {"error": "invalid_token"})
                return self._send(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                provider.requests.append(("POST", self.path))
                if self.path != "/token":
                    return self._send(404, {"error": "not found"})
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = {k: v[-1] for k, v in parse_qs(body).items()}
                if form.get("client_id") != provider.client_id or form.get(
                        "client_secret") != provider.client_secret:
                    return self._send(401, {"error": "invalid_client"})
                grant = provider.codes.get(form.get("code", ""))
                if grant is None or "access_token" in grant or \
                        grant["redirect_uri"] != form.get("redirect_uri"):
                    return self._send(400, {"error": "invalid_grant"})
                grant["access_token"] = secrets.token_urlsafe(16)
                user = grant["user"]
                return self._send(200, {
                    "access_token": grant["access_token"], "token_type": "Bearer",
                    "expires_in": 3600,
                    "id_token": provider.id_token({"sub": user, **provider.users[user]})})

        return Handler
