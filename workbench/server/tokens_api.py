"""Signed tokens through the API (admins): issue, list, revoke — and the revocation list
the one authentication check reads (kept in memory, read from the store once)."""

from __future__ import annotations

import threading

from .. import tokens
from ..store import token_writes
from .plugin_base import APIHandler
from .state import get_store

_lock = threading.Lock()
_revoked: set[str] | None = None


def is_revoked(jti: str) -> bool:
    global _revoked
    with _lock:
        if _revoked is None:
            _revoked = token_writes.revoked(get_store())
        return jti in _revoked


def bearer_role(token: str) -> tuple[str | None, str, str]:
    """``(role or None, who, reason)`` for a signed token."""
    try:
        claims = tokens.verify(token)
    except tokens.TokenError as err:
        return None, "", str(err)
    if is_revoked(claims["jti"]):
        return None, "", "the token was revoked"
    return claims["role"], f"jwt:{claims['sub']}", ""


class TokensHandler(APIHandler):
    """``GET /api/tokens`` (the tokens issued), ``POST /api/tokens`` with ``{"sub",
    "role", "ttl"}``: a new signed token (shown once: only its id is stored)."""

    async def get(self) -> None:
        await self.answer(lambda: {"ok": True, "tokens": token_writes.listed(get_store())})

    async def post(self) -> None:
        def work() -> dict:
            body = self.payload()
            try:
                token, claims = tokens.issue(body["sub"], body["role"],
                                             tokens.parse_ttl(body["ttl"]))
            except tokens.TokenError as err:  # no key configured: the server's setup
                raise PermissionError(str(err)) from None
            token_writes.record_issued(get_store(), claims, self.principal.who)
            self.set_status(201)
            return {"ok": True, "token": token, "claims": claims}

        await self.answer(work)


class TokenRevokeHandler(APIHandler):
    """``POST /api/tokens/{jti}/revoke``: refused from now on, on this server."""

    async def post(self, jti: str) -> None:
        def work() -> dict:
            self.payload()
            if not token_writes.revoke(get_store(), jti, self.principal.who):
                raise KeyError(f"no unrevoked token {jti!r} was issued here")
            with _lock:
                if _revoked is not None:
                    _revoked.add(jti)
            return {"ok": True, "revoked": jti}

        await self.answer(work)
